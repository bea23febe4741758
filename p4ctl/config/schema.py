"""The configuration schema: which keys exist, their defaults and cross-checks.

Each ``_section`` function reads one mapping through a
:class:`~p4ctl.config.reader.Section` and returns its frozen model object.
Functions keep going after an error (using defaults) so that the loader can
report every problem of the file in one go; the object they return is thrown
away when any issue was recorded.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from p4ctl.config import values as v
from p4ctl.config.model import (
    ANY_NETWORK,
    ANY_PORT,
    DROP_SPEC,
    ActionSpec,
    AgingConfig,
    AgingOverride,
    Config,
    DeviceConfig,
    DigestSettings,
    FlowSettings,
    MetricsConfig,
    PolicyConfig,
    PolicyRule,
    PortSet,
    ReconcileConfig,
    RegisterBackend,
    RuleAction,
    TableSizes,
    TcpAging,
    TlsConfig,
    VrfPolicy,
    _frozen_map,
)
from p4ctl.config.reader import YAML_TAG, Reader, Section, is_null, join
from p4ctl.flows.key import IP_PROTO_TCP, IP_PROTO_UDP

TOP_KEYS = ("devices", "tables", "flows", "aging", "reconcile", "metrics", "policy")
DEVICE_KEYS = (
    "name", "address", "device_id", "election_id", "role", "tls", "pipeline",
    "push_pipeline", "registers", "thrift_address", "port_vrf",
)
TLS_KEYS = ("ca", "cert", "key", "server_name")
TABLE_KEYS = ("flow_entries", "overflow_entries", "bucket_ways")
FLOW_KEYS = (
    "hold_mode", "hold_queue", "max_new_flows_per_second", "max_flows_per_port",
    "max_flows_per_vrf", "digest", "write_batch_size",
)
DIGEST_KEYS = ("max_list_size", "max_timeout", "ack_timeout")
AGING_KEYS = ("default_timeout", "overrides", "tcp", "scan_interval")
OVERRIDE_KEYS = ("protocol", "port", "timeout")
TCP_KEYS = ("eviction_grace", "half_open_timeout")
RECONCILE_KEYS = ("interval",)
METRICS_KEYS = ("address", "log_interval")
POLICY_KEYS = ("default", "vrfs")
VRF_KEYS = ("default", "rules")
ACTION_KEYS = ("action", "port", "to_address", "to_port")
RULE_KEYS = ("name", "src", "dst", "protocol", "src_ports", "dst_ports", "in_ports", *ACTION_KEYS)

U64 = (1 << 64) - 1
U128 = (1 << 128) - 1
DEFAULT_THRIFT_PORT = 9090  # simple_switch's Thrift runtime server
PORTED_PROTOCOLS = (IP_PROTO_TCP, IP_PROTO_UDP)


def bundled_pipeline_dir() -> Path:
    """The flow-cache pipeline shipped with p4ctl (``pipelines/flowcache``)."""
    package = Path(__file__).resolve().parent.parent
    inside = package / "pipelines" / "flowcache"
    return inside if inside.is_dir() else package.parent / "pipelines" / "flowcache"


def build_config(reader: Reader, root: yaml.Node | None, source: Path | None) -> Config:
    """Read a whole file's root node into a :class:`Config` (issues go to ``reader``)."""
    if is_null(root):
        reader.error(root, "", "the file is empty: a configuration needs at least 'devices'")
        return Config(devices=())
    top = reader.section(root, "", TOP_KEYS, extensions=True)
    devices = _devices(top)
    tables = _tables(reader.section(top.child("tables"), "tables", TABLE_KEYS))
    flows = _flows(reader.section(top.child("flows"), "flows", FLOW_KEYS))
    aging = _aging(reader.section(top.child("aging"), "aging", AGING_KEYS))
    reconcile_sec = reader.section(top.child("reconcile"), "reconcile", RECONCILE_KEYS)
    reconcile = ReconcileConfig(reconcile_sec.get("interval", v.duration, 30.0, decimal=True))
    metrics_sec = reader.section(top.child("metrics"), "metrics", METRICS_KEYS)
    metrics = MetricsConfig(
        address=metrics_sec.get("address", v.endpoint, None),
        log_interval=metrics_sec.get("log_interval", v.positive_duration, 60.0, decimal=True),
    )
    policy = _policy(reader.section(top.child("policy"), "policy", POLICY_KEYS))
    _check_addresses(metrics_sec, devices, metrics)
    return Config(devices, tables, flows, aging, reconcile, metrics, policy, source,
                  reader.filename, _frozen_map(reader.lines))


# --- devices -----------------------------------------------------------------


def _devices(top: Section) -> tuple[DeviceConfig, ...]:
    reader = top.reader
    node = top.child("devices")
    if node is None:
        top.missing("devices", ": give at least one device")
        return ()
    items = reader.items(node, "devices")
    if isinstance(node, yaml.SequenceNode) and not node.value:
        top.error("devices", "give at least one device")
    devices: list[DeviceConfig] = []
    names: dict[str, int] = {}
    targets: dict[tuple[str, int], int] = {}
    for index, item in enumerate(items):
        path = f"devices[{index}]"
        sec = reader.section(item, path, DEVICE_KEYS)
        device = _device(sec)
        if sec.ok("name"):
            if device.name in names:
                first = names[device.name]
                sec.error("name", f"{device.name!r} is already the name of devices[{first}]")
            names.setdefault(device.name, index)
        if sec.ok("address") and sec.ok("device_id"):
            target = (device.address, device.device_id)
            if target in targets:
                sec.error("device_id", f"devices[{targets[target]}] already uses device_id "
                          f"{device.device_id} at {device.address}")
            targets.setdefault(target, index)
        devices.append(device)
    return tuple(devices)


def _device(sec: Section) -> DeviceConfig:
    reader = sec.reader
    name = sec.get("name", v.name)
    address = sec.get("address", v.endpoint)
    device_id = sec.get("device_id", v.integer(0, U64))
    election_id = _election_id(sec)
    role = sec.get("role", v.text, None)
    tls_node = sec.child("tls")
    tls = _tls(reader.section(tls_node, sec.path("tls"), TLS_KEYS)) if tls_node else None
    pipeline = _pipeline(sec)
    push_pipeline = sec.get("push_pipeline", v.boolean, True)
    registers = RegisterBackend(sec.get("registers", v.choice(tuple(RegisterBackend)), "p4runtime"))
    thrift_address = sec.get("thrift_address", v.endpoint, None)
    if registers is RegisterBackend.THRIFT:
        if thrift_address is None and sec.ok("address"):
            host, _ = v.split_host_port(address)
            host = f"[{host}]" if ":" in host else host
            thrift_address = f"{host}:{DEFAULT_THRIFT_PORT}"
    elif sec.given("thrift_address"):
        sec.error("thrift_address", "only used with 'registers: thrift'")
    port_vrf = _port_vrf(sec)
    return DeviceConfig(
        name=name,
        address=address,
        device_id=device_id,
        pipeline=pipeline,
        election_id=election_id,
        role=role,
        tls=tls,
        push_pipeline=push_pipeline,
        registers=registers,
        thrift_address=thrift_address,
        port_vrf=port_vrf,
    )


def _election_id(sec: Section) -> int:
    """An int, or ``[high, low]`` as P4Runtime's ``Uint128`` has it; never 0.

    Zero is what an unset ``Uint128`` reads as, and a client without an
    election id can only be a backup (P4Runtime spec, "Client Arbitration and
    Controller Replication"); this controller writes, so it must be able to
    become primary.
    """
    node = sec.child("election_id")
    if node is None:
        return 1
    path = sec.path("election_id")
    reader = sec.reader
    if isinstance(node, yaml.SequenceNode):
        if not reader.plain(node, path):
            sec.bad.add("election_id")
            return 1
        items = node.value
        if len(items) != 2:
            sec.error("election_id", f"expected [high, low], got a list of {len(items)}")
            return 1
        ok_high, high = reader.convert(items[0], f"{path}[0]", v.integer(0, U64))
        ok_low, low = reader.convert(items[1], f"{path}[1]", v.integer(0, U64))
        if not (ok_high and ok_low):
            sec.bad.add("election_id")
            return 1
        value = (high << 64) | low
    else:
        value = sec.get("election_id", v.integer(0, U128), 1)
        if "election_id" in sec.bad:
            return 1
    if value == 0:
        sec.error("election_id", "0 is not an election id: a controller with no election id "
                  "can never be primary (use 1 or more)")
        return 1
    return value


def _path(sec: Section, key: str) -> Path | None:
    """A file-system path; relative ones are taken from the config file's directory.

    None (and an error) for text no file name can be: the operating system
    refuses a NUL character, and ``~nobody`` needs a user that exists.
    """
    raw = sec.get(key, v.text, None)
    if raw is None:
        return None
    if "\0" in raw:
        sec.error(key, f"{raw!r} has a NUL character, which no file name can hold")
        return None
    try:
        return (sec.reader.base_dir / Path(raw).expanduser()).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: no home directory for ~user
        sec.error(key, f"{raw!r} cannot be used as a path ({exc})")
        return None


def _kind(path: Path) -> str:
    """``file``, ``dir``, ``missing``, ``other``, or why the path cannot be looked at.

    Unlike ``Path.is_file``, never raises: a name too long for the file system
    or a directory we may not enter is the file's mistake to report.
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "other"


def _tls(sec: Section) -> TlsConfig:
    files = {key: _path(sec, key) for key in ("ca", "cert", "key")}
    for key, path in files.items():
        kind = _kind(path) if path is not None else "file"
        if kind in ("missing", "dir", "other"):
            sec.error(key, f"file not found: {path}")
        elif kind != "file":  # the reason it cannot be looked at, e.g. "File name too long"
            sec.error(key, f"{path}: {kind}")
    if sec.given("cert") != sec.given("key"):
        lone, other = ("cert", "key") if sec.given("cert") else ("key", "cert")
        sec.error(lone, f"'{lone}' needs '{other}' too (mutual TLS uses both)")
    return TlsConfig(files["ca"], files["cert"], files["key"],
                     sec.get("server_name", v.text, None))


def _pipeline(sec: Section) -> Path:
    path = _path(sec, "pipeline")
    if path is None:
        return bundled_pipeline_dir()
    kind = _kind(path)
    if kind in ("missing", "other"):
        sec.error("pipeline", f"{path}: not found")
    elif kind == "file":
        sec.error("pipeline", f"{path}: is a file: give the directory that holds it")
    elif kind != "dir":
        sec.error("pipeline", f"{path}: {kind}")
    elif _kind(path / "pipeline.yaml") != "file":
        sec.error("pipeline", f"{path} has no pipeline.yaml")
    return path


def _port_vrf(sec: Section) -> Any:
    node = sec.child("port_vrf")
    if node is None:
        return _frozen_map()
    reader = sec.reader
    path = sec.path("port_vrf")
    pairs = reader.pairs(node, path)
    mapping: dict[int, int] = {}
    for key_node, value_node in pairs or ():
        ok_port, port = reader.convert(key_node, path, v.switch_port, decimal=True)
        field = join(path, port if ok_port else key_node.value)
        ok_vrf, vrf = reader.convert(value_node, field, v.vrf)
        if ok_port and ok_vrf:
            mapping[port] = vrf
    return _frozen_map(mapping)


# --- tables, flows, aging ----------------------------------------------------


def _tables(sec: Section) -> TableSizes:
    ways = sec.get("bucket_ways", v.integer(1, 64), 4)
    flow_entries = sec.get("flow_entries", v.integer(1, 1 << 31), 512_000)
    overflow_entries = sec.get("overflow_entries", v.integer(0, 1 << 31), 8_000)
    if "bucket_ways" not in sec.bad:
        for key, count in (("flow_entries", flow_entries), ("overflow_entries", overflow_entries)):
            if key not in sec.bad and count % ways:
                where = key if sec.given(key) else "bucket_ways"
                sec.error(where, f"{key} {count} is not a multiple of bucket_ways {ways} "
                          "(the table is organised in whole buckets)")
    return TableSizes(flow_entries, overflow_entries, ways)


def _flows(sec: Section) -> FlowSettings:
    reader = sec.reader
    digest_sec = reader.section(sec.child("digest"), sec.path("digest"), DIGEST_KEYS)
    digest = DigestSettings(
        max_list_size=digest_sec.get("max_list_size", v.integer(0, (1 << 31) - 1), 128),
        max_timeout=digest_sec.get("max_timeout", v.duration, 0.001, decimal=True),
        ack_timeout=digest_sec.get("ack_timeout", v.duration, 1.0, decimal=True),
    )
    count = v.integer(0, 1 << 31)
    settings = FlowSettings(
        hold_mode=sec.get("hold_mode", v.boolean, False),
        hold_queue=sec.get("hold_queue", v.integer(1, 1024), 3),
        max_new_flows_per_second=sec.get("max_new_flows_per_second", count, 20_000),
        max_flows_per_port=sec.get("max_flows_per_port", count, 0),
        max_flows_per_vrf=sec.get("max_flows_per_vrf", count, 0),
        digest=digest,
        write_batch_size=sec.get("write_batch_size", v.integer(1, 100_000), 1000),
    )
    return settings


def _aging(sec: Section) -> AgingConfig:
    reader = sec.reader
    overrides: list[AgingOverride] = []
    node = sec.child("overrides")
    for index, item in enumerate(reader.items(node, sec.path("overrides")) if node else ()):
        item_sec = reader.section(item, f"{sec.path('overrides')}[{index}]", OVERRIDE_KEYS)
        proto = item_sec.get("protocol", v.protocol)
        if item_sec.ok("protocol") and proto is None:
            item_sec.error("protocol", "give one protocol (tcp, udp, icmp or a number), not any")
        ports = _port_set(item_sec, "port", proto)
        timeout = item_sec.get("timeout", v.positive_duration, decimal=True)
        if proto is not None and timeout is not None:
            overrides.append(AgingOverride(proto, ports, timeout))
    tcp_sec = reader.section(sec.child("tcp"), sec.path("tcp"), TCP_KEYS)
    tcp = TcpAging(
        eviction_grace=tcp_sec.get("eviction_grace", v.duration, 2.0, decimal=True),
        half_open_timeout=tcp_sec.get("half_open_timeout", v.positive_duration, 30.0, decimal=True),
    )
    return AgingConfig(
        default_timeout=sec.get("default_timeout", v.positive_duration, 180.0, decimal=True),
        overrides=tuple(overrides),
        tcp=tcp,
        scan_interval=sec.get("scan_interval", v.positive_duration, 1.0, decimal=True),
    )


def _port_set(sec: Section, key: str, proto: int | None) -> PortSet:
    """``any``, one port, ``"low-high"`` or a list of those; only for TCP and UDP.

    Ports are only parsed for TCP and UDP (for ICMP the key carries the echo
    identifier), so a port constraint on any other protocol could never mean
    what its author wanted.
    """
    node = sec.child(key)
    if node is None:
        return ANY_PORT
    reader = sec.reader
    path = sec.path(key)
    ranges: list[tuple[int, int]] = []
    if isinstance(node, yaml.SequenceNode):
        if not reader.plain(node, path):
            sec.bad.add(key)
            return ANY_PORT
        if not node.value:
            sec.error(key, "an empty list matches no port (leave the field out for any port)")
        for index, item in enumerate(node.value):
            ok, port_range = reader.convert(item, f"{path}[{index}]", v.port_range, decimal=True)
            if ok:
                ranges.append(port_range)
            else:
                sec.bad.add(key)
    else:
        if _is_any(node):
            return ANY_PORT
        ok, port_range = reader.convert(node, path, v.port_range, decimal=True)
        if not ok:
            sec.bad.add(key)
            return ANY_PORT
        ranges.append(port_range)
    ports = v.merge_ranges(ranges)
    if not ports.is_any and proto not in PORTED_PROTOCOLS and "protocol" not in sec.bad:
        sec.error(key, f"ports only apply to tcp or udp, not protocol "
                  f"{v.protocol_name(proto)}")
    return ports


def _is_any(node: yaml.Node) -> bool:
    """The word ``any`` (read from the node's text, so a bad value is reported only once)."""
    return (isinstance(node, yaml.ScalarNode) and node.tag == YAML_TAG + "str"
            and node.value.strip().lower() == "any")


# --- policy ------------------------------------------------------------------


def _policy(sec: Section) -> PolicyConfig:
    reader = sec.reader
    default = DROP_SPEC
    if sec.child("default") is not None:
        default_sec = reader.section(sec.child("default"), sec.path("default"), ACTION_KEYS)
        default = _action(default_sec, proto=None) or DROP_SPEC
    vrfs: dict[int, VrfPolicy] = {}
    node = sec.child("vrfs")
    path = sec.path("vrfs")
    for key_node, value_node in (reader.pairs(node, path) or ()) if node else ():
        ok, vrf = reader.convert(key_node, path, v.vrf)
        if not ok:
            continue
        if vrf in vrfs:
            reader.error(key_node, join(path, vrf), "VRF given twice (as a number and as text)")
            continue
        vrfs[vrf] = _vrf(reader.section(value_node, join(path, vrf), VRF_KEYS), vrf)
    return PolicyConfig(default, _frozen_map(vrfs))


def _vrf(sec: Section, vrf: int) -> VrfPolicy:
    reader = sec.reader
    default = None
    if sec.child("default") is not None:
        default = _action(reader.section(sec.child("default"), sec.path("default"), ACTION_KEYS),
                          proto=None)
    rules: list[PolicyRule] = []
    names: dict[str, int] = {}
    node = sec.child("rules")
    for index, item in enumerate(reader.items(node, sec.path("rules")) if node else ()):
        rule_sec = reader.section(item, f"{sec.path('rules')}[{index}]", RULE_KEYS)
        rule = _rule(rule_sec, vrf, index)
        if rule is None:
            continue
        if rule.name in names:
            first = names[rule.name]
            rule_sec.error("name", f"{rule.name!r} is already the name of rules[{first}]")
        names.setdefault(rule.name, index)
        rules.append(rule)
    return VrfPolicy(vrf, tuple(rules), default)


def _rule(sec: Section, vrf: int, index: int) -> PolicyRule | None:
    name = sec.get("name", v.name, f"vrf{vrf}.rule{index}")
    src = sec.get("src", v.ipv4_network, ANY_NETWORK)
    dst = sec.get("dst", v.ipv4_network, ANY_NETWORK)
    proto = sec.get("protocol", v.protocol, None)
    src_ports = _port_set(sec, "src_ports", proto)
    dst_ports = _port_set(sec, "dst_ports", proto)
    in_ports = _in_ports(sec)
    then = _action(sec, proto)
    if then is None:
        return None
    return PolicyRule(name, then, src, dst, proto, src_ports, dst_ports, in_ports)


def _in_ports(sec: Section) -> frozenset[int] | None:
    node = sec.child("in_ports")
    if node is None:
        return None
    reader = sec.reader
    path = sec.path("in_ports")
    if isinstance(node, yaml.SequenceNode) and not reader.plain(node, path):
        sec.bad.add("in_ports")
        return frozenset()
    nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
    ports: set[int] = set()
    for index, item in enumerate(nodes):
        field = f"{path}[{index}]" if isinstance(node, yaml.SequenceNode) else path
        ok, port = reader.convert(item, field, v.switch_port, decimal=True)
        if ok:
            ports.add(port)
        else:
            sec.bad.add("in_ports")
    if isinstance(node, yaml.SequenceNode) and not node.value:
        sec.error("in_ports", "an empty list matches no port (leave the field out for any port)")
    return frozenset(ports)


def _action(sec: Section, proto: int | None) -> ActionSpec | None:
    """The action fields of a rule or default, with the fields each action needs."""
    kind_text = sec.get("action", v.choice(tuple(RuleAction)))
    port = sec.get("port", v.switch_port, None, decimal=True)
    to_address = sec.get("to_address", v.ipv4_address, None)
    # Port 0 matches in a port set, but as a translation target it is no port.
    to_port = sec.get("to_port", v.integer(1, v.MAX_L4_PORT, "an L4 port"), None, decimal=True)
    if kind_text is None:
        return None
    kind = RuleAction(kind_text)
    if kind is RuleAction.DROP:
        for key in ("port", "to_address", "to_port"):
            if sec.given(key):
                sec.error(key, "not used by 'action: drop'")
        return ActionSpec(kind)
    if not sec.given("port"):
        sec.missing("port", f": 'action: {kind}' needs the egress port")
    if kind is RuleAction.FORWARD:
        for key in ("to_address", "to_port"):
            if sec.given(key):
                sec.error(key, "only used by 'action: snat' or 'action: dnat'")
        return ActionSpec(kind, port)
    if not sec.given("to_address"):
        new = "source" if kind is RuleAction.SNAT else "destination"
        sec.missing("to_address", f": 'action: {kind}' needs the new {new} address")
    if sec.ok("to_port") and proto not in PORTED_PROTOCOLS and "protocol" not in sec.bad:
        sec.error("to_port", f"port translation needs protocol tcp or udp, not "
                  f"{v.protocol_name(proto)}")
    return ActionSpec(kind, port, to_address, to_port)


# --- cross-checks ------------------------------------------------------------


def _check_addresses(
    metrics_sec: Section, devices: tuple[DeviceConfig, ...], metrics: MetricsConfig
) -> None:
    """The metrics listener cannot be on a device's own host:port."""
    if metrics.address is None:
        return
    for index, device in enumerate(devices):
        for label, address in (("address", device.address),
                               ("thrift_address", device.thrift_address)):
            if address is not None and address == metrics.address:
                metrics_sec.error("address", f"{address} is also devices[{index}].{label}")
