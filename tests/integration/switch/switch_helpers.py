"""Raw P4Runtime helpers for the software switch's own tests.

These speak the protocol with the generated stub directly (no project
client), so the tests see exactly what goes over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
from google.rpc import code_pb2, status_pb2
from p4.v1 import p4runtime_pb2 as p4r
from p4.v1 import p4runtime_pb2_grpc

from p4ctl.switch.device import SoftwareSwitch, load_p4info

INSERT, MODIFY, DELETE = p4r.Update.INSERT, p4r.Update.MODIFY, p4r.Update.DELETE

FIXTURES = Path(__file__).resolve().parent / "fixtures"
P4INFO = load_p4info(FIXTURES / "switch_test.p4info.txtpb")
JSON = (FIXTURES / "switch_test.json").read_bytes()
DEVICE_ID = 1
CPU_PORT = 255

# P4Info ids of the test program (switch_test.p4info.txtpb).
ACL = 33554433
L2 = 33554434
ROUTE = 33554435
NO_ACTION = 16777217
FORWARD = 16777218
DROP = 16777219
TO_CPU = 16777220
LEARN = 16777221
PORT_COUNTER = 301989889
L2_COUNTER = 318767105
PACKET_IN = 67108865
PACKET_OUT = 67108866
SEEN = 369098753
LEARN_DIGEST = 385875969

SetAction = p4r.SetForwardingPipelineConfigRequest


def canon(value: int | bytes) -> bytes:
    """The canonical P4Runtime byte string of a value."""
    if isinstance(value, bytes):
        value = int.from_bytes(value, "big")
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def mac(n: int) -> bytes:
    return n.to_bytes(6, "big")


def frame(dst: int, src: int = 0x0A0000000001, ether_type: int = 0x0800,
          payload: bytes = b"payload-bytes-0123456789") -> bytes:
    return mac(dst) + mac(src) + ether_type.to_bytes(2, "big") + payload


def pipeline_config(p4info=P4INFO, device_config: bytes = JSON, cookie: int | None = None):
    cfg = p4r.ForwardingPipelineConfig(p4info=p4info, p4_device_config=device_config)
    if cookie is not None:
        cfg.cookie.cookie = cookie
    return cfg


def l2_entry(dst: int, action: int = FORWARD, port: int | None = 2, *, ttl_ns: int = 0,
             **kw: Any) -> p4r.TableEntry:
    te = p4r.TableEntry(table_id=L2, idle_timeout_ns=ttl_ns, **kw)
    te.match.add(field_id=1).exact.value = mac(dst)
    te.action.action.action_id = action
    if action == FORWARD:
        te.action.action.params.add(param_id=1, value=canon(port))
    return te


def acl_entry(value: int, mask: int, priority: int, action: int = DROP) -> p4r.TableEntry:
    te = p4r.TableEntry(table_id=ACL, priority=priority)
    fm = te.match.add(field_id=1)
    fm.ternary.value = value.to_bytes(2, "big")
    fm.ternary.mask = mask.to_bytes(2, "big")
    te.action.action.action_id = action
    return te


def route_entry(value: int, plen: int, port: int = 3) -> p4r.TableEntry:
    te = p4r.TableEntry(table_id=ROUTE)
    fm = te.match.add(field_id=1)
    fm.lpm.value = mac(value)
    fm.lpm.prefix_len = plen
    te.action.action.action_id = FORWARD
    te.action.action.params.add(param_id=1, value=bytes([port]))
    return te


def update(kind: int, **entity: Any) -> p4r.Update:
    return p4r.Update(type=kind, entity=p4r.Entity(**entity))


def write_errors(e: grpc.aio.AioRpcError) -> list[p4r.Error]:
    """The per-update p4.v1.Error list of a failed Write."""
    for key, value in e.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            assert status.code == code_pb2.UNKNOWN
            errors = []
            for detail in status.details:
                err = p4r.Error()
                assert detail.Unpack(err)
                errors.append(err)
            return errors
    raise AssertionError("no grpc-status-details-bin in the trailers")


class _End:
    """The stream ended: with this code (OK for a clean end)."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code


class Stream:
    """One StreamChannel: send requests, receive responses.

    A background task reads the stream into a queue, so waiting for a
    message with a timeout never cancels the RPC itself.
    """

    def __init__(self, stub: p4runtime_pb2_grpc.P4RuntimeStub) -> None:
        self._out: asyncio.Queue[p4r.StreamMessageRequest | None] = asyncio.Queue()
        self._in: asyncio.Queue[p4r.StreamMessageResponse | _End] = asyncio.Queue()
        self.call = stub.StreamChannel(self._requests())
        self._pump_task = asyncio.create_task(self._pump())
        self.ended: _End | None = None

    async def _requests(self) -> AsyncIterator[p4r.StreamMessageRequest]:
        while True:
            msg = await self._out.get()
            if msg is None:
                return
            yield msg

    async def _pump(self) -> None:
        try:
            while True:
                msg = await self.call.read()
                if msg is grpc.aio.EOF:
                    self._in.put_nowait(_End(await self.call.code()))
                    return
                self._in.put_nowait(msg)
        except grpc.aio.AioRpcError as e:
            self._in.put_nowait(_End(e.code()))
        except asyncio.CancelledError:
            self._in.put_nowait(_End(grpc.StatusCode.CANCELLED))

    def send(self, msg: p4r.StreamMessageRequest) -> None:
        self._out.put_nowait(msg)

    def arbitrate(self, election_id: int | None, device_id: int = DEVICE_ID,
                  role: str = "") -> None:
        arb = p4r.MasterArbitrationUpdate(device_id=device_id)
        if election_id is not None:
            arb.election_id.high = election_id >> 64
            arb.election_id.low = election_id & ((1 << 64) - 1)
        if role:
            arb.role.name = role
        self.send(p4r.StreamMessageRequest(arbitration=arb))

    async def recv(self, timeout: float = 10.0) -> p4r.StreamMessageResponse:
        msg = await asyncio.wait_for(self._in.get(), timeout)
        if isinstance(msg, _End):
            self.ended = msg
            raise AssertionError(f"stream ended with {msg.code}")
        return msg

    async def recv_kind(self, kind: str, timeout: float = 10.0) -> p4r.StreamMessageResponse:
        """The next message of ``kind`` (``arbitration``, ``digest``, ...), skipping others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.recv(max(0.01, deadline - loop.time()))
            if msg.WhichOneof("update") == kind:
                return msg

    async def nothing(self, wait: float = 0.3) -> bool:
        """True if no message arrives within ``wait`` seconds."""
        try:
            msg = await asyncio.wait_for(self._in.get(), wait)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected stream message: {msg}")

    async def status(self, timeout: float = 10.0) -> grpc.StatusCode:
        """Wait for the stream to end; its final code."""
        while True:
            msg = await asyncio.wait_for(self._in.get(), timeout)
            if isinstance(msg, _End):
                self.ended = msg
                return msg.code

    def close(self) -> None:
        self._out.put_nowait(None)
        self.call.cancel()
        self._pump_task.cancel()


class Client:
    """A raw P4Runtime client for one switch."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self.streams: list[Stream] = []

    @classmethod
    def of(cls, switch: SoftwareSwitch) -> Client:
        return cls(switch.grpc_target)

    async def close(self) -> None:
        for s in self.streams:
            s.close()
        await self.channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def stream(self) -> Stream:
        s = Stream(self.stub)
        self.streams.append(s)
        return s

    async def primary(self, election_id: int = 1, role: str = "") -> Stream:
        """Open a stream and become primary (asserts the OK answer)."""
        s = self.stream()
        s.arbitrate(election_id, role=role)
        msg = await s.recv_kind("arbitration")
        assert msg.arbitration.status.code == code_pb2.OK, msg
        return s

    async def set_pipeline(self, action: int = SetAction.VERIFY_AND_COMMIT,
                           election_id: int | None = 1, config=None, **kw: Any):
        req = p4r.SetForwardingPipelineConfigRequest(
            device_id=kw.pop("device_id", DEVICE_ID), action=action,
            config=config if config is not None else pipeline_config(),
        )
        if election_id is not None:
            req.election_id.low = election_id
        return await self.stub.SetForwardingPipelineConfig(req)

    async def write(self, *updates: p4r.Update, election_id: int | None = 1,
                    **kw: Any) -> p4r.WriteResponse:
        req = p4r.WriteRequest(device_id=kw.pop("device_id", DEVICE_ID), updates=updates, **kw)
        if election_id is not None:
            req.election_id.low = election_id
        return await self.stub.Write(req)

    async def insert(self, *entries: p4r.TableEntry, election_id: int | None = 1):
        return await self.write(
            *(update(p4r.Update.INSERT, table_entry=e) for e in entries),
            election_id=election_id,
        )

    async def read(self, *entities: p4r.Entity, device_id: int = DEVICE_ID) -> list[p4r.Entity]:
        out: list[p4r.Entity] = []
        async for resp in self.stub.Read(p4r.ReadRequest(device_id=device_id, entities=entities)):
            out.extend(resp.entities)
        return out

    async def read_tables(self, table_id: int = 0, **kw: Any) -> list[p4r.TableEntry]:
        ents = await self.read(p4r.Entity(table_entry=p4r.TableEntry(table_id=table_id, **kw)))
        return [e.table_entry for e in ents]


async def rpc_error(awaitable) -> grpc.aio.AioRpcError:
    """Await an RPC that must fail; its error."""
    try:
        await awaitable
    except grpc.aio.AioRpcError as e:
        return e
    raise AssertionError("the RPC succeeded")


@contextlib.contextmanager
def veth_pairs(prefix: str) -> Iterator[dict[int, tuple[str, str]]]:
    """Two veth pairs for ports 1 and 2: {port: (switch end, host end)}; removed afterwards."""
    tag = f"{prefix}{os.getpid() % 100000}"
    pairs = {1: (f"{tag}a", f"{tag}A"), 2: (f"{tag}b", f"{tag}B")}
    try:
        for sw_end, host_end in pairs.values():
            _ip("link", "add", sw_end, "type", "veth", "peer", "name", host_end)
            for name in (sw_end, host_end):
                with contextlib.suppress(OSError):
                    Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1")
                _ip("link", "set", name, "up")
        yield pairs
    finally:
        for sw_end, _ in pairs.values():
            subprocess.run(["ip", "link", "del", sw_end], capture_output=True, check=False)


def raw_socket(ifname: str) -> socket.socket:
    """A non-blocking packet socket on ``ifname`` that sees every frame."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    s.bind((ifname, 0))
    s.setblocking(False)
    return s


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)
