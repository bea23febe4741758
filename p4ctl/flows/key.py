"""Flow keys and the bucket hash the switch computes over them.

A flow key is VRF + IP 5-tuple, as in the vRouter flow table. For ICMP echo
the identifier stands in for both ports (so the reply's key is the reverse of
the request's). The bucket hash is BMv2's ``crc32`` (CRC-32/ISO-HDLC, the
same as :func:`zlib.crc32`) over the key fields packed bit-contiguously, most
significant bit first, zero-padded at the end to whole bytes: exactly how
p4c's v1model ``hash(..., HashAlgorithm.crc32, ...)`` over a field list is
computed by BMv2 (``bm_sim/calculations.cpp``: the field list is serialised
into a byte buffer without per-field padding before the CRC runs).

The field order and widths come from the pipeline description
(``pipelines/flowcache/pipeline.yaml``, ``hash.fields``); ``KEY_FIELDS`` is the
IPv4 layout of the committed program. IPv6 keys will widen the address fields;
nothing here assumes 104 bits: widths are data.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: (field name, bit width) in hash and key order, IPv4 layout.
KEY_FIELDS: tuple[tuple[str, int], ...] = (
    ("vrf", 16),
    ("src_addr", 32),
    ("dst_addr", 32),
    ("proto", 8),
    ("src_port", 16),
    ("dst_port", 16),
)
_WIDTHS = tuple(width for _, width in KEY_FIELDS)

#: bits of a packed key
KEY_BITS = sum(width for _, width in KEY_FIELDS)

#: (shift, mask) of each field in a packed key, by name
_CUT = {name: (sum(w for _, w in KEY_FIELDS[i + 1:]), (1 << width) - 1)
        for i, (name, width) in enumerate(KEY_FIELDS)}
(_PROTO_SHIFT, _PROTO_MASK), (_SPORT_SHIFT, _SPORT_MASK), (_DPORT_SHIFT, _DPORT_MASK) = (
    _CUT["proto"], _CUT["src_port"], _CUT["dst_port"])

IP_PROTO_ICMP = 1
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17

_PROTO_NAMES = {"icmp": IP_PROTO_ICMP, "tcp": IP_PROTO_TCP, "udp": IP_PROTO_UDP}


def pack_fields(values: Iterable[int], widths: Sequence[int]) -> tuple[int, int]:
    """Concatenate ``values`` (MSB first) into one integer; return it and its bit count."""
    packed = 0
    total = 0
    for value, width in zip(values, widths, strict=True):
        if value < 0 or value >> width:
            raise ValueError(f"value {value} does not fit in {width} bits")
        packed = (packed << width) | value
        total += width
    return packed, total


def crc32_of_bits(value: int, nbits: int) -> int:
    """BMv2's crc32 over ``nbits`` bits of ``value``, zero-padded at the end to bytes."""
    pad = -nbits % 8
    return zlib.crc32((value << pad).to_bytes((nbits + pad) // 8, "big"))


def crc32_fields(values: Iterable[int], widths: Sequence[int]) -> int:
    """BMv2's crc32 over a field list, as ``hash(out, HashAlgorithm.crc32, 0, {...}, 2^32)``."""
    return crc32_of_bits(*pack_fields(values, widths))


def _pack_plain(values: Iterable[int]) -> int:
    """The packed key of plain ints that fit their fields; -1 for anything else."""
    packed = 0
    for width, value in zip(_WIDTHS, values, strict=True):
        if value.__class__ is not int or value < 0 or value >> width:
            return -1
        packed = (packed << width) | value
    return packed


def pack_key(values: Sequence[int]) -> int:
    """The :meth:`FlowKey.packed` integer of six field values, without making the key.

    For the new-flow path, which only needs the integer; raises
    :class:`ValueError` naming the field, as :class:`FlowKey` does.
    """
    packed = _pack_plain(values)
    return packed if packed >= 0 else FlowKey(*values).packed()


def bucket_hash_of(packed: int) -> int:
    """The switch's crc32 of a packed key (the value the new-flow digest carries)."""
    return crc32_of_bits(packed, KEY_BITS)


@dataclass(slots=True, frozen=True)
class FlowKey:
    """One direction of a session: VRF + IPv4 5-tuple (addresses as integers)."""

    vrf: int
    src_addr: int
    dst_addr: int
    proto: int
    src_port: int
    dst_port: int
    #: the fields concatenated in hash order, computed once (validation does it anyway)
    _packed: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        packed = _pack_plain(self.values())
        if packed < 0:
            self._normalize()  # raises, or turns IntEnum fields into ints
            packed = _pack_plain(self.values())
        object.__setattr__(self, "_packed", packed)

    def _normalize(self) -> None:
        """The slow path of ``__post_init__``: name the bad field, or take IntEnums by value."""
        for (name, width), value in zip(KEY_FIELDS, self.values(), strict=True):
            if value.__class__ is not int:  # an IntEnum is taken by value; bools are not
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"flow key field {name}={value!r} is not an integer")
                value = int(value)
                object.__setattr__(self, name, value)
            if value < 0 or value >> width:
                raise ValueError(f"flow key field {name}={value!r} does not fit in {width} bits")

    def values(self) -> tuple[int, int, int, int, int, int]:
        return (self.vrf, self.src_addr, self.dst_addr, self.proto, self.src_port, self.dst_port)

    def reverse(self) -> FlowKey:
        """The key of the reply direction (addresses and ports swapped)."""
        return FlowKey(
            self.vrf, self.dst_addr, self.src_addr, self.proto, self.dst_port, self.src_port
        )

    def packed(self) -> int:
        """The key as one integer (fields concatenated in hash order): compact and hashable."""
        return self._packed

    @classmethod
    def unpack(cls, packed: int) -> FlowKey:
        """The key of :meth:`packed`'s integer (fields cut out of it: each fits its width)."""
        if packed < 0 or packed >> KEY_BITS:
            raise ValueError(f"packed flow key {packed:#x} is not {KEY_BITS} bits")
        key = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(key, "_packed", packed)
        for name, width in reversed(KEY_FIELDS):
            setattr_(key, name, packed & ((1 << width) - 1))
            packed >>= width
        return key

    @staticmethod
    def l4_of(packed: int) -> tuple[int, int, int]:
        """(proto, src_port, dst_port) of a :meth:`packed` key, without making the key."""
        return (packed >> _PROTO_SHIFT & _PROTO_MASK, packed >> _SPORT_SHIFT & _SPORT_MASK,
                packed >> _DPORT_SHIFT & _DPORT_MASK)

    def bucket_hash(self) -> int:
        """The switch's crc32 of this key (the value the new-flow digest carries)."""
        return bucket_hash_of(self._packed)

    @classmethod
    def parse(cls, text: str) -> FlowKey:
        """Parse ``vrf,src,dst,proto,sport,dport`` (proto as number or tcp/udp/icmp)."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 6:
            raise ValueError(f"expected vrf,src,dst,proto,sport,dport, got {text!r}")
        proto = _PROTO_NAMES.get(parts[3].lower())
        return cls(
            int(parts[0], 0),
            int(ipaddress.IPv4Address(parts[1])),
            int(ipaddress.IPv4Address(parts[2])),
            proto if proto is not None else int(parts[3], 0),
            int(parts[4], 0),
            int(parts[5], 0),
        )

    def __str__(self) -> str:
        src = ipaddress.IPv4Address(self.src_addr)
        dst = ipaddress.IPv4Address(self.dst_addr)
        return (
            f"vrf {self.vrf} {src}:{self.src_port} -> {dst}:{self.dst_port} proto {self.proto}"
        )
