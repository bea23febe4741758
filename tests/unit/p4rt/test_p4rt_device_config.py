"""Per-target device configs: BMv2 JSON bytes; Tofino's length-prefixed PI packing."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from p4ctl.p4rt.device_config import (
    PipelineConfig,
    bmv2_device_config,
    parse_tofino_device_config,
    tofino_device_config,
)
from p4ctl.p4rt.p4info import P4Info

FIXTURE = Path(__file__).parent / "fixtures" / "mini.p4info.txtpb"


def test_tofino_packing_is_three_little_endian_length_prefixed_parts() -> None:
    blob = tofino_device_config("flowcache", b"\x01\x02\x03", b'{"a": 1}')
    expected = (
        struct.pack("<i", 9) + b"flowcache"
        + struct.pack("<i", 3) + b"\x01\x02\x03"
        + struct.pack("<i", 8) + b'{"a": 1}'
    )
    assert blob == expected
    assert parse_tofino_device_config(blob) == ("flowcache", b"\x01\x02\x03", b'{"a": 1}')


def test_tofino_parse_rejects_truncated_and_trailing_data() -> None:
    blob = tofino_device_config("p", b"bin", b"ctx")
    with pytest.raises(ValueError, match=r"bad context.json length"):
        parse_tofino_device_config(blob[:-1])
    with pytest.raises(ValueError, match=r"trailing"):
        parse_tofino_device_config(blob + b"x")
    with pytest.raises(ValueError, match=r"truncated"):
        parse_tofino_device_config(b"\x01")
    with pytest.raises(ValueError, match=r"program name"):
        tofino_device_config("", b"", b"")


def test_bmv2_config_is_the_json_bytes(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"program": "x"}')
    assert bmv2_device_config(path) == b'{"program": "x"}'
    assert bmv2_device_config('{"a": 1}') == b'{"a": 1}'


def test_pipeline_cookie_identifies_the_pair(tmp_path: Path) -> None:
    p4info = P4Info.load(FIXTURE)
    json_path = tmp_path / "bmv2.json"
    json_path.write_text('{"program": "x"}')
    one = PipelineConfig.bmv2(FIXTURE, str(json_path))
    two = PipelineConfig.bmv2(p4info, json_path)
    other = PipelineConfig.bmv2(p4info, b'{"program": "y"}')
    assert one.cookie == two.cookie != other.cookie
    proto = one.to_proto()
    assert proto.p4_device_config == b'{"program": "x"}'
    assert proto.cookie.cookie == one.cookie
    assert proto.p4info == p4info.proto
    tofino = PipelineConfig.tofino(p4info, "flowcache", b"bin", b"{}")
    assert parse_tofino_device_config(tofino.device_config) == ("flowcache", b"bin", b"{}")
