"""Batched writes: many updates per request, split under the limits, per-update results.

A full table is tested on the small program (test_p4rt_small_program.py): the
flow-cache tables cannot be filled in a test (the flow table holds 512,000
entries, and port_vrf holds every 9-bit port).
"""

from __future__ import annotations

import grpc
import pytest
from p4.v1 import p4runtime_pb2
from p4rt_helpers import Target

from p4ctl.p4rt import (
    ErrorKind,
    P4RuntimeClient,
    TableEntry,
    Update,
    UpdateType,
    delete,
    insert,
    modify,
)


def flow(i: int, port: int = 1, ttl_ns: int = 0) -> TableEntry:
    return TableEntry(
        "flow_table",
        {"vrf": 1, "src_addr": 0x0A000000 + i, "dst_addr": "10.1.0.1", "proto": 6,
         "src_port": 1000 + (i % 50000), "dst_port": 80},
        "flow_forward",
        {"flow_id": i, "port": port},
        idle_timeout_ns=ttl_ns,
    )


def port_vrf(port: int, vrf: int) -> TableEntry:
    return TableEntry("port_vrf", {"in_port": port}, "set_vrf", {"vrf": vrf})


async def count(client: P4RuntimeClient, table: str) -> int:
    return sum([1 async for _ in client.read_table_entries(table)])


async def ports_by_flow(client: P4RuntimeClient) -> dict[int, int]:
    return {
        e.params["flow_id"]: e.params["port"] async for e in client.read_table_entries("flow_table")
    }


async def test_a_batch_in_one_request_and_read_back(client: P4RuntimeClient) -> None:
    entries = [flow(i, ttl_ns=10 * 10**9) for i in range(500)]
    result = await client.insert(entries)
    assert result.ok and result.requests == 1 and len(result) == 500
    got = {e.params["flow_id"]: e async for e in client.read_table_entries("flow_table")}
    assert sorted(got) == list(range(500))
    assert got[7].match["src_addr"] == 0x0A000007
    assert got[7].idle_timeout_ns == 10 * 10**9  # read-write symmetry of the TTL


async def test_requests_are_split_by_size_and_by_count(target: Target, flowcache) -> None:
    from p4ctl.p4rt import ClientOptions

    small = ClientOptions(max_request_bytes=4000, backoff_initial=0.05)
    client = target.client(flowcache, election_id=(0, 10), options=small)
    await client.connect()
    try:
        result = await client.insert([flow(i) for i in range(200)])
        assert result.ok and result.requests > 1
        sizes = []
        # every request stayed under the limit: rebuild them as the client did
        encoded = [(i, insert(flow(i)).to_proto(client.p4info).SerializeToString())
                   for i in range(200)]
        for chunk in client._chunks(encoded, 10**9, 4000):
            req = p4runtime_pb2.WriteRequest(
                device_id=1, updates=[p4runtime_pb2.Update.FromString(u) for _, u in chunk])
            req.election_id.low = 10
            sizes.append(req.ByteSize())
        assert len(sizes) == result.requests and max(sizes) <= 4000
        by_count = await client.delete([flow(i) for i in range(200)])
        assert by_count.ok
        again = await client.write([insert(flow(i)) for i in range(50)], max_updates_per_request=7)
        assert again.ok and again.requests == 8
        assert await count(client, "flow_table") == 50
    finally:
        await client.close()


async def test_an_atomic_write_is_one_request_or_none(client: P4RuntimeClient) -> None:
    """Atomicity is a request's: such a write is never split, nor sent in part."""
    rollback = p4runtime_pb2.WriteRequest.ROLLBACK_ON_ERROR
    result = await client.write([insert(flow(i)) for i in range(5)],
                                max_updates_per_request=2, atomicity=rollback)
    assert result.requests == 1
    # PI (and so the software switch) implements CONTINUE_ON_ERROR only
    assert [s.code for s in result.statuses] == [grpc.StatusCode.UNIMPLEMENTED] * 5
    unencodable = insert(TableEntry("flow_table", {"vrf": 70000}, "flow_drop", {"flow_id": 1}))
    result = await client.write([insert(flow(1)), unencodable], atomicity=rollback)
    assert result.requests == 0
    assert [s.kind for s in result.statuses] == [ErrorKind.NOT_SENT, ErrorKind.INVALID]


async def test_one_rejected_update_does_not_hide_the_others(client: P4RuntimeClient) -> None:
    assert (await client.insert([flow(1)])).ok
    bad_table = p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(table_id=0x02FFFFFF))
    updates = [
        insert(flow(1)),                     # duplicate
        insert(flow(2)),                     # fine
        delete(flow(3)),                     # not there
        Update(UpdateType.INSERT, bad_table),  # an id the P4Info does not have
        modify(flow(1, port=4)),             # fine
        insert(TableEntry("flow_table", {"vrf": 70000}, "flow_drop", {"flow_id": 1})),  # bad value
    ]
    result = await client.write(updates)
    codes = [s.code for s in result.statuses]
    assert codes[0] is grpc.StatusCode.ALREADY_EXISTS
    assert codes[1] is grpc.StatusCode.OK
    assert codes[2] is grpc.StatusCode.NOT_FOUND
    assert result.statuses[3].kind is ErrorKind.INVALID or codes[3] is grpc.StatusCode.NOT_FOUND
    assert codes[4] is grpc.StatusCode.OK
    # refused by the client before sending: canonical encoding is impossible
    assert result.statuses[5].kind is ErrorKind.INVALID and result.statuses[5].space == "client"
    assert "does not fit in bit<16>" in result.statuses[5].message
    assert [i for i, _, _ in result.failed()] == [0, 2, 3, 5]
    assert await ports_by_flow(client) == {1: 4, 2: 1}


async def test_modify_delete_and_default_entry(client: P4RuntimeClient) -> None:
    assert (await client.insert([flow(i) for i in range(3)])).ok
    assert (await client.modify([flow(1, port=9)])).ok
    assert (await client.delete([flow(0)])).ok
    assert await ports_by_flow(client) == {1: 9, 2: 1}
    default = TableEntry("miss_policy", action="miss_to_cpu", is_default_action=True)
    assert (await client.modify([default])).ok
    assert [e async for e in client.read_table_entries("miss_policy")] == []  # not in wildcards
    read = [e async for e in client.read_table_entries("miss_policy", default_entry=True)]
    assert [(e.is_default_action, e.action) for e in read] == [(True, "FlowIngress.miss_to_cpu")]


async def test_rejected_requests_stop_the_rest(target: Target, client: P4RuntimeClient) -> None:
    if target.kind != "software":
        pytest.skip("needs the software switch's fault injection")
    target.switch.faults.reject_writes(1, grpc.StatusCode.UNAVAILABLE)
    result = await client.write([insert(flow(i)) for i in range(30)], max_updates_per_request=10)
    assert result.requests == 1
    assert {s.code for s in result.statuses[:10]} == {grpc.StatusCode.UNAVAILABLE}
    assert {s.kind for s in result.statuses[10:]} == {ErrorKind.NOT_SENT}
    assert await count(client, "flow_table") == 0
    assert (await client.write([insert(flow(i)) for i in range(30)])).ok


async def test_serialized_updates_travel_with_named_ones(client: P4RuntimeClient) -> None:
    """Updates given as bytes (the flow hot path's form) go in the same requests, in order."""
    wire = [insert(flow(i)).to_proto(client.p4info).SerializeToString() for i in range(3)]
    result = await client.write([wire[0], insert(flow(5)), wire[1], wire[0], wire[2]])
    assert result.requests == 1
    assert [s.code for s in result.statuses] == [grpc.StatusCode.OK] * 3 + [
        grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.OK]
    assert await ports_by_flow(client) == {0: 1, 1: 1, 2: 1, 5: 1}

    # a serialized delete makes the idle filter forget the entry, as a named one does
    idle_filter = client._idle_filter
    assert idle_filter is not None
    gone = delete(flow(1)).to_proto(client.p4info)
    idle_filter.admit(gone.entity.table_entry)
    idle_filter.admit(insert(flow(2)).to_proto(client.p4info).entity.table_entry)
    assert len(idle_filter) == 2
    assert (await client.write([gone.SerializeToString(), wire[2]])).statuses[1].code is (
        grpc.StatusCode.ALREADY_EXISTS)
    assert len(idle_filter) == 1  # the insert of flow 2 did not reset its timer
    assert await ports_by_flow(client) == {0: 1, 2: 1, 5: 1}
