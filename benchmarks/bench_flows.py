"""Flow setup: digest in -> both entries acknowledged -> digest acknowledged.

Prints, in one run on one switch:

- the switch's ceiling for this job: its new-flow digest rate (a burst of
  packets in, digests out, acknowledged at once, nothing written) and its
  batched write rate (1000 entries per request); the ceiling is the lower of
  the digest rate and half the write rate (a flow is two entries);
- for the software switch in its own process, its CPU per digest and per
  written entry in those two runs, and the setup rate its one thread could
  reach at those costs (it serves packets, digests and writes in turn, so a
  flow costs it a digest plus two entries); the setup runs print the
  switch's CPU per flow next to it;
- the bare loop's setup rate (``bare_controller.py``: digest, reverse write,
  forward write, ack, nothing else): what the switch gives any controller
  when it has to do both jobs at once;
- the controller's flow setup rate for new flows offered at the ceiling, and
  its ratio to the ceiling (goal: at least 0.8) and to the bare loop;
- first packet to both entries installed, p50 / p99 / max, at an offered
  1,000 new flows/s (goal: p99 at most 5 ms), for the bare loop and the
  controller.

Every burst is a whole number of digest lists (``LIST``; ``--flows`` is
rounded up, the ceiling's burst is 40 lists). PI (so the software switch)
sends a partial list only at a 100 ms sweep, 100 to 200 ms after its first
digest: a burst ending in one waits that long, whatever the switch and the
controller do, and a 10,000-digest burst lasts only about 0.3 s on the
software switch. Counted in, that wait took the measured digest rate from
about 37,000/s to 23,000 to 30,000/s by chance of timing, and weighed more
on the short ceiling burst than on the longer setup burst. BMv2 drops
packets from a burst, so its lists do not come out whole and its figures
still include such a wait.

All of it ``--rounds`` times (3 unless told), each round's ceiling, bare loop
and controller one after the other, then the median and range of each
figure, and the percentiles of every latency run together. On a machine
whose speed drifts from one minute to the next (a shared 2-core VM moved the
controller's ratio between 0.56 and 0.79 in one afternoon), one round says
little; a ratio is only taken within its own round, against a ceiling
measured a few seconds before.

Targets: the software switch in this process (packets through its API); with
``--separate`` (root, iproute2) ``p4ctl switch`` in its own process on a veth
pair; with ``--bmv2`` ``simple_switch_grpc`` on a veth pair, the controller
pushing the committed JSON and using BMv2's Thrift port for registers. On a
veth pair the frames come from a process of their own (``traffic.py``). A
switch that cannot take a burst drops packets (BMv2 does): rates count what
arrived by the last arrival, and the losses are printed.

Run: ``python benchmarks/bench_flows.py [--flows N] [--rounds N] [--separate | --bmv2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from bare_controller import BareController
from p4.v1 import p4runtime_pb2
from traffic import frame, key_of, paced

from p4ctl.config import parse_config
from p4ctl.config.model import RegisterBackend
from p4ctl.controller import DeviceController
from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.state import FlowState
from p4ctl.gc_freeze import GcFreezer
from p4ctl.metrics import Metrics
from p4ctl.p4rt.client import ClientOptions, P4RuntimeClient
from p4ctl.p4rt.device_config import PipelineConfig
from p4ctl.p4rt.encoding import canonical_bytes
from p4ctl.pipeline import BUNDLED, FlowMapping, PipelineSpec
from p4ctl.switch.device import SoftwareSwitch

CONFIG = """
devices:
  - {name: s1, address: 127.0.0.1:1, device_id: 1, election_id: 1, port_vrf: {1: 0, 2: 0}}
flows:
  max_new_flows_per_second: 0
  digest: {max_list_size: LIST_SIZE, max_timeout: 1ms, ack_timeout: 5s}
  write_batch_size: 1000
policy:
  default: {action: drop}
  vrfs:
    0:
      rules:
        - {name: out, in_ports: [1], action: forward, port: 2}
        - {name: in, in_ports: [2], action: forward, port: 1}
"""


class LocalSwitch:
    """The software switch in this process; packets go in through its API."""

    device: dict[str, object] = {}
    pid: int | None = None

    def cpu_seconds(self) -> float:
        return 0.0

    async def __aenter__(self) -> LocalSwitch:
        self.switch = SoftwareSwitch(grpc_address="127.0.0.1:0")
        await self.switch.start()
        self.target = self.switch.grpc_target
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.switch.stop()

    async def send_frames(self, first: int, count: int, rate: float) -> list[float]:
        """Frames ``first..first+count`` in through the API, from this event loop."""
        sent = []
        for i, wait in zip(range(first, first + count), paced(count, rate), strict=True):
            if wait:
                await asyncio.sleep(wait)
            elif not rate and i % 256 == 0:  # back to back: let the switch's loop run
                await asyncio.sleep(0)
            sent.append(time.monotonic())
            await self.switch.inject(1, frame(i))
        return sent


class _VethSwitch:
    """A switch in its own process on a veth pair; packets go in through the pair."""

    #: DeviceConfig fields the controller needs for this switch
    device: dict[str, object] = {}

    def command(self, ifname: str, grpc_port: int) -> list[str]:
        raise NotImplementedError

    async def __aenter__(self) -> _VethSwitch:
        tag = os.getpid() % 100000
        self.host, port = f"p4fh{tag}", f"p4fs{tag}"
        subprocess.run(["ip", "link", "add", self.host, "type", "veth", "peer", "name", port],
                       check=True, capture_output=True)
        for name in (self.host, port):
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"],
                           capture_output=True, check=False)
            subprocess.run(["ip", "link", "set", name, "up"], check=True, capture_output=True)
        grpc_port = free_port()
        self.target = f"127.0.0.1:{grpc_port}"
        self.proc = subprocess.Popen(self.command(port, grpc_port),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", grpc_port)):
                break
            await asyncio.sleep(0.1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        subprocess.run(["ip", "link", "del", self.host], capture_output=True, check=False)

    async def send_frames(self, first: int, count: int, rate: float) -> list[float]:
        """Frames ``first..first+count`` into the pair from a process of their own."""
        gen = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).with_name("traffic.py")), self.host, str(first),
            str(count), str(rate), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 24)  # the send times come back as one line
        assert gen.stdin is not None and gen.stdout is not None
        if await gen.stdout.readline() != b"ready\n":
            raise RuntimeError("the traffic generator did not start")
        gen.stdin.write(b"go\n")
        await gen.stdin.drain()
        sent = json.loads(await gen.stdout.readline())
        await gen.wait()
        return sent

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the switch process, all its threads."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SeparateSwitch(_VethSwitch):
    """``p4ctl switch`` in its own process."""

    def command(self, ifname: str, grpc_port: int) -> list[str]:
        return [sys.executable, "-m", "p4ctl.cli", "switch",
                "--grpc-address", f"127.0.0.1:{grpc_port}", "--no-thrift", "-i", f"1@{ifname}"]


class BMv2Switch(_VethSwitch):
    """``simple_switch_grpc --no-p4``; the controller pushes the committed JSON."""

    def command(self, ifname: str, grpc_port: int) -> list[str]:
        thrift_port = free_port()
        self.device = {"registers": RegisterBackend.THRIFT,
                       "thrift_address": f"127.0.0.1:{thrift_port}"}
        return [BMV2, "--no-p4", "--device-id", "1", "--thrift-port", str(thrift_port),
                "--log-level", "warn", "-i", f"1@{ifname}",
                "--", "--grpc-server-addr", f"127.0.0.1:{grpc_port}"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


BMV2 = shutil.which("simple_switch_grpc") or "simple_switch_grpc"
Target = LocalSwitch | _VethSwitch
SwitchFactory = Callable[[], Target]


#: digests per list in the burst runs (``max_list_size``); bursts are whole lists
LIST = 256

#: offered packets/s tried for the digest ceiling (0: back to back); the best one counts
OFFERED_RATES = (8_000.0, 16_000.0, 32_000.0, 0.0)


async def digest_rate(n: int, make: SwitchFactory) -> tuple[float, float]:
    """The best new-flow digest rate over a few offered packet rates, and the switch's CPU.

    The software switch does best with back-to-back frames; BMv2 drops most
    of a back-to-back burst and does best with frames spread out. The CPU is
    the switch process's seconds per digest in the best run (0 in process).
    """
    best, cpu = 0.0, 0.0
    for offered in OFFERED_RATES:
        async with make() as switch:
            rate, used = await _digest_rate(n, switch, offered)
            if rate > best:
                best, cpu = rate, used
    return best, cpu


async def _digest_rate(n: int, switch: Target, offered: float) -> tuple[float, float]:
    spec = PipelineSpec.load(BUNDLED)
    client = P4RuntimeClient(switch.target, 1, election_id=1,
                             pipeline=PipelineConfig.bmv2(spec.p4info_path, spec.bmv2_json_path))
    seen = 0

    def count(digest) -> None:
        nonlocal seen
        seen += len(digest.data)

    client.on_digest(count, "new_flow_digest_t")
    await client.connect()
    await client.configure_digest("new_flow_digest_t", max_timeout_ns=1_000_000,
                                  max_list_size=LIST, ack_timeout_ns=5_000_000_000)
    cpu0 = switch.cpu_seconds()
    t0 = (await switch.send_frames(0, n, offered))[0]
    got, last = await settled(lambda: (seen,), lambda: seen >= n)
    cpu = (switch.cpu_seconds() - cpu0) / max(1, got[0])
    rate = got[0] / (last - t0)
    print(f"  digests with {f'{offered:,.0f} packets/s' if offered else 'back-to-back'} "
          f"offered: {rate:,.0f}/s ({n - got[0]} of {n} packets lost)")
    await client.close()
    return rate, cpu


async def settled(
    progress: Callable[[], tuple[int, ...]], complete: Callable[[], bool], quiet: float = 1.0
) -> tuple[tuple[int, ...], float]:
    """Wait until ``complete()`` or ``progress()`` stops moving; its value and when it last moved.

    A packet lost on the way never gives a digest: the rate is then what
    arrived by the last arrival, not by a time-out.
    """
    value, last = progress(), time.monotonic()
    while not complete() and time.monotonic() - last < quiet:
        await asyncio.sleep(0.002)
        now = progress()
        if now != value:
            value, last = now, time.monotonic()
    return value, last


async def write_rate(n: int, make: SwitchFactory) -> tuple[float, float]:
    """Batched INSERTs per second, and the switch process's CPU seconds per entry."""
    async with make() as switch:
        return await _write_rate(n, switch)


async def _write_rate(n: int, switch: Target) -> tuple[float, float]:
    spec = PipelineSpec.load(BUNDLED)
    pipeline = PipelineConfig.bmv2(spec.p4info_path, spec.bmv2_json_path)
    client = P4RuntimeClient(switch.target, 1, election_id=1, pipeline=pipeline,
                             options=ClientOptions(max_updates_per_request=1000))
    await client.connect()
    mapping = FlowMapping(spec, pipeline.p4info)
    action = FlowAction(ActionKind.FORWARD, 2)
    updates = [
        p4runtime_pb2.Update(type=p4runtime_pb2.Update.INSERT, entity=p4runtime_pb2.Entity(
            table_entry=mapping.table_entry(key_of(i), i, action, 180_000_000_000)))
        for i in range(n)
    ]
    cpu0, t0 = switch.cpu_seconds(), time.monotonic()
    result = await client.write(updates)
    rate = n / (time.monotonic() - t0)
    cpu = (switch.cpu_seconds() - cpu0) / n
    assert result.ok, result.failed()[:1]
    await client.close()
    return rate, cpu


def make_controller(list_size: int, switch: Target) -> DeviceController:
    config = parse_config(CONFIG.replace("LIST_SIZE", str(list_size)), "bench.yaml")
    device = dataclasses.replace(config.devices[0], address=switch.target,
                                 pipeline=BUNDLED, **switch.device)
    config = dataclasses.replace(config, devices=(device,))
    return DeviceController(config, device, Metrics())


@contextlib.asynccontextmanager
async def bare_rig(
    list_size: int, make: SwitchFactory
) -> AsyncIterator[tuple[Target, BareController]]:
    """Switch and the bare loop: the controller sets the switch up, then leaves."""
    async with make() as switch:
        controller = make_controller(list_size, switch)
        await controller.start()
        await controller.stop()
        async with BareController(switch.target, 1, controller.mapping) as bare:
            yield switch, bare


@contextlib.asynccontextmanager
async def controller_rig(
    list_size: int, make: SwitchFactory
) -> AsyncIterator[tuple[Target, DeviceController]]:
    """Switch and controller; ``list_size`` is the digests' max_list_size.

    PI/BMv2 (and the software switch, which follows them) flush a partial
    digest list only after 100 to 200 ms, whatever max_timeout_ns says, so a
    low first-packet latency needs lists of one; a burst is served best by
    long lists.
    """
    async with make() as switch:
        controller = make_controller(list_size, switch)
        await controller.start()
        freezer = GcFreezer()  # as ``p4ctl run`` does
        freezer.install()
        try:
            yield switch, controller
        finally:
            freezer.remove()
            await controller.stop()


def cpu_use(switch: Target, cpu0: tuple[float, float], wall: float, flows: int) -> str:
    """This process's and the switch process's CPU since ``cpu0``, over ``wall`` seconds.

    ``wall`` ends at the last flow's completion: both sides are idle after it.
    """
    ours, theirs = time.process_time() - cpu0[0], switch.cpu_seconds() - cpu0[1]
    text = (f"controller {ours / wall:.0%} of a core ({ours / max(1, flows) * 1e6:.0f} us/flow"
            + (")" if switch.pid else ", the switch and the traffic included)"))
    return text + (f", switch process {theirs / wall:.0%} ({theirs / max(1, flows) * 1e6:.0f} "
                   "us/flow)" if switch.pid else "")


async def setup_rate(n: int, make: SwitchFactory, offered: float) -> float:
    async with controller_rig(LIST, make) as (switch, controller):
        counters = controller.agent.counters
        stats = controller.client.stats

        def finished() -> int:
            return counters.installed + counters.failed + counters.table_full

        cpu0 = (time.process_time(), switch.cpu_seconds())
        t0 = (await switch.send_frames(0, n, offered))[0]
        (done, _), last = await settled(
            lambda: (finished(), stats.digest_acks),
            lambda: finished() >= n and stats.digest_acks >= counters.digests)
        print(f"  {done:,} of {n:,} flows reported by the switch ({n - done:,} packets lost on "
              f"the way), {counters.installed:,} installed; CPU: "
              + cpu_use(switch, cpu0, last - t0, done))
        return counters.installed / (last - t0)


async def bare_setup_rate(n: int, make: SwitchFactory, offered: float) -> float:
    """``setup_rate`` for the bare loop: what the switch gives any controller."""
    async with bare_rig(LIST, make) as (switch, bare):
        cpu0 = (time.process_time(), switch.cpu_seconds())
        t0 = (await switch.send_frames(0, n, offered))[0]
        _, last = await settled(lambda: (bare.installed + bare.failed,),
                                lambda: bare.installed + bare.failed >= n)
        print(f"  bare loop: {bare.digests:,} of {n:,} flows reported, {bare.installed:,} "
              f"installed, {bare.failed:,} failed; CPU: "
              + cpu_use(switch, cpu0, last - t0, bare.digests))
        return bare.installed / (last - t0)


async def latency(rate: float, seconds: float, make: SwitchFactory) -> list[float]:
    async with controller_rig(1, make) as (switch, controller):
        store, counters = controller.store, controller.agent.counters

        def done_at(i: int) -> float | None:
            fwd = store.get(key_of(i))
            return fwd.changed if fwd is not None and fwd.state is FlowState.ADDED else None

        return await _latency(rate, seconds, switch, lambda: counters.installed, done_at)


async def bare_latency(rate: float, seconds: float, make: SwitchFactory) -> list[float]:
    async with bare_rig(1, make) as (switch, bare):
        def done_at(i: int) -> float | None:
            key = key_of(i)
            return bare.installed_at.get((canonical_bytes(key.src_addr),
                                          canonical_bytes(key.src_port)))

        return await _latency(rate, seconds, switch, lambda: bare.installed + bare.failed,
                              done_at)


async def _latency(rate: float, seconds: float, switch: Target, finished: Callable[[], int],
                   done_at: Callable[[int], float | None]) -> list[float]:
    """Milliseconds from each flow's first packet to ``done_at`` (forward entry confirmed)."""
    n = int(rate * seconds)
    sent = await switch.send_frames(0, n, rate)
    deadline = time.monotonic() + 30
    while finished() < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    out = []
    for i in range(n):
        done = done_at(i)
        if done is not None:
            out.append((done - sent[i]) * 1000)
    return sorted(out)


def percentiles(lat: list[float]) -> str:
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return (f"p50 {statistics.median(lat):.2f} ms, p99 {p99:.2f} ms, max {lat[-1]:.2f} ms "
            f"({len(lat)} flows)")


@dataclasses.dataclass(slots=True)
class Round:
    """One round's figures: the ceiling, then the bare loop and the controller against it."""

    ceiling: float
    bare: float
    controller: float
    one_thread: float


async def setup_round(n: int, make: SwitchFactory) -> Round:
    """The ceiling, the bare loop and the controller, one after the other, printed."""
    digests, digest_cpu = await digest_rate(min(n, 40 * LIST), make)
    writes, write_cpu = await write_rate(n, make)
    ceiling = min(digests, writes / 2)
    print(f"switch: new-flow digests {digests:,.0f}/s, batched writes "
          f"{writes:,.0f} entries/s (1000/request)")
    print(f"ceiling for flow setup: {ceiling:,.0f} flows/s")
    one_thread = 0.0
    if make is SeparateSwitch and digest_cpu and write_cpu:
        # The software switch runs packets, digests and writes on one thread:
        # a flow costs it a digest and two entries, one after the other.
        one_thread = 1 / (digest_cpu + 2 * write_cpu)
        print(f"switch CPU: {digest_cpu * 1e6:.0f} us a digest, {write_cpu * 1e6:.1f} us a "
              f"written entry; on its one thread, at most {one_thread:,.0f} flows/s "
              f"({one_thread / ceiling:.2f} x ceiling)")
    floor = await bare_setup_rate(n, make, ceiling)
    print(f"bare loop (digest, reverse write, forward write, ack; nothing else): "
          f"{floor:,.0f} flows/s ({floor / ceiling:.2f} x ceiling)")
    flows = await setup_rate(n, make, ceiling)
    print(f"controller flow setup: {flows:,.0f} flows/s for {n:,} new flows offered "
          f"at the ceiling ({flows / ceiling:.2f} x ceiling, goal >= 0.8; "
          f"{flows / floor:.2f} x the bare loop"
          + (f", {flows / one_thread:.2f} x the one-thread bound)" if one_thread else ")"))
    return Round(ceiling, floor, flows, one_thread)


def spread(values: list[float], fmt: str) -> str:
    """``median (lowest to highest)`` of ``values``; the value alone when there is one."""
    if len(values) == 1:
        return format(values[0], fmt)
    return (f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)} to "
            f"{format(max(values), fmt)})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=20_000,
                        help="flows in the burst (rounded up to whole digest lists)")
    parser.add_argument("--offered", type=float, default=1000.0, help="new flows/s offered")
    parser.add_argument("--seconds", type=float, default=5.0, help="latency run length")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of ceiling, bare loop and controller (and of latency runs)")
    parser.add_argument("--separate", action="store_true",
                        help="run the switch in its own process on a veth pair (root)")
    parser.add_argument("--bmv2", action="store_true",
                        help="measure simple_switch_grpc instead, on a veth pair (root)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    flows = -(-max(1, args.flows) // LIST) * LIST  # whole digest lists: see the docstring
    make: SwitchFactory
    if args.bmv2:
        if shutil.which("simple_switch_grpc") is None:
            parser.error("simple_switch_grpc is not on PATH")
        make, name = BMv2Switch, "BMv2 (simple_switch_grpc), packets over a veth pair"
    elif args.separate:
        make, name = SeparateSwitch, "software switch in its own process, packets over a veth pair"
    else:
        make, name = LocalSwitch, "software switch in this process, packets through its API"
    print(f"switch: {name}")
    if flows != args.flows:
        print(f"bursts of {flows:,} flows: whole digest lists of {LIST}")

    rounds = []
    for i in range(args.rounds):
        print(f"-- setup round {i + 1} of {args.rounds}")
        rounds.append(await setup_round(flows, make))
    ratio = [r.controller / r.ceiling for r in rounds]
    print(f"flow setup over {len(rounds)} round(s), median (lowest to highest):\n"
          f"  ceiling {spread([r.ceiling for r in rounds], ',.0f')} flows/s\n"
          f"  bare loop {spread([r.bare / r.ceiling for r in rounds], '.2f')} x ceiling\n"
          f"  controller {spread([r.controller for r in rounds], ',.0f')} flows/s, "
          f"{spread(ratio, '.2f')} x ceiling (goal >= 0.8)")
    if all(r.one_thread for r in rounds):
        print(f"  the switch's one-thread bound "
              f"{spread([r.one_thread / r.ceiling for r in rounds], '.2f')} x ceiling; the "
              f"controller {spread([r.controller / r.one_thread for r in rounds], '.2f')} x "
              f"that bound")

    bare: list[float] = []
    lat: list[float] = []
    print(f"first packet -> both entries installed at {args.offered:,.0f} flows/s offered, "
          f"digest lists of 1:")
    for i in range(args.rounds):
        run_bare = await bare_latency(args.offered, args.seconds, make)
        run = await latency(args.offered, args.seconds, make)
        print(f"  run {i + 1}: bare loop {percentiles(run_bare)}\n"
              f"         controller {percentiles(run)}")
        bare += run_bare
        lat += run
    bare.sort()
    lat.sort()
    print(f"  all runs: bare loop {percentiles(bare)}\n"
          f"            controller {percentiles(lat)} (goal: p99 <= 5 ms)")
    print("baseline for comparison: the P4 tutorials' flow-cache controller, ~290 flows/s "
          "on BMv2 (published figure, not measured in this run)")


if __name__ == "__main__":
    asyncio.run(main())
