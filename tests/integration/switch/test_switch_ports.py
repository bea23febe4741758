"""Ports attached to Linux interfaces (veth pairs, AF_PACKET raw sockets; needs root)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from switch_helpers import Client, frame, l2_entry

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to create veth pairs",
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def veths():
    """Two veth pairs: {port: (switch end, host end)}; removed afterwards."""
    tag = os.getpid() % 100000
    pairs = {1: (f"swt{tag}a", f"swt{tag}A"), 2: (f"swt{tag}b", f"swt{tag}B")}
    try:
        for sw_end, host_end in pairs.values():
            _ip("link", "add", sw_end, "type", "veth", "peer", "name", host_end)
            for name in (sw_end, host_end):
                with contextlib.suppress(OSError):
                    Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1")
                _ip("link", "set", name, "up")
        yield pairs
    finally:
        for sw_end, _ in pairs.values():
            subprocess.run(["ip", "link", "del", sw_end], capture_output=True, check=False)


def _raw(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


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
    host_in, host_out = _raw(veths[1][1]), _raw(veths[2][1])
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
