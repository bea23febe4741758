"""The least a controller can do to set up flows: a same-run floor for ``bench_flows``.

For each new-flow digest it writes the reverse entry, then the forward
entry in a second Write, then acknowledges the digest list. It keeps no
store, applies no policy, allocates no slots and checks nothing but each
Write's status. Digest lists that are waiting are taken together, up to
``MAX_FLOWS`` flows per pair of writes.

What this loop reaches on a switch is what that switch gives any controller
for this job over P4Runtime, so the flow agent's figures are read against
it. It speaks plain ``grpc.aio`` with the ``p4runtime`` protos: nothing of
``p4ctl.p4rt`` is on its path. The switch must already hold the pipeline,
the digest configuration and the port-to-VRF entries (``bench_flows`` has
the real controller set them up, then leave).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import grpc
from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc

from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import FlowKey
from p4ctl.p4rt.encoding import canonical_bytes
from p4ctl.pipeline import FlowMapping

log = logging.getLogger(__name__)

#: flows per pair of writes (two entries each: 1000 updates per request at most)
MAX_FLOWS = 500
#: digest members that make the forward key, and their order in the reverse key
FORWARD = (0, 1, 2, 3, 4, 5)  # vrf, src_addr, dst_addr, proto, src_port, dst_port
REVERSE = (0, 2, 1, 3, 5, 4)


class BareController:
    """Digest in, reverse entry, forward entry, ack: nothing else.

    ``installed_at`` maps a flow's (src_addr, src_port) digest bytes to when
    its forward entry's Write returned, for latency runs.
    """

    def __init__(self, target: str, device_id: int, mapping: FlowMapping,
                 election_id: int = 1) -> None:
        self.target = target
        self.device_id = device_id
        self.election = p4runtime_pb2.Uint128(high=election_id >> 64,
                                              low=election_id & (2**64 - 1))
        self.digest_id = mapping.new_flow_digest_id
        zero = FlowKey(0, 0, 0, 0, 0, 0)
        timeout = 180_000_000_000
        self._templates = (
            mapping.table_entry(zero, 0, FlowAction(ActionKind.FORWARD, 2), timeout),
            mapping.table_entry(zero, 0, FlowAction(ActionKind.FORWARD, 1), timeout),
        )
        self.installed = 0
        self.failed = 0
        self.digests = 0
        self.installed_at: dict[tuple[bytes, bytes], float] = {}
        self._next_id = 1
        self._lists: list[p4runtime_pb2.DigestList] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> BareController:
        self._channel = grpc.aio.insecure_channel(self.target)
        self._stub = p4runtime_pb2_grpc.P4RuntimeStub(self._channel)
        self._stream = self._stub.StreamChannel()
        await self._stream.write(p4runtime_pb2.StreamMessageRequest(
            arbitration=p4runtime_pb2.MasterArbitrationUpdate(
                device_id=self.device_id, election_id=self.election)))
        while True:
            reply = await self._stream.read()
            if reply is grpc.aio.EOF:
                raise RuntimeError("the switch closed the stream during arbitration")
            if reply.WhichOneof("update") == "arbitration":
                if reply.arbitration.status.code != 0:
                    raise RuntimeError(f"not primary: {reply.arbitration.status.message}")
                break
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._work())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._stream.cancel()
        await self._channel.close()

    async def _read(self) -> None:
        while True:
            reply = await self._stream.read()
            if reply is grpc.aio.EOF:
                return
            if reply.WhichOneof("update") == "digest" and reply.digest.digest_id == self.digest_id:
                self._lists.append(reply.digest)
                self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._lists:
                taken, flows = [], 0
                while self._lists and flows < MAX_FLOWS:
                    taken.append(self._lists.pop(0))
                    flows += len(taken[-1].data)
                await self._install(taken)

    async def _install(self, lists: list[p4runtime_pb2.DigestList]) -> None:
        samples = [[m.bitstring for m in d.struct.members] for dl in lists for d in dl.data]
        self.digests += len(samples)
        first = [0] * len(samples)
        for i in range(len(samples)):
            first[i], self._next_id = self._next_id, self._next_id + 1
        ok = await self._write(samples, REVERSE, self._templates[1], first)
        if ok:
            ok = await self._write(samples, FORWARD, self._templates[0], first)
        now = time.monotonic()
        if ok:
            self.installed += len(samples)
            for s in samples:
                self.installed_at[(s[1], s[4])] = now
        else:
            self.failed += len(samples)
        for dl in lists:
            await self._stream.write(p4runtime_pb2.StreamMessageRequest(
                digest_ack=p4runtime_pb2.DigestListAck(digest_id=dl.digest_id,
                                                       list_id=dl.list_id)))

    async def _write(self, samples: list[list[bytes]], order: tuple[int, ...],
                     template: p4runtime_pb2.TableEntry, flow_ids: list[int]) -> bool:
        request = p4runtime_pb2.WriteRequest(device_id=self.device_id, election_id=self.election)
        for s, flow_id in zip(samples, flow_ids, strict=True):
            entry = request.updates.add(type=p4runtime_pb2.Update.INSERT).entity.table_entry
            entry.CopyFrom(template)
            for fm, member in zip(entry.match, order, strict=True):
                fm.exact.value = s[member]
            entry.action.action.params[0].value = canonical_bytes(flow_id)
        try:
            await self._stub.Write(request)
        except grpc.aio.AioRpcError as e:
            log.warning("write of %d entries failed: %s", len(samples), e.details())
            return False
        return True
