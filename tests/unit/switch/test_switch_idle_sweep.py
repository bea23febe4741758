"""The idle-timeout sweep finds what BMv2's full scan finds, looking only at due entries.

BMv2 (``ageing.cpp``) scans every entry at every sweep. The software switch
keeps a deadline heap per table instead; these tests drive both through the
same random inserts, hits, modifies and deletes and compare every sweep's
report.
"""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace

import pytest
from p4.v1 import p4runtime_pb2

from p4ctl.switch import idle
from p4ctl.switch.idle import SWEEP_SLICE, IdleMonitor
from p4ctl.switch.p4info_map import MatchFieldMap
from p4ctl.switch.state import ActionInfo, MatchFieldInfo, Table, TableEntry

MS = 1_000_000
Sent = list[p4runtime_pb2.StreamMessageResponse]


class Recorder(IdleMonitor):
    """The monitor with notifications recorded instead of sent."""

    def __init__(self, tables: list[SimpleNamespace], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(tables, lambda msg: None, loop)  # type: ignore[arg-type]
        self.reported: list[TableEntry] = []

    def _report(self, tm, reported: dict[int, TableEntry]) -> None:  # type: ignore[override]
        self.reported += sorted(reported.values(), key=tm.table.rank)


class FullScan:
    """BMv2's sweep: every entry, every time; skip what the previous sweep reported."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.prev: dict[int, TableEntry] = {}

    def sweep(self, now_ms: int) -> list[TableEntry]:
        aged = [e for e in self.table.entries()
                if e.ttl_ns // MS > 0 and now_ms - e.last_hit_ns // MS >= e.ttl_ns // MS]
        fresh = [e for e in aged if self.prev.get(id(e)) is not e]
        self.prev = {id(e): e for e in fresh}
        return fresh

    def forget(self, entry: TableEntry) -> None:
        self.prev.pop(id(entry), None)


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def timed_table(size: int = 4096) -> Table:
    return Table("flows", 7, [MatchFieldInfo("k", "exact", 32)], size, ["fwd"],
                 {"fwd": ActionInfo("fwd", 1, [("port", 9)])}, ("fwd", (0,)),
                 support_timeout=True)


def monitored(table: Table, loop: asyncio.AbstractEventLoop) -> Recorder:
    return Recorder([SimpleNamespace(id=7, table=table, supports_idle_timeout=True)], loop)


def notifying(table: Table, loop: asyncio.AbstractEventLoop, **options: float
              ) -> tuple[IdleMonitor, Sent]:
    """A monitor that builds real notifications, and the list they are sent to."""
    sent: Sent = []
    tm = SimpleNamespace(id=7, table=table, supports_idle_timeout=True,
                         match_fields=[MatchFieldMap(1, "k", 32, "exact", 0)])
    return IdleMonitor([tm], sent.append, loop, **options), sent  # type: ignore[list-item]


def keys_sent(sent: Sent) -> list[int]:
    return [int.from_bytes(te.match[0].exact.value, "big")
            for msg in sent for te in msg.idle_timeout_notification.table_entry]


@pytest.mark.parametrize("seed", range(8))
def test_every_sweep_reports_what_a_full_scan_reports(seed: int, loop) -> None:
    rng = random.Random(seed)
    table = timed_table()
    monitor, reference = monitored(table, loop), FullScan(table)
    ttls = [0, MS // 2, 3 * MS, 10 * MS, 40 * MS, 41 * MS + 7]
    now = 1_000 * MS
    keys: list[int] = []
    reports = 0
    for _ in range(4000):
        op = rng.random()
        if op < 0.35 or not keys:
            key = rng.randrange(1 << 32)
            if table.get((key,), 0) is None:
                table.insert(TableEntry((key,), 0, "fwd", (1,), ttl_ns=rng.choice(ttls),
                                        last_hit_ns=now))
                keys.append(key)
        elif op < 0.6:  # a packet hits an entry
            table.get((rng.choice(keys),), 0).last_hit_ns = now
        elif op < 0.7:  # MODIFY, with or without a TTL, restarts the timer
            entry = table.modify((rng.choice(keys),), 0, "fwd", (2,),
                                 rng.choice([None, *ttls]))
            entry.last_hit_ns = now
        elif op < 0.8:
            key = keys.pop(rng.randrange(len(keys)))
            entry = table.delete((key,), 0)
            monitor.forget(entry)
            reference.forget(entry)
        else:
            now += rng.randrange(0, 15 * MS)
            monitor.reported.clear()
            monitor.sweep(now)
            expected = reference.sweep(now // MS)
            assert monitor.reported == expected
            reports += len(expected)
    assert reports > 50  # the walk did age entries


def test_an_entry_idle_for_its_ttl_is_reported_every_second_sweep(loop) -> None:
    table = timed_table()
    monitor = monitored(table, loop)
    entry = TableEntry((1,), 0, "fwd", (1,), ttl_ns=5 * MS, last_hit_ns=100 * MS)
    table.insert(entry)
    seen = []
    for t in range(100, 112):
        monitor.reported.clear()
        monitor.sweep(t * MS)
        seen.append(bool(monitor.reported))
    assert seen == [False] * 5 + [True, False, True, False, True, False, True]


def test_deleted_entries_do_not_pile_up_in_the_queue(loop) -> None:
    """Entries inserted and deleted within their TTL leave stale items; rebuilds clear them."""
    table = timed_table(size=100)
    monitor = monitored(table, loop)
    now = 1_000 * MS
    for i in range(20_000):
        table.insert(TableEntry((i,), 0, "fwd", (1,), ttl_ns=180_000 * MS, last_hit_ns=now))
        monitor.forget(table.delete((i,), 0))
        if i % 1000 == 0:
            monitor.sweep(now)
    monitor.sweep(now)
    queued = len(monitor._timers[7].heap)
    assert queued <= 2 * len(table) + 1024


@pytest.mark.parametrize("busy", [0, 1_000, 20_000])
def test_a_sweep_keeps_pis_first_1000_in_table_order_and_counts_the_rest(
    loop, busy: int
) -> None:
    """A controller that is gone leaves entries idle; PI's queue holds 1000 of them.

    With 20,000 entries in use among them, the idle ones are a small part of
    the table (found by rank); with fewer, most of it (found by walking the
    table in order).
    """
    table = timed_table(size=1500 + busy)
    monitor, sent = notifying(table, loop)
    rng = random.Random(1)
    keys = rng.sample(range(1, 1 << 32), 1500 + busy)
    idle = set(rng.sample(keys, 1500))
    for key in keys:  # inserted in this order: the table's order, not the deadlines'
        last_hit = rng.randrange(90, 105) if key in idle else 100_000
        table.insert(TableEntry((key,), 0, "fwd", (1,), ttl_ns=5 * MS,
                                last_hit_ns=last_hit * MS))
    first = [key for key in keys if key in idle][:1000]
    seen = []
    for t in (110, 111, 112):
        monitor.sweep(t * MS)
        monitor._flush()
        seen.append(keys_sent(sent))
        sent.clear()
    assert seen == [first, [], first]  # every second sweep, as BMv2
    assert monitor.dropped == 1000


def started_on_idle_entries(n: int) -> tuple[IdleMonitor, Sent]:
    """A monitor started (its first sweep begins) on ``n`` idle entries, keys 1 to ``n``."""
    table = timed_table(size=n)
    monitor, sent = notifying(table, asyncio.get_running_loop(), sweep_interval=3600,
                              max_buffering=0)
    for key in range(1, n + 1):
        table.insert(TableEntry((key,), 0, "fwd", (1,), ttl_ns=5 * MS, last_hit_ns=MS))
    monitor.start()
    return monitor, sent


async def test_a_timed_sweep_of_many_idle_entries_lets_the_event_loop_run() -> None:
    """The switch has one thread: half a second of sweep would stop every packet."""
    monitor, sent = started_on_idle_entries(5 * SWEEP_SLICE)  # finds them all idle at once
    passes = 0
    while not sent:
        passes += 1
        await asyncio.sleep(0)
    assert passes > 5  # this task ran between the sweep's slices
    assert keys_sent(sent) == list(range(1, 1001))
    assert monitor.dropped == 5 * SWEEP_SLICE - 1000

    sent.clear()
    monitor.sweep()  # a sweep run at once skips what the last one reported, as BMv2 does
    monitor.sweep()
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(sent) == 1 and len(sent[0].idle_timeout_notification.table_entry) == 1000
    monitor.stop()


async def test_stopping_the_monitor_ends_a_sweep_in_progress(monkeypatch) -> None:
    monkeypatch.setattr(idle, "SWEEP_SLICE", 4)
    monitor, sent = started_on_idle_entries(30)
    await asyncio.sleep(0)
    monitor.stop()
    for _ in range(20):
        await asyncio.sleep(0)
    assert not sent and monitor.dropped == 0
    # what the stopped sweep had taken in hand is not lost: the next sweep reports it
    monitor.sweep()
    monitor._flush()
    assert keys_sent(sent) == list(range(1, 31))


async def test_a_failed_slice_leaves_its_entries_to_the_next_sweep(monkeypatch) -> None:
    monkeypatch.setattr(idle, "SWEEP_SLICE", 4)
    monitor, sent = started_on_idle_entries(50)  # the first sweep is under way
    table = monitor._tables[0].table
    holds, calls = table.holds, []

    def failing(entry: TableEntry) -> bool:
        calls.append(entry)
        if len(calls) == 10:
            raise RuntimeError("a bug in the middle of a sweep")
        return holds(entry)

    monkeypatch.setattr(table, "holds", failing)
    while monitor._slices is not None:
        await asyncio.sleep(0)
    assert not sent  # that sweep reported nothing
    monkeypatch.setattr(table, "holds", holds)
    monitor.sweep()
    monitor._flush()
    assert keys_sent(sent) == list(range(1, 51))  # every entry is still watched


async def test_a_sweep_due_while_one_runs_comes_right_after_it(monkeypatch) -> None:
    """BMv2's sweeper waits for a time already past: a late sweep runs, none is dropped."""
    monkeypatch.setattr(idle, "SWEEP_SLICE", 4)
    monitor, sent = started_on_idle_entries(40)  # sweep 0 reports all of them
    monitor._tick(1)  # sweep 1 comes due while sweep 0 runs: it skips all of them
    while monitor._slices is not None or not sent:
        await asyncio.sleep(0)
    assert len(keys_sent(sent)) == 40
    sent.clear()
    monitor.sweep()  # so sweep 2 reports them again
    monitor._flush()
    assert keys_sent(sent) == list(range(1, 41))
    monitor.stop()


@pytest.mark.parametrize("seed", range(4))
def test_a_rebuilt_queue_still_reports_what_a_full_scan_reports(seed: int, loop,
                                                                monkeypatch) -> None:
    """The comparison above, with the queue rebuilt before every sweep."""
    sweep = Recorder.sweep

    def rebuilt_first(self: Recorder, now_ns: int | None = None) -> None:
        for tm in self._tables:
            idle._requeue(self._timers[tm.id].heap, tm.table)
        sweep(self, now_ns)

    monkeypatch.setattr(Recorder, "sweep", rebuilt_first)
    test_every_sweep_reports_what_a_full_scan_reports(seed, loop)


def test_entries_modified_again_and_again_keep_one_queued_item_each(loop) -> None:
    """Each MODIFY with a TTL queues the entry again; a rebuild keeps one item per entry."""
    table = timed_table()
    monitor = monitored(table, loop)
    now = 1_000 * MS
    for key in range(10):
        table.insert(TableEntry((key,), 0, "fwd", (1,), ttl_ns=180_000 * MS, last_hit_ns=now))
    for _ in range(300):
        for key in range(10):
            table.modify((key,), 0, "fwd", (2,), 180_000 * MS)
    table.modify((0,), 0, "fwd", (2,), 5 * MS)  # a shorter TTL: due sooner than its old items
    monitor.sweep(now)
    assert len(monitor._timers[7].heap) == 10
    monitor.sweep(now + 5 * MS)
    assert [e.key for e in monitor.reported] == [(0,)]


def test_a_monitor_started_again_watches_what_changed_while_it_was_stopped(loop) -> None:
    table = timed_table()
    monitor = monitored(table, loop)
    monitor.start()
    monitor.stop()
    assert table.on_timer is None
    table.insert(TableEntry((1,), 0, "fwd", (1,), ttl_ns=5 * MS, last_hit_ns=100 * MS))
    monitor.start()
    table.insert(TableEntry((2,), 0, "fwd", (1,), ttl_ns=5 * MS, last_hit_ns=100 * MS))
    monitor.sweep(105 * MS)
    assert [e.key for e in monitor.reported] == [(1,), (2,)]
    monitor.stop()
