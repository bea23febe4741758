"""Fault injection, as seen by a client over gRPC."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from switch_helpers import L2, Client, canon, frame, l2_entry, rpc_error

TABLE = "TestIngress.l2"


@pytest.fixture
async def env(loaded_switch):
    async with Client.of(loaded_switch) as c:
        stream = await c.primary(1)
        yield loaded_switch, c, stream


async def test_forget_given_entries(env) -> None:
    sw, c, _ = env
    await c.insert(l2_entry(1), l2_entry(2), l2_entry(3))
    removed = sw.faults.forget_entries(TABLE, [(2,)])
    assert [e.key for e in removed] == [(2,)]
    left = sorted(t.match[0].exact.value for t in await c.read_tables(L2))
    assert left == [b"\x01", b"\x03"]
    await sw.inject(1, frame(2))
    assert sw.drain(2) == []  # the data plane lost it too


async def test_forget_random_entries_and_all(env) -> None:
    sw, c, _ = env
    await c.insert(l2_entry(1), l2_entry(2), l2_entry(3), l2_entry(4))
    assert len(sw.faults.forget_entries(TABLE, count=2, seed=1)) == 2
    assert len(await c.read_tables(L2)) == 2
    sw.faults.forget_entries(TABLE)
    assert await c.read_tables(L2) == []


async def test_entries_added_behind_the_controllers_back(env) -> None:
    sw, c, _ = env
    sw.faults.add_entry(TABLE, (0x0D,), "TestIngress.forward", (4,))
    [te] = await c.read_tables(L2)
    assert te.match[0].exact.value == canon(0x0D)
    await sw.inject(1, frame(0x0D))
    assert await sw.expect(4) == frame(0x0D)


async def test_reject_the_next_writes_with_a_chosen_code(env) -> None:
    sw, c, _ = env
    sw.faults.reject_writes(2, grpc.StatusCode.UNAVAILABLE)
    for _ in range(2):
        e = await rpc_error(c.insert(l2_entry(1)))
        assert e.code() == grpc.StatusCode.UNAVAILABLE
    assert await c.read_tables(L2) == []
    await c.insert(l2_entry(1))
    assert sw.faults.rejected == 2


async def test_reject_writes_after_letting_some_through(env) -> None:
    sw, c, _ = env
    sw.faults.reject_writes(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "no room", after=2)
    await c.insert(l2_entry(1))
    await c.insert(l2_entry(2))
    e = await rpc_error(c.insert(l2_entry(3)))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await c.insert(l2_entry(4))
    left = sorted(t.match[0].exact.value for t in await c.read_tables(L2))
    assert left == [b"\x01", b"\x02", b"\x04"]
    assert sw.faults.rejected == 1


async def test_delayed_responses(env) -> None:
    sw, c, _ = env
    sw.faults.delay(0.3, ["Read"])
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await c.read_tables(L2)
    assert loop.time() - t0 >= 0.3  # a lower bound: never flaky on a slow machine
    assert sw.faults.delayed == 1
    sw.faults.delay(0, ["Read"])


async def test_drop_the_streams(env) -> None:
    sw, _c, stream = env
    assert sw.faults.drop_streams() == 1
    assert await stream.status() == grpc.StatusCode.UNAVAILABLE


async def test_restart_keeping_the_pipeline(env) -> None:
    sw, c, stream = env
    await c.insert(l2_entry(1))
    await sw.faults.restart(keep_pipeline=True)
    assert await stream.status() == grpc.StatusCode.UNAVAILABLE
    s2 = await c.primary(2)
    assert s2 is not None
    assert await c.read_tables(L2) == []
    await c.insert(l2_entry(1), election_id=2)


async def test_restart_without_the_pipeline(env) -> None:
    sw, c, stream = env
    await sw.faults.restart(keep_pipeline=False)
    assert await stream.status() == grpc.StatusCode.UNAVAILABLE
    e = await rpc_error(c.read_tables(L2))
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
