"""The bucket hash: Python's value must be the switch's crc32 for every test vector."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from p4ctl.flows.key import KEY_FIELDS, FlowKey, crc32_fields

VECTORS = Path(__file__).resolve().parents[2] / "pipelines" / "flowcache" / "hash_vectors.json"


def crc32_bitwise(data: bytes) -> int:
    """CRC-32/ISO-HDLC bit by bit (reflected, init and xor-out 0xFFFFFFFF).

    An implementation independent of zlib, so the test does not only check
    that the module agrees with itself.
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def load_vectors() -> list[tuple[FlowKey, int]]:
    doc = json.loads(VECTORS.read_text())
    assert [tuple(f) for f in doc["fields"]] == list(KEY_FIELDS)
    out = []
    for v in doc["vectors"]:
        key = FlowKey(
            v["vrf"],
            int(ipaddress.IPv4Address(v["src_addr"])),
            int(ipaddress.IPv4Address(v["dst_addr"])),
            v["proto"],
            v["src_port"],
            v["dst_port"],
        )
        out.append((key, int(v["bucket_hash"], 16)))
    return out


def test_reference_crc_check_value() -> None:
    # The catalogue check value of CRC-32/ISO-HDLC.
    assert crc32_bitwise(b"123456789") == 0xCBF43926


@pytest.mark.parametrize(("key", "expected"), load_vectors(), ids=str)
def test_vector(key: FlowKey, expected: int) -> None:
    assert key.bucket_hash() == expected
    assert crc32_bitwise(key.packed().to_bytes(15, "big")) == expected


def test_padding_to_whole_bytes() -> None:
    # 9 bits (a port) are padded with 7 zero bits at the end, as BMv2 serialises them.
    assert crc32_fields([0x1FF], [9]) == crc32_bitwise(bytes([0xFF, 0x80]))
    assert crc32_fields([1, 1], [4, 4]) == crc32_bitwise(bytes([0x11]))


def test_reverse_and_pack_round_trip() -> None:
    key = FlowKey.parse("3,10.0.0.1,10.0.0.2,tcp,1234,80")
    assert key.reverse() == FlowKey.parse("3,10.0.0.2,10.0.0.1,6,80,1234")
    assert key.reverse().reverse() == key
    assert FlowKey.unpack(key.packed()) == key
    for k in (key, FlowKey(0xFFFF, 2**32 - 1, 2**32 - 1, 255, 0xFFFE, 0xFFFD), FlowKey(*[0] * 6)):
        assert FlowKey.l4_of(k.packed()) == (k.proto, k.src_port, k.dst_port)
    assert str(key) == "vrf 3 10.0.0.1:1234 -> 10.0.0.2:80 proto 6"


def test_field_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="src_port"):
        FlowKey(0, 1, 2, 6, 70000, 80)
    with pytest.raises(ValueError, match="does not fit"):
        crc32_fields([256], [8])
