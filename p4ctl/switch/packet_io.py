"""Packet-in and packet-out: the controller headers at the front of CPU packets.

As in PI (p4lang/PI ``proto/frontend/src/packet_io_mgr.cpp``), the P4Info's
``controller_packet_metadata`` named ``packet_in`` and ``packet_out``
describe a header the P4 program puts in front of (packet-in) or expects in
front of (packet-out) the payload on the CPU port. Its fields are packed
bit-contiguously in P4Info order, most significant bit first, and the header
is padded to whole bytes.

* Packet-in: a packet the pipeline sends to the CPU port becomes a
  ``PacketIn`` whose metadata are cut from the first
  ``ceil(sum(bitwidths) / 8)`` bytes and whose payload is the rest. A packet
  shorter than the header is dropped (PI's ``PacketInMutate`` returns false).
  Without a ``packet_in`` header the whole packet is the payload.
* Packet-out: the ``PacketOut`` metadata are packed into that header, missing
  fields left 0 (PI's current behaviour; the specification would drop the
  packet), and the header is prepended to the payload. An unknown metadata id
  is ``INVALID_ARGUMENT`` "Unknown metadata id in PacketOut message"; metadata
  when the P4Info has no ``packet_out`` header is ``INVALID_ARGUMENT``
  "Unexpected metadata in PacketOut message".
"""

from __future__ import annotations

from p4.v1 import p4runtime_pb2

from p4ctl.switch.codec import Code, P4RuntimeError, bytes_to_int, int_to_bytes
from p4ctl.switch.p4info_map import ControllerHeader

__all__ = ["PacketInCodec", "PacketOutCodec"]


class PacketInCodec:
    """Turns a CPU-port packet into a ``PacketIn``."""

    def __init__(self, header: ControllerHeader | None) -> None:
        self._fields = header.fields if header else []
        nbits = sum(w for _, _, w in self._fields)
        self._nbits = nbits
        self._nbytes = (nbits + 7) // 8

    def decode(self, packet: bytes) -> p4runtime_pb2.PacketIn | None:
        """The ``PacketIn`` for ``packet``, or None if it is shorter than the header."""
        msg = p4runtime_pb2.PacketIn()
        if not self._fields:
            msg.payload = packet
            return msg
        n = self._nbytes
        if len(packet) < n:
            return None
        msg.payload = packet[n:]
        value = int.from_bytes(packet[:n], "big")
        shift = n * 8
        for md_id, _name, width in self._fields:
            shift -= width
            md = msg.metadata.add()
            md.metadata_id = md_id
            md.value = int_to_bytes((value >> shift) & ((1 << width) - 1))
        return msg


class PacketOutCodec:
    """Turns a ``PacketOut`` into the bytes injected on the CPU port."""

    def __init__(self, header: ControllerHeader | None) -> None:
        self._header = header
        self._offsets: dict[int, tuple[int, int]] = {}
        if header is not None:
            nbits = sum(w for _, _, w in header.fields)
            self._nbytes = (nbits + 7) // 8
            shift = self._nbytes * 8
            for md_id, _name, width in header.fields:
                shift -= width
                self._offsets[md_id] = (shift, width)

    def encode(self, msg: p4runtime_pb2.PacketOut) -> bytes:
        if self._header is None:
            if len(msg.metadata):
                raise P4RuntimeError(
                    Code.INVALID_ARGUMENT, "Unexpected metadata in PacketOut message"
                )
            return msg.payload
        value = 0
        for md in msg.metadata:
            where = self._offsets.get(md.metadata_id)
            if where is None:
                raise P4RuntimeError(
                    Code.INVALID_ARGUMENT, "Unknown metadata id in PacketOut message"
                )
            shift, width = where
            field_value = bytes_to_int(md.value, width)
            # A repeated id overwrites the earlier value, as PI's ordering pass does.
            value &= ~(((1 << width) - 1) << shift)
            value |= field_value << shift
        return value.to_bytes(self._nbytes, "big") + msg.payload
