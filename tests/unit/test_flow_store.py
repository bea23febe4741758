"""Flow store: the state machine, indexes and vRouter-style slot allocation."""

from __future__ import annotations

import itertools

import pytest

from p4ctl.flows.entry import DROP, ActionKind, FlowAction
from p4ctl.flows.key import FlowKey
from p4ctl.flows.state import LEGAL, FlowState, IllegalTransition, check_transition
from p4ctl.flows.store import DuplicateFlow, FlowStore, StoreSizes

S = FlowState


def key(n: int, vrf: int = 0) -> FlowKey:
    return FlowKey(vrf, 0x0A000000 + n, 0x0A010000 + n, 6, 1000 + n, 80)


def test_every_transition_is_checked() -> None:
    legal = {(a, b) for a, targets in LEGAL.items() for b in targets}
    assert (S.PENDING_ADD, S.ADDED) in legal
    assert (S.ADDED, S.PENDING_REMOVE) in legal
    for old, new in itertools.product(FlowState, FlowState):
        if (old, new) in legal:
            check_transition(old, new)
        else:
            with pytest.raises(IllegalTransition, match=f"{old.name} -> {new.name}"):
                check_transition(old, new)


def test_illegal_move_leaves_entry_and_indexes_unchanged() -> None:
    store = FlowStore(StoreSizes(16, 8, 4))
    entry = store.allocate(key(1), DROP)
    assert entry is not None
    with pytest.raises(IllegalTransition):
        store.move(entry, S.REMOVED)
    assert entry.state is S.PENDING_ADD
    assert list(store.in_state(S.PENDING_ADD)) == [entry]


def test_state_index_follows_moves_and_removal_frees_everything() -> None:
    store = FlowStore(StoreSizes(16, 8, 4))
    a = store.allocate(key(1), DROP)
    b = store.allocate(key(1).reverse(), DROP, forward=False)
    assert a is not None and b is not None
    store.pair(a, b)
    store.move(a, S.ADDED)
    assert store.counts()["ADDED"] == 1 and store.counts()["PENDING_ADD"] == 1
    store.move(a, S.PENDING_REMOVE)
    store.move(a, S.REMOVED)
    assert key(1) not in store
    assert store.by_flow_id(a.flow_id) is None
    assert b.partner is None
    assert len(store) == 1
    assert store.get(key(1).reverse()) is b


def test_duplicate_key_refused() -> None:
    store = FlowStore(StoreSizes(16, 8, 4))
    store.allocate(key(1), DROP)
    with pytest.raises(DuplicateFlow):
        store.allocate(key(1), DROP)


def test_full_bucket_spills_to_overflow_then_table_full() -> None:
    sizes = StoreSizes(flow_entries=16, overflow_entries=8, bucket_ways=4)
    store = FlowStore(sizes)
    same_hash = 7  # every flow lands in main bucket 7 % 4 = 3 and overflow list 7 % 2 = 1
    entries = [store.allocate(key(n), DROP, bucket_hash=same_hash) for n in range(9)]
    ids = [e.flow_id if e else None for e in entries]
    assert ids[:4] == [12, 13, 14, 15]  # main bucket 3
    assert ids[4:8] == [16 + 4, 16 + 5, 16 + 6, 16 + 7]  # overflow list 1
    assert ids[8] is None  # bucket and its overflow list full: TABLE_FULL
    first_overflow = entries[4]
    assert first_overflow is not None
    assert store.is_overflow(first_overflow)
    assert store.overflow_index(first_overflow) == 4
    # a freed main slot is reused before the overflow list
    victim = entries[1]
    assert victim is not None
    store.move(victim, S.FAILED, reason="test")
    store.move(victim, S.REMOVED)
    again = store.allocate(key(100), DROP, bucket_hash=same_hash)
    assert again is not None and again.flow_id == 13


def test_bucket_is_hash_modulo_buckets() -> None:
    store = FlowStore(StoreSizes(flow_entries=400, overflow_entries=80, bucket_ways=4))
    k = key(5)
    entry = store.allocate(k, DROP)
    assert entry is not None
    assert entry.flow_id // 4 == k.bucket_hash() % 100
    assert store.allocator.overflow_bucket(k.bucket_hash()) == k.bucket_hash() % 20


def test_forward_actions_are_shared() -> None:
    store = FlowStore(StoreSizes(16, 8, 4))
    a = store.allocate(key(1), FlowAction(ActionKind.FORWARD, 2))
    b = store.allocate(key(2), FlowAction(ActionKind.FORWARD, 2))
    assert a is not None and b is not None
    assert a.action is b.action
    assert store.actions.forward(2) is a.action


def test_sizes_validated() -> None:
    with pytest.raises(ValueError, match="multiple of bucket_ways"):
        StoreSizes(flow_entries=10, overflow_entries=8, bucket_ways=4)


def test_table_full_flow_is_recorded_failed_without_a_slot() -> None:
    store = FlowStore(StoreSizes(16, 8, 4))
    entry = store.add_failed(key(9), DROP, "TABLE_FULL")
    assert entry.state is S.FAILED and entry.reason == "TABLE_FULL" and entry.flow_id == -1
    assert store.get(key(9)) is entry
    assert store.count(S.FAILED) == 1
    assert all(store.by_flow_id(i) is None for i in range(store.sizes.slots))
    store.move(entry, S.REMOVED)
    assert key(9) not in store and store.count(S.FAILED) == 0


def test_a_failed_entry_gives_up_its_slot_to_the_next_flow_of_its_bucket() -> None:
    store = FlowStore(StoreSizes(4, 0, 4))  # one bucket of four, no overflow
    entries = [store.allocate(key(n), DROP) for n in range(4)]
    assert all(e is not None for e in entries) and store.allocate(key(9), DROP) is None
    first = entries[0]
    assert first is not None
    with pytest.raises(ValueError):  # a pending entry may be on the switch at any moment
        store.release_slot(first)
    slot = first.flow_id
    store.move(first, S.FAILED, reason="RESOURCE_EXHAUSTED: no room")
    store.release_slot(first)
    assert first.flow_id == -1 and store.by_flow_id(slot) is None
    assert store.get(key(0)) is first and store.count(S.FAILED) == 1  # the record stays
    taker = store.allocate(key(9), DROP)
    assert taker is not None and taker.flow_id == slot
    store.move(first, S.REMOVED)  # dropping the record leaves the slot to its new owner
    assert store.by_flow_id(slot) is taker
