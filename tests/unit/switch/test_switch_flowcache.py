"""The committed flow-cache program (pipelines/flowcache/bmv2.json) in the interpreter.

These run only when p4c's JSON is committed; they follow the program's own
contract (pipelines/flowcache/pipeline.yaml and p4src/flowcache_v1model.p4).
"""

from __future__ import annotations

import ipaddress
import os
import zlib
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from switch_probe import tcp_packet, udp_packet

from p4ctl.switch import Pipeline, TableEntry

ROOT = Path(__file__).resolve().parents[3]
# P4CTL_FLOWCACHE_JSON: run these against another build of the program (e.g. a local p4c run).
JSON = Path(os.environ.get("P4CTL_FLOWCACHE_JSON") or ROOT / "pipelines/flowcache/bmv2.json")
CPU_PORT = 255

pytestmark = pytest.mark.skipif(not JSON.exists(), reason=f"{JSON.name} not committed yet")

T_FLOW = "FlowIngress.flow_table"
T_MISS = "FlowIngress.miss_policy"


def ip(a: str) -> int:
    return int(ipaddress.IPv4Address(a))


def bucket_hash(vrf: int, src: str, dst: str, proto: int, sport: int, dport: int) -> int:
    key = (((((vrf << 32 | ip(src)) << 32 | ip(dst)) << 8 | proto) << 16 | sport) << 16) | dport
    return zlib.crc32(key.to_bytes(15, "big"))


@pytest.fixture(scope="module")
def program() -> bytes:
    return JSON.read_bytes()


@pytest.fixture
def pipe(program: bytes) -> Pipeline:
    return Pipeline.from_json(program)


def sizes(pipe: Pipeline) -> tuple[int, int]:
    """(FLOW_ENTRIES, OVERFLOW_ENTRIES) the JSON was compiled with."""
    return pipe.tables[T_FLOW].size, pipe.registers["FlowIngress.ovf_valid"].size


def test_objects_named_in_pipeline_yaml(pipe: Pipeline) -> None:
    for t in ("FlowIngress.port_vrf", T_FLOW, T_MISS):
        assert t in pipe.tables
    assert pipe.tables[T_FLOW].support_timeout
    assert pipe.tables[T_FLOW].direct_counter == "FlowIngress.flow_counter"
    assert [f.name for f in pipe.tables[T_FLOW].match_fields] == [
        "vrf", "src_addr", "dst_addr", "proto", "src_port", "dst_port"]  # fmt: skip
    assert [w for _n, w in pipe.digests["new_flow_digest_t"].fields] == [16, 32, 32, 8, 16, 16,
                                                                         9, 32]  # fmt: skip
    assert "FlowIngress.overflow_counter" in pipe.counters


def test_miss_raises_new_flow_digest_and_drops(pipe: Pipeline) -> None:
    res = pipe.process(tcp_packet(src="10.0.0.1", dst="10.0.0.2", sport=1234, dport=80), 3)
    assert res.outputs == []
    h = bucket_hash(0, "10.0.0.1", "10.0.0.2", 6, 1234, 80)
    assert h == 0x3FECF737  # the first vectors of pipelines/flowcache/hash_vectors.json
    assert res.digests == [
        ("new_flow_digest_t", (0, ip("10.0.0.1"), ip("10.0.0.2"), 6, 1234, 80, 3, h))
    ]


def test_hit_forwards_counts_and_tracks_tcp_state(pipe: Pipeline) -> None:
    key = (0, ip("10.0.0.1"), ip("10.0.0.2"), 6, 1234, 80)
    pipe.tables[T_FLOW].insert(TableEntry(key, 0, "FlowIngress.flow_forward", (7, 2)))
    syn = tcp_packet(flags="S")
    res = pipe.process(syn, 1, now_us=5000)
    assert res.outputs == [(2, syn)] and res.digests == []
    e = pipe.tables[T_FLOW].get(key, 0)
    assert (e.packets, e.bytes) == (1, len(syn))
    assert pipe.registers["FlowIngress.flow_tcp_state"].read(7) == 0x01
    assert pipe.registers["FlowIngress.flow_last_seen"].read(7) == 5000
    fin = tcp_packet(flags="FA")
    res = pipe.process(fin, 1)
    # SYN, then an ACK after the SYN (ESTABLISHED) that carries the FIN
    assert res.digests == [("flow_event_digest_t", (7, 0x01 | 0x04 | 0x08))]
    assert pipe.process(fin, 1).digests == []  # once per transition


def test_vrf_from_port(pipe: Pipeline) -> None:
    pipe.tables["FlowIngress.port_vrf"].insert(TableEntry((4,), 0, "FlowIngress.set_vrf", (9,)))
    res = pipe.process(udp_packet(sport=53000, dport=53), 4)
    assert res.digests[0][1][0] == 9


def test_nat_rewrites_with_valid_checksums(pipe: Pipeline) -> None:
    key = (0, ip("10.0.0.1"), ip("10.0.0.2"), 6, 1234, 80)
    args = (8, 5, ip("192.168.0.1"), ip("10.0.0.2"), 40000, 80)
    pipe.tables[T_FLOW].insert(TableEntry(key, 0, "FlowIngress.flow_nat", args))
    ((port, data),) = pipe.process(tcp_packet(payload=b"odd-length!"), 1).outputs
    out = Ether(data)
    assert port == 5 and out[IP].src == "192.168.0.1" and out[TCP].sport == 40000
    fresh = out.copy()
    del fresh[IP].chksum
    del fresh[TCP].chksum
    fresh = Ether(bytes(fresh))
    assert (out[IP].chksum, out[TCP].chksum) == (fresh[IP].chksum, fresh[TCP].chksum)


def test_overflow_slot_forwards_and_counts(pipe: Pipeline) -> None:
    flow_entries, overflow = sizes(pipe)
    h = bucket_hash(0, "10.0.0.1", "10.0.0.2", 6, 1234, 80)
    slot = (h % (overflow // 4)) * 4 + 2
    regs = pipe.registers
    regs["FlowIngress.ovf_key_addrs"].write(slot, ip("10.0.0.1") << 32 | ip("10.0.0.2"))
    regs["FlowIngress.ovf_key_rest"].write(slot, (0 << 40) | (6 << 32) | (1234 << 16) | 80)
    regs["FlowIngress.ovf_action"].write(slot, 1)
    regs["FlowIngress.ovf_port"].write(slot, 6)
    pkt = tcp_packet()
    assert pipe.process(pkt, 1).outputs == []  # valid bit still 0
    regs["FlowIngress.ovf_valid"].write(slot, 1)
    assert pipe.process(pkt, 1, now_us=77).outputs == [(6, pkt)]
    assert pipe.counters["FlowIngress.overflow_counter"].read(slot) == (1, len(pkt))
    assert regs["FlowIngress.flow_last_seen"].read(flow_entries + slot) == 77


def test_hold_mode_sends_packet_in(pipe: Pipeline) -> None:
    pipe.tables[T_MISS].set_default("FlowIngress.miss_to_cpu", ())
    pkt = tcp_packet()
    res = pipe.process(pkt, 3)
    assert len(res.digests) == 1
    ((port, data),) = res.outputs
    assert port == CPU_PORT
    hdr = int.from_bytes(data[:3], "big")  # ingress_port(9) reason(8) pad(7)
    assert (hdr >> 15, (hdr >> 7) & 0xFF) == (3, 1)
    assert data[3:] == pkt


def test_packet_out_direct_and_through_the_table(pipe: Pipeline) -> None:
    pkt = tcp_packet()
    direct = ((9 << 23) | (0 << 14) | (1 << 6)).to_bytes(4, "big")  # egress 9, mode direct
    assert pipe.process(direct + pkt, CPU_PORT).outputs == [(9, pkt)]
    key = (0, ip("10.0.0.1"), ip("10.0.0.2"), 6, 1234, 80)
    pipe.tables[T_FLOW].insert(TableEntry(key, 0, "FlowIngress.flow_forward", (1, 4)))
    via_table = ((0 << 23) | (3 << 14) | (0 << 6)).to_bytes(4, "big")  # as if from port 3
    assert pipe.process(via_table + pkt, CPU_PORT).outputs == [(4, pkt)]


def test_bad_ipv4_checksum_is_dropped(pipe: Pipeline) -> None:
    bad = bytearray(tcp_packet())
    bad[24] ^= 0x55
    res = pipe.process(bytes(bad), 1)
    assert res.outputs == [] and res.digests == []
