"""PTF tests of the flow-cache program (docs/pipeline.md, "Packet walks").

Run by ``tests/ptf/test_ptf_suite.py`` (the software switch) and
``tests/bmv2/test_ptf_bmv2.py`` (``simple_switch_grpc``) with the same code;
see ``fc_base`` for the test parameters. Ports 1, 2 and 3 are switch ports;
the CPU port is reached through P4Runtime packet-in/out.

Where a check is "nothing came out", the test first waits for a sign that
the switch has processed the packet (its digest, or its counter), so a slow
switch cannot pass it by being late.
"""

from __future__ import annotations

from fc_base import (
    FLOW_EVENT,
    NEW_FLOW,
    OVERFLOW_COUNTER,
    OVF_DROP,
    OVF_FORWARD,
    OVF_NAT,
    PACKET_IN_NEW_FLOW,
    PACKET_OUT_DIRECT,
    PACKET_OUT_FLOW_TABLE,
    PROTO,
    TCP_ESTABLISHED,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    FlowCacheTest,
    bucket_hash,
    flow_match,
    ip,
)
from ptf.testutils import (
    send_packet,
    simple_tcp_packet,
    simple_udp_packet,
    verify_no_other_packets,
    verify_packet,
)
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

CLIENT, SERVER, PUBLIC = "10.0.0.1", "10.0.0.2", "192.168.0.1"
MAC_A, MAC_B = "00:00:00:00:00:0a", "00:00:00:00:00:0b"


def tcp(src: str = CLIENT, dst: str = SERVER, sport: int = 1234, dport: int = 80,
        flags: str = "S", pktlen: int = 100) -> Packet:  # fmt: skip
    return simple_tcp_packet(
        pktlen=pktlen, eth_dst=MAC_B, eth_src=MAC_A, ip_src=src, ip_dst=dst,
        tcp_sport=sport, tcp_dport=dport, tcp_flags=flags,
    )  # fmt: skip


def udp(src: str = CLIENT, dst: str = SERVER, sport: int = 5353, dport: int = 53,
        pktlen: int = 90) -> Packet:  # fmt: skip
    return simple_udp_packet(
        pktlen=pktlen, eth_dst=MAC_B, eth_src=MAC_A, ip_src=src, ip_dst=dst,
        udp_sport=sport, udp_dport=dport,
    )  # fmt: skip


def icmp_echo(src: str = CLIENT, dst: str = SERVER, ident: int = 0x4242) -> Packet:
    return (
        Ether(dst=MAC_B, src=MAC_A)
        / IP(src=src, dst=dst)
        / ICMP(type=8, id=ident, seq=1)
        / Raw(b"ping-payload")
    )


def rewritten(pkt: Packet, src: str, dst: str, sport: int, dport: int) -> Packet:
    """``pkt`` after NAT to (src, dst, sport, dport), checksums recomputed by scapy.

    A UDP checksum of 0 (none) stays 0, as the program leaves it.
    """
    out = pkt.copy()
    out[IP].src, out[IP].dst = src, dst
    del out[IP].chksum
    l4 = out[TCP] if TCP in out else out[UDP]
    l4.sport, l4.dport = sport, dport
    if not (UDP in out and pkt[UDP].chksum == 0):
        del l4.chksum
    return Ether(bytes(out))


def key_of(pkt: Packet, vrf: int = 0) -> dict[str, int]:
    l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
    return flow_match(vrf, pkt[IP].src, pkt[IP].dst, pkt[IP].proto, l4.sport, l4.dport)


class MissRaisesNewFlowDigest(FlowCacheTest):
    """A packet that misses the flow table and the overflow area: one new-flow
    digest with the key, the ingress port and the bucket hash; nothing forwarded."""

    def runTest(self) -> None:
        cases = [
            (tcp(sport=1111), 1, (PROTO["tcp"], 1111, 80)),
            (udp(sport=2222), 2, (PROTO["udp"], 2222, 53)),
            # ICMP echo: the identifier stands in for both ports
            (icmp_echo(ident=0x4242), 3, (PROTO["icmp"], 0x4242, 0x4242)),
        ]
        for pkt, port, (proto, sport, dport) in cases:
            send_packet(self, port, pkt)
            digest = self.expect_digest(NEW_FLOW)
            self.assertEqual(
                digest,
                {
                    "vrf": 0, "src_addr": ip(CLIENT), "dst_addr": ip(SERVER), "proto": proto,
                    "src_port": sport, "dst_port": dport, "ingress_port": port,
                    "bucket_hash": bucket_hash(0, CLIENT, SERVER, proto, sport, dport),
                },
            )  # fmt: skip
        self.assert_no_digest()
        verify_no_other_packets(self)


class MissUsesPortVrf(FlowCacheTest):
    """The VRF of the key (and of the digest) comes from port_vrf; other ports are in VRF 0."""

    def runTest(self) -> None:
        self.session.set_port_vrf(2, 7)
        send_packet(self, 2, tcp(sport=3000))
        digest = self.expect_digest(NEW_FLOW)
        self.assertEqual((digest["vrf"], digest["ingress_port"]), (7, 2))
        self.assertEqual(digest["bucket_hash"], bucket_hash(7, CLIENT, SERVER, 6, 3000, 80))
        # the same flow in VRF 7 hits; on port 1 (VRF 0) it still misses
        match = flow_match(7, CLIENT, SERVER, 6, 3000, 80)
        self.session.insert_flow(match, "FlowIngress.flow_forward", flow_id=1, port=3)
        pkt = tcp(sport=3000)
        send_packet(self, 2, pkt)
        verify_packet(self, pkt, 3)
        send_packet(self, 1, pkt)
        self.assertEqual(self.expect_digest(NEW_FLOW)["vrf"], 0)
        verify_no_other_packets(self)


class HitForwards(FlowCacheTest):
    """A flow entry forwards its packets, unchanged, to the entry's port; no digest."""

    def runTest(self) -> None:
        a, b = tcp(sport=4001), udp(sport=4002)
        self.session.insert_flow(key_of(a), "FlowIngress.flow_forward", flow_id=10, port=2)
        self.session.insert_flow(key_of(b), "FlowIngress.flow_forward", flow_id=11, port=3)
        for _ in range(2):
            send_packet(self, 1, a)
            verify_packet(self, a, 2)
            send_packet(self, 1, b)
            verify_packet(self, b, 3)
        # the reverse direction has no entry: it misses
        back = tcp(src=SERVER, dst=CLIENT, sport=80, dport=4001)
        send_packet(self, 2, back)
        self.assertEqual(self.expect_digest(NEW_FLOW)["ingress_port"], 2)
        self.assert_no_digest()
        verify_no_other_packets(self)


class DropEntry(FlowCacheTest):
    """A flow_drop entry drops the flow's packets (counted, no digest, nothing out)."""

    def runTest(self) -> None:
        pkt = tcp(sport=5001)
        match = key_of(pkt)
        self.session.insert_flow(match, "FlowIngress.flow_drop", flow_id=20)
        send_packet(self, 1, pkt)
        packets, _ = self.wait_counter(lambda: self.session.direct_counter(match), 1)
        self.assertEqual(packets, 1)
        self.assert_no_digest()
        verify_no_other_packets(self)


class MalformedIpv4IsDroppedNotLearned(FlowCacheTest):
    """An IPv4 frame whose header is not IPv4's (version 6) or shorter than 20
    bytes (ihl 4) is dropped: no digest (it would be learned as a flow of
    garbage), nothing out, whatever the flow table holds for its key."""

    def runTest(self) -> None:
        good = tcp(sport=5002)
        self.session.insert_flow(key_of(good), "FlowIngress.flow_forward", flow_id=21, port=2)
        for field, value in (("version", 6), ("ihl", 4)):
            pkt = good.copy()
            setattr(pkt[IP], field, value)
            del pkt[IP].chksum  # a header checksum that is right for what is sent
            send_packet(self, 1, bytes(pkt))
        send_packet(self, 1, good)  # the flow itself still goes through
        verify_packet(self, good, 2)
        self.assert_no_digest()
        verify_no_other_packets(self)


class NatBothDirections(FlowCacheTest):
    """NAT entries for both directions of a TCP and a UDP session: addresses and
    ports rewritten, IPv4 and TCP/UDP checksums valid (the expected packets are
    built with checksums recomputed by scapy)."""

    def runTest(self) -> None:
        s = self.session
        for make, proto, sport, dport, public_port in (
            (tcp, "tcp", 1234, 80, 40000),
            (udp, "udp", 5353, 53, 40001),
        ):
            out = make(src=CLIENT, dst=SERVER, sport=sport, dport=dport)
            # client -> server: source NAT to PUBLIC:public_port, out of port 2
            s.insert_flow(
                key_of(out), "FlowIngress.flow_nat", flow_id=30 + PROTO[proto], port=2,
                src_addr=ip(PUBLIC), dst_addr=ip(SERVER), src_port=public_port, dst_port=dport,
            )  # fmt: skip
            # server -> PUBLIC:public_port: back to the client, out of port 1
            reply = make(src=SERVER, dst=PUBLIC, sport=dport, dport=public_port)
            s.insert_flow(
                key_of(reply), "FlowIngress.flow_nat", flow_id=50 + PROTO[proto], port=1,
                src_addr=ip(SERVER), dst_addr=ip(CLIENT), src_port=dport, dst_port=sport,
            )  # fmt: skip
            send_packet(self, 1, out)
            verify_packet(self, rewritten(out, PUBLIC, SERVER, public_port, dport), 2)
            send_packet(self, 2, reply)
            verify_packet(self, rewritten(reply, SERVER, CLIENT, dport, sport), 1)
        # a UDP packet without checksum (0) keeps 0 after NAT
        bare = udp(sport=5353)
        bare[UDP].chksum = 0
        bare = Ether(bytes(bare))
        send_packet(self, 1, bare)
        expected = rewritten(bare, PUBLIC, SERVER, 40001, 53)
        self.assertEqual(expected[UDP].chksum, 0)
        verify_packet(self, expected, 2)
        self.assert_no_digest()
        verify_no_other_packets(self)


Cell = tuple[str, int, int]


def _overflow_cells(
    slot: int, pkt: Packet, kind: int, port: int, vrf: int = 0,
    nat: tuple[str, str, int, int] | None = None,
) -> list[Cell]:  # fmt: skip
    """Register writes installing ``pkt``'s flow in overflow ``slot``, valid bit last.

    Layout (docs/pipeline.md): ``ovf_key_addrs`` = src ++ dst, ``ovf_key_rest``
    = vrf ++ proto ++ src_port ++ dst_port, then the action registers.
    """
    l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
    src, dst = ip(pkt[IP].src), ip(pkt[IP].dst)
    cells = [
        ("FlowIngress.ovf_key_addrs", slot, src << 32 | dst),
        ("FlowIngress.ovf_key_rest", slot,
         vrf << 40 | pkt[IP].proto << 32 | l4.sport << 16 | l4.dport),
        ("FlowIngress.ovf_action", slot, kind),
        ("FlowIngress.ovf_port", slot, port),
    ]  # fmt: skip
    if nat is not None:
        nsrc, ndst, nsport, ndport = nat
        cells += [
            ("FlowIngress.ovf_nat_addrs", slot, ip(nsrc) << 32 | ip(ndst)),
            ("FlowIngress.ovf_nat_ports", slot, nsport << 16 | ndport),
        ]
    return [*cells, ("FlowIngress.ovf_valid", slot, 1)]


class OverflowHit(FlowCacheTest):
    """Flows in overflow slots (register arrays searched on a flow-table miss):
    forward, NAT and drop hits, the overflow counter of each slot, per-flow
    state at flow id FLOW_ENTRIES + slot, and a slot whose valid bit is 0 ignored."""

    def runTest(self) -> None:
        s = self.session
        buckets = s.overflow_entries // 4

        def slot_of(pkt: Packet, way: int) -> int:
            k = key_of(pkt)
            h = bucket_hash(k["vrf"], pkt[IP].src, pkt[IP].dst, k["proto"], k["src_port"],
                            k["dst_port"])  # fmt: skip
            return (h % buckets) * 4 + way

        fwd, nat, drop = tcp(sport=6001), udp(sport=6002), tcp(sport=6003)
        fwd_slot, nat_slot, drop_slot = slot_of(fwd, 2), slot_of(nat, 3), slot_of(drop, 0)
        cells = _overflow_cells(fwd_slot, fwd, OVF_FORWARD, 3)
        # before the valid bit is written, the slot is not used: a miss
        s.write_registers(cells[:-1])
        send_packet(self, 1, fwd)
        self.assertEqual(self.expect_digest(NEW_FLOW)["src_port"], 6001)
        verify_no_other_packets(self)
        s.write_registers(cells[-1:])
        send_packet(self, 1, fwd)
        verify_packet(self, fwd, 3)

        s.write_registers(_overflow_cells(nat_slot, nat, OVF_NAT, 2,
                                          nat=(PUBLIC, SERVER, 40002, 53)))  # fmt: skip
        send_packet(self, 1, nat)
        verify_packet(self, rewritten(nat, PUBLIC, SERVER, 40002, 53), 2)

        s.write_registers(_overflow_cells(drop_slot, drop, OVF_DROP, 0))
        send_packet(self, 1, drop)
        self.assertEqual(
            self.wait_counter(lambda: s.counter(OVERFLOW_COUNTER, drop_slot), 1),
            (1, len(drop)),
        )
        self.assertEqual(s.counter(OVERFLOW_COUNTER, fwd_slot), (1, len(fwd)))
        self.assertEqual(s.counter(OVERFLOW_COUNTER, nat_slot), (1, len(nat)))

        # TCP state of an overflow flow lives at flow id FLOW_ENTRIES + slot
        fin = tcp(sport=6001, flags="F")
        send_packet(self, 1, fin)
        verify_packet(self, fin, 3)
        self.assertEqual(
            self.expect_digest(FLOW_EVENT),
            {"flow_id": s.flow_entries + fwd_slot, "tcp_flags": TCP_SYN | TCP_FIN},
        )
        self.assert_no_digest()
        verify_no_other_packets(self)


class TcpFinRaisesOneFlowEvent(FlowCacheTest):
    """A FIN on an installed flow raises exactly one flow-event digest; a second
    FIN on the same entry raises none (once per transition, not per packet)."""

    def runTest(self) -> None:
        syn = tcp(sport=7001, flags="S")
        self.session.insert_flow(key_of(syn), "FlowIngress.flow_forward", flow_id=77, port=2)
        send_packet(self, 1, syn)
        verify_packet(self, syn, 2)
        self.assert_no_digest()
        fin = tcp(sport=7001, flags="FA")
        send_packet(self, 1, fin)
        verify_packet(self, fin, 2)
        # FIN+ACK after a SYN: ESTABLISHED and FIN join SYN
        self.assertEqual(
            self.expect_digest(FLOW_EVENT),
            {"flow_id": 77, "tcp_flags": TCP_SYN | TCP_ESTABLISHED | TCP_FIN},
        )
        self.assert_no_digest()
        send_packet(self, 1, fin)
        verify_packet(self, fin, 2)
        self.assert_no_digest()
        verify_no_other_packets(self)


class TcpRstRaisesOneFlowEvent(FlowCacheTest):
    """An RST raises one flow-event digest; a FIN after it is a new transition
    (one more digest); a second RST raises none."""

    def runTest(self) -> None:
        rst = tcp(sport=7101, flags="R")
        self.session.insert_flow(key_of(rst), "FlowIngress.flow_forward", flow_id=78, port=3)
        send_packet(self, 1, rst)
        verify_packet(self, rst, 3)
        self.assertEqual(self.expect_digest(FLOW_EVENT), {"flow_id": 78, "tcp_flags": TCP_RST})
        self.assert_no_digest()
        send_packet(self, 1, rst)
        verify_packet(self, rst, 3)
        self.assert_no_digest()
        fin = tcp(sport=7101, flags="F")
        send_packet(self, 1, fin)
        verify_packet(self, fin, 3)
        self.assertEqual(
            self.expect_digest(FLOW_EVENT), {"flow_id": 78, "tcp_flags": TCP_RST | TCP_FIN}
        )
        self.assert_no_digest()
        verify_no_other_packets(self)


class DirectAndOverflowCounters(FlowCacheTest):
    """Direct counters of flow entries (packets and bytes, read back both as
    DirectCounterEntry and as table entries with counter_data) and indexed
    overflow counters count exactly the packets of their flow."""

    def runTest(self) -> None:
        s = self.session
        a, b = tcp(sport=8001, pktlen=100), tcp(sport=8002, pktlen=200)
        s.insert_flow(key_of(a), "FlowIngress.flow_forward", flow_id=80, port=2)
        s.insert_flow(key_of(b), "FlowIngress.flow_forward", flow_id=81, port=2)
        sizes = (100, 150, 300)
        for n in sizes:
            pkt = tcp(sport=8001, pktlen=n)
            send_packet(self, 1, pkt)
            verify_packet(self, pkt, 2)
        send_packet(self, 1, b)
        verify_packet(self, b, 2)
        self.assertEqual(s.direct_counter(key_of(a)), (3, sum(sizes)))
        self.assertEqual(s.entry_counter(key_of(a)), (3, sum(sizes)))
        self.assertEqual(s.direct_counter(key_of(b)), (1, 200))

        c = udp(sport=8003, pktlen=120)
        h = bucket_hash(0, CLIENT, SERVER, 17, 8003, 53)
        slot = (h % (s.overflow_entries // 4)) * 4 + 1
        s.write_registers(_overflow_cells(slot, c, OVF_FORWARD, 3))
        for _ in range(4):
            send_packet(self, 1, c)
            verify_packet(self, c, 3)
        self.assertEqual(s.counter(OVERFLOW_COUNTER, slot), (4, 4 * 120))
        # a neighbouring slot of the same bucket counted nothing
        self.assertEqual(s.counter(OVERFLOW_COUNTER, slot + 1), (0, 0))
        self.assert_no_digest()
        verify_no_other_packets(self)


class PacketInHoldMode(FlowCacheTest):
    """Hold mode (miss_policy's default action miss_to_cpu): a miss arrives as a
    PacketIn carrying the whole packet, its ingress port and reason 1, after
    the new-flow digest; nothing goes out of a data port."""

    def runTest(self) -> None:
        self.session.set_miss_policy("FlowIngress.miss_to_cpu")
        pkt = tcp(sport=9001)
        send_packet(self, 2, pkt)
        self.assertEqual(self.expect_digest(NEW_FLOW)["ingress_port"], 2)
        packet_in = self.expect_packet_in()
        self.assertEqual(packet_in.payload, bytes(pkt))
        self.assertEqual(packet_in.metadata.get("ingress_port"), 2)
        self.assertEqual(packet_in.metadata.get("reason"), PACKET_IN_NEW_FLOW)
        # a hit is not sent to the CPU
        self.session.insert_flow(key_of(pkt), "FlowIngress.flow_forward", flow_id=90, port=1)
        send_packet(self, 2, pkt)
        verify_packet(self, pkt, 1)
        self.assert_no_packet_in()
        # back to the default: dropped
        self.session.set_miss_policy("FlowIngress.miss_drop")
        send_packet(self, 3, tcp(sport=9002))
        self.assertEqual(self.expect_digest(NEW_FLOW)["src_port"], 9002)
        self.assert_no_packet_in()
        verify_no_other_packets(self)


class PacketOutDirect(FlowCacheTest):
    """Packet-out mode 1: the payload leaves on packet_out.egress_port untouched,
    whatever it is (no flow entry, no digest)."""

    def runTest(self) -> None:
        for port in (1, 3):
            pkt = tcp(sport=9100 + port)
            self.session.send_packet_out(
                bytes(pkt), egress_port=port, ingress_port=0, mode=PACKET_OUT_DIRECT
            )
            verify_packet(self, pkt, port)
        self.assert_no_digest()
        verify_no_other_packets(self)


class PacketOutThroughFlowTable(FlowCacheTest):
    """Packet-out mode 0: the packet is processed as if received on
    packet_out.ingress_port (that port's VRF, the flow entry's action); a
    miss raises the digest with that ingress port."""

    def runTest(self) -> None:
        s = self.session
        s.set_port_vrf(3, 5)
        pkt = tcp(sport=9200)
        s.send_packet_out(bytes(pkt), egress_port=0, ingress_port=3, mode=PACKET_OUT_FLOW_TABLE)
        digest = self.expect_digest(NEW_FLOW)
        self.assertEqual((digest["vrf"], digest["ingress_port"]), (5, 3))
        verify_no_other_packets(self)
        s.insert_flow(key_of(pkt, vrf=5), "FlowIngress.flow_forward", flow_id=92, port=2)
        s.send_packet_out(bytes(pkt), egress_port=0, ingress_port=3, mode=PACKET_OUT_FLOW_TABLE)
        verify_packet(self, pkt, 2)
        self.assertEqual(s.direct_counter(key_of(pkt, vrf=5))[0], 1)
        self.assert_no_digest()
        verify_no_other_packets(self)

