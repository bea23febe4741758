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
reason. A FAILED add gives up its slot unless it may be on the switch all
the same (:data:`MAYBE_WRITTEN`).

:func:`execute` runs one batch alone. :class:`BatchPipeline` runs many:
each round hands the provider the next stage of every batch in progress
as one list, so stage 2 of one batch travels with stage 1 of the batches
submitted after it. Every batch still sees its stages complete in order,
but a stream of two-stage batches costs about one switch round trip per
batch instead of two, and a batch submitted while a round is on the switch
goes in the next round with every other one that arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from p4ctl.flows.entry import FlowEntry
from p4ctl.flows.state import FlowState
from p4ctl.flows.store import FlowStore

log = logging.getLogger(__name__)


#: failures after which an added entry may be on the switch all the same: the
#: answer was lost (the RPC broke or timed out), the switch failed without
#: saying what it did, or the key is there already. Its slot stays taken,
#: since its flow id may be in use on the switch. After any other refusal
#: (and for a stage never sent, ABORTED) nothing was written: the slot is freed.
MAYBE_WRITTEN = frozenset({
    "ALREADY_EXISTS", "CANCELLED", "DATA_LOSS", "DEADLINE_EXCEEDED", "INTERNAL",
    "UNAVAILABLE", "UNKNOWN",
})


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

    @property
    def removed(self) -> bool:
        """A REMOVE after which the entry is off the switch (NOT_FOUND: gone either way)."""
        return self.op.kind is OpKind.REMOVE and (self.ok or self.code == "NOT_FOUND")


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


class _Waiter:
    """Resolves one future with ``results`` once ``left`` batches are complete."""

    __slots__ = ("future", "left", "results")

    def __init__(self, future: asyncio.Future[Any], left: int, results: Any) -> None:
        self.future = future
        self.left = left
        self.results = results
        if not left:
            future.set_result(results)

    def batch_done(self) -> None:
        self.left -= 1
        if not self.left and not self.future.done():
            self.future.set_result(self.results)


class _Run:
    """One batch in progress: its non-empty stages, the next one to send, the outcomes."""

    __slots__ = ("failure", "keep_slots", "next", "result", "stages", "waiter")

    def __init__(self, stages: Sequence[Sequence[FlowOp]], keep_slots: bool = False) -> None:
        self.stages = [stage for stage in stages if stage]
        #: a refused add keeps its slot (see :func:`execute`)
        self.keep_slots = keep_slots
        self.next = 0
        self.result = BatchResult()
        self.failure: str | None = None
        self.waiter: _Waiter | None = None

    def current(self) -> Sequence[FlowOp] | None:
        """The stage to send now; None when the batch is complete."""
        return self.stages[self.next] if self.next < len(self.stages) else None

    def record(self, store: FlowStore, answers: Sequence[OpResult],
               now: float | None = None) -> None:
        """Settle the current stage's answers; after a failure, abort the later stages."""
        stage = self.stages[self.next]
        if len(answers) != len(stage):
            raise RuntimeError(f"provider answered {len(answers)} results for {len(stage)} ops")
        if now is None:
            now = time.monotonic()
        bad = None
        for r in answers:
            _settle(store, r, now, self.keep_slots)
            if bad is None and not r.ok:
                bad = r
        self.result.results.extend(answers)
        self.next += 1
        if bad is None:
            return
        self.failure = f"stage {self.next} failed ({bad.reason})"
        for later in self.stages[self.next:]:
            skipped = [OpResult(op, False, "ABORTED", self.failure) for op in later]
            for r in skipped:
                _settle(store, r, now, self.keep_slots)
            self.result.results.extend(skipped)
        self.next = len(self.stages)


async def execute(
    store: FlowStore, provider: FlowProvider, stages: Sequence[Sequence[FlowOp]],
    *, keep_slots: bool = False,
) -> BatchResult:
    """Run ``stages`` in order on ``provider``, updating entry states in ``store``.

    ``keep_slots``: a refused add keeps its slot. For entries written before
    (a replay), whom a refusal does not show to be off the switch.
    """
    run = _Run(stages, keep_slots)
    while (ops := run.current()) is not None:
        run.record(store, await provider.apply(ops))
    return run.result


class BatchPipeline:
    """Staged batches of many callers through one provider, their stages merged per round.

    A round takes the current stage of the batches waiting (those submitted
    while earlier rounds were on the switch included, up to ``max_ops``
    operations), applies them with one provider call, and moves each batch
    to its next stage. A batch's next stage only joins a round after the
    round of its previous stage completed, as :func:`execute` guarantees,
    and one batch's failure does not touch the others.

    One round is on the switch at a time while little is waiting, so single
    flows share round trips. When ``overlap_at`` operations or more are
    waiting, a second round (up to ``rounds_in_flight``) starts at once: the
    controller then prepares one write while the switch applies the other.
    """

    def __init__(self, store: FlowStore, provider: FlowProvider, *, max_ops: int = 0,
                 rounds_in_flight: int = 2, overlap_at: int = 64) -> None:
        self.store = store
        self.provider = provider
        self.max_ops = max_ops
        self.rounds_in_flight = max(1, rounds_in_flight)
        self.overlap_at = overlap_at
        self.rounds = 0
        self._waiting: deque[_Run] = deque()
        self._waiting_ops = 0
        self._in_flight = 0
        self._kicked = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, stages: Sequence[Sequence[FlowOp]]) -> asyncio.Future[BatchResult]:
        """Queue a batch for the next round; the future gives its :class:`BatchResult`."""
        run = _Run(stages)
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._queue([run], _Waiter(future, 0 if run.current() is None else 1, run.result))
        return future

    def submit_all(
        self, batches: Sequence[Sequence[Sequence[FlowOp]]]
    ) -> asyncio.Future[list[BatchResult]]:
        """Queue many batches at once; one future gives their results when all are complete.

        Each batch still runs on its own (its stages in order, its failure its
        own); only the waiting is shared, which is what a digest list needs.
        """
        runs = [_Run(stages) for stages in batches]
        future: asyncio.Future[list[BatchResult]] = asyncio.get_running_loop().create_future()
        self._queue(runs, _Waiter(future, sum(run.current() is not None for run in runs),
                                  [run.result for run in runs]))
        return future

    def _queue(self, runs: list[_Run], waiter: _Waiter) -> None:
        waiting = self._waiting
        for run in runs:
            stage = run.current()
            if stage is None:
                continue
            run.waiter = waiter
            waiting.append(run)
            self._waiting_ops += len(stage)
        if waiter.left and not self._kicked:
            # start rounds once the caller's loop of submits is done, so a
            # digest list's flows leave together
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._start_rounds)

    def _start_rounds(self) -> None:
        self._kicked = False
        while self._waiting and self._in_flight < self.rounds_in_flight:
            if self._in_flight and self._waiting_ops < self.overlap_at:
                return
            runs = self._take()
            self._in_flight += 1
            task = asyncio.create_task(self._round(runs), name="batch-round")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Run]:
        """Waiting batches for one round: at least one, at most ``max_ops`` operations."""
        runs: list[_Run] = []
        ops = 0
        waiting = self._waiting
        while waiting:
            n = len(waiting[0].stages[waiting[0].next])
            if runs and self.max_ops and ops + n > self.max_ops:
                break
            runs.append(waiting.popleft())
            ops += n
        self._waiting_ops -= ops
        return runs

    async def _round(self, runs: list[_Run]) -> None:
        try:
            ops: list[FlowOp] = []
            for run in runs:
                ops.extend(run.stages[run.next])
            self.rounds += 1
            try:
                answers = await self.provider.apply(ops)
                if len(answers) != len(ops):
                    raise RuntimeError(
                        f"provider answered {len(answers)} results for {len(ops)} ops")
            except Exception as exc:  # a bug below: fail this round's operations, go on
                log.exception("a round of %d flow operations failed", len(ops))
                answers = [OpResult(op, False, "INTERNAL", repr(exc)) for op in ops]
            at = 0
            going_on: list[_Run] = []
            now = time.monotonic()
            for run in runs:
                n = len(run.stages[run.next])
                run.record(self.store, answers[at:at + n], now)
                at += n
                stage = run.current()
                if stage is not None:
                    going_on.append(run)
                    self._waiting_ops += len(stage)
                elif run.waiter is not None:
                    run.waiter.batch_done()
            # batches going on first: their next stage waited a round already
            self._waiting.extendleft(reversed(going_on))
        finally:
            self._in_flight -= 1
            self._start_rounds()


def _settle(store: FlowStore, r: OpResult, now: float, keep_slots: bool = False) -> None:
    entry = r.op.entry
    state = entry.state
    if r.op.kind is OpKind.REMOVE:
        gone = r.removed
        if state is FlowState.PENDING_REMOVE:
            store.move(entry, FlowState.REMOVED if gone else FlowState.FAILED,
                       reason=None if gone else r.reason, now=now)
        return
    if state is FlowState.PENDING_ADD:
        if r.ok:
            store.move(entry, FlowState.ADDED, now=now)
        else:
            store.move(entry, FlowState.FAILED, reason=r.reason, now=now)
            if r.op.kind is OpKind.ADD and r.code not in MAYBE_WRITTEN and not keep_slots:
                store.release_slot(entry)
    elif not r.ok and state is FlowState.ADDED and r.op.kind is OpKind.MODIFY:
        entry.reason = r.reason  # the old action stays on the switch
