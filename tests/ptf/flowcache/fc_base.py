"""The base of the flow-cache PTF tests: a P4Runtime session to the switch under test.

ptf runs these tests on one end of veth pairs whose other ends are the
switch's ports; the switch is named by ptf test parameters
(``--test-params "grpc_addr='127.0.0.1:9559';..."``):

=================  =====================================================
``grpc_addr``      P4Runtime server (default ``127.0.0.1:9559``)
``device_id``      P4Runtime device id (default 1)
``p4info``         P4Info text file (default ``pipelines/flowcache/p4info.txtpb``)
``bmv2_json``      BMv2 JSON, the device config (default ``.../bmv2.json``)
``registers``      ``p4runtime`` (RegisterEntry) or ``thrift`` (BMv2's
                   Thrift register calls, the only way on
                   ``simple_switch_grpc``); default ``thrift``
``thrift_addr``    BMv2 Thrift runtime API (default ``127.0.0.1:9090``)
=================  =====================================================

Each test starts from a clean switch: it connects as primary with an
election id higher than every earlier test's, pushes the committed pipeline
(``SetForwardingPipelineConfig VERIFY_AND_COMMIT``, which empties tables,
registers and counters on BMv2 and on the software switch alike) and
enables both digests with lists of one (``max_list_size`` 1,
``max_timeout_ns`` 0) and no acknowledgement cache (``ack_timeout_ns`` 0), so
each digest the data plane raises reaches the test on its own, and counting
them counts what the data plane did.

The project's :class:`p4ctl.p4rt.P4RuntimeClient` is asyncio code; ptf tests
are plain blocking unittest code. The client therefore lives on an event
loop in a thread of its own, and the test calls into it with
:meth:`Session.run`; digests and packet-ins arrive in thread-safe queues.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import queue
import threading
import zlib
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import ptf
from ptf import testutils
from ptf.base_tests import BaseTest

from p4ctl.p4rt import (
    CounterEntry,
    DigestList,
    DirectCounterEntry,
    P4Info,
    P4RuntimeClient,
    PacketIn,
    PacketOut,
    PipelineConfig,
    TableEntry,
    Update,
    UpdateType,
    register_backend,
)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / "pipelines" / "flowcache"

FLOW_TABLE = "FlowIngress.flow_table"
PORT_VRF = "FlowIngress.port_vrf"
MISS_POLICY = "FlowIngress.miss_policy"
NEW_FLOW = "new_flow_digest_t"
FLOW_EVENT = "flow_event_digest_t"
OVERFLOW_COUNTER = "FlowIngress.overflow_counter"

# docs/pipeline.md: per-flow TCP state bits and overflow action kinds
TCP_SYN, TCP_SYNACK, TCP_ESTABLISHED, TCP_FIN, TCP_RST = 0x01, 0x02, 0x04, 0x08, 0x10
OVF_FORWARD, OVF_DROP, OVF_NAT = 1, 2, 3
PACKET_OUT_FLOW_TABLE, PACKET_OUT_DIRECT = 0, 1
PACKET_IN_NEW_FLOW = 1
PROTO = {"icmp": 1, "tcp": 6, "udp": 17}

#: how long a test waits for something that must come (a digest, a packet-in)
WAIT_S = 10.0
#: how long a test waits to be sure something does not come
QUIET_S = 0.6

# Election ids grow from test to test, so a new test's client is primary even
# if the previous test's stream is still being wound up on the server.
_ELECTION = itertools.count(10)


def ip(addr: str) -> int:
    return int(ipaddress.IPv4Address(addr))


def bucket_hash(vrf: int, src: str, dst: str, proto: int, sport: int, dport: int) -> int:
    """crc32 of the 120-bit key, packed MSB first (docs/pipeline.md, "The bucket hash")."""
    key = (((((vrf << 32 | ip(src)) << 32 | ip(dst)) << 8 | proto) << 16 | sport) << 16) | dport
    return zlib.crc32(key.to_bytes(15, "big"))


def flow_match(vrf: int, src: str, dst: str, proto: int, sport: int, dport: int) -> dict[str, int]:
    return {"vrf": vrf, "src_addr": ip(src), "dst_addr": ip(dst), "proto": proto,
            "src_port": sport, "dst_port": dport}  # fmt: skip


class _Loop:
    """One asyncio loop in a daemon thread, shared by the tests of this ptf process."""

    _instance: _Loop | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="p4rt", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> _Loop:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


class Session:
    """A primary P4Runtime client of the switch under test, for one test."""

    def __init__(self) -> None:
        param = testutils.test_param_get
        self.grpc_addr = str(param("grpc_addr", "127.0.0.1:9559"))
        self.device_id = int(param("device_id", 1))
        self.p4info_path = Path(str(param("p4info", PIPELINE / "p4info.txtpb")))
        self.json_path = Path(str(param("bmv2_json", PIPELINE / "bmv2.json")))
        self.register_kind = str(param("registers", "thrift"))
        self.thrift_addr = str(param("thrift_addr", "127.0.0.1:9090"))
        self.p4info = P4Info.load(self.p4info_path)
        self.digests: queue.Queue[tuple[str, dict[str, int]]] = queue.Queue()
        self.packet_ins: queue.Queue[PacketIn] = queue.Queue()
        self._loop = _Loop.get()
        self.client: P4RuntimeClient | None = None
        self.registers: Any = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro)

    # -- lifecycle ---------------------------------------------------------------

    def open(self) -> None:
        self.run(self._open())

    async def _open(self) -> None:
        client = P4RuntimeClient(
            self.grpc_addr, self.device_id, election_id=(0, next(_ELECTION)), p4info=self.p4info
        )

        def on_digest(digest: DigestList) -> None:
            for item in digest.data:
                self.digests.put((digest.digest, dict(item)))

        client.on_digest(on_digest)
        client.on_packet_in(self.packet_ins.put)
        self.client = client
        await client.connect()
        if not client.is_primary:
            raise AssertionError(f"not primary on {self.grpc_addr}")
        await client.set_pipeline(PipelineConfig.bmv2(self.p4info, self.json_path))
        for digest in (NEW_FLOW, FLOW_EVENT):
            await client.configure_digest(
                digest, max_timeout_ns=0, max_list_size=1, ack_timeout_ns=0
            )
        self.registers = register_backend(
            self.register_kind, client=client, thrift_address=self.thrift_addr, p4info=self.p4info
        )

    def close(self) -> None:
        if self.client is not None:
            self.run(self._close())

    async def _close(self) -> None:
        if self.registers is not None:
            await self.registers.close()
        if self.client is not None:
            await self.client.close()
        self.client = None

    # -- sizes of the build under test -------------------------------------------

    @property
    def overflow_entries(self) -> int:
        return self.p4info.registers["FlowIngress.ovf_valid"].size

    @property
    def flow_entries(self) -> int:
        return self.p4info.tables[FLOW_TABLE].size

    # -- writes --------------------------------------------------------------------

    def write(self, updates: Iterable[Update]) -> None:
        assert self.client is not None
        result = self.run(self.client.write(list(updates)))
        result.raise_on_error()

    def insert_flow(self, match: dict[str, int], action: str, **params: int) -> None:
        self.write([Update(UpdateType.INSERT, TableEntry(FLOW_TABLE, match, action, params))])

    def set_port_vrf(self, port: int, vrf: int) -> None:
        entry = TableEntry(PORT_VRF, {"in_port": port}, "FlowIngress.set_vrf", {"vrf": vrf})
        self.write([Update(UpdateType.INSERT, entry)])

    def set_miss_policy(self, action: str) -> None:
        entry = TableEntry(MISS_POLICY, {}, action, {}, is_default_action=True)
        self.write([Update(UpdateType.MODIFY, entry)])

    def write_registers(self, cells: Iterable[tuple[str, int, int]]) -> None:
        """Register cells in the order given (the overflow valid bit goes last)."""
        for name, index, value in cells:
            self.run(self.registers.write(name, index, value))

    def read_register(self, name: str, index: int) -> int:
        return self.run(self.registers.read(name, index))

    # -- reads ---------------------------------------------------------------------

    def direct_counter(self, match: dict[str, int]) -> tuple[int, int]:
        """(packets, bytes) of a flow entry's direct counter, read with DirectCounterEntry."""
        assert self.client is not None

        async def read() -> list[Any]:
            filt = DirectCounterEntry(TableEntry(FLOW_TABLE, match))
            return [e async for e in self.client.read(filt)]  # type: ignore[union-attr]

        (entry,) = self.run(read())
        assert entry.data is not None
        return entry.data.packet_count, entry.data.byte_count

    def entry_counter(self, match: dict[str, int]) -> tuple[int, int]:
        """(packets, bytes) of a flow entry read as a table entry with ``counter_data``."""
        assert self.client is not None

        async def read() -> list[TableEntry]:
            return [e async for e in self.client.read_table_entries(  # type: ignore[union-attr]
                FLOW_TABLE, match=match, counter_data=True)]  # fmt: skip

        (entry,) = self.run(read())
        assert entry.counter_data is not None
        return entry.counter_data.packet_count, entry.counter_data.byte_count

    def counter(self, name: str, index: int) -> tuple[int, int]:
        """(packets, bytes) of an indexed counter cell."""
        assert self.client is not None

        async def read() -> list[Any]:
            return [e async for e in self.client.read(CounterEntry(name, index))]  # type: ignore[union-attr]

        (entry,) = self.run(read())
        data = entry.data
        return (data.packet_count, data.byte_count) if data is not None else (0, 0)

    # -- the stream ------------------------------------------------------------------

    def send_packet_out(self, payload: bytes, **metadata: int) -> None:
        assert self.client is not None
        self.run(self.client.send_packet_out(PacketOut(payload, metadata)))


class FlowCacheTest(BaseTest):
    """A ptf test with a fresh pipeline on the switch and a primary P4Runtime session."""

    def setUp(self) -> None:
        BaseTest.setUp(self)
        self.dataplane = ptf.dataplane_instance
        self.session = Session()
        try:
            self.session.open()
        except BaseException:
            self.session.close()
            raise
        self.dataplane.flush()

    def tearDown(self) -> None:
        self.session.close()
        BaseTest.tearDown(self)

    # -- digests and packet-ins ------------------------------------------------------

    def expect_digest(self, name: str, timeout: float = WAIT_S) -> dict[str, int]:
        """The next digest message; it must be of digest ``name``."""
        try:
            got, data = self.session.digests.get(timeout=timeout)
        except queue.Empty:
            self.fail(f"no {name} digest within {timeout} s")
        self.assertEqual(got, name, f"expected a {name} digest, got {got} {data}")
        return data

    def assert_no_digest(self, timeout: float = QUIET_S) -> None:
        try:
            got, data = self.session.digests.get(timeout=timeout)
        except queue.Empty:
            return
        self.fail(f"unexpected {got} digest: {data}")

    def expect_packet_in(self, timeout: float = WAIT_S) -> PacketIn:
        try:
            return self.session.packet_ins.get(timeout=timeout)
        except queue.Empty:
            self.fail(f"no packet-in within {timeout} s")

    def assert_no_packet_in(self, timeout: float = QUIET_S) -> None:
        try:
            packet = self.session.packet_ins.get(timeout=timeout)
        except queue.Empty:
            return
        self.fail(f"unexpected packet-in: {packet}")

    def wait_counter(self, read: Any, packets: int, timeout: float = WAIT_S) -> tuple[int, int]:
        """Poll ``read()`` -> (packets, bytes) until it shows ``packets`` packets."""
        import time

        end = time.monotonic() + timeout
        value = read()
        while value[0] < packets and time.monotonic() < end:
            time.sleep(0.05)
            value = read()
        return value
