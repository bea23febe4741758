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
the field's width. Each value has one group, and each table and action
groups of its own, so the group that closed last says what was read
(``_Shape``) and the values are taken by slicing ``Match.groups()``. The
lengths that enclose a variable part are checked after the match.

Anything else (another order, another kind of entity, a value wider than its
field, an action the table does not allow, a duplicate or missing entry, a
full table) is *declined* without any side effect, and the general path
then applies the update or gives PI's error for it. So the fast path never
decides an error, and a client sees the same answers with or without it
(``tests/unit/switch/test_exact_writes.py`` runs both paths side by side).
"""

from __future__ import annotations

import dataclasses
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
    value_pattern,
    varint,
)
from p4ctl.switch.p4info_map import P4InfoMap, TableMap
from p4ctl.switch.state import Table, TableEntry

__all__ = ["ExactTableWrites", "Plain"]

_DEFAULT_ONLY = p4info_pb2.ActionRef.DEFAULT_ONLY
_INSERT = p4runtime_pb2.Update.INSERT
_DELETE = p4runtime_pb2.Update.DELETE
_TE = p4runtime_pb2.TableEntry
_TABLE_ID_TAG = tag(field_number(_TE.DESCRIPTOR, "table_id"), VARINT)
_ACTION_ID_TAG = tag(field_number(p4runtime_pb2.Action.DESCRIPTOR, "action_id"), VARINT)
_DELETE_BYTE = varint(_DELETE)

#: a length of one or two varint bytes (longer entries take the general path)
_LENGTH = rb"([\x80-\xff]?[\x00-\x7f])"
#: the longest entry the fast path reads, and the lengths up to its entity's, as varints
_MAX_ENTRY = 1000
_LENGTHS = [varint(n) for n in range(_MAX_ENTRY + 4)]
#: a varint of up to nine bytes: a timeout below 2**63 (a negative one takes ten)
_TIMEOUT = rb"([\x80-\xff]{0,8}[\x00-\x7f])"
#: one byte of a TableAction's or an Action's length (longer actions take the general path)
_SHORT = rb"[\x00-\x7f]"


@dataclass(slots=True)
class _Action:
    name: str
    #: how many parameters it takes
    params: int


@dataclass(slots=True, frozen=True)
class _Shape:
    """What a match read, known from its last group (``Match.lastindex``).

    Every table has its own key groups, and every action of it its own id,
    parameter and timeout groups, so the group that closed last says which
    table, which action (or none) and whether a timeout was there. Indexes
    are into ``Match.groups()``; ``action_id`` is a group number.
    """

    table: Table
    keys: slice
    action: _Action | None
    action_id: int
    params: slice
    timeout: int = -1


#: a plain update as read: the table, the key, the action (None for a DELETE),
#: its arguments and its idle timeout
Plain = tuple[Table, tuple[int, ...], _Action | None, tuple[int, ...], int]


def _eligible(tm: TableMap) -> bool:
    """Direct, all-exact with a key, and writable by the control plane."""
    return (
        bool(tm.exact_fields)
        and not tm.requires_priority
        and tm.implementation_id == 0
        and not tm.is_const
        and not tm.table.has_const_entries
        and tm.table.is_exact
    )


class _Groups:
    """Numbers capture groups as a pattern is written, left to right."""

    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count

    def take(self, pattern: bytes) -> int:
        """The number of the last group ``pattern`` opens (which must open at least one)."""
        self.count += re.compile(pattern, re.DOTALL).groups
        return self.count


class ExactTableWrites:
    """The fast path for one pipeline's all-exact tables."""

    __slots__ = ("_idle", "_regex", "_shapes")

    def __init__(self, pmap: P4InfoMap) -> None:
        self._shapes: dict[int, _Shape] = {}
        self._idle: dict[bytes, int] = {}
        groups = _Groups(3)  # the update's type, the entity's and the entry's lengths
        tables = []
        for tm in pmap.tables.values():
            if not _eligible(tm):
                continue
            assert tm.exact_fields is not None
            table = tm.table
            first = groups.count
            keys = b"".join(value_pattern(partial(exact_match_head, fid), w)
                            for fid, w in tm.exact_fields)
            key_groups = slice(first, groups.take(keys))
            self._shapes[groups.count] = _Shape(table, key_groups, None, 0, slice(0))
            bodies = []
            for action_id, scope in sorted(tm.actions.items()):
                am = pmap.actions.get(action_id)
                if am is None or scope == _DEFAULT_ONLY or am.name not in table.action_names:
                    continue
                action = _Action(am.name, len(am.param_order))
                head = (re.escape(tag(field_number(_TE.DESCRIPTOR, "action"), LEN)) + _SHORT
                        + re.escape(tag(field_number(p4runtime_pb2.TableAction.DESCRIPTOR,
                                                     "action"), LEN)) + _SHORT
                        + re.escape(_ACTION_ID_TAG) + b"(" + re.escape(varint(action_id)) + b")")
                aid = groups.take(head)
                params = b"".join(value_pattern(partial(param_head, pid), w)
                                   for pid, w in am.param_order)
                last = groups.take(params) if params else aid
                shape = _Shape(table, key_groups, action, aid, slice(aid, last))
                self._shapes[last] = shape
                body = head + params
                if tm.supports_idle_timeout:
                    timeout = re.escape(
                        tag(field_number(_TE.DESCRIPTOR, "idle_timeout_ns"), VARINT)) + _TIMEOUT
                    last = groups.take(timeout)
                    self._shapes[last] = dataclasses.replace(shape, timeout=last - 1)
                    body += b"(?:" + timeout + b")?"
                bodies.append(body)
            tables.append(
                re.escape(_TABLE_ID_TAG) + re.escape(varint(tm.id)) + keys
                + (b"(?:" + b"|".join(bodies) + b")?" if bodies else b"")
            )
        self._regex: re.Pattern[bytes] | None = None
        if tables:
            update, entity = p4runtime_pb2.Update.DESCRIPTOR, p4runtime_pb2.Entity.DESCRIPTOR
            self._regex = re.compile(
                re.escape(tag(field_number(update, "type"), VARINT))
                + b"([" + re.escape(varint(_INSERT) + varint(_DELETE)) + b"])"
                + re.escape(tag(field_number(update, "entity"), LEN)) + _LENGTH
                + re.escape(tag(field_number(entity, "table_entry"), LEN)) + _LENGTH
                + b"(?:" + b"|".join(tables) + b")",
                re.DOTALL,
            )
            assert self._regex.groups == groups.count

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
        shape = self._shapes[m.lastindex]  # type: ignore[index]
        g = m.groups()
        kind, entity, entry = g[0], g[1], g[2]
        # The update is its type, the entity's tag and length, the entry's
        # tag and length, then the entry, to the end.
        size = end - start - 4 - len(entity) - len(entry)
        if (size > _MAX_ENTRY or entry != _LENGTHS[size]
                or entity != _LENGTHS[1 + len(entry) + size]):
            # The entry's or the entity's own length says it ends before the
            # update does: what the pattern took for its last fields belongs
            # to what is around it (or the bytes are not a message at all).
            # (Or a varint is longer than it needs to be, which the protobuf
            # runtime accepts: the general path reads that.)
            return None
        key = tuple(map(int.from_bytes, g[shape.keys]))
        action = shape.action
        if kind == _DELETE_BYTE:
            # an action or a timeout on a DELETE: left to the general path
            return None if action is not None else (shape.table, key, None, (), 0)
        if action is None:
            return None  # an INSERT without an action
        # The action's body runs from its id's tag to the timeout or the end;
        # the TableAction around it is its tag and one length byte longer.
        body = m.start(shape.action_id) - 1
        tail, ttl = end, 0
        if shape.timeout >= 0:
            raw = g[shape.timeout]
            tail -= 1 + len(raw)
            ttl = self._idle.get(raw, -1)
            if ttl < 0:
                ttl = read_varint(raw, 0)[0]
                if len(self._idle) < 64:
                    self._idle[raw] = ttl
        size = data[body - 1]
        if tail - body != size or data[body - 3] != size + 2:
            return None
        return shape.table, key, action, tuple(map(int.from_bytes, g[shape.params])), ttl

    @staticmethod
    def apply(update: Plain, now_ns: int,
              on_delete: Callable[[TableEntry], None] | None = None) -> bool:
        """Apply an update :meth:`read` returned; False to decline (nothing changed).

        ``now_ns``: the new entry's last hit. ``on_delete`` is told of an
        entry this removes.
        """
        t, key, action, args, ttl = update
        if action is None:
            gone = t.pop(key, 0)
            if gone is None:
                return False
            if on_delete is not None:
                on_delete(gone)
            return True
        # a duplicate or a full table is declined: the general path says which
        return t.add_exact(TableEntry(key, 0, action.name, args, ttl, now_ns))
