"""Speed of the software switch on the flow-cache program, next to BMv2's where it is installed.

Prints, in one run:

* **the idle-timeout sweep**: milliseconds per sweep over 512k timed
  entries, BMv2's full scan (the baseline) and the switch's deadline queue,
  with none of them due, then with all of them idle and nobody deleting them;
* **packets/s through the interpreter** (``Pipeline.process`` on the
  committed ``pipelines/flowcache/bmv2.json``): the hit path (flow-table
  entry, forward), the miss path (flow-table miss, the four-way overflow walk,
  the new-flow digest, ``miss_policy``), the NAT path (rewrite and three
  checksums) and an overflow hit; then the same through
  ``SoftwareSwitch.inject`` (digest engine and port queues included);
* **table writes/s through the P4Runtime server** (the switch in a process
  of its own, the project's client writing ``flow_table`` INSERTs), one per
  request and 1000 per request, and the same requests encoded beforehand and
  sent on a bare gRPC stub (the server's share alone);
* **packets/s over veth pairs** (as root, with iproute2): ``p4ctl switch``
  attached to veths in a network namespace, a closed loop of at most
  ``--window`` packets in flight, forwarded (hit) and NAT packets counted on
  the output veth;
* where ``simple_switch_grpc`` is on PATH (and as root): BMv2's figures for
  the same writes and veth packets, measured inside a network namespace of
  its own (its Thrift server listens on all addresses, port 9090).

It prints figures and asserts nothing. Goals (issue "software switch",
"Speed"): batched writes at least BMv2's on the same machine, at least 5,000
packets/s through the flow-cache program.

Run: ``python benchmarks/bench_switch.py [--packets N] [--entries N] [--no-veth] [--no-bmv2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
from bench_writes import switch_process
from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc

from p4ctl.p4rt import (
    ClientOptions,
    P4Info,
    P4RuntimeClient,
    PipelineConfig,
    TableEntry,
    insert,
)

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "pipelines" / "flowcache"
P4INFO, BMV2_JSON = PIPELINE / "p4info.txtpb", PIPELINE / "bmv2.json"
VENV_BIN = Path(sys.executable).parent
FLOW_TABLE = "FlowIngress.flow_table"
CPU_PORT = 255
NS_GRPC = "127.0.0.1:9559"
NS_THRIFT = "127.0.0.1:9090"

Row = tuple[str, int, float]  # what, count, seconds


# -- packets and entries ---------------------------------------------------------


def _csum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(src: int, dst: int, proto: int, l4: bytes, size: int) -> bytes:
    """Ethernet + IPv4 + ``l4`` (checksum field at its offset zeroed) padded to ``size``,
    with valid IPv4 and L4 checksums. Built by hand: scapy takes a millisecond a packet."""
    l4 += b"\x00" * max(0, size - 34 - len(l4))
    ip_hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                         src.to_bytes(4, "big"), dst.to_bytes(4, "big"))  # fmt: skip
    ip_hdr = ip_hdr[:10] + _csum(ip_hdr).to_bytes(2, "big") + ip_hdr[12:]
    pseudo = ip_hdr[12:20] + struct.pack("!BBH", 0, proto, len(l4))
    at = 16 if proto == 6 else 6
    l4 = l4[:at] + _csum(pseudo + l4).to_bytes(2, "big") + l4[at + 2:]
    return b"\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x01\x08\x00" + ip_hdr + l4


def tcp_packet(i: int, size: int = 100) -> bytes:
    """TCP ACK from 10.x.y.z (from ``i``) to 10.1.0.1:80."""
    tcp = struct.pack("!HHIIBBHHH", 1024 + i % 60000, 80, 1, 1, 5 << 4, 0x10, 8192, 0, 0)
    return _frame(0x0A000000 + i, 0x0A010001, 6, tcp, size)


def udp_packet(i: int, size: int = 100) -> bytes:
    """UDP from 11.x.y.z (from ``i``) to 10.1.0.1:53."""
    length = max(8, size - 34)
    udp = struct.pack("!HHHH", 1024 + i % 60000, 53, length, 0)
    return _frame(0x0B000000 + i, 0x0A010001, 17, udp, size)


def key_of(packet: bytes, vrf: int = 0) -> tuple[int, ...]:
    """Flow-table key (vrf, src, dst, proto, sport, dport) of an untagged IPv4 TCP/UDP frame."""
    ip_hdr = packet[14:34]
    src, dst = int.from_bytes(ip_hdr[12:16], "big"), int.from_bytes(ip_hdr[16:20], "big")
    sport, dport = int.from_bytes(packet[34:36], "big"), int.from_bytes(packet[36:38], "big")
    return (vrf, src, dst, ip_hdr[9], sport, dport)


def bucket_hash(key: tuple[int, ...]) -> int:
    """crc32 of the key packed MSB first: 16+32+32+8+16+16 bits (docs/pipeline.md)."""
    packed = b"".join(v.to_bytes(w, "big") for v, w in zip(key, (2, 4, 4, 1, 2, 2), strict=True))
    return zlib.crc32(packed)


def flow_entry(key: tuple[int, ...], flow_id: int, port: int, nat: bool = False) -> TableEntry:
    match = dict(zip(("vrf", "src_addr", "dst_addr", "proto", "src_port", "dst_port"), key,
                     strict=True))  # fmt: skip
    if nat:
        return TableEntry(FLOW_TABLE, match, "FlowIngress.flow_nat",
                          {"flow_id": flow_id, "port": port, "src_addr": 0xC0A80001,
                           "dst_addr": key[2], "src_port": 40000, "dst_port": key[5]})  # fmt: skip
    return TableEntry(FLOW_TABLE, match, "FlowIngress.flow_forward",
                      {"flow_id": flow_id, "port": port})  # fmt: skip


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def print_rows(title: str, rows: list[Row], unit: str) -> None:
    print(f"\n{title}")
    print(f"  {'what':52} {'count':>8} {'seconds':>8} {unit:>12}")
    for what, n, seconds in rows:
        print(f"  {what:52} {n:8d} {seconds:8.3f} {rate(n, seconds):12.0f}")


# -- 0. the idle-timeout sweep -------------------------------------------------------


def bench_idle_sweep(entries: int) -> None:
    """Milliseconds per idle-timeout sweep over ``entries`` timed entries.

    First with none due; then with all of them idle and nobody deleting them
    (the controller is gone), where BMv2 reports each every second sweep and
    PI keeps 1000 a notification. The baseline is BMv2's way
    (``ageing.cpp``), which the switch used before: every entry checked at
    every sweep, once a second, on the switch's thread.
    """
    from p4ctl.switch.idle import IdleMonitor
    from p4ctl.switch.p4info_map import MatchFieldMap
    from p4ctl.switch.state import ActionInfo, MatchFieldInfo, Table
    from p4ctl.switch.state import TableEntry as SwEntry

    def full_scan(table: Table, prev: dict[int, SwEntry]) -> tuple[float, list[SwEntry]]:
        """BMv2's sweep: seconds taken, and what it reports (not what ``prev`` holds)."""
        t0 = time.perf_counter()
        now_ms = time.monotonic_ns() // 1_000_000
        aged = [e for e in table.entries()
                if e.ttl_ns // 10**6 > 0 and now_ms - e.last_hit_ns // 10**6 >= e.ttl_ns // 10**6]
        fresh = [e for e in aged if prev.get(id(e)) is not e]
        prev.clear()
        prev.update((id(e), e) for e in fresh)
        return time.perf_counter() - t0, fresh

    async def paused(monitor: IdleMonitor, seconds: float) -> list[float]:
        """The event loop's pauses (s) seen by a 1 ms ticker while the monitor's timer sweeps."""
        monitor.sweep_interval = 0.5
        monitor.start()
        pauses = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            pauses.append(time.perf_counter() - t0 - 0.001)
        monitor.stop()
        return sorted(pauses)

    def sweeps(last_hit_ns: int, n: int
               ) -> tuple[list[float], list[float], int, int, list[float]]:
        """BMv2's and the switch's seconds for ``n`` sweeps; entries reported and dropped;
        then the event loop's pauses while the switch's own timer sweeps (s, sorted)."""
        table = Table("flows", 1, [MatchFieldInfo("k", "exact", 32)], entries, ["fwd"],
                      {"fwd": ActionInfo("fwd", 1, [("port", 9)])}, ("fwd", (0,)),
                      support_timeout=True)
        for i in range(entries):
            table.insert(SwEntry((i,), 0, "fwd", (1,), ttl_ns=180 * 10**9,
                                 last_hit_ns=last_hit_ns))
        loop = asyncio.new_event_loop()
        sent: list[int] = []
        try:
            tm = SimpleNamespace(id=1, table=table, supports_idle_timeout=True,
                                 match_fields=[MatchFieldMap(1, "k", 32, "exact", 0)])
            monitor = IdleMonitor(
                [tm], lambda msg: sent.append(len(msg.idle_timeout_notification.table_entry)),
                loop)  # type: ignore[list-item]
            prev: dict[int, SwEntry] = {}
            bmv2, ours, reported = [], [], 0
            for _ in range(n):
                took, fresh = full_scan(table, prev)
                bmv2.append(took)
                reported += len(fresh)
                t0 = time.perf_counter()
                monitor.sweep()
                ours.append(time.perf_counter() - t0)
                monitor._flush()  # what PI's 100 ms buffer does
            assert sum(sent) + monitor.dropped == reported, (sum(sent), monitor.dropped,
                                                             reported)
            dropped = monitor.dropped
            # timed sweeps at 0, 0.5 and 1 s: one or two of them report every entry
            pauses = loop.run_until_complete(paused(monitor, 1.2))
        finally:
            loop.close()
        return bmv2, ours, reported, dropped, pauses

    now = time.monotonic_ns()
    bmv2, ours, reported, _, _ = sweeps(now, 1)
    assert reported == 0
    print(f"\nIdle-timeout sweep over {entries:,} entries with a TTL, none due (once a second)")
    print(f"  full scan (BMv2's way, the baseline) {bmv2[0] * 1000:8.2f} ms")
    print(f"  deadline queue (the switch)          {ours[0] * 1000:8.2f} ms")
    bmv2, ours, reported, dropped, pauses = sweeps(now - 200 * 10**9, 5)
    print(f"The same entries all idle, nobody deleting them: five sweeps, {reported:,} reports, "
          f"{dropped:,} of them beyond PI's 1000 a notification (dropped)")
    print("  full scan (BMv2's way, the baseline) "
          + ", ".join(f"{t * 1000:.1f}" for t in bmv2) + " ms")
    print("  the switch                           "
          + ", ".join(f"{t * 1000:.1f}" for t in ours) + " ms")
    print(f"  the switch's own timer sweeps them in slices: over 1.2 s a 1 ms timer waited "
          f"p50 {pauses[len(pauses) // 2] * 1000:.2f} ms, "
          f"p99 {pauses[int(len(pauses) * 0.99)] * 1000:.2f} ms, "
          f"at most {pauses[-1] * 1000:.1f} ms")


# -- 1. the interpreter ----------------------------------------------------------------


def bench_interpreter(n: int, flows: int) -> list[Row]:
    from p4ctl.switch.pipeline import Pipeline
    from p4ctl.switch.state import TableEntry as SwEntry

    pipe = Pipeline.from_json(BMV2_JSON.read_bytes())
    table = pipe.tables[FLOW_TABLE]
    overflow = pipe.registers["FlowIngress.ovf_valid"].size
    flow_entries = table.size
    hits = [tcp_packet(i) for i in range(flows)]
    nats = [udp_packet(i) for i in range(flows)]
    misses = [tcp_packet(100000 + i) for i in range(n)]
    for i, p in enumerate(hits):
        table.insert(SwEntry(key_of(p), 0, "FlowIngress.flow_forward", (i, 2)))
    for i, p in enumerate(nats):
        args = (flows + i, 3, 0xC0A80001, key_of(p)[2], 40000, 53)
        table.insert(SwEntry(key_of(p), 0, "FlowIngress.flow_nat", args))
    # overflow hits: flows placed in way 3 of their bucket (the walk's last way)
    ovf = [tcp_packet(200000 + i) for i in range(min(flows, overflow // 4))]
    regs = pipe.registers
    for p in ovf:
        k = key_of(p)
        slot = (bucket_hash(k) % (overflow // 4)) * 4 + 3
        regs["FlowIngress.ovf_key_addrs"].write(slot, k[1] << 32 | k[2])
        regs["FlowIngress.ovf_key_rest"].write(slot, k[0] << 40 | k[3] << 32 | k[4] << 16 | k[5])
        regs["FlowIngress.ovf_action"].write(slot, 1)
        regs["FlowIngress.ovf_port"].write(slot, 2)
        regs["FlowIngress.ovf_valid"].write(slot, 1)

    def run(name: str, packets: list[bytes], check: Callable[[Any], bool]) -> Row:
        process = pipe.process
        res = process(packets[0], 1)
        if not check(res):
            raise RuntimeError(f"{name}: unexpected result {res}")
        start = time.perf_counter()
        for i in range(n):
            process(packets[i % len(packets)], 1)
        return (name, n, time.perf_counter() - start)

    return [
        run(f"hit, forward ({flows} flows)", hits, lambda r: r.outputs and r.outputs[0][0] == 2),
        run("miss: overflow walk + new-flow digest + drop", misses,
            lambda r: not r.outputs and len(r.digests) == 1),
        run(f"hit, NAT + checksums ({flows} flows)", nats,
            lambda r: r.outputs and r.outputs[0][0] == 3),
        run(f"overflow hit, way 3 ({len(ovf)} flows, FLOW_ENTRIES {flow_entries})", ovf,
            lambda r: r.outputs and r.outputs[0][0] == 2),
    ]  # fmt: skip


async def _bench_inject(n: int, flows: int) -> list[Row]:
    from p4ctl.switch.device import SoftwareSwitch

    switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0", thrift_address=None)
    switch.preload(P4INFO, BMV2_JSON)
    await switch.start()
    try:
        client = P4RuntimeClient(switch.grpc_target, 1, election_id=(0, 1),
                                 p4info=P4Info.load(P4INFO))  # fmt: skip
        await client.connect()
        try:
            hits = [tcp_packet(i) for i in range(flows)]
            result = await client.write(
                [insert(flow_entry(key_of(p), i, 2)) for i, p in enumerate(hits)]
            )
            result.raise_on_error()
            await client.configure_digest("new_flow_digest_t", max_list_size=100,
                                          max_timeout_ns=10**6, ack_timeout_ns=0)  # fmt: skip
            rows = []
            start = time.perf_counter()
            for i in range(n):
                await switch.inject(1, hits[i % flows])
                if i % 256 == 255:
                    switch.drain(2)
            rows.append(("inject, hit, forward", n, time.perf_counter() - start))
            switch.drain(2)
            misses = [tcp_packet(100000 + i) for i in range(n)]
            start = time.perf_counter()
            for p in misses:
                await switch.inject(1, p)
            rows.append(("inject, miss (digests enabled, lists of 100)", n,
                         time.perf_counter() - start))  # fmt: skip
        finally:
            await client.close()
    finally:
        await switch.stop()
    return rows


# -- 2. writes through a P4Runtime server ---------------------------------------------------


async def bench_writes(address: str, entries: int, single: int, push: bool) -> list[Row]:
    p4info = P4Info.load(P4INFO)
    pipeline = PipelineConfig.bmv2(p4info, BMV2_JSON)
    client = P4RuntimeClient(address, 1, election_id=(0, 1), p4info=p4info,
                             options=ClientOptions())  # fmt: skip
    await client.connect()
    try:
        if push:
            await client.set_pipeline(pipeline)
        many = [flow_entry((i & 0xFF, 0x0A000000 + i, 0xC0A80001, 6, 1024 + i % 60000, 80),
                           i, 1 + i % 3) for i in range(entries)]  # fmt: skip
        rows: list[Row] = []
        start = time.perf_counter()
        result = await client.write([insert(e) for e in many], max_updates_per_request=1000)
        rows.append(("INSERT, 1000 per request", entries, time.perf_counter() - start))
        result.raise_on_error()
        (await client.delete(many)).raise_on_error()
        few = many[:single]
        start = time.perf_counter()
        result = await client.write([insert(e) for e in few], max_updates_per_request=1)
        rows.append(("INSERT, 1 per request", single, time.perf_counter() - start))
        result.raise_on_error()
        (await client.delete(few)).raise_on_error()

        # the server alone: updates encoded beforehand, sent on a bare stub
        protos = [insert(e).to_proto(p4info) for e in many]
        stub = p4runtime_pb2_grpc.P4RuntimeStub(channel := grpc.aio.insecure_channel(address))
        try:
            for per_request, count in ((1000, entries), (1, single)):
                requests = [
                    p4runtime_pb2.WriteRequest(device_id=1, updates=protos[k:k + per_request],
                                               election_id=p4runtime_pb2.Uint128(low=1))
                    for k in range(0, count, per_request)
                ]  # fmt: skip
                start = time.perf_counter()
                for req in requests:
                    await stub.Write(req)
                rows.append((f"INSERT, {per_request} per request, pre-encoded (server alone)",
                             count, time.perf_counter() - start))  # fmt: skip
                (await client.delete(many[:count])).raise_on_error()
        finally:
            await channel.close()
        return rows
    finally:
        await client.close()


def bench_writes_software_switch(entries: int, single: int) -> list[Row]:
    with switch_process(preload=True) as address:
        return asyncio.run(bench_writes(address, entries, single, push=False))


# -- 3. packets over veth pairs (inside a network namespace) ----------------------------------


def _raw(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


def veth_rate(tx_if: str, rx_if: str, packets: list[bytes], n: int, window: int) -> Row:
    """Send ``n`` packets on ``tx_if`` with at most ``window`` unanswered; count them on ``rx_if``.

    Returns (count received, seconds from the first send to the last receipt).
    A packet lost for good stalls the window; after 1 s without progress the
    window is reopened (the loss shows as count < n).
    """
    tx, rx = _raw(tx_if), _raw(rx_if)
    received = 0
    last = 0.0
    done = threading.Event()

    def receive() -> None:
        nonlocal received, last
        rx.settimeout(0.2)
        while not done.is_set():
            try:
                data = rx.recv(65536)
            except TimeoutError:
                continue
            if len(data) >= 14 and data[12:14] == b"\x08\x00":
                received += 1
                last = time.perf_counter()

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    lost = 0
    start = time.perf_counter()
    try:
        for i in range(n):
            stalled = time.perf_counter()
            while i - received - lost >= window:
                time.sleep(0.0002)
                if time.perf_counter() - stalled > 1.0:
                    lost = i - received
                    break
            tx.send(packets[i % len(packets)])
        end = time.perf_counter() + 5.0
        while received + lost < n and time.perf_counter() < end:
            time.sleep(0.005)
    finally:
        done.set()
        thread.join()
        tx.close()
        rx.close()
    return ("", received, (last or time.perf_counter()) - start)


@contextlib.contextmanager
def _namespace(ports: int = 3) -> Iterator[str]:
    name = f"p4ctl-bench-{os.getpid()}-{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        def ns(*argv: str) -> None:
            subprocess.run(["ip", "netns", "exec", name, *argv], check=True, capture_output=True)

        ns(sys.executable, "-c", "for k in ('all', 'default'): open("
           "f'/proc/sys/net/ipv6/conf/{k}/disable_ipv6', 'w').write('1')")  # fmt: skip
        ns("ip", "link", "set", "lo", "up")
        for p in range(1, ports + 1):
            ns("ip", "link", "add", f"sw{p}", "type", "veth", "peer", "name", f"h{p}")
            ns("ip", "link", "set", f"sw{p}", "up")
            ns("ip", "link", "set", f"h{p}", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def _wait_grpc(address: str, proc: subprocess.Popen[bytes], seconds: float = 120.0) -> None:
    import grpc

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the switch exited with code {proc.returncode}")
        try:
            grpc.channel_ready_future(grpc.insecure_channel(address)).result(timeout=1)
            return
        except grpc.FutureTimeoutError:
            continue
    raise RuntimeError(f"no P4Runtime server on {address}")


def worker(target: str, args: argparse.Namespace) -> dict[str, Any]:
    """Inside a network namespace (veths sw1..3 <-> h1..3): start ``target``, measure, report."""
    ports = ["-i", "1@sw1", "-i", "2@sw2", "-i", "3@sw3"]
    if target == "bmv2":
        argv = ["simple_switch_grpc", "--no-p4", "--device-id", "1", *ports, "--",
                "--cpu-port", str(CPU_PORT), "--grpc-server-addr", NS_GRPC]  # fmt: skip
    else:
        argv = [str(VENV_BIN / "p4ctl"), "switch", "--pipeline", str(PIPELINE),
                "--grpc-address", NS_GRPC, "--no-thrift", *ports]  # fmt: skip
    report: dict[str, Any] = {}
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(argv, stdout=devnull, stderr=devnull)
    try:
        _wait_grpc(NS_GRPC, proc)
        if target == "bmv2" or args.writes_in_namespace:
            report["writes"] = asyncio.run(
                bench_writes(NS_GRPC, args.entries, args.single_entries, push=target == "bmv2")
            )
        report["veth"] = asyncio.run(_veth_packets(args))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return report


async def _veth_packets(args: argparse.Namespace) -> list[Row]:
    p4info = P4Info.load(P4INFO)
    client = P4RuntimeClient(NS_GRPC, 1, election_id=(0, 2), p4info=p4info)
    await client.connect()
    try:
        await client.set_pipeline(PipelineConfig.bmv2(p4info, BMV2_JSON))
        flows = args.flows
        hits = [tcp_packet(i) for i in range(flows)]
        nats = [udp_packet(i) for i in range(flows)]
        entries = [flow_entry(key_of(p), i, 2) for i, p in enumerate(hits)]
        entries += [flow_entry(key_of(p), flows + i, 3, nat=True) for i, p in enumerate(nats)]
        (await client.write([insert(e) for e in entries])).raise_on_error()
        n = args.veth_packets
        rows = []
        for name, packets, rx in (("hit, forward", hits, "h2"), ("hit, NAT", nats, "h3")):
            _, got, seconds = await asyncio.to_thread(veth_rate, "h1", rx, packets, n,
                                                      args.window)  # fmt: skip
            rows.append((f"veth, {name} (received of {n})", got, seconds))
        return rows
    finally:
        await client.close()


def run_in_namespace(target: str, args: argparse.Namespace) -> dict[str, Any] | str:
    """Run :func:`worker` for ``target`` in a fresh namespace; its report, or why not."""
    with _namespace() as ns:
        argv = ["ip", "netns", "exec", ns, sys.executable, str(Path(__file__).resolve()),
                "--worker", target, "--entries", str(args.entries),
                "--single-entries", str(args.single_entries), "--flows", str(args.flows),
                "--veth-packets", str(args.veth_packets), "--window", str(args.window)]  # fmt: skip
        if args.writes_in_namespace:
            argv.append("--writes-in-namespace")
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode != 0:
            return f"failed: {proc.stderr.strip()[-1500:]}"
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20000,
                        help="packets per interpreter measurement (default 20000)")
    parser.add_argument("--flows", type=int, default=1000, help="installed flows (default 1000)")
    parser.add_argument("--entries", type=int, default=20000,
                        help="entries for the 1000-per-request writes (default 20000)")
    parser.add_argument("--single-entries", type=int, default=2000,
                        help="entries for the 1-per-request writes (default 2000)")
    parser.add_argument("--veth-packets", type=int, default=20000,
                        help="packets per veth measurement (default 20000)")
    parser.add_argument("--window", type=int, default=64,
                        help="veth packets in flight at most (default 64)")
    parser.add_argument("--idle-entries", type=int, default=512_000,
                        help="timed entries for the idle-timeout sweep (default 512000)")
    parser.add_argument("--no-veth", action="store_true", help="skip the veth measurements")
    parser.add_argument("--no-bmv2", action="store_true", help="skip BMv2 even if installed")
    parser.add_argument("--writes-in-namespace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["p4ctl", "bmv2"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        report = worker(args.worker, args)
        print(json.dumps(report))
        return
    for artifact in (P4INFO, BMV2_JSON):
        if not artifact.exists():
            sys.exit(f"{artifact} is missing: the pipeline has not been compiled yet")

    print(f"flow-cache program: {BMV2_JSON.relative_to(ROOT)}; {os.cpu_count()} CPUs")
    bench_idle_sweep(args.idle_entries)
    print_rows("Software switch, packets through the interpreter (Pipeline.process)",
               bench_interpreter(args.packets, args.flows), "packets/s")  # fmt: skip
    print_rows("Software switch, packets through SoftwareSwitch.inject",
               asyncio.run(_bench_inject(args.packets, args.flows)), "packets/s")  # fmt: skip
    ours = bench_writes_software_switch(args.entries, args.single_entries)
    print_rows("Software switch, P4Runtime writes (switch in its own process)", ours,
               "entries/s")  # fmt: skip

    can_ns = os.geteuid() == 0 and shutil.which("ip") is not None
    ours_veth: list[Row] = []
    if not args.no_veth:
        if can_ns:
            report = run_in_namespace("p4ctl", args)
            if isinstance(report, str):
                print(f"\nSoftware switch over veth: {report}")
            else:
                ours_veth = [tuple(r) for r in report["veth"]]
                print_rows("Software switch (p4ctl switch), packets over veth pairs", ours_veth,
                           "packets/s")  # fmt: skip
        else:
            print("\nveth measurements skipped: need root and iproute2")

    if args.no_bmv2:
        return
    if shutil.which("simple_switch_grpc") is None:
        print("\nBMv2: simple_switch_grpc is not on PATH; no BMv2 figures")
        return
    if not can_ns:
        print("\nBMv2: needs root and iproute2 (it runs in a network namespace); no figures")
        return
    report = run_in_namespace("bmv2", args)
    if isinstance(report, str):
        print(f"\nBMv2: {report}")
        return
    print_rows("BMv2 simple_switch_grpc, P4Runtime writes", [tuple(r) for r in report["writes"]],
               "entries/s")  # fmt: skip
    if "veth" in report:
        print_rows("BMv2 simple_switch_grpc, packets over veth pairs",
                   [tuple(r) for r in report["veth"]], "packets/s")  # fmt: skip
    print("\nSide by side (goals: batched writes at least BMv2's; 5,000 packets/s or more)")
    theirs = {r[0]: rate(r[1], r[2]) for r in report["writes"] + report.get("veth", [])}
    for what, n, seconds in ours + ours_veth:
        if what in theirs:
            print(f"  {what:56} software switch {rate(n, seconds):8.0f}/s"
                  f"   BMv2 {theirs[what]:8.0f}/s")  # fmt: skip


if __name__ == "__main__":
    main()
