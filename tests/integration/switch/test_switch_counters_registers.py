"""Indexed counters, direct counters and registers over P4Runtime."""

from __future__ import annotations

import grpc
from google.rpc import code_pb2
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import (
    ACL,
    DELETE,
    INSERT,
    L2,
    MODIFY,
    PORT_COUNTER,
    SEEN,
    Client,
    frame,
    l2_entry,
    rpc_error,
    update,
    write_errors,
)


def counter(index: int | None, packets: int = 0, nbytes: int = 0,
            counter_id: int = PORT_COUNTER) -> p4r.CounterEntry:
    ce = p4r.CounterEntry(counter_id=counter_id)
    if index is not None:
        ce.index.index = index
    ce.data.packet_count = packets
    ce.data.byte_count = nbytes
    return ce


def register(index: int | None, value: bytes | None = None, register_id: int = SEEN):
    re = p4r.RegisterEntry(register_id=register_id)
    if index is not None:
        re.index.index = index
    if value is not None:
        re.data.bitstring = value
    return re


async def first_error(c: Client, upd: p4r.Update) -> p4r.Error:
    e = await rpc_error(c.write(upd))
    return write_errors(e)[0]


async def test_packets_count_in_the_indexed_counter(c: Client, loaded_switch) -> None:
    await loaded_switch.inject(3, frame(0x02))
    await loaded_switch.inject(3, frame(0x02))
    [got] = await c.read(p4r.Entity(counter_entry=counter(3)))
    assert got.counter_entry.data.packet_count == 2
    assert got.counter_entry.data.byte_count == 2 * len(frame(0x02))


async def test_counter_wildcard_read_and_write(c: Client) -> None:
    await c.write(update(MODIFY, counter_entry=counter(5, 7, 70)))
    all_cells = await c.read(p4r.Entity(counter_entry=counter(None)))
    assert [e.counter_entry.index.index for e in all_cells] == list(range(8))
    assert all_cells[5].counter_entry.data.packet_count == 7
    every_counter = await c.read(p4r.Entity(counter_entry=p4r.CounterEntry()))
    assert len(every_counter) == 8
    await c.write(update(DELETE, counter_entry=counter(5)))  # PI: DELETE resets
    [got] = await c.read(p4r.Entity(counter_entry=counter(5)))
    assert got.counter_entry.data.packet_count == 0


async def test_counter_write_errors(c: Client) -> None:
    err = await first_error(c, update(INSERT, counter_entry=counter(1)))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    err = await first_error(c, update(MODIFY, counter_entry=counter(None, 1)))
    assert err.canonical_code == code_pb2.UNIMPLEMENTED  # PI: no wildcard counter write
    err = await first_error(c, update(MODIFY, counter_entry=counter(-1, 1)))
    assert err.message == "A negative number is not a valid index value"
    err = await first_error(c, update(MODIFY, counter_entry=counter(8, 1)))
    assert err.canonical_code == code_pb2.UNKNOWN  # BMv2's target error
    err = await first_error(c, update(MODIFY, counter_entry=counter(1, counter_id=SEEN)))
    assert err.message == "Invalid P4 id"


async def test_counter_read_errors(c: Client) -> None:
    e = await rpc_error(c.read(p4r.Entity(counter_entry=counter(8))))
    assert e.code() == grpc.StatusCode.UNKNOWN
    e = await rpc_error(c.read(p4r.Entity(counter_entry=counter(-2))))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


def direct(dst: int | None, packets: int = 0, nbytes: int = 0, table_id: int = L2):
    dce = p4r.DirectCounterEntry()
    if dst is not None:
        te = l2_entry(dst, port=2)
        dce.table_entry.table_id = table_id
        dce.table_entry.match.extend(te.match)
    else:
        dce.table_entry.table_id = table_id
    dce.data.packet_count = packets
    dce.data.byte_count = nbytes
    return dce


async def test_direct_counter_counts_hits_and_reads_one_or_all(c: Client, loaded_switch) -> None:
    await c.insert(l2_entry(0x0B, port=2), l2_entry(0x0C, port=2))
    pkt = frame(0x0B)
    await loaded_switch.inject(1, pkt)
    [one] = await c.read(p4r.Entity(direct_counter_entry=direct(0x0B)))
    assert one.direct_counter_entry.data.packet_count == 1
    assert one.direct_counter_entry.data.byte_count == len(pkt)
    both = await c.read(p4r.Entity(direct_counter_entry=direct(None)))
    assert sorted(e.direct_counter_entry.data.packet_count for e in both) == [0, 1]


async def test_direct_counter_write_and_errors(c: Client) -> None:
    await c.insert(l2_entry(0x0B, port=2))
    await c.write(update(MODIFY, direct_counter_entry=direct(0x0B, 5, 500)))
    [one] = await c.read(p4r.Entity(direct_counter_entry=direct(0x0B)))
    assert (one.direct_counter_entry.data.packet_count,
            one.direct_counter_entry.data.byte_count) == (5, 500)
    err = await first_error(c, update(MODIFY, direct_counter_entry=direct(0x0D, 1)))
    assert (err.canonical_code, err.message) == (code_pb2.INVALID_ARGUMENT,
                                                 "Cannot map table entry to handle")
    err = await first_error(c, update(INSERT, direct_counter_entry=direct(0x0B, 1)))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    acl = p4r.DirectCounterEntry()
    acl.table_entry.table_id = ACL
    acl.table_entry.is_default_action = True
    err = await first_error(c, update(MODIFY, direct_counter_entry=acl))
    assert err.message == "Table has no direct counters"
    e = await rpc_error(c.read(p4r.Entity(direct_counter_entry=direct(None, table_id=0))))
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED
    # the default entry has no direct counter on BMv2: PI's target errors
    default = direct(None)
    default.table_entry.is_default_action = True
    err = await first_error(c, update(MODIFY, direct_counter_entry=default))
    assert (err.canonical_code, err.message) == (code_pb2.UNKNOWN,
                                                 "Error when writing to direct counter")
    e = await rpc_error(c.read(p4r.Entity(direct_counter_entry=default)))
    assert (e.code(), e.details()) == (grpc.StatusCode.UNKNOWN,
                                       "Error when reading counter from target")


async def test_register_counts_packets_and_reads_single_and_wildcard(
    c: Client, loaded_switch
) -> None:
    for _ in range(3):
        await loaded_switch.inject(4, frame(0x02))
    [one] = await c.read(p4r.Entity(register_entry=register(4)))
    assert one.register_entry.data.bitstring == b"\x03"
    cells = await c.read(p4r.Entity(register_entry=register(None)))
    assert [e.register_entry.index.index for e in cells] == list(range(16))
    assert cells[4].register_entry.data.bitstring == b"\x03"
    assert cells[0].register_entry.data.bitstring == b"\x00"
    every = await c.read(p4r.Entity(register_entry=p4r.RegisterEntry()))
    assert len(every) == 16


async def test_register_writes_single_and_wildcard(c: Client, loaded_switch) -> None:
    await c.write(update(MODIFY, register_entry=register(2, b"\x00\x00\x01\x00")))
    [one] = await c.read(p4r.Entity(register_entry=register(2)))
    assert one.register_entry.data.bitstring == b"\x01\x00"
    await c.write(update(MODIFY, register_entry=register(None, b"\x07")))
    cells = await c.read(p4r.Entity(register_entry=register(None)))
    assert {e.register_entry.data.bitstring for e in cells} == {b"\x07"}
    # the data plane sees what the control plane wrote
    await loaded_switch.inject(2, frame(0x02))
    [one] = await c.read(p4r.Entity(register_entry=register(2)))
    assert one.register_entry.data.bitstring == b"\x08"


async def test_register_errors(c: Client) -> None:
    err = await first_error(c, update(INSERT, register_entry=register(1, b"\x01")))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    err = await first_error(c, update(DELETE, register_entry=register(1, b"\x01")))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    err = await first_error(c, update(MODIFY, register_entry=register(16, b"\x01")))
    assert err.canonical_code == code_pb2.OUT_OF_RANGE
    err = await first_error(c, update(MODIFY, register_entry=register(-1, b"\x01")))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT
    err = await first_error(c, update(MODIFY, register_entry=register(1, b"\x01" * 5)))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT  # 40 bits into bit<32>
    err = await first_error(c, update(MODIFY, register_entry=register(1)))
    assert err.canonical_code == code_pb2.INVALID_ARGUMENT  # no data
    err = await first_error(c, update(MODIFY, register_entry=register(1, b"\x01", L2)))
    assert err.message == "Invalid P4 id"
    e = await rpc_error(c.read(p4r.Entity(register_entry=register(99))))
    assert e.code() == grpc.StatusCode.OUT_OF_RANGE


async def test_bmv2_mode_answers_unimplemented_for_registers(switch_factory) -> None:
    sw = await switch_factory(pipeline=True, registers_via_p4runtime=False)
    async with Client.of(sw) as c:
        await c.primary(1)
        err = await first_error(c, update(MODIFY, register_entry=register(1, b"\x01")))
        assert (err.canonical_code, err.message) == (code_pb2.UNIMPLEMENTED,
                                                     "Register writes are not supported yet")
        e = await rpc_error(c.read(p4r.Entity(register_entry=register(1))))
        assert e.code() == grpc.StatusCode.UNIMPLEMENTED
