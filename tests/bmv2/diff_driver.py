"""Send the same packets through BMv2 and through the software switch; print what each did.

Run by ``test_differential.py`` inside a network namespace where
``simple_switch_grpc`` (P4Runtime on ``--bmv2-grpc``, Thrift on 9090) is
attached to ``sw1..sw3`` and this script holds the other ends ``ptf1..ptf3``:

    python diff_driver.py --bmv2-grpc 127.0.0.1:9559 --bmv2-thrift 127.0.0.1:9090 OUT.json

The software switch runs in this process, attached to ``sw11..sw13`` (the
driver holds ``ptf11..ptf13``), with its P4Runtime and Thrift servers on free
loopback ports: both switches are seen the same way, at the wire. Both targets get the
committed pipeline, the same entries (through P4Runtime with the project's
client) and the same overflow registers (through the Thrift register calls
both serve); then each case's packets (or packet-outs, or a change of
``miss_policy``) go to both, and the driver records, per target and case,
every output packet (port and bytes, on ports 1..3), every digest message
and every packet-in. At the end it reads state back from both: the flow
entries' direct counters, the overflow counters and the per-flow TCP state
registers. The JSON written to OUT has both records side by side; the test
compares them.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, fragment
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from p4ctl.p4rt import (
    CounterEntry,
    DigestEntry,
    DigestList,
    P4Info,
    P4RuntimeClient,
    PacketIn,
    PacketOut,
    PipelineConfig,
    TableEntry,
    ThriftRegisters,
    insert,
    modify,
)
from p4ctl.switch.device import SoftwareSwitch

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "pipelines" / "flowcache"
P4INFO, BMV2_JSON = PIPELINE / "p4info.txtpb", PIPELINE / "bmv2.json"
PORTS = (1, 2, 3)
#: the software switch's port N is attached to veth sw(10+N); BMv2's to swN
SOFTWARE_PORT_OFFSET = 10
CPU_PORT = 255
FLOW_TABLE = "FlowIngress.flow_table"
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

#: settle: a case is over when nothing new came for QUIET_S (after at least MIN_S)
MIN_S, QUIET_S, MAX_S = 0.15, 0.2, 5.0

MAC_A, MAC_B = "00:00:00:00:00:0a", "00:00:00:00:00:0b"
C, S, P = "10.0.0.1", "10.0.0.2", "192.168.0.1"


def ip(a: str) -> int:
    return int(ipaddress.IPv4Address(a))


def key(vrf: int, src: str, dst: str, proto: int, sport: int, dport: int) -> dict[str, int]:
    return {"vrf": vrf, "src_addr": ip(src), "dst_addr": ip(dst), "proto": proto,
            "src_port": sport, "dst_port": dport}  # fmt: skip


def bucket_hash(k: dict[str, int]) -> int:
    v = k["vrf"]
    for name, width in (("src_addr", 32), ("dst_addr", 32), ("proto", 8), ("src_port", 16),
                        ("dst_port", 16)):  # fmt: skip
        v = v << width | k[name]
    return zlib.crc32(v.to_bytes(15, "big"))


def eth() -> Ether:
    return Ether(dst=MAC_B, src=MAC_A)


#: an Ethernet header announcing IPv4, for frames built byte by byte
ETH_IPV4 = bytes(Ether(dst=MAC_B, src=MAC_A, type=0x0800))


def tcp(src: str = C, dst: str = S, sport: int = 1000, dport: int = 80, flags: str = "S",
        payload: bytes = b"tcp-payload") -> bytes:  # fmt: skip
    return bytes(eth() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags)
                 / Raw(payload))  # fmt: skip


def udp(src: str = C, dst: str = S, sport: int = 2000, dport: int = 53,
        payload: bytes = b"udp-payload!") -> bytes:  # fmt: skip
    return bytes(eth() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload))


# -- what the controller writes (both targets) -------------------------------------------------


def flow(k: dict[str, int], action: str, **params: int) -> TableEntry:
    return TableEntry(FLOW_TABLE, k, f"FlowIngress.{action}", params)


K_A = key(0, C, S, 6, 1000, 80)
K_A_REV = key(0, S, C, 6, 80, 1000)
K_B = key(0, C, S, 17, 2000, 53)
K_DROP = key(0, C, S, 6, 1001, 80)
K_NAT = key(0, C, S, 6, 1002, 80)
K_NAT_REV = key(0, S, P, 6, 80, 40000)
K_UNAT = key(0, C, S, 17, 2001, 53)
K_UNAT_REV = key(0, S, P, 17, 53, 40001)
K_ICMP = key(0, C, S, 1, 0x77, 0x77)
K_VRF9 = key(9, C, S, 6, 1003, 80)
K_PORTLESS = key(0, C, S, 6, 0, 0)  # options, fragments, truncated L4: ports 0
K_PORTLESS_NAT = key(0, C, S, 17, 0, 0)  # the same for UDP, translated

ENTRIES = [
    flow(K_A, "flow_forward", flow_id=1, port=2),
    flow(K_A_REV, "flow_forward", flow_id=2, port=1),
    flow(K_B, "flow_forward", flow_id=3, port=3),
    flow(K_DROP, "flow_drop", flow_id=4),
    flow(K_NAT, "flow_nat", flow_id=5, port=2, src_addr=ip(P), dst_addr=ip(S),
         src_port=40000, dst_port=80),
    flow(K_NAT_REV, "flow_nat", flow_id=6, port=1, src_addr=ip(S), dst_addr=ip(C),
         src_port=80, dst_port=1002),
    flow(K_UNAT, "flow_nat", flow_id=7, port=2, src_addr=ip(P), dst_addr=ip(S),
         src_port=40001, dst_port=53),
    flow(K_UNAT_REV, "flow_nat", flow_id=8, port=1, src_addr=ip(S), dst_addr=ip(C),
         src_port=53, dst_port=2001),
    flow(K_ICMP, "flow_forward", flow_id=9, port=2),
    flow(K_VRF9, "flow_forward", flow_id=10, port=1),
    flow(K_PORTLESS, "flow_forward", flow_id=11, port=3),
    flow(K_PORTLESS_NAT, "flow_nat", flow_id=12, port=2, src_addr=ip(P), dst_addr=ip(S),
         src_port=0, dst_port=0),
]  # fmt: skip
PORT_VRF = [TableEntry("FlowIngress.port_vrf", {"in_port": 3}, "FlowIngress.set_vrf", {"vrf": 9})]

K_O1 = key(0, C, S, 6, 3000, 80)  # overflow: forward to 3
K_O2 = key(0, C, S, 17, 3001, 53)  # overflow: NAT
K_O3 = key(0, C, S, 6, 3002, 80)  # overflow: drop
K_O4 = key(0, C, S, 6, 3003, 80)  # overflow: key written, valid bit 0


def overflow_slots(overflow_entries: int) -> dict[str, int]:
    buckets = overflow_entries // 4
    return {
        "O1": bucket_hash(K_O1) % buckets * 4 + 1,
        "O2": bucket_hash(K_O2) % buckets * 4 + 2,
        "O3": bucket_hash(K_O3) % buckets * 4 + 0,
        "O4": bucket_hash(K_O4) % buckets * 4 + 3,
    }


def overflow_cells(slots: dict[str, int]) -> list[tuple[str, int, int]]:
    cells: list[tuple[str, int, int]] = []

    def slot(k: dict[str, int], s: int, kind: int, port: int, valid: int,
             nat: tuple[int, int] = (0, 0)) -> None:  # fmt: skip
        rest = k["vrf"] << 40 | k["proto"] << 32 | k["src_port"] << 16 | k["dst_port"]
        cells.extend([
            ("FlowIngress.ovf_key_addrs", s, k["src_addr"] << 32 | k["dst_addr"]),
            ("FlowIngress.ovf_key_rest", s, rest),
            ("FlowIngress.ovf_action", s, kind),
            ("FlowIngress.ovf_port", s, port),
            ("FlowIngress.ovf_nat_addrs", s, nat[0]),
            ("FlowIngress.ovf_nat_ports", s, nat[1]),
            ("FlowIngress.ovf_valid", s, valid),
        ])  # fmt: skip

    slot(K_O1, slots["O1"], 1, 3, 1)
    slot(K_O2, slots["O2"], 3, 2, 1, (ip(P) << 32 | ip(S), 40002 << 16 | 53))
    slot(K_O3, slots["O3"], 2, 0, 1)
    slot(K_O4, slots["O4"], 1, 2, 0)
    return cells


# -- the cases ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Send:
    port: int
    data: bytes


@dataclass(slots=True)
class Out:
    """A packet-out: payload and packet_out metadata."""

    data: bytes
    egress_port: int
    ingress_port: int
    mode: int


@dataclass(slots=True)
class MissPolicy:
    action: str


@dataclass(slots=True)
class DigestConfig:
    """MODIFY new_flow_digest_t's DigestEntry; ``ack``: whether the driver acknowledges lists."""

    max_list_size: int
    max_timeout_ns: int
    ack_timeout_ns: int
    ack: bool


@dataclass(slots=True)
class Wait:
    """Let time pass inside a case (digest timeouts)."""

    seconds: float


Step = Send | Out | MissPolicy | DigestConfig | Wait


def _raw_ipv4(ihl: int, proto: int, frag: int, l4: bytes, total_len: int | None = None,
              bad_checksum: bool = False, options: bytes = b"",
              version: int = 4) -> bytes:  # fmt: skip
    pkt = IP(src=C, dst=S, ihl=ihl, proto=proto, frag=frag, options=[],
             version=version) / Raw(options + l4)
    raw = bytearray(bytes(pkt))
    if total_len is not None:
        raw[2:4] = total_len.to_bytes(2, "big")
        raw[10:12] = b"\x00\x00"
        raw[10:12] = _csum(bytes(raw[:20])).to_bytes(2, "big")
    if bad_checksum:
        raw[10] ^= 0x5A
    return ETH_IPV4 + bytes(raw)


def _csum(data: bytes) -> int:
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


#: Cases whose name starts with this are compared without order: packets that
#: arrive on several ports at once are not processed in one order by every
#: switch (BMv2 has a receive thread per port; the software switch reads each
#: port's socket in turn, up to 64 frames at a time).
UNORDERED = "(unordered) "


def cases() -> list[tuple[str, list[Step]]]:
    tcp_hdr = bytes(TCP(sport=1000, dport=80, flags="S"))
    ip_opts = bytes(eth() / IP(src=C, dst=S, options=[IPOption_NOP()] * 4) /
                    TCP(sport=1000, dport=80) / Raw(b"opts"))  # fmt: skip
    padded_nat = tcp(sport=1002, payload=b"odd") + b"\x00" * 20
    padded_junk = tcp(sport=1002, payload=b"odd") + b"\xab" * 7
    nat_opts = bytes(eth() / IP(src=C, dst=S, options=[IPOption_NOP()] * 4) /
                     UDP(sport=2001, dport=53) / Raw(b"opts"))  # fmt: skip
    datagram = IP(src=C, dst=S, id=5) / UDP(sport=2001, dport=53) / Raw(bytes(range(256)) * 2)
    first_fragment = bytes(eth() / fragment(datagram, fragsize=256)[0])
    bare_udp = bytearray(udp(sport=2001))
    bare_udp[40:42] = b"\x00\x00"  # no UDP checksum
    return [
        ("miss tcp", [Send(1, tcp(sport=5000))]),
        ("miss udp", [Send(2, udp(sport=5001))]),
        ("miss icmp echo request", [Send(1, bytes(eth() / IP(src=C, dst=S) /
                                                  ICMP(type=8, id=0x99) / Raw(b"x")))]),
        ("miss icmp echo reply", [Send(2, bytes(eth() / IP(src=S, dst=C) /
                                                ICMP(type=0, id=0x99) / Raw(b"x")))]),
        ("miss icmp unreachable (ports 0)", [Send(1, bytes(eth() / IP(src=C, dst=S) /
                                                           ICMP(type=3, code=1)))]),
        ("miss other protocol (gre)", [Send(1, bytes(eth() / IP(src=C, dst=S, proto=47) /
                                                     Raw(b"\x00" * 8)))]),
        ("hit tcp syn", [Send(1, tcp(flags="S"))]),
        ("hit tcp syn-ack reverse", [Send(2, tcp(S, C, 80, 1000, flags="SA"))]),
        ("hit tcp ack", [Send(1, tcp(flags="A"))]),
        ("hit tcp fin: flow event", [Send(1, tcp(flags="FA"))]),
        ("hit tcp fin again: none", [Send(1, tcp(flags="FA"))]),
        ("hit tcp rst reverse: flow event", [Send(2, tcp(S, C, 80, 1000, flags="R"))]),
        ("hit udp", [Send(1, udp())]),
        ("drop entry", [Send(1, tcp(sport=1001))]),
        ("nat tcp out", [Send(1, tcp(sport=1002, payload=b"odd-length!"))]),
        ("nat tcp back", [Send(2, tcp(S, P, 80, 40000, flags="SA"))]),
        ("nat udp out", [Send(1, udp(sport=2001))]),
        ("nat udp back", [Send(2, udp(S, P, 53, 40001))]),
        ("nat udp without checksum", [Send(1, bytes(bare_udp))]),
        ("nat udp, first fragment: checksum of the whole datagram", [Send(1, first_fragment)]),
        ("nat, ipv4 options: dropped", [Send(1, nat_opts)]),
        ("nat tcp, ethernet padding (zeros)", [Send(1, padded_nat)]),
        ("nat tcp, trailing bytes", [Send(1, padded_junk)]),
        ("hit icmp echo", [Send(1, bytes(eth() / IP(src=C, dst=S) / ICMP(type=8, id=0x77) /
                                          Raw(b"ping")))]),
        ("vrf from port 3: hit", [Send(3, tcp(sport=1003))]),
        ("vrf 0 on port 1: miss", [Send(1, tcp(sport=1003))]),
        ("ipv4 options: ports 0, hit", [Send(1, ip_opts)]),
        ("fragment: ports 0, hit", [Send(1, _raw_ipv4(5, 6, 100, tcp_hdr))]),
        ("ihl 4 (bogus): drop", [Send(1, _raw_ipv4(4, 6, 0, tcp_hdr))]),
        ("version 6 in an ipv4 frame: drop", [Send(1, _raw_ipv4(5, 6, 0, tcp_hdr, version=6))]),
        ("bad ipv4 checksum: drop", [Send(1, _raw_ipv4(5, 6, 0, tcp_hdr, bad_checksum=True))]),
        ("arp: drop", [Send(1, bytes(eth() / ARP(psrc=C, pdst=S)))]),
        ("ipv6: drop", [Send(1, bytes(eth() / IPv6() / UDP(sport=1, dport=2)))]),
        ("ethernet only", [Send(1, ETH_IPV4)]),
        ("truncated ipv4 header", [Send(1, ETH_IPV4 + bytes(IP(src=C, dst=S))[:12])]),
        ("truncated tcp header", [Send(1, _raw_ipv4(5, 6, 0, tcp_hdr[:10], total_len=40))]),
        ("truncated udp header", [Send(1, _raw_ipv4(5, 17, 0, b"\x07\xd0\x00", total_len=28))]),
        ("total_len beyond the frame, nat", [Send(1, tcp(sport=1002)[:-4])]),
        ("large frame", [Send(1, tcp(payload=b"L" * 1400, flags="A"))]),
        ("burst of 20 misses, one port", [Send(2, udp(sport=8000 + i)) for i in range(20)]),
        (UNORDERED + "burst of 20 misses, three ports",
         [Send(1 + i % 3, udp(sport=8100 + i)) for i in range(20)]),
        ("burst of 20 hits", [Send(1, tcp(flags="A", payload=bytes([i]) * (i + 1)))
                              for i in range(20)]),
        ("overflow forward", [Send(1, tcp(sport=3000))]),
        ("overflow nat", [Send(1, udp(sport=3001))]),
        ("overflow drop", [Send(1, tcp(sport=3002))]),
        ("overflow valid bit 0: miss", [Send(1, tcp(sport=3003))]),
        ("overflow fin: flow event", [Send(1, tcp(sport=3000, flags="F"))]),
        ("hold mode on", [MissPolicy("FlowIngress.miss_to_cpu")]),
        ("hold mode: miss to cpu", [Send(2, tcp(sport=6000))]),
        ("hold mode: hit", [Send(1, udp())]),
        ("hold mode: truncated tcp to cpu", [Send(3, _raw_ipv4(5, 6, 0, tcp_hdr[:7],
                                                                total_len=40))]),
        ("hold mode off", [MissPolicy("FlowIngress.miss_drop")]),
        ("digest cache on, lists not acknowledged", [DigestConfig(1, 0, 5 * 10**9, False)]),
        ("digest cache: the same miss twice", [Send(1, tcp(sport=9500)),
                                               Send(1, tcp(sport=9500))]),
        ("digest cache: the same miss, still unacknowledged", [Send(1, tcp(sport=9500))]),
        ("digest cache: another flow", [Send(1, tcp(sport=9501))]),
        ("digest cache off again", [DigestConfig(1, 0, 0, True)]),
        ("digest cache off: the cached miss again", [Send(1, tcp(sport=9500))]),
        ("digest lists of 3, 200 ms", [DigestConfig(3, 200 * 10**6, 0, True),
                                       *[Send(1, udp(sport=9600 + i)) for i in range(4)],
                                       Wait(0.8)]),
        ("digest lists of 1 again", [DigestConfig(1, 0, 0, True), Send(1, udp(sport=9700))]),
        ("packet-out direct", [Out(tcp(sport=7000), 2, 0, 1)]),
        ("packet-out direct, arp", [Out(bytes(eth() / ARP(psrc=C, pdst=S)), 3, 0, 1)]),
        ("packet-out through table, hit", [Out(tcp(sport=1003), 0, 3, 0)]),
        ("packet-out through table, miss", [Out(tcp(sport=7001), 0, 3, 0)]),
        ("packet-out through table, bad checksum",
         [Out(_raw_ipv4(5, 6, 0, tcp_hdr, bad_checksum=True), 0, 1, 0)]),
        ("packet-out direct, short payload", [Out(b"\x01\x02\x03", 1, 0, 1)]),
    ]  # fmt: skip


# -- the targets -------------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    outputs: list[tuple[int, str]] = field(default_factory=list)
    digests: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    #: entries per digest list, in arrival order
    digest_lists: list[int] = field(default_factory=list)
    packet_ins: list[tuple[dict[str, int], str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    last_event: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            # per port in the order they left (a stable sort by port)
            "outputs": sorted(self.outputs, key=lambda o: o[0]),
            "digests": self.digests,
            "digest_lists": self.digest_lists,
            "packet_ins": self.packet_ins,
            "errors": self.errors,
        }


class Target:
    """One switch: its P4Runtime client, Thrift registers, and how packets go in and out."""

    name = ""

    def __init__(self, grpc_addr: str, thrift_port: int, p4info: P4Info) -> None:
        self.p4info = p4info
        self.client = P4RuntimeClient(grpc_addr, 1, election_id=(1, 0), p4info=p4info)
        self.registers = ThriftRegisters("127.0.0.1", thrift_port, p4info=p4info)
        self.record = Record()
        #: acknowledge digest lists (as the controller does)
        self.ack = True

    def _event(self) -> None:
        self.record.last_event = time.monotonic()

    async def setup(self, slots: dict[str, int]) -> None:
        async def on_digest(d: DigestList) -> None:
            for item in d.data:
                self.record.digests.append((d.digest, dict(item)))
            self.record.digest_lists.append(len(d.data))
            self._event()
            if self.ack:
                await self.client.ack_digest(d)

        def on_packet_in(p: PacketIn) -> None:
            self.record.packet_ins.append((dict(p.metadata), p.payload.hex()))
            self._event()

        self.client.on_digest(on_digest, auto_ack=False)
        self.client.on_packet_in(on_packet_in)
        await self.client.connect()
        await self.client.set_pipeline(PipelineConfig.bmv2(self.p4info, BMV2_JSON))
        for digest in ("new_flow_digest_t", "flow_event_digest_t"):
            await self.client.configure_digest(digest, max_timeout_ns=0, max_list_size=1,
                                               ack_timeout_ns=0)  # fmt: skip
        (await self.client.write([insert(e) for e in PORT_VRF + ENTRIES])).raise_on_error()
        await self.registers.write_many(overflow_cells(slots))

    async def step(self, step: Step) -> None:
        if isinstance(step, Send):
            await self.send(step.port, step.data)
        elif isinstance(step, Out):
            await self.client.send_packet_out(PacketOut(step.data, {
                "egress_port": step.egress_port, "ingress_port": step.ingress_port,
                "mode": step.mode}))  # fmt: skip
        elif isinstance(step, MissPolicy):
            entry = TableEntry("FlowIngress.miss_policy", {}, step.action, {},
                               is_default_action=True)  # fmt: skip
            (await self.client.write([modify(entry)])).raise_on_error()
        elif isinstance(step, DigestConfig):
            config = DigestEntry("new_flow_digest_t", step.max_timeout_ns, step.max_list_size,
                                 step.ack_timeout_ns)  # fmt: skip
            (await self.client.write([modify(config)])).raise_on_error()
            self.ack = step.ack
        else:
            await asyncio.sleep(step.seconds)

    async def send(self, port: int, data: bytes) -> None:
        raise NotImplementedError

    def collect_outputs(self) -> None:
        """Move what left the ports since the last call into the record."""

    async def run_case(self, steps: list[Step]) -> dict[str, Any]:
        self.record = Record(last_event=time.monotonic())
        start = time.monotonic()
        for step in steps:
            try:
                await self.step(step)
            except Exception as exc:  # recorded: a target refusing a step is a difference
                self.record.errors.append(f"{type(exc).__name__}: {exc}")
        while True:
            await asyncio.sleep(0.02)
            self.collect_outputs()
            now = time.monotonic()
            if now - start >= MAX_S:
                break
            if now - start >= MIN_S and now - self.record.last_event >= QUIET_S:
                break
        return self.record.as_json()

    async def state(self, slots: dict[str, int], flow_entries: int) -> dict[str, Any]:
        counters = {}
        async for e in self.client.read_table_entries(FLOW_TABLE, counter_data=True):
            cd = e.counter_data
            counters[json.dumps(e.match, sort_keys=True)] = (
                (cd.packet_count, cd.byte_count) if cd else None
            )
        overflow = {}
        for name, s in slots.items():
            async for c in self.client.read(CounterEntry("FlowIngress.overflow_counter", s)):
                overflow[name] = (c.data.packet_count, c.data.byte_count) if c.data else None
        ids = [int(e.params["flow_id"]) for e in ENTRIES]
        ids += [flow_entries + s for s in slots.values()]
        tcp_state = {str(i): await self.registers.read("FlowIngress.flow_tcp_state", i)
                     for i in ids}  # fmt: skip
        return {"direct_counters": counters, "overflow_counters": overflow,
                "tcp_state": tcp_state}  # fmt: skip

    async def close(self) -> None:
        await self.registers.close()
        await self.client.close()


class VethTarget(Target):
    """A switch on veths: the driver sends on and listens to the other ends ``<prefix>N``."""

    def __init__(self, grpc_addr: str, thrift_port: int, p4info: P4Info,
                 ifnames: dict[int, str]) -> None:  # fmt: skip
        super().__init__(grpc_addr, thrift_port, p4info)
        self.socks = {}
        for port, ifname in ifnames.items():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((ifname, 0))
            s.settimeout(0.1)
            self.socks[port] = s
        self._lock = threading.Lock()
        self._pending: list[tuple[int, bytes]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._rx, args=(p,), daemon=True)
                         for p in self.socks]  # fmt: skip
        for t in self._threads:
            t.start()

    def _rx(self, port: int) -> None:
        sock = self.socks[port]
        while not self._stop.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            if addr[2] == PACKET_OUTGOING:  # our own send on this interface
                continue
            with self._lock:
                self._pending.append((port, data))

    async def send(self, port: int, data: bytes) -> None:
        self.socks[port].send(data)

    def collect_outputs(self) -> None:
        with self._lock:
            got, self._pending = self._pending, []
        if got:
            self.record.outputs.extend((p, d.hex()) for p, d in got)
            self._event()

    async def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        for s in self.socks.values():
            s.close()
        await super().close()


class Bmv2(VethTarget):
    """simple_switch_grpc, attached to ``swN`` (started by the test); the driver holds ``ptfN``."""

    name = "bmv2"


class Software(VethTarget):
    """The software switch in this process, attached to ``sw1N``; the driver holds ``ptf1N``."""

    name = "software"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    p4info = P4Info.load(P4INFO)
    overflow_entries = p4info.registers["FlowIngress.ovf_valid"].size
    flow_entries = p4info.tables[FLOW_TABLE].size
    slots = overflow_slots(overflow_entries)
    switch = SoftwareSwitch(
        device_id=1, grpc_address="127.0.0.1:0", thrift_address="127.0.0.1:0",
        cpu_port=CPU_PORT, ports={p: f"sw{SOFTWARE_PORT_OFFSET + p}" for p in PORTS},
    )  # fmt: skip
    await switch.start()
    assert switch.thrift_port is not None
    bmv2_thrift = int(args.bmv2_thrift.rpartition(":")[2])
    targets: list[Target] = [
        Bmv2(args.bmv2_grpc, bmv2_thrift, p4info, {p: f"ptf{p}" for p in PORTS}),
        Software(switch.grpc_target, switch.thrift_port, p4info,
                 {p: f"ptf{SOFTWARE_PORT_OFFSET + p}" for p in PORTS}),
    ]  # fmt: skip
    report: dict[str, Any] = {"slots": slots, "cases": [], "state": {}}
    try:
        for t in targets:
            await t.setup(slots)
        for name, steps in cases():
            row: dict[str, Any] = {"case": name}
            for t in targets:
                row[t.name] = await t.run_case(steps)
            report["cases"].append(row)
        for t in targets:
            report["state"][t.name] = await t.state(slots, flow_entries)
    finally:
        for t in targets:
            await t.close()
        await switch.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bmv2-grpc", default="127.0.0.1:9559")
    parser.add_argument("--bmv2-thrift", default="127.0.0.1:9090")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.exit(main())
