"""The flow agent end to end: real gRPC, the software switch running the committed pipeline.

Packets go into the switch's ports; the switch raises digests; the
controller installs pairs; the tests look at what comes out of the ports and
at what the switch holds (read back over P4Runtime).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from p4.v1 import p4runtime_pb2
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert, fragment
from scapy.layers.l2 import Ether

from p4ctl.agent import parse_flow_key
from p4ctl.config import parse_config
from p4ctl.controller import DeviceController
from p4ctl.flows.batch import FlowOp, OpKind, execute
from p4ctl.flows.entry import ActionKind
from p4ctl.flows.key import FlowKey
from p4ctl.flows.state import FlowState
from p4ctl.flows.store import NO_SLOT
from p4ctl.metrics import Metrics
from p4ctl.p4rt.entities import TableEntry, Update, UpdateType
from p4ctl.p4rt.messages import DigestList, PacketIn
from p4ctl.pipeline import BUNDLED
from p4ctl.switch.device import SoftwareSwitch

CONFIG = """
devices:
  - name: s1
    address: 127.0.0.1:1
    device_id: 1
    election_id: {election}
    port_vrf: {{1: 0, 2: 0, 3: 0}}
flows:
  hold_mode: {hold}
  max_flows_per_port: {per_port}
  max_new_flows_per_second: {rate}
  digest: {{max_list_size: 64, max_timeout: 1ms, ack_timeout: {ack}}}
aging:
  default_timeout: 180s
  overrides:
    - {{protocol: udp, port: 53, timeout: 5s}}
policy:
  default: {{action: drop}}
  vrfs:
    0:
      rules:
        - {{name: blocked, dst: 192.0.2.66, action: drop}}
        - name: snat
          src: 10.0.0.0/24
          dst: 198.51.100.0/24
          in_ports: [1]
          action: snat
          port: 2
          to_address: 203.0.113.1
        - {{name: fwd12, in_ports: [1], action: forward, port: 2}}
        - {{name: fwd21, in_ports: [2], action: forward, port: 1}}
"""


@dataclasses.dataclass
class Rig:
    switch: SoftwareSwitch
    controller: DeviceController

    async def send(self, port: int, frame: bytes) -> None:
        await self.switch.inject(port, frame)

    async def expect(self, port: int) -> Ether:
        return Ether(await self.switch.expect(port, timeout=5.0))

    def nothing_on(self, *ports: int) -> bool:
        return not any(self.switch.drain(p) for p in ports)

    async def installed(self, key: FlowKey, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        store = self.controller.store
        while time.monotonic() < deadline:
            e = store.get(key)
            if e is not None and e.state is FlowState.ADDED and (
                e.partner is None or e.partner.state is FlowState.ADDED
            ):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{key} not installed: {store.get(key)!r}")

    async def failed(self, key: FlowKey, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        store = self.controller.store
        while time.monotonic() < deadline:
            e = store.get(key)
            if e is not None and e.state is FlowState.FAILED:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{key} did not fail: {store.get(key)!r}")

    async def switch_entries(self) -> list[p4runtime_pb2.TableEntry]:
        mapping = self.controller.mapping
        out = []
        async with grpc.aio.insecure_channel(self.switch.grpc_target) as channel:
            from p4.v1 import p4runtime_pb2_grpc

            stub = p4runtime_pb2_grpc.P4RuntimeStub(channel)
            req = p4runtime_pb2.ReadRequest(device_id=1)
            req.entities.add().table_entry.table_id = mapping.flow_table_id
            async for resp in stub.Read(req):
                out.extend(e.table_entry for e in resp.entities)
        return out


async def make_rig(
    rate: int = 0, ack: str = "1s", hold: bool = False, per_port: int = 0, election: int = 1
) -> tuple[SoftwareSwitch, DeviceController]:
    switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0")
    await switch.start()
    text = CONFIG.format(rate=rate, ack=ack, hold=str(hold).lower(), per_port=per_port,
                         election=election)
    config = parse_config(text, str(Path(BUNDLED) / "test.yaml"))
    device = dataclasses.replace(config.devices[0], address=switch.grpc_target)
    config = dataclasses.replace(config, devices=(device,))
    controller = DeviceController(config, device, Metrics())
    await controller.start()
    return switch, controller


@contextlib.asynccontextmanager
async def rigged(**options: Any) -> AsyncIterator[Rig]:
    """A rig with :func:`make_rig`'s options, stopped when the test is done."""
    switch, controller = await make_rig(**options)
    try:
        yield Rig(switch, controller)
    finally:
        await controller.stop()
        await switch.stop()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with rigged() as rig:
        yield rig


def new_flow_message(key: FlowKey, in_port: int = 1) -> dict[str, int]:
    """The decoded new-flow digest message the switch sends for ``key``'s first packet."""
    fields = dict(zip(("vrf", "src_addr", "dst_addr", "proto", "src_port", "dst_port"),
                      key.values(), strict=True))
    return {**fields, "ingress_port": in_port, "bucket_hash": key.bucket_hash()}


def tcp(src: str, dst: str, sport: int, dport: int, flags: str = "S") -> bytes:
    return bytes(Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags))


def udp(src: str, dst: str, sport: int, dport: int) -> bytes:
    return bytes(Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / b"data")


def checksums_valid(pkt: Ether) -> bool:
    again = Ether(bytes(pkt))
    for layer in (IP, TCP, UDP, ICMP):
        if layer in again:
            del again[layer].chksum
    again = Ether(bytes(again))
    return all(pkt[layer].chksum == again[layer].chksum
               for layer in (IP, TCP, UDP, ICMP) if layer in pkt)


@pytest.mark.parametrize(
    ("first", "reply", "key"),
    [
        (tcp("10.1.0.1", "10.2.0.1", 1234, 80), tcp("10.2.0.1", "10.1.0.1", 80, 1234, "SA"),
         "0,10.1.0.1,10.2.0.1,tcp,1234,80"),
        (udp("10.1.0.1", "10.2.0.1", 5000, 53), udp("10.2.0.1", "10.1.0.1", 53, 5000),
         "0,10.1.0.1,10.2.0.1,udp,5000,53"),
        (bytes(Ether() / IP(src="10.1.0.1", dst="10.2.0.1") / ICMP(id=9, seq=1)),
         bytes(Ether() / IP(src="10.2.0.1", dst="10.1.0.1") / ICMP(type=0, id=9, seq=1)),
         "0,10.1.0.1,10.2.0.1,icmp,9,9"),
    ],
    ids=["tcp", "udp", "icmp"],
)
async def test_first_packet_installs_pair_and_both_directions_forward(
    rig: Rig, first: bytes, reply: bytes, key: str
) -> None:
    flow = FlowKey.parse(key)
    await rig.send(1, first)
    await rig.installed(flow)
    assert rig.nothing_on(1, 2)  # the first packet was dropped (no hold mode)
    entries = await rig.switch_entries()
    keys = {rig.controller.mapping.parse_table_entry(e)[0] for e in entries}
    assert keys == {flow, flow.reverse()}
    await rig.send(1, first)
    assert bytes(await rig.expect(2)) == first
    await rig.send(2, reply)
    assert bytes(await rig.expect(1)) == reply
    fwd = rig.controller.store.get(flow)
    assert fwd is not None and fwd.partner is not None
    assert fwd.partner.flow_key == flow.reverse()


async def test_udp_53_gets_its_short_idle_timeout(rig: Rig) -> None:
    flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,5000,53")
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 5000, 53))
    await rig.installed(flow)
    ttls = {rig.controller.mapping.parse_table_entry(e)[0]: e.idle_timeout_ns
            for e in await rig.switch_entries()}
    assert ttls[flow] == 5_000_000_000
    assert ttls[flow.reverse()] == 5_000_000_000


async def test_nat_translates_both_directions_on_the_wire(rig: Rig) -> None:
    flow = FlowKey.parse("0,10.0.0.1,198.51.100.7,tcp,40000,443")
    first = tcp("10.0.0.1", "198.51.100.7", 40000, 443)
    await rig.send(1, first)
    await rig.installed(flow)
    await rig.send(1, first)
    out = await rig.expect(2)
    assert (out[IP].src, out[IP].dst, out[TCP].sport) == ("203.0.113.1", "198.51.100.7", 40000)
    assert checksums_valid(out)
    await rig.send(2, tcp("198.51.100.7", "203.0.113.1", 443, 40000, "SA"))
    back = await rig.expect(1)
    assert (back[IP].src, back[IP].dst, back[TCP].dport) == ("198.51.100.7", "10.0.0.1", 40000)
    assert checksums_valid(back)


async def test_drop_policy_installs_a_drop_entry(rig: Rig) -> None:
    flow = FlowKey.parse("0,10.1.0.1,192.0.2.66,udp,7,7")
    frame = udp("10.1.0.1", "192.0.2.66", 7, 7)
    await rig.send(1, frame)
    await rig.installed(flow)
    entry = rig.controller.store.get(flow)
    assert entry is not None and entry.action.kind is ActionKind.DROP
    actions = {rig.controller.mapping.parse_table_entry(e)[2].kind
               for e in await rig.switch_entries()}
    assert actions == {ActionKind.DROP}
    await rig.send(1, frame)
    await asyncio.sleep(0.1)
    assert rig.nothing_on(1, 2)


def colliding_keys(sizes, count: int) -> list[FlowKey]:
    """``count`` UDP keys from port 1 whose main bucket is the same."""
    buckets: dict[int, list[FlowKey]] = {}
    port = 1024
    while True:
        key = FlowKey(0, 0x0A010001, 0x0A020001, 17, port, 9)
        group = buckets.setdefault(key.bucket_hash() % sizes.main_buckets, [])
        group.append(key)
        if len(group) == count:
            return group
        port += 1


async def test_full_bucket_goes_to_overflow_and_still_forwards(rig: Rig) -> None:
    store = rig.controller.store
    keys = colliding_keys(store.sizes, store.sizes.bucket_ways + 1)
    for key in keys:
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", key.src_port, 9))
        await rig.installed(key)
    last = store.get(keys[-1])
    assert last is not None and store.is_overflow(last)
    assert all(not store.is_overflow(store.get(k)) for k in keys[:-1])
    # only the main-table entries are table entries; the overflow one is in registers
    on_switch = {rig.controller.mapping.parse_table_entry(e)[0]
                 for e in await rig.switch_entries()}
    assert keys[-1] not in on_switch and keys[0] in on_switch
    frame = udp("10.1.0.1", "10.2.0.1", keys[-1].src_port, 9)
    await rig.send(1, frame)
    assert bytes(await rig.expect(2)) == frame
    assert rig.controller.agent.counters.hash_mismatches == 0


async def test_repeated_digest_for_a_pending_flow_creates_no_second_flow() -> None:
    # The switch forgets an unacknowledged digest after ack_timeout (100 ms
    # here) and reports the flow again while its writes are still delayed.
    async with rigged(ack="100ms") as rig:
        switch, controller = rig.switch, rig.controller
        switch.faults.delay(1.0, ["Write"])
        flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,tcp,1111,22")
        for _ in range(8):
            await rig.send(1, tcp("10.1.0.1", "10.2.0.1", 1111, 22))
            await asyncio.sleep(0.1)
        switch.faults.clear()
        await rig.installed(flow)
        await asyncio.sleep(0.3)
        assert controller.agent.counters.duplicates >= 1
        assert len(controller.store) == 2
        assert len(await rig.switch_entries()) == 2


async def test_rejected_write_ends_failed_with_the_switch_reason(rig: Rig) -> None:
    rig.switch.faults.reject_writes(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "no room")
    flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,tcp,2222,80")
    await rig.send(1, tcp("10.1.0.1", "10.2.0.1", 2222, 80))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entry = rig.controller.store.get(flow)
        if entry is not None and entry.state is FlowState.FAILED:
            break
        await asyncio.sleep(0.01)
    entry = rig.controller.store.get(flow)
    assert entry is not None and entry.state is FlowState.FAILED
    assert entry.partner is not None and entry.partner.state is FlowState.FAILED
    assert "RESOURCE_EXHAUSTED" in (entry.partner.reason or "")
    assert "no room" in (entry.partner.reason or "")
    assert rig.controller.agent.counters.failed == 1
    assert await rig.switch_entries() == []


async def test_burst_above_the_rate_limit_is_counted_not_crashed() -> None:
    async with rigged(rate=5) as rig:
        switch, controller = rig.switch, rig.controller
        for port in range(100):
            await switch.inject(1, udp("10.1.0.1", "10.2.0.1", 20000 + port, 7))
        counters = controller.agent.counters
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            counters.installed + counters.rate_limited < 100
        ):
            await asyncio.sleep(0.05)
        assert counters.rate_limited > 0
        assert counters.installed + counters.rate_limited == 100
        assert counters.installed <= 10  # about one second's worth at 5/s
        # still responsive: a new flow is installed once the bucket refills
        await asyncio.sleep(1.0)
        flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,30000,7")
        await switch.inject(1, udp("10.1.0.1", "10.2.0.1", 30000, 7))
        await rig.installed(flow)


async def test_hold_mode_reinjects_the_first_packet_after_install() -> None:
    async with rigged(hold=True) as rig:
        controller = rig.controller
        first = tcp("10.1.0.1", "10.2.0.1", 3333, 80)
        await rig.send(1, first)
        # the one and only packet comes out once the flow is in: nothing was lost
        assert bytes(await rig.expect(2)) == first
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,tcp,3333,80"))
        counters = controller.agent.counters
        assert (counters.held, counters.reinjected, counters.hold_dropped) == (1, 1, 0)


async def test_hold_queue_is_bounded_and_overflow_counted() -> None:
    async with rigged(hold=True) as rig:
        switch, controller = rig.switch, rig.controller
        switch.faults.delay(0.5, ["Write"])  # keep the flow pending while packets arrive
        frames = [udp("10.1.0.1", "10.2.0.1", 4444, 9) for _ in range(6)]
        for f in frames:
            await rig.send(1, f)
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,4444,9"))
        await asyncio.sleep(0.2)
        counters = controller.agent.counters
        hold_queue = controller.config.flows.hold_queue
        assert counters.held == hold_queue
        assert counters.hold_dropped == len(frames) - hold_queue
        assert len(switch.drain(2)) == hold_queue


async def test_flows_per_port_limit_is_counted() -> None:
    async with rigged(per_port=2) as rig:
        controller = rig.controller
        for sport in (1, 2, 3, 4):
            await rig.send(1, udp("10.1.0.1", "10.2.0.1", sport, 9))
            await asyncio.sleep(0.05)
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,2,9"))
        counters = controller.agent.counters
        deadline = time.monotonic() + 5
        while counters.port_limited < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert counters.installed == 2 and counters.port_limited == 2
        assert FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,3,9") not in controller.store


async def test_malformed_digest_messages_are_counted_and_the_rest_installed(rig: Rig) -> None:
    """A bad message of a digest list is counted and skipped; its neighbours still go in."""
    good = FlowKey.parse("0,10.1.0.7,10.2.0.7,tcp,4000,80")
    message = new_flow_message(good)
    digest = DigestList("new_flow_digest_t", 1, 77, [
        {**message, "src_port": 1 << 16},          # does not fit its field
        {k: v for k, v in message.items() if k != "proto"},  # a member missing
        {**message, "vrf": "0"},                   # not an integer
        {**message, "bucket_hash": 1},             # a hash the controller disagrees with
    ])
    agent = rig.controller.agent
    await agent.on_new_flows(digest)
    assert agent.counters.malformed == 3
    assert agent.counters.hash_mismatches == 1
    await rig.installed(good)  # the flow itself is fine: installed under its own hash
    assert {rig.controller.mapping.parse_table_entry(e)[0]
            for e in await rig.switch_entries()} == {good, good.reverse()}


async def test_refused_flows_leave_their_slots_to_later_flows(rig: Rig) -> None:
    """A refused pair leaves nothing on the switch, so its bucket serves the next flows."""
    store = rig.controller.store
    ways = store.sizes.bucket_ways
    keys = colliding_keys(store.sizes, ways + 1)
    rig.switch.faults.reject_writes(ways, grpc.StatusCode.RESOURCE_EXHAUSTED, "no room")
    for key in keys[:ways]:  # each pair's first write (its reverse entry) is refused
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", key.src_port, 9))
        await rig.failed(key)
    refused = [store.get(k) for k in keys[:ways]]
    assert all(e is not None and e.flow_id == NO_SLOT for e in refused)
    assert all(e.partner is not None and e.partner.flow_id == NO_SLOT for e in refused)
    last = keys[-1]
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", last.src_port, 9))
    await rig.installed(last)
    assert not store.is_overflow(store.get(last))  # its main bucket had room again
    assert rig.controller.agent.counters.table_full == 0


async def test_flows_refused_by_a_port_limit_do_not_spend_the_new_flow_rate() -> None:
    async with rigged(rate=2, per_port=1) as rig:
        controller = rig.controller
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", 5001, 9))
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", 5002, 9))  # over port 1's limit
        await rig.send(2, udp("10.2.0.1", "10.1.0.1", 6001, 9))  # the second new flow
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,5001,9"))
        await rig.installed(FlowKey.parse("0,10.2.0.1,10.1.0.1,udp,6001,9"))
        counters = controller.agent.counters
        assert (counters.port_limited, counters.rate_limited) == (1, 0)


async def test_packets_held_for_a_refused_flow_are_counted_as_dropped() -> None:
    async with rigged(hold=True) as rig:
        switch, controller = rig.switch, rig.controller
        switch.faults.delay(0.3, ["Write"])  # both packets wait for the (refused) write
        switch.faults.reject_writes(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "no room")
        for _ in range(2):
            await rig.send(1, udp("10.1.0.1", "10.2.0.1", 7001, 9))
        await rig.failed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7001,9"))
        counters = controller.agent.counters
        assert (counters.held, counters.reinjected, counters.hold_dropped) == (2, 0, 2)
        assert rig.nothing_on(2)


async def test_packets_held_longer_than_the_hold_timeout_are_dropped_not_sent() -> None:
    async with rigged(hold=True) as rig:
        switch, agent = rig.switch, rig.controller.agent
        agent.limits = dataclasses.replace(agent.limits, hold_timeout_s=0.2)
        switch.faults.delay(0.5, ["Write"])  # the flow takes longer than that
        frame = udp("10.1.0.1", "10.2.0.1", 7201, 9)
        await rig.send(1, frame)
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7201,9"))
        await asyncio.sleep(0.1)
        assert rig.nothing_on(2)
        counters = agent.counters
        assert (counters.held, counters.reinjected, counters.hold_dropped) == (1, 0, 1)


async def test_a_flow_refused_by_the_rate_then_admitted_counts_once_under_its_rule() -> None:
    async with rigged(rate=1) as rig:
        agent = rig.controller.agent
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", 6001, 9))
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", 6002, 9))  # over the rate
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,6001,9"))
        await wait_until(lambda: agent.counters.rate_limited == 1)
        await asyncio.sleep(1.1)  # a token again
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", 6002, 9))
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,6002,9"))
        assert agent.decisions_by_rule == {"fwd12": 2}


async def test_packets_held_for_a_flow_over_the_rate_go_with_its_refusal() -> None:
    """Its next report may be admitted seconds later: the packet would then be stale."""
    async with rigged(hold=True, rate=1) as rig:
        agent = rig.controller.agent
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", 7301, 9))  # the second's token
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7301,9"))
        await rig.send(1, udp("10.1.0.1", "10.2.0.1", 7302, 9))  # over the rate
        deadline = time.monotonic() + 5
        while agent.counters.rate_limited < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7302,9").packed() not in agent._held
        counters = agent.counters
        assert (counters.rate_limited, counters.held, counters.hold_dropped) == (1, 2, 1)


async def test_a_hold_queue_pushed_out_counts_each_of_its_packets() -> None:
    async with rigged(hold=True) as rig:
        switch, controller = rig.switch, rig.controller
        agent = controller.agent
        agent.limits = dataclasses.replace(agent.limits, max_held_flows=1)
        switch.faults.delay(0.5, ["Write"])
        first = udp("10.1.0.1", "10.2.0.1", 7101, 9)
        for _ in range(agent.limits.hold_queue):
            await rig.send(1, first)
        second = udp("10.1.0.1", "10.2.0.1", 7102, 9)
        await rig.send(1, second)  # one flow's packets may wait: the first's are dropped
        await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7102,9"))
        assert bytes(await rig.expect(2)) == second
        counters = agent.counters
        assert counters.held == agent.limits.hold_queue + 1
        assert (counters.reinjected, counters.hold_dropped) == (1, agent.limits.hold_queue)


async def test_a_retry_reported_before_the_refused_list_resumes_keeps_its_packets() -> None:
    """A flow's first write is refused and the switch reports it again at once.

    The retry is admitted and a packet is held for it before the first
    list's handler resumes; that handler's clean-up must leave the retry's
    packet alone, and count the refusal under the switch's reason.
    """
    async with rigged(hold=True) as rig:
        switch, controller = rig.switch, rig.controller
        agent, store = controller.agent, controller.store
        flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7201,9")
        frame = udp("10.1.0.1", "10.2.0.1", 7201, 9)
        message = new_flow_message(flow)
        submit_all = agent._pipeline.submit_all
        retries: list[asyncio.Task[None]] = []

        async def refused_then_reported_again(batches):
            results = await submit_all(batches)
            if not retries:  # the first list's pair was refused; its handler has not resumed
                retries.append(asyncio.create_task(
                    agent.on_new_flows(DigestList("new_flow_digest_t", 1, 2, [message]))))
                while getattr(store.get(flow), "state", None) is not FlowState.PENDING_ADD:
                    await asyncio.sleep(0)
                await agent.on_packet_in(PacketIn(frame, {"ingress_port": 1}))
            return results

        agent._pipeline.submit_all = refused_then_reported_again
        switch.faults.reject_writes(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "no room")
        await agent.on_new_flows(DigestList("new_flow_digest_t", 1, 1, [message]))
        await retries[0]
        assert store.get(flow).state is FlowState.ADDED
        assert bytes(await rig.expect(2)) == frame
        counters = agent.counters
        assert (counters.held, counters.reinjected, counters.hold_dropped) == (1, 1, 0)
        assert counters.failures_by_reason == {"RESOURCE_EXHAUSTED": 1}


async def test_a_flow_whose_write_answer_was_lost_installs_when_reported_again(
        rig: Rig) -> None:
    """The switch applied the reverse entry but the answer was lost: the retry's
    INSERT meets ALREADY_EXISTS, and the entry is made the store's (MODIFY)."""
    flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7501,9")
    rig.switch.faults.lose_answers(1)
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 7501, 9))
    await rig.failed(flow)
    assert rig.controller.agent.counters.failures_by_reason == {"UNAVAILABLE": 1}
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 7501, 9))  # reported again
    await rig.installed(flow)
    entry = rig.controller.store.get(flow)
    on_switch = {rig.controller.mapping.parse_table_entry(e)[:2]
                 for e in await rig.switch_entries()}
    assert on_switch == {(flow, entry.flow_id), (flow.reverse(), entry.partner.flow_id)}


async def test_metrics_name_the_device_and_events_are_counters(rig: Rig) -> None:
    flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7301,9")
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 7301, 9))
    await rig.installed(flow)
    controller = rig.controller
    text = controller.metrics.render()
    assert "# TYPE p4ctl_agent_events_total counter\n" in text
    assert "# TYPE p4ctl_flow_failures_total counter\n" in text
    assert 'p4ctl_agent_events_total{device="s1",event="installed"} 1\n' in text
    assert 'p4ctl_flow_entries{device="s1",state="ADDED"} 2\n' in text
    # the first status line counts the flows installed since the start
    assert not controller.status_line().startswith("s1: 0.0 flows/s"), controller.status_line()
    # p4ctl run hands one registry to every device: each device's series are there
    second = dataclasses.replace(controller.device, name="s2")
    other = DeviceController(controller.config, second, controller.metrics)
    other.agent.counters.installed = 7
    text = controller.metrics.render()
    assert 'p4ctl_agent_events_total{device="s1",event="installed"} 1\n' in text
    assert 'p4ctl_agent_events_total{device="s2",event="installed"} 7\n' in text


async def test_operators_see_the_deciding_rule_the_switch_state_and_refusals(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    controller = rig.controller
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 7401, 9))
    await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7401,9"))
    text = controller.metrics.render()
    assert "# TYPE p4ctl_policy_decisions_total counter\n" in text
    assert 'p4ctl_policy_decisions_total{device="s1",rule="fwd12"} 1\n' in text
    assert 'p4ctl_switch_connected{device="s1"} 1\n' in text
    assert 'p4ctl_switch_primary{device="s1"} 1\n' in text
    # a flow the switch refuses is logged, with its reason
    rig.switch.faults.reject_writes(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "no room")
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 7402, 9))
    await rig.failed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,7402,9"))
    await asyncio.sleep(0.05)
    assert any("1 of 1 new flows not installed; the first, vrf 0 10.1.0.1:7402 -> "
               "10.2.0.1:9 proto 17: RESOURCE_EXHAUSTED: no room" in r.getMessage()
               for r in caplog.records)
    # the switch goes away: the status line and the gauges say so
    await rig.switch.stop()
    await wait_until(lambda: not controller.client.is_connected)
    assert controller.status_line().endswith(", DISCONNECTED from the switch")
    assert 'p4ctl_switch_connected{device="s1"} 0\n' in controller.metrics.render()


async def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def ipv4_frame(proto: int, l4: bytes, src: str = "10.1.0.1", dst: str = "10.2.0.1") -> bytes:
    """An Ethernet/IPv4 frame with ``l4`` as it is, however short (no padding)."""
    ip = IP(src=src, dst=dst, proto=proto, id=1)
    return bytes(Ether(type=0x0800)) + bytes(ip / l4)


@pytest.mark.parametrize("proto,l4", [
    (6, bytes(UDP(sport=1000, dport=80))),       # 8 bytes: less than a TCP header
    (17, bytes(UDP(sport=1001, dport=80))[:6]),  # less than a UDP header
    (1, bytes(ICMP(id=0x1234))[:6]),             # less than an echo's 8 bytes
    (6, bytes(TCP(sport=1002, dport=80))),
    (17, bytes(UDP(sport=1003, dport=80))),
    (1, bytes(ICMP(id=0x1235))),
])
async def test_the_key_of_a_held_packet_is_the_key_the_switch_reports(
    rig: Rig, proto: int, l4: bytes
) -> None:
    """Hold mode queues packets under this key: a different one is never released."""
    frame = ipv4_frame(proto, l4)
    await rig.send(1, frame)
    store = rig.controller.store
    deadline = time.monotonic() + 10
    while not any(e.forward for e in store) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    reported = {e.flow_key for e in store if e.forward}
    assert reported == {parse_flow_key(frame, 0)}


async def test_a_slot_freed_by_a_not_found_removal_starts_with_clear_tcp_state(rig: Rig) -> None:
    """The delete's answer was lost, or another controller removed the entry first."""
    controller = rig.controller
    flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,tcp,4321,80")
    await rig.send(1, tcp("10.1.0.1", "10.2.0.1", 4321, 80, "S"))
    await rig.installed(flow)
    forward = controller.store.get(flow)
    slot = forward.flow_id
    tcp_state = controller.mapping.registers["tcp_state"]
    await rig.send(1, tcp("10.1.0.1", "10.2.0.1", 4321, 80, "FA"))
    await rig.expect(2)
    assert await controller.registers.read(tcp_state, slot) != 0
    encoder = controller.mapping.encoder
    gone = encoder.update(p4runtime_pb2.Update.DELETE, encoder.key_entry(forward.key))
    (await controller.client.write([gone])).raise_on_error()
    controller.store.move(forward, FlowState.PENDING_REMOVE)
    result = await execute(controller.store, controller.provider,
                           [[FlowOp(OpKind.REMOVE, forward)]])
    assert result.results[0].code == "NOT_FOUND"
    assert controller.store.by_flow_id(slot) is None  # free for the next flow of its bucket
    assert await controller.registers.read(tcp_state, slot) == 0


async def test_nat_keeps_a_first_fragments_checksum_right(rig: Rig) -> None:
    """Its UDP checksum covers the whole datagram, of which the fragment carries a part."""
    payload = bytes(range(200)) * 3
    whole = IP(src="10.0.0.1", dst="198.51.100.7", id=77) / UDP(sport=5000, dport=53) / payload
    first = bytes(Ether() / fragment(whole, fragsize=200)[0])
    await rig.send(1, first)
    await rig.installed(FlowKey.parse("0,10.0.0.1,198.51.100.7,udp,5000,53"))
    await rig.send(1, first)
    out = await rig.expect(2)
    assert out[IP].src == "203.0.113.1" and checksums_valid(Ether(bytes(out)[:34]))
    translated = IP(bytes(IP(src="203.0.113.1", dst="198.51.100.7", id=77)
                          / UDP(sport=5000, dport=53) / payload))
    assert out[UDP].chksum == translated[UDP].chksum


async def test_nat_of_a_packet_with_ip_options_is_dropped_not_corrupted(rig: Rig) -> None:
    """Its TCP header is not parsed, so its checksum could not follow the new address."""
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="198.51.100.7",
                               options=[IPOption_Router_Alert()])
                  / TCP(sport=40001, dport=443, flags="S"))
    await rig.send(1, frame)
    await rig.installed(FlowKey.parse("0,10.0.0.1,198.51.100.7,tcp,0,0"))  # ports not parsed
    await rig.send(1, frame)
    await asyncio.sleep(0.2)
    assert rig.nothing_on(1, 2)
    plain = tcp("10.0.0.1", "198.51.100.7", 40002, 443)  # the same rule, no options: translated
    await rig.send(1, plain)
    await rig.installed(FlowKey.parse("0,10.0.0.1,198.51.100.7,tcp,40002,443"))
    await rig.send(1, plain)
    out = await rig.expect(2)
    assert out[IP].src == "203.0.113.1" and checksums_valid(out)


async def test_the_switch_refuses_an_entry_in_a_keyless_table_as_bmv2_does(rig: Rig) -> None:
    """``miss_policy`` has only its default entry; PI hands an INSERT to BMv2, which refuses."""
    client, spec = rig.controller.client, rig.controller.spec
    miss = spec.role("tables", "miss_policy")
    entry = TableEntry(miss["name"], action=miss["actions"]["to_cpu"]["name"])
    result = await client.write([Update(UpdateType.INSERT, entry)])
    [(_, _, status)] = result.failed()
    assert (status.code, status.message) == (grpc.StatusCode.UNKNOWN,
                                             "Error when adding match entry to target")
    wanted = p4runtime_pb2.TableEntry(table_id=client.p4info.tables[miss["name"]].id)
    assert [e async for e in client.read_raw([p4runtime_pb2.Entity(table_entry=wanted)])] == []
    # the flow table's default entry, read with counter_data: BMv2 has no counter there
    default = p4runtime_pb2.TableEntry(table_id=rig.controller.mapping.flow_table_id,
                                       is_default_action=True)
    default.counter_data.SetInParent()
    [read] = [e.table_entry async for e in client.read_raw([p4runtime_pb2.Entity(
        table_entry=default)])]
    assert read.is_default_action and not read.HasField("counter_data")
