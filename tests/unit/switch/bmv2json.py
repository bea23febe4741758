"""Small builders for BMv2 JSON documents in the shape p4c-bm2-ss writes.

The base document has what p4c emits for a v1model program (``scalars``,
``standard_metadata`` with v1model's fields and aliases, core errors,
``__meta__``) plus Ethernet/IPv4/TCP/UDP headers and a parser for them; tests
add the actions, tables, conditionals, calculations... they exercise.
Shapes follow behavioral-model ``docs/JSON_format.md`` and the p4c outputs in
behavioral-model ``targets/simple_switch_grpc/tests/testdata``.
"""

from __future__ import annotations

import copy
from typing import Any

# p4c-bm2-ss's standard_metadata: the interpreter benchmark builds the same JSON shape
from p4ctl.switch.interp.bench import STANDARD_METADATA

FIELD_ALIASES = [
    ["queueing_metadata.enq_timestamp", ["standard_metadata", "enq_timestamp"]],
    ["queueing_metadata.enq_qdepth", ["standard_metadata", "enq_qdepth"]],
    ["queueing_metadata.deq_timedelta", ["standard_metadata", "deq_timedelta"]],
    ["queueing_metadata.deq_qdepth", ["standard_metadata", "deq_qdepth"]],
    [
        "intrinsic_metadata.ingress_global_timestamp",
        ["standard_metadata", "ingress_global_timestamp"],
    ],
    [
        "intrinsic_metadata.egress_global_timestamp",
        ["standard_metadata", "egress_global_timestamp"],
    ],
    ["intrinsic_metadata.mcast_grp", ["standard_metadata", "mcast_grp"]],
    ["intrinsic_metadata.egress_rid", ["standard_metadata", "egress_rid"]],
    ["intrinsic_metadata.priority", ["standard_metadata", "priority"]],
]

ERRORS = [
    ["NoError", 0],
    ["PacketTooShort", 1],
    ["NoMatch", 2],
    ["StackOutOfBounds", 3],
    ["HeaderTooShort", 4],
    ["ParserTimeout", 5],
    ["ParserInvalidArgument", 6],
]

ETHERNET_T = [["dst_addr", 48, False], ["src_addr", 48, False], ["ether_type", 16, False]]
IPV4_T = [
    ["version", 4, False], ["ihl", 4, False], ["diffserv", 8, False], ["total_len", 16, False],
    ["identification", 16, False], ["flags", 3, False], ["frag_offset", 13, False],
    ["ttl", 8, False], ["protocol", 8, False], ["hdr_checksum", 16, False],
    ["src_addr", 32, False], ["dst_addr", 32, False],
]  # fmt: skip
TCP_T = [
    ["src_port", 16, False], ["dst_port", 16, False], ["seq_no", 32, False],
    ["ack_no", 32, False], ["data_offset", 4, False], ["res", 4, False], ["flags", 8, False],
    ["window", 16, False], ["checksum", 16, False], ["urgent_ptr", 16, False],
]  # fmt: skip
UDP_T = [["src_port", 16, False], ["dst_port", 16, False], ["length", 16, False],
         ["checksum", 16, False]]  # fmt: skip


# ----- type-value objects --------------------------------------------------------


def fld(header: str, field: str) -> dict[str, Any]:
    return {"type": "field", "value": [header, field]}


def hexv(value: int, nbytes: int = 0) -> dict[str, Any]:
    digits = max(1, nbytes * 2) if nbytes else max(1, (value.bit_length() + 7) // 8 * 2)
    if value < 0:
        return {"type": "hexstr", "value": "-0x" + format(-value, f"0{digits}x")}
    return {"type": "hexstr", "value": "0x" + format(value, f"0{digits}x")}


def rd(i: int) -> dict[str, Any]:
    return {"type": "runtime_data", "value": i}


def local(i: int) -> dict[str, Any]:
    return {"type": "local", "value": i}


def boolv(b: bool) -> dict[str, Any]:
    return {"type": "bool", "value": b}


def hdr(name: str) -> dict[str, Any]:
    return {"type": "header", "value": name}


def op(o: str, left: Any, right: Any, cond: Any = None) -> dict[str, Any]:
    """An expression node as p4c nests it: ``{"type": "expression", "value": {...}}``."""
    v: dict[str, Any] = {"op": o, "left": left, "right": right}
    if cond is not None:
        v["cond"] = cond
    return {"type": "expression", "value": v}


def param_expr(e: dict[str, Any]) -> dict[str, Any]:
    """A primitive parameter of type expression (p4c wraps the expression once more)."""
    return {"type": "expression", "value": e}


def prim(name: str, *params: Any) -> dict[str, Any]:
    return {"op": name, "parameters": list(params), "source_info": {"filename": "t.p4", "line": 1}}


def assign(dst: Any, src: Any) -> dict[str, Any]:
    if src.get("type") == "expression":
        src = param_expr(src)
    return prim("assign", dst, src)


# ----- objects -------------------------------------------------------------------


def action(doc: dict[str, Any], name: str, primitives: list[Any], params=()) -> int:
    aid = len(doc["actions"])
    doc["actions"].append(
        {
            "name": name,
            "id": aid,
            "runtime_data": [{"name": n, "bitwidth": w} for n, w in params],
            "primitives": primitives,
        }
    )
    return aid


def action_id(doc: dict[str, Any], name: str) -> int:
    return next(a["id"] for a in doc["actions"] if a["name"] == name)


def table(
    doc: dict[str, Any],
    pipeline: str,
    name: str,
    keys: list[tuple[str, Any]],
    actions: list[str],
    default: str,
    default_args: list[str] | None = None,
    next_tables: dict[str, Any] | None = None,
    base_default_next: str | None = None,
    size: int = 1024,
    const_default: bool = False,
    entries: list[Any] | None = None,
    with_counters: bool = False,
    support_timeout: bool = False,
) -> dict[str, Any]:
    """A 'simple' table; keys are (match_type, target) or (match_type, target, mask)."""
    pipe = pipeline_obj(doc, pipeline)
    kinds = {k[0] for k in keys}
    mt = (
        "range"
        if "range" in kinds
        else "ternary"
        if kinds & {"ternary", "optional"}
        else ("lpm" if "lpm" in kinds else "exact")
    )
    ids = [action_id(doc, a) for a in actions]
    t = {
        "name": name,
        "id": sum(len(p["tables"]) for p in doc["pipelines"]),
        "source_info": {"filename": "t.p4", "line": 1, "column": 1, "source_fragment": name},
        "key": [
            {
                "match_type": "ternary" if k[0] == "optional" else k[0],
                "name": k[1] if isinstance(k[1], str) else ".".join(k[1]),
                "target": k[1],
                "mask": k[2] if len(k) > 2 else None,
            }
            for k in keys
        ],
        "match_type": mt,
        "type": "simple",
        "max_size": size,
        "with_counters": with_counters,
        "support_timeout": support_timeout,
        "direct_meters": None,
        "action_ids": ids,
        "actions": actions,
        "base_default_next": base_default_next,
        "next_tables": next_tables
        if next_tables is not None
        else {a: base_default_next for a in actions},
        "default_entry": {
            "action_id": action_id(doc, default),
            "action_const": const_default,
            "action_data": default_args or [],
            "action_entry_const": const_default,
        },
    }
    if entries:
        t["entries"] = entries
    pipe["tables"].append(t)
    if pipe["init_table"] is None:
        pipe["init_table"] = name
    return t


def conditional(
    doc: dict[str, Any], pipeline: str, name: str, expr: Any, true_next: Any, false_next: Any
) -> dict[str, Any]:
    pipe = pipeline_obj(doc, pipeline)
    c = {
        "name": name,
        "id": sum(len(p["conditionals"]) for p in doc["pipelines"]),
        "expression": expr,
        "true_next": true_next,
        "false_next": false_next,
    }
    pipe["conditionals"].append(c)
    return c


def run_actions(doc: dict[str, Any], pipeline: str, *primitive_lists: list[Any]) -> None:
    """Chain of p4c's ``tbl_act`` dummy tables, each with a const default action."""
    names = []
    for prims in primitive_lists:
        n = f"act_{len(doc['actions'])}"
        action(doc, n, prims)
        names.append(n)
    tnames = [f"tbl_{n}" for n in names]
    pipe = pipeline_obj(doc, pipeline)
    start = pipe["init_table"]
    for i, (n, tn) in enumerate(zip(names, tnames, strict=True)):
        nxt = tnames[i + 1] if i + 1 < len(tnames) else None
        table(doc, pipeline, tn, [], [n], n, next_tables={n: nxt}, const_default=True)
    if start is not None and start not in tnames:
        pipe["init_table"] = tnames[0]


def pipeline_obj(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in doc["pipelines"] if p["name"] == name)


def header_type(doc: dict[str, Any], name: str, fields: list[list[Any]]) -> None:
    doc["header_types"].append({"name": name, "id": len(doc["header_types"]), "fields": fields})


def header(doc: dict[str, Any], name: str, htype: str, metadata: bool = False) -> int:
    hid = len(doc["headers"])
    doc["headers"].append(
        {"name": name, "id": hid, "header_type": htype, "metadata": metadata, "pi_omit": True}
    )
    return hid


def scalars(doc: dict[str, Any], *fields: tuple[str, int] | tuple[str, int, bool]) -> None:
    """Set the fields of p4c's ``scalars`` metadata header (locals, temporaries)."""
    st = next(t for t in doc["header_types"] if t["name"] == "scalars_0")
    fl = [[f[0], f[1], f[2] if len(f) > 2 else False] for f in fields]
    total = sum(f[1] for f in fl)
    if total % 8:
        fl.append(["_padding_0", 8 - total % 8, False])
    st["fields"] = fl


def base() -> dict[str, Any]:
    """An empty v1model program with Ethernet/IPv4/TCP/UDP parsed and deparsed."""
    doc: dict[str, Any] = {
        "header_types": [
            {"name": "scalars_0", "id": 0, "fields": []},
            {"name": "standard_metadata", "id": 1, "fields": copy.deepcopy(STANDARD_METADATA)},
            {"name": "ethernet_t", "id": 2, "fields": copy.deepcopy(ETHERNET_T)},
            {"name": "ipv4_t", "id": 3, "fields": copy.deepcopy(IPV4_T)},
            {"name": "tcp_t", "id": 4, "fields": copy.deepcopy(TCP_T)},
            {"name": "udp_t", "id": 5, "fields": copy.deepcopy(UDP_T)},
        ],
        "headers": [
            {"name": "scalars", "id": 0, "header_type": "scalars_0", "metadata": True,
             "pi_omit": True},
            {"name": "standard_metadata", "id": 1, "header_type": "standard_metadata",
             "metadata": True, "pi_omit": True},
            {"name": "ethernet", "id": 2, "header_type": "ethernet_t", "metadata": False,
             "pi_omit": True},
            {"name": "ipv4", "id": 3, "header_type": "ipv4_t", "metadata": False, "pi_omit": True},
            {"name": "tcp", "id": 4, "header_type": "tcp_t", "metadata": False, "pi_omit": True},
            {"name": "udp", "id": 5, "header_type": "udp_t", "metadata": False, "pi_omit": True},
        ],
        "header_stacks": [],
        "header_union_types": [],
        "header_unions": [],
        "header_union_stacks": [],
        "field_lists": [],
        "errors": copy.deepcopy(ERRORS),
        "enums": [],
        "parsers": [
            {
                "name": "parser",
                "id": 0,
                "init_state": "start",
                "parse_states": [
                    {
                        "name": "start",
                        "id": 0,
                        "parser_ops": [
                            {"parameters": [{"type": "regular", "value": "ethernet"}],
                             "op": "extract"}
                        ],
                        "transitions": [
                            {"type": "hexstr", "value": "0x0800", "mask": None,
                             "next_state": "parse_ipv4"},
                            {"type": "default", "value": None, "mask": None, "next_state": None},
                        ],
                        "transition_key": [fld("ethernet", "ether_type")],
                    },
                    {
                        "name": "parse_ipv4",
                        "id": 1,
                        "parser_ops": [
                            {"parameters": [{"type": "regular", "value": "ipv4"}], "op": "extract"}
                        ],
                        "transitions": [
                            {"type": "hexstr", "value": "0x06", "mask": None,
                             "next_state": "parse_tcp"},
                            {"type": "hexstr", "value": "0x11", "mask": None,
                             "next_state": "parse_udp"},
                            {"type": "default", "value": None, "mask": None, "next_state": None},
                        ],
                        "transition_key": [fld("ipv4", "protocol")],
                    },
                    {
                        "name": "parse_tcp",
                        "id": 2,
                        "parser_ops": [
                            {"parameters": [{"type": "regular", "value": "tcp"}], "op": "extract"}
                        ],
                        "transitions": [
                            {"type": "default", "value": None, "mask": None, "next_state": None}
                        ],
                        "transition_key": [],
                    },
                    {
                        "name": "parse_udp",
                        "id": 3,
                        "parser_ops": [
                            {"parameters": [{"type": "regular", "value": "udp"}], "op": "extract"}
                        ],
                        "transitions": [
                            {"type": "default", "value": None, "mask": None, "next_state": None}
                        ],
                        "transition_key": [],
                    },
                ],
            }
        ],
        "parse_vsets": [],
        "deparsers": [
            {"name": "deparser", "id": 0, "order": ["ethernet", "ipv4", "tcp", "udp"],
             "primitives": []}
        ],
        "meter_arrays": [],
        "counter_arrays": [],
        "register_arrays": [],
        "calculations": [],
        "learn_lists": [],
        "actions": [],
        "pipelines": [
            {"name": "ingress", "id": 0, "init_table": None, "tables": [], "action_profiles": [],
             "conditionals": []},
            {"name": "egress", "id": 1, "init_table": None, "tables": [], "action_profiles": [],
             "conditionals": []},
        ],
        "checksums": [],
        "force_arith": [],
        "extern_instances": [],
        "field_aliases": copy.deepcopy(FIELD_ALIASES),
        "program": "t.p4",
        "__meta__": {"version": [2, 23], "compiler": "https://github.com/p4lang/p4c"},
    }  # fmt: skip
    return doc
