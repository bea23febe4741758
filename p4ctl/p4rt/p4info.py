"""The P4Info index: P4 names to P4Runtime ids and back, for every entity.

Everything the controller says to a switch is addressed by numeric ids that
p4c assigned; people and configuration files speak in names. This module reads
a P4Info (protobuf text ``.txtpb`` or binary) once and builds look-up tables so
that encoding an entry costs dictionary hits, not scans.

Names are accepted in three spellings, as p4runtime-shell does
(``p4runtime_sh/context.py``): the full name (``"FlowIngress.flow_table"``),
the P4Info ``alias``, and any dotted suffix that is unique among entities of
the same kind (``"flow_table"``). A suffix shared by two entities
(``"stats"`` for ``FlowIngress.stats`` and ``FlowEgress.stats``) is refused
with the candidates listed, never resolved by guessing. Match fields are found
by full name or unique suffix within their table; action parameters and packet
metadata by their exact names.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from google.protobuf import text_format
from google.protobuf.message import DecodeError
from p4.config.v1 import p4info_pb2

from p4ctl.p4rt.p4data import BitType, DataType, StructType, resolve

__all__ = [
    "Action",
    "ActionParam",
    "ActionProfile",
    "ControllerPacketMetadata",
    "Counter",
    "CounterUnit",
    "Digest",
    "DirectCounter",
    "DirectMeter",
    "MatchField",
    "MatchType",
    "Meter",
    "NameIndex",
    "P4Info",
    "P4InfoError",
    "PacketMetadataField",
    "Register",
    "Table",
    "ValueSet",
]


class P4InfoError(LookupError):
    """A name or id that the P4Info does not define (or defines ambiguously)."""

    def __str__(self) -> str:  # LookupError quotes its argument; show it plainly
        return str(self.args[0]) if self.args else ""


class MatchType(enum.Enum):
    """Match kinds of P4Info ``MatchField.match_type`` (``other_match_type`` is OTHER)."""

    EXACT = "exact"
    LPM = "lpm"
    TERNARY = "ternary"
    RANGE = "range"
    OPTIONAL = "optional"
    OTHER = "other"


_MATCH_TYPES = {
    p4info_pb2.MatchField.EXACT: MatchType.EXACT,
    p4info_pb2.MatchField.LPM: MatchType.LPM,
    p4info_pb2.MatchField.TERNARY: MatchType.TERNARY,
    p4info_pb2.MatchField.RANGE: MatchType.RANGE,
    p4info_pb2.MatchField.OPTIONAL: MatchType.OPTIONAL,
}


class CounterUnit(enum.Enum):
    UNSPECIFIED = 0
    BYTES = 1
    PACKETS = 2
    BOTH = 3


# -- records -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatchField:
    id: int
    name: str
    bitwidth: int
    match_type: MatchType
    other_match_type: str = ""


@dataclass(frozen=True, slots=True)
class ActionParam:
    id: int
    name: str
    bitwidth: int


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    name: str
    alias: str
    params: tuple[ActionParam, ...]
    params_by_name: dict[str, ActionParam] = field(repr=False, compare=False)
    params_by_id: dict[int, ActionParam] = field(repr=False, compare=False)

    def param(self, key: str | int) -> ActionParam:
        found = (self.params_by_id if isinstance(key, int) else self.params_by_name).get(key)
        if found is None:
            known = ", ".join(p.name for p in self.params) or "none"
            raise P4InfoError(f"action {self.name} has no parameter {key!r} (parameters: {known})")
        return found


@dataclass(frozen=True, slots=True)
class Table:
    id: int
    name: str
    alias: str
    match_fields: tuple[MatchField, ...]
    action_ids: frozenset[int]
    default_only_action_ids: frozenset[int]
    table_only_action_ids: frozenset[int]
    const_default_action_id: int
    implementation_id: int
    direct_resource_ids: tuple[int, ...]
    size: int
    supports_idle_timeout: bool
    is_const_table: bool
    #: full names and unique dotted suffixes ("src_addr" for "meta.flow.src_addr")
    fields_by_name: dict[str, MatchField] = field(repr=False, compare=False)
    fields_by_id: dict[int, MatchField] = field(repr=False, compare=False)
    #: True when entries need a priority (a ternary, range or optional field)
    needs_priority: bool = False

    def field(self, key: str | int) -> MatchField:
        if isinstance(key, int):
            found = self.fields_by_id.get(key)
        else:
            found = self.fields_by_name.get(key)
            if found is None:
                candidates = [f for f in self.match_fields if f.name.endswith("." + key)]
                if len(candidates) > 1:
                    names = ", ".join(f.name for f in candidates)
                    raise P4InfoError(
                        f"match field {key!r} of table {self.name} is ambiguous: {names}"
                    )
        if found is None:
            known = ", ".join(f.name for f in self.match_fields) or "none"
            raise P4InfoError(f"table {self.name} has no match field {key!r} (fields: {known})")
        return found


@dataclass(frozen=True, slots=True)
class Register:
    id: int
    name: str
    alias: str
    size: int
    type: DataType

    @property
    def bitwidth(self) -> int | None:
        """Width of a bit-string register (the v1model kind), else None."""
        return self.type.bitwidth if isinstance(self.type, BitType) else None


@dataclass(frozen=True, slots=True)
class Counter:
    id: int
    name: str
    alias: str
    size: int
    unit: CounterUnit


@dataclass(frozen=True, slots=True)
class DirectCounter:
    id: int
    name: str
    alias: str
    table_id: int
    unit: CounterUnit


@dataclass(frozen=True, slots=True)
class Meter:
    id: int
    name: str
    alias: str
    size: int


@dataclass(frozen=True, slots=True)
class DirectMeter:
    id: int
    name: str
    alias: str
    table_id: int


@dataclass(frozen=True, slots=True)
class ActionProfile:
    id: int
    name: str
    alias: str
    table_ids: tuple[int, ...]
    with_selector: bool
    size: int


@dataclass(frozen=True, slots=True)
class Digest:
    id: int
    name: str
    alias: str
    type: DataType

    @property
    def member_names(self) -> tuple[str, ...]:
        if isinstance(self.type, StructType):
            return tuple(name for name, _ in self.type.members)
        return ()


@dataclass(frozen=True, slots=True)
class PacketMetadataField:
    id: int
    name: str
    bitwidth: int


@dataclass(frozen=True, slots=True)
class ControllerPacketMetadata:
    """The ``packet_in`` or ``packet_out`` header exchanged with the CPU port."""

    id: int
    name: str
    alias: str
    fields: tuple[PacketMetadataField, ...]
    fields_by_name: dict[str, PacketMetadataField] = field(repr=False, compare=False)
    fields_by_id: dict[int, PacketMetadataField] = field(repr=False, compare=False)

    def field(self, key: str | int) -> PacketMetadataField:
        found = (self.fields_by_id if isinstance(key, int) else self.fields_by_name).get(key)
        if found is None:
            known = ", ".join(f.name for f in self.fields) or "none"
            raise P4InfoError(f"{self.name} has no metadata field {key!r} (fields: {known})")
        return found


@dataclass(frozen=True, slots=True)
class ValueSet:
    id: int
    name: str
    alias: str
    match_fields: tuple[MatchField, ...]
    size: int


# -- name index --------------------------------------------------------------

T = TypeVar("T")


class NameIndex(Generic[T]):
    """Entities of one kind, by id, full name, alias and unique dotted suffix.

    ``index["flow_table"]``, ``index["FlowIngress.flow_table"]`` and
    ``index[37375156]`` all give the same record; a missing or ambiguous name
    raises :class:`P4InfoError` naming the kind and close candidates.
    """

    __slots__ = ("_ambiguous", "_by_id", "_by_name", "kind")

    def __init__(self, kind: str, items: Iterable[T]) -> None:
        self.kind = kind
        self._by_id: dict[int, T] = {}
        self._by_name: dict[str, T] = {}
        self._ambiguous: dict[str, list[str]] = {}
        suffixes: dict[str, list[T]] = {}
        for item in items:
            item_id: int = item.id  # type: ignore[attr-defined]
            name: str = item.name  # type: ignore[attr-defined]
            self._by_id[item_id] = item
            self._by_name[name] = item
            parts = name.split(".")
            for i in range(1, len(parts)):
                suffixes.setdefault(".".join(parts[i:]), []).append(item)
            alias: str = getattr(item, "alias", "")
            if alias and alias != name:
                suffixes.setdefault(alias, []).append(item)
        for suffix, found in suffixes.items():
            if suffix in self._by_name:
                continue  # a full name always wins over another entity's suffix
            unique = {id(x): x for x in found}
            if len(unique) == 1:
                self._by_name[suffix] = found[0]
            else:
                self._ambiguous[suffix] = sorted(x.name for x in unique.values())  # type: ignore[attr-defined]

    def __getitem__(self, key: str | int) -> T:
        if isinstance(key, int):
            found = self._by_id.get(key)
            if found is None:
                raise P4InfoError(f"no {self.kind} with id {key} in the P4Info")
            return found
        found = self._by_name.get(key)
        if found is not None:
            return found
        if key in self._ambiguous:
            raise P4InfoError(
                f"{self.kind} name {key!r} is ambiguous: {', '.join(self._ambiguous[key])}"
            )
        known = sorted(x.name for x in self._by_id.values())  # type: ignore[attr-defined]
        hint = f" (known: {', '.join(known)})" if known else f" (the P4Info has no {self.kind}s)"
        raise P4InfoError(f"unknown {self.kind} {key!r}{hint}")

    def get(self, key: str | int) -> T | None:
        try:
            return self[key]
        except P4InfoError:
            return None

    def __contains__(self, key: object) -> bool:
        if isinstance(key, int):
            return key in self._by_id
        return isinstance(key, str) and key in self._by_name

    def __iter__(self) -> Iterator[T]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __repr__(self) -> str:
        return f"<NameIndex {self.kind}: {len(self)}>"


# -- the index ---------------------------------------------------------------


def _preamble(msg: object) -> tuple[int, str, str]:
    pre = msg.preamble  # type: ignore[attr-defined]
    return pre.id, pre.name, pre.alias


def _match_field(mf: p4info_pb2.MatchField) -> MatchField:
    if mf.WhichOneof("match") == "other_match_type":
        return MatchField(mf.id, mf.name, mf.bitwidth, MatchType.OTHER, mf.other_match_type)
    return MatchField(mf.id, mf.name, mf.bitwidth, _MATCH_TYPES.get(mf.match_type, MatchType.OTHER))


def _field_names(fields: tuple[MatchField, ...]) -> dict[str, MatchField]:
    """Full names, then every dotted suffix that only one field has."""
    by_name = {f.name: f for f in fields}
    suffixes: dict[str, list[MatchField]] = {}
    for f in fields:
        parts = f.name.split(".")
        for i in range(1, len(parts)):
            suffixes.setdefault(".".join(parts[i:]), []).append(f)
    for suffix, found in suffixes.items():
        if len(found) == 1 and suffix not in by_name:
            by_name[suffix] = found[0]
    return by_name


class P4Info:
    """Index over one P4Info message.

    Build it with :meth:`load` (a file), :meth:`parse` (bytes or text, either
    encoding) or directly from a ``p4info_pb2.P4Info``. The original message
    stays available as :attr:`proto` (it is what SetForwardingPipelineConfig
    sends).
    """

    def __init__(self, proto: p4info_pb2.P4Info) -> None:
        self.proto = proto
        info = proto.type_info

        actions = []
        for a in proto.actions:
            aid, name, alias = _preamble(a)
            params = tuple(ActionParam(p.id, p.name, p.bitwidth) for p in a.params)
            actions.append(
                Action(
                    aid, name, alias, params,
                    {p.name: p for p in params}, {p.id: p for p in params},
                )
            )
        self.actions: NameIndex[Action] = NameIndex("action", actions)

        tables = []
        for t in proto.tables:
            tid, name, alias = _preamble(t)
            fields = tuple(_match_field(mf) for mf in t.match_fields)
            scope = p4info_pb2.ActionRef
            tables.append(
                Table(
                    id=tid, name=name, alias=alias, match_fields=fields,
                    action_ids=frozenset(r.id for r in t.action_refs),
                    default_only_action_ids=frozenset(
                        r.id for r in t.action_refs if r.scope == scope.DEFAULT_ONLY
                    ),
                    table_only_action_ids=frozenset(
                        r.id for r in t.action_refs if r.scope == scope.TABLE_ONLY
                    ),
                    const_default_action_id=t.const_default_action_id,
                    implementation_id=t.implementation_id,
                    direct_resource_ids=tuple(t.direct_resource_ids),
                    size=t.size,
                    supports_idle_timeout=(
                        t.idle_timeout_behavior == p4info_pb2.Table.NOTIFY_CONTROL
                    ),
                    is_const_table=t.is_const_table,
                    fields_by_name=_field_names(fields),
                    fields_by_id={f.id: f for f in fields},
                    needs_priority=any(
                        f.match_type in (MatchType.TERNARY, MatchType.RANGE, MatchType.OPTIONAL)
                        for f in fields
                    ),
                )
            )
        self.tables: NameIndex[Table] = NameIndex("table", tables)

        self.registers: NameIndex[Register] = NameIndex(
            "register",
            (Register(*_preamble(r), r.size, resolve(r.type_spec, info)) for r in proto.registers),
        )
        self.counters: NameIndex[Counter] = NameIndex(
            "counter",
            (Counter(*_preamble(c), c.size, CounterUnit(c.spec.unit)) for c in proto.counters),
        )
        self.direct_counters: NameIndex[DirectCounter] = NameIndex(
            "direct counter",
            (
                DirectCounter(*_preamble(c), c.direct_table_id, CounterUnit(c.spec.unit))
                for c in proto.direct_counters
            ),
        )
        self.meters: NameIndex[Meter] = NameIndex(
            "meter", (Meter(*_preamble(m), m.size) for m in proto.meters)
        )
        self.direct_meters: NameIndex[DirectMeter] = NameIndex(
            "direct meter",
            (DirectMeter(*_preamble(m), m.direct_table_id) for m in proto.direct_meters),
        )
        self.action_profiles: NameIndex[ActionProfile] = NameIndex(
            "action profile",
            (
                ActionProfile(*_preamble(p), tuple(p.table_ids), p.with_selector, p.size)
                for p in proto.action_profiles
            ),
        )
        self.digests: NameIndex[Digest] = NameIndex(
            "digest", (Digest(*_preamble(d), resolve(d.type_spec, info)) for d in proto.digests)
        )
        cpms = []
        for c in proto.controller_packet_metadata:
            fields_ = tuple(PacketMetadataField(m.id, m.name, m.bitwidth) for m in c.metadata)
            cpms.append(
                ControllerPacketMetadata(
                    *_preamble(c), fields_,
                    {f.name: f for f in fields_}, {f.id: f for f in fields_},
                )
            )
        self.controller_packet_metadata: NameIndex[ControllerPacketMetadata] = NameIndex(
            "controller packet metadata", cpms
        )
        self.value_sets: NameIndex[ValueSet] = NameIndex(
            "value set",
            (
                ValueSet(*_preamble(v), tuple(_match_field(m) for m in v.match), v.size)
                for v in proto.value_sets
            ),
        )
        # direct resources by table, for DirectCounterEntry reads
        self._direct_counter_of: dict[int, DirectCounter] = {
            c.table_id: c for c in self.direct_counters
        }

    # -- loading ---------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | str) -> P4Info:
        """Index of a P4Info in binary or protobuf-text encoding (detected)."""
        # Text first: a binary P4Info is never valid protobuf text, while some
        # text happens to parse as (meaningless) binary.
        proto = p4info_pb2.P4Info()
        text: str | None = data if isinstance(data, str) else None
        if isinstance(data, bytes):
            try:
                text = data.decode()
            except UnicodeDecodeError:
                text = None
        text_error: Exception | None = None
        if text is not None:
            try:
                text_format.Parse(text, proto)
                return cls(proto)
            except text_format.ParseError as exc:
                text_error = exc
                proto.Clear()
        if isinstance(data, bytes):
            try:
                proto.ParseFromString(data)
                return cls(proto)
            except DecodeError as exc:
                raise P4InfoError(
                    f"P4Info is neither protobuf text ({text_error}) nor binary ({exc})"
                ) from exc
        raise P4InfoError(f"cannot parse P4Info text: {text_error}")

    @classmethod
    def load(cls, path: str | Path) -> P4Info:
        """Index of a P4Info file, text (``.txtpb``) or binary (``.pb``, ``.bin``)."""
        path = Path(path)
        try:
            return cls.parse(path.read_bytes())
        except P4InfoError as exc:
            raise P4InfoError(f"{path}: {exc}") from exc

    def to_text(self) -> str:
        return text_format.MessageToString(self.proto)

    # -- look-ups --------------------------------------------------------

    def direct_counter_of(self, table: Table) -> DirectCounter | None:
        """The direct counter attached to ``table``, if any."""
        return self._direct_counter_of.get(table.id)

    def packet_in(self) -> ControllerPacketMetadata | None:
        return self.controller_packet_metadata.get("packet_in")

    def packet_out(self) -> ControllerPacketMetadata | None:
        return self.controller_packet_metadata.get("packet_out")

    def name_of(self, entity_id: int) -> str:
        """Full name of any entity, by id (for messages about peers' data)."""
        for index in (
            self.tables, self.actions, self.registers, self.counters,
            self.direct_counters, self.meters, self.direct_meters, self.digests,
            self.controller_packet_metadata, self.value_sets, self.action_profiles,
        ):
            found = index.get(entity_id)
            if found is not None:
                return found.name  # type: ignore[attr-defined, no-any-return]
        raise P4InfoError(f"no entity with id {entity_id} in the P4Info")

    def __repr__(self) -> str:
        return (
            f"<P4Info tables={len(self.tables)} actions={len(self.actions)} "
            f"registers={len(self.registers)} digests={len(self.digests)}>"
        )
