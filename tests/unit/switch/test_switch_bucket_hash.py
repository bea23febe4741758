"""The bucket hash as the committed flow-cache program computes it, on the software switch.

Every reproducible vector of ``pipelines/flowcache/hash_vectors.json`` is sent
as a packet that misses; the new-flow digest carries the switch's crc32 of
the key, which must equal the vector (and so the controller's function).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from p4ctl.flows.key import FlowKey
from p4ctl.switch import Pipeline, TableEntry

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / "pipelines" / "flowcache"


def packet(vec: dict) -> bytes | None:
    """A frame whose flow key is the vector's (None if no packet has that key)."""
    ip = IP(src=vec["src_addr"], dst=vec["dst_addr"], proto=vec["proto"])
    proto, sport, dport = vec["proto"], vec["src_port"], vec["dst_port"]
    if proto == 6:
        return bytes(Ether() / ip / TCP(sport=sport, dport=dport))
    if proto == 17:
        return bytes(Ether() / ip / UDP(sport=sport, dport=dport))
    if proto == 1:
        return bytes(Ether() / ip / ICMP(id=sport)) if sport == dport else None
    if sport == dport == 0:
        return bytes(Ether() / ip / (b"\x00" * 8))
    return None


def test_every_reproducible_vector_matches_the_switch() -> None:
    pipe = Pipeline.from_json((PIPELINE / "bmv2.json").read_bytes())
    vectors = json.loads((PIPELINE / "hash_vectors.json").read_text())["vectors"]
    checked = 0
    for vec in vectors:
        frame = packet(vec)
        if frame is None:
            continue
        vrf_table = pipe.tables["FlowIngress.port_vrf"]
        vrf_table.clear()
        vrf_table.insert(TableEntry((1,), 0, "FlowIngress.set_vrf", (vec["vrf"],)))
        result = pipe.process(frame, 1)
        assert result.outputs == []
        [(name, values)] = result.digests
        assert name == "new_flow_digest_t"
        key = FlowKey(*values[:6])
        expected = int(vec["bucket_hash"], 16)
        assert key == FlowKey(vec["vrf"], int(ipaddress.IPv4Address(vec["src_addr"])),
                              int(ipaddress.IPv4Address(vec["dst_addr"])), vec["proto"],
                              vec["src_port"], vec["dst_port"])
        assert values[7] == expected, vec
        assert key.bucket_hash() == expected
        checked += 1
    assert checked >= 20
