"""Staged batches: stage order, state outcomes, and failure of the later stages.

The pipeline tests check what travels together in each round: a batch's
later stage never in the same round as, or before, its earlier stage.

The provider here is a scripted stand-in for the switch side, to test the
staging rules on their own; the same batches run against the software switch
over gRPC in the integration tier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from p4ctl.flows.batch import BatchPipeline, FlowOp, OpKind, OpResult, execute
from p4ctl.flows.entry import DROP
from p4ctl.flows.key import FlowKey
from p4ctl.flows.state import FlowState
from p4ctl.flows.store import NO_SLOT, FlowStore, StoreSizes


class ScriptedProvider:
    def __init__(self, reject: dict[int, str] | None = None) -> None:
        self.reject = reject or {}
        self.stages: list[list[int]] = []

    async def apply(self, ops: Sequence[FlowOp]) -> list[OpResult]:
        self.stages.append([op.entry.key for op in ops])
        return [
            OpResult(op, False, self.reject[op.entry.key], "rejected")
            if op.entry.key in self.reject else OpResult(op, True)
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
    assert provider.stages == [[rev.key], [fwd.key]]
    assert fwd.state is FlowState.ADDED and rev.state is FlowState.ADDED


async def test_failed_stage_fails_the_rest_with_a_reason() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    fwd, rev = pair(store, 1)
    provider = ScriptedProvider(reject={rev.key: "RESOURCE_EXHAUSTED"})
    result = await execute(store, provider, [[FlowOp(OpKind.ADD, rev)],
                                             [FlowOp(OpKind.ADD, fwd)]])
    assert not result.ok
    assert provider.stages == [[rev.key]]  # stage 2 never sent
    assert rev.state is FlowState.FAILED and rev.reason == "RESOURCE_EXHAUSTED: rejected"
    assert fwd.state is FlowState.FAILED
    assert fwd.reason == "ABORTED: stage 1 failed (RESOURCE_EXHAUSTED: rejected)"


async def test_remove_not_found_counts_as_removed() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    fwd, rev = pair(store, 1)
    for e in (fwd, rev):
        store.move(e, FlowState.ADDED)
        store.move(e, FlowState.PENDING_REMOVE)
    provider = ScriptedProvider(reject={fwd.key: "NOT_FOUND"})
    await execute(store, provider, [[FlowOp(OpKind.REMOVE, fwd), FlowOp(OpKind.REMOVE, rev)]])
    assert len(store) == 0
    assert store.by_flow_id(fwd.flow_id) is None


class SlowProvider(ScriptedProvider):
    """Holds each apply until the test releases it, to see what travels together."""

    def __init__(self, reject: dict[int, str] | None = None, fail: bool = False) -> None:
        super().__init__(reject)
        self.gates: list[asyncio.Event] = []
        self.fail = fail

    async def apply(self, ops: Sequence[FlowOp]) -> list[OpResult]:
        gate = asyncio.Event()
        self.gates.append(gate)
        self.stages.append([op.entry.key for op in ops])
        await gate.wait()
        if self.fail:
            raise RuntimeError("provider bug")
        return await ScriptedProvider(self.reject).apply(ops)


async def release(provider: SlowProvider, round_number: int) -> None:
    while len(provider.gates) < round_number:
        await asyncio.sleep(0)
    provider.gates[round_number - 1].set()
    for _ in range(5):
        await asyncio.sleep(0)


def two_stage(fwd, rev) -> list[list[FlowOp]]:
    return [[FlowOp(OpKind.ADD, rev)], [FlowOp(OpKind.ADD, fwd)]]


async def test_pipeline_sends_a_second_stage_with_the_first_stage_of_later_batches() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    (f1, r1), (f2, r2) = pair(store, 1), pair(store, 2)
    provider = SlowProvider()
    pipeline = BatchPipeline(store, provider)
    first = pipeline.submit(two_stage(f1, r1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second = pipeline.submit(two_stage(f2, r2))  # arrives while round 1 is on the switch
    await release(provider, 1)
    assert r1.state is FlowState.ADDED and f1.state is FlowState.PENDING_ADD
    await release(provider, 2)
    await release(provider, 3)
    assert (await first).ok and (await second).ok
    # round 2 carried batch 1's forward entry and batch 2's reverse entry
    assert provider.stages == [[r1.key], [f1.key, r2.key], [f2.key]]
    assert pipeline.rounds == 3


async def test_pipeline_failure_of_one_batch_leaves_the_others_alone() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    (f1, r1), (f2, r2) = pair(store, 1), pair(store, 2)
    provider = ScriptedProvider(reject={r1.key: "RESOURCE_EXHAUSTED"})
    pipeline = BatchPipeline(store, provider)
    # submitted together: they share each round
    first, second = pipeline.submit(two_stage(f1, r1)), pipeline.submit(two_stage(f2, r2))
    assert not (await first).ok and (await second).ok
    assert provider.stages == [[r1.key, r2.key], [f2.key]]
    assert f1.state is FlowState.FAILED and f1.reason.startswith("ABORTED: stage 1 failed")
    assert f2.state is FlowState.ADDED and r2.state is FlowState.ADDED


async def test_submit_all_waits_once_for_batches_that_still_run_apart() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    (f1, r1), (f2, r2), (f3, r3) = pair(store, 1), pair(store, 2), pair(store, 3)
    provider = SlowProvider(reject={r2.key: "RESOURCE_EXHAUSTED"})
    pipeline = BatchPipeline(store, provider)
    done = pipeline.submit_all([two_stage(f1, r1), [[], []], two_stage(f2, r2),
                                [[FlowOp(OpKind.ADD, f3)]]])
    await release(provider, 1)
    assert not done.done()  # batch 1's forward entry is still to go
    assert r1.state is FlowState.ADDED and f3.state is FlowState.ADDED
    await release(provider, 2)
    results = await done
    assert [r.ok for r in results] == [True, True, False, True]  # the empty batch is complete
    assert [len(r.results) for r in results] == [2, 0, 2, 1]
    assert provider.stages == [[r1.key, r2.key, f3.key], [f1.key]]
    assert f1.state is FlowState.ADDED and f2.state is FlowState.FAILED
    assert r3.state is FlowState.PENDING_ADD  # not in any batch
    assert (await pipeline.submit_all([])) == []


async def test_pipeline_overlaps_rounds_only_when_enough_is_waiting() -> None:
    store = FlowStore(StoreSizes(256, 8, 4))
    pairs = [pair(store, n) for n in range(6)]
    provider = SlowProvider()
    pipeline = BatchPipeline(store, provider, max_ops=2, overlap_at=3)
    futures = [pipeline.submit(two_stage(*pairs[0]))]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    futures.append(pipeline.submit(two_stage(*pairs[1])))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(provider.stages) == 1  # one op waiting: it waits for round 1
    futures += [pipeline.submit(two_stage(*p)) for p in pairs[2:]]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # five reverse entries waiting >= overlap_at: a second round, capped at max_ops
    assert len(provider.stages) == 2 and len(provider.stages[1]) == 2
    n = 0
    while not all(f.done() for f in futures):
        n += 1
        await release(provider, n)
    assert all(f.result().ok for f in futures)
    assert all(len(stage) <= 2 for stage in provider.stages)
    for fwd, rev in pairs:
        assert fwd.state is FlowState.ADDED and rev.state is FlowState.ADDED
        # every forward entry went in a round after its reverse entry's round
        rounds = {fid: i for i, stage in enumerate(provider.stages) for fid in stage}
        assert rounds[fwd.key] > rounds[rev.key]


async def test_pipeline_survives_a_provider_that_raises() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    fwd, rev = pair(store, 1)
    provider = SlowProvider(fail=True)
    pipeline = BatchPipeline(store, provider)
    future = pipeline.submit(two_stage(fwd, rev))
    await release(provider, 1)
    result = await future
    assert not result.ok
    assert rev.state is FlowState.FAILED and rev.reason.startswith("INTERNAL")
    assert fwd.state is FlowState.FAILED
    provider.fail = False  # the pipeline still runs later batches
    f2, r2 = pair(store, 2)
    later = pipeline.submit(two_stage(f2, r2))
    await release(provider, 2)
    await release(provider, 3)
    assert (await later).ok


async def test_a_refused_add_gives_up_its_slot_one_that_may_be_written_keeps_it() -> None:
    """Nothing of a refused pair is on the switch: its slots go to the next flows.

    After an answer that was lost or says the key is there, the entry may be
    on the switch with its flow id: the slot stays taken.
    """
    for code, freed in (("RESOURCE_EXHAUSTED", True), ("INVALID_ARGUMENT", True),
                        ("UNAVAILABLE", False), ("DEADLINE_EXCEEDED", False),
                        ("ALREADY_EXISTS", False), ("UNKNOWN", False)):
        store = FlowStore(StoreSizes(64, 8, 4))
        fwd, rev = pair(store, 1)
        slots = (rev.flow_id, fwd.flow_id)
        provider = ScriptedProvider(reject={rev.key: code})
        await execute(store, provider, [[FlowOp(OpKind.ADD, rev)], [FlowOp(OpKind.ADD, fwd)]])
        assert (rev.state, fwd.state) == (FlowState.FAILED, FlowState.FAILED)
        assert store.get(rev.key) is rev and store.get(fwd.key) is fwd  # the records stay
        # the forward entry was never sent (ABORTED): its slot is free whatever the code
        assert fwd.flow_id == NO_SLOT and store.by_flow_id(slots[1]) is None
        if freed:
            assert rev.flow_id == NO_SLOT and store.by_flow_id(slots[0]) is None, code
        else:
            assert rev.flow_id == slots[0] and store.by_flow_id(slots[0]) is rev, code


async def test_a_refused_remove_keeps_its_slot() -> None:
    store = FlowStore(StoreSizes(64, 8, 4))
    fwd, _ = pair(store, 1)
    store.move(fwd, FlowState.ADDED)
    store.move(fwd, FlowState.PENDING_REMOVE)
    slot = fwd.flow_id
    await execute(store, ScriptedProvider(reject={fwd.key: "PERMISSION_DENIED"}),
                  [[FlowOp(OpKind.REMOVE, fwd)]])
    assert fwd.state is FlowState.FAILED  # still on the switch
    assert fwd.flow_id == slot and store.by_flow_id(slot) is fwd


async def test_a_refused_modify_keeps_the_slot_of_an_entry_being_reinstalled() -> None:
    """Only a refused add says nothing of the entry is on the switch."""
    store = FlowStore(StoreSizes(64, 8, 4))
    fwd, _ = pair(store, 1)
    slot = fwd.flow_id
    await execute(store, ScriptedProvider(reject={fwd.key: "INVALID_ARGUMENT"}),
                  [[FlowOp(OpKind.MODIFY, fwd)]])
    assert fwd.state is FlowState.FAILED and fwd.flow_id == slot
