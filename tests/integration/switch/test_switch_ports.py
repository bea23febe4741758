"""Ports attached to Linux interfaces (veth pairs, AF_PACKET raw sockets; needs root)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Iterator

import pytest
from switch_helpers import Client, frame, l2_entry, raw_socket, veth_pairs

from p4ctl.switch.ports import receive_whole, tagged_socket

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to create veth pairs",
)


@pytest.fixture
def veths() -> Iterator[dict[int, tuple[str, str]]]:
    with veth_pairs("swt") as pairs:
        yield pairs


async def _receive(sock: socket.socket, want: bytes, timeout: float = 10.0) -> bytes:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            await asyncio.sleep(0.01)
            continue
        if data[:14] == want[:14]:
            return data
    raise AssertionError("the frame never arrived")


async def test_frames_cross_between_interfaces(switch_factory, veths) -> None:
    sw = await switch_factory(pipeline=True, ports={p: ends[0] for p, ends in veths.items()})
    host_in, host_out = raw_socket(veths[1][1]), raw_socket(veths[2][1])
    try:
        async with Client.of(sw) as c:
            await c.primary(1)
            await c.insert(l2_entry(0x020000000002, port=2))
        pkt = frame(0x020000000002, src=0x020000000001)
        host_in.send(pkt)
        got = await _receive(host_out, pkt)
        assert got[: len(pkt)] == pkt
        assert sw.ports.interfaces == {1: veths[1][0], 2: veths[2][0]}
    finally:
        host_in.close()
        host_out.close()


@pytest.mark.parametrize("tpid", [0x8100, 0x88A8])
async def test_a_tagged_frame_is_seen_and_sent_with_its_tag(
    switch_factory, veths, tpid: int
) -> None:
    """Linux takes the tag out before packet sockets see a frame; BMv2 (libpcap) puts
    it back, and so does this switch: the program sees, and forwards, the frame as sent."""
    sw = await switch_factory(pipeline=True, ports={p: ends[0] for p, ends in veths.items()})
    host_in, host_out = raw_socket(veths[1][1]), tagged_socket(raw_socket(veths[2][1]))
    try:
        async with Client.of(sw) as c:
            await c.primary(1)
            await c.insert(l2_entry(0x020000000002, port=2))
        pkt = frame(0x020000000002, src=0x020000000001, ether_type=tpid,
                    payload=b"\x00\x05\x08\x00" + b"tagged-payload-0123456789")
        host_in.send(pkt)
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            try:
                got, _ = receive_whole(host_out)
            except BlockingIOError:
                assert asyncio.get_running_loop().time() < deadline, "nothing came out"
                await asyncio.sleep(0.01)
                continue
            if got[:12] == pkt[:12]:
                break
        assert got[: len(pkt)] == pkt
    finally:
        host_in.close()
        host_out.close()


async def test_an_unknown_interface_fails_the_start(switch_factory) -> None:
    with pytest.raises(OSError):
        await switch_factory(ports={1: "no-such-if0"})


def test_the_cpu_port_cannot_be_a_data_port() -> None:
    from p4ctl.switch.device import SoftwareSwitch

    with pytest.raises(ValueError):
        SoftwareSwitch(cpu_port=1, ports={1: "lo"})
