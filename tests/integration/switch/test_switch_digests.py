"""Digests: DigestEntry configuration and DigestList delivery (BMv2 + PI behaviour)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import code_pb2
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import (
    DELETE,
    INSERT,
    LEARN_DIGEST,
    MODIFY,
    Client,
    canon,
    frame,
    rpc_error,
    update,
    write_errors,
)

SECOND = 1_000_000_000


def digest_entry(max_timeout_ns: int = 0, max_list_size: int = 1,
                 ack_timeout_ns: int = 60 * SECOND, digest_id: int = LEARN_DIGEST):
    d = p4r.DigestEntry(digest_id=digest_id)
    d.config.max_timeout_ns = max_timeout_ns
    d.config.max_list_size = max_list_size
    d.config.ack_timeout_ns = ack_timeout_ns
    return d


def ack(digest_list: p4r.DigestList) -> p4r.StreamMessageRequest:
    return p4r.StreamMessageRequest(digest_ack=p4r.DigestListAck(
        digest_id=digest_list.digest_id, list_id=digest_list.list_id))


def samples(digest_list: p4r.DigestList) -> list[tuple[bytes, bytes]]:
    return [tuple(m.bitstring for m in d.struct.members) for d in digest_list.data]


@pytest.fixture
async def env(loaded_switch):
    async with Client.of(loaded_switch) as c:
        stream = await c.primary(1)
        yield loaded_switch, c, stream


async def test_digest_config_codes(env) -> None:
    _sw, c, _ = env
    e = await rpc_error(c.write(update(MODIFY, digest_entry=digest_entry())))
    assert write_errors(e)[0].canonical_code == code_pb2.NOT_FOUND
    e = await rpc_error(c.write(update(DELETE, digest_entry=digest_entry())))
    assert write_errors(e)[0].canonical_code == code_pb2.NOT_FOUND
    e = await rpc_error(c.write(update(INSERT, digest_entry=digest_entry(digest_id=0x17000099))))
    assert write_errors(e)[0].canonical_code == code_pb2.NOT_FOUND
    await c.write(update(INSERT, digest_entry=digest_entry(max_list_size=4)))
    e = await rpc_error(c.write(update(INSERT, digest_entry=digest_entry())))
    assert write_errors(e)[0].canonical_code == code_pb2.ALREADY_EXISTS
    [got] = await c.read(p4r.Entity(digest_entry=p4r.DigestEntry(digest_id=LEARN_DIGEST)))
    assert got.digest_entry.config.max_list_size == 4
    e = await rpc_error(c.read(p4r.Entity(digest_entry=p4r.DigestEntry())))
    assert e.code() == grpc.StatusCode.UNIMPLEMENTED  # a read needs the digest_id
    await c.write(update(DELETE, digest_entry=digest_entry()))
    e = await rpc_error(c.read(p4r.Entity(digest_entry=p4r.DigestEntry(digest_id=LEARN_DIGEST))))
    assert e.code() == grpc.StatusCode.NOT_FOUND


async def test_digests_are_dropped_until_a_digest_entry(env) -> None:
    sw, c, stream = env
    await sw.inject(1, frame(0x99, src=0x0A))  # table miss -> learn
    # BMv2's learn list hands its buffer to PI after 1 s; PI drops it.
    while sw.device_mgr.digests.dropped_unconfigured == 0:
        await asyncio.sleep(0.05)
    await c.write(update(INSERT, digest_entry=digest_entry()))
    assert await stream.nothing(0.5)


async def test_digest_list_content_dedup_and_ack(env) -> None:
    sw, c, stream = env
    await c.write(update(INSERT, digest_entry=digest_entry()))
    await sw.inject(5, frame(0x99, src=0x0A0B))
    msg = await stream.recv_kind("digest")
    dl = msg.digest
    assert (dl.digest_id, dl.list_id) == (LEARN_DIGEST, 1)
    assert samples(dl) == [(canon(0x0A0B), canon(5))]
    # the same data again is suppressed while list 1 is not acknowledged
    await sw.inject(5, frame(0x99, src=0x0A0B))
    assert await stream.nothing()
    assert sw.device_mgr.digests.suppressed == 1
    # other data goes through
    await sw.inject(5, frame(0x99, src=0x0C0D))
    assert samples((await stream.recv_kind("digest")).digest) == [(canon(0x0C0D), canon(5))]
    # after the ack, the first data is new again
    stream.send(ack(dl))
    while 1 in sw.device_mgr.digests._by_id[LEARN_DIGEST].sent:  # the ack is processed
        await asyncio.sleep(0.01)
    await sw.inject(5, frame(0x99, src=0x0A0B))
    again = (await stream.recv_kind("digest")).digest
    assert again.list_id == 3 and samples(again) == [(canon(0x0A0B), canon(5))]


async def test_unacknowledged_data_is_sent_again_after_ack_timeout(env) -> None:
    sw, c, stream = env
    await c.write(update(INSERT, digest_entry=digest_entry(ack_timeout_ns=SECOND // 5)))
    await sw.inject(1, frame(0x99, src=0x0E))
    await stream.recv_kind("digest")
    # re-offer the same sample until the cache entry has expired (between T and 2T)
    while True:
        await sw.inject(1, frame(0x99, src=0x0E))
        try:
            msg = await asyncio.wait_for(stream.recv_kind("digest"), 0.1)
            break
        except TimeoutError:
            continue
    assert samples(msg.digest) == [(canon(0x0E), canon(1))]


async def test_without_ack_timeout_there_is_no_dedup(env) -> None:
    sw, c, stream = env
    await c.write(update(INSERT, digest_entry=digest_entry(ack_timeout_ns=0)))
    for _ in range(2):
        await sw.inject(1, frame(0x99, src=0x0F))
        assert samples((await stream.recv_kind("digest")).digest) == [(canon(0x0F), canon(1))]


async def test_lists_fill_up_to_max_list_size(env) -> None:
    sw, c, stream = env
    await c.write(update(INSERT, digest_entry=digest_entry(
        max_timeout_ns=30 * SECOND, max_list_size=3)))
    for src in (0x21, 0x22, 0x22, 0x23):  # the repeated sample is dropped by BMv2
        await sw.inject(1, frame(0x99, src=src))
    dl = (await stream.recv_kind("digest")).digest
    assert samples(dl) == [(canon(s), canon(1)) for s in (0x21, 0x22, 0x23)]


async def test_lists_leave_after_max_timeout(env) -> None:
    sw, c, stream = env
    await c.write(update(INSERT, digest_entry=digest_entry(
        max_timeout_ns=SECOND // 10, max_list_size=0)))
    await sw.inject(1, frame(0x99, src=0x31))
    await sw.inject(2, frame(0x99, src=0x32))
    dl = (await stream.recv_kind("digest")).digest
    assert samples(dl) == [(canon(0x31), canon(1)), (canon(0x32), canon(2))]


async def test_a_timeout_set_later_does_not_release_samples_already_waiting(env) -> None:
    """BMv2's learn list: setting the timeout wakes nobody (``learning.cpp``). Samples
    that wait with no timeout keep waiting, here until the list fills."""
    sw, c, stream = env
    await c.write(update(INSERT, digest_entry=digest_entry(max_list_size=3, ack_timeout_ns=0)))
    await sw.inject(1, frame(0x99, src=0x41))
    await c.write(update(MODIFY, digest_entry=digest_entry(
        max_timeout_ns=SECOND // 10, max_list_size=3, ack_timeout_ns=0)))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stream.recv_kind("digest"), 0.6)
    for src in (0x42, 0x43):
        await sw.inject(1, frame(0x99, src=src))
    dl = (await stream.recv_kind("digest")).digest
    assert samples(dl) == [(canon(s), canon(1)) for s in (0x41, 0x42, 0x43)]


async def test_only_the_primary_gets_digests(env) -> None:
    sw, c, primary = env
    backup = c.stream()
    backup.arbitrate(0)
    await backup.recv_kind("arbitration")
    await c.write(update(INSERT, digest_entry=digest_entry()))
    await sw.inject(1, frame(0x99, src=0x41))
    await primary.recv_kind("digest")
    assert await backup.nothing()


async def test_delete_stops_digests_and_list_ids_continue(env) -> None:
    sw, c, stream = env
    await c.write(update(INSERT, digest_entry=digest_entry(ack_timeout_ns=0)))
    await sw.inject(1, frame(0x99, src=0x51))
    assert (await stream.recv_kind("digest")).digest.list_id == 1
    await c.write(update(DELETE, digest_entry=digest_entry()))
    await sw.inject(1, frame(0x99, src=0x52))
    assert await stream.nothing()
    await c.write(update(INSERT, digest_entry=digest_entry(ack_timeout_ns=0)))
    await sw.inject(1, frame(0x99, src=0x53))
    assert (await stream.recv_kind("digest")).digest.list_id == 2
