"""Idle-timeout notifications and ``time_since_last_hit``, with BMv2's timing.

Two stages, as on ``simple_switch_grpc``:

1. **BMv2's ageing monitor** (p4lang/behavioral-model
   ``src/bm_sim/ageing.cpp``, ``match_units.cpp``): every ``sweep_interval``
   (1000 ms, fixed rate, first sweep at start) each table with
   ``support_timeout`` is scanned; an entry is *aged* when its TTL in whole
   milliseconds (``idle_timeout_ns / 1e6``, truncated: a TTL under 1 ms never
   expires) is > 0 and ``now_ms - last_hit_ms >= ttl_ms``. Aged entries are
   reported, except those reported by the previous sweep; the timestamp is
   never reset, so an entry that stays idle is reported every *second*
   sweep, about every 2 s, not every TTL as the specification says.
   Inserting or modifying an entry restarts its timer (``set_entry_ttl``).
2. **PI's IdleTimeoutBuffer** (p4lang/PI
   ``proto/frontend/src/idle_timeout_buffer.cpp``): reported entries are
   collected, and ``max_buffering`` (100 ms) after the first one the batch is
   sent as one ``IdleTimeoutNotification`` to the primary (dropped if there is
   none). Each entry carries table id, match, priority,
   ``controller_metadata`` and ``idle_timeout_ns`` (not ``metadata``: PI does
   not include it).

BMv2 scans every entry at every sweep, in C++ on a thread of its own. Here
the sweep runs on the switch's only thread, and a scan of 512k entries took
about 100 ms each second. So each table keeps its timed entries in a heap by
deadline (last hit + TTL, in BMv2's whole milliseconds): a sweep looks only
at the entries whose deadline has passed, re-queues those hit since, and
looks again at those it reported two sweeps ago (the sweep in between skips
them whatever it would find). It finds the same entries at the same sweep
as a full scan, and reports them in table order. When every entry is idle
and nobody deletes them (the controller is gone), a sweep still walks the
half it may report, about 1 us an entry: the timer's sweeps run in slices
(``SWEEP_SLICE``) with the event loop's other work in between.

``time_since_last_hit`` is PI's derivation from BMv2's remaining TTL
(``DeviceMgrImp::set_time_since_last_hit``, ``pi_tables_imp.cpp``
``_pi_table_entry_get_remaining_ttl``): 0 for an entry without TTL (a known
departure from the specification), otherwise
``ttl_ns - max(ttl_ms - idle_ms, 0) * 1e6``, i.e. it never exceeds the TTL.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable, Generator

from p4.v1 import p4runtime_pb2

from p4ctl.switch.p4info_map import TableMap
from p4ctl.switch.state import Table, TableEntry
from p4ctl.switch.table_codec import key_to_proto

log = logging.getLogger(__name__)

__all__ = ["IdleMonitor", "time_since_last_hit_ns"]

BMV2_SWEEP_INTERVAL_S = 1.0
PI_MAX_BUFFERING_S = 0.1
#: entries a timer-driven sweep looks at before it lets the event loop run
#: (about 1 ms of work)
SWEEP_SLICE = 1024
#: PI drops notifications beyond this many queued (``max_queue_size``).
PI_MAX_QUEUE = 1000

Send = Callable[[p4runtime_pb2.StreamMessageResponse], None]


def time_since_last_hit_ns(entry: TableEntry, now_ns: int | None = None) -> int:
    """What PI answers for ``time_since_last_hit`` on BMv2 (see module docstring)."""
    ttl_ns = entry.ttl_ns
    if ttl_ns == 0:
        return 0
    now_ms = (time.monotonic_ns() if now_ns is None else now_ns) // 1_000_000
    idle_ms = now_ms - entry.last_hit_ns // 1_000_000
    ttl_ms = ttl_ns // 1_000_000
    remaining_ns = max(ttl_ms - idle_ms, 0) * 1_000_000
    return ttl_ns - remaining_ns if ttl_ns >= remaining_ns else 0


class _Timers:
    """The timed entries of one table, by deadline (see the module docstring)."""

    __slots__ = ("heap", "reported", "resting", "seq")

    def __init__(self) -> None:
        #: (deadline in ms, tie-breaker, entry); stale items are dropped when popped
        self.heap: list[tuple[int, int, TableEntry]] = []
        #: id -> entry reported by the last sweep: BMv2 skips them once, so the
        #: next sweep does not look at them at all
        self.reported: dict[int, TableEntry] = {}
        #: id -> entry reported by the sweep before that and skipped since: the
        #: next sweep looks at them again (still idle: reported; hit: queued)
        self.resting: dict[int, TableEntry] = {}
        self.seq = itertools.count()

    def push(self, entry: TableEntry, deadline: int | None = None) -> None:
        """Queue ``entry`` by its deadline (computed unless given); never if it has none."""
        if deadline is None:
            deadline = _deadline_ms(entry)
        if deadline is not None:
            heapq.heappush(self.heap, (deadline, next(self.seq), entry))


def _requeue(heap: list[tuple[int, int, TableEntry]], table: Table) -> None:
    """Rebuild a heap that has piled up stale items: one item per entry still timed.

    Items pile up from entries deleted before their deadline, and from
    entries queued again while queued (each MODIFY with a TTL restarts the
    timer and queues the entry). An entry's one item is at its deadline now,
    so it is looked at when it is due, as a full scan would find it.
    """
    items: dict[int, tuple[int, int, TableEntry]] = {}
    for _, seq, entry in heap:
        if id(entry) not in items and table.holds(entry):
            deadline = _deadline_ms(entry)
            if deadline is not None:
                items[id(entry)] = (deadline, seq, entry)
    heap[:] = items.values()
    heapq.heapify(heap)


def _deadline_ms(entry: TableEntry) -> int | None:
    """BMv2's ageing rule: idle from last hit + TTL, in whole ms; None if it never ages."""
    ttl_ms = entry.ttl_ns // 1_000_000
    if ttl_ms <= 0:  # no TTL, or one under 1 ms: never expires on BMv2
        return None
    return entry.last_hit_ns // 1_000_000 + ttl_ms


class IdleMonitor:
    """Sweeps the tables with idle timeout and sends notifications to the primary."""

    def __init__(
        self,
        tables: list[TableMap],
        send: Send,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        sweep_interval: float = BMV2_SWEEP_INTERVAL_S,
        max_buffering: float = PI_MAX_BUFFERING_S,
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        # BMv2 ages the tables the JSON marks with support_timeout; PI only
        # keeps (and so only reports) those the P4Info marks NOTIFY_CONTROL.
        self._tables = [t for t in tables if t.table.support_timeout and t.supports_idle_timeout]
        self._send = send
        self.sweep_interval = sweep_interval
        self.max_buffering = max_buffering
        self._timers: dict[int, _Timers] = {}
        self._watch()
        self._pending: p4runtime_pb2.StreamMessageResponse | None = None
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._send_handle: asyncio.TimerHandle | None = None
        #: the timer-driven sweep in progress, and its next slice
        self._slices: Generator[None, None, None] | None = None
        self._slice_handle: asyncio.Handle | None = None
        #: timer sweeps that came due while one was going
        self._behind = 0
        self._start = 0.0
        #: notifications dropped because PI's queue was full
        self.dropped = 0

    def _watch(self) -> None:
        """Queue every timed entry of the tables, and be told of those timed from now on."""
        for tm in self._tables:
            timers = self._timers[tm.id] = _Timers()
            for entry in tm.table.entries():
                timers.push(entry)
            tm.table.on_timer = timers.push

    def start(self) -> None:
        """Sweep every ``sweep_interval`` from now (the first sweep at once).

        A monitor started again after :meth:`stop` did not see the tables in
        between: it queues their timed entries afresh, as a new one would.
        """
        if not self._tables or self._sweep_handle is not None:
            return
        if any(tm.table.on_timer != self._timers[tm.id].push for tm in self._tables):
            self._watch()
        self._start = self._loop.time()
        self._tick(0)

    def stop(self) -> None:
        for h in (self._sweep_handle, self._send_handle, self._slice_handle):
            if h is not None:
                h.cancel()
        self._sweep_handle = self._send_handle = self._slice_handle = None
        if self._slices is not None:
            self._slices.close()  # what it had not looked at waits for the next sweep
        self._slices = None
        self._behind = 0
        self._pending = None
        for tm in self._tables:
            if tm.table.on_timer == self._timers[tm.id].push:
                tm.table.on_timer = None

    def forget(self, entry: TableEntry) -> None:
        """An entry was deleted: it must not be skipped if its key comes back."""
        for timers in self._timers.values():
            timers.reported.pop(id(entry), None)
            timers.resting.pop(id(entry), None)

    def _tick(self, n: int) -> None:
        if self._slices is None:
            self._slices = self._sweep()
            self._next_slice()
        else:
            # The last sweep is still going. BMv2's sweeper would start this
            # one as soon as that one is done (it waits for a time already
            # past), so none is dropped: it runs next.
            self._behind += 1
            log.debug("idle-timeout sweep %d late: the previous one is not done", n)
        self._sweep_handle = self._loop.call_at(
            self._start + (n + 1) * self.sweep_interval, self._tick, n + 1
        )

    def _next_slice(self) -> None:
        """Run the sweep in progress for one slice, then let packets and RPCs in."""
        self._slice_handle = None
        slices = self._slices
        if slices is None:
            return
        try:
            next(slices)
        except StopIteration:
            self._slices = None
            if not self._behind:
                return
            self._behind -= 1
            self._slices = self._sweep()  # a sweep that came due meanwhile
        except Exception:  # a sweep must never stop the monitor (it left all for the next)
            log.exception("idle-timeout sweep failed")
            self._slices = None
            self._behind = 0
            return
        self._slice_handle = self._loop.call_soon(self._next_slice)

    def sweep(self, now_ns: int | None = None) -> None:
        """One BMv2 ageing sweep over every table with idle timeout, all at once.

        A timer-driven sweep still in progress is finished first: two sweeps
        must not interleave.
        """
        if self._slices is not None:
            if self._slice_handle is not None:
                self._slice_handle.cancel()
            slices, self._slices, self._slice_handle = self._slices, None, None
            self._behind = 0  # this sweep is the one that was due
            for _ in slices:
                pass
        for _ in self._sweep(now_ns):
            pass

    def _sweep(self, now_ns: int | None = None) -> Generator[None, None, None]:
        """One sweep, pausing (``yield``) after every ``SWEEP_SLICE`` entries looked at.

        An entry that stays idle is reported every second sweep, and the
        sweep in between skips it whatever it finds; so each sweep looks only
        at the entries queued past their deadline and at those reported two
        sweeps ago. With many idle entries that no controller deletes (one
        that is gone, say) that is still half of them, about 1 us each: at
        512k entries half a second, in which the switch would forward
        nothing. The timer-driven sweep therefore runs in slices, with the
        event loop's other work in between, as BMv2's sweeps run beside its
        packet threads; an entry hit or deleted during the sweep is seen as
        it is when its slice runs. The notification keeps the first
        ``PI_MAX_QUEUE`` entries in table order and counts the others as
        dropped without touching them.

        A sweep that does not finish (a slice fails, or the monitor stops)
        leaves what it had not reported to be looked at by the next one.
        """
        now_ms = (time.monotonic_ns() if now_ns is None else now_ns) // 1_000_000
        for tm in self._tables:
            table, timers = tm.table, self._timers[tm.id]
            heap = timers.heap
            skipped = timers.reported  # reported last time: they rest this sweep
            due = timers.resting  # reported the time before: looked at again now
            timers.resting = skipped
            reported = timers.reported = {}
            entry = None
            done = False
            try:
                while heap and heap[0][0] <= now_ms:
                    for _ in range(SWEEP_SLICE):
                        if not heap or heap[0][0] > now_ms:
                            break
                        entry = heapq.heappop(heap)[2]
                        if id(entry) not in skipped:
                            due[id(entry)] = entry
                    yield
                held = table.holds
                take = due.popitem  # ``due`` is this sweep's alone; emptied as it goes,
                while due:  # so it is not freed in one piece at the end either
                    for _ in range(min(SWEEP_SLICE, len(due))):
                        entry = take()[1]
                        deadline = _deadline_ms(entry)
                        if deadline is None or not held(entry):
                            continue  # TTL taken away (a new one queues it again), or deleted
                        if now_ms >= deadline:
                            reported[id(entry)] = entry
                        else:
                            timers.push(entry, deadline)  # hit since it was queued
                    yield
                done = True
            finally:
                if not done:  # nothing of this table was reported: all of it waits
                    resting = timers.resting
                    resting.update(due)
                    resting.update(reported)
                    if entry is not None:  # the one in hand (looking twice is harmless)
                        resting[id(entry)] = entry
                    reported.clear()
            if len(heap) > 2 * len(table) + 1024:
                _requeue(heap, table)
            if reported:  # what this sweep found idle (less what was deleted meanwhile)
                self._report(tm, reported)

    def _report(self, tm: TableMap, reported: dict[int, TableEntry]) -> None:
        """Queue one sweep's aged entries of one table (``id`` -> entry) as PI buffers them.

        In table order; what does not fit in PI's queue is counted as dropped.
        """
        if self._pending is None:
            self._pending = p4runtime_pb2.StreamMessageResponse()
            self._send_handle = self._loop.call_later(self.max_buffering, self._flush)
        notification = self._pending.idle_timeout_notification
        room = max(0, PI_MAX_QUEUE - len(notification.table_entry))
        if len(reported) <= room:
            kept = sorted(reported.values(), key=tm.table.rank)
        else:
            self.dropped += len(reported) - room
            kept = self._first_in_table_order(tm, reported, room)
        for entry in kept:
            te = notification.table_entry.add()
            te.table_id = tm.id
            key_to_proto(tm, entry.key, entry.priority, te)
            te.controller_metadata = entry.controller_metadata
            te.idle_timeout_ns = entry.ttl_ns

    @staticmethod
    def _first_in_table_order(tm: TableMap, reported: dict[int, TableEntry],
                              n: int) -> list[TableEntry]:
        """The ``n`` of the ``reported`` entries first in table order, in that order.

        When they are much of the table (a controller gone: all idle), the
        table's own order finds them within a few thousand entries; ranking
        half a million entries instead held the switch for tens of ms.
        """
        if not n:
            return []
        table = tm.table
        if len(reported) * 8 < len(table):
            return heapq.nsmallest(n, reported.values(), key=table.rank)
        kept = []
        for entry in table.in_order():
            if reported.get(id(entry)) is entry:
                kept.append(entry)
                if len(kept) == n:
                    break
        return kept

    def _flush(self) -> None:
        self._send_handle = None
        msg, self._pending = self._pending, None
        if msg is None or not len(msg.idle_timeout_notification.table_entry):
            return
        msg.idle_timeout_notification.timestamp = time.monotonic_ns()
        self._send(msg)
