"""Staged batches: stage order, state outcomes, and failure of the later stages.

The provider here is a scripted stand-in for the switch side, to test the
staging rules on their own; the same batches run against the software switch
over gRPC in the integration tier.
"""

from __future__ import annotations

from collections.abc import Sequence

from p4ctl.flows.batch import FlowOp, OpKind, OpResult, execute
from p4ctl.flows.entry import DROP
from p4ctl.flows.key import FlowKey
from p4ctl.flows.state import FlowState
from p4ctl.flows.store import FlowStore, StoreSizes


class ScriptedProvider:
    def __init__(self, reject: dict[int, str] | None = None) -> None:
        self.reject = reject or {}
        self.stages: list[list[int]] = []

    async def apply(self, ops: Sequence[FlowOp]) -> list[OpResult]:
        self.stages.append([op.entry.flow_id for op in ops])
        return [
            OpResult(op, False, self.reject[op.entry.flow_id], "rejected")
            if op.entry.flow_id in self.reject else OpResult(op, True)
            for op in ops
        ]


def pair(store: FlowStore, n: int):
    key = FlowKey(0, 0x0A000001, 0x0A000002, 17, 1000 + n, 53)
    fwd = store.allocate(key, DROP)
    rev = store.allocate(key.reverse(), DROP, forward=False)
    assert fwd is not None and rev is not None
    store.pair(fwd, rev)
    return fwd, rev


async def test_stages_run_in_order_and_entries_become_added() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    fwd, rev = pair(store, 1)
    provider = ScriptedProvider()
    result = await execute(store, provider, [[FlowOp(OpKind.ADD, rev)],
                                             [FlowOp(OpKind.ADD, fwd)]])
    assert result.ok
    assert provider.stages == [[rev.flow_id], [fwd.flow_id]]
    assert fwd.state is FlowState.ADDED and rev.state is FlowState.ADDED


async def test_failed_stage_fails_the_rest_with_a_reason() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    fwd, rev = pair(store, 1)
    provider = ScriptedProvider(reject={rev.flow_id: "RESOURCE_EXHAUSTED"})
    result = await execute(store, provider, [[FlowOp(OpKind.ADD, rev)],
                                             [FlowOp(OpKind.ADD, fwd)]])
    assert not result.ok
    assert provider.stages == [[rev.flow_id]]  # stage 2 never sent
    assert rev.state is FlowState.FAILED and rev.reason == "RESOURCE_EXHAUSTED: rejected"
    assert fwd.state is FlowState.FAILED
    assert fwd.reason == "ABORTED: stage 1 failed (RESOURCE_EXHAUSTED: rejected)"


async def test_remove_not_found_counts_as_removed() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    fwd, rev = pair(store, 1)
    for e in (fwd, rev):
        store.move(e, FlowState.ADDED)
        store.move(e, FlowState.PENDING_REMOVE)
    provider = ScriptedProvider(reject={fwd.flow_id: "NOT_FOUND"})
    await execute(store, provider, [[FlowOp(OpKind.REMOVE, fwd), FlowOp(OpKind.REMOVE, rev)]])
    assert len(store) == 0
    assert store.by_flow_id(fwd.flow_id) is None
