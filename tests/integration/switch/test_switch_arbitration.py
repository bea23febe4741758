"""StreamChannel arbitration and who may write (PI's pi_server.cpp rules)."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2
from switch_helpers import Client, l2_entry, rpc_error

from p4ctl.switch.arbitration import MAX_CONNECTIONS


def _eid(msg) -> int:
    return (msg.arbitration.election_id.high << 64) | msg.arbitration.election_id.low


async def test_first_stream_is_primary(software_switch) -> None:
    async with Client.of(software_switch) as c:
        s = c.stream()
        s.arbitrate(5)
        msg = await s.recv()
        assert msg.arbitration.device_id == 1
        assert msg.arbitration.status.code == code_pb2.OK
        assert _eid(msg) == 5


async def test_backup_is_told_alone_with_primary_election_id(software_switch) -> None:
    async with Client.of(software_switch) as c:
        primary = await c.primary(10)
        backup = c.stream()
        backup.arbitrate(3)
        msg = await backup.recv()
        assert msg.arbitration.status.code == code_pb2.ALREADY_EXISTS
        assert _eid(msg) == 10
        assert await primary.nothing()


async def test_higher_election_id_takes_over_and_everyone_hears(software_switch) -> None:
    async with Client.of(software_switch) as c:
        old = await c.primary(10)
        new = c.stream()
        new.arbitrate(20)
        m_new = await new.recv()
        m_old = await old.recv()
        assert m_new.arbitration.status.code == code_pb2.OK
        assert m_old.arbitration.status.code == code_pb2.ALREADY_EXISTS
        assert _eid(m_old) == _eid(m_new) == 20


async def test_duplicate_election_id_ends_the_stream_invalid_argument(software_switch) -> None:
    async with Client.of(software_switch) as c:
        await c.primary(7)
        dup = c.stream()
        dup.arbitrate(7)
        assert await dup.status() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_device_id_is_not_found(software_switch) -> None:
    async with Client.of(software_switch) as c:
        s = c.stream()
        s.arbitrate(1, device_id=99)
        assert await s.status() == grpc.StatusCode.NOT_FOUND


async def test_device_id_change_on_a_live_stream_is_failed_precondition(software_switch) -> None:
    async with Client.of(software_switch) as c:
        s = await c.primary(1)
        s.arbitrate(1, device_id=2)
        assert await s.status() == grpc.StatusCode.FAILED_PRECONDITION


async def test_role_change_on_a_live_stream_is_failed_precondition(software_switch) -> None:
    async with Client.of(software_switch) as c:
        s = await c.primary(1)
        s.arbitrate(1, role="other")
        assert await s.status() == grpc.StatusCode.FAILED_PRECONDITION


async def test_role_config_is_refused(software_switch) -> None:
    from p4.v1 import p4runtime_pb2 as p4r

    async with Client.of(software_switch) as c:
        s = c.stream()
        arb = p4r.MasterArbitrationUpdate(device_id=1)
        arb.election_id.low = 1
        arb.role.name = "sdn"
        arb.role.config.Pack(p4r.Uint128(low=1))
        s.send(p4r.StreamMessageRequest(arbitration=arb))
        assert await s.status() == grpc.StatusCode.INVALID_ARGUMENT


async def test_resending_the_same_election_id_gets_no_answer(software_switch) -> None:
    """PI's update_connection returns early when the id does not change."""
    async with Client.of(software_switch) as c:
        s = await c.primary(4)
        s.arbitrate(4)
        assert await s.nothing()


async def test_primary_downgrade_notifies_all(software_switch) -> None:
    async with Client.of(software_switch) as c:
        a = await c.primary(10)
        b = c.stream()
        b.arbitrate(5)
        assert (await b.recv()).arbitration.status.code == code_pb2.ALREADY_EXISTS
        a.arbitrate(1)  # a steps down below b
        ma, mb = await a.recv(), await b.recv()
        assert ma.arbitration.status.code == code_pb2.ALREADY_EXISTS
        assert mb.arbitration.status.code == code_pb2.OK
        assert _eid(ma) == _eid(mb) == 5


async def test_backup_becomes_primary_when_primary_leaves(software_switch) -> None:
    """PI forgets the election ids of gone streams: the lower id becomes primary."""
    async with Client.of(software_switch) as c:
        a = await c.primary(10)
        b = c.stream()
        b.arbitrate(5)
        await b.recv()
        a.close()
        msg = await b.recv()
        assert msg.arbitration.status.code == code_pb2.OK
        assert _eid(msg) == 5


async def test_roles_have_separate_primaries(software_switch) -> None:
    async with Client.of(software_switch) as c:
        await c.primary(10)
        other = c.stream()
        other.arbitrate(1, role="monitor")
        msg = await other.recv()
        assert msg.arbitration.status.code == code_pb2.OK
        assert msg.arbitration.role.name == "monitor"


async def test_too_many_streams_is_resource_exhausted(software_switch) -> None:
    async with Client.of(software_switch) as c:
        for i in range(MAX_CONNECTIONS):
            s = c.stream()
            s.arbitrate(i + 1)
            await s.recv()
        extra = c.stream()
        extra.arbitrate(1000)
        assert await extra.status() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_only_the_primary_writes(loaded_switch) -> None:
    async with Client.of(loaded_switch) as c:
        await c.primary(10)
        backup = c.stream()
        backup.arbitrate(5)
        await backup.recv()
        e = await rpc_error(c.insert(l2_entry(1), election_id=5))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED
        e = await rpc_error(c.insert(l2_entry(1), election_id=None))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED
        await c.insert(l2_entry(1), election_id=10)
        # a backup may read
        assert len(await c.read_tables()) == 1


async def test_without_streams_only_writes_without_election_id_pass(loaded_switch) -> None:
    """PI accepts election-id-less writes while no stream is open (debug tools)."""
    async with Client.of(loaded_switch) as c:
        e = await rpc_error(c.insert(l2_entry(1), election_id=3))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED
        await c.insert(l2_entry(1), election_id=None)


async def test_write_for_another_device_is_not_found(loaded_switch) -> None:
    async with Client.of(loaded_switch) as c:
        e = await rpc_error(c.write(election_id=None, device_id=9))
        assert e.code() == grpc.StatusCode.NOT_FOUND
        e = await rpc_error(c.read(device_id=9))
        assert e.code() == grpc.StatusCode.NOT_FOUND


async def test_capabilities(software_switch) -> None:
    from p4.v1 import p4runtime_pb2 as p4r

    async with Client.of(software_switch) as c:
        caps = await c.stub.Capabilities(p4r.CapabilitiesRequest())
        assert caps.p4runtime_api_version == "1.3.0"
