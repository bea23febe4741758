"""INSERT and DELETE of plain entries in all-exact tables, read in one pass.

A flow controller writes two entries per new flow and deletes them when the
flow ages, so these two updates are most of what the switch's P4Runtime
service does under load. The general path (``DeviceMgr._write_one``) walks
PI's whole chain of checks for every update, and reads each of the entry's
thirty-odd fields through the protobuf runtime, which makes a Python object
for every sub-message it touches: that, not the checks, was most of the
cost of a write.

Here each update is read from the request's bytes, as they arrived
(:class:`p4ctl.switch.write_request.ReceivedWrite` gives their spans), by
one regular expression compiled per pipeline from its P4Info. It only
accepts the plain form: an INSERT or DELETE of a table entry in a direct,
mutable, all-exact table, its match fields in P4Info order, for an INSERT
an action the table allows in entries with its parameters in P4Info order,
and an optional idle timeout; no priority, default-entry flag, metadata,
direct resources or unknown fields. Every piece of framing (tags, ids,
lengths) is spelled out for each possible value length, from the same
pieces the controller splices its entries from (``p4ctl.p4rt.wire``), so a
match reads each value from where the protobuf parser would; a value as
long as its field's bytes has its first byte bounded, so a match also fits
the field's width. The lengths that enclose a variable part are checked
after the match.

Anything else (another order, another kind of entity, a value wider than its
field, an action the table does not allow, a duplicate or missing entry, a
full table) is *declined* without any side effect, and the general path
then applies the update or gives PI's error for it. So the fast path never
decides an error, and a client sees the same answers with or without it
(``tests/unit/switch/test_exact_writes.py`` runs both paths side by side).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from p4.config.v1 import p4info_pb2
from p4.v1 import p4runtime_pb2

from p4ctl.p4rt.wire import (
    LEN,
    VARINT,
    exact_match_head,
    field_number,
    param_head,
    read_varint,
    tag,
    varint,
)
from p4ctl.switch.p4info_map import P4InfoMap, TableMap
from p4ctl.switch.state import StateError, Table, TableEntry

__all__ = ["ExactTableWrites", "Plain"]

_DEFAULT_ONLY = p4info_pb2.ActionRef.DEFAULT_ONLY
_INSERT = p4runtime_pb2.Update.INSERT
_DELETE = p4runtime_pb2.Update.DELETE
_TE = p4runtime_pb2.TableEntry
_TABLE_ID_TAG = tag(field_number(_TE.DESCRIPTOR, "table_id"), VARINT)
_ACTION_ID_TAG = tag(field_number(p4runtime_pb2.Action.DESCRIPTOR, "action_id"), VARINT)
_INT64_SIGN = 1 << 63

#: a length of one or two varint bytes (longer entries take the general path)
_LENGTH = rb"([\x80-\xff]?[\x00-\x7f])"
#: the longest entry the fast path reads, and the lengths up to its entity's, as varints
_MAX_ENTRY = 1000
_LENGTHS = [varint(n) for n in range(_MAX_ENTRY + 4)]
#: a varint of up to ten bytes
_VARINT = rb"([\x80-\xff]{0,9}[\x00-\x7f])"


def _value(head_of: Callable[[int], bytes], width: int) -> bytes:
    """One capture group for a value of 1 to its bytes' length, each length with its framing.

    A value as long as its bytes may still be wider than ``width`` bits: the
    pattern bounds its first byte, so a matched value always fits.
    """
    nbytes = (width + 7) // 8
    alternatives = [re.escape(head_of(n)) + b"(.{%d})" % n for n in range(1, nbytes)]
    top = (1 << (width - 8 * (nbytes - 1))) - 1
    alternatives.append(re.escape(head_of(nbytes)) + b"([\\x00-\\x%02x].{%d})" % (top, nbytes - 1))
    return b"(?:" + b"|".join(alternatives) + b")"


@dataclass(slots=True)
class _Action:
    name: str
    #: how many parameters it takes
    params: int


@dataclass(slots=True)
class _ExactTable:
    table: Table
    #: how many match fields it has
    fields: int
    #: action id's varint -> the action, for those the table allows in entries
    actions: dict[bytes, _Action]
    idle_timeout: bool


#: a plain update as read: the table, the key, the action (None for a DELETE),
#: its arguments and its idle timeout
Plain = tuple[_ExactTable, tuple[int, ...], _Action | None, tuple[int, ...], int]


def _eligible(tm: TableMap) -> bool:
    """Direct, all-exact, and writable by the control plane."""
    return (
        tm.exact_fields is not None
        and not tm.requires_priority
        and tm.implementation_id == 0
        and not tm.is_const
        and not tm.table.has_const_entries
    )


class ExactTableWrites:
    """The fast path for one pipeline's all-exact tables."""

    __slots__ = ("_idle", "_regex", "_tables")

    def __init__(self, pmap: P4InfoMap) -> None:
        self._tables: dict[bytes, _ExactTable] = {}
        self._idle: dict[bytes, int] = {}
        tables = []
        for tm in pmap.tables.values():
            if not _eligible(tm):
                continue
            assert tm.exact_fields is not None
            actions: dict[bytes, _Action] = {}
            bodies = []
            for action_id, scope in sorted(tm.actions.items()):
                am = pmap.actions.get(action_id)
                if am is None or scope == _DEFAULT_ONLY:
                    continue
                aid = varint(action_id)
                actions[aid] = _Action(am.name, len(am.param_order))
                bodies.append(re.escape(_ACTION_ID_TAG) + b"(" + re.escape(aid) + b")" + b"".join(
                    _value(partial(param_head, pid), w) for pid, w in am.param_order))
            tid = varint(tm.id)
            self._tables[tid] = _ExactTable(
                tm.table, len(tm.exact_fields), actions, tm.supports_idle_timeout
            )
            action = b""
            if bodies:
                action = (b"(?:" + re.escape(tag(field_number(_TE.DESCRIPTOR, "action"), LEN))
                          + rb"([\x00-\x7f])"
                          + re.escape(tag(field_number(p4runtime_pb2.TableAction.DESCRIPTOR,
                                                       "action"), LEN))
                          + rb"([\x00-\x7f])(" + b"|".join(bodies) + b"))?")
            tables.append(
                re.escape(_TABLE_ID_TAG) + b"(" + re.escape(tid) + b")"
                + b"".join(_value(partial(exact_match_head, fid), w)
                           for fid, w in tm.exact_fields)
                + action
                + b"(?:" + re.escape(tag(field_number(_TE.DESCRIPTOR, "idle_timeout_ns"), VARINT))
                + _VARINT + b")?"
            )
        self._regex: re.Pattern[bytes] | None = None
        if tables:
            update, entity = p4runtime_pb2.Update.DESCRIPTOR, p4runtime_pb2.Entity.DESCRIPTOR
            self._regex = re.compile(
                re.escape(tag(field_number(update, "type"), VARINT))
                + b"([" + re.escape(varint(_INSERT) + varint(_DELETE)) + b"])"
                + re.escape(tag(field_number(update, "entity"), LEN)) + _LENGTH
                + re.escape(tag(field_number(entity, "table_entry"), LEN)) + _LENGTH
                + b"(" + b"|".join(tables) + b")",
                re.DOTALL,
            )

    def read(self, data: bytes, start: int, end: int) -> Plain | None:
        """The plain INSERT or DELETE serialized in ``data[start:end]``, or None.

        Only reads: a result means the bytes are a well-formed Update, every
        length in them checked, whose fields the protobuf runtime would read
        as these.
        """
        if self._regex is None:
            return None
        m = self._regex.fullmatch(data, start, end)
        if m is None:
            return None
        # Each alternative's groups, in order, without those of the others
        # (no group matches an empty string): type, the entity's and the
        # entry's lengths, the entry, its table id, the match values, then
        # (action) its two lengths, body, id and parameters, then (idle
        # timeout) its varint. Every value fits its width (the pattern says so).
        g = tuple(filter(None, m.groups()))
        size = len(g[3])
        if (size > _MAX_ENTRY or g[2] != _LENGTHS[size]
                or g[1] != _LENGTHS[1 + len(g[2]) + size]):
            # The entry's or the entity's own length says it ends before the
            # update does: what the pattern took for its last fields belongs
            # to what is around it (or the bytes are not a message at all).
            # (Or a varint is longer than it needs to be, which the protobuf
            # runtime accepts: the general path reads that.)
            return None
        t = self._tables[g[4]]
        n = 5 + t.fields
        key = tuple(map(int.from_bytes, g[5:n]))
        if g[0][0] == _DELETE:
            if len(g) > n:  # an action or a timeout on a DELETE: left to the general path
                return None
            return t, key, None, (), 0
        if len(g) < n + 4:
            return None  # no action
        body = g[n + 2]
        size = g[n + 1][0]
        if len(body) != size or g[n][0] != size + 2:
            return None
        action = t.actions[g[n + 3]]
        k = n + 4 + action.params
        args = tuple(map(int.from_bytes, g[n + 4:k]))
        ttl = 0
        if len(g) > k:
            raw = g[k]
            ttl = self._idle.get(raw, -1)
            if ttl < 0:
                ttl = read_varint(raw, 0)[0]
                if ttl >= _INT64_SIGN:  # a negative timeout: PI's error
                    return None
                if len(self._idle) < 64:
                    self._idle[raw] = ttl
            if ttl and not t.idle_timeout:
                return None
        return t, key, action, args, ttl

    @staticmethod
    def apply(update: Plain, now_ns: int,
              on_delete: Callable[[TableEntry], None] | None = None) -> bool:
        """Apply an update :meth:`read` returned; False to decline (nothing changed).

        ``now_ns``: the new entry's last hit. ``on_delete`` is told of an
        entry this removes.
        """
        t, key, action, args, ttl = update
        if action is None:
            gone = t.table.pop(key, 0)
            if gone is None:
                return False
            if on_delete is not None:
                on_delete(gone)
            return True
        try:
            t.table.insert(TableEntry(key, 0, action.name, args, ttl, now_ns), checked=True)
        except StateError:  # a duplicate or a full table: the general path says which
            return False
        return True
