"""Idle notifications in the spec's rhythm: BMv2's 2 s repeats fold into one per TTL."""

from __future__ import annotations

from p4.v1 import p4runtime_pb2

from p4ctl.p4rt.idle import IdleRepeatFilter, entry_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def entry(port: int, ttl_s: float) -> p4runtime_pb2.TableEntry:
    msg = p4runtime_pb2.TableEntry(table_id=1, idle_timeout_ns=int(ttl_s * 1e9))
    msg.match.add(field_id=1).exact.value = bytes([port])
    return msg


def test_bmv2_repeats_every_two_seconds_become_one_per_ttl() -> None:
    clock = Clock()
    filt = IdleRepeatFilter(clock)
    delivered = []
    # BMv2: first report at the TTL, then again about every 2 s while idle
    for t in range(10, 41, 2):
        clock.now = float(t)
        if filt.admit(entry(1, 10)):
            delivered.append(t)
    assert delivered == [10, 20, 30, 40]
    assert filt.suppressed == 12


def test_spec_server_notifications_all_pass() -> None:
    clock = Clock()
    filt = IdleRepeatFilter(clock)
    # a conformant server: one notification per TTL (plus some scan delay)
    for t in [5.0, 10.01, 15.0, 20.2]:
        clock.now = t
        assert filt.admit(entry(1, 5)), t


def test_entries_are_independent_and_forgotten_on_modify() -> None:
    clock = Clock()
    filt = IdleRepeatFilter(clock)
    assert filt.admit(entry(1, 10)) and filt.admit(entry(2, 10))
    clock.now = 2
    assert not filt.admit(entry(1, 10))
    filt.forget(entry(1, 10))  # the client modified or deleted it: the timer restarts
    assert filt.admit(entry(1, 10))


def test_stale_entries_are_pruned() -> None:
    clock = Clock()
    filt = IdleRepeatFilter(clock)
    filt.admit(entry(1, 1))
    clock.now = 100
    filt.admit(entry(2, 1))
    assert len(filt) == 1


def test_key_ignores_match_order() -> None:
    a = p4runtime_pb2.TableEntry(table_id=1)
    a.match.add(field_id=1).exact.value = b"\x01"
    a.match.add(field_id=2).exact.value = b"\x02"
    b = p4runtime_pb2.TableEntry(table_id=1)
    b.match.add(field_id=2).exact.value = b"\x02"
    b.match.add(field_id=1).exact.value = b"\x01"
    assert entry_key(a) == entry_key(b)


def test_the_filter_remembers_a_bounded_number_of_entries() -> None:
    """Entries with a TTL too long to be forgotten, or entries nobody wrote that a
    broken switch reports, push the oldest out rather than grow the filter."""
    filt = IdleRepeatFilter(Clock())
    filt.max_entries = 100

    def never(port: int) -> p4runtime_pb2.TableEntry:  # a TTL no pruning rule forgets
        msg = entry(port, 1)
        msg.idle_timeout_ns = 2**63 - 1
        return msg

    for port in range(250):
        assert filt.admit(never(port))
    assert len(filt) == 100
    assert filt.admit(never(0))  # pushed out long ago: new again
    assert not filt.admit(never(249))  # still remembered: a repeat
