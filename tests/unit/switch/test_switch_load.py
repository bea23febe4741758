"""Loading: the control-plane view of a JSON, and constructs refused with their name."""

from __future__ import annotations

import copy
import json

import bmv2json as J
import pytest
from switch_probe import digest_of, probe, tcp_packet

from p4ctl.switch import Pipeline, PipelineError, TableEntry

H = J.hexv


def test_metadata_view(doc) -> None:
    J.action(
        doc,
        "fwd",
        [J.assign(J.fld("standard_metadata", "egress_spec"), J.rd(0))],
        params=[("port", 9)],
    )
    J.action(doc, "NoAction", [])
    J.table(
        doc,
        "ingress",
        "MyIngress.t",
        [("exact", ["ipv4", "dst_addr"]), ("lpm", ["ipv4", "src_addr"])],
        ["fwd", "NoAction"],
        "NoAction",
        size=77,
        support_timeout=True,
    )
    doc["register_arrays"].append({"name": "MyIngress.r", "id": 4, "size": 10, "bitwidth": 48})
    doc["counter_arrays"] += [
        {"name": "MyIngress.c", "id": 0, "is_direct": False, "size": 3},
        {"name": "MyIngress.dc", "id": 1, "is_direct": True, "binding": "MyIngress.t"},
    ]
    J.scalars(doc, ("a", 48), ("b", 9))
    doc["learn_lists"].append(
        {"id": 3, "name": "d_t", "elements": [J.fld("scalars", "a"), J.fld("scalars", "b")]}
    )
    pipe = Pipeline.from_json(json.dumps(doc).encode())
    t = pipe.tables["MyIngress.t"]
    assert (t.name, t.size, t.support_timeout, t.direct_counter) == (
        "MyIngress.t",
        77,
        True,
        "MyIngress.dc",
    )
    assert [(m.name, m.match_type, m.bitwidth) for m in t.match_fields] == [
        ("ipv4.dst_addr", "exact", 32),
        ("ipv4.src_addr", "lpm", 32),
    ]
    assert t.action_names == ["fwd", "NoAction"] and t.default_action == ("NoAction", ())
    assert not t.const_default and not t.has_const_entries
    assert pipe.actions["fwd"].params == [("port", 9)]
    r = pipe.registers["MyIngress.r"]
    assert (r.id, r.size, r.bitwidth) == (4, 10, 48)
    assert pipe.counters["MyIngress.c"].size == 3 and "MyIngress.dc" not in pipe.counters
    assert pipe.direct_counters == {"MyIngress.dc": "MyIngress.t"}
    assert pipe.digests["d_t"].id == 3
    assert pipe.digests["d_t"].fields == [("scalars.a", 48), ("scalars.b", 9)]


def test_reset_state(doc) -> None:
    J.action(doc, "NoAction", [])
    J.action(doc, "fwd", [], params=[("port", 9)])
    J.table(doc, "ingress", "t", [("exact", ["ipv4", "dst_addr"])], ["fwd", "NoAction"], "NoAction")
    doc["register_arrays"].append({"name": "r", "id": 0, "size": 2, "bitwidth": 8})
    pipe = Pipeline.from_json(doc)
    pipe.tables["t"].insert(TableEntry((1,), 0, "fwd", (1,)))
    pipe.tables["t"].set_default("fwd", (2,))
    pipe.registers["r"].write(1, 5)
    pipe.mirror_sessions[1] = [(1, 0)]
    pipe.reset_state()
    assert len(pipe.tables["t"]) == 0 and pipe.tables["t"].default_action == ("NoAction", ())
    assert pipe.registers["r"].values() == [0, 0] and pipe.mirror_sessions == {}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.__setitem__("__meta__", {"version": [3, 0]}), "version"),
        (lambda d: d["meter_arrays"].append({"name": "m", "id": 0}), "meter"),
        (
            lambda d: d["extern_instances"].append({"name": "e", "id": 0, "type": "x"}),
            "extern_instances",
        ),
        (
            lambda d: d["parse_vsets"].append({"name": "v", "id": 0, "compressed_bitwidth": 8}),
            "parse_vsets",
        ),
        (lambda d: d["header_union_stacks"].append({"name": "u", "id": 0}), "header_union_stacks"),
        (
            lambda d: d["headers"].append(
                {"name": "x", "id": 9, "header_type": "nope", "metadata": False}
            ),
            "unknown header type",
        ),
        (lambda d: d["header_types"][1]["fields"].pop(1), "egress_spec"),
        (lambda d: d["pipelines"].pop(), "egress"),
        (lambda d: d["deparsers"].clear(), "deparser"),
        (
            lambda d: d["calculations"].append(
                {"name": "c", "id": 0, "algo": "xxh64", "input": []}
            ),
            "xxh64",
        ),
        (
            lambda d: d["checksums"].append(
                {
                    "name": "k",
                    "id": 0,
                    "target": ["ipv4", "ttl"],
                    "type": "generic",
                    "calculation": "none",
                }
            ),
            "unknown calculation",
        ),
        (
            lambda d: (
                d["header_types"].append({"name": "odd_t", "id": 9, "fields": [["a", 3, False]]})
                or d["headers"].append(
                    {"name": "odd", "id": 9, "header_type": "odd_t", "metadata": False}
                )
            ),
            "whole bytes",
        ),
    ],
)
def test_refused_constructs(doc, mutate, message) -> None:
    mutate(doc)
    with pytest.raises(PipelineError, match=message):
        Pipeline.from_json(doc)


def test_malformed_documents() -> None:
    for bad in (b"\xff\xfe", "{not json", "[1, 2]", json.dumps({"actions": [{"id": 0}]})):
        with pytest.raises(PipelineError):
            Pipeline.from_json(bad)


def test_header_union_validity(doc) -> None:
    """Making one union member valid invalidates the other (header_unions.cpp)."""
    doc["header_union_types"].append(
        {"name": "u_t", "id": 0, "headers": [["tcp", "tcp_t"], ["udp", "udp_t"]]}
    )
    doc["header_unions"].append({"name": "l4", "id": 0, "union_type": "u_t", "header_ids": [4, 5]})
    pipe = probe(
        doc,
        [("t", 8), ("u", 8), ("any", 8)],
        [
            J.prim("add_header", J.hdr("udp")),
            J.assign(J.fld("scalars", "t"), J.fld("tcp", "$valid$")),
            J.assign(J.fld("scalars", "u"), J.fld("udp", "$valid$")),
            J.assign(
                J.fld("scalars", "any"),
                J.op(
                    "b2d", None, J.op("valid_union", None, {"type": "header_union", "value": "l4"})
                ),
            ),
        ],
    )
    assert digest_of(pipe, tcp_packet()) == (0, 1, 1)


def test_json_match_type_optional_is_refused_as_bmv2_does(doc) -> None:
    """p4c writes optional keys as "ternary"; BMv2 knows no "optional" match type."""
    J.action(doc, "NoAction", [])
    J.table(doc, "ingress", "t", [("ternary", ["ipv4", "dst_addr"])], ["NoAction"], "NoAction")
    Pipeline.from_json(copy.deepcopy(doc))  # the ternary form loads
    J.pipeline_obj(doc, "ingress")["tables"][0]["key"][0]["match_type"] = "optional"
    with pytest.raises(PipelineError, match="'optional' is not a BMv2 JSON match type"):
        Pipeline.from_json(doc)
