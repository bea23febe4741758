"""The stream: digests acked after their handler, idle timeouts, packet-in/out, stream
errors, and reconnection after the stream drops or the switch restarts."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from p4rt_helpers import Target, eventually, tcp_frame

from p4ctl.p4rt import (
    DigestList,
    IdleTimeoutNotification,
    MastershipEvent,
    P4RuntimeClient,
    P4RuntimeError,
    PacketIn,
    PipelineConfig,
    StreamError,
    TableEntry,
)

KEY = {"vrf": 0, "src_addr": "10.0.0.1", "dst_addr": "10.0.0.2", "proto": 6,
       "src_port": 1234, "dst_port": 80}


def flow(ttl_ns: int = 0) -> TableEntry:
    return TableEntry("flow_table", KEY, "flow_forward", {"flow_id": 3, "port": 2},
                      idle_timeout_ns=ttl_ns)


async def test_digest_is_acked_only_after_its_handler(target: Target, client: P4RuntimeClient
                                                      ) -> None:
    got: list[DigestList] = []
    release = asyncio.Event()

    async def handler(digest: DigestList) -> None:
        got.append(digest)
        await release.wait()

    client.on_digest(handler, "new_flow_digest_t")
    # one message per list; a sent, unacknowledged message suppresses its duplicates
    await client.configure_digest("new_flow_digest_t", max_timeout_ns=0, max_list_size=1,
                                  ack_timeout_ns=60 * 10**9)
    frame = tcp_frame()
    await target.inject(1, frame)
    await eventually(lambda: got, "a digest list")
    assert got[0].digest == "new_flow_digest_t"
    assert got[0].data[0] == {
        "vrf": 0, "src_addr": 0x0A000001, "dst_addr": 0x0A000002, "proto": 6,
        "src_port": 1234, "dst_port": 80, "ingress_port": 1,
        "bucket_hash": got[0].data[0]["bucket_hash"],
    }
    # the handler has not finished: no ack yet, and the same data stays suppressed
    await target.inject(1, frame)
    await asyncio.sleep(0.5)
    assert client.stats.digest_acks == 0 and len(got) == 1
    release.set()
    await eventually(lambda: client.stats.digest_acks == 1, "the ack after the handler")
    await target.inject(1, frame)  # acknowledged: the same data is reported again
    await eventually(lambda: len(got) == 2, "a new list once the first was acked")


async def test_a_failing_handler_is_logged_not_acked(target: Target, client: P4RuntimeClient
                                                     ) -> None:
    calls: list[DigestList] = []

    def broken(digest: DigestList) -> None:
        calls.append(digest)
        raise RuntimeError("handler bug")

    client.on_digest(broken)
    await client.configure_digest("new_flow_digest_t", max_list_size=1)
    await target.inject(1, tcp_frame())
    await eventually(lambda: calls, "the handler ran")
    await eventually(lambda: client.stats.handler_errors == 1, "its error counted")
    assert client.stats.digest_acks == 0
    assert client.is_primary  # nothing else broke


async def test_idle_timeout_notification(target: Target, client: P4RuntimeClient) -> None:
    notes: list[IdleTimeoutNotification] = []
    client.on_idle_timeout(notes.append)
    assert (await client.insert([flow(ttl_ns=500 * 10**6)])).ok
    await eventually(lambda: notes, "an idle-timeout notification", timeout=30)
    entry = notes[0].entries[0]
    assert entry.table == "FlowIngress.flow_table"
    assert entry.match["src_port"] == 1234 and entry.idle_timeout_ns == 500 * 10**6
    assert notes[0].timestamp > 0


async def test_packet_in_with_metadata_by_name(target: Target, client: P4RuntimeClient) -> None:
    packets: list[PacketIn] = []
    client.on_packet_in(packets.append)
    hold = TableEntry("miss_policy", action="miss_to_cpu", is_default_action=True)
    assert (await client.modify([hold])).ok
    frame = tcp_frame(payload=b"hold me")
    await target.inject(3, frame)
    await eventually(lambda: packets, "a packet-in")
    assert packets[0].metadata["ingress_port"] == 3
    assert packets[0].metadata["reason"] == 1
    assert packets[0].payload == frame


async def test_packet_out_with_metadata_by_name(target: Target, client: P4RuntimeClient) -> None:
    frame = tcp_frame(payload=b"out")
    await client.send_packet_out(frame, egress_port=2, ingress_port=0, mode=1)
    assert await target.expect(2) == frame


async def test_stream_error_carries_the_offending_packet(target: Target, client: P4RuntimeClient
                                                         ) -> None:
    if target.kind != "software":
        pytest.skip("PI reports stream errors only when its server config enables them")
    errors: list[StreamError] = []
    client.on_stream_error(errors.append)
    from p4.v1 import p4runtime_pb2

    raw = p4runtime_pb2.StreamMessageRequest()
    raw.packet.payload = b"x"
    raw.packet.metadata.add(metadata_id=99, value=b"\x01")  # no such metadata
    await client._stream_send(raw)
    await eventually(lambda: errors, "a stream error")
    assert errors[0].kind == "packet_out"
    assert errors[0].canonical_code != 0
    assert errors[0].offending is not None


async def test_reconnect_after_the_stream_drops(target: Target, flowcache: PipelineConfig) -> None:
    if target.kind != "software":
        pytest.skip("dropping only the stream needs the software switch's fault injection")
    events: list[MastershipEvent] = []
    client = target.client(flowcache, election_id=(0, 10))
    client.on_mastership(events.append)
    await client.connect()
    try:
        assert (await client.insert([flow()])).ok
        target.switch.faults.drop_streams()
        await eventually(lambda: any(not e.connected for e in events), "told of the drop")
        await eventually(lambda: events[-1].reconnected and events[-1].is_primary,
                         "primary again after reconnecting")
        assert client.is_primary and client.stats.sessions == 2
        assert not events[-1].pipeline_pushed  # the switch kept its pipeline: not pushed
        assert [e async for e in client.read_table_entries("flow_table")]
    finally:
        await client.close()


async def test_switch_restart_repushes_and_the_controller_replays(
    target: Target, flowcache: PipelineConfig
) -> None:
    events: list[MastershipEvent] = []
    replayed: list[MastershipEvent] = []
    client = target.client(flowcache, election_id=(0, 10))
    installed = [flow()]

    async def replay(event: MastershipEvent) -> None:
        events.append(event)
        if event.is_primary and event.reconnected:
            assert event.pipeline_pushed
            (await client.insert(installed)).raise_on_error()
            replayed.append(event)

    client.on_mastership(replay)
    await client.connect()
    try:
        assert (await client.insert(installed)).ok
        await target.restart()
        await eventually(lambda: events[-1].reconnected and events[-1].is_primary,
                         "primary again after the restart", timeout=60)
        # the handler's own write must be acknowledged before the read
        await eventually(lambda: replayed or client.stats.handler_errors,
                         "the replay handler ran")
        assert client.stats.handler_errors == 0
        got = [e async for e in client.read_table_entries("flow_table")]
        assert [e.match["src_port"] for e in got] == [1234]
    finally:
        await client.close()


async def test_a_call_in_flight_when_the_stream_drops_fails_unavailable(
    target: Target, client: P4RuntimeClient
) -> None:
    """The session's end closes its channel under the call: an error, not a CancelledError."""
    if target.kind != "software":
        pytest.skip("a late answer and a dropped stream need the software switch's faults")
    target.switch.faults.delay(1.0, ["Write", "Read"])
    write = asyncio.create_task(client.insert([flow()]))
    read = asyncio.create_task(anext(aiter(client.read_table_entries("flow_table")), None))
    await asyncio.sleep(0.3)  # both on the wire
    target.switch.faults.drop_streams()
    await asyncio.wait({write, read}, timeout=5)
    assert not write.cancelled() and not read.cancelled()
    result = write.result()
    assert [s.code for s in result.statuses] == [grpc.StatusCode.UNAVAILABLE]
    assert "the session ended during the call" in result.statuses[0].message
    assert isinstance(read.exception(), P4RuntimeError)
    assert read.exception().code is grpc.StatusCode.UNAVAILABLE


async def test_handlers_go_on_after_a_write_the_stream_drop_cut_short(
    target: Target, flowcache: PipelineConfig
) -> None:
    """A mastership handler replays; the stream drops again during its write."""
    if target.kind != "software":
        pytest.skip("a late answer and a dropped stream need the software switch's faults")
    client = target.client(flowcache, election_id=(0, 10))
    events: list[MastershipEvent] = []
    writing = asyncio.Event()

    async def replay(event: MastershipEvent) -> None:
        events.append(event)
        if event.is_primary and event.reconnected and not writing.is_set():
            writing.set()
            await client.insert([flow()])

    client.on_mastership(replay)
    await client.connect()
    try:
        target.switch.faults.drop_streams()  # reconnect: the handler writes, late
        target.switch.faults.delay(1.0, ["Write"])
        await asyncio.wait_for(writing.wait(), 10)
        await asyncio.sleep(0.3)
        target.switch.faults.drop_streams()  # during the handler's write
        target.switch.faults.clear()
        await eventually(lambda: client.stats.sessions == 3 and client.is_primary,
                         "connected a third time")
        # the third session's event reaches the handler: its worker lives on
        await eventually(lambda: sum(e.is_primary and e.reconnected for e in events) == 2,
                         "the third session's event handled", timeout=5)
        assert client.stats.handler_errors == 0
    finally:
        await client.close()


async def test_a_list_of_an_earlier_session_is_not_acknowledged(
    target: Target, flowcache: PipelineConfig
) -> None:
    """List ids start again after a restart: the old list's ack could release another."""
    if target.kind != "software":
        pytest.skip("a restart that keeps the pipeline needs the software switch's faults")
    client = target.client(flowcache, election_id=(0, 10))
    lists: list[DigestList] = []
    client.on_digest(lists.append, "new_flow_digest_t", auto_ack=False)
    await client.connect()
    try:
        await client.configure_digest("new_flow_digest_t", max_timeout_ns=0, max_list_size=1,
                                      ack_timeout_ns=60 * 10**9)
        await target.inject(1, tcp_frame())
        await eventually(lambda: lists, "a digest list")
        await target.switch.faults.restart(keep_pipeline=True)
        await eventually(lambda: client.is_primary and client.stats.sessions == 2, "reconnected")
        await client.ack_digest(lists[0])
        assert (client.stats.digest_acks, client.stats.digest_acks_stale) == (0, 1)
    finally:
        await client.close()


@pytest.mark.parametrize("code", [grpc.StatusCode.FAILED_PRECONDITION,
                                  grpc.StatusCode.PERMISSION_DENIED])
async def test_a_session_ended_with_a_refusal_code_is_reconnected(
    target: Target, client: P4RuntimeClient, code: grpc.StatusCode
) -> None:
    """Codes that refuse a first connection (a bad device id) end a session too."""
    if target.kind != "software":
        pytest.skip("ending a stream with a chosen code needs the software switch's faults")
    target.switch.faults.drop_streams(code)
    await eventually(lambda: client.stats.sessions == 2 and client.is_primary,
                     "connected and primary again")
    assert (await client.insert([flow()])).ok


async def test_without_idle_handlers_notifications_are_only_counted(
    target: Target, client: P4RuntimeClient
) -> None:
    """Nobody to tell: the repeat filter keeps nothing (a switch reporting entries
    with a TTL too long to forget would otherwise grow it for good)."""
    assert (await client.insert([flow(ttl_ns=500 * 10**6)])).ok
    await eventually(lambda: client.stats.idle_notifications, "an idle notification",
                     timeout=30)
    assert client._idle_filter is not None and len(client._idle_filter) == 0
