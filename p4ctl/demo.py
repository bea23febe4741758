"""``p4ctl demo``: the main job end to end, on an embedded software switch.

Starts the project's software switch (the committed BMv2 JSON behind a real
P4Runtime server on loopback), runs the controller against it with the
example configuration, and sends traffic through the switch's ports:

- a TCP session from 10.0.0.1 behind port 1 to 198.51.100.7 behind port 2,
  source-NATed to 203.0.113.1 by policy (the reply is translated back);
- a UDP DNS query from port 1 and its answer (plain forwarding);
- an ICMP echo and its reply.

For each flow the first packet is a miss: the switch raises a digest, the
controller applies policy and installs the forward and reverse entries, and
later packets of both directions are forwarded (and translated) by the
switch itself. The demo checks every packet that comes out, prints the flow
table and the controller's metrics, and exits non-zero if anything was not
as expected.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from p4ctl.config import load_config
from p4ctl.config.model import RegisterBackend
from p4ctl.controller import DeviceController
from p4ctl.flows.key import FlowKey
from p4ctl.flows.state import FlowState
from p4ctl.metrics import Metrics
from p4ctl.switch.device import SoftwareSwitch

log = logging.getLogger(__name__)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "p4ctl.yaml"
MAC_1 = "02:00:00:00:00:01"
MAC_2 = "02:00:00:00:00:02"


class DemoFailure(Exception):
    """Something the demo expected did not happen."""


def _frame(src_mac: str, dst_mac: str, l3: Packet) -> bytes:
    return bytes(Ether(src=src_mac, dst=dst_mac) / l3)


def _checksums_ok(frame: bytes) -> bool:
    """True when the IPv4 and L4 checksums are what scapy computes afresh."""
    pkt = Ether(frame)
    ip = pkt[IP]
    fresh = Ether(bytes(pkt))
    del fresh[IP].chksum
    for layer in (TCP, UDP, ICMP):
        if layer in fresh:
            del fresh[layer].chksum
    fresh = Ether(bytes(fresh))
    if ip.chksum != fresh[IP].chksum:
        return False
    return all(pkt[layer].chksum == fresh[layer].chksum
               for layer in (TCP, UDP, ICMP) if layer in pkt)


class Demo:
    def __init__(self, switch: SoftwareSwitch, controller: DeviceController) -> None:
        self.switch = switch
        self.controller = controller
        self.checks = 0

    async def wait_installed(self, key: FlowKey, timeout: float = 10.0) -> None:
        store = self.controller.store
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = store.get(key)
            if entry is not None and entry.state is FlowState.ADDED and (
                entry.partner is None or entry.partner.state is FlowState.ADDED
            ):
                return
            if entry is not None and entry.state is FlowState.FAILED:
                raise DemoFailure(f"flow {key} failed: {entry.reason}")
            await asyncio.sleep(0.01)
        raise DemoFailure(f"flow {key} was not installed within {timeout} s")

    async def send(self, port: int, frame: bytes, out_port: int | None) -> bytes | None:
        """Inject ``frame``; expect it on ``out_port`` (None: expect nothing)."""
        for p in (1, 2):
            self.switch.drain(p)
        await self.switch.inject(port, frame)
        if out_port is None:
            await asyncio.sleep(0.05)
            leaked = self.switch.drain(1) + self.switch.drain(2)
            if leaked:
                raise DemoFailure(f"a packet of an unknown flow was forwarded: {leaked[0].hex()}")
            return None
        try:
            out = await self.switch.expect(out_port, timeout=5.0)
        except TimeoutError:
            raise DemoFailure(f"nothing came out of port {out_port}") from None
        if not _checksums_ok(out):
            raise DemoFailure(f"bad checksum on port {out_port}: {Ether(out).summary()}")
        self.checks += 1
        return out

    async def flow(self, name: str, port: int, first: bytes, key: FlowKey, out_port: int,
                   reply: bytes, reply_port: int) -> tuple[Packet, Packet]:
        print(f"\n== {name}")
        await self.send(port, first, None)
        print(f"   first packet: miss, digest; controller installs {key} and its reverse")
        await self.wait_installed(key)
        forward = Ether(await self.send(port, first, out_port))
        print(f"   port {port} -> port {out_port}: {forward[IP].summary()}")
        back = Ether(await self.send(reply_port, reply, port))
        print(f"   reply port {reply_port} -> port {port}: {back[IP].summary()}")
        return forward, back

    async def run(self) -> None:
        # TCP, source NAT by policy (rule outbound-nat)
        syn = _frame(MAC_1, MAC_2, IP(src="10.0.0.1", dst="198.51.100.7")
                     / TCP(sport=40000, dport=443, flags="S"))
        synack = _frame(MAC_2, MAC_1, IP(src="198.51.100.7", dst="203.0.113.1")
                        / TCP(sport=443, dport=40000, flags="SA"))
        key = FlowKey.parse("0,10.0.0.1,198.51.100.7,tcp,40000,443")
        fwd, back = await self.flow("TCP with source NAT", 1, syn, key, 2, synack, 2)
        if fwd[IP].src != "203.0.113.1" or back[IP].dst != "10.0.0.1":
            raise DemoFailure("NAT did not translate both directions")
        print("   source NAT 10.0.0.1 <-> 203.0.113.1 applied both ways, checksums valid")

        # UDP DNS, plain forwarding
        query = _frame(MAC_1, MAC_2, IP(src="10.0.0.5", dst="192.0.2.53")
                       / UDP(sport=53000, dport=53) / b"\x12\x34query")
        answer = _frame(MAC_2, MAC_1, IP(src="192.0.2.53", dst="10.0.0.5")
                        / UDP(sport=53, dport=53000) / b"\x12\x34answer")
        await self.flow("UDP (DNS, ages in 5 s)", 1, query,
                        FlowKey.parse("0,10.0.0.5,192.0.2.53,udp,53000,53"), 2, answer, 2)

        # ICMP echo: the identifier stands in for both ports
        ping = _frame(MAC_1, MAC_2, IP(src="10.0.0.6", dst="192.0.2.9") / ICMP(id=77, seq=1))
        pong = _frame(MAC_2, MAC_1, IP(src="192.0.2.9", dst="10.0.0.6")
                      / ICMP(type=0, id=77, seq=1))
        await self.flow("ICMP echo", 1, ping,
                        FlowKey.parse("0,10.0.0.6,192.0.2.9,icmp,77,77"), 2, pong, 2)


async def run_demo(config_path: Path | None = None) -> int:
    config = load_config(config_path or EXAMPLE)
    switch = SoftwareSwitch(device_id=config.devices[0].device_id, grpc_address="127.0.0.1:0")
    await switch.start()
    device = dataclasses.replace(config.devices[0], address=switch.grpc_target,
                                 registers=RegisterBackend.P4RUNTIME)
    config = dataclasses.replace(config, devices=(device,))
    metrics = Metrics()
    controller = DeviceController(config, device, metrics)
    print(f"software switch on {switch.grpc_target}; controller connecting")
    try:
        await controller.start()
        demo = Demo(switch, controller)
        await demo.run()
        print("\n== flow table (controller's authoritative copy)")
        for line in controller.flow_table():
            print("  ", line)
        print("\n== metrics (excerpt)")
        for line in metrics.render().splitlines():
            if not line.startswith("#") and not line.endswith(" 0"):
                print("  ", line)
        print(f"\ndemo passed: {demo.checks} packets forwarded and checked")
        return 0
    except DemoFailure as exc:
        print(f"\ndemo FAILED: {exc}")
        return 1
    finally:
        await controller.stop()
        await switch.stop()
