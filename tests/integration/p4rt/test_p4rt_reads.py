"""Reads as async iterators: table entries with counters and idle time, counters, digests."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from p4rt_helpers import Target, tcp_frame

from p4ctl.p4rt import (
    ClientOptions,
    CounterData,
    DigestEntry,
    DirectCounterEntry,
    P4RuntimeClient,
    P4RuntimeError,
    PipelineConfig,
    TableEntry,
)

KEY = {"vrf": 0, "src_addr": "10.0.0.1", "dst_addr": "10.0.0.2", "proto": 6,
       "src_port": 1234, "dst_port": 80}


def flow(ttl_ns: int = 0, **key: object) -> TableEntry:
    return TableEntry("flow_table", {**KEY, **key}, "flow_forward", {"flow_id": 3, "port": 2},
                      idle_timeout_ns=ttl_ns)


async def test_counter_data_and_time_since_last_hit(target: Target, client: P4RuntimeClient
                                                    ) -> None:
    assert (await client.insert([flow(ttl_ns=60 * 10**9), flow(src_port=99)])).ok
    frame = tcp_frame(flags="A")
    for _ in range(3):
        await target.inject(1, frame)
    for _ in range(3):
        assert await target.expect(2) is not None
    entries = [
        e async for e in client.read_table_entries(
            "flow_table", counter_data=True, time_since_last_hit=True
        )
    ]
    assert len(entries) == 2
    hit = next(e for e in entries if e.match["src_port"] == 1234)
    other = next(e for e in entries if e.match["src_port"] == 99)
    assert hit.counter_data == CounterData(byte_count=3 * len(frame), packet_count=3)
    assert other.counter_data == CounterData(0, 0)
    assert hit.time_since_last_hit_ns is not None
    assert 0 <= hit.time_since_last_hit_ns < 60 * 10**9
    # no TTL: PI answers 0, which the client reports as unknown
    assert other.idle_timeout_ns == 0
    # counters are not returned unless asked for
    plain = [e async for e in client.read_table_entries("flow_table")]
    assert all(e.counter_data is None and e.time_since_last_hit_ns is None for e in plain)


async def test_read_one_entry_and_every_table(client: P4RuntimeClient) -> None:
    assert (await client.insert([flow(), flow(src_port=5)])).ok
    assert (await client.insert([TableEntry("port_vrf", {"in_port": 1}, "set_vrf", {"vrf": 7})])).ok
    one = [e async for e in client.read_table_entries("flow_table", match={**KEY, "src_port": 5})]
    assert len(one) == 1 and one[0].match["src_port"] == 5
    everything = [e async for e in client.read_table_entries()]
    tables = sorted({e.table for e in everything if not e.is_default_action})
    assert tables == ["FlowIngress.flow_table", "FlowIngress.port_vrf"]


async def test_direct_counters(target: Target, client: P4RuntimeClient) -> None:
    assert (await client.insert([flow(), flow(src_port=5)])).ok
    await target.inject(1, tcp_frame())
    await target.expect(2)
    table = [d async for d in client.read_direct_counters("flow_table")]
    assert len(table) == 2
    assert sorted(d.data.packet_count for d in table) == [0, 1]
    one = [d async for d in client.read_direct_counters("flow_table", KEY)]
    assert len(one) == 1 and one[0].data.packet_count == 1
    assert isinstance(one[0], DirectCounterEntry)


async def test_indexed_counters(client: P4RuntimeClient) -> None:
    cells = [c async for c in client.read_counters("overflow_counter")]
    size = client.p4info.counters["overflow_counter"].size
    assert len(cells) == size
    assert all(c.data == CounterData(0, 0) for c in cells)
    one = [c async for c in client.read_counters("overflow_counter", 5)]
    assert [(c.index, c.data) for c in one] == [(5, CounterData(0, 0))]


async def test_registers_over_p4runtime(target: Target, client: P4RuntimeClient) -> None:
    if not target.p4runtime_registers:
        with pytest.raises(P4RuntimeError) as info:
            _ = [r async for r in client.read_registers("flow_tcp_state", 0)]
        assert info.value.code is grpc.StatusCode.UNIMPLEMENTED
        return
    cells = [r async for r in client.read_registers("ovf_valid", 3)]
    assert [(r.index, r.value) for r in cells] == [(3, 0)]
    size = client.p4info.registers["ovf_valid"].size
    assert sum([1 async for _ in client.read_registers("ovf_valid")]) == size


async def test_digest_configuration(client: P4RuntimeClient) -> None:
    assert await client.read_digest_config("new_flow_digest_t") is None
    await client.configure_digest("new_flow_digest_t", max_timeout_ns=10**6, max_list_size=64,
                                  ack_timeout_ns=10**9)
    assert await client.read_digest_config("new_flow_digest_t") == DigestEntry(
        "new_flow_digest_t", 10**6, 64, 10**9
    )
    # configure again: MODIFY, not a second INSERT
    await client.configure_digest("new_flow_digest_t", max_list_size=8)
    got = await client.read_digest_config("new_flow_digest_t")
    assert got is not None and got.max_list_size == 8


async def test_a_read_of_an_unknown_id_is_an_error(client: P4RuntimeClient) -> None:
    from p4.v1 import p4runtime_pb2

    bad = p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(table_id=0x02FFFFFF))
    with pytest.raises(P4RuntimeError) as info:
        _ = [e async for e in client.read_raw([bad])]
    assert info.value.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    # the client is still fine afterwards
    assert (await client.insert([flow()])).ok
    got = [e async for e in client.read([flow()])]
    assert got == [
        TableEntry(
            "FlowIngress.flow_table",
            {"vrf": 0, "src_addr": 0x0A000001, "dst_addr": 0x0A000002, "proto": 6,
             "src_port": 1234, "dst_port": 80},
            "FlowIngress.flow_forward", {"flow_id": 3, "port": 2},
        )
    ]


async def test_a_read_the_switch_never_answers_ends_at_its_deadline(
    target: Target, flowcache: PipelineConfig
) -> None:
    if target.kind != "software":
        pytest.skip("a switch that does not answer needs the software switch's faults")
    client = target.client(flowcache, election_id=(0, 10),
                           options=ClientOptions(read_timeout=0.3))
    await client.connect()
    try:
        target.switch.faults.delay(30.0, ["Read"])
        with pytest.raises(P4RuntimeError) as caught:
            await asyncio.wait_for(anext(aiter(client.read_table_entries("flow_table")), None), 10)
        assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        target.switch.faults.clear()
        await client.close()
