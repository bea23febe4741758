"""Stream-channel messages as plain classes: packets, digest lists, idle timeouts, errors.

The StreamChannel carries, besides arbitration, what the switch tells the
controller unasked (packet-in, digest lists, idle-timeout notifications,
stream errors) and what the controller pushes (packet-out, digest acks).
These classes decode the ``p4.v1`` messages by name through the P4Info, so
handlers see ``packet.metadata["ingress_port"]`` and ``digest.data[0]["src_addr"]``
rather than ids and byte strings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from p4.v1 import p4runtime_pb2

from p4ctl.p4rt.encoding import EncodingError, decode_uint, encode_uint, to_int
from p4ctl.p4rt.entities import TableEntry
from p4ctl.p4rt.p4info import ControllerPacketMetadata, P4Info, P4InfoError

__all__ = [
    "DigestList",
    "IdleTimeoutNotification",
    "PacketIn",
    "PacketOut",
    "StreamError",
]


def _metadata_header(p4info: P4Info, name: str) -> ControllerPacketMetadata:
    header = p4info.controller_packet_metadata.get(name)
    if header is None:
        raise EncodingError(f"the P4Info has no {name} controller header")
    return header


@dataclass(slots=True)
class PacketIn:
    """A packet the switch sent to the controller, with its ``packet_in`` metadata by name."""

    payload: bytes
    metadata: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.PacketIn, p4info: P4Info) -> PacketIn:
        return cls(msg.payload, _decode_metadata(msg, p4info, "packet_in"))


@dataclass(slots=True)
class PacketOut:
    """A packet for the switch to send, with its ``packet_out`` metadata by name.

    Every metadata field of the P4Info ``packet_out`` header must be given,
    except padding fields (names starting with ``_``, as p4c emits for
    alignment), which default to 0.
    """

    payload: bytes
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_proto(self, p4info: P4Info) -> p4runtime_pb2.PacketOut:
        msg = p4runtime_pb2.PacketOut(payload=self.payload)
        if not self.metadata and p4info.packet_out() is None:
            return msg
        header = _metadata_header(p4info, "packet_out")
        for name in self.metadata:
            try:
                header.field(name)
            except P4InfoError as exc:
                raise EncodingError(str(exc)) from None
        for info in header.fields:
            raw = self.metadata.get(info.name)
            if raw is None:
                if not info.name.startswith("_"):
                    raise EncodingError(f"packet_out metadata {info.name} is missing")
                raw = 0
            try:
                value = encode_uint(to_int(raw, info.bitwidth), info.bitwidth)
            except EncodingError as exc:
                raise EncodingError(f"packet_out metadata {info.name}: {exc}") from None
            msg.metadata.add(metadata_id=info.id, value=value)
        return msg


@dataclass(slots=True)
class DigestList:
    """One digest list: ``data`` holds one decoded message per entry (a dict for structs)."""

    digest: str
    digest_id: int
    list_id: int
    data: list[Any]
    timestamp: int = 0
    #: the client session it came on (list ids start again with each one); 0: not known
    session: int = field(default=0, compare=False)

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.DigestList, p4info: P4Info) -> DigestList:
        try:
            digest = p4info.digests[msg.digest_id]
        except P4InfoError as exc:
            raise EncodingError(str(exc)) from None
        decode = digest.type.decode
        try:
            data = [decode(item) for item in msg.data]
        except EncodingError as exc:
            raise EncodingError(f"digest {digest.name} list {msg.list_id}: {exc}") from None
        return cls(digest.name, msg.digest_id, msg.list_id, data, msg.timestamp)


@dataclass(slots=True)
class IdleTimeoutNotification:
    """Entries that stayed idle for their TTL (key, TTL and metadata set; nothing else)."""

    entries: list[TableEntry]
    timestamp: int = 0

    @classmethod
    def from_proto(
        cls, msg: p4runtime_pb2.IdleTimeoutNotification, p4info: P4Info
    ) -> IdleTimeoutNotification:
        return cls.from_entries(msg.table_entry, msg.timestamp, p4info)

    @classmethod
    def from_entries(
        cls, entries: Iterable[p4runtime_pb2.TableEntry], timestamp: int, p4info: P4Info
    ) -> IdleTimeoutNotification:
        """Of some of a notification's entries (the client drops repeats first)."""
        return cls([TableEntry.from_table_entry(e, p4info) for e in entries], timestamp)


@dataclass(slots=True)
class StreamError:
    """A ``p4.v1.StreamError``: the switch could not handle something we sent on the stream.

    ``kind`` says what was refused (``"packet_out"``, ``"digest_list_ack"``,
    ``"other"`` or ``""``); ``offending`` is that message (a :class:`PacketOut`
    when it decodes, else the protobuf).
    """

    canonical_code: int
    message: str
    space: str = ""
    code: int = 0
    kind: str = ""
    offending: Any = None

    @classmethod
    def from_proto(cls, msg: p4runtime_pb2.StreamError, p4info: P4Info | None) -> StreamError:
        kind = msg.WhichOneof("details") or ""
        offending: Any = None
        if kind == "packet_out":
            offending = msg.packet_out.packet_out
            if p4info is not None:
                with contextlib.suppress(EncodingError):
                    offending = _decode_packet_out(offending, p4info)
        elif kind == "digest_list_ack":
            offending = msg.digest_list_ack.digest_list_ack
        elif kind == "other":
            offending = msg.other.other
        return cls(msg.canonical_code, msg.message, msg.space, msg.code, kind, offending)


def _decode_packet_out(msg: p4runtime_pb2.PacketOut, p4info: P4Info) -> PacketOut:
    return PacketOut(msg.payload, _decode_metadata(msg, p4info, "packet_out"))


def _decode_metadata(
    msg: p4runtime_pb2.PacketIn | p4runtime_pb2.PacketOut, p4info: P4Info, header_name: str
) -> dict[str, int]:
    """A packet's metadata by name, from the P4Info's ``header_name`` controller header."""
    metadata: dict[str, int] = {}
    if msg.metadata:
        header = _metadata_header(p4info, header_name)
        for md in msg.metadata:
            info = header.fields_by_id.get(md.metadata_id)
            if info is None:
                raise EncodingError(f"{header_name} has no metadata id {md.metadata_id}")
            try:
                metadata[info.name] = decode_uint(md.value, info.bitwidth)
            except EncodingError as exc:
                raise EncodingError(f"{header_name} metadata {info.name}: {exc}") from None
    return metadata
