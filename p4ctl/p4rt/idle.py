"""Idle-timeout notifications in the specification's rhythm, whatever the target's.

The specification (section "Table Idle Timeout Notification") resets an
entry's timer when it is notified, so an entry that stays idle is notified
again once per TTL. BMv2 does not: its ageing sweep (every 1000 ms) skips
only the entries it reported in the previous sweep and never resets their
timestamp, so an idle entry is reported again about every 2 s whatever its TTL
(behavioral-model ``src/bm_sim/ageing.cpp``). A controller with 180 s TTLs
would see each idle entry ninety times a TTL.

:class:`IdleRepeatFilter` delivers an entry's notification only if the same
entry was not delivered during the last 90 % of its TTL. That passes every
notification a conformant server sends (it resets the timer when it notifies,
so two notifications are at least a TTL apart, plus scan delay; the 10 %
margin absorbs transit jitter) and folds BMv2's repeats into one per TTL. An
entry is forgotten when this client modifies or deletes it (the server's
timer restarts) and when it has not been reported for a while (it was hit, or
removed behind our back).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from p4.v1 import p4runtime_pb2

__all__ = ["IdleRepeatFilter", "entry_key"]

EntryKey = tuple[int, bytes, int]


def entry_key(entry: p4runtime_pb2.TableEntry) -> EntryKey:
    """What identifies a table entry on the switch: table id, match (by field id), priority."""
    matches = sorted(entry.match, key=lambda fm: fm.field_id)
    return entry.table_id, b"".join(fm.SerializeToString() for fm in matches), entry.priority


@dataclass(slots=True)
class _Seen:
    delivered: float
    reported: float
    ttl_s: float


class IdleRepeatFilter:
    """Suppresses repeated idle notifications of one entry within 90 % of its TTL."""

    #: forget entries not reported for this many TTLs (and at least ``min_forget_s``)
    forget_after_ttls = 3.0
    min_forget_s = 10.0
    #: fraction of the TTL during which a repeat is suppressed
    window = 0.9
    #: entries remembered at most (twice the flow table): entries with a TTL
    #: too long to be forgotten by the rule above, or a switch that reports
    #: entries nobody wrote, must not grow the filter for ever; the oldest go
    max_entries = 1 << 20

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[EntryKey, _Seen] = {}
        self._last_prune = clock()
        self.suppressed = 0

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, entry: p4runtime_pb2.TableEntry) -> bool:
        """True if this notification of ``entry`` should reach the handlers."""
        now = self._clock()
        key = entry_key(entry)
        ttl_s = entry.idle_timeout_ns / 1e9
        seen = self._seen.get(key)
        if seen is None or now - seen.delivered >= ttl_s * self.window:
            self._seen[key] = _Seen(now, now, ttl_s)
            if len(self._seen) > self.max_entries:
                del self._seen[next(iter(self._seen))]
            self._maybe_prune(now)
            return True
        seen.reported = now
        self.suppressed += 1
        return False

    def filter(
        self, msg: p4runtime_pb2.IdleTimeoutNotification
    ) -> list[p4runtime_pb2.TableEntry]:
        return [e for e in msg.table_entry if self.admit(e)]

    def forget(self, entry: p4runtime_pb2.TableEntry) -> None:
        """The entry was modified or deleted: its next notification is new."""
        if self._seen:
            self._seen.pop(entry_key(entry), None)

    def clear(self) -> None:
        self._seen.clear()

    def _maybe_prune(self, now: float) -> None:
        if now - self._last_prune < self.min_forget_s:
            return
        self._last_prune = now
        stale = [
            k
            for k, s in self._seen.items()
            if now - s.reported > max(self.forget_after_ttls * s.ttl_s, self.min_forget_s)
        ]
        for k in stale:
            del self._seen[k]
