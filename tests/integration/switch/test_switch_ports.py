"""Ports attached to Linux interfaces (veth pairs, AF_PACKET raw sockets; needs root)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import Iterator

import pytest
from switch_helpers import Client, frame, l2_entry, raw_socket, veth_pairs

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


async def test_an_unknown_interface_fails_the_start(switch_factory) -> None:
    with pytest.raises(OSError):
        await switch_factory(ports={1: "no-such-if0"})


def test_the_cpu_port_cannot_be_a_data_port() -> None:
    from p4ctl.switch.device import SoftwareSwitch

    with pytest.raises(ValueError):
        SoftwareSwitch(cpu_port=1, ports={1: "lo"})
