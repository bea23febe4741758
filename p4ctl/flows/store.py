"""The authoritative flow store: records, indexes and vRouter-style slots.

Slots (flow ids) follow the vRouter layout. The main table has
``flow_entries`` slots in buckets of ``bucket_ways``; a flow's bucket is its
bucket hash modulo the number of main buckets. When that bucket is full the
flow goes to the overflow area: ``overflow_entries`` slots in lists of
``bucket_ways`` per overflow bucket (hash modulo the number of overflow
buckets, the same index the data plane computes), with flow ids following the
main slots. A slot freed on removal is reused by the next flow of its bucket.

Indexes: by key (a dict on the packed key), by flow id (a list indexed by
slot, which is also the occupancy map) and by state (an insertion-ordered
dict per state, used as an ordered set so "all PENDING_ADD" costs what it
returns). Every state change goes through :meth:`FlowStore.move` so the state
index cannot drift from the records.

The store is plain in-memory Python owned by one asyncio loop; it is kept
behind this small interface so that a replicated backend can replace it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from p4ctl.flows.entry import ActionInterner, FlowAction, FlowEntry
from p4ctl.flows.key import FlowKey, bucket_hash_of
from p4ctl.flows.state import FlowState


@dataclass(slots=True, frozen=True)
class StoreSizes:
    """Table sizes; must equal what the P4 program was compiled with."""

    flow_entries: int = 512_000
    overflow_entries: int = 8_000
    bucket_ways: int = 4

    def __post_init__(self) -> None:
        if self.bucket_ways < 1:
            raise ValueError("bucket_ways must be at least 1")
        for name in ("flow_entries", "overflow_entries"):
            value = getattr(self, name)
            if value < 0 or value % self.bucket_ways:
                raise ValueError(f"{name}={value} must be a multiple of bucket_ways")
        if self.flow_entries == 0:
            raise ValueError("flow_entries must be positive")

    @property
    def main_buckets(self) -> int:
        return self.flow_entries // self.bucket_ways

    @property
    def overflow_buckets(self) -> int:
        return self.overflow_entries // self.bucket_ways

    @property
    def slots(self) -> int:
        return self.flow_entries + self.overflow_entries


#: ``flow_id`` of a FAILED entry that never got a slot (table full).
NO_SLOT = -1


class DuplicateFlow(KeyError):
    """A flow with this key is already in the store."""


class SlotAllocator:
    """Finds a free flow id for a bucket hash: its main bucket, then its overflow list."""

    __slots__ = ("_slots", "sizes")

    def __init__(self, sizes: StoreSizes, slots: list[FlowEntry | None]) -> None:
        self.sizes = sizes
        self._slots = slots

    def main_bucket(self, bucket_hash: int) -> int:
        return bucket_hash % self.sizes.main_buckets

    def overflow_bucket(self, bucket_hash: int) -> int:
        """The overflow list the data plane walks: ``bucket_hash % OVERFLOW_BUCKETS``."""
        return bucket_hash % self.sizes.overflow_buckets

    def find(self, bucket_hash: int) -> int | None:
        sizes = self.sizes
        ways = sizes.bucket_ways
        slot = self._free_way(self.main_bucket(bucket_hash) * ways, ways)
        if slot is None and sizes.overflow_entries:
            base = sizes.flow_entries + self.overflow_bucket(bucket_hash) * ways
            slot = self._free_way(base, ways)
        return slot

    def _free_way(self, base: int, ways: int) -> int | None:
        """The first free slot of ``ways`` slots from ``base`` (searched in C: a hot path)."""
        try:
            return self._slots.index(None, base, base + ways)
        except ValueError:
            return None


class FlowStore:
    """The controller's authoritative copy of one device's flow table."""

    def __init__(self, sizes: StoreSizes | None = None) -> None:
        self.sizes = sizes or StoreSizes()
        self._by_key: dict[int, FlowEntry] = {}
        self._by_slot: list[FlowEntry | None] = [None] * self.sizes.slots
        self._by_state: dict[FlowState, dict[FlowEntry, None]] = {s: {} for s in FlowState}
        self.allocator = SlotAllocator(self.sizes, self._by_slot)
        self.actions = ActionInterner()

    # -- queries ---------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: FlowKey | int) -> bool:
        return _packed(key) in self._by_key

    def get(self, key: FlowKey | int) -> FlowEntry | None:
        return self._by_key.get(_packed(key))

    def by_flow_id(self, flow_id: int) -> FlowEntry | None:
        if 0 <= flow_id < len(self._by_slot):
            return self._by_slot[flow_id]
        return None

    def in_state(self, state: FlowState) -> Iterator[FlowEntry]:
        """Entries in ``state``, oldest change first (a snapshot: safe to move them)."""
        return iter(list(self._by_state[state]))

    def count(self, state: FlowState) -> int:
        return len(self._by_state[state])

    def counts(self) -> dict[str, int]:
        return {s.name: len(d) for s, d in self._by_state.items()}

    def __iter__(self) -> Iterator[FlowEntry]:
        return iter(list(self._by_key.values()))

    def is_overflow(self, entry: FlowEntry) -> bool:
        return entry.flow_id >= self.sizes.flow_entries

    def overflow_index(self, entry: FlowEntry) -> int:
        """Index into the overflow register arrays (flow id minus the main size)."""
        return entry.flow_id - self.sizes.flow_entries

    # -- changes ---------------------------------------------------------
    def allocate(
        self,
        key: FlowKey | int,
        action: FlowAction,
        *,
        in_port: int = 0,
        forward: bool = True,
        bucket_hash: int | None = None,
        now: float | None = None,
    ) -> FlowEntry | None:
        """Add a PENDING_ADD entry in a free slot of the key's bucket.

        ``key`` is a FlowKey or its packed integer. Returns ``None`` when the
        main bucket and its overflow list are both full (the caller records
        TABLE_FULL). Raises :class:`DuplicateFlow` when the key is already
        present.
        """
        packed = _packed(key)
        if packed in self._by_key:
            raise DuplicateFlow(str(FlowKey.unpack(packed)))
        slot = self.allocator.find(bucket_hash_of(packed) if bucket_hash is None else bucket_hash)
        if slot is None:
            return None
        entry = FlowEntry(
            key=packed,
            flow_id=slot,
            action=self.actions.intern(action),
            in_port=in_port,
            forward=forward,
            changed=time.monotonic() if now is None else now,
        )
        self._by_key[packed] = entry
        self._by_slot[slot] = entry
        self._by_state[FlowState.PENDING_ADD][entry] = None
        return entry

    def add_failed(
        self, key: FlowKey | int, action: FlowAction, reason: str, *, in_port: int = 0,
        forward: bool = True, now: float | None = None,
    ) -> FlowEntry:
        """Record a flow that could not be given a slot (``flow_id`` -1), as FAILED.

        It is indexed by key and state, so operators see it and a later
        digest for the same key retries it, but it holds no slot.
        """
        packed = _packed(key)
        if packed in self._by_key:
            raise DuplicateFlow(str(FlowKey.unpack(packed)))
        entry = FlowEntry(
            key=packed, flow_id=NO_SLOT, action=self.actions.intern(action),
            state=FlowState.FAILED, in_port=in_port, forward=forward,
            changed=time.monotonic() if now is None else now, reason=reason,
        )
        self._by_key[packed] = entry
        self._by_state[FlowState.FAILED][entry] = None
        return entry

    def move(
        self, entry: FlowEntry, new: FlowState, *, reason: str | None = None,
        now: float | None = None,
    ) -> None:
        """Change an entry's state (legal transitions only); REMOVED drops it."""
        old = entry.move(new, time.monotonic() if now is None else now, reason)
        del self._by_state[old][entry]
        if new is FlowState.REMOVED:
            self._forget(entry)
        else:
            self._by_state[new][entry] = None

    def release_slot(self, entry: FlowEntry) -> None:
        """Free the slot of a FAILED entry that is not on the switch; the record stays.

        A write the switch refused left nothing there, so its slot must not
        keep the next flow of its bucket out (a bucket holds four). The
        record keeps its reason, for operators and for a retry, with flow id
        ``NO_SLOT`` as a TABLE_FULL record has.
        """
        if entry.state is not FlowState.FAILED:
            raise ValueError(f"only a FAILED entry gives up its slot, not {entry!r}")
        slot = entry.flow_id
        if slot != NO_SLOT and self._by_slot[slot] is entry:
            self._by_slot[slot] = None
        entry.flow_id = NO_SLOT

    def set_action(self, entry: FlowEntry, action: FlowAction) -> None:
        entry.action = self.actions.intern(action)

    def pair(self, a: FlowEntry, b: FlowEntry) -> None:
        a.partner = b
        b.partner = a

    def discard(self, entry: FlowEntry) -> None:
        """Drop an entry that never reached the switch (e.g. its batch was not sent)."""
        del self._by_state[entry.state][entry]
        self._forget(entry)

    def _forget(self, entry: FlowEntry) -> None:
        if self._by_key.get(entry.key) is entry:
            del self._by_key[entry.key]
        if entry.flow_id != NO_SLOT and self._by_slot[entry.flow_id] is entry:
            self._by_slot[entry.flow_id] = None
        partner = entry.partner
        if partner is not None and partner.partner is entry:
            partner.partner = None
        entry.partner = None


def _packed(key: FlowKey | int) -> int:
    return key if isinstance(key, int) else key.packed()
