"""Parser states, select, lookahead, verify, stacks, varbit and parser errors."""

from __future__ import annotations

from typing import Any

import bmv2json as J
import pytest
from switch_probe import digest_of, probe, tcp_packet, udp_packet

from p4ctl.switch import Pipeline, PipelineError

H = J.hexv


def state(name: str, ops: list[Any], key: list[Any], transitions: list[Any]) -> dict[str, Any]:
    return {
        "name": name,
        "id": 0,
        "parser_ops": ops,
        "transition_key": key,
        "transitions": transitions,
    }


def extract(h: str, kind: str = "regular") -> dict[str, Any]:
    return {"op": "extract", "parameters": [{"type": kind, "value": h}]}


def to(value: str | None, nxt: str | None, mask: str | None = None) -> dict[str, Any]:
    if value is None:
        return {"type": "default", "value": None, "mask": None, "next_state": nxt}
    return {"type": "hexstr", "value": value, "mask": mask, "next_state": nxt}


def set_parser(doc: dict[str, Any], states: list[dict[str, Any]], init: str = "start") -> None:
    for i, s in enumerate(states):
        s["id"] = i
    doc["parsers"][0]["parse_states"] = states
    doc["parsers"][0]["init_state"] = init


def test_round_trip_unchanged(doc) -> None:
    pipe = Pipeline.from_json(doc)
    for pkt in (tcp_packet(), udp_packet(), tcp_packet()[:14] + b"\x01" * 30):
        assert pipe.process(pkt, 3).outputs == [(0, pkt)]


def test_parser_error_is_recorded_and_the_packet_goes_on(doc) -> None:
    """A truncated IPv4 header: PacketTooShort in parser_error, Ethernet kept, rest payload."""
    pipe = probe(
        doc,
        [("err", 32), ("eth", 8), ("ip", 8)],
        [
            J.assign(J.fld("scalars", "err"), J.fld("standard_metadata", "parser_error")),
            J.assign(J.fld("scalars", "eth"), J.fld("ethernet", "$valid$")),
            J.assign(J.fld("scalars", "ip"), J.fld("ipv4", "$valid$")),
        ],
    )
    short = tcp_packet()[: 14 + 12]
    res = pipe.process(short, 1)
    assert res.digests == [("probe_t", (1, 1, 0))]  # PacketTooShort is 1 in this JSON
    assert res.outputs == [(0, short)]
    assert digest_of(pipe, tcp_packet()) == (0, 1, 1)


def test_select_mask_default_and_lookahead(doc) -> None:
    """Dispatch on a lookahead of the first nibble, with a masked case and a default."""
    J.header_type(doc, "one_t", [["b", 8, False]])
    J.header(doc, "one", "one_t")
    set_parser(
        doc,
        [
            state(
                "start",
                [],
                [{"type": "lookahead", "value": [0, 8]}],
                [to("0x45", "exact45"), to("0x40", "masked4x", "0xf0"), to(None, None)],
            ),
            state("exact45", [extract("one")], [], [to(None, None)]),
            state(
                "masked4x",
                [extract("one"), {"op": "set", "parameters": [J.fld("one", "b"), H(0xAA, 1)]}],
                [],
                [to(None, None)],
            ),
        ],
    )
    pipe = probe(
        doc,
        [("b", 8), ("v", 8)],
        [
            J.assign(J.fld("scalars", "b"), J.fld("one", "b")),
            J.assign(J.fld("scalars", "v"), J.fld("one", "$valid$")),
        ],
    )
    assert digest_of(pipe, b"\x45rest") == (0x45, 1)
    assert digest_of(pipe, b"\x47rest") == (0xAA, 1)
    assert digest_of(pipe, b"\x55rest") == (0, 0)


def test_multi_field_key_is_byte_padded(doc) -> None:
    """Key = 12-bit field ++ 4-bit field, each padded to bytes (docs/JSON_format.md)."""
    J.header_type(doc, "h_t", [["a", 12, False], ["b", 4, False]])
    J.header(doc, "h", "h_t")
    J.header_type(doc, "m_t", [["x", 8, False]])
    J.header(doc, "m", "m_t")
    set_parser(
        doc,
        [
            state(
                "start",
                [extract("h")],
                [J.fld("h", "a"), J.fld("h", "b")],
                [to("0x0aba03", "mark"), to(None, None)],
            ),
            state("mark", [extract("m")], [], [to(None, None)]),
        ],
    )
    pipe = probe(doc, [("v", 8)], [J.assign(J.fld("scalars", "v"), J.fld("m", "$valid$"))])
    assert digest_of(pipe, bytes([0xAB, 0xA3, 0x00])) == (1,)
    assert digest_of(pipe, bytes([0xAB, 0xA4, 0x00])) == (0,)


def test_transition_value_width_must_match(doc) -> None:
    doc["parsers"][0]["parse_states"][0]["transitions"][0]["value"] = "0x000800"
    with pytest.raises(PipelineError, match="wrong width"):
        Pipeline.from_json(doc)


def test_verify_raises_the_error_expression(doc) -> None:
    doc["errors"].append(["BadVersion", 7])
    st = doc["parsers"][0]["parse_states"][1]
    st["parser_ops"].append(
        {
            "op": "verify",
            "parameters": [
                J.op("==", J.fld("ipv4", "version"), H(4, 1)),
                H(7, 4),
            ],
        }
    )
    pipe = probe(
        doc,
        [("err", 32), ("tcp", 8)],
        [
            J.assign(J.fld("scalars", "err"), J.fld("standard_metadata", "parser_error")),
            J.assign(J.fld("scalars", "tcp"), J.fld("tcp", "$valid$")),
        ],
    )
    good = tcp_packet()
    bad = good[:14] + bytes([0x65]) + good[15:]  # version 6
    assert digest_of(pipe, good) == (0, 1)
    assert digest_of(pipe, bad) == (7, 0)  # parsing stopped in parse_ipv4


def test_set_from_field_hexstr_expression_lookahead(doc) -> None:
    J.scalars(doc)
    st = doc["parsers"][0]["parse_states"][0]
    st["parser_ops"] += [
        {"op": "set", "parameters": [J.fld("scalars", "a"), J.fld("ethernet", "ether_type")]},
        {"op": "set", "parameters": [J.fld("scalars", "b"), H(0x1234, 2)]},
        {
            "op": "set",
            "parameters": [
                J.fld("scalars", "c"),
                J.param_expr(J.op("+", J.fld("ethernet", "ether_type"), H(1, 2))),
            ],
        },
        {
            "op": "set",
            "parameters": [J.fld("scalars", "d"), {"type": "lookahead", "value": [4, 8]}],
        },
    ]
    pipe = probe(doc, [("a", 16), ("b", 16), ("c", 16), ("d", 8)], [])
    # after Ethernet: 0x45 0x00 ... -> bits 4..11 are 0x50
    assert digest_of(pipe, tcp_packet()) == (0x0800, 0x1234, 0x0801, 0x50)


def test_lookahead_set_past_the_end_is_packet_too_short(doc) -> None:
    st = doc["parsers"][0]["parse_states"][0]
    st["parser_ops"].append(
        {
            "op": "set",
            "parameters": [J.fld("scalars", "d"), {"type": "lookahead", "value": [0, 32]}],
        }
    )
    pipe = probe(
        doc,
        [("d", 32), ("err", 32)],
        [J.assign(J.fld("scalars", "err"), J.fld("standard_metadata", "parser_error"))],
    )
    assert digest_of(pipe, tcp_packet()[:16]) == (0, 1)


def test_header_stack_extraction_and_overflow(doc) -> None:
    """A label stack of depth 2: extract while bos == 0; a third label overflows."""
    J.header_type(doc, "label_t", [["label", 7, False], ["bos", 1, False]])
    J.header(doc, "labels[0]", "label_t")
    J.header(doc, "labels[1]", "label_t")
    doc["header_stacks"].append(
        {"name": "labels", "id": 0, "header_type": "label_t", "size": 2, "header_ids": [6, 7]}
    )
    set_parser(
        doc,
        [
            state(
                "start",
                [extract("labels", "stack")],
                [{"type": "stack_field", "value": ["labels", "bos"]}],
                [to("0x00", "start"), to(None, None)],
            ),
        ],
    )
    doc["deparsers"][0]["order"] = ["labels[0]", "labels[1]"]
    pipe = probe(
        doc,
        [("n", 8), ("l0", 8), ("l1", 8), ("err", 32)],
        [
            J.assign(
                J.fld("scalars", "n"),
                J.op("size_stack", None, {"type": "header_stack", "value": "labels"}),
            ),
            J.assign(J.fld("scalars", "l0"), J.fld("labels[0]", "label")),
            J.assign(
                J.fld("scalars", "l1"),
                J.op(
                    "access_field",
                    J.op(
                        "dereference_header_stack",
                        {"type": "header_stack", "value": "labels"},
                        H(1, 1),
                    ),
                    0,
                ),
            ),
            J.assign(J.fld("scalars", "err"), J.fld("standard_metadata", "parser_error")),
        ],
    )
    two = bytes([5 << 1, (9 << 1) | 1]) + b"data"
    assert digest_of(pipe, two) == (2, 5, 9, 0)
    assert pipe.process(two, 1).outputs == [(0, two)]
    three = bytes([5 << 1, 9 << 1, 3 << 1]) + b"data"
    assert digest_of(pipe, three) == (2, 5, 9, 3)  # StackOutOfBounds


def test_advance_and_shift(doc) -> None:
    J.header_type(doc, "one_t", [["b", 8, False]])
    J.header(doc, "one", "one_t")
    set_parser(
        doc,
        [
            state(
                "start",
                [
                    {"op": "advance", "parameters": [H(16, 4)]},
                    {"op": "shift", "parameters": [1]},
                    extract("one"),
                ],
                [],
                [to(None, None)],
            )
        ],
    )
    doc["deparsers"][0]["order"] = ["one"]
    pipe = probe(doc, [("b", 8)], [J.assign(J.fld("scalars", "b"), J.fld("one", "b"))])
    assert digest_of(pipe, b"\x01\x02\x03\x04\x05") == (4,)
    # the skipped bytes are consumed: only the extracted header and the rest go out
    assert pipe.process(b"\x01\x02\x03\x04\x05", 1).outputs == [(0, b"\x04\x05")]


def test_parser_primitive_call(doc) -> None:
    st = doc["parsers"][0]["parse_states"][0]
    st["parser_ops"].append(
        {"op": "primitive", "parameters": [J.assign(J.fld("scalars", "x"), H(0x77, 1))]}
    )
    pipe = probe(doc, [("x", 8)], [])
    assert digest_of(pipe) == (0x77,)


def test_extract_vl(doc) -> None:
    """IPv4 options as a varbit: length = (ihl - 5) * 32 bits (p4c's extract_VL)."""
    J.header_type(doc, "opts_t", [["options", "*"]])
    doc["header_types"][-1]["max_length"] = 40
    J.header(doc, "opts", "opts_t")
    st = doc["parsers"][0]["parse_states"][1]
    length = J.op("<<", J.op("-", J.fld("ipv4", "ihl"), H(5, 1)), H(5, 4))
    st["parser_ops"].append(
        {
            "op": "extract_VL",
            "parameters": [{"type": "regular", "value": "opts"}, J.param_expr(length)],
        }
    )
    doc["deparsers"][0]["order"] = ["ethernet", "ipv4", "opts", "tcp", "udp"]
    pipe = probe(
        doc,
        [("o", 64), ("tcp", 8)],
        [
            J.assign(J.fld("scalars", "o"), J.fld("opts", "options")),
            J.assign(J.fld("scalars", "tcp"), J.fld("tcp", "$valid$")),
        ],
    )
    base = tcp_packet()
    ip = bytearray(base[14:34])
    ip[0] = 0x47  # ihl 7: 8 bytes of options
    pkt = base[:14] + bytes(ip) + bytes(range(1, 9)) + base[34:]
    assert digest_of(pipe, pkt) == (0x0102030405060708, 1)
    assert pipe.process(pkt, 1).outputs == [(0, pkt)]


def test_unsupported_parser_constructs_are_refused(doc) -> None:
    bad = J.base()
    bad["parsers"][0]["parse_states"][0]["transitions"][0] = {
        "type": "parse_vset",
        "value": "pvs",
        "mask": None,
        "next_state": None,
    }
    with pytest.raises(PipelineError, match="parse_vset"):
        Pipeline.from_json(bad)
    bad = J.base()
    bad["parsers"][0]["parse_states"][0]["transitions"][0]["next_state"] = "nowhere"
    with pytest.raises(PipelineError, match="nowhere"):
        Pipeline.from_json(bad)
    bad = J.base()
    bad["parsers"][0]["parse_states"][0]["parser_ops"].append(
        {"op": "frobnicate", "parameters": []}
    )
    with pytest.raises(PipelineError, match="frobnicate"):
        Pipeline.from_json(bad)
