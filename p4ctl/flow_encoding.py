"""Flow-table entries as serialized P4Runtime messages, spliced from prepared pieces.

Every new flow costs the controller two table entries, and building them
through the protobuf runtime (a nested message per match field and
parameter, then a copy into the request and a serialization) was the
largest part of its work per flow. Here the pieces that are the same for
every flow are serialized once per pipeline (the table id, each match
field's id and framing for each value length, each action's id and the
parameters a policy rule fixes) and an entry is their concatenation with
the per-flow values: the key's six fields, the flow id and, for NAT, the
translated tuple. Values are canonical (no leading zero bytes), as the
P4Runtime specification asks.

The output is what the protobuf runtime would produce: the tests parse it
back and compare, byte for byte, with entries built field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from p4.v1 import p4runtime_pb2

from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import KEY_FIELDS
from p4ctl.p4rt.encoding import canonical_bytes, encode_uint
from p4ctl.p4rt.wire import (
    LEN,
    exact_match_head,
    field_number,
    len_field,
    param_head,
    tag,
    varint,
    varint_field,
)

_TE = p4runtime_pb2.TableEntry.DESCRIPTOR
_TA = p4runtime_pb2.TableAction.DESCRIPTOR
_ACTION = p4runtime_pb2.Action.DESCRIPTOR
_ENTITY = p4runtime_pb2.Entity.DESCRIPTOR
_UPDATE = p4runtime_pb2.Update.DESCRIPTOR

_ACTION_TAG = tag(field_number(_TE, "action"), LEN)
_IDLE_FIELD = field_number(_TE, "idle_timeout_ns")
_TABLE_ENTRY_TAG = tag(field_number(_ENTITY, "table_entry"), LEN)
_ENTITY_TAG = tag(field_number(_UPDATE, "entity"), LEN)
_UPDATE_TYPE_FIELD = field_number(_UPDATE, "type")
_TYPE_HEADS = {t: varint_field(_UPDATE_TYPE_FIELD, t)
               for t in p4runtime_pb2.Update.Type.values() if t}


def _param(param_id: int, value: bytes) -> bytes:
    return param_head(param_id, len(value)) + value


def _action_field(action_id: int, params: Sequence[tuple[int, bytes]]) -> bytes:
    """``TableEntry.action`` holding a direct action with ``params`` (id, canonical value)."""
    action = varint_field(field_number(_ACTION, "action_id"), action_id) + b"".join(
        _param(pid, value) for pid, value in params
    )
    return len_field(field_number(_TE, "action"),
                     len_field(field_number(_TA, "action"), action))


@dataclass(slots=True, frozen=True)
class FlowActionIds:
    """One flow action's P4Info ids: the action and its (param id, bitwidth), flow id first."""

    id: int
    params: tuple[tuple[int, int], ...]


class FlowEntryEncoder:
    """Serialized flow-table entries and updates for one pipeline's resolved ids.

    ``match`` is the (field id, bitwidth) of each key field in
    :data:`~p4ctl.flows.key.KEY_FIELDS` order; ``actions`` the ids of each
    action kind, whose first parameter is the flow id, ``flow_id_width``
    bits wide.
    """

    def __init__(self, table_id: int, match: Sequence[tuple[int, int]],
                 actions: dict[ActionKind, FlowActionIds], flow_id_width: int) -> None:
        if any(width % 8 for _, width in KEY_FIELDS):
            raise ValueError("flow key fields must be whole bytes to be cut from the packed key")
        self._table = varint_field(field_number(_TE, "table_id"), table_id)
        self._key_bytes = sum(width for _, width in KEY_FIELDS) // 8
        cuts = []
        at = 0
        for _, width in KEY_FIELDS:
            cuts.append((at, at + width // 8))
            at += width // 8
        self._cuts = tuple(cuts)
        # _match_heads[i][n]: field i's FieldMatch framing for an n-byte value
        self._match_heads = tuple(
            tuple(exact_match_head(fid, n) for n in range(width // 8 + 1))
            for fid, width in match
        )
        self._actions = actions
        self._flow_id_width = flow_id_width
        self._fixed: dict[tuple[FlowAction, int], tuple[bytes, bytes]] = {}
        self._idle: dict[int, bytes] = {}

    # -- entries -----------------------------------------------------------
    def match(self, packed_key: int) -> bytes:
        """The six ``match`` fields of a key (a :meth:`FlowKey.packed` integer)."""
        raw = packed_key.to_bytes(self._key_bytes, "big")
        parts = []
        for (start, end), heads in zip(self._cuts, self._match_heads, strict=True):
            value = raw[start:end].lstrip(b"\x00") or b"\x00"
            parts.append(heads[len(value)])
            parts.append(value)
        return b"".join(parts)

    def key_entry(self, packed_key: int) -> bytes:
        """A serialized ``TableEntry`` with the key only (for DELETE)."""
        return self._table + self.match(packed_key)

    def entry(self, packed_key: int, flow_id: int, action: FlowAction,
              idle_timeout_ns: int = 0) -> bytes:
        """A serialized ``TableEntry``: match, action with the flow id, idle timeout."""
        if flow_id < 0 or flow_id >> self._flow_id_width:
            raise ValueError(f"flow id {flow_id} does not fit in {self._flow_id_width} bits")
        fid = canonical_bytes(flow_id)
        if action.kind is ActionKind.NAT:  # per-flow values: nothing to keep
            act = self._action_bytes(action, fid)
        else:
            pieces = self._fixed.get((action, len(fid)))
            if pieces is None:
                pieces = self._fixed_pieces(action, len(fid))
            act = pieces[0] + fid + pieces[1]
        if not idle_timeout_ns:
            return self._table + self.match(packed_key) + act
        idle = self._idle.get(idle_timeout_ns)
        if idle is None:
            idle = self._idle[idle_timeout_ns] = varint_field(_IDLE_FIELD, idle_timeout_ns)
        return self._table + self.match(packed_key) + act + idle

    def _action_bytes(self, action: FlowAction, flow_id: bytes) -> bytes:
        ids = self._actions[action.kind]
        values = _param_values(action)
        params = [(ids.params[0][0], flow_id)]
        params += [(pid, encode_uint(v, width))
                   for (pid, width), v in zip(ids.params[1:], values, strict=True)]
        return _action_field(ids.id, params)

    def _fixed_pieces(self, action: FlowAction, n: int) -> tuple[bytes, bytes]:
        """The action field of a forward or drop action around an ``n``-byte flow id.

        The flow id is the first parameter, so everything after it (the other
        parameters) is the same for every flow of the action, and everything
        before it only depends on its length.
        """
        whole = self._action_bytes(action, b"\x00" * n)
        ids = self._actions[action.kind]
        rest = b"".join(_param(pid, encode_uint(v, width))
                        for (pid, width), v in zip(ids.params[1:], _param_values(action),
                                                   strict=True))
        at = len(whole) - len(rest) - n
        pieces = (whole[:at], whole[at + n:])
        self._fixed[(action, n)] = pieces
        return pieces

    # -- updates -------------------------------------------------------------
    @staticmethod
    def update(update_type: int, table_entry: bytes) -> bytes:
        """A serialized ``Update`` of one serialized ``TableEntry``."""
        entity = _TABLE_ENTRY_TAG + varint(len(table_entry)) + table_entry
        head = _TYPE_HEADS.get(update_type)
        if head is None:
            head = varint_field(_UPDATE_TYPE_FIELD, update_type) if update_type else b""
        return head + _ENTITY_TAG + varint(len(entity)) + entity


def _param_values(action: FlowAction) -> tuple[int, ...]:
    """An action's parameter values after the flow id, in parameter order."""
    if action.kind is ActionKind.FORWARD:
        return (action.port,)
    if action.kind is ActionKind.DROP:
        return ()
    return (action.port, action.nat_src_addr, action.nat_dst_addr,
            action.nat_src_port, action.nat_dst_port)
