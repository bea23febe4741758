"""P4Runtime entities as plain classes: P4 names in, canonical bytes on the wire.

Each class holds what a person would write (``TableEntry("flow_table",
match={"src_addr": "10.0.0.1", ...}, action="forward", params={"port": 1})``)
and turns itself into the ``p4.v1`` protobuf through a :class:`P4Info` index
(:meth:`to_proto`), or is rebuilt from one (:meth:`from_proto`). Decoding
gives a normal form: exact and optional values as ``int``, LPM, ternary and
range values as :class:`LPM`, :class:`Ternary`, :class:`Range`; "don't care"
fields are absent, as P4Runtime omits them (spec section "Match Format"), so
``TableEntry.from_proto(e.to_proto(p4), p4)`` compares equal to an entry
written in normal form.

Entries are checked while encoding, with :class:`EncodingError` naming the
table, field and value: unknown names, values out of range, a ternary value
with bits outside its mask, an LPM value with bits beyond its prefix, a
missing or superfluous priority, an action the table does not allow.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from p4.v1 import p4runtime_pb2

from p4ctl.p4rt.encoding import (
    EncodingError,
    Value,
    decode_uint,
    encode_uint,
    prefix_mask,
    to_int,
)
from p4ctl.p4rt.p4info import MatchField, MatchType, P4Info, P4InfoError, Table

__all__ = [
    "LPM",
    "CounterData",
    "CounterEntry",
    "DigestEntry",
    "DirectCounterEntry",
    "Entity",
    "Exact",
    "OptionalMatch",
    "Range",
    "RegisterEntry",
    "TableEntry",
    "Ternary",
    "Update",
    "UpdateType",
    "decode_entity",
    "delete",
    "insert",
    "modify",
]


# -- match values ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exact:
    value: Value


@dataclass(frozen=True, slots=True)
class LPM:
    value: Value
    prefix_len: int


@dataclass(frozen=True, slots=True)
class Ternary:
    value: Value
    mask: Value


@dataclass(frozen=True, slots=True)
class Range:
    low: Value
    high: Value


@dataclass(frozen=True, slots=True)
class OptionalMatch:
    value: Value


MatchValue: TypeAlias = Value | Exact | LPM | Ternary | Range | OptionalMatch | tuple[Any, Any]


def _name(kind: str, what: str, table: Table, mf: MatchField) -> str:
    return f"{kind} {what} of {table.name}.{mf.name}"


def _encode_match(table: Table, mf: MatchField, raw: Any, matches: Any) -> None:
    """Append the ``FieldMatch`` of one field to ``matches``, unless it means "don't care"."""
    width = mf.bitwidth
    kind = mf.match_type
    try:
        if kind is MatchType.EXACT:
            if isinstance(raw, Exact):
                raw = raw.value
            value = encode_uint(raw if type(raw) is int else to_int(raw, width), width)
            matches.add(field_id=mf.id).exact.value = value
            return
        if kind is MatchType.OPTIONAL:
            if isinstance(raw, OptionalMatch | Exact):
                raw = raw.value
            matches.add(field_id=mf.id).optional.value = encode_uint(to_int(raw, width), width)
            return
        if kind is MatchType.LPM:
            if isinstance(raw, LPM):
                value, plen = to_int(raw.value, width), raw.prefix_len
            elif isinstance(raw, tuple):
                value, plen = to_int(raw[0], width), raw[1]
            elif isinstance(raw, str) and "/" in raw:
                try:  # host bits set are an error, as for the other forms
                    net = ipaddress.ip_network(raw)
                except ValueError as exc:
                    raise EncodingError(f"{raw!r} is not a prefix: {exc}") from None
                value, plen = int(net.network_address), net.prefixlen
                if net.max_prefixlen != width:
                    raise EncodingError(f"{raw!r} is not a {width}-bit prefix")
            else:
                value, plen = to_int(raw, width), width
            mask = prefix_mask(plen, width)
            if value & ~mask:
                raise EncodingError(
                    f"value {value:#x} has bits set beyond its /{plen} prefix"
                )
            if plen == 0:
                return
            out = matches.add(field_id=mf.id)
            out.lpm.value = encode_uint(value, width)
            out.lpm.prefix_len = plen
            return
        if kind is MatchType.TERNARY:
            if isinstance(raw, Ternary):
                value, mask = to_int(raw.value, width), to_int(raw.mask, width)
            elif isinstance(raw, tuple):
                value, mask = to_int(raw[0], width), to_int(raw[1], width)
            elif isinstance(raw, str) and "&&&" in raw:
                v, m = raw.split("&&&", 1)
                value, mask = to_int(v, width), to_int(m, width)
            else:
                value, mask = to_int(raw, width), (1 << width) - 1
            if value & ~mask:
                raise EncodingError(f"value {value:#x} has bits set outside mask {mask:#x}")
            if mask == 0:
                return
            out = matches.add(field_id=mf.id)
            out.ternary.value = encode_uint(value, width)
            out.ternary.mask = encode_uint(mask, width)
            return
        if kind is MatchType.RANGE:
            if isinstance(raw, Range):
                low, high = to_int(raw.low, width), to_int(raw.high, width)
            elif isinstance(raw, tuple):
                low, high = to_int(raw[0], width), to_int(raw[1], width)
            else:
                low = high = to_int(raw, width)
            if low > high:
                raise EncodingError(f"empty range [{low}, {high}]")
            low_b, high_b = encode_uint(low, width), encode_uint(high, width)
            if low == 0 and high == (1 << width) - 1:
                return
            out = matches.add(field_id=mf.id)
            out.range.low, out.range.high = low_b, high_b
            return
    except EncodingError as exc:
        raise EncodingError(f"table {table.name}, field {mf.name}: {exc}") from None
    raise EncodingError(
        f"table {table.name}, field {mf.name}: match kind "
        f"{mf.other_match_type or kind.value!r} is not supported by this client"
    )


def _decode_match(table: Table, fm: p4runtime_pb2.FieldMatch) -> tuple[str, Any]:
    mf = table.fields_by_id.get(fm.field_id)
    if mf is None:
        raise EncodingError(f"table {table.name} has no match field id {fm.field_id}")
    width = mf.bitwidth
    kind = fm.WhichOneof("field_match_type")
    try:
        if kind == "exact":
            return mf.name, decode_uint(fm.exact.value, width)
        if kind == "optional":
            return mf.name, decode_uint(fm.optional.value, width)
        if kind == "lpm":
            return mf.name, LPM(decode_uint(fm.lpm.value, width), fm.lpm.prefix_len)
        if kind == "ternary":
            return mf.name, Ternary(
                decode_uint(fm.ternary.value, width), decode_uint(fm.ternary.mask, width)
            )
        if kind == "range":
            return mf.name, Range(
                decode_uint(fm.range.low, width), decode_uint(fm.range.high, width)
            )
    except EncodingError as exc:
        raise EncodingError(f"table {table.name}, field {mf.name}: {exc}") from None
    raise EncodingError(f"table {table.name}, field {mf.name}: unsupported match {kind!r}")


# -- entities ----------------------------------------------------------------


@dataclass(slots=True)
class CounterData:
    byte_count: int = 0
    packet_count: int = 0

    def to_proto(self) -> p4runtime_pb2.CounterData:
        return p4runtime_pb2.CounterData(
            byte_count=self.byte_count, packet_count=self.packet_count
        )

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.CounterData) -> CounterData:
        return cls(msg.byte_count, msg.packet_count)


@dataclass(slots=True)
class TableEntry:
    """One table entry; also a read filter (only ``table`` set: the whole table).

    ``time_since_last_hit_ns`` and ``is_const`` are filled by reads only.
    ``time_since_last_hit_ns`` is None when the server gave none, and also when
    it cannot be trusted: BMv2/PI answer 0 for entries with no TTL (a known
    departure, PI ``device_mgr.cpp`` ``set_time_since_last_hit``). On BMv2 it
    also never exceeds the entry's TTL (``pi_tables_imp.cpp``
    ``_pi_table_entry_get_remaining_ttl`` clamps the remaining TTL at 0), so a
    value equal to the TTL means "at least the TTL".
    """

    table: str
    match: dict[str, Any] = field(default_factory=dict)
    action: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    idle_timeout_ns: int = 0
    is_default_action: bool = False
    controller_metadata: int = 0
    metadata: bytes = b""
    counter_data: CounterData | None = None
    time_since_last_hit_ns: int | None = None
    is_const: bool = False
    action_profile_member_id: int | None = None
    action_profile_group_id: int | None = None

    def to_table_entry(self, p4info: P4Info) -> p4runtime_pb2.TableEntry:
        """The ``p4.v1.TableEntry`` (writes and read filters)."""
        table = p4info.tables[self.table]
        msg = p4runtime_pb2.TableEntry(table_id=table.id)
        if self.match:
            if self.is_default_action:
                raise EncodingError(f"table {table.name}: a default entry has no match")
            fields = table.fields_by_name
            matches = msg.match
            for name, raw in self.match.items():
                mf = fields.get(name)
                if mf is None:
                    try:
                        mf = table.field(name)
                    except P4InfoError as exc:
                        raise EncodingError(str(exc)) from None
                _encode_match(table, mf, raw, matches)
        if self.priority:
            if not table.needs_priority:
                raise EncodingError(
                    f"table {table.name} has only exact/lpm fields: priority must be 0"
                )
            if not 0 < self.priority < 1 << 31:
                raise EncodingError(f"table {table.name}: priority {self.priority} out of range")
            msg.priority = self.priority
        elif table.needs_priority and self.match and not self.is_default_action:
            raise EncodingError(f"table {table.name} needs a priority > 0 for its entries")
        if self.action is not None:
            self._encode_action(p4info, table, msg)
        elif self.action_profile_member_id is not None:
            msg.action.action_profile_member_id = self.action_profile_member_id
        elif self.action_profile_group_id is not None:
            msg.action.action_profile_group_id = self.action_profile_group_id
        if self.idle_timeout_ns:
            if not table.supports_idle_timeout:
                raise EncodingError(f"table {table.name} does not support idle timeout")
            if self.is_default_action:
                raise EncodingError(f"table {table.name}: default entries have no idle timeout")
            msg.idle_timeout_ns = self.idle_timeout_ns
        if self.is_default_action:
            msg.is_default_action = True
        if self.controller_metadata:
            msg.controller_metadata = self.controller_metadata
        if self.metadata:
            msg.metadata = self.metadata
        if self.counter_data is not None:
            msg.counter_data.byte_count = self.counter_data.byte_count
            msg.counter_data.packet_count = self.counter_data.packet_count
        return msg

    def _encode_action(
        self, p4info: P4Info, table: Table, msg: p4runtime_pb2.TableEntry
    ) -> None:
        action = p4info.actions[self.action]  # type: ignore[index]
        if action.id not in table.action_ids:
            raise EncodingError(f"table {table.name} does not allow action {action.name}")
        if not self.is_default_action and action.id in table.default_only_action_ids:
            raise EncodingError(
                f"action {action.name} is default-only in table {table.name}"
            )
        if self.is_default_action and action.id in table.table_only_action_ids:
            raise EncodingError(f"action {action.name} cannot be the default of {table.name}")
        out = msg.action.action
        out.action_id = action.id
        params = self.params
        if len(params) != len(action.params) or not all(n in params for n in action.params_by_name):
            missing = [p.name for p in action.params if p.name not in params]
            unknown = [n for n in params if n not in action.params_by_name]
            raise EncodingError(
                f"action {action.name}: missing parameters {missing}, unknown parameters {unknown}"
            )
        for param in action.params:
            raw = params[param.name]
            try:
                value = encode_uint(
                    raw if type(raw) is int else to_int(raw, param.bitwidth), param.bitwidth
                )
            except EncodingError as exc:
                raise EncodingError(
                    f"action {action.name}, parameter {param.name}: {exc}"
                ) from None
            out.params.add(param_id=param.id, value=value)

    def to_proto(self, p4info: P4Info) -> p4runtime_pb2.Entity:
        return p4runtime_pb2.Entity(table_entry=self.to_table_entry(p4info))

    @classmethod
    def from_table_entry(cls, msg: p4runtime_pb2.TableEntry, p4info: P4Info) -> TableEntry:
        try:
            table = p4info.tables[msg.table_id]
        except P4InfoError as exc:
            raise EncodingError(str(exc)) from None
        match = dict(_decode_match(table, fm) for fm in msg.match)
        entry = cls(
            table.name,
            match,
            priority=msg.priority,
            idle_timeout_ns=msg.idle_timeout_ns,
            is_default_action=msg.is_default_action,
            controller_metadata=msg.controller_metadata,
            metadata=msg.metadata,
            is_const=msg.is_const,
        )
        kind = msg.action.WhichOneof("type")
        if kind == "action":
            try:
                action = p4info.actions[msg.action.action.action_id]
            except P4InfoError as exc:
                raise EncodingError(f"table {table.name}: {exc}") from None
            entry.action = action.name
            params: dict[str, int] = {}
            for p in msg.action.action.params:
                info = action.params_by_id.get(p.param_id)
                if info is None:
                    raise EncodingError(f"action {action.name} has no parameter id {p.param_id}")
                try:
                    params[info.name] = decode_uint(p.value, info.bitwidth)
                except EncodingError as exc:
                    raise EncodingError(
                        f"action {action.name}, parameter {info.name}: {exc}"
                    ) from None
            entry.params = params
        elif kind == "action_profile_member_id":
            entry.action_profile_member_id = msg.action.action_profile_member_id
        elif kind == "action_profile_group_id":
            entry.action_profile_group_id = msg.action.action_profile_group_id
        if msg.HasField("counter_data"):
            entry.counter_data = CounterData.from_proto(msg.counter_data)
        if msg.HasField("time_since_last_hit"):
            elapsed = msg.time_since_last_hit.elapsed_ns
            # PI/BMv2 answer 0 for entries without TTL: "unknown", not "just hit".
            if not (elapsed == 0 and msg.idle_timeout_ns == 0):
                entry.time_since_last_hit_ns = elapsed
        return entry

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.Entity, p4info: P4Info) -> TableEntry:
        return cls.from_table_entry(msg.table_entry, p4info)

    def key(self) -> tuple[str, frozenset[tuple[str, Any]], int]:
        """What identifies the entry on the switch: table, match, priority."""
        return self.table, frozenset(self.match.items()), self.priority


@dataclass(slots=True)
class RegisterEntry:
    """One register cell (``index`` set) or the whole array (``index`` None)."""

    register: str
    index: int | None = None
    value: Any = None

    def to_proto(self, p4info: P4Info) -> p4runtime_pb2.Entity:
        reg = p4info.registers[self.register]
        msg = p4runtime_pb2.RegisterEntry(register_id=reg.id)
        if self.index is not None:
            if not 0 <= self.index < reg.size:
                raise EncodingError(
                    f"register {reg.name}: index {self.index} out of range [0, {reg.size})"
                )
            msg.index.index = self.index
        if self.value is not None:
            try:
                msg.data.CopyFrom(reg.type.encode(self.value))
            except EncodingError as exc:
                raise EncodingError(f"register {reg.name}: {exc}") from None
        return p4runtime_pb2.Entity(register_entry=msg)

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.Entity, p4info: P4Info) -> RegisterEntry:
        entry = msg.register_entry
        try:
            reg = p4info.registers[entry.register_id]
        except P4InfoError as exc:
            raise EncodingError(str(exc)) from None
        value = None
        if entry.HasField("data"):
            try:
                value = reg.type.decode(entry.data)
            except EncodingError as exc:
                raise EncodingError(f"register {reg.name}[{entry.index.index}]: {exc}") from None
        return cls(reg.name, entry.index.index if entry.HasField("index") else None, value)


@dataclass(slots=True)
class CounterEntry:
    """One indexed-counter cell (``index`` set) or the whole array."""

    counter: str
    index: int | None = None
    data: CounterData | None = None

    def to_proto(self, p4info: P4Info) -> p4runtime_pb2.Entity:
        counter = p4info.counters[self.counter]
        msg = p4runtime_pb2.CounterEntry(counter_id=counter.id)
        if self.index is not None:
            if not 0 <= self.index < counter.size:
                raise EncodingError(
                    f"counter {counter.name}: index {self.index} out of range [0, {counter.size})"
                )
            msg.index.index = self.index
        if self.data is not None:
            msg.data.CopyFrom(self.data.to_proto())
        return p4runtime_pb2.Entity(counter_entry=msg)

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.Entity, p4info: P4Info) -> CounterEntry:
        entry = msg.counter_entry
        try:
            counter = p4info.counters[entry.counter_id]
        except P4InfoError as exc:
            raise EncodingError(str(exc)) from None
        return cls(
            counter.name,
            entry.index.index if entry.HasField("index") else None,
            CounterData.from_proto(entry.data) if entry.HasField("data") else None,
        )


@dataclass(slots=True)
class DirectCounterEntry:
    """The direct counter of one table entry, or of a whole table (a match-less entry)."""

    table_entry: TableEntry
    data: CounterData | None = None

    def to_proto(self, p4info: P4Info) -> p4runtime_pb2.Entity:
        table = p4info.tables[self.table_entry.table]
        if p4info.direct_counter_of(table) is None:
            raise EncodingError(f"table {table.name} has no direct counter")
        msg = p4runtime_pb2.DirectCounterEntry(table_entry=self.table_entry.to_table_entry(p4info))
        if self.data is not None:
            msg.data.CopyFrom(self.data.to_proto())
        return p4runtime_pb2.Entity(direct_counter_entry=msg)

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.Entity, p4info: P4Info) -> DirectCounterEntry:
        entry = msg.direct_counter_entry
        return cls(
            TableEntry.from_table_entry(entry.table_entry, p4info),
            CounterData.from_proto(entry.data) if entry.HasField("data") else None,
        )


@dataclass(slots=True)
class DigestEntry:
    """Digest configuration: INSERT enables a digest, MODIFY changes it, DELETE disables.

    ``max_timeout_ns``: the longest a message waits in the switch's buffer;
    ``max_list_size``: messages per list (0: no limit); ``ack_timeout_ns``:
    how long a sent, unacknowledged message suppresses its duplicates (0: no
    suppression). BMv2/PI take ``max_timeout_ns`` in whole milliseconds, and 0
    ms waits for a full list: see docs/p4rt-client.md.
    """

    digest: str
    max_timeout_ns: int = 0
    max_list_size: int = 0
    ack_timeout_ns: int = 0
    has_config: bool = True

    def to_proto(self, p4info: P4Info) -> p4runtime_pb2.Entity:
        digest = p4info.digests[self.digest]
        msg = p4runtime_pb2.DigestEntry(digest_id=digest.id)
        if self.has_config:
            msg.config.max_timeout_ns = self.max_timeout_ns
            msg.config.max_list_size = self.max_list_size
            msg.config.ack_timeout_ns = self.ack_timeout_ns
        return p4runtime_pb2.Entity(digest_entry=msg)

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.Entity, p4info: P4Info) -> DigestEntry:
        entry = msg.digest_entry
        try:
            digest = p4info.digests[entry.digest_id]
        except P4InfoError as exc:
            raise EncodingError(str(exc)) from None
        config = entry.config
        return cls(
            digest.name,
            config.max_timeout_ns,
            config.max_list_size,
            config.ack_timeout_ns,
            has_config=entry.HasField("config"),
        )


Entity: TypeAlias = TableEntry | RegisterEntry | CounterEntry | DirectCounterEntry | DigestEntry

_DECODERS: dict[str, Any] = {
    "table_entry": TableEntry,
    "register_entry": RegisterEntry,
    "counter_entry": CounterEntry,
    "direct_counter_entry": DirectCounterEntry,
    "digest_entry": DigestEntry,
}


def decode_entity(msg: p4runtime_pb2.Entity, p4info: P4Info) -> Entity:
    """The plain entity of a ``p4.v1.Entity`` (EncodingError for kinds not handled)."""
    kind = msg.WhichOneof("entity")
    decoder = _DECODERS.get(kind or "")
    if decoder is None:
        raise EncodingError(f"entity kind {kind!r} is not supported by this client")
    return decoder.from_proto(msg, p4info)  # type: ignore[no-any-return]


# -- updates -------------------------------------------------------------------


class UpdateType(enum.IntEnum):
    INSERT = p4runtime_pb2.Update.INSERT
    MODIFY = p4runtime_pb2.Update.MODIFY
    DELETE = p4runtime_pb2.Update.DELETE


@dataclass(slots=True)
class Update:
    """One update of a WriteRequest: an entity (plain or ``p4.v1.Entity``) and what to do."""

    type: UpdateType
    entity: Entity | p4runtime_pb2.Entity

    def to_proto(self, p4info: P4Info) -> p4runtime_pb2.Update:
        entity = self.entity
        if not isinstance(entity, p4runtime_pb2.Entity):
            entity = entity.to_proto(p4info)
        return p4runtime_pb2.Update(type=self.type, entity=entity)


def insert(entity: Entity | p4runtime_pb2.Entity) -> Update:
    return Update(UpdateType.INSERT, entity)


def modify(entity: Entity | p4runtime_pb2.Entity) -> Update:
    return Update(UpdateType.MODIFY, entity)


def delete(entity: Entity | p4runtime_pb2.Entity) -> Update:
    return Update(UpdateType.DELETE, entity)
