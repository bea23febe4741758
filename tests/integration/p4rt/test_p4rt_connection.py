"""Connection, capabilities, arbitration and mastership changes, pipeline push; clean close."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import grpc
import pytest
from p4.v1 import p4runtime_pb2
from p4rt_helpers import Target, eventually, free_port, leaked_tasks

from p4ctl.p4rt import (
    MastershipEvent,
    NotPrimaryError,
    P4RuntimeClient,
    P4RuntimeError,
    PipelineConfig,
    TableEntry,
    insert,
)


def port_vrf(port: int, vrf: int) -> TableEntry:
    return TableEntry("port_vrf", {"in_port": port}, "set_vrf", {"vrf": vrf})


async def test_capabilities_and_primary(client) -> None:
    version = await client.capabilities()
    assert version.count(".") == 2  # "1.3.0" on PI and the software switch
    assert client.is_primary and client.is_connected
    assert client.primary_election_id == (0, 10)


async def test_mastership_moves_to_the_higher_election_id_and_back(
    target: Target, flowcache: PipelineConfig
) -> None:
    events: list[MastershipEvent] = []
    low = target.client(flowcache, election_id=(0, 5))
    low.on_mastership(events.append)
    await low.connect()
    try:
        await eventually(lambda: events and events[-1].is_primary, "low becomes primary")
        high = target.client(flowcache, election_id=(0, 9))
        await high.connect()
        try:
            assert high.is_primary
            await eventually(lambda: not events[-1].is_primary, "low is told it lost primary")
            assert not low.is_primary
            assert events[-1].primary_election_id == (0, 9)
            # lost primary: writing stops on the client side
            with pytest.raises(NotPrimaryError):
                await low.write([insert(port_vrf(1, 1))])
            result = await high.write([insert(port_vrf(1, 1))])
            assert result.ok
        finally:
            await high.close()
        # the primary left: the backup is primary again and told so (it may audit now)
        await eventually(lambda: events[-1].is_primary, "low is told it is primary again")
        assert low.is_primary and events[-1].connected
        assert (await low.write([insert(port_vrf(2, 2))])).ok
    finally:
        await low.close()


async def test_a_backup_is_told_the_primary_and_cannot_write_even_raw(
    target: Target, client
) -> None:
    backup = target.client(None, election_id=(0, 3), p4info=client.p4info)
    await backup.connect()
    try:
        assert not backup.is_primary and backup.is_connected
        assert backup.primary_election_id == (0, 10)
        # bypass the client's own check: the server refuses the whole RPC
        backup._primary = True
        result = await backup.write([insert(port_vrf(3, 3))])
        assert result.statuses[0].code is grpc.StatusCode.PERMISSION_DENIED
        assert result.errors and isinstance(result.errors[0], NotPrimaryError)
    finally:
        await backup.close()


async def test_same_election_id_twice_is_refused(target: Target, client) -> None:
    twin = target.client(None, election_id=(0, 10))
    with pytest.raises(P4RuntimeError) as info:
        await twin.connect(timeout=10)
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert not twin.is_connected


async def test_roles_have_their_own_primary(target: Target, flowcache: PipelineConfig) -> None:
    if not target.roles:
        pytest.skip(f"{target.kind} ignores P4Runtime roles (PI's arbitration is per device)")
    full = target.client(flowcache, election_id=(0, 2))
    other = target.client(None, election_id=(0, 1), role="auditor")
    await full.connect()
    await other.connect()
    try:
        assert full.is_primary and other.is_primary
    finally:
        await other.close()
        await full.close()


@pytest.mark.parametrize("election_id", [-1, 1 << 128, (0, -1), (1 << 64, 0)])
def test_an_election_id_beyond_128_bits_is_refused_at_once(election_id: object) -> None:
    with pytest.raises(ValueError, match="election id"):
        P4RuntimeClient("127.0.0.1:1", 1, election_id=election_id)  # type: ignore[arg-type]


async def test_connect_to_nothing_times_out_with_a_clear_error() -> None:
    before = set(asyncio.all_tasks())
    client = P4RuntimeClient(f"127.0.0.1:{free_port()}", 1)
    with pytest.raises(P4RuntimeError, match=r"could not connect .* within 1.0 s"):
        await client.connect(timeout=1.0)
    assert leaked_tasks(before) == []


async def test_close_leaves_no_task_running(
    isolated_address: str, flowcache: PipelineConfig
) -> None:
    before = set(asyncio.all_tasks())
    client = P4RuntimeClient(isolated_address, 1, election_id=(0, 4), pipeline=flowcache)
    client.on_digest(lambda d: None)
    client.on_packet_in(lambda p: None)
    await client.connect()
    assert leaked_tasks(before)  # the session and its workers run
    assert [e async for e in client.read_table_entries("port_vrf")] == []
    assert (await client.write([insert(port_vrf(p, p)) for p in (1, 2, 3)])).ok
    # a read abandoned half-way is cancelled when its iterator is closed
    async with contextlib.aclosing(client.read_table_entries("port_vrf")) as entries:
        async for _ in entries:
            break
    await client.close()
    assert leaked_tasks(before) == []
    assert not client.is_connected and not client.is_primary
    await client.close()  # idempotent


async def test_pipeline_set_get_and_ensure(target: Target, flowcache: PipelineConfig) -> None:
    client = target.client(None, election_id=(0, 7))
    await client.connect()
    try:
        assert await client.ensure_pipeline(flowcache)  # a fresh device: pushed
        assert not await client.ensure_pipeline(flowcache)  # same cookie: left alone
        got = await client.get_pipeline()
        assert got is not None
        assert got.cookie == flowcache.cookie
        assert got.p4info is not None and got.p4info.proto == flowcache.p4info.proto
        assert got.device_config == flowcache.device_config
        cookie_only = await client.get_pipeline(
            p4runtime_pb2.GetForwardingPipelineConfigRequest.COOKIE_ONLY
        )
        assert cookie_only is not None and cookie_only.cookie == flowcache.cookie
        assert cookie_only.device_config is None
    finally:
        await client.close()


async def test_the_client_encodes_with_the_p4info_the_device_runs(
    target: Target, client, flowcache: PipelineConfig
) -> None:
    """A VERIFY changes nothing; after VERIFY_AND_SAVE writes refer to the saved config."""
    fixtures = Path(__file__).resolve().parents[1] / "switch" / "fixtures"
    other = PipelineConfig.bmv2(fixtures / "switch_test.p4info.txtpb",
                                fixtures / "switch_test.json")
    actions = p4runtime_pb2.SetForwardingPipelineConfigRequest
    await client.set_pipeline(other, actions.VERIFY)
    assert client.p4info is flowcache.p4info
    assert (await client.write([insert(port_vrf(5, 50))])).ok  # flowcache's names
    await client.set_pipeline(other, actions.VERIFY_AND_SAVE)
    assert client.p4info is other.p4info
    refused = await client.write([insert(port_vrf(6, 60))])  # no such table now
    assert [s.space for s in refused.statuses] == ["client"]
    await client.set_pipeline(other, actions.COMMIT)
    assert client.p4info is other.p4info
    running = await client.get_pipeline()
    assert running is not None and running.p4info is not None
    assert running.p4info.proto == other.p4info.proto


async def test_a_pipeline_the_switch_refuses_fails_the_connect(
    target: Target, flowcache: PipelineConfig
) -> None:
    """Writes would only fail after it: the cause is told at once."""
    if target.kind != "software":
        pytest.skip("BMv2 may not survive a P4Info that does not match its JSON")
    fixtures = Path(__file__).resolve().parents[1] / "switch" / "fixtures"
    mismatched = PipelineConfig.bmv2(fixtures / "switch_test.p4info.txtpb",
                                     flowcache.device_config)
    client = target.client(mismatched, election_id=(0, 7))
    with pytest.raises(P4RuntimeError, match=r"could not install the pipeline: .*first phase"):
        await client.connect(10)
    assert client.pipeline_error is not None


async def test_reconcile_and_commit_keeps_the_entries(
    target: Target, client, flowcache: PipelineConfig
) -> None:
    assert (await client.write([insert(port_vrf(5, 50))])).ok
    reconcile = p4runtime_pb2.SetForwardingPipelineConfigRequest.RECONCILE_AND_COMMIT
    if target.kind == "bmv2":
        # PI saves the state with a wildcard read that includes every indexed
        # counter cell, replays it as INSERTs, and counters refuse INSERT:
        # RECONCILE_AND_COMMIT fails for any program with an indexed counter.
        with pytest.raises(P4RuntimeError, match="Error when reconciling config"):
            await client.set_pipeline(flowcache, reconcile)
        return
    await client.set_pipeline(flowcache, reconcile)
    got = [e async for e in client.read_table_entries("port_vrf")]
    assert [(e.match, e.params) for e in got] == [({"in_port": 5}, {"vrf": 50})]


async def test_write_before_any_pipeline_is_no_pipeline(
    target: Target, flowcache: PipelineConfig
) -> None:
    client = target.client(None, election_id=(0, 7), p4info=flowcache.p4info)
    await client.connect()
    try:
        assert await client.get_pipeline() is None
        result = await client.write([insert(port_vrf(1, 1))])
        assert result.statuses[0].code is grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await client.close()
