"""Controls: tables of each match kind, default/const entries, next nodes, conditionals."""

from __future__ import annotations

import time

import bmv2json as J
import pytest
from switch_probe import tcp_packet, udp_packet

from p4ctl.switch import Pipeline, PipelineError, TableEntry
from p4ctl.switch.state import BM_MAX_PRIORITY

H = J.hexv


def marker_program(doc):
    """scalars.mark is digested at the end of ingress (learn list 1)."""
    J.scalars(doc, ("mark", 8), ("mark2", 8))
    doc["learn_lists"].append(
        {
            "id": 1,
            "name": "probe_t",
            "elements": [J.fld("scalars", "mark"), J.fld("scalars", "mark2")],
        }
    )
    J.action(doc, "NoAction", [])
    J.action(doc, "set_mark", [J.assign(J.fld("scalars", "mark"), J.rd(0))], params=[("m", 8)])
    J.action(doc, "set_mark2", [J.assign(J.fld("scalars", "mark2"), J.rd(0))], params=[("m", 8)])
    J.action(doc, "digest", [J.prim("generate_digest", H(1, 4), H(1, 4))])


def marks(pipe: Pipeline, pkt: bytes | None = None, port: int = 1) -> tuple[int, int]:
    res = pipe.process(pkt if pkt is not None else tcp_packet(), port)
    assert len(res.digests) == 1, res
    return res.digests[0][1]


def test_exact_hit_miss_default_and_direct_counter(doc) -> None:
    marker_program(doc)
    J.table(
        doc,
        "ingress",
        "t",
        [("exact", ["ipv4", "dst_addr"]), ("exact", ["tcp", "dst_port"])],
        ["set_mark", "NoAction"],
        "set_mark",
        default_args=["0x09"],
        with_counters=True,
        support_timeout=True,
        base_default_next="tbl_digest",
        next_tables={"set_mark": "tbl_digest", "NoAction": "tbl_digest"},
    )
    J.table(doc, "ingress", "tbl_digest", [], ["digest"], "digest", const_default=True)
    doc["counter_arrays"].append({"name": "t_counter", "id": 0, "is_direct": True, "binding": "t"})
    pipe = Pipeline.from_json(doc)
    t = pipe.tables["t"]
    assert t.direct_counter == "t_counter" and pipe.direct_counters == {"t_counter": "t"}
    assert marks(pipe) == (9, 0)  # miss: default action with its JSON argument
    t.insert(TableEntry((0x0A000002, 80), 0, "set_mark", (5,)))
    before = time.monotonic_ns()
    pkt = tcp_packet()
    assert marks(pipe, pkt) == (5, 0)
    e = t.get((0x0A000002, 80), 0)
    assert (e.packets, e.bytes) == (1, len(pkt)) and e.last_hit_ns >= before
    assert marks(pipe, tcp_packet(dport=81)) == (9, 0)
    assert (e.packets, e.bytes) == (1, len(pkt))  # a miss counts nothing
    t.set_default("NoAction", ())
    assert marks(pipe, tcp_packet(dport=81)) == (0, 0)


def test_next_tables_by_action(doc) -> None:
    """switch (t.apply().action_run): the action that ran picks the next table."""
    marker_program(doc)
    J.action(doc, "other", [])
    J.table(
        doc,
        "ingress",
        "t",
        [("exact", ["tcp", "dst_port"])],
        ["set_mark", "other"],
        "other",
        next_tables={"set_mark": "t2", "other": "tbl_digest"},
    )
    J.table(
        doc,
        "ingress",
        "t2",
        [],
        ["set_mark2"],
        "set_mark2",
        default_args=["0x07"],
        next_tables={"set_mark2": "tbl_digest"},
    )
    J.table(doc, "ingress", "tbl_digest", [], ["digest"], "digest", const_default=True)
    pipe = Pipeline.from_json(doc)
    pipe.tables["t"].insert(TableEntry((80,), 0, "set_mark", (1,)))
    assert marks(pipe) == (1, 7)  # set_mark -> t2
    assert marks(pipe, tcp_packet(dport=22)) == (0, 0)  # other -> straight to the digest


def test_hit_miss_next_tables(doc) -> None:
    marker_program(doc)
    J.table(
        doc,
        "ingress",
        "t",
        [("exact", ["tcp", "dst_port"])],
        ["set_mark", "NoAction"],
        "NoAction",
        next_tables={"__HIT__": "hit_t", "__MISS__": "miss_t"},
    )
    J.table(
        doc,
        "ingress",
        "hit_t",
        [],
        ["set_mark2"],
        "set_mark2",
        default_args=["0x01"],
        next_tables={"set_mark2": "tbl_digest"},
    )
    J.table(
        doc,
        "ingress",
        "miss_t",
        [],
        ["set_mark2"],
        "set_mark2",
        default_args=["0x02"],
        next_tables={"set_mark2": "tbl_digest"},
    )
    J.table(doc, "ingress", "tbl_digest", [], ["digest"], "digest", const_default=True)
    pipe = Pipeline.from_json(doc)
    pipe.tables["t"].insert(TableEntry((80,), 0, "NoAction", ()))
    assert marks(pipe) == (0, 1)
    assert marks(pipe, tcp_packet(dport=81)) == (0, 2)


def test_lpm_ternary_range_and_static_mask(doc) -> None:
    marker_program(doc)
    J.table(
        doc,
        "ingress",
        "lpm",
        [("lpm", ["ipv4", "dst_addr"])],
        ["set_mark", "NoAction"],
        "NoAction",
        next_tables={"set_mark": "tern", "NoAction": "tern"},
    )
    J.table(
        doc,
        "ingress",
        "tern",
        [
            ("ternary", ["ipv4", "src_addr"]),
            ("range", ["tcp", "src_port"]),
            ("exact", ["ethernet", "ether_type"], "0xff00"),
        ],
        ["set_mark2", "NoAction"],
        "NoAction",
        next_tables={"set_mark2": "tbl_digest", "NoAction": "tbl_digest"},
    )
    J.table(doc, "ingress", "tbl_digest", [], ["digest"], "digest", const_default=True)
    pipe = Pipeline.from_json(doc)
    assert [m.match_type for m in pipe.tables["tern"].match_fields] == ["ternary", "range", "exact"]
    lpm, tern = pipe.tables["lpm"], pipe.tables["tern"]
    lpm.insert(TableEntry(((0x0A000000, 8),), 0, "set_mark", (8,)))
    lpm.insert(TableEntry(((0x0A000000, 24),), 0, "set_mark", (24,)))
    tern.insert(TableEntry(((0x0A000000, 0xFF000000), (1000, 2000), 0x0800), 10, "set_mark2", (1,)))
    tern.insert(TableEntry(((0x0A000001, 0xFFFFFFFF), (0, 65535), 0x0800), 20, "set_mark2", (2,)))
    assert marks(pipe, tcp_packet(src="10.0.0.1", dst="10.0.0.9", sport=1500)) == (24, 2)
    assert marks(pipe, tcp_packet(src="10.0.0.7", dst="10.0.1.9", sport=1500)) == (8, 1)
    assert marks(pipe, tcp_packet(src="10.0.0.7", dst="11.0.1.9", sport=2500)) == (0, 0)


def test_valid_match_kind(doc) -> None:
    marker_program(doc)
    J.table(
        doc,
        "ingress",
        "t",
        [("valid", "tcp"), ("valid", "udp")],
        ["set_mark", "NoAction"],
        "NoAction",
        next_tables={"set_mark": "tbl_digest", "NoAction": "tbl_digest"},
    )
    J.table(doc, "ingress", "tbl_digest", [], ["digest"], "digest", const_default=True)
    pipe = Pipeline.from_json(doc)
    pipe.tables["t"].insert(TableEntry((0, 1), 0, "set_mark", (17,)))
    pipe.tables["t"].insert(TableEntry((1, 0), 0, "set_mark", (6,)))
    assert marks(pipe, tcp_packet()) == (6, 0)
    assert marks(pipe, udp_packet()) == (17, 0)


def test_const_entries_from_the_json(doc) -> None:
    marker_program(doc)
    entries = [
        {
            "match_key": [{"match_type": "ternary", "key": "0x0050", "mask": "0xffff"}],
            "action_entry": {"action_id": 1, "action_data": ["0x01"]},
            "priority": 2,
        },
        {
            "match_key": [{"match_type": "ternary", "key": "0x0000", "mask": "0x0000"}],
            "action_entry": {"action_id": 1, "action_data": ["0x02"]},
            "priority": 1,
        },
    ]
    J.table(
        doc,
        "ingress",
        "t",
        [("ternary", ["tcp", "dst_port"])],
        ["set_mark", "NoAction"],
        "NoAction",
        entries=entries,
        next_tables={"set_mark": "tbl_digest", "NoAction": "tbl_digest"},
    )
    J.table(doc, "ingress", "tbl_digest", [], ["digest"], "digest", const_default=True)
    pipe = Pipeline.from_json(doc)
    t = pipe.tables["t"]
    assert t.has_const_entries and len(t) == 2
    # JSON priority 1 beats 2 (BMv2: lower wins); stored as PI reports it.
    assert sorted(e.priority for e in t.entries()) == [BM_MAX_PRIORITY - 2, BM_MAX_PRIORITY - 1]
    assert marks(pipe, tcp_packet(dport=80)) == (2, 0)
    pipe.reset_state()
    assert len(t) == 2


def test_conditionals_and_base_default_next(doc) -> None:
    marker_program(doc)
    J.conditional(doc, "ingress", "node_1", J.op("valid", None, J.hdr("udp")), "udp_t", "tcp_t")
    J.pipeline_obj(doc, "ingress")["init_table"] = "node_1"
    J.table(
        doc,
        "ingress",
        "udp_t",
        [],
        ["set_mark"],
        "set_mark",
        default_args=["0x11"],
        next_tables={"set_mark": "tbl_digest"},
    )
    J.table(
        doc,
        "ingress",
        "tcp_t",
        [],
        ["set_mark"],
        "set_mark",
        default_args=["0x06"],
        next_tables={"set_mark": "tbl_digest"},
    )
    J.table(doc, "ingress", "tbl_digest", [], ["digest"], "digest", const_default=True)
    pipe = Pipeline.from_json(doc)
    assert marks(pipe, udp_packet()) == (0x11, 0)
    assert marks(pipe, tcp_packet()) == (6, 0)


def test_no_default_entry_runs_nothing_and_goes_to_base_default_next(doc) -> None:
    marker_program(doc)
    t = J.table(
        doc,
        "ingress",
        "t",
        [("exact", ["tcp", "dst_port"])],
        ["set_mark"],
        "set_mark",
        default_args=["0x05"],
        base_default_next="tbl_digest",
        next_tables={"set_mark": None},
    )
    del t["default_entry"]
    J.table(doc, "ingress", "tbl_digest", [], ["digest"], "digest", const_default=True)
    pipe = Pipeline.from_json(doc)
    assert marks(pipe) == (0, 0)  # miss: no action, then base_default_next
    pipe.tables["t"].insert(TableEntry((80,), 0, "set_mark", (3,)))
    assert pipe.process(tcp_packet(), 1).digests == []  # hit: set_mark's next is the end


def test_exit_stops_the_control(doc) -> None:
    marker_program(doc)
    J.action(
        doc,
        "leave",
        [
            J.assign(J.fld("scalars", "mark"), H(1, 1)),
            J.prim("exit"),
            J.prim("generate_digest", H(1, 4), H(1, 4)),
        ],
    )
    J.table(doc, "ingress", "t", [], ["leave"], "leave", next_tables={"leave": "t2"})
    J.table(doc, "ingress", "t2", [], ["set_mark2"], "set_mark2", default_args=["0x02"])
    pipe = Pipeline.from_json(doc)
    # the rest of the action still runs (BMv2), the next table does not
    assert marks(pipe) == (1, 0)


def test_bad_next_tables_are_refused(doc) -> None:
    marker_program(doc)
    J.table(
        doc,
        "ingress",
        "t",
        [],
        ["set_mark"],
        "set_mark",
        default_args=["0x01"],
        next_tables={"set_mark": "missing"},
    )
    with pytest.raises(PipelineError, match="missing"):
        Pipeline.from_json(doc)


def test_action_profiles_are_refused(doc) -> None:
    marker_program(doc)
    t = J.table(doc, "ingress", "t", [], ["set_mark"], "set_mark", default_args=["0x01"])
    t["type"] = "indirect"
    with pytest.raises(PipelineError, match="action profiles"):
        Pipeline.from_json(doc)
