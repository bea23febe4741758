"""Converters from YAML values to typed configuration values.

Each converter takes the Python value PyYAML built for one scalar and returns
the typed value, or raises :class:`ValueError` whose text says what is wrong
with the value itself (the loader adds the file, line and field). They know
nothing about YAML nodes, so the command line can reuse them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from p4ctl.config.model import PortSet, seconds_to_ns
from p4ctl.flows.key import IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP

T = TypeVar("T")
Converter = Callable[[Any], T]

#: Switch ports are 9 bits in v1model (``standard_metadata.egress_spec``) and on
#: Tofino; 511 is simple_switch's drop port (``SimpleSwitchRunner::default_drop_port``
#: in behavioral-model ``targets/simple_switch/bm/simple_switch/runner.h``), so a
#: flow sent there would vanish silently.
MAX_SWITCH_PORT = 510
MAX_L4_PORT = 65535
MAX_VRF = (1 << 16) - 1  # the key's vrf field is 16 bits (p4ctl.flows.key.KEY_FIELDS)

PROTOCOLS = {"tcp": IP_PROTO_TCP, "udp": IP_PROTO_UDP, "icmp": IP_PROTO_ICMP}

#: The longest duration any field takes. Durations end up as int64 nanoseconds
#: (P4Runtime's ``idle_timeout_ns``, ``DigestEntry.Config``), which overflow
#: past 292 years; a year is far beyond any sensible timeout or interval and
#: keeps a typo (``1e12``) from turning into "never".
MAX_DURATION_S = 365 * 24 * 3600

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# ASCII digits only: ``\d`` and float() would take any Unicode digit.
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Patterns are used with fullmatch: ``$`` would let a trailing newline through.
_HOSTNAME = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_DOTTED_DIGITS = re.compile(r"[0-9.]+")  # a host that can only be meant as an IPv4 address
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")
# A port written in plain decimal. A leading zero is refused too: YAML 1.1 reads
# an unquoted ``010`` as octal 8, and a port written that way is almost surely a
# typo, so quoted ports follow the same rule rather than meaning something else.
_PORT = re.compile(r"0|[1-9][0-9]*")
# How a YAML int or float must be written where its text matters (ports and
# durations): no YAML 1.1 base-60 (``20:21``), ``_`` separators, hex, binary or
# leading-zero octal, which all silently give a different number.
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_FLOAT = re.compile(
    r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


def show(value: object) -> str:
    """How a bad value is quoted in a message."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_int(value) and abs(value) >= 10**30:  # a 400-digit number helps no one read
        return f"a {len(str(abs(value)))}-digit number"
    return repr(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def plain_decimal(text: str, is_float: bool) -> bool:
    """Whether ``text`` (a YAML int or float's source) is written in plain decimal.

    YAML 1.1 reads ``20:21`` as 1221 (base 60), ``010`` as 8 and ``1_000`` as
    1000; where a number is a port or a duration that is never what was meant.
    """
    return bool((_PLAIN_FLOAT if is_float else _PLAIN_INT).fullmatch(text))


def integer(low: int, high: int | None = None, what: str = "an integer") -> Converter[int]:
    """An int in ``[low, high]`` (YAML ``true`` is not 1 here)."""

    def convert(value: Any) -> int:
        if not _is_int(value):
            raise ValueError(f"{show(value)} is not {what}")
        if value < low or (high is not None and value > high):
            bound = f"{low}-{high}" if high is not None else f"at least {low}"
            raise ValueError(f"{value} is out of range ({bound})")
        return value

    return convert


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{show(value)} is not true or false")
    return value


def name(value: Any) -> str:
    """A non-empty identifier for logs and metric labels (letters, digits, ``_.:-``)."""
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not a name (a string)")
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a name (letters, digits, '_', '.', ':', '-')")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{show(value)} is not a non-empty string")
    return value


def choice(options: Sequence[str]) -> Converter[str]:
    """One of ``options`` (case-insensitive); the message lists them."""

    def convert(value: Any) -> str:
        if isinstance(value, str) and value.lower() in options:
            return value.lower()
        raise ValueError(f"{show(value)} is not one of {', '.join(options)}")

    return convert


def duration(value: Any) -> float:
    """Seconds from a number of seconds or text like ``500ms``, ``5s``, ``2m``, ``1m30s``.

    At most :data:`MAX_DURATION_S`; anything but 0 is at least 1 ns, since the
    controller hands durations on as whole nanoseconds and a value that rounds
    to 0 would silently mean "no timeout" or "off".
    """
    if _is_int(value):
        if value > MAX_DURATION_S:  # before float(), which overflows on huge ints
            raise ValueError(f"{show(value)} is more than {MAX_DURATION_S // 86400} days")
        seconds = float(value)
    elif isinstance(value, float):
        seconds = value
    elif isinstance(value, str):
        seconds = _duration_text(value)
    else:
        raise ValueError(f"{show(value)} is not a duration")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"{show(value)} is not a finite duration")
    if seconds < 0:
        raise ValueError(f"{show(value)} is negative")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{show(value)} is more than {MAX_DURATION_S // 86400} days")
    if seconds and seconds_to_ns(seconds) < 1:
        raise ValueError(f"{show(value)} is less than 1ns (the smallest duration P4Runtime "
                         "can express)")
    return seconds


def _duration_text(value: str) -> float:
    """Seconds from ``1m30s`` or a plain number written as text (``'7'``)."""
    textual = value.strip().replace(" ", "")
    parts = _DURATION_PART.findall(textual)
    if parts and "".join(n + u for n, u in parts) == textual:
        return sum(float(number) * _UNITS[unit] for number, unit in parts)
    if _SECONDS.fullmatch(textual):  # not float() alone: it takes '1_0', 'nan', Unicode digits
        return float(textual)
    raise ValueError(
        f"{value!r} is not a duration (a number of seconds, or e.g. '500ms', '5s', '2m', '1h')"
    )


def positive_duration(value: Any) -> float:
    seconds = duration(value)
    if seconds == 0:
        raise ValueError(f"{show(value)} must be more than zero")
    return seconds


def port_range(value: Any) -> tuple[int, int]:
    """An L4 port ``80`` or an inclusive range ``"8000-8080"``."""
    if _is_int(value):
        if not 0 <= value <= MAX_L4_PORT:
            raise ValueError(f"{value} is not a port (0-{MAX_L4_PORT})")
        return value, value
    if isinstance(value, str):
        low_text, dash, high_text = (part.strip() for part in value.partition("-"))
        if not _PORT.fullmatch(low_text) or (dash and not _PORT.fullmatch(high_text)):
            raise ValueError(f"{value!r} is not a port or a port range like '8000-8080'")
        low = int(low_text)
        high = int(high_text) if dash else low
        if not (0 <= low <= MAX_L4_PORT and 0 <= high <= MAX_L4_PORT):
            raise ValueError(f"{value!r} is not a port range (ports are 0-{MAX_L4_PORT})")
        if low > high:
            raise ValueError(f"{value!r} is not a port range (low > high)")
        return low, high
    raise ValueError(f"{show(value)} is not a port or a port range")


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> PortSet:
    """A :class:`PortSet` of the union of ``ranges`` (sorted, overlaps joined)."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    if merged == [(0, MAX_L4_PORT)]:
        return PortSet()
    return PortSet(tuple(merged))


def protocol(value: Any) -> int | None:
    """``tcp``, ``udp``, ``icmp``, ``any`` (None) or an IP protocol number 0-255."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "any":
            return None
        if lowered in PROTOCOLS:
            return PROTOCOLS[lowered]
        if lowered.isascii() and lowered.isdigit():  # int() would take '²' and fail
            value = int(lowered)
    if _is_int(value) and 0 <= value <= 255:
        return value
    raise ValueError(f"{show(value)} is not a protocol (tcp, udp, icmp, any or 0-255)")


def protocol_name(number: int | None) -> str:
    if number is None:
        return "any"
    for label, value in PROTOCOLS.items():
        if value == number:
            return label
    return str(number)


def ipv4_network(value: Any) -> ipaddress.IPv4Network:
    """An IPv4 prefix ``10.0.0.0/24``, an address (a /32) or ``any``."""
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not an IPv4 prefix or address")
    if value.strip().lower() == "any":
        return ipaddress.IPv4Network("0.0.0.0/0")
    try:
        return ipaddress.IPv4Network(value.strip())
    except ValueError as exc:
        try:
            loose = ipaddress.IPv4Network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 prefix or address ({exc})") from None
        raise ValueError(
            f"{value!r} has host bits set (did you mean '{loose}'?)"
        ) from None


def ipv4_address(value: Any) -> ipaddress.IPv4Address:
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not an IPv4 address")
    try:
        return ipaddress.IPv4Address(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (host an IPv4 address, a DNS name or ``[IPv6]``) as its two parts."""
    host, colon, port_text = address.rpartition(":")
    if not colon or not host or not port_text:
        raise ValueError(f"{address!r} is not host:port")
    if not port_text.isascii() or not port_text.isdigit():  # int() takes Unicode digits too
        raise ValueError(f"{address!r} has a bad port {port_text!r} (the port must be a "
                         "decimal number)")
    port = int(port_text)
    if not 1 <= port <= MAX_L4_PORT:
        raise ValueError(f"{address!r} has port {port}, not 1-{MAX_L4_PORT}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{address!r} has a bad IPv6 address") from None
        return host[1:-1], port
    if _DOTTED_DIGITS.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{address!r} has a bad IPv4 address {host!r}") from None
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(f"{address!r} has a bad host name {host!r}")
    return host, port


def endpoint(value: Any) -> str:
    """A ``host:port`` string, as gRPC and Thrift want it."""
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not host:port")
    split_host_port(value.strip())
    return value.strip()


def switch_port(value: Any) -> int:
    """A switch port number (9 bits, without BMv2's drop port 511)."""
    if not _is_int(value):
        raise ValueError(f"{show(value)} is not a switch port")
    if not 0 <= value <= MAX_SWITCH_PORT:
        raise ValueError(f"{value} is not a switch port (0-{MAX_SWITCH_PORT})")
    return value


def vrf(value: Any) -> int:
    """A VRF number (16 bits); quoted digits are accepted, as YAML keys often are."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if not _is_int(value) or not 0 <= value <= MAX_VRF:
        raise ValueError(f"{show(value)} is not a VRF number (0-{MAX_VRF})")
    return value
