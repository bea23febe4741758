"""New-flow traffic for ``bench_flows``: one UDP frame per flow, paced.

On a veth pair the frames are sent from a process of their own. In the
controller's process the sender would share its event loop and interpreter
lock: every time the controller worked for a few milliseconds, the sender
would fall behind and then catch up with a back-to-back train, and BMv2
drops most of such trains. The figures would then measure the benchmark.

Run as a program (``python traffic.py IFNAME FIRST COUNT RATE``), it builds
its frames, prints ``ready``, waits for a line on standard input, sends, and
prints the send time (``time.monotonic()``, the same clock in every process)
of each frame as JSON.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable, Iterator

from p4ctl.flows.key import FlowKey

#: a frame is sent early rather than sleeping for less than this (seconds)
MIN_SLEEP = 0.0002


def frame(i: int) -> bytes:
    """An Ethernet/IPv4/UDP frame of flow ``i`` (built by hand: scapy is too slow here)."""
    src = (0x0A000000 + (i >> 16)).to_bytes(4, "big")
    sport = (1024 + (i & 0xFFFF) % 60000).to_bytes(2, "big")
    ip = bytearray(b"\x45\x00\x00\x20\x00\x00\x00\x00\x40\x11\x00\x00" + src
                   + bytes([192, 0, 2, (i >> 8) & 0xFF]))
    csum = sum(int.from_bytes(ip[j:j + 2], "big") for j in range(0, 20, 2))
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip[10:12] = (~csum & 0xFFFF).to_bytes(2, "big")
    udp = sport + b"\x00\x35\x00\x0c\x00\x00" + b"data"
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + bytes(ip) + udp


def key_of(i: int) -> FlowKey:
    """The flow key the switch reports for ``frame(i)`` arriving on a VRF 0 port."""
    return FlowKey(0, 0x0A000000 + (i >> 16), 0xC0000200 + ((i >> 8) & 0xFF), 17,
                   1024 + (i & 0xFFFF) % 60000, 53)


def paced(count: int, rate: float) -> Iterator[float]:
    """For each of ``count`` frames at ``rate`` frames/s (0: back to back), how long to wait first.

    Read one value per frame, just before sending it: the clock is read then.
    """
    t0 = time.monotonic()
    for i in range(count):
        wait = t0 + i / rate - time.monotonic() if rate else 0.0
        yield wait if wait > MIN_SLEEP else 0.0


def send_paced(send: Callable[[bytes], object], frames: list[bytes], rate: float) -> list[float]:
    """Send ``frames`` at ``rate`` frames/s (0: back to back); each frame's send time."""
    sent = []
    for data, wait in zip(frames, paced(len(frames), rate), strict=True):
        if wait:
            time.sleep(wait)
        sent.append(time.monotonic())
        send(data)
    return sent


def main(argv: list[str]) -> int:
    ifname, first, count, rate = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    frames = [frame(i) for i in range(first, first + count)]
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx:
        tx.bind((ifname, 0))
        print("ready", flush=True)
        sys.stdin.readline()
        sent = send_paced(tx.send, frames, rate)
    print(json.dumps(sent), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
