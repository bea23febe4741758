"""P4Info ids -> the interpreter's objects, built once per forwarding pipeline.

The P4Runtime server speaks in P4Info ids; the interpreter
(:mod:`p4ctl.switch.pipeline`) knows BMv2 JSON names. p4c gives both the same
fully qualified control-plane name (``FlowIngress.flow_table`` in the P4Info
preamble and in the JSON), and the PI library's BMv2 target relies on that
too: it looks a table, action, counter or learn list up in BMv2 by the P4Info
name (p4lang/behavioral-model ``PI/src/pi_tables_imp.cpp``,
``pi_learn_imp.cpp``). Match fields and action parameters are matched by
position, as PI's BMv2 target does (it emits match keys and action data in
P4Info order and BMv2 reads them in JSON order; p4c writes both in the order
of declaration).

Building the map checks that every P4Info object the server can be asked
about exists in the JSON with the same widths, so a mismatched P4Info/JSON
pair is refused at SetForwardingPipelineConfig with a message naming the
object, not discovered by the first write.

P4Info id kinds come from the id's top byte (``p4/config/v1/p4info.proto``,
``P4Ids.Prefix``); an id of the wrong kind is "Invalid P4 id", as in PI
(``DeviceMgrImp::check_p4_id``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from p4.config.v1 import p4info_pb2

from p4ctl.switch.state import (
    CounterArray,
    DigestInfo,
    RegisterArray,
    Table,
)

log = logging.getLogger(__name__)

__all__ = [
    "ActionMap",
    "ControllerHeader",
    "CounterMap",
    "DigestMap",
    "DirectCounterMap",
    "MatchFieldMap",
    "P4InfoMap",
    "P4InfoMismatch",
    "RegisterMap",
    "TableMap",
]

# P4Ids.Prefix values (p4/config/v1/p4ids.h, mirrored in p4info.proto comments).
PREFIX_ACTION = 0x01
PREFIX_TABLE = 0x02
PREFIX_VALUE_SET = 0x03
PREFIX_CONTROLLER_HEADER = 0x04
PREFIX_ACTION_PROFILE = 0x11
PREFIX_COUNTER = 0x12
PREFIX_DIRECT_COUNTER = 0x13
PREFIX_METER = 0x14
PREFIX_DIRECT_METER = 0x15
PREFIX_REGISTER = 0x16
PREFIX_DIGEST = 0x17

MT = p4info_pb2.MatchField.MatchType
SCOPE = p4info_pb2.ActionRef.Scope
UNIT = p4info_pb2.CounterSpec.Unit

#: The JSON match types that can stand for each P4Info kind. An ``optional``
#: key is "ternary" in p4c's BMv2 JSON (p4lang/p4c
#: ``backends/bmv2/common/control.h``: "Table key fields with match_kind
#: optional will be represented in the BMv2 JSON file the same as a ternary
#: field would be", for the key and for const entries alike); BMv2 itself has
#: no optional match type (``src/bm_sim/P4Objects.cpp``,
#: ``match_name_to_match_type``), and the interpreter refuses a JSON that
#: says "optional", as BMv2 does.
_P4INFO_TO_JSON_MATCH = {
    MT.EXACT: ("exact", "valid"),
    MT.LPM: ("lpm",),
    MT.TERNARY: ("ternary",),
    MT.RANGE: ("range",),
    MT.OPTIONAL: ("ternary",),
}


class P4InfoMismatch(ValueError):
    """The P4Info and the BMv2 JSON do not describe the same program."""


@dataclass(slots=True)
class MatchFieldMap:
    id: int
    name: str
    bitwidth: int
    #: The P4Info kind ("exact", "lpm", "ternary", "range", "optional") or
    #: "valid" for a P4_14 valid match, which the P4Info shows as exact. An
    #: optional field is "optional" here whatever the JSON calls it: the
    #: P4Runtime form is the P4Info's.
    match_type: str
    index: int  # position in the interpreter's key tuple


@dataclass(slots=True)
class ActionMap:
    id: int
    name: str  # P4Info / JSON name
    #: param id -> (position in the args tuple, bitwidth, name)
    params: dict[int, tuple[int, int, str]]
    #: params in P4Info order: (param id, bitwidth)
    param_order: list[tuple[int, int]]


@dataclass(slots=True)
class TableMap:
    id: int
    name: str
    table: Table
    match_fields: list[MatchFieldMap]
    fields_by_id: dict[int, MatchFieldMap]
    #: action id -> P4Info scope (TABLE_AND_DEFAULT, TABLE_ONLY, DEFAULT_ONLY)
    actions: dict[int, int]
    const_default_action_id: int
    supports_idle_timeout: bool
    direct_counter_id: int  # 0: none
    direct_meter_id: int  # 0: none
    implementation_id: int  # action profile/selector: 0 for a direct table
    is_const: bool
    requires_priority: bool
    #: (field id, bitwidth) in key order when every field is exact: the
    #: common flow-table case, decoded by a fast path in ``build_key``
    exact_fields: tuple[tuple[int, int], ...] | None = None


@dataclass(slots=True)
class CounterMap:
    id: int
    name: str
    array: CounterArray
    unit: int  # CounterSpec.Unit
    size: int


@dataclass(slots=True)
class DirectCounterMap:
    id: int
    name: str
    table_id: int
    unit: int


@dataclass(slots=True)
class RegisterMap:
    id: int
    name: str
    array: RegisterArray
    bitwidth: int
    size: int


@dataclass(slots=True)
class DigestMap:
    id: int
    name: str
    info: DigestInfo
    #: "struct", "tuple" or "bitstring": the P4Data form of one digest message
    kind: str
    widths: list[int]


@dataclass(slots=True)
class ControllerHeader:
    """The ``packet_in`` / ``packet_out`` header from the P4Info."""

    id: int
    name: str
    #: (metadata id, name, bitwidth) in header order
    fields: list[tuple[int, str, int]]


@dataclass(slots=True)
class P4InfoMap:
    """Every P4Info id the server serves, resolved to the interpreter's objects."""

    p4info: p4info_pb2.P4Info
    tables: dict[int, TableMap] = field(default_factory=dict)
    actions: dict[int, ActionMap] = field(default_factory=dict)
    actions_by_name: dict[str, ActionMap] = field(default_factory=dict)
    counters: dict[int, CounterMap] = field(default_factory=dict)
    direct_counters: dict[int, DirectCounterMap] = field(default_factory=dict)
    registers: dict[int, RegisterMap] = field(default_factory=dict)
    digests: dict[int, DigestMap] = field(default_factory=dict)
    digests_by_name: dict[str, DigestMap] = field(default_factory=dict)
    packet_in: ControllerHeader | None = None
    packet_out: ControllerHeader | None = None
    #: every id the P4Info defines (including kinds the switch does not serve)
    all_ids: set[int] = field(default_factory=set)
    has_meters: bool = False
    has_action_profiles: bool = False

    def valid_id(self, p4_id: int, prefix: int) -> bool:
        """PI's ``check_p4_id``: the id's kind is ``prefix`` and the P4Info defines it."""
        return (p4_id >> 24) == prefix and p4_id in self.all_ids

    @classmethod
    def build(cls, p4info: p4info_pb2.P4Info, pipeline: object) -> P4InfoMap:
        """Resolve the P4Info against a compiled pipeline; raise P4InfoMismatch."""
        m = cls(p4info=p4info)
        for coll in (
            p4info.tables,
            p4info.actions,
            p4info.action_profiles,
            p4info.counters,
            p4info.direct_counters,
            p4info.meters,
            p4info.direct_meters,
            p4info.controller_packet_metadata,
            p4info.value_sets,
            p4info.registers,
            p4info.digests,
        ):
            for obj in coll:
                if obj.preamble.id == 0:
                    raise P4InfoMismatch(f"P4Info object {obj.preamble.name!r} has id 0")
                if obj.preamble.id in m.all_ids:
                    raise P4InfoMismatch(f"P4Info id {obj.preamble.id:#x} is used twice")
                m.all_ids.add(obj.preamble.id)
        m.has_meters = bool(p4info.meters or p4info.direct_meters)
        m.has_action_profiles = bool(p4info.action_profiles)
        m._build_actions(pipeline)
        m._build_tables(pipeline)
        m._build_counters(pipeline)
        m._build_registers(pipeline)
        m._build_digests(pipeline)
        for hdr in p4info.controller_packet_metadata:
            ch = ControllerHeader(
                id=hdr.preamble.id,
                name=hdr.preamble.name,
                fields=[(md.id, md.name, md.bitwidth) for md in hdr.metadata],
            )
            if ch.name == "packet_in":
                m.packet_in = ch
            elif ch.name == "packet_out":
                m.packet_out = ch
        return m

    # ----- builders ------------------------------------------------------

    def _build_actions(self, pipeline: object) -> None:
        json_actions = pipeline.actions  # type: ignore[attr-defined]
        for a in self.p4info.actions:
            name = a.preamble.name
            info = _lookup(json_actions, name, a.preamble.alias, "action")
            if len(info.params) != len(a.params):
                raise P4InfoMismatch(
                    f"action {name}: {len(a.params)} parameters in the P4Info, "
                    f"{len(info.params)} in the JSON"
                )
            params: dict[int, tuple[int, int, str]] = {}
            for i, (p, (jname, jwidth)) in enumerate(zip(a.params, info.params, strict=True)):
                if p.bitwidth != jwidth:
                    raise P4InfoMismatch(
                        f"action {name} parameter {p.name}: {p.bitwidth} bits in the P4Info, "
                        f"{jwidth} bits in the JSON ({jname})"
                    )
                params[p.id] = (i, p.bitwidth, p.name)
            am = ActionMap(
                id=a.preamble.id,
                name=info.name,
                params=params,
                param_order=[(p.id, p.bitwidth) for p in a.params],
            )
            self.actions[am.id] = am
            self.actions_by_name[am.name] = am

    def _build_tables(self, pipeline: object) -> None:
        json_tables = pipeline.tables  # type: ignore[attr-defined]
        direct_counter_tables: dict[int, int] = {}
        for dc in self.p4info.direct_counters:
            direct_counter_tables[dc.direct_table_id] = dc.preamble.id
            self.direct_counters[dc.preamble.id] = DirectCounterMap(
                id=dc.preamble.id,
                name=dc.preamble.name,
                table_id=dc.direct_table_id,
                unit=dc.spec.unit,
            )
        direct_meter_tables = {
            dm.direct_table_id: dm.preamble.id for dm in self.p4info.direct_meters
        }
        for t in self.p4info.tables:
            name = t.preamble.name
            table: Table = _lookup(json_tables, name, t.preamble.alias, "table")
            if len(t.match_fields) != len(table.match_fields):
                raise P4InfoMismatch(
                    f"table {name}: {len(t.match_fields)} match fields in the P4Info, "
                    f"{len(table.match_fields)} in the JSON"
                )
            fields = []
            for i, (mf, jmf) in enumerate(zip(t.match_fields, table.match_fields, strict=True)):
                allowed = _P4INFO_TO_JSON_MATCH.get(mf.match_type)
                if allowed is None:
                    raise P4InfoMismatch(
                        f"table {name} field {mf.name}: match type "
                        f"{mf.other_match_type or mf.match_type!r} is not supported"
                    )
                if jmf.match_type not in allowed:
                    raise P4InfoMismatch(
                        f"table {name} field {mf.name}: {MT.Name(mf.match_type)} in the P4Info, "
                        f"{jmf.match_type} in the JSON"
                    )
                if mf.bitwidth != jmf.bitwidth:
                    raise P4InfoMismatch(
                        f"table {name} field {mf.name}: {mf.bitwidth} bits in the P4Info, "
                        f"{jmf.bitwidth} in the JSON"
                    )
                kind = "optional" if mf.match_type == MT.OPTIONAL else jmf.match_type
                fields.append(MatchFieldMap(mf.id, mf.name, mf.bitwidth, kind, i))
            actions: dict[int, int] = {}
            for ref in t.action_refs:
                am = self.actions.get(ref.id)
                if am is None:
                    raise P4InfoMismatch(f"table {name}: action id {ref.id:#x} not in the P4Info")
                if am.name not in table.action_names:
                    raise P4InfoMismatch(f"table {name}: action {am.name} not in the JSON table")
                actions[ref.id] = ref.scope
            tid = t.preamble.id
            dc_id = direct_counter_tables.get(tid, 0)
            if dc_id and table.direct_counter is None:
                raise P4InfoMismatch(f"table {name}: direct counter in the P4Info, not in the JSON")
            self.tables[tid] = TableMap(
                id=tid,
                name=name,
                table=table,
                match_fields=fields,
                fields_by_id={f.id: f for f in fields},
                actions=actions,
                const_default_action_id=t.const_default_action_id,
                supports_idle_timeout=(t.idle_timeout_behavior == p4info_pb2.Table.NOTIFY_CONTROL),
                direct_counter_id=dc_id,
                direct_meter_id=direct_meter_tables.get(tid, 0),
                implementation_id=t.implementation_id,
                is_const=t.is_const_table,
                requires_priority=any(
                    f.match_type in ("ternary", "range", "optional") for f in fields
                ),
                exact_fields=(
                    tuple((f.id, f.bitwidth) for f in sorted(fields, key=lambda f: f.index))
                    if fields and all(f.match_type == "exact" for f in fields) else None
                ),
            )
            if self.tables[tid].supports_idle_timeout and not table.support_timeout:
                log.warning("table %s: idle timeout in the P4Info but not in the JSON", name)

    def _build_counters(self, pipeline: object) -> None:
        json_counters = pipeline.counters  # type: ignore[attr-defined]
        for c in self.p4info.counters:
            arr: CounterArray = _lookup(json_counters, c.preamble.name, c.preamble.alias, "counter")
            if arr.size != c.size:
                raise P4InfoMismatch(
                    f"counter {c.preamble.name}: size {c.size} in the P4Info, "
                    f"{arr.size} in the JSON"
                )
            self.counters[c.preamble.id] = CounterMap(
                id=c.preamble.id, name=c.preamble.name, array=arr, unit=c.spec.unit, size=c.size
            )

    def _build_registers(self, pipeline: object) -> None:
        json_regs = pipeline.registers  # type: ignore[attr-defined]
        for r in self.p4info.registers:
            arr: RegisterArray = _lookup(json_regs, r.preamble.name, r.preamble.alias, "register")
            ts = r.type_spec
            if ts.WhichOneof("type_spec") != "bitstring":
                raise P4InfoMismatch(f"register {r.preamble.name}: only bitstring cells supported")
            bs = ts.bitstring
            kind = bs.WhichOneof("type_spec")
            if kind not in ("bit", "int"):
                raise P4InfoMismatch(f"register {r.preamble.name}: varbit cells not supported")
            width = getattr(bs, kind).bitwidth
            if width != arr.bitwidth or r.size != arr.size:
                raise P4InfoMismatch(
                    f"register {r.preamble.name}: bit<{width}>[{r.size}] in the P4Info, "
                    f"bit<{arr.bitwidth}>[{arr.size}] in the JSON"
                )
            self.registers[r.preamble.id] = RegisterMap(
                id=r.preamble.id, name=r.preamble.name, array=arr, bitwidth=width, size=r.size
            )

    def _build_digests(self, pipeline: object) -> None:
        json_digests = pipeline.digests  # type: ignore[attr-defined]
        for d in self.p4info.digests:
            info: DigestInfo = _lookup(json_digests, d.preamble.name, d.preamble.alias, "digest")
            kind, widths = _digest_widths(d, self.p4info.type_info)
            json_widths = [w for _, w in info.fields]
            if kind != "bitstring" and widths != json_widths:
                raise P4InfoMismatch(
                    f"digest {d.preamble.name}: member widths {widths} in the P4Info, "
                    f"{json_widths} in the JSON"
                )
            dm = DigestMap(
                id=d.preamble.id, name=d.preamble.name, info=info, kind=kind, widths=widths
            )
            self.digests[dm.id] = dm
            self.digests_by_name[info.name] = dm


def _lookup(objs: dict, name: str, alias: str, what: str):
    """The JSON object for a P4Info name: the same name, as PI's BMv2 target looks it up."""
    obj = objs.get(name)
    if obj is None:
        raise P4InfoMismatch(f"{what} {name!r} from the P4Info is not in the BMv2 JSON")
    return obj


def _digest_widths(d: p4info_pb2.Digest, type_info: object) -> tuple[str, list[int]]:
    """The P4Data form and member widths of a digest (PI's TypeSpecConverter)."""

    def bitstring_width(bs) -> int:
        kind = bs.WhichOneof("type_spec")
        if kind not in ("bit", "int"):
            raise P4InfoMismatch(f"digest {d.preamble.name}: varbit members are not supported")
        return getattr(bs, kind).bitwidth

    ts = d.type_spec
    which = ts.WhichOneof("type_spec")
    if which == "bitstring":
        return "bitstring", [bitstring_width(ts.bitstring)]
    if which == "tuple":
        widths = []
        for member in ts.tuple.members:
            if member.WhichOneof("type_spec") != "bitstring":
                raise P4InfoMismatch(f"digest {d.preamble.name}: tuple members must be bitstrings")
            widths.append(bitstring_width(member.bitstring))
        return "tuple", widths
    if which == "struct":
        struct_name = ts.struct.name
        if struct_name not in type_info.structs:  # type: ignore[attr-defined]
            raise P4InfoMismatch(
                f"digest {d.preamble.name}: struct {struct_name!r} not in type_info"
            )
        widths = []
        for member in type_info.structs[struct_name].members:  # type: ignore[attr-defined]
            if member.type_spec.WhichOneof("type_spec") != "bitstring":
                raise P4InfoMismatch(f"digest {d.preamble.name}: struct members must be bitstrings")
            widths.append(bitstring_width(member.type_spec.bitstring))
        return "struct", widths
    raise P4InfoMismatch(f"digest {d.preamble.name}: type must be a bitstring, struct or tuple")
