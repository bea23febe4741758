"""Fault injection for reliability tests, driven from the test through Python.

A controller is only as good as its handling of a switch that misbehaves;
these are the misbehaviours the project's controller must survive, each one
something a real switch does:

* :meth:`FaultInjector.forget_entries`: entries vanish (an ASIC reset of one
  table, a bug on the switch): the controller's read-back must reinstall them;
* :meth:`FaultInjector.add_entry`: entries appear that the controller did not
  write (another tool, a stale replay): the read-back must remove them;
* :meth:`FaultInjector.reject_writes`: the next N ``Write`` RPCs fail with a
  chosen gRPC code (``UNAVAILABLE`` by default) and change nothing;
* :meth:`FaultInjector.delay`: RPCs answer late (a loaded switch);
* :meth:`FaultInjector.drop_streams`: every StreamChannel ends with
  ``UNAVAILABLE`` (a switch agent restart as the client sees it);
* :meth:`FaultInjector.restart`: the switch restarts: streams end, tables,
  registers, counters and digest configuration are emptied; with
  ``keep_pipeline=False`` the forwarding pipeline is gone too (a real
  ``simple_switch_grpc`` started with ``--no-p4``), with ``keep_pipeline=True``
  it is kept (a switch that boots with its program but no state).

Entries are named by the interpreter's key tuples (see
``p4ctl.switch.state.TableEntry``) and JSON / P4Info table names
(``"FlowIngress.flow_table"``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from p4ctl.switch.codec import P4RuntimeError
from p4ctl.switch.state import TableEntry

if TYPE_CHECKING:
    from p4ctl.switch.device import SoftwareSwitch

log = logging.getLogger(__name__)

__all__ = ["FaultInjector"]

ALL_RPCS = (
    "Write",
    "Read",
    "SetForwardingPipelineConfig",
    "GetForwardingPipelineConfig",
    "Capabilities",
)


def _code_int(code: grpc.StatusCode | int) -> int:
    return code.value[0] if isinstance(code, grpc.StatusCode) else int(code)


@dataclass(slots=True)
class _Rejection:
    remaining: int
    code: int
    message: str
    #: calls to let through before the first one rejected
    after: int = 0
    #: the RPC rejected
    rpc: str = "Write"


class FaultInjector:
    """The faults a test can inject into one :class:`SoftwareSwitch`."""

    def __init__(self, switch: SoftwareSwitch) -> None:
        self._switch = switch
        self._rejections: list[_Rejection] = []
        self._delays: dict[str, float] = {}
        self._lost: tuple[int, int, str] = (0, 0, "")
        #: how many RPCs each fault has affected so far (for test assertions)
        self.rejected = 0
        self.delayed = 0
        self.lost = 0

    # ----- RPC-level faults ------------------------------------------------

    def reject_writes(
        self,
        n: int = 1,
        code: grpc.StatusCode | int = grpc.StatusCode.UNAVAILABLE,
        message: str = "write rejected by fault injection",
        *,
        after: int = 0,
    ) -> None:
        """Fail the next ``n`` Write RPCs with ``code``, after letting ``after`` through.

        The rejected ones change nothing.
        """
        self.reject("Write", n, code, message, after=after)

    def reject(
        self,
        rpc: str,
        n: int = 1,
        code: grpc.StatusCode | int = grpc.StatusCode.UNAVAILABLE,
        message: str = "rejected by fault injection",
        *,
        after: int = 0,
    ) -> None:
        """Fail the next ``n`` calls of ``rpc`` (a name of ``ALL_RPCS``) with ``code``."""
        if n > 0:
            self._rejections.append(_Rejection(n, _code_int(code), message, after, rpc))

    def lose_answers(
        self,
        n: int = 1,
        code: grpc.StatusCode | int = grpc.StatusCode.UNAVAILABLE,
        message: str = "answer lost by fault injection",
    ) -> None:
        """Apply the next ``n`` Writes, then answer them with ``code``: the
        controller cannot tell that its entries are on the switch."""
        self._lost = (n, _code_int(code), message)

    def after_write(self) -> P4RuntimeError | None:
        """Hook the P4Runtime server calls once a Write has been applied."""
        n, code, message = self._lost
        if n <= 0:
            return None
        self._lost = (n - 1, code, message)
        self.lost += 1
        return P4RuntimeError(code, message)

    def delay(self, seconds: float, rpcs: Iterable[str] = ALL_RPCS) -> None:
        """Answer the named RPCs ``seconds`` late (0 removes the delay)."""
        for name in rpcs:
            if seconds > 0:
                self._delays[name] = seconds
            else:
                self._delays.pop(name, None)

    def clear(self) -> None:
        """Remove every pending rejection, delay and lost answer."""
        self._rejections.clear()
        self._delays.clear()
        self._lost = (0, 0, "")

    async def before_rpc(self, name: str) -> P4RuntimeError | None:
        """Hook the P4Runtime server calls at the start of every RPC."""
        seconds = self._delays.get(name)
        if seconds:
            self.delayed += 1
            await asyncio.sleep(seconds)
        r = next((r for r in self._rejections if r.rpc == name), None)
        if r is None:
            return None
        if r.after > 0:
            r.after -= 1
            return None
        r.remaining -= 1
        if r.remaining <= 0:
            self._rejections.remove(r)
        self.rejected += 1
        return P4RuntimeError(r.code, r.message)

    # ----- state faults --------------------------------------------------------

    def _table(self, name: str):
        pipe = self._switch.device_mgr.runtime_pipeline
        if pipe is None:
            raise RuntimeError("no forwarding pipeline on the switch")
        try:
            return pipe.tables[name]  # type: ignore[attr-defined]
        except KeyError:
            raise KeyError(f"no table {name!r} in the pipeline") from None

    def forget_entries(
        self,
        table: str,
        keys: Iterable[tuple[tuple, int] | tuple] | None = None,
        *,
        count: int | None = None,
        seed: int | None = None,
    ) -> list[TableEntry]:
        """Delete entries behind the controller's back; the entries removed.

        ``keys`` are ``(key, priority)`` pairs or bare keys (priority 0); or
        ``count`` picks that many entries at random (``seed`` for repeatable
        picks); with neither, every entry goes.
        """
        t = self._table(table)
        if keys is not None:
            idents = []
            for k in keys:
                if len(k) == 2 and isinstance(k[0], tuple) and isinstance(k[1], int):
                    idents.append((k[0], k[1]))
                else:
                    idents.append((tuple(k), 0))
        else:
            entries = [e for e in t.entries() if not t.is_const_entry(e)]
            if count is not None:
                entries = random.Random(seed).sample(entries, min(count, len(entries)))
            idents = [(e.key, e.priority) for e in entries]
        removed = []
        idle = self._switch.device_mgr.idle
        for key, priority in idents:
            entry = t.get(key, priority)
            if entry is None:
                continue
            t.delete(entry.key, entry.priority)
            if idle is not None:
                idle.forget(entry)
            removed.append(entry)
        log.info("fault: forgot %d entries of %s", len(removed), table)
        return removed

    def add_entry(
        self,
        table: str,
        key: tuple,
        action: str,
        args: tuple[int, ...] = (),
        *,
        priority: int = 0,
        ttl_ns: int = 0,
    ) -> TableEntry:
        """Insert an entry the controller did not write (raises the interpreter's errors)."""
        entry = TableEntry(
            key=tuple(key),
            priority=priority,
            action=action,
            args=tuple(args),
            ttl_ns=ttl_ns,
            last_hit_ns=time.monotonic_ns(),
        )
        self._table(table).insert(entry)
        log.info("fault: added an entry to %s behind the controller's back", table)
        return entry

    def drop_streams(self, code: grpc.StatusCode | int = grpc.StatusCode.UNAVAILABLE) -> int:
        """End every StreamChannel with ``code``; how many were open."""
        server = self._switch.p4runtime
        n = len(server.streams)
        for conn in list(server.streams):
            conn.close(_code_int(code), "stream dropped by fault injection")
        log.info("fault: dropped %d streams", n)
        return n

    async def restart(self, *, keep_pipeline: bool = True) -> None:
        """A switch restart: streams end, state is emptied (see the module docstring)."""
        self.drop_streams()
        # Let the stream handlers end and release their arbitration first.
        for _ in range(3):
            await asyncio.sleep(0)
        mgr = self._switch.device_mgr
        if keep_pipeline:
            mgr.reset_state()
        else:
            mgr.drop_config()
        self.clear()
        log.info("fault: restart (%s pipeline)", "kept" if keep_pipeline else "without")
