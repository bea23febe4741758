"""The switch's data-plane ports: Linux interfaces and in-process queues.

A port is either attached to a Linux interface (``-i 1@veth1``, as
``simple_switch_grpc -i``) or lives in the process only:

* an attached port receives every frame arriving on the interface through an
  ``AF_PACKET`` raw socket read from the event loop (``loop.add_reader``,
  non-blocking; frames the socket itself sent are skipped) and transmits with
  ``send`` on the same socket. Opening one needs ``CAP_NET_RAW`` (root).
  Linux takes an 802.1Q/802.1ad tag out of a received frame before packet
  sockets see it and keeps it aside (``PACKET_AUXDATA``); the tag is put
  back, as libpcap does for BMv2, so the program parses the frame as sent;
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
import struct
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

# linux/if_packet.h: the tag Linux took out of a received frame
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
#: struct tpacket_auxdata: status, len, snaplen, mac, net, vlan_tci, vlan_tpid
_AUXDATA = struct.Struct("=IIIHHHH")
_AUX_SPACE = socket.CMSG_SPACE(_AUXDATA.size)
ETH_P_8021Q = 0x8100


def with_vlan_tag(data: bytes, ancdata: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` as it was on the wire: the 802.1Q/802.1ad tag Linux kept aside put back.

    ``ancdata`` is what ``recvmsg`` gave on a packet socket with
    ``PACKET_AUXDATA`` on. libpcap does the same (``pcap-linux.c``), which
    is how BMv2 sees tagged frames whole.
    """
    for level, kind, cdata in ancdata:
        if level != SOL_PACKET or kind != PACKET_AUXDATA or len(cdata) < _AUXDATA.size:
            continue
        status, _, _, _, _, tci, tpid = _AUXDATA.unpack_from(cdata)
        if status & TP_STATUS_VLAN_VALID or tci:
            if not status & TP_STATUS_VLAN_TPID_VALID:
                tpid = ETH_P_8021Q
            return data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data


def tagged_socket(sock: socket.socket) -> socket.socket:
    """Ask a packet socket for the tags Linux takes out (read with :func:`receive_whole`)."""
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    return sock


def receive_whole(sock: socket.socket) -> tuple[bytes, int]:
    """The next frame of a :func:`tagged_socket`, tag included, and its packet type."""
    data, ancdata, _, addr = sock.recvmsg(MAX_FRAME, _AUX_SPACE)
    if ancdata:
        # the usual frame has no tag: status bit and TCI (bytes 16-17) say so
        cdata = ancdata[0][2]
        if len(cdata) < _AUXDATA.size or cdata[0] & TP_STATUS_VLAN_VALID or cdata[16] or cdata[17]:
            data = with_vlan_tag(data, ancdata)
    return data, addr[2]


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
            tagged_socket(sock)
            # A burst of new flows must queue in the kernel, not be dropped,
            # while the interpreter works (the kernel caps this at rmem_max
            # unless we are privileged, which raw sockets require anyway).
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33),
                            RECEIVE_BUFFER)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"interface {ifname} (port {port}): {exc.strerror}") from None
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
                data, kind = receive_whole(iface.sock)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                log.warning("port %d (%s): receive failed: %s", iface.port, iface.ifname, e)
                return None
            if kind != PACKET_OUTGOING:
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
