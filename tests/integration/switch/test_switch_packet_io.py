"""Forwarding through the interpreter, packet-in and packet-out (PI's packet_io_mgr)."""

from __future__ import annotations

import pytest
from google.rpc import code_pb2
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import TO_CPU, Client, canon, frame, l2_entry


def packet_out(payload: bytes, port: int | None, extra_id: int | None = None):
    msg = p4r.PacketOut(payload=payload)
    if port is not None:
        msg.metadata.add(metadata_id=1, value=canon(port))
    if extra_id is not None:
        msg.metadata.add(metadata_id=extra_id, value=b"\x01")
    return p4r.StreamMessageRequest(packet=msg)


@pytest.fixture
async def env(switch_factory):
    sw = await switch_factory(pipeline=True, stream_error_reporting=True)
    async with Client.of(sw) as c:
        stream = await c.primary(1)
        yield sw, c, stream


async def test_an_entry_forwards_the_packet_unchanged(env) -> None:
    sw, c, _ = env
    await c.insert(l2_entry(0x02, port=3))
    await sw.inject(1, frame(0x02))
    assert await sw.expect(3) == frame(0x02)
    assert sw.drain(3) == []


async def test_to_cpu_becomes_a_packet_in_with_its_metadata(env) -> None:
    sw, c, stream = env
    await c.insert(l2_entry(0x03, action=TO_CPU, port=None))
    await sw.inject(7, frame(0x03))
    pin = (await stream.recv_kind("packet")).packet
    assert pin.payload == frame(0x03)
    assert {(m.metadata_id, m.value) for m in pin.metadata} == {(1, b"\x07"), (2, b"\x00")}


async def test_packet_out_goes_out_of_the_port_in_its_metadata(env) -> None:
    sw, _c, stream = env
    stream.send(packet_out(frame(0x44), 6))
    assert await sw.expect(6) == frame(0x44)


async def test_packet_out_with_unknown_metadata_is_dropped_with_a_stream_error(env) -> None:
    sw, _c, stream = env
    stream.send(packet_out(frame(0x44), 6, extra_id=9))
    err = (await stream.recv_kind("error")).error
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    assert err.packet_out.packet_out.payload == frame(0x44)
    assert sw.drain(6) == []


async def test_packet_out_and_packet_in_are_for_the_primary_only(env) -> None:
    sw, c, primary = env
    backup = c.stream()
    backup.arbitrate(0)
    await backup.recv_kind("arbitration")
    backup.send(packet_out(frame(0x45), 6))
    assert await backup.nothing(0.3)
    assert sw.drain(6) == []  # ignored
    await c.insert(l2_entry(0x03, action=TO_CPU, port=None))
    await sw.inject(2, frame(0x03))
    await primary.recv_kind("packet")
    assert await backup.nothing()


async def test_packet_out_before_arbitration_is_ignored(env) -> None:
    sw, c, _ = env
    s = c.stream()
    s.send(packet_out(frame(0x46), 6))
    s.arbitrate(0)
    await s.recv_kind("arbitration")
    assert sw.drain(6) == []


async def test_malformed_packets_never_stop_the_switch(env) -> None:
    sw, c, _ = env
    await c.insert(l2_entry(0x02, port=3))
    for junk in (b"", b"\x00", b"\xff" * 13):
        await sw.inject(1, junk)
    await sw.inject(1, frame(0x02))
    assert frame(0x02) in sw.drain(3)


async def test_packet_out_metadata_packing(loaded_switch) -> None:
    """Fields are packed bit-contiguously in P4Info order (9 + 7 bits here)."""
    mgr = loaded_switch.device_mgr
    msg = p4r.PacketOut(payload=b"P")
    msg.metadata.add(metadata_id=1, value=b"\x01\x03")  # 259
    msg.metadata.add(metadata_id=2, value=b"\x05")
    raw = mgr.packet_out(msg)
    assert raw == ((259 << 7) | 5).to_bytes(2, "big") + b"P"
