"""Staged flow batches (ONOS FlowRuleOperations).

A batch is a list of stages; each stage is a list of add / modify / remove
operations on store entries. A stage is handed to the provider (the code that
talks to the switch) only when the previous stage has completed on the
switch, so "reverse entry before forward entry" holds even when the switch
is slow. The caller awaits one :class:`BatchResult` with an outcome per
operation. When any operation of a stage fails, the later stages are not
sent: their operations fail with a reason naming the stage that failed.

Entry states follow the outcomes: a confirmed add becomes ADDED, a confirmed
remove (or a remove the switch answers NOT_FOUND: it is gone either way)
becomes REMOVED, and anything rejected becomes FAILED with the switch's
reason.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from p4ctl.flows.entry import FlowEntry
from p4ctl.flows.state import FlowState
from p4ctl.flows.store import FlowStore


class OpKind(enum.Enum):
    ADD = "add"
    MODIFY = "modify"
    REMOVE = "remove"


@dataclass(slots=True)
class FlowOp:
    kind: OpKind
    entry: FlowEntry


@dataclass(slots=True)
class OpResult:
    """The switch's answer to one operation; ``code`` is a gRPC code name when it failed."""

    op: FlowOp
    ok: bool
    code: str = "OK"
    message: str = ""

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class FlowProvider(Protocol):
    """Applies one stage on the switch and returns one result per op, in order."""

    async def apply(self, ops: Sequence[FlowOp]) -> list[OpResult]: ...


@dataclass(slots=True)
class BatchResult:
    results: list[OpResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[OpResult]:
        return [r for r in self.results if not r.ok]


async def execute(
    store: FlowStore, provider: FlowProvider, stages: Sequence[Sequence[FlowOp]]
) -> BatchResult:
    """Run ``stages`` in order on ``provider``, updating entry states in ``store``."""
    result = BatchResult()
    failure: str | None = None
    for number, stage in enumerate(stages, start=1):
        if not stage:
            continue
        if failure is not None:
            skipped = [OpResult(op, False, "ABORTED", failure) for op in stage]
            for r in skipped:
                _settle(store, r)
            result.results.extend(skipped)
            continue
        answers = await provider.apply(stage)
        if len(answers) != len(stage):
            raise RuntimeError(f"provider answered {len(answers)} results for {len(stage)} ops")
        for r in answers:
            _settle(store, r)
        result.results.extend(answers)
        bad = next((r for r in answers if not r.ok), None)
        if bad is not None:
            failure = f"stage {number} failed ({bad.reason})"
    return result


def _settle(store: FlowStore, r: OpResult) -> None:
    entry = r.op.entry
    state = entry.state
    if r.op.kind is OpKind.REMOVE:
        gone = r.ok or r.code == "NOT_FOUND"
        if state is FlowState.PENDING_REMOVE:
            store.move(entry, FlowState.REMOVED if gone else FlowState.FAILED,
                       reason=None if gone else r.reason)
        return
    if state is FlowState.PENDING_ADD:
        store.move(entry, FlowState.ADDED if r.ok else FlowState.FAILED,
                   reason=None if r.ok else r.reason)
    elif not r.ok and state is FlowState.ADDED and r.op.kind is OpKind.MODIFY:
        entry.reason = r.reason  # the old action stays on the switch
