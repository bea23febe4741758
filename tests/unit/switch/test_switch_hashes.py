"""Hash algorithms as behavioral-model's calculations.cpp computes them.

Check values are the published CRC catalogue values for "123456789"
(CRC-32/ISO-HDLC 0xCBF43926, CRC-16/ARC 0xBB3D, CRC-16/IBM-3740 (CCITT-FALSE)
0x29B1, CRC-8/SMBUS 0xF4; crc64_custom against a bitwise reference, as no
catalogue CRC-64 has BMv2's default init and xor-out of 0) and a worked IPv4
header checksum; the last tests run the hash primitive of a program over
the project's bucket-hash vectors.
"""

from __future__ import annotations

import ipaddress
import json
import zlib
from pathlib import Path

import bmv2json as J
import pytest
from switch_probe import digest_of, probe, tcp_packet

from p4ctl.flows.key import KEY_FIELDS
from p4ctl.switch import Pipeline, PipelineError
from p4ctl.switch.interp.hashes import hash_function, internet_checksum

CHECK = b"123456789"


def _crc64_reference(data: bytes) -> int:
    """Bitwise reflected CRC-64, polynomial 0x1b, init 0, xor-out 0 (BMv2's crc64 default)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xD800000000000000 if crc & 1 else 0)
    return crc


ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("algo", "expected"),
    [
        ("crc32", 0xCBF43926),
        ("crc32_custom", 0xCBF43926),
        ("crc16", 0xBB3D),
        ("crc16_custom", 0xBB3D),
        ("crcCCITT", 0x29B1),
        ("crc8_custom", 0xF4),
        ("crc64_custom", _crc64_reference(CHECK)),
        ("identity", int.from_bytes(CHECK[:8], "big")),
        ("xor16", 0x3132 ^ 0x3334 ^ 0x3536 ^ 0x3738 ^ 0x3900),
        ("xor32", 0x31323334 ^ 0x35363738 ^ 0x39000000),
    ],
)
def test_check_values(algo: str, expected: int) -> None:
    assert hash_function(algo, "test")(CHECK) == expected


def test_crc32_is_zlib() -> None:
    for data in (b"", b"\x00", bytes(range(256)), b"\xff" * 15):
        assert hash_function("crc32", "t")(data) == zlib.crc32(data)


def test_internet_checksum() -> None:
    # IPv4 header with its checksum zeroed; the checksum is 0xb861.
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert internet_checksum(hdr) == 0xB861
    assert hash_function("csum16", "t")(hdr) == 0xB861
    # odd length: the last byte is the high byte of a zero-padded word
    assert internet_checksum(b"\x01") == 0xFEFF
    assert internet_checksum(b"") == 0xFFFF


def test_identity_short_buffer() -> None:
    assert hash_function("identity", "t")(b"\x12\x34") == 0x1234


def test_round_robin_state_is_per_instance() -> None:
    a, b = hash_function("round_robin", "t"), hash_function("round_robin", "t")
    assert [a(b""), a(b""), b(b"")] == [0, 1, 0]
    c = hash_function("round_robin_consistent", "t")
    assert [c(b"x"), c(b"y"), c(b"x")] == [0, 1, 0]


@pytest.mark.parametrize("algo", ["xxh64", "toeplitz", "random", "nope"])
def test_unsupported_algorithms(algo: str) -> None:
    with pytest.raises(PipelineError, match=algo):
        hash_function(algo, "calc")


# ----- through a program ------------------------------------------------------------


def hash_program(algo: str, fields: list[tuple[str, int]], base: int = 0, size: int = 1 << 32,
                 extra_inputs: list | None = None) -> Pipeline:  # fmt: skip
    """Ingress: key fields from action data; h = hash(algo, base, fields, size); digest h."""
    doc = J.base()
    J.scalars(doc, *fields, ("h", 64))
    doc["calculations"].append(
        {
            "name": "calc",
            "id": 0,
            "algo": algo,
            "input": [J.fld("scalars", n) for n, _w in fields] + (extra_inputs or []),
        }
    )
    doc["learn_lists"].append({"id": 1, "name": "probe_t", "elements": [J.fld("scalars", "h")]})
    J.action(
        doc,
        "compute",
        [J.assign(J.fld("scalars", n), J.rd(i)) for i, (n, _w) in enumerate(fields)]
        + [
            J.prim(
                "modify_field_with_hash_based_offset",
                J.fld("scalars", "h"),
                J.hexv(base, 8),
                {"type": "calculation", "value": "calc"},
                J.hexv(size, 9),
            ),
            J.prim("generate_digest", J.hexv(1, 4), J.hexv(1, 4)),
        ],
        params=fields,
    )
    J.table(doc, "ingress", "t", [], ["compute"], "compute", default_args=["0x00"] * len(fields))
    return Pipeline.from_json(doc)


def test_project_bucket_hash_vectors() -> None:
    vectors = json.loads((ROOT / "pipelines/flowcache/hash_vectors.json").read_text())
    pipe = hash_program("crc32", list(KEY_FIELDS))
    assert len(vectors["vectors"]) >= 5
    for vec in vectors["vectors"]:
        args = tuple(
            int(ipaddress.IPv4Address(vec[n])) if isinstance(vec[n], str) else vec[n]
            for n, _w in KEY_FIELDS
        )
        pipe.tables["t"].set_default("compute", args)
        (h,) = digest_of(pipe)
        assert h == int(vec["bucket_hash"], 16), vec


def test_bit_contiguous_packing_with_odd_widths() -> None:
    """Fields packed MSB first without per-field padding, zeros appended to a byte."""
    fields = [("a", 3), ("b", 9), ("c", 1)]  # 13 bits -> 3 pad bits
    pipe = hash_program("crc32", fields)
    pipe.tables["t"].set_default("compute", (5, 0x1AB, 1))
    v = (5 << 10) | (0x1AB << 1) | 1
    assert digest_of(pipe) == (zlib.crc32((v << 3).to_bytes(2, "big")),)


def test_base_and_modulo() -> None:
    pipe = hash_program("identity", [("a", 16)], base=100, size=1000)
    pipe.tables["t"].set_default("compute", (12345,))
    assert digest_of(pipe) == (100 + 12345 % 1000,)
    zero = hash_program("identity", [("a", 16)], base=0, size=0)  # max 0 is taken as 1
    zero.tables["t"].set_default("compute", (12345,))
    assert digest_of(zero) == (0,)


def test_constant_and_header_inputs_and_invalid_headers_skipped() -> None:
    # csum16 over a constant, the IPv4 header if valid, and the UDP header (invalid: skipped)
    pipe = hash_program(
        "csum16",
        [("a", 16)],
        extra_inputs=[
            {"type": "hexstr", "value": "0x0a", "bitwidth": 8},
            {"type": "hexstr", "value": "0x0b", "bitwidth": 8},
            {"type": "header", "value": "ipv4"},
            J.fld("udp", "src_port"),
        ],
    )
    pipe.tables["t"].set_default("compute", (0x1234,))
    pkt = tcp_packet()
    ip_bytes = pkt[14:34]
    assert digest_of(pipe, pkt) == (internet_checksum(b"\x12\x34\x0a\x0b" + ip_bytes),)


def test_hash_of_packet_fields_in_probe(doc) -> None:
    """Fields of a packet header feed the calculation directly."""
    doc["calculations"].append(
        {
            "name": "c",
            "id": 0,
            "algo": "crc16",
            "input": [J.fld("ipv4", "src_addr"), J.fld("ipv4", "dst_addr")],
        }
    )
    pipe = probe(
        doc,
        [("h", 16)],
        [
            J.prim(
                "modify_field_with_hash_based_offset",
                J.fld("scalars", "h"),
                J.hexv(0, 2),
                {"type": "calculation", "value": "c"},
                J.hexv(65536, 4),
            )
        ],
    )
    expected = hash_function("crc16", "t")(bytes([10, 0, 0, 1, 10, 0, 0, 2]))
    assert digest_of(pipe, tcp_packet()) == (expected,)
