"""P4Runtime's canonical byte strings for integers of any bit width.

P4Runtime carries every P4 integer (match fields, action parameters, packet
metadata, ``P4Data`` bitstrings) as a protobuf ``bytes`` value, big-endian,
whose width comes from the P4Info. The specification (P4Runtime-Spec.adoc,
section "Bytestrings") makes the *shortest* string the canonical form: no
leading zero bytes (for ``int<W>``: no redundant sign bytes), and at least one
byte, so 0 is ``b"\\x00"``. Servers compare keys byte for byte and answer in
canonical form, so the client must produce exactly that form, or a read-back
would not equal what was written.

Decoding is lenient where it cannot be wrong: older PI/BMv2 builds answer with
strings padded to ``(W + 7) // 8`` bytes, which decode to the same value. What
is refused, with :class:`EncodingError`, is a value that does not fit ``W``
bits, a negative value for ``bit<W>``, and an empty string.

Helpers turn IPv4/IPv6 addresses and MAC addresses into integers and back, so
callers can write ``"10.0.0.1"`` where a ``bit<32>`` is expected.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = [
    "EncodingError",
    "canonical",
    "canonical_bytes",
    "decode_int",
    "decode_ipv4",
    "decode_ipv6",
    "decode_mac",
    "decode_uint",
    "encode_int",
    "encode_ipv4",
    "encode_ipv6",
    "encode_mac",
    "encode_uint",
    "encode_value",
    "format_mac",
    "parse_mac",
    "prefix_mask",
    "to_int",
]


class EncodingError(ValueError):
    """A value that cannot be carried in the requested P4 type."""


def _check_width(bitwidth: int) -> None:
    if not isinstance(bitwidth, int) or isinstance(bitwidth, bool) or bitwidth < 1:
        raise EncodingError(f"bit width must be a positive integer, not {bitwidth!r}")


def encode_uint(value: int, bitwidth: int) -> bytes:
    """Canonical bytes of ``value`` as a ``bit<bitwidth>``.

    >>> encode_uint(0, 8), encode_uint(0x0102, 32)
    (b'\\x00', b'\\x01\\x02')
    """
    if type(value) is not int:  # bool is an int subclass: refuse it, accept IntEnum
        if not isinstance(value, int) or isinstance(value, bool):
            raise EncodingError(f"expected an integer for bit<{bitwidth}>, got {value!r}")
        value = int(value)
    if value < 0:
        raise EncodingError(f"negative value {value} for unsigned bit<{bitwidth}>")
    nbits = value.bit_length()
    if nbits > bitwidth or bitwidth < 1:
        _check_width(bitwidth)
        raise EncodingError(f"value {value:#x} does not fit in bit<{bitwidth}>")
    return canonical_bytes(value)


def canonical_bytes(value: int) -> bytes:
    """The shortest big-endian bytes of a non-negative int already known to fit its field.

    For callers whose values were checked elsewhere (a flow key's fields, for
    one); :func:`encode_uint` checks and then calls this.
    """
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def decode_uint(data: bytes, bitwidth: int) -> int:
    """Value of a ``bit<bitwidth>`` byte string (canonical or zero-padded)."""
    if not data:
        raise EncodingError(f"empty byte string for bit<{bitwidth}>")
    value = int.from_bytes(data, "big")
    if value.bit_length() > bitwidth or bitwidth < 1:
        _check_width(bitwidth)
        raise EncodingError(
            f"byte string {data.hex()} ({value:#x}) does not fit in bit<{bitwidth}>"
        )
    return value


def encode_int(value: int, bitwidth: int) -> bytes:
    """Canonical bytes of ``value`` as a signed ``int<bitwidth>`` (two's complement).

    The shortest string whose two's-complement reading is ``value``: -1 is
    ``b"\\xff"``, 128 is ``b"\\x00\\x80"`` (a single ``0x80`` would read as -128).
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodingError(f"expected an integer for int<{bitwidth}>, got {value!r}")
    _check_width(bitwidth)
    lo, hi = -(1 << (bitwidth - 1)), (1 << (bitwidth - 1)) - 1
    if not lo <= value <= hi:
        raise EncodingError(f"value {value} does not fit in int<{bitwidth}> [{lo}, {hi}]")
    # bits needed in two's complement, sign bit included (0 and -1 need one)
    nbits = (value if value >= 0 else ~value).bit_length() + 1
    return value.to_bytes((nbits + 7) // 8, "big", signed=True)


def decode_int(data: bytes, bitwidth: int) -> int:
    """Value of an ``int<bitwidth>`` byte string (canonical or sign-extended)."""
    if not data:
        raise EncodingError(f"empty byte string for int<{bitwidth}>")
    _check_width(bitwidth)
    value = int.from_bytes(data, "big", signed=True)
    lo, hi = -(1 << (bitwidth - 1)), (1 << (bitwidth - 1)) - 1
    if not lo <= value <= hi:
        raise EncodingError(f"byte string {data.hex()} ({value}) does not fit in int<{bitwidth}>")
    return value


def canonical(data: bytes) -> bytes:
    """``data`` (an unsigned big-endian string) without its leading zero bytes."""
    stripped = data.lstrip(b"\x00")
    return stripped or b"\x00"


# -- addresses ---------------------------------------------------------------

_MAC_RE = re.compile(r"^[0-9a-fA-F]{1,2}([:-])(?:[0-9a-fA-F]{1,2}\1){4}[0-9a-fA-F]{1,2}$")


def parse_mac(text: str) -> int:
    """48-bit integer of a MAC address written ``aa:bb:cc:dd:ee:ff`` (or with dashes)."""
    if not isinstance(text, str) or not _MAC_RE.match(text):
        raise EncodingError(f"not a MAC address: {text!r}")
    return int("".join(f"{int(part, 16):02x}" for part in re.split("[:-]", text)), 16)


def format_mac(value: int) -> str:
    """``aa:bb:cc:dd:ee:ff`` for a 48-bit integer."""
    if not 0 <= value < 1 << 48:
        raise EncodingError(f"value {value!r} is not a 48-bit MAC address")
    raw = value.to_bytes(6, "big")
    return ":".join(f"{b:02x}" for b in raw)


def encode_mac(mac: str | int) -> bytes:
    """Canonical bytes of a MAC address (a ``bit<48>``)."""
    return encode_uint(parse_mac(mac) if isinstance(mac, str) else mac, 48)


def decode_mac(data: bytes) -> str:
    """MAC address text of a ``bit<48>`` byte string."""
    return format_mac(decode_uint(data, 48))


def encode_ipv4(address: str | int | ipaddress.IPv4Address) -> bytes:
    """Canonical bytes of an IPv4 address (a ``bit<32>``)."""
    try:
        value = int(ipaddress.IPv4Address(address))
    except (ipaddress.AddressValueError, ValueError) as exc:
        raise EncodingError(f"not an IPv4 address: {address!r}") from exc
    return encode_uint(value, 32)


def decode_ipv4(data: bytes) -> ipaddress.IPv4Address:
    """IPv4 address of a ``bit<32>`` byte string."""
    return ipaddress.IPv4Address(decode_uint(data, 32))


def encode_ipv6(address: str | int | ipaddress.IPv6Address) -> bytes:
    """Canonical bytes of an IPv6 address (a ``bit<128>``)."""
    try:
        value = int(ipaddress.IPv6Address(address))
    except (ipaddress.AddressValueError, ValueError) as exc:
        raise EncodingError(f"not an IPv6 address: {address!r}") from exc
    return encode_uint(value, 128)


def decode_ipv6(data: bytes) -> ipaddress.IPv6Address:
    """IPv6 address of a ``bit<128>`` byte string."""
    return ipaddress.IPv6Address(decode_uint(data, 128))


# -- flexible input ------------------------------------------------------------

Value = int | str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address


def to_int(value: Value, bitwidth: int) -> int:
    """Integer meant by ``value`` for a field of ``bitwidth`` bits.

    Accepts an ``int``; ``bytes`` (big-endian, any length); an
    ``ipaddress`` object; or text: a decimal or ``0x`` hexadecimal number, an
    IPv4 address for 32-bit fields, an IPv6 address for 128-bit fields, a MAC
    address for 48-bit fields. The range is checked by the encoder, not here.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes | bytearray):
        if not value:
            raise EncodingError(f"empty byte string for bit<{bitwidth}>")
        return int.from_bytes(value, "big")
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 0)
        except ValueError:
            pass
        try:
            if bitwidth == 32 and text.count(".") == 3:
                return int(ipaddress.IPv4Address(text))
            if bitwidth == 128 and ":" in text:
                return int(ipaddress.IPv6Address(text))
        except ValueError as exc:
            raise EncodingError(f"cannot read {value!r} as a bit<{bitwidth}> address") from exc
        if bitwidth == 48 and _MAC_RE.match(text):
            return parse_mac(text)
        raise EncodingError(f"cannot read {value!r} as a bit<{bitwidth}> value")
    raise EncodingError(f"cannot read {value!r} ({type(value).__name__}) as a bit<{bitwidth}>")


def encode_value(value: Value, bitwidth: int) -> bytes:
    """Canonical bytes of any accepted spelling of a ``bit<bitwidth>`` value."""
    if type(value) is int:  # the hot path: no dispatch
        return encode_uint(value, bitwidth)
    return encode_uint(to_int(value, bitwidth), bitwidth)


def prefix_mask(prefix_len: int, bitwidth: int) -> int:
    """Mask with the top ``prefix_len`` of ``bitwidth`` bits set."""
    if not 0 <= prefix_len <= bitwidth:
        raise EncodingError(f"prefix length {prefix_len} out of range for bit<{bitwidth}>")
    return ((1 << prefix_len) - 1) << (bitwidth - prefix_len)
