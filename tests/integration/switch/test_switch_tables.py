"""Table entries: Write codes and messages (as PI/BMv2 answer them) and Read."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import (
    ACL,
    DELETE,
    DEVICE_ID,
    DROP,
    FORWARD,
    INSERT,
    L2,
    LEARN,
    MODIFY,
    NO_ACTION,
    PORT_COUNTER,
    ROUTE,
    TO_CPU,
    Client,
    acl_entry,
    canon,
    l2_entry,
    mac,
    route_entry,
    rpc_error,
    update,
    write_errors,
)

from p4ctl.p4rt.wire import field_number, len_field, varint_field


async def one_error(c: Client, upd: p4r.Update) -> p4r.Error:
    e = await rpc_error(c.write(upd))
    assert e.code() == grpc.StatusCode.UNKNOWN
    errors = write_errors(e)
    assert len(errors) == 1
    return errors[0]


def ins(te: p4r.TableEntry) -> p4r.Update:
    return update(INSERT, table_entry=te)


async def test_insert_read_modify_delete(c: Client) -> None:
    await c.insert(l2_entry(0x0A, port=2, controller_metadata=5, metadata=b"cookie"))
    [te] = await c.read_tables(L2)
    assert te.match[0].exact.value == canon(0x0A)
    assert te.action.action.action_id == FORWARD
    assert te.action.action.params[0].value == b"\x02"
    assert te.controller_metadata == 5 and te.metadata == b"cookie"
    await c.write(update(MODIFY, table_entry=l2_entry(0x0A, DROP)))
    [te] = await c.read_tables(L2)
    assert te.action.action.action_id == DROP and not te.action.action.params
    await c.write(update(DELETE, table_entry=l2_entry(0x0A, DROP)))
    assert await c.read_tables(L2) == []


async def test_duplicate_insert_is_already_exists(c: Client) -> None:
    await c.insert(l2_entry(1))
    err = await one_error(c, ins(l2_entry(1, DROP)))
    assert err.canonical_code == code_pb2.ALREADY_EXISTS


async def test_modify_or_delete_of_a_missing_entry_is_not_found(c: Client) -> None:
    for kind in (MODIFY, DELETE):
        err = await one_error(c, update(kind, table_entry=l2_entry(0x77)))
        assert err.canonical_code == code_pb2.NOT_FOUND
        assert err.message == "Cannot find match entry"


async def test_full_table_is_unknown_as_on_bmv2(c: Client) -> None:
    """The l2 table has size 4; BMv2 reports the fifth insert as a target error."""
    await c.insert(*(l2_entry(i) for i in range(1, 5)))
    err = await one_error(c, ins(l2_entry(5)))
    assert err.canonical_code == code_pb2.UNKNOWN
    assert err.message == "Error when adding match entry to target"


async def test_batch_errors_come_per_update_in_order(c: Client) -> None:
    e = await rpc_error(c.write(
        ins(l2_entry(1)), ins(l2_entry(1)), ins(l2_entry(2)),
        update(DELETE, table_entry=l2_entry(9)),
    ))
    errors = write_errors(e)
    assert [x.canonical_code for x in errors] == [
        code_pb2.OK, code_pb2.ALREADY_EXISTS, code_pb2.OK, code_pb2.NOT_FOUND,
    ]
    assert len(await c.read_tables(L2)) == 2  # the good ones went in


async def test_only_continue_on_error_batches(c: Client) -> None:
    for atomicity in (p4r.WriteRequest.ROLLBACK_ON_ERROR, p4r.WriteRequest.DATAPLANE_ATOMIC):
        e = await rpc_error(c.write(ins(l2_entry(1)), atomicity=atomicity))
        assert e.code() == grpc.StatusCode.UNIMPLEMENTED
    assert await c.read_tables(L2) == []


async def test_a_request_that_does_not_parse_changes_nothing(c: Client) -> None:
    """Refused whole, as when the gRPC layer parsed requests: even its plain first update."""
    request = p4r.WriteRequest(device_id=DEVICE_ID, updates=[ins(l2_entry(1))])
    request.election_id.low = 1
    data = request.SerializeToString()
    updates = field_number(p4r.WriteRequest.DESCRIPTOR, "updates")
    not_an_entity = varint_field(1, p4r.Update.INSERT) + len_field(2, b"\x12")
    write = c.channel.unary_unary("/p4.v1.P4Runtime/Write")  # bytes in, bytes out
    for raw in (data + len_field(updates, not_an_entity), data[:-1]):
        e = await rpc_error(write(raw))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "cannot parse the WriteRequest" in e.details()
    assert await c.read_tables(L2) == []
    await write(data)
    assert len(await c.read_tables(L2)) == 1


@pytest.mark.parametrize("method,streaming", [
    ("Read", True), ("SetForwardingPipelineConfig", False),
    ("GetForwardingPipelineConfig", False), ("Capabilities", False)])
async def test_every_request_that_does_not_parse_is_invalid_argument(
    c: Client, method: str, streaming: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """As Write answers one; left to gRPC's parser it was UNKNOWN and a logged error."""
    caplog.set_level(logging.ERROR)
    call = (c.channel.unary_stream if streaming else c.channel.unary_unary)(
        f"/p4.v1.P4Runtime/{method}")
    cut_short = b"\x08\x01\x01"  # device id 1, then a tag with nothing after it

    async def answer() -> object:
        return [r async for r in call(cut_short)] if streaming else await call(cut_short)

    e = await rpc_error(answer())
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.details().startswith("cannot parse the ")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(await c.read_tables(L2)) == 0  # the switch answers as before


async def test_a_stream_message_that_does_not_parse_ends_the_stream_with_the_reason(
    c: Client,
) -> None:
    arbitration = p4r.StreamMessageRequest()
    arbitration.arbitration.device_id = DEVICE_ID
    arbitration.arbitration.election_id.low = 5
    sent = asyncio.Event()

    async def requests() -> AsyncIterator[bytes]:
        yield arbitration.SerializeToString()
        yield b"\x0a\x05\x01"  # a packet-out 5 bytes long, cut after one
        sent.set()
        await asyncio.sleep(30)  # the switch, not the end of this stream, must end it

    call = c.channel.stream_stream("/p4.v1.P4Runtime/StreamChannel")(requests())
    answers = []
    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for answer in call:  # bytes in, bytes out
            answers.append(p4r.StreamMessageResponse.FromString(answer))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot parse the StreamMessageRequest" in e.value.details()
    assert [a.WhichOneof("update") for a in answers] == ["arbitration"]
    assert sent.is_set()


@pytest.mark.parametrize("table_id", [0, 12345, 0x02000099, FORWARD])
async def test_bad_table_id_is_invalid_p4_id(c: Client, table_id: int) -> None:
    te = l2_entry(1)
    te.table_id = table_id
    err = await one_error(c, ins(te))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    assert err.message == "Invalid P4 id"


async def test_bad_action_id_and_action_not_in_table(c: Client) -> None:
    te = l2_entry(1, action=0x01000099, port=None)
    err = await one_error(c, ins(te))
    assert (err.canonical_code, err.message) == (code_pb2.INVALID_ARGUMENT, "Invalid P4 id")
    te = l2_entry(1, action=NO_ACTION, port=None)
    err = await one_error(c, ins(te))
    assert (err.canonical_code, err.message) == (code_pb2.INVALID_ARGUMENT,
                                                 "Invalid action for table")


async def test_action_params_are_checked(c: Client) -> None:
    te = l2_entry(1)
    te.action.action.params[0].value = b"\x02\x00"  # 512 does not fit 9 bits
    err = await one_error(c, ins(te))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    te = l2_entry(1)
    del te.action.action.params[:]
    err = await one_error(c, ins(te))
    assert err.message == "Unexpected number of action parameters"
    te = l2_entry(1)
    te.action.action.params[0].param_id = 7
    err = await one_error(c, ins(te))
    assert err.message == "Unknown action parameter"


async def test_padded_values_are_accepted_and_read_back_canonical(c: Client) -> None:
    te = l2_entry(0x0102)
    te.action.action.params[0].value = b"\x00\x00\x03"
    await c.insert(te)
    [got] = await c.read_tables(L2)
    assert got.match[0].exact.value == b"\x01\x02"
    assert got.action.action.params[0].value == b"\x03"


async def test_too_wide_match_value_is_invalid_argument(c: Client) -> None:
    te = l2_entry(0)
    te.match[0].exact.value = b"\x01" + mac(0)  # 49 bits
    err = await one_error(c, ins(te))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    assert "does not fit within 48 bits" in err.message


async def test_match_key_shape_errors(c: Client) -> None:
    te = p4r.TableEntry(table_id=L2)
    te.action.action.action_id = DROP
    err = await one_error(c, ins(te))
    assert err.message == "Missing non-ternary field in match key"
    te = l2_entry(1, DROP)
    te.match[0].field_id = 2  # the exact field 1 is then missing
    err = await one_error(c, ins(te))
    assert err.message == "Missing non-ternary field in match key"
    te = acl_entry(0x0800, 0xFFFF, 1)
    te.match[0].field_id = 2  # the ternary field 1 may be missing; 2 is unknown
    err = await one_error(c, ins(te))
    assert err.message == "Unknown field in match key"
    te = l2_entry(1, DROP)
    te.match.add(field_id=1).exact.value = b"\x01"
    err = await one_error(c, ins(te))
    assert err.message == "Too many fields in match key"
    te = l2_entry(1, DROP)
    te.match[0].ClearField("exact")
    te.match[0].lpm.value = b"\x01"
    te.match[0].lpm.prefix_len = 48
    err = await one_error(c, ins(te))
    assert err.message == "Invalid match type"


async def test_priority_rules(c: Client) -> None:
    err = await one_error(c, ins(acl_entry(0x0800, 0xFFFF, priority=0)))
    assert err.message == "Zero priority for ternary match"
    te = l2_entry(1)
    te.priority = 3
    err = await one_error(c, ins(te))
    assert err.message == "Non-zero priority for non-ternary match"
    await c.insert(acl_entry(0x0800, 0xFFFF, priority=10), acl_entry(0x0800, 0xFFFF, priority=20))
    got = await c.read_tables(ACL)
    assert sorted(t.priority for t in got) == [10, 20]


async def test_ternary_rules(c: Client) -> None:
    err = await one_error(c, ins(acl_entry(0x0800, 0, priority=1)))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    assert "don't care" in err.message
    err = await one_error(c, ins(acl_entry(0x0801, 0xFF00, priority=1)))
    assert err.message == "Invalid ternary value, make sure value & mask == value"
    # a missing ternary field is the don't-care entry, and reads back missing
    te = p4r.TableEntry(table_id=ACL, priority=5)
    te.action.action.action_id = DROP
    await c.insert(te)
    [got] = await c.read_tables(ACL)
    assert len(got.match) == 0 and got.priority == 5


async def test_lpm_rules(c: Client) -> None:
    err = await one_error(c, ins(route_entry(0x0A0000000000, 0)))
    assert "don't care" in err.message
    err = await one_error(c, ins(route_entry(0x0A0000000001, 8)))
    assert err.message == "Invalid LPM value, incorrect number of trailing zeros"
    err = await one_error(c, ins(route_entry(0x0A0000000000, 49)))
    assert err.message == "Prefix length cannot be > bitwidth"
    await c.insert(route_entry(0x0A0000000000, 8))
    [got] = await c.read_tables(ROUTE)
    assert got.match[0].lpm.prefix_len == 8
    assert got.match[0].lpm.value == canon(0x0A0000000000)


async def test_action_scopes_are_permission_denied(c: Client) -> None:
    te = route_entry(0x0A0000000000, 8)
    te.action.action.action_id = NO_ACTION  # @defaultonly
    del te.action.action.params[:]
    err = await one_error(c, ins(te))
    assert err.canonical_code == code_pb2.PERMISSION_DENIED
    default = p4r.TableEntry(table_id=ROUTE, is_default_action=True)
    default.action.action.action_id = FORWARD  # @tableonly
    default.action.action.params.add(param_id=1, value=b"\x01")
    err = await one_error(c, update(MODIFY, table_entry=default))
    assert err.canonical_code == code_pb2.PERMISSION_DENIED


async def test_const_default_action_cannot_change(c: Client) -> None:
    default = p4r.TableEntry(table_id=ACL, is_default_action=True)
    default.action.action.action_id = DROP
    err = await one_error(c, update(MODIFY, table_entry=default))
    assert err.canonical_code == code_pb2.PERMISSION_DENIED


async def test_default_entry_modify_reset_and_read(c: Client, loaded_switch) -> None:
    [d] = await c.read_tables(L2, is_default_action=True)
    assert d.is_default_action and d.action.action.action_id == LEARN
    default = p4r.TableEntry(table_id=L2, is_default_action=True)
    default.action.action.action_id = TO_CPU
    await c.write(update(MODIFY, table_entry=default))
    [d] = await c.read_tables(L2, is_default_action=True)
    assert d.action.action.action_id == TO_CPU
    await c.write(update(MODIFY, table_entry=p4r.TableEntry(table_id=L2, is_default_action=True)))
    [d] = await c.read_tables(L2, is_default_action=True)
    assert d.action.action.action_id == LEARN
    for kind, msg in ((INSERT, "Cannot use INSERT for default entry"),
                      (DELETE, "Cannot use DELETE for default entry")):
        err = await one_error(c, update(kind, table_entry=default))
        assert (err.canonical_code, err.message) == (code_pb2.INVALID_ARGUMENT, msg)


async def test_idle_timeout_checks(c: Client) -> None:
    te = acl_entry(0x0800, 0xFFFF, 1)
    te.idle_timeout_ns = 1_000_000_000
    err = await one_error(c, ins(te))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    err = await one_error(c, ins(l2_entry(1, ttl_ns=-5)))
    assert err.message == "idle_timeout_ns must be a positive value"
    te = l2_entry(1)
    te.time_since_last_hit.elapsed_ns = 1
    err = await one_error(c, ins(te))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    await c.insert(l2_entry(2, ttl_ns=3_000_000_000))
    [got] = await c.read_tables(L2)
    assert got.idle_timeout_ns == 3_000_000_000


async def test_counter_data_only_when_requested(c: Client, loaded_switch) -> None:
    te = l2_entry(1)
    te.counter_data.packet_count = 4
    te.counter_data.byte_count = 400
    await c.insert(te)
    [plain] = await c.read_tables(L2)
    assert not plain.HasField("counter_data")
    [with_counts] = await c.read_tables(L2, counter_data=p4r.CounterData())
    assert with_counts.counter_data.packet_count == 4
    assert with_counts.counter_data.byte_count == 400
    # a table without direct counters: counter_data in a write is refused
    bad = acl_entry(0x0800, 0xFFFF, 1)
    bad.counter_data.packet_count = 1
    err = await one_error(c, ins(bad))
    assert err.message == "Table has no direct counters"


async def test_time_since_last_hit_only_when_requested_and_supported(c: Client) -> None:
    await c.insert(l2_entry(1, ttl_ns=10_000_000_000), l2_entry(2))
    plain = await c.read_tables(L2)
    assert all(not t.HasField("time_since_last_hit") for t in plain)
    got = {t.match[0].exact.value: t for t in
           await c.read_tables(L2, time_since_last_hit=p4r.TableEntry.IdleTimeout())}
    assert got[b"\x01"].HasField("time_since_last_hit")
    assert 0 <= got[b"\x01"].time_since_last_hit.elapsed_ns <= 10_000_000_000
    # BMv2/PI: an entry without TTL answers 0
    assert got[b"\x02"].time_since_last_hit.elapsed_ns == 0
    e = await rpc_error(c.read_tables(ACL, time_since_last_hit=p4r.TableEntry.IdleTimeout()))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    # ... "yes, that includes wildcard reads" (PI): all tables include acl
    e = await rpc_error(c.read_tables(0, time_since_last_hit=p4r.TableEntry.IdleTimeout()))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_read_one_entry_by_key_and_all_tables(c: Client) -> None:
    await c.insert(l2_entry(1), l2_entry(2), acl_entry(0x86DD, 0xFFFF, 3))
    one = p4r.TableEntry(table_id=L2)
    one.match.add(field_id=1).exact.value = b"\x02"
    got = await c.read(p4r.Entity(table_entry=one))
    assert [t.table_entry.match[0].exact.value for t in got] == [b"\x02"]
    missing = p4r.TableEntry(table_id=L2)
    missing.match.add(field_id=1).exact.value = b"\x09"
    assert await c.read(p4r.Entity(table_entry=missing)) == []
    assert len(await c.read_tables(0)) == 3


async def test_read_stops_at_the_first_bad_entity(c: Client) -> None:
    await c.insert(l2_entry(1))
    got: list[p4r.Entity] = []
    e = None
    req = p4r.ReadRequest(device_id=1, entities=[
        p4r.Entity(table_entry=p4r.TableEntry(table_id=L2)),
        p4r.Entity(table_entry=p4r.TableEntry(table_id=999)),
    ])
    try:
        async for resp in c.stub.Read(req):
            got.extend(resp.entities)
    except grpc.aio.AioRpcError as err:
        e = err
    assert e is not None and e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(got) == 1  # what was read before the bad entity still arrives


async def test_unset_entity_and_unsupported_entities(c: Client) -> None:
    err = await one_error(c, p4r.Update(type=INSERT))
    assert (err.canonical_code, err.message) == (code_pb2.UNKNOWN, "Incorrect entity type")
    pre = p4r.Entity()
    pre.packet_replication_engine_entry.multicast_group_entry.multicast_group_id = 1
    err = await one_error(c, p4r.Update(type=INSERT, entity=pre))
    assert err.canonical_code == code_pb2.UNIMPLEMENTED
    # meters: the program has none, so any id is invalid
    err = await one_error(c, update(MODIFY, meter_entry=p4r.MeterEntry(meter_id=PORT_COUNTER)))
    assert err.message == "Invalid P4 id"


async def test_large_reads_arrive_in_several_responses(switch_factory) -> None:
    sw = await switch_factory(pipeline=True)
    sw.p4runtime.read_chunk = 3
    async with Client.of(sw) as c:
        await c.primary(1)
        counters = p4r.Entity(counter_entry=p4r.CounterEntry(counter_id=PORT_COUNTER))
        responses = [r async for r in c.stub.Read(p4r.ReadRequest(device_id=1,
                                                                  entities=[counters]))]
        assert [len(r.entities) for r in responses] == [3, 3, 2]
