"""Helpers shared by the interpreter tests: packets, and a digest probe on fields.

A module of its own (not conftest) so that test modules can import it by a
name no other test directory uses.
"""

from __future__ import annotations

from typing import Any

import bmv2json as J
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from p4ctl.switch import Pipeline


def tcp_packet(
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    sport: int = 1234,
    dport: int = 80,
    flags: str = "S",
    payload: bytes = b"payload",
    ttl: int = 64,
) -> bytes:
    p = (
        Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01")
        / IP(src=src, dst=dst, ttl=ttl)
        / TCP(sport=sport, dport=dport, flags=flags)
        / Raw(payload)
    )
    return bytes(p)


def udp_packet(src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 53, dport: int = 53,
               payload: bytes = b"q") -> bytes:  # fmt: skip
    p = (
        Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01")
        / IP(src=src, dst=dst)
        / UDP(sport=sport, dport=dport)
        / Raw(payload)
    )
    return bytes(p)


def probe(
    doc: dict[str, Any],
    fields: list[tuple[str, int] | tuple[str, int, bool]],
    primitives: list[Any],
) -> Pipeline:
    """Ingress runs ``primitives`` then digests the given ``scalars`` fields (list id 1)."""
    J.scalars(doc, *fields)
    doc["learn_lists"].append(
        {
            "id": 1,
            "name": "probe_t",
            "elements": [J.fld("scalars", f[0]) for f in fields],
        }
    )
    J.run_actions(
        doc, "ingress", [*primitives, J.prim("generate_digest", J.hexv(1, 4), J.hexv(1, 4))]
    )
    return Pipeline.from_json(doc)


def digest_of(pipe: Pipeline, packet: bytes | None = None, port: int = 1) -> tuple[int, ...]:
    res = pipe.process(packet if packet is not None else tcp_packet(), port, now_us=1000)
    assert len(res.digests) == 1, res
    name, values = res.digests[0]
    assert name == "probe_t"
    return values
