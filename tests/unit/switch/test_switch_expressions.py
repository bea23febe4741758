"""Expression operators with BMv2's width, signedness and wrap-around rules.

Each case computes an expression in an action, stores it into a ``scalars``
field of the given width/signedness (``Field::set`` truncation) and reads it
back through a digest, which carries the field's bytes (two's complement for
signed fields) as an unsigned integer.
"""

from __future__ import annotations

from typing import Any

import bmv2json as J
import pytest
from switch_probe import digest_of, probe, tcp_packet

from p4ctl.switch import Pipeline, PipelineError

H = J.hexv


def run_expr(expr: dict[str, Any], width: int, signed: bool = False) -> int:
    doc = J.base()
    pipe = probe(doc, [("r", width, signed)], [J.assign(J.fld("scalars", "r"), expr)])
    return digest_of(pipe)[0]


CASES = [
    # name, expression, width, signed, expected digest value
    ("add wraps at field width", J.op("+", H(0xFFFF, 2), H(1, 2)), 16, False, 0),
    ("add keeps carry in wider field", J.op("+", H(0xFFFF, 2), H(1, 2)), 32, False, 0x10000),
    ("sub underflow unsigned", J.op("-", H(0, 1), H(1, 1)), 8, False, 0xFF),
    ("sub underflow signed", J.op("-", H(0, 1), H(1, 1)), 8, True, 0xFF),
    ("unary minus", J.op("-", None, H(5, 1)), 8, False, 0xFB),
    ("mul", J.op("*", H(300, 2), H(300, 2)), 32, False, 90000),
    ("mul truncated", J.op("*", H(300, 2), H(300, 2)), 16, False, 90000 & 0xFFFF),
    ("shl beyond width", J.op("<<", H(1, 1), H(40, 1)), 32, False, 0),
    (
        "shl then mask keeps bits",
        J.op("&", J.op("<<", H(0xAB, 1), H(8, 1)), H(0xFFFF, 2)),
        16,
        False,
        0xAB00,
    ),
    ("shr", J.op(">>", H(0xF0, 1), H(4, 1)), 8, False, 0x0F),
    ("neg hexstr", H(-1), 8, False, 0xFF),
    ("bit not is infinite precision then truncated", J.op("~", None, H(0x0F, 1)), 8, False, 0xF0),
    (
        "bit not masked as p4c emits",
        J.op("&", J.op("~", None, H(0x0F, 1)), H(0xFF, 1)),
        16,
        False,
        0xF0,
    ),
    ("and", J.op("&", H(0xF0F0, 2), H(0xFF00, 2)), 16, False, 0xF000),
    ("or", J.op("|", H(0xF0F0, 2), H(0x0F00, 2)), 16, False, 0xFFF0),
    ("xor", J.op("^", H(0xF0F0, 2), H(0xFF00, 2)), 16, False, 0x0FF0),
    (
        "concat by shift and or",
        J.op("|", J.op("<<", H(0x12, 1), H(16, 1)), H(0x3456, 2)),
        24,
        False,
        0x123456,
    ),
    ("div", J.op("/", H(100, 1), H(7, 1)), 8, False, 14),
    ("mod", J.op("%", H(100, 1), H(7, 1)), 8, False, 2),
    ("two_comp_mod positive", J.op("two_comp_mod", H(257, 2), H(8, 4)), 16, True, 1),
    ("two_comp_mod negative", J.op("two_comp_mod", H(-129), H(8, 4)), 16, True, 127),
    ("two_comp_mod in range", J.op("two_comp_mod", H(-5), H(8, 4)), 16, True, 0xFFFB),
    ("usat_cast high", J.op("usat_cast", H(300, 2), H(8, 4)), 16, False, 255),
    ("usat_cast low", J.op("usat_cast", H(-5), H(8, 4)), 16, False, 0),
    ("sat_cast high", J.op("sat_cast", H(200, 2), H(8, 4)), 8, True, 127),
    ("sat_cast low", J.op("sat_cast", H(-200), H(8, 4)), 8, True, 0x80),
    ("ternary true", J.op("?", H(1, 1), H(2, 1), J.op("<", H(5, 1), H(7, 1))), 8, False, 1),
    ("ternary false", J.op("?", H(1, 1), H(2, 1), J.op(">=", H(5, 1), H(7, 1))), 8, False, 2),
    ("b2d of d2b", J.op("b2d", None, J.op("d2b", None, H(9, 1))), 8, False, 1),
    ("b2d of d2b zero", J.op("b2d", None, J.op("d2b", None, H(0, 1))), 8, False, 0),
    (
        "and/or/not",
        J.op(
            "b2d",
            None,
            J.op(
                "and", J.boolv(True), J.op("not", None, J.op("or", J.boolv(False), J.boolv(False)))
            ),
        ),
        8,
        False,
        1,
    ),
    (
        "== and != on data",
        J.op("b2d", None, J.op("and", J.op("==", H(3, 1), H(3, 1)), J.op("!=", H(3, 1), H(4, 1)))),
        8,
        False,
        1,
    ),
    (
        "<= >",
        J.op("b2d", None, J.op("and", J.op("<=", H(3, 1), H(3, 1)), J.op(">", H(4, 1), H(3, 1)))),
        8,
        False,
        1,
    ),
    (
        "comparison is on values, not widths",
        J.op("b2d", None, J.op("==", H(1, 1), H(1, 4))),
        8,
        False,
        1,
    ),
]


@pytest.mark.parametrize(
    ("expr", "width", "signed", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_operator(expr: dict[str, Any], width: int, signed: bool, expected: int) -> None:
    assert run_expr(expr, width, signed) == expected


def test_signed_field_reads_back_negative(doc) -> None:
    """A signed field holds a negative value: ``x >> 1`` is arithmetic, ``x + 1`` is -2."""
    pipe = probe(
        doc,
        [("x", 8, True), ("y", 8, True), ("z", 8, True), ("neg", 8)],
        [
            J.assign(J.fld("scalars", "x"), H(0xFD, 1)),  # -3 in int<8>
            J.assign(J.fld("scalars", "y"), J.op("+", J.fld("scalars", "x"), H(1, 1))),
            J.assign(J.fld("scalars", "z"), J.op(">>", J.fld("scalars", "x"), H(1, 1))),
            J.assign(
                J.fld("scalars", "neg"),
                J.op("b2d", None, J.op("<", J.fld("scalars", "x"), H(0, 1))),
            ),
        ],
    )
    assert digest_of(pipe) == (0xFD, 0xFE, 0xFE, 1)


def test_fields_from_the_packet_and_validity(doc) -> None:
    pipe = probe(
        doc,
        [("ttl1", 8), ("tcp_ok", 8), ("udp_ok", 8), ("vbit", 8)],
        [
            J.assign(J.fld("scalars", "ttl1"), J.op("+", J.fld("ipv4", "ttl"), H(1, 1))),
            J.assign(
                J.fld("scalars", "tcp_ok"), J.op("b2d", None, J.op("valid", None, J.hdr("tcp")))
            ),
            J.assign(
                J.fld("scalars", "udp_ok"), J.op("b2d", None, J.op("valid", None, J.hdr("udp")))
            ),
            J.assign(J.fld("scalars", "vbit"), J.fld("tcp", "$valid$")),
        ],
    )
    assert digest_of(pipe, tcp_packet(ttl=64)) == (65, 1, 0, 1)


def test_runtime_data_and_local(doc) -> None:
    """Action parameters: ``runtime_data`` in primitives, ``local`` inside expressions."""
    J.scalars(doc, ("a", 16), ("b", 16))
    doc["learn_lists"].append(
        {"id": 1, "name": "probe_t", "elements": [J.fld("scalars", "a"), J.fld("scalars", "b")]}
    )
    J.action(
        doc,
        "set",
        [
            J.assign(J.fld("scalars", "a"), J.rd(0)),
            J.assign(J.fld("scalars", "b"), J.op("+", J.local(1), H(1, 2))),
            J.prim("generate_digest", H(1, 4), H(1, 4)),
        ],
        params=[("x", 16), ("y", 16)],
    )
    J.table(doc, "ingress", "t", [], ["set"], "set", default_args=["0x0007", "0xffff"])
    pipe = Pipeline.from_json(doc)
    assert digest_of(pipe) == (7, 0)
    pipe.tables["t"].set_default("set", (9, 41))
    assert digest_of(pipe) == (9, 42)


def test_header_equality(doc) -> None:
    J.header(doc, "ipv4_copy", "ipv4_t")
    pipe = probe(
        doc,
        [("same", 8), ("diff", 8)],
        [
            J.prim("assign_header", J.hdr("ipv4_copy"), J.hdr("ipv4")),
            J.assign(
                J.fld("scalars", "same"),
                J.op("b2d", None, J.op("==", J.hdr("ipv4"), J.hdr("ipv4_copy"))),
            ),
            J.assign(J.fld("ipv4_copy", "ttl"), H(1, 1)),
            J.assign(
                J.fld("scalars", "diff"),
                J.op("b2d", None, J.op("!=", J.hdr("ipv4"), J.hdr("ipv4_copy"))),
            ),
        ],
    )
    assert digest_of(pipe) == (1, 1)


def test_division_outside_bmv2_domain_drops_the_packet(doc) -> None:
    """BMv2 asserts on x / 0; the software switch drops that packet and goes on."""
    J.scalars(doc, ("r", 8))
    J.run_actions(doc, "ingress", [J.assign(J.fld("scalars", "r"), J.op("/", H(1, 1), H(0, 1)))])
    pipe = Pipeline.from_json(doc)
    res = pipe.process(tcp_packet(), 1)
    assert res.outputs == [] and res.digests == []


def test_unknown_operator_is_refused(doc) -> None:
    J.scalars(doc, ("r", 8))
    J.run_actions(doc, "ingress", [J.assign(J.fld("scalars", "r"), J.op("**", H(1, 1), H(2, 1)))])
    with pytest.raises(PipelineError, match=r"operator '\*\*'"):
        Pipeline.from_json(doc)


def test_bool_where_data_expected_is_refused(doc) -> None:
    J.scalars(doc, ("r", 8))
    J.run_actions(doc, "ingress", [J.assign(J.fld("scalars", "r"), J.op("==", H(1, 1), H(2, 1)))])
    with pytest.raises(PipelineError, match="integral"):
        Pipeline.from_json(doc)
