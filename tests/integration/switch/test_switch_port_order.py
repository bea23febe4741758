"""Frames arriving on several attached ports at once are processed in arrival order.

The switch reads its attached interfaces one frame each in turn (as BMv2's
port manager does), not a batch from one port and then the next. Two
ports sit on veth pairs; frames sent alternately on their host ends are
forwarded to an in-process port, whose queue shows the order the switch
processed them in. Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Iterator

import pytest
from switch_helpers import Client, frame, l2_entry, raw_socket, veth_pairs

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to create veth pairs",
)

PACKET_OUTGOING = 4
DST = 0x020000000002
OUT_PORT = 3  # in-process: its queue keeps one order for frames from both inputs


@pytest.fixture
def veths() -> Iterator[dict[int, tuple[str, str]]]:
    with veth_pairs("swo") as pairs:
        yield pairs


def _wait_delivered(taps: dict[int, socket.socket], want: dict[int, int]) -> None:
    """Block until each tap on a switch-side veth has seen its frames.

    The taps see a frame when the switch's own socket does, so afterwards
    every frame waits in the switch's sockets and the order the switch
    processes them in is its own choice, not the kernel's delivery timing.
    The event loop is blocked meanwhile on purpose: the switch reads nothing
    before all frames are there. The deadline only guards against a hang.
    """
    seen = dict.fromkeys(taps, 0)
    deadline = time.monotonic() + 10.0
    while seen != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"frames never reached the switch's interfaces: {seen}")
        for port, tap in taps.items():
            with contextlib.suppress(BlockingIOError):
                while True:
                    _, addr = tap.recvfrom(65536)
                    if addr[2] != PACKET_OUTGOING:
                        seen[port] += 1
        time.sleep(0.001)


async def test_frames_sent_alternately_on_two_ports_are_processed_in_that_order(
    veths, switch_factory
) -> None:
    # veths first: the switch stops before its interfaces are removed
    sw = await switch_factory(pipeline=True, ports={p: ends[0] for p, ends in veths.items()})
    async with Client.of(sw) as c:
        await c.primary(1)
        await c.insert(l2_entry(DST, port=OUT_PORT))
    hosts = {p: raw_socket(host_end) for p, (_, host_end) in veths.items()}
    taps = {p: raw_socket(sw_end) for p, (sw_end, _) in veths.items()}
    try:
        per_port = 20
        sent = []
        for _ in range(per_port):
            for port in (1, 2):
                # the source address numbers the frame and names its port
                pkt = frame(DST, src=(port << 16) | len(sent))
                sent.append(pkt)
                hosts[port].send(pkt)
        _wait_delivered(taps, dict.fromkeys(taps, per_port))
        got = [await sw.expect(OUT_PORT) for _ in sent]
        assert [g[6:12].hex() for g in got] == [s[6:12].hex() for s in sent]
        assert sw.ports.interfaces == {1: veths[1][0], 2: veths[2][0]}
    finally:
        for s in (*hosts.values(), *taps.values()):
            s.close()
