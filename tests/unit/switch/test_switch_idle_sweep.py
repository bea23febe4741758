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

from p4ctl.switch.idle import IdleMonitor
from p4ctl.switch.p4info_map import MatchFieldMap
from p4ctl.switch.state import ActionInfo, MatchFieldInfo, Table, TableEntry

MS = 1_000_000


class Recorder(IdleMonitor):
    """The monitor with notifications recorded instead of sent."""

    def __init__(self, tables: list[SimpleNamespace], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(tables, lambda msg: None, loop)  # type: ignore[arg-type]
        self.reported: list[TableEntry] = []

    def _report(self, tm, entries: list[TableEntry], ranks: list[int]) -> None:  # type: ignore[override]
        self.reported += [entries[i] for i in sorted(range(len(entries)), key=ranks.__getitem__)]


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


def test_a_sweep_keeps_pis_first_1000_in_table_order_and_counts_the_rest(loop) -> None:
    """A controller that is gone leaves every entry idle; PI's queue holds 1000 of them."""
    table = timed_table()
    sent: list[p4runtime_pb2.StreamMessageResponse] = []
    tm = SimpleNamespace(id=7, table=table, supports_idle_timeout=True,
                         match_fields=[MatchFieldMap(1, "k", 32, "exact", 0)])
    monitor = IdleMonitor([tm], sent.append, loop)  # type: ignore[list-item]
    rng = random.Random(1)
    keys = rng.sample(range(1, 1 << 32), 1500)
    for key in keys:  # inserted in this order: the table's order, not the deadlines'
        table.insert(TableEntry((key,), 0, "fwd", (1,), ttl_ns=5 * MS,
                                last_hit_ns=rng.randrange(90, 105) * MS))
    seen = []
    for t in (110, 111, 112):
        monitor.sweep(t * MS)
        monitor._flush()
        seen.append([int.from_bytes(te.match[0].exact.value, "big")
                     for msg in sent for te in msg.idle_timeout_notification.table_entry])
        sent.clear()
    assert seen == [keys[:1000], [], keys[:1000]]  # every second sweep, as BMv2
    assert monitor.dropped == 1000
