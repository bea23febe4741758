"""Small P4 programs compiled by p4c-bm2-ss, run in the interpreter.

The programs are in ``p4/``; p4c-bm2-ss 1.2.5.16's outputs are committed in
``fixtures/`` (``p4c-bm2-ss --std p4-16 -o tests/unit/switch/fixtures/X.json
tests/unit/switch/p4/X.p4`` from the repository root), so these tests run
everywhere; where p4c-bm2-ss is on PATH they also run on a fresh compile.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from p4ctl.switch import Pipeline
from p4ctl.switch.interp.hashes import hash_function

HERE = Path(__file__).resolve().parent
P4C = shutil.which("p4c-bm2-ss")


@pytest.fixture(params=["committed", "fresh"])
def compile_p4(request: pytest.FixtureRequest, tmp_path: Path):
    """``compile_p4(name)``: the committed p4c output, or a fresh p4c compile."""

    def load(name: str) -> Pipeline:
        if request.param == "committed":
            return Pipeline.from_json((HERE / "fixtures" / f"{name}.json").read_bytes())
        if P4C is None:
            pytest.skip("p4c-bm2-ss not on PATH")
        out = tmp_path / f"{name}.json"
        subprocess.run(
            [P4C, "--std", "p4-16", "-o", str(out), str(HERE / "p4" / f"{name}.p4")],
            check=True,
            capture_output=True,
        )
        return Pipeline.from_json(out.read_bytes())

    return load


def test_expression_corner_cases(compile_p4) -> None:
    pipe = compile_p4("ops")
    a, b, s, w = 200, 100, -100, 0x0A5B
    pkt = bytes([a, b, s & 0xFF]) + w.to_bytes(2, "big") + b"tail"
    res = pipe.process(pkt, 1)
    assert res.outputs == [(2, pkt)]
    ((name, values),) = res.digests
    assert name == "result_t"
    crc = hash_function("crc16", "t")(bytes([a, b]))
    expected = (
        (a + b) & 0xFF,  # sum
        255,  # sat
        (a - b) & 0xFF,  # diff
        (-128) & 0xFF,  # ssat: -100 |-| 100 saturates at -128
        (a << 8) | b,  # concat
        0xA,  # slice
        (a << (b & 7)) & 0xFF,  # shifted
        s & 0xFFFF,  # widened (sign-extended)
        ~a & 0xFF,  # notted
        1,  # cmp
        1,  # cond: 200 > 100
        crc,
    )
    assert values == expected


def mpls(label: int, bos: int, ttl: int = 64) -> bytes:
    return ((label << 12) | (bos << 8) | ttl).to_bytes(4, "big")


def test_parser_constructs(compile_p4) -> None:
    """Stacks with .next/.last, lookahead, verify, varbit options, a header union."""
    pipe = compile_p4("parse")
    eth_mpls = bytes(12) + b"\x88\x47"
    eth_ip = bytes(12) + b"\x08\x00"

    def ipv4(ihl: int = 5, proto: int = 6, version: int = 4, options: bytes = b"") -> bytes:
        return (
            bytes([(version << 4) | ihl, 0, 0, 40, 0, 1, 0, 0, 64, proto, 0, 0])
            + bytes([10, 0, 0, 1, 10, 0, 0, 2])
            + options
        )

    tcp = (1234).to_bytes(2, "big") + (80).to_bytes(2, "big") + bytes(16)
    udp = (53).to_bytes(2, "big") + (5353).to_bytes(2, "big") + bytes(4)

    def run(pkt: bytes) -> tuple[int, ...]:
        res = pipe.process(pkt, 1)
        ((name, values),) = res.digests
        assert name == "result_t"
        assert res.outputs == [(1, pkt)]  # whatever was parsed is deparsed unchanged
        return values

    # parser_error, labels, last_label, peeked, ipv4, tcp, udp, dport
    assert run(eth_mpls + mpls(100, 0) + mpls(200, 1) + ipv4() + tcp) == (
        0, 2, 200, 0x45, 1, 1, 0, 80)  # fmt: skip
    assert run(eth_mpls + mpls(1, 0) + mpls(2, 0) + mpls(3, 0) + mpls(4, 1))[:2] == (2, 3)
    assert run(eth_ip + ipv4(version=6) + tcp)[0] == 3  # verify -> BadVersion
    assert run(eth_ip + ipv4(ihl=6, proto=17, options=b"\x01\x02\x03\x04") + udp) == (
        0, 0, 0, 0, 1, 0, 1, 5353)  # fmt: skip
    assert run(eth_ip + ipv4() + tcp[:10])[0] == 1  # PacketTooShort


def test_tables_externs_and_packet_flow(compile_p4) -> None:
    """lpm with a direct counter, ternary/range/optional const entries, action_run,
    exit, registers, counters, resubmit, I2E clone and recirculate with field lists."""
    from p4ctl.switch import TableEntry

    pipe = compile_p4("tables")
    lpm = pipe.tables["I.lpm_t"]
    lpm.insert(TableEntry(((0x0A000000, 8),), 0, "I.set_lpm", (1,)))
    lpm.insert(TableEntry(((0x0A010000, 16),), 0, "I.set_lpm", (2,)))
    assert pipe.tables["I.tern_t"].has_const_entries

    def pkt(addr: int, port: int, kind: int, tag: int) -> bytes:
        data = addr.to_bytes(4, "big") + port.to_bytes(2, "big") + bytes([kind, tag])
        return bytes(12) + b"\x12\x34" + data

    def parts(out: bytes) -> tuple[int, int]:  # (ethernet src = instance_type, data.tag)
        return int.from_bytes(out[6:12], "big"), out[-1]

    # result: lpm_hit, tern_hit, path, reg_value, passes, instance_type
    a = pkt(0x0A010203, 1500, 7, 3)
    res = pipe.process(a, 1)
    assert res.digests == [("result_t", (2, 1, 0, 0, 0, 0))]
    assert [(p, parts(o)) for p, o in res.outputs] == [(3, (0, 0))]
    assert pipe.process(a, 1).digests[0][1][3] == 1  # the register was incremented
    entry = lpm.get(((0x0A010000, 16),), 0)
    assert (entry.packets, entry.bytes) == (2, 2 * len(a))
    assert pipe.counters["I.ctr"].read(3) == (2, 2 * len(a))

    assert pipe.process(pkt(0x0A010203, 50, 7, 3), 1).digests[0][1][2] == 11  # path_a + 10
    res = pipe.process(pkt(0x0A010203, 500, 9, 3), 1)  # path_b: exit before the digest
    assert res.digests == [] and [p for p, _ in res.outputs] == [0]

    res = pipe.process(pkt(0x0B000001, 500, 3, 4), 1)  # resubmitted twice
    assert res.digests == [("result_t", (0xFF, 0, 0, 0, 2, 6))]
    assert [(p, parts(o)) for p, o in res.outputs] == [(4, (0, 2))]

    pipe.mirror_sessions[5] = [(7, 0)]
    res = pipe.process(pkt(0x0B000001, 500, 4, 2), 1)  # I2E clone to session 5
    assert [(p, parts(o)) for p, o in res.outputs] == [(7, (1, 0)), (2, (0, 0))]

    res = pipe.process(pkt(0x0B000001, 500, 5, 2), 1)  # recirculated once from egress
    assert [d[1][4:] for d in res.digests] == [(0, 0), (1, 4)]
    # the first egress wrote tag = passes = 1 into the packet that went round again
    assert [(p, parts(o)) for p, o in res.outputs] == [(1, (0, 1))]
