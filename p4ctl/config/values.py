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

from p4ctl.config.model import PortSet
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

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")


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
    return repr(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    if not _NAME.match(value):
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
    """Seconds from a number of seconds or text like ``500ms``, ``5s``, ``2m``, ``1m30s``."""
    if _is_int(value) or isinstance(value, float):
        seconds = float(value)
    elif isinstance(value, str):
        textual = value.strip().replace(" ", "")
        parts = _DURATION_PART.findall(textual)
        if not parts or "".join(n + u for n, u in parts) != textual:
            try:
                seconds = float(textual)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a duration (a number of seconds, or e.g. "
                    "'500ms', '5s', '2m', '1h')"
                ) from None
        else:
            seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    else:
        raise ValueError(f"{show(value)} is not a duration")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"{show(value)} is not a finite duration")
    if seconds < 0:
        raise ValueError(f"{show(value)} is negative")
    return seconds


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
        low_text, dash, high_text = value.partition("-")
        try:
            low = int(low_text.strip())
            high = int(high_text.strip()) if dash else low
        except ValueError:
            raise ValueError(f"{value!r} is not a port or a port range like '8000-8080'") from None
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
        if lowered.isdigit():
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
    if not colon or not host or not port_text.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    port = int(port_text)
    if not 1 <= port <= MAX_L4_PORT:
        raise ValueError(f"{address!r} has port {port}, not 1-{MAX_L4_PORT}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{address!r} has a bad IPv6 address") from None
        return host[1:-1], port
    if not _HOSTNAME.match(host):
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
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not _is_int(value) or not 0 <= value <= MAX_VRF:
        raise ValueError(f"{show(value)} is not a VRF number (0-{MAX_VRF})")
    return value
