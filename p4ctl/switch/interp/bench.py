"""Packets per second through the interpreter: ``python -m p4ctl.switch.interp.bench``.

By default it runs the committed flow-cache program
(``pipelines/flowcache/bmv2.json``) when present, otherwise a program built
here in p4c-bm2-ss's JSON shape with the same structure: parse Ethernet/IPv4/
TCP/UDP, port -> VRF table, crc32 bucket hash, exact flow table with a direct
counter, and on a miss ``WAYS`` overflow probes of 3 register reads each plus
the slot's action registers (about 30 register reads), the TCP-state register,
a digest when nothing matched. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path
from typing import Any

from p4ctl.flows.key import KEY_FIELDS
from p4ctl.switch.pipeline import Pipeline
from p4ctl.switch.state import TableEntry

__all__ = ["STANDARD_METADATA", "flowcache_like", "main"]

COMMITTED = Path(__file__).resolve().parents[3] / "pipelines/flowcache/bmv2.json"

#: the flow key (field, width), in hash order: the controller's layout
KEY = KEY_FIELDS

#: v1model's standard_metadata as p4c-bm2-ss declares it
STANDARD_METADATA = [
    ["ingress_port", 9, False],
    ["egress_spec", 9, False],
    ["egress_port", 9, False],
    ["instance_type", 32, False],
    ["packet_length", 32, False],
    ["enq_timestamp", 32, False],
    ["enq_qdepth", 19, False],
    ["deq_timedelta", 32, False],
    ["deq_qdepth", 19, False],
    ["ingress_global_timestamp", 48, False],
    ["egress_global_timestamp", 48, False],
    ["mcast_grp", 16, False],
    ["egress_rid", 16, False],
    ["checksum_error", 1, False],
    ["parser_error", 32, False],
    ["priority", 3, False],
    ["_padding", 3, False],
]


def _f(h: str, f: str) -> dict[str, Any]:
    return {"type": "field", "value": [h, f]}


def _x(v: int, nbytes: int) -> dict[str, Any]:
    return {"type": "hexstr", "value": "0x" + format(v, f"0{nbytes * 2}x")}


def _e(op: str, left: Any, right: Any) -> dict[str, Any]:
    return {"type": "expression", "value": {"op": op, "left": left, "right": right}}


def _p(op: str, *params: Any) -> dict[str, Any]:
    return {"op": op, "parameters": list(params)}


def _assign(dst: Any, src: Any) -> dict[str, Any]:
    if src.get("type") == "expression":
        src = {"type": "expression", "value": src}
    return _p("assign", dst, src)


def flowcache_like(ways: int = 8, flow_entries: int = 4096, overflow: int = 1024) -> dict:
    """A BMv2 JSON with the flow-cache program's structure (see the module docstring)."""
    std = [list(f) for f in STANDARD_METADATA]
    scal = [[n, w, False] for n, w in KEY] + [
        ["in_port", 16, False],
        ["bucket_hash", 64, False],
        ["ovf_bucket", 32, False],
        ["matched", 8, False],
        ["ovf_slot", 32, False],
        ["flow_id", 32, False],
        ["valid", 8, False],
        ["addrs", 64, False],
        ["rest", 56, False],
        ["slot", 32, False],
        ["kind", 8, False],
        ["port", 16, False],
        ["nat_addrs", 64, False],
        ["nat_ports", 32, False],
        ["old_state", 8, False],
        ["tcp_state", 8, False],
    ]
    doc: dict[str, Any] = {
        "header_types": [
            {"name": "scalars_0", "id": 0, "fields": scal},
            {"name": "standard_metadata", "id": 1, "fields": std},
            {
                "name": "ethernet_t",
                "id": 2,
                "fields": [
                    ["dst_addr", 48, False],
                    ["src_addr", 48, False],
                    ["ether_type", 16, False],
                ],
            },
            {
                "name": "ipv4_t",
                "id": 3,
                "fields": [
                    ["version", 4, False],
                    ["ihl", 4, False],
                    ["diffserv", 8, False],
                    ["total_len", 16, False],
                    ["identification", 16, False],
                    ["flags", 3, False],
                    ["frag_offset", 13, False],
                    ["ttl", 8, False],
                    ["protocol", 8, False],
                    ["hdr_checksum", 16, False],
                    ["src_addr", 32, False],
                    ["dst_addr", 32, False],
                ],
            },
            {
                "name": "tcp_t",
                "id": 4,
                "fields": [
                    ["src_port", 16, False],
                    ["dst_port", 16, False],
                    ["seq_no", 32, False],
                    ["ack_no", 32, False],
                    ["data_offset", 4, False],
                    ["res", 4, False],
                    ["flags", 8, False],
                    ["window", 16, False],
                    ["checksum", 16, False],
                    ["urgent_ptr", 16, False],
                ],
            },
            {
                "name": "udp_t",
                "id": 5,
                "fields": [
                    ["src_port", 16, False],
                    ["dst_port", 16, False],
                    ["length", 16, False],
                    ["checksum", 16, False],
                ],
            },
        ],
        "headers": [
            {"name": "scalars", "id": 0, "header_type": "scalars_0", "metadata": True},
            {
                "name": "standard_metadata",
                "id": 1,
                "header_type": "standard_metadata",
                "metadata": True,
            },
            {"name": "ethernet", "id": 2, "header_type": "ethernet_t", "metadata": False},
            {"name": "ipv4", "id": 3, "header_type": "ipv4_t", "metadata": False},
            {"name": "tcp", "id": 4, "header_type": "tcp_t", "metadata": False},
            {"name": "udp", "id": 5, "header_type": "udp_t", "metadata": False},
        ],
        "errors": [
            ["NoError", 0],
            ["PacketTooShort", 1],
            ["NoMatch", 2],
            ["StackOutOfBounds", 3],
            ["HeaderTooShort", 4],
            ["ParserTimeout", 5],
            ["ParserInvalidArgument", 6],
        ],
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
                            {
                                "op": "extract",
                                "parameters": [{"type": "regular", "value": "ethernet"}],
                            }
                        ],
                        "transition_key": [_f("ethernet", "ether_type")],
                        "transitions": [
                            {
                                "type": "hexstr",
                                "value": "0x0800",
                                "mask": None,
                                "next_state": "parse_ipv4",
                            },
                            {"type": "default", "value": None, "mask": None, "next_state": None},
                        ],
                    },
                    {
                        "name": "parse_ipv4",
                        "id": 1,
                        "parser_ops": [
                            {"op": "extract", "parameters": [{"type": "regular", "value": "ipv4"}]}
                        ],
                        "transition_key": [_f("ipv4", "protocol")],
                        "transitions": [
                            {
                                "type": "hexstr",
                                "value": "0x06",
                                "mask": None,
                                "next_state": "parse_tcp",
                            },
                            {
                                "type": "hexstr",
                                "value": "0x11",
                                "mask": None,
                                "next_state": "parse_udp",
                            },
                            {"type": "default", "value": None, "mask": None, "next_state": None},
                        ],
                    },
                    {
                        "name": "parse_tcp",
                        "id": 2,
                        "parser_ops": [
                            {"op": "extract", "parameters": [{"type": "regular", "value": "tcp"}]}
                        ],
                        "transition_key": [],
                        "transitions": [
                            {"type": "default", "value": None, "mask": None, "next_state": None}
                        ],
                    },
                    {
                        "name": "parse_udp",
                        "id": 3,
                        "parser_ops": [
                            {"op": "extract", "parameters": [{"type": "regular", "value": "udp"}]}
                        ],
                        "transition_key": [],
                        "transitions": [
                            {"type": "default", "value": None, "mask": None, "next_state": None}
                        ],
                    },
                ],
            }
        ],
        "deparsers": [
            {
                "name": "deparser",
                "id": 0,
                "order": ["ethernet", "ipv4", "tcp", "udp"],
                "primitives": [],
            }
        ],
        "counter_arrays": [
            {
                "name": "FlowIngress.flow_counter",
                "id": 0,
                "is_direct": True,
                "binding": "FlowIngress.flow_table",
            },
            {"name": "FlowIngress.overflow_counter", "id": 1, "is_direct": False, "size": overflow},
        ],
        "register_arrays": [
            {
                "name": "FlowIngress.flow_tcp_state",
                "id": 0,
                "size": flow_entries + overflow,
                "bitwidth": 8,
            },
            {
                "name": "FlowIngress.flow_last_seen",
                "id": 1,
                "size": flow_entries + overflow,
                "bitwidth": 48,
            },
            {"name": "FlowIngress.ovf_valid", "id": 2, "size": overflow, "bitwidth": 1},
            {"name": "FlowIngress.ovf_key_addrs", "id": 3, "size": overflow, "bitwidth": 64},
            {"name": "FlowIngress.ovf_key_rest", "id": 4, "size": overflow, "bitwidth": 56},
            {"name": "FlowIngress.ovf_action", "id": 5, "size": overflow, "bitwidth": 8},
            {"name": "FlowIngress.ovf_port", "id": 6, "size": overflow, "bitwidth": 16},
            {"name": "FlowIngress.ovf_nat_addrs", "id": 7, "size": overflow, "bitwidth": 64},
            {"name": "FlowIngress.ovf_nat_ports", "id": 8, "size": overflow, "bitwidth": 32},
        ],
        "calculations": [
            {"name": "calc", "id": 0, "algo": "crc32", "input": [_f("scalars", n) for n, _w in KEY]}
        ],
        "learn_lists": [
            {
                "id": 1,
                "name": "new_flow_digest_t",
                "elements": [_f("scalars", n) for n, _w in KEY]
                + [_f("scalars", "in_port"), _f("scalars", "bucket_hash")],
            }
        ],
        "actions": [],
        "pipelines": [
            {
                "name": "ingress",
                "id": 0,
                "init_table": None,
                "tables": [],
                "action_profiles": [],
                "conditionals": [],
            },
            {
                "name": "egress",
                "id": 1,
                "init_table": None,
                "tables": [],
                "action_profiles": [],
                "conditionals": [],
            },
        ],
        "checksums": [],
        "field_aliases": [
            [
                "intrinsic_metadata.ingress_global_timestamp",
                ["standard_metadata", "ingress_global_timestamp"],
            ],
            ["intrinsic_metadata.mcast_grp", ["standard_metadata", "mcast_grp"]],
            ["intrinsic_metadata.egress_rid", ["standard_metadata", "egress_rid"]],
        ],
        "__meta__": {"version": [2, 23], "compiler": "p4ctl bench (p4c-bm2-ss shape)"},
    }
    actions = doc["actions"]
    ingress = doc["pipelines"][0]

    def action(name: str, prims: list[Any], params: list[tuple[str, int]] = ()) -> int:
        actions.append(
            {
                "name": name,
                "id": len(actions),
                "runtime_data": [{"name": n, "bitwidth": w} for n, w in params],
                "primitives": prims,
            }
        )
        return len(actions) - 1

    def table(name: str, keys: list[tuple[str, list[str]]], acts: list[str], default: str,
              nxt: dict[str, Any], default_args: list[str] = (), **kw: Any) -> None:  # fmt: skip
        ids = [next(a["id"] for a in actions if a["name"] == n) for n in acts]
        ingress["tables"].append(
            {
                "name": name,
                "id": len(ingress["tables"]),
                "key": [
                    {"match_type": m, "name": ".".join(t), "target": t, "mask": None}
                    for m, t in keys
                ],
                "match_type": "exact",
                "type": "simple",
                "max_size": kw.get("size", 1024),
                "with_counters": kw.get("counters", False),
                "support_timeout": kw.get("timeout", False),
                "direct_meters": None,
                "action_ids": ids,
                "actions": acts,
                "base_default_next": None,
                "next_tables": nxt,
                "default_entry": {
                    "action_id": ids[acts.index(default)],
                    "action_const": kw.get("const", False),
                    "action_data": list(default_args),
                    "action_entry_const": kw.get("const", False),
                },
            }
        )

    def cond(name: str, expr: Any, t: Any, f: Any) -> None:
        ingress["conditionals"].append(
            {
                "name": name,
                "id": len(ingress["conditionals"]),
                "expression": expr,
                "true_next": t,
                "false_next": f,
            }
        )

    def tbl_act(name: str, prims: list[Any], nxt: Any) -> None:
        action(name, prims)
        table(f"tbl_{name}", [], [name], name, {name: nxt}, const=True)

    s = "scalars"
    sm = "standard_metadata"
    action("NoAction", [])
    action(
        "FlowIngress.set_vrf",
        [_assign(_f(s, "vrf"), {"type": "runtime_data", "value": 0})],
        [("vrf", 16)],
    )
    action(
        "FlowIngress.flow_forward",
        [
            _assign(_f(s, "flow_id"), {"type": "runtime_data", "value": 0}),
            _assign(_f(sm, "egress_spec"), {"type": "runtime_data", "value": 1}),
        ],
        [("flow_id", 32), ("port", 9)],
    )
    action(
        "FlowIngress.flow_drop",
        [
            _assign(_f(s, "flow_id"), {"type": "runtime_data", "value": 0}),
            _p("mark_to_drop", {"type": "header", "value": sm}),
        ],
        [("flow_id", 32)],
    )
    action("FlowIngress.miss_drop", [_p("mark_to_drop", {"type": "header", "value": sm})])
    ingress["init_table"] = "node_start"
    cond("node_start", _e("d2b", None, _f("ipv4", "$valid$")), "tbl_in_port", None)
    tbl_act("in_port", [_assign(_f(s, "in_port"), _f(sm, "ingress_port"))], "FlowIngress.port_vrf")
    table(
        "FlowIngress.port_vrf",
        [("exact", [s, "in_port"])],
        ["FlowIngress.set_vrf"],
        "FlowIngress.set_vrf",
        {"FlowIngress.set_vrf": "tbl_key"},
        ["0x0000"],
    )
    tbl_act(
        "key",
        [
            _assign(_f(s, "src_addr"), _f("ipv4", "src_addr")),
            _assign(_f(s, "dst_addr"), _f("ipv4", "dst_addr")),
            _assign(_f(s, "proto"), _f("ipv4", "protocol")),
        ],
        "node_tcp",
    )
    cond("node_tcp", _e("d2b", None, _f("tcp", "$valid$")), "tbl_tcp_ports", "node_udp")
    tbl_act(
        "tcp_ports",
        [
            _assign(_f(s, "src_port"), _f("tcp", "src_port")),
            _assign(_f(s, "dst_port"), _f("tcp", "dst_port")),
        ],
        "tbl_hash",
    )
    cond("node_udp", _e("d2b", None, _f("udp", "$valid$")), "tbl_udp_ports", "tbl_hash")
    tbl_act(
        "udp_ports",
        [
            _assign(_f(s, "src_port"), _f("udp", "src_port")),
            _assign(_f(s, "dst_port"), _f("udp", "dst_port")),
        ],
        "tbl_hash",
    )
    tbl_act(
        "hash",
        [
            _p(
                "modify_field_with_hash_based_offset",
                _f(s, "bucket_hash"),
                _x(0, 8),
                {"type": "calculation", "value": "calc"},
                _x(1 << 32, 9),
            )
        ],
        "FlowIngress.flow_table",
    )
    table(
        "FlowIngress.flow_table",
        [("exact", [s, n]) for n, _w in KEY],
        ["FlowIngress.flow_forward", "FlowIngress.flow_drop", "NoAction"],
        "NoAction",
        {"__HIT__": "tbl_hit", "__MISS__": "tbl_bucket"},
        size=flow_entries,
        counters=True,
        timeout=True,
        const=True,
    )
    tbl_act("hit", [_assign(_f(s, "matched"), _x(1, 1))], "node_matched")
    tbl_act(
        "bucket",
        [_assign(_f(s, "ovf_bucket"), _e("%", _f(s, "bucket_hash"), _x(overflow // ways, 8)))],
        "tbl_probe_0",
    )

    def reg(name: str) -> dict[str, Any]:
        return {"type": "register_array", "value": f"FlowIngress.{name}"}

    for w in range(ways):
        slot = _e(
            "&", _e("+", _e("*", _f(s, "ovf_bucket"), _x(ways, 4)), _x(w, 4)), _x(0xFFFFFFFF, 4)
        )
        tbl_act(
            f"probe_{w}",
            [
                _assign(_f(s, "slot"), slot),
                _p("register_read", _f(s, "valid"), reg("ovf_valid"), _f(s, "slot")),
                _p("register_read", _f(s, "addrs"), reg("ovf_key_addrs"), _f(s, "slot")),
                _p("register_read", _f(s, "rest"), reg("ovf_key_rest"), _f(s, "slot")),
            ],
            f"node_probe_{w}",
        )
        addrs = _e("|", _e("<<", _f(s, "src_addr"), _x(32, 4)), _f(s, "dst_addr"))
        rest = _e(
            "|",
            _e("<<", _f(s, "vrf"), _x(40, 4)),
            _e(
                "|",
                _e("<<", _f(s, "proto"), _x(32, 4)),
                _e("|", _e("<<", _f(s, "src_port"), _x(16, 4)), _f(s, "dst_port")),
            ),
        )
        nxt = f"tbl_probe_{w + 1}" if w + 1 < ways else "node_matched"
        cond(
            f"node_probe_{w}",
            _e(
                "and",
                _e("and", _e("==", _f(s, "matched"), _x(0, 1)), _e("==", _f(s, "valid"), _x(1, 1))),
                _e("and", _e("==", _f(s, "addrs"), addrs), _e("==", _f(s, "rest"), rest)),
            ),
            f"tbl_set_{w}",
            nxt,
        )
        tbl_act(
            f"set_{w}",
            [_assign(_f(s, "matched"), _x(1, 1)), _assign(_f(s, "ovf_slot"), _f(s, "slot"))],
            nxt,
        )
    cond("node_matched", _e("==", _f(s, "matched"), _x(1, 1)), "node_ovf", "tbl_digest")
    cond("node_ovf", _e("==", _f(s, "flow_id"), _x(0, 4)), "tbl_ovf_action", "tbl_state")
    tbl_act(
        "ovf_action",
        [
            _p("register_read", _f(s, "kind"), reg("ovf_action"), _f(s, "ovf_slot")),
            _p("register_read", _f(s, "port"), reg("ovf_port"), _f(s, "ovf_slot")),
            _p("register_read", _f(s, "nat_addrs"), reg("ovf_nat_addrs"), _f(s, "ovf_slot")),
            _p("register_read", _f(s, "nat_ports"), reg("ovf_nat_ports"), _f(s, "ovf_slot")),
            _p(
                "count",
                {"type": "counter_array", "value": "FlowIngress.overflow_counter"},
                _f(s, "ovf_slot"),
            ),
            _assign(
                _f(s, "flow_id"),
                _e("&", _e("+", _x(flow_entries, 4), _f(s, "ovf_slot")), _x(0xFFFFFFFF, 4)),
            ),
            _assign(_f(sm, "egress_spec"), _e("&", _f(s, "port"), _x(0x1FF, 2))),
        ],
        "tbl_state",
    )
    tbl_act(
        "state",
        [
            _p(
                "register_write",
                reg("flow_last_seen"),
                _f(s, "flow_id"),
                _f(sm, "ingress_global_timestamp"),
            ),
            _p("register_read", _f(s, "old_state"), reg("flow_tcp_state"), _f(s, "flow_id")),
            _assign(
                _f(s, "tcp_state"),
                _e("|", _f(s, "old_state"), _e("&", _f("tcp", "flags"), _x(0x1F, 1))),
            ),
            _p("register_write", reg("flow_tcp_state"), _f(s, "flow_id"), _f(s, "tcp_state")),
        ],
        None,
    )
    tbl_act("digest", [_p("generate_digest", _x(1, 4), _x(1, 4))], "FlowIngress.miss_policy")
    table(
        "FlowIngress.miss_policy",
        [],
        ["FlowIngress.miss_drop"],
        "FlowIngress.miss_drop",
        {"FlowIngress.miss_drop": None},
    )
    return doc


def _packet(i: int) -> bytes:
    src = (10 << 24) | (i & 0xFFFFFF)
    eth = bytes.fromhex("000000000002000000000001") + b"\x08\x00"
    ip = (
        bytes([0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0])
        + src.to_bytes(4, "big")
        + bytes([10, 0, 0, 2])
    )
    tcp = (
        (1234).to_bytes(2, "big")
        + (80).to_bytes(2, "big")
        + bytes(8)
        + bytes([0x50, 0x10])
        + bytes(6)
    )
    return eth + ip + tcp


def _measure(pipe: Pipeline, packets: list[bytes], seconds: float) -> float:
    n, t0 = 0, time.perf_counter()
    while True:
        for pkt in packets:
            pipe.process(pkt, 1, now_us=n)
        n += len(packets)
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


def _fill_last_ways(pipe: Pipeline, packets: list[bytes], ways: int, overflow: int) -> None:
    """Write each packet's key into the last way of its overflow bucket (all probes read)."""
    regs = pipe.registers
    dst = (10 << 24) | 2
    for pkt in packets:
        src = int.from_bytes(pkt[26:30], "big")
        key = (((((0 << 32 | src) << 32 | dst) << 8 | 6) << 16 | 1234) << 16) | 80
        bucket = zlib.crc32(key.to_bytes(15, "big")) % (overflow // ways)
        slot = bucket * ways + ways - 1
        regs["FlowIngress.ovf_valid"].write(slot, 1)
        regs["FlowIngress.ovf_key_addrs"].write(slot, (src << 32) | dst)
        regs["FlowIngress.ovf_key_rest"].write(slot, (6 << 32) | (1234 << 16) | 80)
        regs["FlowIngress.ovf_action"].write(slot, 1)  # OVF_ACTION_FORWARD
        regs["FlowIngress.ovf_port"].write(slot, 3)


def _phases(pipe: Pipeline, packets: list[bytes], ways: int, seconds: float) -> None:
    """Miss in both, overflow hit in the last way, main-table hit: packets/s of each."""
    overflow = pipe.registers["FlowIngress.ovf_valid"].size
    probe_reads = 3 * ways
    rate = _measure(pipe, packets, seconds)
    print(f"  miss in both (digest, drop), {probe_reads} register reads: {rate:,.0f} packets/s")
    _fill_last_ways(pipe, packets, ways, overflow)
    rate = _measure(pipe, packets, seconds)
    print(
        f"  overflow hit in the last way, {probe_reads + 5} register reads: {rate:,.0f} packets/s"
    )
    table = pipe.tables["FlowIngress.flow_table"]
    for i, pkt in enumerate(packets):
        key = (0, int.from_bytes(pkt[26:30], "big"), (10 << 24) | 2, 6, 1234, 80)
        table.insert(TableEntry(key, 0, "FlowIngress.flow_forward", (i, 3)))
    rate = _measure(pipe, packets, seconds)
    print(f"  main-table hit: {rate:,.0f} packets/s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", type=Path, help="BMv2 JSON to run (default: the committed one)")
    ap.add_argument("--builtin", action="store_true", help="run the built-in program")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--ways", type=int, help="overflow ways (default: 4 for a JSON, 8 built in)")
    args = ap.parse_args(argv)
    packets = [_packet(i) for i in range(256)]
    path = args.json or COMMITTED
    if not args.builtin and path.exists():
        t0 = time.perf_counter()
        pipe = Pipeline.from_json(path.read_bytes())
        print(f"{path}: loaded in {time.perf_counter() - t0:.2f} s")
        if "FlowIngress.flow_table" in pipe.tables:
            _phases(pipe, packets, args.ways or 4, args.seconds)
        else:
            rate = _measure(pipe, packets, args.seconds)
            print(f"  {rate:,.0f} packets/s (TCP packets, tables as loaded)")
        return
    ways = args.ways or 8
    print(f"built-in flow-cache-shaped program, {ways} overflow ways")
    _phases(Pipeline.from_json(flowcache_like(ways=ways)), packets, ways, args.seconds)


if __name__ == "__main__":
    main()
