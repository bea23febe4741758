"""Client arbitration on the StreamChannel: who is primary, who is told what.

The rules are PI's (p4lang/PI ``proto/server/pi_server.cpp``,
``DeviceState``), grouped per role as the P4Runtime specification asks
("Client Arbitration and Controller Replication"):

* the primary of a role is the live stream with the highest election id
  (an unset election id counts as 0); PI does not remember election ids of
  streams that have gone, so a lower id becomes primary when the higher one
  disconnects (the specification would keep it a backup);
* a new stream that becomes primary makes every stream of its role hear the
  news; a new backup is told alone (``ALREADY_EXISTS`` "Is backup", with the
  primary's election id); a primary change (new id, downgrade, disconnect)
  is told to every stream of the role;
* a stream re-sending its current election id gets no answer (PI);
* a second stream with the same election id: ``INVALID_ARGUMENT`` "Election id
  already exists" and the stream ends; more than 16 streams:
  ``RESOURCE_EXHAUSTED`` "Too many connections";
* a later update with another device id or role: ``FAILED_PRECONDITION``.

Departures from PI, in favour of the specification (PI keeps no list of
devices and no roles): an unknown device id on the first update is
``NOT_FOUND``; roles are separate elections; a ``role.config`` is refused
with ``INVALID_ARGUMENT`` (no role-config scheme is agreed, so every role has
full pipeline access and every primary gets the stream's notifications).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field

from google.rpc import status_pb2
from p4.v1 import p4runtime_pb2

from p4ctl.switch.codec import Code, P4RuntimeError

log = logging.getLogger(__name__)

__all__ = ["Arbiter", "Connection", "role_key", "uint128"]

MAX_CONNECTIONS = 16
#: Outbound messages a slow client may have pending before packet-ins,
#: digests and idle notifications to it are dropped (arbitration never is).
OUTBOX_LIMIT = 10_000

_ids = itertools.count(1)


def uint128(value: p4runtime_pb2.Uint128) -> int:
    return (value.high << 64) | value.low


def role_key(role_name: str, role_id: int = 0) -> str:
    """The role a request speaks for: its name (``""`` is the default role)."""
    if role_name:
        return role_name
    return f"#{role_id}" if role_id else ""


@dataclass(eq=False, slots=True)
class _Close:
    code: int | None  # None: end the stream with OK
    message: str = ""


@dataclass(eq=False)
class Connection:
    """One StreamChannel: its arbitration state and its outbound queue."""

    peer: str
    conn_id: int = field(default_factory=lambda: next(_ids))
    device_id: int | None = None  # None until the first arbitration update
    role: str = ""
    role_name: str = ""
    election_id: int = 0
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    dropped: int = 0

    @property
    def arbitrated(self) -> bool:
        return self.device_id is not None

    def send(self, msg: p4runtime_pb2.StreamMessageResponse, *, droppable: bool = True) -> bool:
        if droppable and self.outbox.qsize() >= OUTBOX_LIMIT:
            self.dropped += 1
            return False
        self.outbox.put_nowait(msg)
        return True

    def close(self, code: int | None = None, message: str = "") -> None:
        """End the stream (with an error status when ``code`` is given)."""
        self.outbox.put_nowait(_Close(code, message))


class Arbiter:
    """The live streams of one device, grouped by role."""

    def __init__(self, device_id: int, max_connections: int = MAX_CONNECTIONS) -> None:
        self.device_id = device_id
        self.max_connections = max_connections
        self._roles: dict[str, list[Connection]] = {}

    # ----- queries ---------------------------------------------------------

    def connections(self) -> list[Connection]:
        return [c for conns in self._roles.values() for c in conns]

    def count(self, role: str | None = None) -> int:
        if role is None:
            return sum(len(c) for c in self._roles.values())
        return len(self._roles.get(role, ()))

    def primary(self, role: str = "") -> Connection | None:
        conns = self._roles.get(role)
        if not conns:
            return None
        return max(conns, key=lambda c: c.election_id)

    def primaries(self) -> list[Connection]:
        return [p for role in self._roles if (p := self.primary(role)) is not None]

    def is_primary(self, role: str, election_id: int) -> bool:
        p = self.primary(role)
        return p is not None and p.election_id == election_id

    def is_primary_connection(self, conn: Connection) -> bool:
        return conn.arbitrated and self.primary(conn.role) is conn

    # ----- updates -----------------------------------------------------------

    def arbitrate(self, conn: Connection, update: p4runtime_pb2.MasterArbitrationUpdate) -> None:
        """Apply a ``MasterArbitrationUpdate``; P4RuntimeError ends the stream."""
        role = role_key(update.role.name, update.role.id)
        if update.role.HasField("config"):
            raise P4RuntimeError(
                Code.INVALID_ARGUMENT, "Role config is not supported by this server"
            )
        election_id = uint128(update.election_id)
        if not conn.arbitrated:
            if update.device_id != self.device_id:
                raise P4RuntimeError(Code.NOT_FOUND, f"Unknown device id {update.device_id}")
            if self.count() >= self.max_connections:
                raise P4RuntimeError(Code.RESOURCE_EXHAUSTED, "Too many connections")
            conns = self._roles.setdefault(role, [])
            if any(c.election_id == election_id for c in conns):
                if not conns:
                    del self._roles[role]
                raise P4RuntimeError(Code.INVALID_ARGUMENT, "Election id already exists")
            conn.device_id = update.device_id
            conn.role = role
            conn.role_name = update.role.name
            conn.election_id = election_id
            conns.append(conn)
            log.info(
                "stream %s (%s): election id %d, role %r",
                conn.conn_id,
                conn.peer,
                election_id,
                role,
            )
            if self.primary(role) is conn:
                self._notify_all(role)
            else:
                self._notify_one(conn)
            return
        if update.device_id != conn.device_id:
            raise P4RuntimeError(Code.FAILED_PRECONDITION, "Invalid device id")
        if role != conn.role:
            raise P4RuntimeError(
                Code.FAILED_PRECONDITION, "Role cannot change on a stream; open a new one"
            )
        if election_id == conn.election_id:
            return
        conns = self._roles[role]
        if any(c is not conn and c.election_id == election_id for c in conns):
            raise P4RuntimeError(Code.INVALID_ARGUMENT, "New election id already exists")
        was_primary = self.primary(role) is conn
        conn.election_id = election_id
        is_primary = self.primary(role) is conn
        log.info("stream %s: election id now %d", conn.conn_id, election_id)
        if was_primary != is_primary:
            self._notify_all(role)
        else:
            self._notify_one(conn)

    def remove(self, conn: Connection) -> None:
        if not conn.arbitrated:
            return
        conns = self._roles.get(conn.role)
        if not conns or conn not in conns:
            return
        was_primary = self.primary(conn.role) is conn
        conns.remove(conn)
        if not conns:
            del self._roles[conn.role]
        log.info("stream %s (%s) closed", conn.conn_id, conn.peer)
        if was_primary and conns:
            self._notify_all(conn.role)

    def close_all(self, code: int | None, message: str) -> None:
        """End every stream (fault injection, shutdown)."""
        for conn in self.connections():
            conn.close(code, message)

    # ----- notifications ---------------------------------------------------

    def send_to_primaries(self, msg: p4runtime_pb2.StreamMessageResponse) -> int:
        """Send to every role's primary; the number of streams that took it."""
        return sum(1 for p in self.primaries() if p.send(msg))

    def _notify_all(self, role: str) -> None:
        for c in self._roles.get(role, ()):
            self._notify_one(c)

    def _notify_one(self, conn: Connection) -> None:
        primary = self.primary(conn.role)
        msg = p4runtime_pb2.StreamMessageResponse()
        arb = msg.arbitration
        arb.device_id = self.device_id
        if conn.role_name:
            arb.role.name = conn.role_name
        if primary is not None:
            arb.election_id.high = primary.election_id >> 64
            arb.election_id.low = primary.election_id & ((1 << 64) - 1)
        if primary is conn:
            arb.status.CopyFrom(status_pb2.Status(code=Code.OK, message="Is primary"))
        else:
            arb.status.CopyFrom(status_pb2.Status(code=Code.ALREADY_EXISTS, message="Is backup"))
        conn.send(msg, droppable=False)
