"""The client end to end on a small program: the software switch's own test pipeline.

``tests/integration/switch/fixtures/switch_test.{p4,json,p4info.txtpb}`` is a
v1model program with one of everything the client handles (an exact table
of 4 entries with idle timeout and a direct counter, ternary and LPM tables,
an indexed counter, a register, a digest, packet_in/packet_out headers). The
same tests run against ``simple_switch_grpc`` where it is installed. The
flow-cache pipeline's tests (the other files here) cover the same ground on
the real program.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path

import grpc
import pytest
from p4.v1 import p4runtime_pb2
from p4rt_helpers import Target, eventually, leaked_tasks

from p4ctl.p4rt import (
    ClientOptions,
    CounterData,
    DigestList,
    ErrorKind,
    IdleTimeoutNotification,
    MastershipEvent,
    P4RuntimeClient,
    P4RuntimeError,
    PacketIn,
    PipelineConfig,
    RegisterError,
    StreamError,
    TableEntry,
    Ternary,
    delete,
    insert,
    register_backend,
)

FIXTURES = Path(__file__).resolve().parents[1] / "switch" / "fixtures"
HOST = "02:00:00:00:00:02"


@pytest.fixture(scope="module")
def small() -> PipelineConfig:
    p4info, json = FIXTURES / "switch_test.p4info.txtpb", FIXTURES / "switch_test.json"
    if not (p4info.exists() and json.exists()):
        pytest.skip("the software switch's test program is absent")
    return PipelineConfig.bmv2(p4info, json)


@pytest.fixture
async def client(target: Target, small: PipelineConfig):
    c = target.client(small, election_id=(0, 10))
    await c.connect()
    try:
        yield c
    finally:
        await c.close()


def frame(dst: str = HOST, src: str = "02:00:00:00:00:01", size: int = 60) -> bytes:
    raw = bytes.fromhex(dst.replace(":", "") + src.replace(":", "") + "0800")
    return raw + b"\x00" * (size - len(raw))


def l2(dst: str | int, action: str = "forward", **params: int) -> TableEntry:
    return TableEntry("l2", {"dst_addr": dst}, action, params)


async def test_writes_per_update_results_and_full_table(client: P4RuntimeClient) -> None:
    first = await client.insert([l2(HOST, port=2), l2(5, "to_cpu")])
    assert first.ok and first.requests == 1
    missing = TableEntry("l2", {"dst_addr": 7})
    mixed = await client.write([insert(l2(5, "to_cpu")), insert(l2(6, "drop")), delete(missing)])
    assert [s.kind for s in mixed.statuses] == [
        ErrorKind.ALREADY_EXISTS, ErrorKind.OK, ErrorKind.NOT_FOUND,
    ]
    # the table holds 4: the 5th answers "table full" in whichever form the target uses
    full = await client.insert([l2(8, "drop"), l2(9, "drop")])
    assert full.statuses[0].ok and full.statuses[1].table_full
    got = [e.match["hdr.ethernet.dst_addr"] async for e in client.read_table_entries("l2")]
    assert sorted(got) == [5, 6, 8, 0x020000000002]


async def test_ternary_and_lpm_round_trip(client: P4RuntimeClient) -> None:
    acl = TableEntry("acl", {"ether_type": Ternary(0x0800, 0xFF00)}, "drop", priority=5)
    route = TableEntry("route", {"dst_addr": (0x020000000000, 24)}, "forward", {"port": 1})
    assert (await client.insert([acl, route])).ok
    read_acl = [e async for e in client.read_table_entries("acl")]
    assert read_acl[0].match == {"hdr.ethernet.ether_type": Ternary(0x0800, 0xFF00)}
    assert read_acl[0].priority == 5
    read_route = [e async for e in client.read_table_entries("route")]
    assert read_route[0].match["hdr.ethernet.dst_addr"].prefix_len == 24


async def test_counters_and_idle_time(target: Target, client: P4RuntimeClient) -> None:
    entry = TableEntry("l2", {"dst_addr": HOST}, "forward", {"port": 2},
                       idle_timeout_ns=60 * 10**9)
    assert (await client.insert([entry])).ok
    for _ in range(2):
        await target.inject(1, frame())
        await target.expect(2)
    [got] = [e async for e in client.read_table_entries("l2", counter_data=True,
                                                         time_since_last_hit=True)]
    assert got.counter_data == CounterData(byte_count=120, packet_count=2)
    assert got.time_since_last_hit_ns is not None and got.time_since_last_hit_ns < 60 * 10**9
    [direct] = [d async for d in client.read_direct_counters("l2", {"dst_addr": HOST})]
    assert direct.data == CounterData(120, 2)
    [cell] = [c async for c in client.read_counters("port_counter", 1)]
    assert cell.data == CounterData(120, 2)


async def test_digest_acked_after_handler(target: Target, client: P4RuntimeClient) -> None:
    got: list[DigestList] = []
    release = asyncio.Event()

    async def handler(digest: DigestList) -> None:
        got.append(digest)
        await release.wait()

    client.on_digest(handler, "learn_t")
    await client.configure_digest("learn_t", max_list_size=1, ack_timeout_ns=60 * 10**9)
    await target.inject(1, frame(dst="02:00:00:00:00:09"))
    await eventually(lambda: got, "a digest list")
    assert got[0].data == [{"src_addr": 0x020000000001, "ingress_port": 1}]
    await target.inject(1, frame(dst="02:00:00:00:00:09"))  # same data: suppressed until acked
    await asyncio.sleep(0.3)
    assert client.stats.digest_acks == 0 and len(got) == 1
    release.set()
    await eventually(lambda: client.stats.digest_acks == 1, "the ack after the handler")
    await target.inject(1, frame(dst="02:00:00:00:00:09"))
    await eventually(lambda: len(got) == 2, "the same data again once acked")


async def test_packet_in_and_out(target: Target, client: P4RuntimeClient) -> None:
    packets: list[PacketIn] = []
    client.on_packet_in(packets.append)
    assert (await client.insert([l2(5, "to_cpu")])).ok
    sent = frame(dst="00:00:00:00:00:05")
    await target.inject(3, sent)
    await eventually(lambda: packets, "a packet-in")
    assert packets[0].metadata["ingress_port"] == 3 and packets[0].payload == sent
    await client.send_packet_out(b"\xff" * 20, egress_port=2)
    assert await target.expect(2) == b"\xff" * 20


async def test_idle_timeout_once_per_ttl(target: Target, client: P4RuntimeClient) -> None:
    notes: list[IdleTimeoutNotification] = []
    client.on_idle_timeout(notes.append)
    ttl = 500 * 10**6
    assert (await client.insert([TableEntry("l2", {"dst_addr": HOST}, "forward", {"port": 2},
                                            idle_timeout_ns=ttl)])).ok
    await eventually(lambda: len(notes) >= 2, "two idle-timeout notifications", timeout=30)
    assert notes[0].entries[0].idle_timeout_ns == ttl
    assert notes[0].entries[0].match == {"hdr.ethernet.dst_addr": 0x020000000002}
    # delivered notifications of one entry are at least 90 % of a TTL apart
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(notes)]
    assert all(g >= 0.9 * ttl - 50 * 10**6 for g in gaps), gaps


async def test_registers_both_backends(target: Target, client: P4RuntimeClient) -> None:
    kinds = ["thrift"] + (["p4runtime"] if target.p4runtime_registers else [])
    for kind in kinds:
        regs = register_backend(kind, client=client, thrift_address=target.thrift_address,
                                p4info=client.p4info)
        try:
            await regs.write("seen", 2, 77)
            assert await regs.read("seen", 2) == 77
            await regs.write_range("seen", 4, 6, 9)
            values = await regs.read_all("seen")
            assert len(values) == 16 and values[4:7] == [9, 9, 0]
            with pytest.raises(RegisterError, match="seen"):
                await regs.read("seen", 16)
            with pytest.raises(RegisterError, match="bit<32>"):
                await regs.write("seen", 0, 1 << 32)
        finally:
            await regs.close()


async def test_mastership_and_replay_after_restart(target: Target, small: PipelineConfig) -> None:
    events: list[MastershipEvent] = []
    client = target.client(small, election_id=(0, 10))
    installed = [l2(HOST, port=2)]
    replayed = asyncio.Event()

    async def on_change(event: MastershipEvent) -> None:
        events.append(event)
        if event.is_primary and event.reconnected:
            (await client.insert(installed)).raise_on_error()
            replayed.set()

    client.on_mastership(on_change)
    await client.connect()
    try:
        assert events[0].pipeline_pushed or events[0].is_primary
        assert (await client.insert(installed)).ok
        other = target.client(None, election_id=(0, 20))
        await other.connect()
        await eventually(lambda: not client.is_primary, "told it lost primary")
        await other.close()
        await eventually(lambda: client.is_primary, "primary again")
        await target.restart()
        await eventually(lambda: events[-1].reconnected and events[-1].is_primary,
                         "primary after the restart", timeout=60)
        assert events[-1].pipeline_pushed
        await eventually(replayed.is_set, "the replay handler ran")
        got = [e async for e in client.read_table_entries("l2")]
        assert [e.params for e in got] == [{"port": 2}]
        assert client.stats.handler_errors == 0
    finally:
        await client.close()


async def test_backup_write_is_refused_by_the_server(target: Target, client: P4RuntimeClient
                                                     ) -> None:
    backup = target.client(None, election_id=(0, 3), p4info=client.p4info)
    await backup.connect()
    try:
        assert not backup.is_primary and backup.primary_election_id == (0, 10)
        backup._primary = True  # bypass the client's own refusal: the server must refuse
        result = await backup.write([insert(l2(HOST, port=1))])
        assert result.statuses[0].code is grpc.StatusCode.PERMISSION_DENIED
    finally:
        await backup.close()


async def test_wrong_device_id_fails_at_once(target: Target) -> None:
    if target.kind == "bmv2":
        pytest.skip("PI creates a device for any id it is asked about")
    stranger = P4RuntimeClient(target.grpc_address, 99)
    with pytest.raises(P4RuntimeError) as info:
        await stranger.connect(timeout=60)
    assert info.value.code is grpc.StatusCode.NOT_FOUND


async def test_stream_error_with_the_offending_packet(target: Target, client: P4RuntimeClient
                                                      ) -> None:
    if target.kind == "bmv2":
        pytest.skip("PI reports stream errors only when its server configuration enables them")
    errors: list[StreamError] = []
    client.on_stream_error(errors.append)
    raw = p4runtime_pb2.StreamMessageRequest()
    raw.packet.payload = b"\xff" * 20
    raw.packet.metadata.add(metadata_id=99, value=b"\x01")  # not in the P4Info
    await client._stream_send(raw)
    await eventually(lambda: errors, "a stream error")
    assert errors[0].kind == "packet_out" and errors[0].canonical_code != 0
    assert errors[0].offending.payload == b"\xff" * 20
    assert client.stats.stream_errors == 1 and client.is_primary


async def test_close_leaves_nothing_running(isolated_address: str, small: PipelineConfig) -> None:
    before = set(asyncio.all_tasks())
    client = P4RuntimeClient(isolated_address, 1, pipeline=small)
    client.on_digest(lambda d: None)
    client.on_idle_timeout(lambda n: None)
    await client.connect()
    assert leaked_tasks(before)  # its session and workers
    assert (await client.insert([l2(n, "drop") for n in range(3)])).ok
    async with contextlib.aclosing(client.read_table_entries("l2")) as entries:
        async for _ in entries:
            break  # abandoned half-way
    await client.close()
    assert leaked_tasks(before) == []


async def test_batches_split_by_count_and_by_size(target: Target, small: PipelineConfig) -> None:
    client = target.client(small, election_id=(0, 10),
                           options=ClientOptions(max_request_bytes=200))
    await client.connect()
    try:
        acl = [TableEntry("acl", {"ether_type": Ternary(t, 0xFFFF)}, "drop", priority=1)
               for t in range(8)]
        by_size = await client.insert(acl)
        assert by_size.ok and by_size.requests > 1
        assert (await client.delete(acl)).ok
        by_count = await client.write([insert(e) for e in acl], max_updates_per_request=3)
        assert by_count.ok and by_count.requests == 3
        assert len([e async for e in client.read_table_entries("acl")]) == 8
    finally:
        await client.close()
