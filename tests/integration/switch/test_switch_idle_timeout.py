"""Idle-timeout notifications with BMv2's ageing rules and PI's batching.

Most tests drive the ageing sweep by hand (``device_mgr.idle.sweep()``) on a
switch whose periodic sweep is parked, so the rules are checked without
depending on timing; one test lets BMv2's 1-second sweep run by itself.
"""

from __future__ import annotations

import asyncio

import pytest
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import DROP, L2, Client, canon, frame, l2_entry, update

MS = 1_000_000


@pytest.fixture
async def env(switch_factory):
    sw = await switch_factory(pipeline=True, idle_sweep_interval=3600.0)
    async with Client.of(sw) as c:
        stream = await c.primary(1)
        yield sw, c, stream


async def idle_past(ms: int) -> None:
    await asyncio.sleep(ms / 1000)


async def test_idle_entry_is_notified_with_its_key_and_ttl(env) -> None:
    sw, c, stream = env
    await c.insert(l2_entry(0x0A, ttl_ns=50 * MS, controller_metadata=42, metadata=b"m"),
                   l2_entry(0x0B))  # no TTL: never notified
    await idle_past(60)
    sw.device_mgr.idle.sweep()
    msg = (await stream.recv_kind("idle_timeout_notification")).idle_timeout_notification
    assert msg.timestamp > 0
    [te] = msg.table_entry
    assert te.table_id == L2
    assert te.match[0].exact.value == canon(0x0A)
    assert te.idle_timeout_ns == 50 * MS
    assert te.controller_metadata == 42
    assert not te.HasField("action")


async def test_an_idle_entry_is_notified_every_second_sweep(env) -> None:
    """BMv2 skips only the entries it reported in the previous sweep (ageing.cpp)."""
    sw, c, stream = env
    await c.insert(l2_entry(0x0A, ttl_ns=20 * MS))
    await idle_past(30)
    idle = sw.device_mgr.idle
    idle.sweep()
    await stream.recv_kind("idle_timeout_notification")
    idle.sweep()
    assert await stream.nothing(0.3)
    idle.sweep()
    await stream.recv_kind("idle_timeout_notification")


async def test_a_hit_or_a_modify_restarts_the_timer(env) -> None:
    sw, c, stream = env
    await c.insert(l2_entry(0x0A, ttl_ns=300 * MS), l2_entry(0x0B, ttl_ns=300 * MS))
    await idle_past(310)
    await sw.inject(1, frame(0x0A))
    await c.write(update(p4r.Update.MODIFY, table_entry=l2_entry(0x0B, DROP, ttl_ns=300 * MS)))
    sw.device_mgr.idle.sweep()
    assert await stream.nothing(0.3)


async def test_a_ttl_under_one_millisecond_never_expires(env) -> None:
    """PI hands BMv2 the TTL in whole milliseconds: 0.5 ms becomes 0, "never"."""
    sw, c, stream = env
    await c.insert(l2_entry(0x0A, ttl_ns=MS // 2))
    await idle_past(20)
    sw.device_mgr.idle.sweep()
    assert await stream.nothing(0.3)


async def test_entries_of_one_sweep_come_in_one_notification(env) -> None:
    sw, c, stream = env
    await c.insert(l2_entry(1, ttl_ns=10 * MS), l2_entry(2, ttl_ns=10 * MS),
                   l2_entry(3, ttl_ns=10 * MS))
    await idle_past(20)
    sw.device_mgr.idle.sweep()
    msg = (await stream.recv_kind("idle_timeout_notification")).idle_timeout_notification
    assert sorted(te.match[0].exact.value for te in msg.table_entry) == [b"\x01", b"\x02", b"\x03"]


async def test_only_the_primary_is_notified(env) -> None:
    sw, c, primary = env
    backup = c.stream()
    backup.arbitrate(0)
    await backup.recv_kind("arbitration")
    await c.insert(l2_entry(1, ttl_ns=10 * MS))
    await idle_past(20)
    sw.device_mgr.idle.sweep()
    await primary.recv_kind("idle_timeout_notification")
    assert await backup.nothing()


async def test_time_since_last_hit_grows_and_resets_on_hit(env) -> None:
    sw, c, _ = env
    await c.insert(l2_entry(0x0A, ttl_ns=10_000 * MS))
    await idle_past(120)
    hit = p4r.TableEntry.IdleTimeout()
    [te] = await c.read_tables(L2, time_since_last_hit=hit)
    assert te.time_since_last_hit.elapsed_ns >= 100 * MS
    await sw.inject(1, frame(0x0A))
    [te] = await c.read_tables(L2, time_since_last_hit=hit)
    assert te.time_since_last_hit.elapsed_ns < 100 * MS


async def test_bmv2_sweep_runs_by_itself(switch_factory) -> None:
    sw = await switch_factory(pipeline=True)  # the default: BMv2's 1000 ms sweep
    async with Client.of(sw) as c:
        stream = await c.primary(1)
        await c.insert(l2_entry(0x0C, ttl_ns=100 * MS))
        msg = await stream.recv_kind("idle_timeout_notification", timeout=10)
        assert msg.idle_timeout_notification.table_entry[0].match[0].exact.value == b"\x0c"
