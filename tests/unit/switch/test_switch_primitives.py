"""v1model primitives and simple_switch's packet flow (clone, resubmit, recirculate...)."""

from __future__ import annotations

import logging

import bmv2json as J
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from switch_probe import digest_of, probe, tcp_packet

from p4ctl.switch import Pipeline, PipelineError

H = J.hexv
SM = "standard_metadata"


def test_forward_by_egress_spec_and_standard_metadata(doc) -> None:
    pipe = probe(
        doc,
        [("port", 16), ("len", 32), ("inst", 32), ("ts", 48)],
        [
            J.assign(J.fld("scalars", "port"), J.fld(SM, "ingress_port")),
            J.assign(J.fld("scalars", "len"), J.fld(SM, "packet_length")),
            J.assign(J.fld("scalars", "inst"), J.fld(SM, "instance_type")),
            J.assign(J.fld("scalars", "ts"), J.fld(SM, "ingress_global_timestamp")),
            J.assign(J.fld(SM, "egress_spec"), H(7, 2)),
        ],
    )
    pkt = tcp_packet()
    res = pipe.process(pkt, 3, now_us=123456)
    assert res.digests == [("probe_t", (3, len(pkt), 0, 123456))]
    assert res.outputs == [(7, pkt)]


def test_mark_to_drop_and_drop_port(doc) -> None:
    J.run_actions(doc, "ingress", [J.prim("mark_to_drop", J.hdr(SM))])
    assert Pipeline.from_json(doc).process(tcp_packet(), 1).outputs == []
    doc = J.base()
    J.run_actions(doc, "ingress", [J.assign(J.fld(SM, "egress_spec"), H(511, 2))])
    assert Pipeline.from_json(doc).process(tcp_packet(), 1).outputs == []


def test_drop_in_egress_and_egress_metadata(doc) -> None:
    J.scalars(doc, ("x", 8))
    J.run_actions(doc, "ingress", [J.assign(J.fld(SM, "egress_spec"), H(4, 2))])
    J.action(doc, "drop_if_4", [J.prim("mark_to_drop", J.hdr(SM))])
    J.action(
        doc, "keep", [J.assign(J.fld("ethernet", "src_addr"), J.fld(SM, "egress_global_timestamp"))]
    )
    J.table(doc, "egress", "e", [("exact", [SM, "egress_port"])], ["drop_if_4", "keep"], "keep")
    pipe = Pipeline.from_json(doc)
    res = pipe.process(tcp_packet(), 1, now_us=0xABCDEF)
    assert len(res.outputs) == 1 and res.outputs[0][0] == 4
    assert Ether(res.outputs[0][1]).src == "00:00:00:ab:cd:ef"
    from p4ctl.switch import TableEntry

    pipe.tables["e"].insert(TableEntry((4,), 0, "drop_if_4", ()))
    assert pipe.process(tcp_packet(), 1).outputs == []


def test_add_and_remove_header(doc) -> None:
    """setValid zeroes the header (add_header) and deparse emits it; setInvalid removes it."""
    J.header_type(doc, "tag_t", [["a", 8, False], ["b", 8, False]])
    J.header(doc, "tag", "tag_t")
    doc["deparsers"][0]["order"] = ["ethernet", "tag", "ipv4", "tcp", "udp"]
    J.run_actions(
        doc,
        "ingress",
        [
            J.prim("add_header", J.hdr("tag")),
            J.assign(J.fld("tag", "b"), H(0x42, 1)),
            J.prim("remove_header", J.hdr("tcp")),
        ],
    )
    pipe = Pipeline.from_json(doc)
    pkt = tcp_packet(payload=b"")
    ((_port, out),) = pipe.process(pkt, 1).outputs
    assert out == pkt[:14] + b"\x00\x42" + pkt[14:34] + pkt[54:]


def test_assign_header_from_invalid_source_invalidates(doc) -> None:
    J.header(doc, "udp2", "udp_t")
    doc["deparsers"][0]["order"] = ["ethernet", "ipv4", "tcp", "udp", "udp2"]
    pipe = probe(
        doc,
        [("v", 8)],
        [
            J.prim("add_header", J.hdr("udp2")),
            J.prim("assign_header", J.hdr("udp2"), J.hdr("udp")),  # udp is invalid on TCP
            J.assign(J.fld("scalars", "v"), J.fld("udp2", "$valid$")),
        ],
    )
    assert digest_of(pipe) == (0,)


def test_registers_read_write_and_out_of_range(doc, caplog) -> None:
    doc["register_arrays"].append({"name": "r", "id": 0, "size": 4, "bitwidth": 8})
    pipe = probe(
        doc,
        [("v", 16), ("w", 16)],
        [
            J.prim(
                "register_read",
                J.fld("scalars", "v"),
                {"type": "register_array", "value": "r"},
                H(2, 4),
            ),
            J.prim(
                "register_write",
                {"type": "register_array", "value": "r"},
                H(1, 4),
                J.param_expr(J.op("+", J.fld("ipv4", "ttl"), H(0x1F0, 2))),
            ),
            J.assign(J.fld("scalars", "w"), H(0xBEEF, 2)),
            J.prim(
                "register_read",
                J.fld("scalars", "w"),
                {"type": "register_array", "value": "r"},
                H(9, 4),
            ),
        ],
    )
    reg = pipe.registers["r"]
    reg.write(2, 200)
    with caplog.at_level(logging.ERROR, logger="p4ctl.switch.interp"):
        assert digest_of(pipe, tcp_packet(ttl=64)) == (200, 0xBEEF)  # index 9: not read
    assert reg.read(1) == (64 + 0x1F0) & 0xFF  # truncated to the register's 8 bits
    assert "out of bounds" in caplog.text


def test_count_indexed_counter(doc) -> None:
    doc["counter_arrays"].append({"name": "c", "id": 0, "is_direct": False, "size": 4})
    J.run_actions(
        doc, "ingress", [J.prim("count", {"type": "counter_array", "value": "c"}, H(3, 4))]
    )
    pipe = Pipeline.from_json(doc)
    pkt = tcp_packet()
    pipe.process(pkt, 1)
    pipe.process(pkt, 1)
    assert pipe.counters["c"].read(3) == (2, 2 * len(pkt))
    pipe.reset_state()
    assert pipe.counters["c"].read(3) == (0, 0)


def test_digest_is_one_per_packet_last_call_wins(doc) -> None:
    J.scalars(doc, ("a", 8), ("b", 8))
    doc["learn_lists"] += [
        {"id": 1, "name": "first_t", "elements": [J.fld("scalars", "a")]},
        {"id": 2, "name": "second_t", "elements": [J.fld("scalars", "b"), J.fld("scalars", "a")]},
    ]
    J.run_actions(
        doc,
        "ingress",
        [
            J.assign(J.fld("scalars", "a"), H(1, 1)),
            J.prim("generate_digest", H(1, 4), H(1, 4)),
            J.assign(J.fld("scalars", "b"), H(2, 1)),
            J.prim("generate_digest", H(1, 4), H(2, 4)),
            J.assign(J.fld("scalars", "a"), H(3, 1)),  # values are read at the end of ingress
        ],
    )
    pipe = Pipeline.from_json(doc)
    assert pipe.digests["second_t"].fields == [("scalars.b", 8), ("scalars.a", 8)]
    assert pipe.process(tcp_packet(), 1).digests == [("second_t", (2, 3))]


def test_unknown_learn_list_is_refused(doc) -> None:
    J.run_actions(doc, "ingress", [J.prim("generate_digest", H(1, 4), H(9, 4))])
    with pytest.raises(PipelineError, match="learn list id 9"):
        Pipeline.from_json(doc)


def test_clone_ingress_to_egress(doc) -> None:
    """I2E clone: a re-parsed copy with metadata reset except the field list, instance 1."""
    J.scalars(doc, ("keep", 8), ("lose", 8))
    doc["field_lists"].append({"id": 1, "name": "fl", "elements": [J.fld("scalars", "keep")]})
    J.run_actions(
        doc,
        "ingress",
        [
            J.assign(J.fld("scalars", "keep"), H(0x11, 1)),
            J.assign(J.fld("scalars", "lose"), H(0x22, 1)),
            J.assign(J.fld("ipv4", "ttl"), H(1, 1)),  # the clone is the packet as received
            J.prim("clone_ingress_pkt_to_egress", H(5, 4), H(1, 4)),
            J.assign(J.fld(SM, "egress_spec"), H(2, 2)),
        ],
    )
    J.action(
        doc,
        "tag",
        [
            J.assign(
                J.fld("ethernet", "dst_addr"),
                J.param_expr(
                    J.op(
                        "|",
                        J.op("<<", J.fld(SM, "instance_type"), H(16, 1)),
                        J.op(
                            "|",
                            J.op("<<", J.fld("scalars", "keep"), H(8, 1)),
                            J.fld("scalars", "lose"),
                        ),
                    )
                ),
            ),
            J.assign(J.fld("ethernet", "src_addr"), J.fld(SM, "egress_rid")),
        ],
    )
    J.table(doc, "egress", "e", [], ["tag"], "tag")
    pipe = Pipeline.from_json(doc)
    pkt = tcp_packet(ttl=64)
    assert [port for port, _ in pipe.process(pkt, 1).outputs] == [2]  # no session: no clone
    pipe.mirror_sessions[5] = [(9, 3)]
    outs = pipe.process(pkt, 1).outputs
    assert [port for port, _ in outs] == [9, 2]
    clone, orig = Ether(outs[0][1]), Ether(outs[1][1])
    assert clone.dst == "00:00:00:01:11:00" and clone.src == "00:00:00:00:00:03"
    assert clone[IP].ttl == 64 and orig[IP].ttl == 1
    assert orig.dst == "00:00:00:00:11:22"


def test_clone_egress_to_egress(doc) -> None:
    J.scalars(doc, ("n", 8))
    J.run_actions(doc, "ingress", [J.assign(J.fld(SM, "egress_spec"), H(2, 2))])
    J.action(doc, "maybe_clone", [J.prim("clone_egress_pkt_to_egress", H(7, 4), H(0, 4))])
    J.action(doc, "nothing", [])
    J.table(
        doc,
        "egress",
        "e",
        [("exact", [SM, "instance_type"])],
        ["maybe_clone", "nothing"],
        "maybe_clone",
    )
    from p4ctl.switch import TableEntry

    pipe = Pipeline.from_json(doc)
    pipe.tables["e"].insert(TableEntry((2,), 0, "nothing", ()))  # clones do not clone again
    pipe.mirror_sessions[7] = [(8, 0), (9, 0)]
    pkt = tcp_packet()
    # the original leaves egress first; its clones pass through egress after it
    assert pipe.process(pkt, 1).outputs == [(2, pkt), (8, pkt), (9, pkt)]


def test_resubmit_with_field_list(doc) -> None:
    J.scalars(doc, ("count", 8))
    doc["field_lists"].append({"id": 1, "name": "fl", "elements": [J.fld("scalars", "count")]})
    doc["learn_lists"].append(
        {
            "id": 1,
            "name": "probe_t",
            "elements": [J.fld("scalars", "count"), J.fld(SM, "instance_type")],
        }
    )
    J.action(
        doc,
        "again",
        [
            J.assign(J.fld("scalars", "count"), J.op("+", J.fld("scalars", "count"), H(1, 1))),
            J.prim("resubmit", H(1, 4)),
        ],
    )
    J.action(
        doc,
        "done",
        [J.prim("generate_digest", H(1, 4), H(1, 4)), J.assign(J.fld(SM, "egress_spec"), H(3, 2))],
    )
    J.conditional(
        doc, "ingress", "c", J.op("<", J.fld("scalars", "count"), H(2, 1)), "t_again", "t_done"
    )
    J.pipeline_obj(doc, "ingress")["init_table"] = "c"
    J.table(doc, "ingress", "t_again", [], ["again"], "again")
    J.table(doc, "ingress", "t_done", [], ["done"], "done")
    pipe = Pipeline.from_json(doc)
    pkt = tcp_packet()
    res = pipe.process(pkt, 1)
    assert res.digests == [("probe_t", (2, 6))]  # the third pass, instance RESUBMIT
    assert res.outputs == [(3, pkt)]


def test_recirculate(doc) -> None:
    J.scalars(doc, ("passes", 8))
    doc["field_lists"].append({"id": 1, "name": "fl", "elements": [J.fld("scalars", "passes")]})
    J.run_actions(
        doc,
        "ingress",
        [
            J.assign(J.fld("scalars", "passes"), J.op("+", J.fld("scalars", "passes"), H(1, 1))),
            J.assign(
                J.fld("ipv4", "ttl"),
                J.op("&", J.op("-", J.fld("ipv4", "ttl"), H(1, 1)), H(0xFF, 1)),
            ),
            J.assign(J.fld(SM, "egress_spec"), H(1, 2)),
        ],
    )
    J.action(doc, "recirc", [J.prim("recirculate", H(1, 4))])
    J.action(doc, "out", [J.assign(J.fld("ethernet", "src_addr"), J.fld("scalars", "passes"))])
    J.conditional(doc, "egress", "c", J.op("<", J.fld("scalars", "passes"), H(3, 1)), "t_r", "t_o")
    J.pipeline_obj(doc, "egress")["init_table"] = "c"
    J.table(doc, "egress", "t_r", [], ["recirc"], "recirc")
    J.table(doc, "egress", "t_o", [], ["out"], "out")
    pipe = Pipeline.from_json(doc)
    ((port, data),) = pipe.process(tcp_packet(ttl=10), 1).outputs
    assert port == 1 and Ether(data)[IP].ttl == 7 and Ether(data).src == "00:00:00:00:00:03"


def test_endless_recirculation_is_cut(doc, caplog) -> None:
    J.run_actions(doc, "ingress", [J.assign(J.fld(SM, "egress_spec"), H(1, 2))])
    doc["field_lists"].append({"id": 1, "name": "fl", "elements": []})
    J.run_actions(doc, "egress", [J.prim("recirculate", H(1, 4))])
    pipe = Pipeline.from_json(doc)
    with caplog.at_level(logging.ERROR, logger="p4ctl.switch.interp"):
        assert pipe.process(tcp_packet(), 1).outputs == []
    assert "passes" in caplog.text


def test_multicast(doc) -> None:
    J.run_actions(doc, "ingress", [J.assign(J.fld(SM, "mcast_grp"), H(4, 2))])
    J.run_actions(doc, "egress", [J.assign(J.fld("ethernet", "src_addr"), J.fld(SM, "egress_rid"))])
    pipe = Pipeline.from_json(doc)
    assert pipe.process(tcp_packet(), 1).outputs == []  # empty group
    pipe.multicast_groups[4] = [(1, 10), (2, 20)]
    outs = pipe.process(tcp_packet(), 1).outputs
    assert [(p, Ether(d).src) for p, d in outs] == [
        (1, "00:00:00:00:00:0a"),
        (2, "00:00:00:00:00:14"),
    ]


def test_priority_other_than_zero_is_dropped_like_simple_switch(doc) -> None:
    J.run_actions(
        doc,
        "ingress",
        [J.assign(J.fld(SM, "priority"), H(1, 1)), J.assign(J.fld(SM, "egress_spec"), H(1, 2))],
    )
    assert Pipeline.from_json(doc).process(tcp_packet(), 1).outputs == []


def test_truncate(doc) -> None:
    J.run_actions(doc, "ingress", [J.prim("truncate", H(20, 4))])
    pkt = tcp_packet()
    assert Pipeline.from_json(doc).process(pkt, 1).outputs == [(0, pkt[:20])]


def test_log_msg(doc, caplog) -> None:
    J.run_actions(
        doc,
        "ingress",
        [
            J.prim(
                "log_msg",
                {"type": "string", "value": "ttl={} p={}"},
                {"type": "parameters_vector", "value": [J.fld("ipv4", "ttl"), H(5, 1)]},
            )
        ],
    )
    pipe = Pipeline.from_json(doc)
    with caplog.at_level(logging.INFO, logger="p4ctl.switch.interp"):
        pipe.process(tcp_packet(ttl=33), 1)
    assert "ttl=33 p=5" in caplog.text


def test_assert_failure_drops_the_packet(doc) -> None:
    J.run_actions(
        doc,
        "ingress",
        [
            J.prim(
                "assert",
                J.param_expr(J.op("b2d", None, J.op("==", J.fld("ipv4", "ttl"), H(64, 1)))),
            )
        ],
    )
    pipe = Pipeline.from_json(doc)
    assert len(pipe.process(tcp_packet(ttl=64), 1).outputs) == 1
    assert pipe.process(tcp_packet(ttl=63), 1).outputs == []


def test_jump_if_zero_in_an_action(doc) -> None:
    """``if`` inside an action, as p4c emits it with _jump_if_zero/_jump."""
    J.scalars(doc, ("r", 8))
    doc["learn_lists"].append({"id": 1, "name": "probe_t", "elements": [J.fld("scalars", "r")]})
    J.action(
        doc,
        "a",
        [
            J.prim(
                "_jump_if_zero",
                J.param_expr(J.op("b2d", None, J.op("valid", None, J.hdr("tcp")))),
                H(3, 4),
            ),
            J.assign(J.fld("scalars", "r"), H(6, 1)),
            J.prim("_jump", H(4, 4)),
            J.assign(J.fld("scalars", "r"), H(17, 1)),
            J.prim("generate_digest", H(1, 4), H(1, 4)),
        ],
    )
    J.table(doc, "ingress", "t", [], ["a"], "a")
    pipe = Pipeline.from_json(doc)
    from switch_probe import udp_packet

    assert digest_of(pipe, tcp_packet()) == (6,)
    assert digest_of(pipe, udp_packet()) == (17,)


def test_header_stack_push_and_pop(doc) -> None:
    J.header_type(doc, "l_t", [["v", 8, False]])
    for i in range(3):
        J.header(doc, f"s[{i}]", "l_t")
    doc["header_stacks"].append(
        {"name": "s", "id": 0, "header_type": "l_t", "size": 3, "header_ids": [6, 7, 8]}
    )
    stack = {"type": "header_stack", "value": "s"}
    pipe = probe(
        doc,
        [("a", 8), ("b", 8), ("n", 8), ("v0", 8), ("v1", 8)],
        [
            J.prim("push", stack, H(1, 4)),
            J.prim("add_header", J.hdr("s[0]")),
            J.assign(J.fld("s[0]", "v"), H(1, 1)),
            J.prim("push", stack, H(1, 4)),
            J.prim("add_header", J.hdr("s[0]")),
            J.assign(J.fld("s[0]", "v"), H(2, 1)),
            J.assign(J.fld("scalars", "a"), J.fld("s[0]", "v")),
            J.assign(J.fld("scalars", "b"), J.fld("s[1]", "v")),
            J.prim("pop", stack, H(1, 4)),
            J.assign(J.fld("scalars", "n"), J.op("size_stack", None, stack)),
            J.assign(J.fld("scalars", "v0"), J.fld("s[0]", "$valid$")),
            J.assign(J.fld("scalars", "v1"), J.fld("s[1]", "$valid$")),
        ],
    )
    assert digest_of(pipe) == (2, 1, 1, 1, 0)


@pytest.mark.parametrize(
    "primitive",
    [
        J.prim(
            "execute_meter", {"type": "meter_array", "value": "m"}, H(0, 4), J.fld(SM, "priority")
        ),
        J.prim("some_extern_method"),
        J.prim("assign", J.fld("scalars", "nope"), H(0, 1)),
    ],
)
def test_unsupported_primitives_are_refused(doc, primitive) -> None:
    J.run_actions(doc, "ingress", [primitive])
    with pytest.raises(PipelineError):
        Pipeline.from_json(doc)


def test_random(doc) -> None:
    pipe = probe(
        doc,
        [("r", 8)],
        [J.prim("modify_field_rng_uniform", J.fld("scalars", "r"), H(10, 1), H(12, 1))],
    )
    pipe.rng.seed(1)
    values = {digest_of(pipe)[0] for _ in range(50)}
    assert values == {10, 11, 12}


def test_tcp_flags_example(doc) -> None:
    """A typical p4c shape: a bit test written with & and != through d2b."""
    pipe = probe(
        doc,
        [("fin", 8)],
        [
            J.assign(
                J.fld("scalars", "fin"),
                J.op("b2d", None, J.op("!=", J.op("&", J.fld("tcp", "flags"), H(1, 1)), H(0, 1))),
            )
        ],
    )
    assert digest_of(pipe, tcp_packet(flags="FA")) == (1,)
    assert digest_of(pipe, tcp_packet(flags="A")) == (0,)
    assert TCP  # scapy layer used by the packet helper


def test_action_that_jumps_back_forever_drops_the_packet(doc) -> None:
    J.run_actions(doc, "ingress", [J.prim("_jump", H(0, 4))])
    pipe = Pipeline.from_json(doc)
    assert pipe.process(tcp_packet(), 1).outputs == []
