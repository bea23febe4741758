"""The typed, frozen configuration that the rest of the controller reads.

These classes hold values that have already been validated by the loader
(:mod:`p4ctl.config.schema`); they do no checking of their own, so building
one by hand in a test is cheap. Durations are seconds as ``float`` (what
asyncio wants); the ``*_ns`` properties give P4Runtime's nanoseconds.
Mappings are read-only views so a loaded configuration cannot change under
the code that holds it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from p4ctl.config.errors import ConfigIssue


def _frozen_map(items: Mapping[Any, Any] | None = None) -> Mapping[Any, Any]:
    return MappingProxyType(dict(items or {}))


def seconds_to_ns(seconds: float) -> int:
    """A duration in seconds as whole nanoseconds (P4Runtime's unit)."""
    return round(seconds * 1_000_000_000)


class RegisterBackend(StrEnum):
    """How the controller reads and writes P4 registers on a device."""

    P4RUNTIME = "p4runtime"  # RegisterEntry (the software switch, Tofino)
    THRIFT = "thrift"  # BMv2's Thrift runtime API (simple_switch_grpc)


class RuleAction(StrEnum):
    """What a policy rule does with a new flow."""

    FORWARD = "forward"
    DROP = "drop"
    SNAT = "snat"
    DNAT = "dnat"


@dataclass(frozen=True, slots=True)
class PortSet:
    """A set of L4 ports as sorted, merged, inclusive ``(low, high)`` ranges.

    The empty tuple means *any* port (no constraint), which is what an omitted
    field or ``any`` gives.
    """

    ranges: tuple[tuple[int, int], ...] = ()

    @property
    def is_any(self) -> bool:
        return not self.ranges

    def __contains__(self, port: object) -> bool:
        if not self.ranges:
            return True
        return any(low <= port <= high for low, high in self.ranges)  # type: ignore[operator]

    def __str__(self) -> str:
        if not self.ranges:
            return "any"
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)


ANY_PORT = PortSet()
ANY_NETWORK = ipaddress.IPv4Network("0.0.0.0/0")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS for the P4Runtime channel; ``cert`` and ``key`` together give mutual TLS.

    Without ``ca`` the system's trusted roots verify the server.
    """

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    @property
    def mutual(self) -> bool:
        return self.cert is not None


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One switch: where it is, who we are to it, and what runs on it."""

    name: str
    address: str  # host:port of the P4Runtime server
    device_id: int
    pipeline: Path  # directory holding pipeline.yaml and the compiled artifacts
    election_id: int = 1  # 128-bit; see election_id_pair
    role: str | None = None
    tls: TlsConfig | None = None
    push_pipeline: bool = True
    registers: RegisterBackend = RegisterBackend.P4RUNTIME
    thrift_address: str | None = None  # host:port, set when registers is THRIFT
    port_vrf: Mapping[int, int] = field(default_factory=_frozen_map)

    @property
    def election_id_pair(self) -> tuple[int, int]:
        """The election id as P4Runtime's ``Uint128`` ``(high, low)``."""
        return self.election_id >> 64, self.election_id & ((1 << 64) - 1)


@dataclass(frozen=True, slots=True)
class TableSizes:
    """Flow table geometry; must equal what the pipeline was compiled with."""

    flow_entries: int = 512_000
    overflow_entries: int = 8_000
    bucket_ways: int = 4


@dataclass(frozen=True, slots=True)
class DigestSettings:
    """P4Runtime ``DigestEntry.Config`` for the new-flow digest."""

    max_list_size: int = 128
    max_timeout: float = 0.001
    ack_timeout: float = 1.0

    @property
    def max_timeout_ns(self) -> int:
        return seconds_to_ns(self.max_timeout)

    @property
    def ack_timeout_ns(self) -> int:
        return seconds_to_ns(self.ack_timeout)


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """New-flow handling: hold mode, limits, digest and write batching. 0 = unlimited."""

    hold_mode: bool = False
    hold_queue: int = 3
    max_new_flows_per_second: int = 20_000
    max_flows_per_port: int = 0
    max_flows_per_vrf: int = 0
    digest: DigestSettings = DigestSettings()
    write_batch_size: int = 1000


@dataclass(frozen=True, slots=True)
class AgingOverride:
    """An inactivity timeout for one protocol (and optionally some ports)."""

    protocol: int
    ports: PortSet
    timeout: float

    def matches(self, proto: int, src_port: int, dst_port: int) -> bool:
        """True for this protocol when either port of the flow is in ``ports``.

        Either port, so that both directions of a session (the server's port is
        the destination one way and the source the other) get the same timeout.
        """
        if proto != self.protocol:
            return False
        return self.ports.is_any or src_port in self.ports or dst_port in self.ports


@dataclass(frozen=True, slots=True)
class TcpAging:
    """TCP teardown: grace before a closed session is evicted; half-open limit."""

    eviction_grace: float = 2.0
    half_open_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class AgingConfig:
    """Inactivity aging (vRouter ``flow_cache_timeout`` and per protocol/port overrides)."""

    default_timeout: float = 180.0
    overrides: tuple[AgingOverride, ...] = ()
    tcp: TcpAging = TcpAging()
    scan_interval: float = 1.0

    def timeout_for(self, proto: int, src_port: int, dst_port: int) -> float:
        """The timeout of a flow: the first matching override, else the default."""
        for override in self.overrides:
            if override.matches(proto, src_port, dst_port):
                return override.timeout
        return self.default_timeout


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    """Periodic audit of the switch against the store; interval 0 turns it off."""

    interval: float = 30.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Operator figures: the optional Prometheus endpoint and the periodic INFO line."""

    address: str | None = None
    log_interval: float = 60.0


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """The action part of a rule or default, as written in the file."""

    action: RuleAction
    port: int | None = None  # egress port (forward, snat, dnat)
    to_address: ipaddress.IPv4Address | None = None  # snat: new source; dnat: new destination
    to_port: int | None = None  # new L4 port; None keeps the original


DROP_SPEC = ActionSpec(RuleAction.DROP)


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One ordered rule: match fields (omitted = any) and an action."""

    name: str
    then: ActionSpec
    src: ipaddress.IPv4Network = ANY_NETWORK
    dst: ipaddress.IPv4Network = ANY_NETWORK
    protocol: int | None = None  # IP protocol number; None = any
    src_ports: PortSet = ANY_PORT
    dst_ports: PortSet = ANY_PORT
    in_ports: frozenset[int] | None = None  # ingress switch ports; None = any


@dataclass(frozen=True, slots=True)
class VrfPolicy:
    """The rules of one VRF (first match wins) and its optional default."""

    vrf: int
    rules: tuple[PolicyRule, ...] = ()
    default: ActionSpec | None = None


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Per-VRF policies and the global default (used when nothing else applies)."""

    default: ActionSpec = DROP_SPEC
    vrfs: Mapping[int, VrfPolicy] = field(default_factory=_frozen_map)


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, validated ``p4ctl`` configuration."""

    devices: tuple[DeviceConfig, ...]
    tables: TableSizes = TableSizes()
    flows: FlowSettings = FlowSettings()
    aging: AgingConfig = AgingConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    metrics: MetricsConfig = MetricsConfig()
    policy: PolicyConfig = PolicyConfig()
    source: Path | None = None  # the file it was loaded from
    filename: str = "<config>"  # the name errors use (the path as the user gave it)
    #: Line of every field read, by path (``devices[0].address``): for checks made
    #: after loading (against the pipeline, against a device) to point at the file.
    lines: Mapping[str, int] = field(default_factory=_frozen_map, compare=False, repr=False)

    def issue(self, field: str, message: str) -> ConfigIssue:
        """An issue about ``field`` at its line (or its nearest enclosing field's line)."""
        path = field
        while path and path not in self.lines:
            path = _parent(path)
        return ConfigIssue(self.filename, self.lines.get(path, 0), field, message)

    def check_table_sizes(self, compiled: Mapping[str, int]) -> list[ConfigIssue]:
        """Issues for every ``tables`` size that differs from what the pipeline was built with.

        ``compiled`` is the pipeline description's ``sizes`` (``flow_entries``,
        ``overflow_entries``, ``bucket_ways``). The controller's slot layout must
        be the data plane's, or flow ids and overflow buckets would not agree.
        """
        issues = []
        for name in ("flow_entries", "overflow_entries", "bucket_ways"):
            want = getattr(self.tables, name)
            built = compiled.get(name)
            if built is not None and built != want:
                issues.append(self.issue(f"tables.{name}",
                                         f"{want}, but the pipeline was compiled with {built}"))
        return issues


def _parent(path: str) -> str:
    """``devices[0].tls.ca`` → ``devices[0].tls`` → ``devices[0]`` → ``devices`` → ``""``."""
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path[: max(path.rfind("."), 0)]
