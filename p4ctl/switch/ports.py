"""The switch's data-plane ports: Linux interfaces and in-process queues.

A port is either attached to a Linux interface (``-i 1@veth1``, as
``simple_switch_grpc -i``) or lives in the process only:

* an attached port receives every frame arriving on the interface through an
  ``AF_PACKET`` raw socket read from the event loop (``loop.add_reader``,
  non-blocking; frames the socket itself sent are skipped) and transmits with
  ``send`` on the same socket. Opening one needs ``CAP_NET_RAW`` (root).
  Attached ports are read in turn, one frame each, so frames arriving on
  several ports at once are processed about in arrival order, as on BMv2;
* a port without interface keeps what the switch sends to it in a bounded
  ``asyncio.Queue``, which tests read (:meth:`Ports.queue`); packets are put
  into the switch with :meth:`SoftwareSwitch.inject`.

A transmit to a port that is neither attached nor ever read is simply queued
(up to ``queue_limit`` packets, then dropped and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

__all__ = ["Ports"]

ETH_P_ALL = 0x0003
#: ``sll_pkttype`` of a frame this host sent (linux/if_packet.h).
PACKET_OUTGOING = 4
MAX_FRAME = 65536
#: frames taken from one interface per wake-up at most, so a busy port
#: leaves the event loop free for RPCs and timers between wake-ups
READ_ROUNDS = 64

OnPacket = Callable[[int, bytes], None]


#: bytes of kernel receive buffer per attached interface
RECEIVE_BUFFER = 8 << 20


@dataclass(slots=True)
class _Interface:
    port: int
    ifname: str
    sock: socket.socket
    rx: int = 0
    tx: int = 0


@dataclass(slots=True)
class PortStats:
    dropped_queue_full: int = 0
    tx_errors: int = 0
    per_port_tx: dict[int, int] = field(default_factory=dict)


class Ports:
    """Port number -> Linux interface or in-process queue."""

    def __init__(
        self,
        on_packet: OnPacket,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        queue_limit: int = 10_000,
    ) -> None:
        self._on_packet = on_packet
        self._loop = loop
        self._ifaces: dict[int, _Interface] = {}
        self._queues: dict[int, asyncio.Queue[bytes]] = {}
        self.queue_limit = queue_limit
        self.stats = PortStats()

    @property
    def interfaces(self) -> dict[int, str]:
        return {p: i.ifname for p, i in self._ifaces.items()}

    def attach(self, port: int, ifname: str) -> None:
        """Bind ``port`` to the Linux interface ``ifname`` (raw socket, needs root)."""
        if port in self._ifaces:
            raise ValueError(f"port {port} is already attached to {self._ifaces[port].ifname}")
        loop = self._loop or asyncio.get_running_loop()
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.bind((ifname, 0))
            sock.setblocking(False)
            # A burst of new flows must queue in the kernel, not be dropped,
            # while the interpreter works (the kernel caps this at rmem_max
            # unless we are privileged, which raw sockets require anyway).
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33),
                            RECEIVE_BUFFER)
        except OSError:
            sock.close()
            raise
        iface = _Interface(port, ifname, sock)
        self._ifaces[port] = iface
        loop.add_reader(sock.fileno(), self._readable, iface)
        log.info("port %d attached to interface %s", port, ifname)

    def _readable(self, first: _Interface) -> None:
        """Take one frame from each interface in turn until none has more.

        Frames that arrive on several ports at once are then processed about
        in arrival order, not grouped by port: BMv2's port manager does the
        same, one frame from each ready port per ``select``
        (p4lang/behavioral-model ``src/BMI/bmi_port.c``, ``run_select``). The
        round starts with ``first``, the interface whose readiness the event
        loop reported first, then goes on in attach order; an interface
        leaves the rotation when it has nothing more, and each keeps at most
        ``READ_ROUNDS`` frames per wake-up (the loop calls again for what is
        left). Reading an empty socket costs one failed ``recvfrom``, so the
        other interfaces' own wake-ups in the same loop pass are cheap.
        """
        rotation = list(self._ifaces.values())  # attach order
        if len(rotation) > 1:
            i = rotation.index(first)
            rotation = rotation[i:] + rotation[:i]
        receive, deliver = self._receive, self._deliver
        for _ in range(READ_ROUNDS):
            ready = []
            for iface in rotation:
                data = receive(iface)
                if data is not None:
                    ready.append(iface)
                    deliver(iface, data)
            if not ready:
                return
            rotation = ready

    @staticmethod
    def _receive(iface: _Interface) -> bytes | None:
        """The next frame that arrived on ``iface``, or None when there is none now."""
        while True:
            try:
                data, addr = iface.sock.recvfrom(MAX_FRAME)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                log.warning("port %d (%s): receive failed: %s", iface.port, iface.ifname, e)
                return None
            if addr[2] != PACKET_OUTGOING:
                return data

    def _deliver(self, iface: _Interface, data: bytes) -> None:
        iface.rx += 1
        try:
            self._on_packet(iface.port, data)
        except Exception:  # one bad packet must not stop the port
            log.exception("port %d: processing a packet failed", iface.port)

    def transmit(self, port: int, packet: bytes) -> None:
        """Send a packet out of ``port``."""
        self.stats.per_port_tx[port] = self.stats.per_port_tx.get(port, 0) + 1
        iface = self._ifaces.get(port)
        if iface is not None:
            try:
                iface.sock.send(packet)
                iface.tx += 1
            except OSError as e:
                self.stats.tx_errors += 1
                log.warning("port %d (%s): send failed: %s", port, iface.ifname, e)
            return
        q = self.queue(port)
        if q.qsize() >= self.queue_limit:
            self.stats.dropped_queue_full += 1
            return
        q.put_nowait(packet)

    def queue(self, port: int) -> asyncio.Queue[bytes]:
        """The queue holding what the switch sent to an in-process ``port``."""
        q = self._queues.get(port)
        if q is None:
            q = self._queues[port] = asyncio.Queue()
        return q

    def close(self) -> None:
        loop = self._loop
        for iface in self._ifaces.values():
            with contextlib.suppress(RuntimeError, ValueError):
                (loop or asyncio.get_running_loop()).remove_reader(iface.sock.fileno())
            iface.sock.close()
        self._ifaces.clear()
