"""Configuration loading: every validation rule reports file:line: field: message."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from p4ctl.config import (
    ConfigError,
    ConfigIssue,
    PortSet,
    RegisterBackend,
    RuleAction,
    bundled_pipeline_dir,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "p4ctl.yaml"

#: Lines 1-4 of most test files: one valid device.
DEVICE = """\
devices:
  - name: s1
    address: 127.0.0.1:9559
    device_id: 1
"""


def config(text: str, filename: str = "t.yaml"):
    return parse_config(textwrap.dedent(text), filename)


def errors(text: str, filename: str = "t.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), filename)
    return [str(issue) for issue in info.value.errors]


def error(text: str, filename: str = "t.yaml") -> str:
    found = errors(text, filename)
    assert len(found) == 1, found
    return found[0]


# --- the example and the defaults --------------------------------------------------------


def test_example_config_loads() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.source == EXAMPLE
    (device,) = cfg.devices
    assert (device.name, device.address, device.device_id) == ("s1", "127.0.0.1:9559", 1)
    assert dict(device.port_vrf) == {1: 0, 2: 0}
    assert device.pipeline == bundled_pipeline_dir()
    assert device.registers is RegisterBackend.P4RUNTIME
    assert cfg.aging.timeout_for(17, 40000, 53) == 5.0
    assert cfg.aging.timeout_for(17, 53, 40000) == 5.0  # the reply direction too
    assert cfg.aging.timeout_for(6, 40000, 53) == 180.0
    assert cfg.flows.digest.max_timeout_ns == 1_000_000
    assert cfg.flows.digest.ack_timeout_ns == 1_000_000_000
    rules = cfg.policy.vrfs[0].rules
    assert [r.then.action for r in rules] == [
        RuleAction.SNAT, RuleAction.DNAT, RuleAction.FORWARD, RuleAction.FORWARD
    ]


def test_defaults_of_a_minimal_file() -> None:
    cfg = config(DEVICE)
    device = cfg.devices[0]
    assert device.election_id == 1 and device.election_id_pair == (0, 1)
    assert device.role is None and device.tls is None and device.push_pipeline
    assert (cfg.tables.flow_entries, cfg.tables.overflow_entries, cfg.tables.bucket_ways) == (
        512_000, 8_000, 4)
    assert cfg.flows.max_new_flows_per_second == 20_000 and not cfg.flows.hold_mode
    assert cfg.aging.default_timeout == 180.0 and cfg.aging.overrides == ()
    assert cfg.reconcile.interval == 30.0
    assert cfg.metrics.address is None and cfg.metrics.log_interval == 60.0
    assert cfg.policy.default.action is RuleAction.DROP and not cfg.policy.vrfs


def test_config_is_frozen() -> None:
    cfg = config(DEVICE + "  - {name: s2, address: 'h:1', device_id: 2, port_vrf: {3: 1}}\n")
    with pytest.raises(AttributeError):
        cfg.devices = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.devices[1].port_vrf[3] = 2  # type: ignore[index]


def test_merge_keys_and_anchors() -> None:
    # Anchors are plain YAML; merge keys bring fields, explicit keys override them.
    cfg = config("""\
        devices:
          - &s1 {name: s1, address: 127.0.0.1:9559, device_id: 1, push_pipeline: false}
          - {<<: *s1, name: s2, address: 127.0.0.1:9560}
    """)
    assert [(d.name, d.address, d.device_id, d.push_pipeline) for d in cfg.devices] == [
        ("s1", "127.0.0.1:9559", 1, False), ("s2", "127.0.0.1:9560", 1, False)]


# --- file-level errors -----------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line() -> None:
    text = DEVICE + "tables: {flow_entries: 1024\nflows: {}\n"
    assert error(text, "bad.yaml") == (
        "bad.yaml:6: YAML syntax error: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping started on line 5)")


def test_yaml_bad_indentation_is_a_syntax_error() -> None:
    text = "devices:\n  - name: s1\n   address: x\n"
    assert error(text).startswith("t.yaml:3: YAML syntax error:")


def test_two_documents_are_a_syntax_error() -> None:
    assert error(DEVICE + "---\n" + DEVICE) == (
        "t.yaml:5: YAML syntax error: expected a single document in the stream, but found "
        "another document")


def test_control_character_is_a_syntax_error() -> None:
    assert error(DEVICE + "tables: {flow_entries: \x07}\n").startswith(
        "t.yaml:5: YAML syntax error: special characters are not allowed")


def test_empty_file() -> None:
    assert error("# nothing here\n") == (
        "t.yaml: the file is empty: a configuration needs at least 'devices'")


def test_root_must_be_a_mapping() -> None:
    assert error("- 1\n- 2\n") == "t.yaml:1: expected a mapping, got a list"


def test_unknown_key_with_suggestion() -> None:
    assert error(DEVICE + "polcy: {}\n") == (
        "t.yaml:5: polcy: unknown key (did you mean 'policy'?); expected one of: devices, "
        "tables, flows, aging, reconcile, metrics, policy")


def test_unknown_key_without_suggestion() -> None:
    issue = error(DEVICE + "    colour: blue\n")
    assert issue.startswith("t.yaml:5: devices[0].colour: unknown key; expected one of: name,")


def test_unknown_nested_key_with_suggestion() -> None:
    assert error(DEVICE + "flows:\n  digest: {max_list: 3}\n").startswith(
        "t.yaml:6: flows.digest.max_list: unknown key (did you mean 'max_list_size'?)")


def test_duplicate_key() -> None:
    assert error(DEVICE + "tables: {bucket_ways: 2}\ntables: {bucket_ways: 4}\n") == (
        "t.yaml:6: tables: duplicate key (first given on line 5)")


def test_python_tags_are_refused_not_run() -> None:
    issue = error(DEVICE + "    role: !!python/name:os.system\n")
    assert issue == ("t.yaml:5: devices[0].role: could not determine a constructor for the tag "
                     "'tag:yaml.org,2002:python/name:os.system'")
    assert error(DEVICE + "    role: !!python/object/apply:os.system ['false']\n") == (
        "t.yaml:5: devices[0].role: expected a single value, got a list")


def test_all_errors_are_collected_in_line_order() -> None:
    text = DEVICE + textwrap.dedent("""\
        tables:
          bucket_ways: 0
        flows:
          hold_queue: -1
        aging:
          default_timeout: soon
    """)
    with pytest.raises(ConfigError) as info:
        parse_config(text, "many.yaml")
    assert info.value.errors == [
        ConfigIssue("many.yaml", 6, "tables.bucket_ways", "0 is out of range (1-64)"),
        ConfigIssue("many.yaml", 8, "flows.hold_queue", "-1 is out of range (1-1024)"),
        ConfigIssue("many.yaml", 10, "aging.default_timeout",
                    "'soon' is not a duration (a number of seconds, or e.g. '500ms', '5s', "
                    "'2m', '1h')"),
    ]
    file, line, field, message = info.value.errors[0]  # plain tuples for callers
    assert (file, line, field, message) == (
        "many.yaml", 6, "tables.bucket_ways", "0 is out of range (1-64)")
    assert str(info.value).splitlines()[0] == "3 configuration errors"
    assert str(info.value).splitlines()[1] == (
        "  many.yaml:6: tables.bucket_ways: 0 is out of range (1-64)")


def test_load_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert [str(e) for e in info.value.errors] == [
        f"{missing}: cannot read: No such file or directory"]


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(DEVICE.encode() + b"    role: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(e) for e in info.value.errors] == [f"{path}:5: not UTF-8 text"]


# --- devices -----------------------------------------------------------------------------------


def test_devices_required() -> None:
    assert error("tables: {}\n") == (
        "t.yaml:1: devices: required field is missing: give at least one device")


def test_devices_empty_list() -> None:
    assert error("devices: []\n") == "t.yaml:1: devices: give at least one device"


def test_devices_not_a_list() -> None:
    assert error("devices: {name: s1}\n") == "t.yaml:1: devices: expected a list, got a mapping"


def test_device_not_a_mapping() -> None:
    assert error("devices:\n  - s1\n") == "t.yaml:2: devices[0]: expected a mapping, got a value"


def test_device_required_fields() -> None:
    assert errors("devices:\n  - {role: r}\n") == [
        "t.yaml:2: devices[0].name: required field is missing",
        "t.yaml:2: devices[0].address: required field is missing",
        "t.yaml:2: devices[0].device_id: required field is missing",
    ]


def test_device_name_characters() -> None:
    assert error(DEVICE.replace("name: s1", "name: 's 1'")) == (
        "t.yaml:2: devices[0].name: 's 1' is not a name (letters, digits, '_', '.', ':', '-')")


def test_device_names_unique() -> None:
    assert error(DEVICE + "  - {name: s1, address: '127.0.0.1:9560', device_id: 1}\n") == (
        "t.yaml:5: devices[1].name: 's1' is already the name of devices[0]")


def test_same_device_twice() -> None:
    assert error(DEVICE + "  - {name: s2, address: '127.0.0.1:9559', device_id: 1}\n") == (
        "t.yaml:5: devices[1].device_id: devices[0] already uses device_id 1 at 127.0.0.1:9559")


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1", "'127.0.0.1' is not host:port"),
        ("127.0.0.1:0", "'127.0.0.1:0' has port 0, not 1-65535"),
        ("127.0.0.1:99999", "'127.0.0.1:99999' has port 99999, not 1-65535"),
        ("bad_host:9559", "'bad_host:9559' has a bad host name 'bad_host'"),
        ("'[::x]:9559'", "'[::x]:9559' has a bad IPv6 address"),
        ("9559", "9559 is not host:port"),
    ],
)
def test_device_address(address: str, message: str) -> None:
    assert error(DEVICE.replace("127.0.0.1:9559", address)) == (
        f"t.yaml:3: devices[0].address: {message}")


def test_device_address_forms() -> None:
    for address in ("switch-1.example.net:9559", "'[::1]:9559'", "localhost:50001"):
        assert config(DEVICE.replace("127.0.0.1:9559", address)).devices[0].address == (
            address.strip("'"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "-1 is out of range (0-18446744073709551615)"),
        ("true", "true is not an integer"),
        ("one", "'one' is not an integer"),
        ("[1]", "expected a single value, got a list"),
    ],
)
def test_device_id(value: str, message: str) -> None:
    assert error(DEVICE.replace("device_id: 1", f"device_id: {value}")) == (
        f"t.yaml:4: devices[0].device_id: {message}")


def test_election_id_forms() -> None:
    cfg = config(DEVICE + "    election_id: [1, 2]\n")
    assert cfg.devices[0].election_id == (1 << 64) + 2
    assert cfg.devices[0].election_id_pair == (1, 2)
    cfg = config(DEVICE + f"    election_id: {(5 << 64) + 7}\n")
    assert cfg.devices[0].election_id_pair == (5, 7)


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("0", "election_id", "0 is not an election id: a controller with no election id can "
         "never be primary (use 1 or more)"),
        ("[0, 0]", "election_id", "0 is not an election id: a controller with no election id "
         "can never be primary (use 1 or more)"),
        ("[1, 2, 3]", "election_id", "expected [high, low], got a list of 3"),
        ("[1, -2]", "election_id[1]", "-2 is out of range (0-18446744073709551615)"),
        (str(1 << 128), "election_id",
         f"{1 << 128} is out of range (0-{(1 << 128) - 1})"),
    ],
)
def test_election_id_errors(value: str, field: str, message: str) -> None:
    assert error(DEVICE + f"    election_id: {value}\n") == (
        f"t.yaml:5: devices[0].{field}: {message}")


def test_role() -> None:
    assert config(DEVICE + "    role: flows\n").devices[0].role == "flows"
    assert error(DEVICE + "    role: ''\n") == (
        "t.yaml:5: devices[0].role: '' is not a non-empty string")


def test_tls_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    for name in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / "pki" / name).write_text("x")
    path = tmp_path / "p4ctl.yaml"
    path.write_text(DEVICE + "    tls: {ca: pki/ca.pem, cert: pki/c.pem, key: pki/k.pem,"
                    " server_name: s1}\n")
    tls = load_config(path).devices[0].tls
    assert tls is not None and tls.mutual
    assert (tls.ca, tls.cert, tls.key) == tuple(
        tmp_path / "pki" / n for n in ("ca.pem", "c.pem", "k.pem"))
    assert tls.server_name == "s1"


def test_tls_server_only(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    tls = parse_config(DEVICE + "    tls: {ca: ca.pem}\n", str(tmp_path / "c.yaml")).devices[0].tls
    assert tls is not None and not tls.mutual and tls.ca == tmp_path / "ca.pem"
    tls = config(DEVICE + "    tls: {}\n").devices[0].tls  # system roots
    assert tls is not None and tls.ca is None


def test_tls_cert_needs_key(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError) as info:
        parse_config(DEVICE + "    tls:\n      cert: c.pem\n", str(tmp_path / "c.yaml"))
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'c.yaml'}:6: devices[0].tls.cert: 'cert' needs 'key' too "
        "(mutual TLS uses both)"]


def test_tls_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(DEVICE + "    tls:\n      ca: missing.pem\n", str(tmp_path / "c.yaml"))
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'c.yaml'}:6: devices[0].tls.ca: file not found: {tmp_path / 'missing.pem'}"]


def test_tls_unknown_key() -> None:
    assert error(DEVICE + "    tls: {certs: c.pem}\n") == (
        "t.yaml:5: devices[0].tls.certs: unknown key (did you mean 'cert'?); expected one of: "
        "ca, cert, key, server_name")


def test_pipeline_directory(tmp_path: Path) -> None:
    pipe = tmp_path / "pipes" / "fc"
    pipe.mkdir(parents=True)
    (pipe / "pipeline.yaml").write_text("{}\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    cfg = parse_config(DEVICE + "    pipeline: ../pipes/fc\n", str(conf / "p4ctl.yaml"))
    assert cfg.devices[0].pipeline == pipe


def test_pipeline_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.yaml").write_text("")
    name = str(tmp_path / "c.yaml")
    text = DEVICE + "    pipeline: {}\n"
    for given, message in (
        ("nowhere", f"{tmp_path / 'nowhere'}: not found"),
        ("empty", f"{tmp_path / 'empty'} has no pipeline.yaml"),
        ("file.yaml", f"{tmp_path / 'file.yaml'}: is a file: give the directory that holds it"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_config(text.format(given), name)
        assert [str(e) for e in info.value.errors] == [f"{name}:5: devices[0].pipeline: {message}"]


def test_push_pipeline_must_be_boolean() -> None:
    assert error(DEVICE + "    push_pipeline: 1\n") == (
        "t.yaml:5: devices[0].push_pipeline: 1 is not true or false")


@pytest.mark.parametrize("word", ["yes", "on", "No", "OFF"])
def test_yaml_1_1_booleans_are_refused(word: str) -> None:
    """The docs say true or false; YAML 1.2 (and many readers) take these for text."""
    assert error(DEVICE + f"    push_pipeline: {word}\n").startswith(
        f"t.yaml:5: devices[0].push_pipeline: {word!r} is YAML 1.1 for ")
    assert config(DEVICE + "    push_pipeline: False\n").devices[0].push_pipeline is False


def test_top_level_x_keys_hold_shared_anchors() -> None:
    cfg = config("""\
        x-switch: &switch
          device_id: 1
          registers: thrift
        devices:
          - <<: *switch
            name: s1
            address: 127.0.0.1:9559
          - <<: *switch
            name: s2
            address: 127.0.0.1:9560
        """)
    assert [(d.name, d.device_id, d.registers) for d in cfg.devices] == [
        ("s1", 1, RegisterBackend.THRIFT), ("s2", 1, RegisterBackend.THRIFT)]
    # only at the top, and only x-
    assert error(DEVICE + "common: 1\n").startswith("t.yaml:5: common: unknown key")
    assert error(DEVICE + "flows:\n  x-mine: 1\n").startswith(
        "t.yaml:6: flows.x-mine: unknown key")


def test_registers_thrift_default_address() -> None:
    cfg = config(DEVICE.replace("127.0.0.1:9559", "10.1.2.3:9559") + "    registers: thrift\n")
    assert cfg.devices[0].registers is RegisterBackend.THRIFT
    assert cfg.devices[0].thrift_address == "10.1.2.3:9090"
    cfg = config(DEVICE + "    registers: THRIFT\n    thrift_address: 127.0.0.1:9091\n")
    assert cfg.devices[0].thrift_address == "127.0.0.1:9091"


def test_registers_errors() -> None:
    assert error(DEVICE + "    registers: grpc\n") == (
        "t.yaml:5: devices[0].registers: 'grpc' is not one of p4runtime, thrift")
    assert error(DEVICE + "    thrift_address: 127.0.0.1:9090\n") == (
        "t.yaml:5: devices[0].thrift_address: only used with 'registers: thrift'")


def test_port_vrf_errors() -> None:
    assert errors(DEVICE + "    port_vrf:\n      1: 0\n      511: 0\n      3: 70000\n"
                  "      x: 1\n") == [
        "t.yaml:7: devices[0].port_vrf: 511 is not a switch port (0-510)",
        "t.yaml:8: devices[0].port_vrf.3: 70000 is not a VRF number (0-65535)",
        "t.yaml:9: devices[0].port_vrf: 'x' is not a switch port",
    ]
    assert error(DEVICE + "    port_vrf: [1, 2]\n") == (
        "t.yaml:5: devices[0].port_vrf: expected a mapping, got a list")
    assert error(DEVICE + "    port_vrf: {1: 0, 1: 2}\n") == (
        "t.yaml:5: devices[0].port_vrf.1: duplicate key (first given on line 5)")


# --- tables, flows, aging, reconcile, metrics ---------------------------------------------


def test_tables_multiple_of_bucket_ways() -> None:
    assert errors(DEVICE + "tables:\n  flow_entries: 1022\n  overflow_entries: 10\n") == [
        "t.yaml:6: tables.flow_entries: flow_entries 1022 is not a multiple of bucket_ways 4 "
        "(the table is organised in whole buckets)",
        "t.yaml:7: tables.overflow_entries: overflow_entries 10 is not a multiple of "
        "bucket_ways 4 (the table is organised in whole buckets)",
    ]
    # The default flow_entries against a changed bucket_ways: blame bucket_ways.
    assert error(DEVICE + "tables:\n  bucket_ways: 3\n  overflow_entries: 3\n") == (
        "t.yaml:6: tables.bucket_ways: flow_entries 512000 is not a multiple of bucket_ways 3 "
        "(the table is organised in whole buckets)")
    cfg = config(DEVICE + "tables: {flow_entries: 1024, overflow_entries: 0, bucket_ways: 2}\n")
    assert (cfg.tables.flow_entries, cfg.tables.overflow_entries, cfg.tables.bucket_ways) == (
        1024, 0, 2)


def test_flows_section() -> None:
    cfg = config(DEVICE + textwrap.dedent("""\
        flows:
          hold_mode: true
          hold_queue: 8
          max_new_flows_per_second: 0
          max_flows_per_port: 100
          max_flows_per_vrf: 1000
          digest: {max_list_size: 0, max_timeout: 500us, ack_timeout: 2s}
          write_batch_size: 250
    """))
    flows = cfg.flows
    assert flows.hold_mode and flows.hold_queue == 8 and flows.max_new_flows_per_second == 0
    assert (flows.max_flows_per_port, flows.max_flows_per_vrf) == (100, 1000)
    assert flows.digest.max_list_size == 0 and flows.digest.max_timeout_ns == 500_000
    assert flows.write_batch_size == 250


def test_flows_errors() -> None:
    assert errors(DEVICE + textwrap.dedent("""\
        flows:
          hold_mode: yes please
          max_flows_per_port: -5
          digest:
            max_timeout: -1ms
            ack_timeout: -2
          write_batch_size: 0
    """)) == [
        "t.yaml:6: flows.hold_mode: 'yes please' is not true or false",
        "t.yaml:7: flows.max_flows_per_port: -5 is out of range (0-2147483648)",
        "t.yaml:9: flows.digest.max_timeout: '-1ms' is not a duration (a number of seconds, or "
        "e.g. '500ms', '5s', '2m', '1h')",
        "t.yaml:10: flows.digest.ack_timeout: -2 is negative",
        "t.yaml:11: flows.write_batch_size: 0 is out of range (1-100000)",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("180s", 180.0), ("5s", 5.0), ("500ms", 0.5), ("2m", 120.0), ("90", 90.0), ("0.25", 0.25),
     ("1m30s", 90.0), ("1h", 3600.0), ("250us", 0.00025), ("'7'", 7.0)],
)
def test_duration_forms(text: str, seconds: float) -> None:
    assert config(DEVICE + f"aging: {{default_timeout: {text}}}\n").aging.default_timeout == (
        pytest.approx(seconds))


def test_duration_errors() -> None:
    assert errors(DEVICE + textwrap.dedent("""\
        aging:
          default_timeout: 0s
          scan_interval: 5 minutes
          tcp: {eviction_grace: .inf}
        reconcile: {interval: [1]}
    """)) == [
        "t.yaml:6: aging.default_timeout: '0s' must be more than zero",
        "t.yaml:7: aging.scan_interval: '5 minutes' is not a duration (a number of seconds, "
        "or e.g. '500ms', '5s', '2m', '1h')",
        "t.yaml:8: aging.tcp.eviction_grace: inf is not a finite duration",
        "t.yaml:9: reconcile.interval: expected a single value, got a list",
    ]


def test_reconcile_zero_turns_it_off() -> None:
    assert config(DEVICE + "reconcile: {interval: 0}\n").reconcile.interval == 0.0


def test_aging_overrides() -> None:
    cfg = config(DEVICE + textwrap.dedent("""\
        aging:
          default_timeout: 2m
          overrides:
            - {protocol: udp, port: 53, timeout: 5s}
            - {protocol: tcp, port: [80, "8000-8080"], timeout: 1m}
            - {protocol: icmp, timeout: 10s}
            - {protocol: udp, timeout: 30s}
    """))
    aging = cfg.aging
    assert aging.timeout_for(17, 5000, 53) == 5.0
    assert aging.timeout_for(17, 5000, 54) == 30.0
    assert aging.timeout_for(6, 8080, 1234) == 60.0
    assert aging.timeout_for(6, 1234, 8081) == 120.0
    assert aging.timeout_for(1, 7, 7) == 10.0
    assert aging.overrides[1].ports == PortSet(((80, 80), (8000, 8080)))


def test_aging_override_errors() -> None:
    assert errors(DEVICE + textwrap.dedent("""\
        aging:
          overrides:
            - {protocol: any, timeout: 5s}
            - {protocol: icmp, port: 7, timeout: 5s}
            - {protocol: udp, port: 53}
            - {protocol: sctp, timeout: 1s}
    """)) == [
        "t.yaml:7: aging.overrides[0].protocol: give one protocol (tcp, udp, icmp or a number), "
        "not any",
        "t.yaml:8: aging.overrides[1].port: ports only apply to tcp or udp, not protocol icmp",
        "t.yaml:9: aging.overrides[2].timeout: required field is missing",
        "t.yaml:10: aging.overrides[3].protocol: 'sctp' is not a protocol (tcp, udp, icmp, any "
        "or 0-255)",
    ]


def test_metrics() -> None:
    cfg = config(DEVICE + "metrics: {address: '0.0.0.0:9100', log_interval: 10s}\n")
    assert cfg.metrics.address == "0.0.0.0:9100" and cfg.metrics.log_interval == 10.0
    assert error(DEVICE + "metrics:\n  address: 127.0.0.1:9559\n") == (
        "t.yaml:6: metrics.address: 127.0.0.1:9559 is also devices[0].address")
    assert error(DEVICE + "metrics: {address: 9100}\n") == (
        "t.yaml:5: metrics.address: 9100 is not host:port")


# --- policy -------------------------------------------------------------------------------


def policy_text(rules: str, extra: str = "") -> str:
    """DEVICE, then a policy whose VRF 0 rules start on line 10 (without ``extra``)."""
    return DEVICE + textwrap.dedent("""\
        policy:
          default: {action: drop}
          vrfs:
            0:
        """) + extra + "      rules:\n" + textwrap.indent(textwrap.dedent(rules), "        ")


def test_policy_parsed() -> None:
    cfg = config(policy_text("""\
        - name: web
          src: 10.0.0.0/24
          dst: 10.0.1.5
          protocol: tcp
          src_ports: any
          dst_ports: [80, 443, "1000-2000", 1500]
          in_ports: 1
          action: forward
          port: 2
        - {name: nat, protocol: 50, action: dnat, port: 2, to_address: 10.9.9.9}
    """, extra="      default: {action: forward, port: 2}\n"))
    vrf0 = cfg.policy.vrfs[0]
    assert vrf0.default is not None and vrf0.default.port == 2
    web, nat = vrf0.rules
    assert web.src == ipaddress.IPv4Network("10.0.0.0/24")
    assert web.dst == ipaddress.IPv4Network("10.0.1.5/32")
    assert web.protocol == 6 and web.src_ports.is_any and web.in_ports == frozenset({1})
    assert web.dst_ports.ranges == ((80, 80), (443, 443), (1000, 2000))
    assert nat.protocol == 50 and nat.then.to_address == ipaddress.IPv4Address("10.9.9.9")
    assert nat.then.to_port is None


def test_the_documented_port_range_message() -> None:
    # Line 14 of examples/p4ctl.yaml-like file: the message format the docs promise.
    text = policy_text("""\
        - {name: a, action: drop}
        - {name: b, action: drop}
        - name: c
          protocol: tcp
          dst_ports: 80-70
          action: drop
    """)
    assert error(text, "examples/p4ctl.yaml") == (
        "examples/p4ctl.yaml:14: policy.vrfs.0.rules[2].dst_ports: '80-70' is not a port range "
        "(low > high)")


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        ("{src: 10.0.0.1/24, action: drop}", "src",
         "'10.0.0.1/24' has host bits set (did you mean '10.0.0.0/24'?)"),
        ("{dst: 10.0.0.0/33, action: drop}", "dst",
         "'10.0.0.0/33' is not an IPv4 prefix or address ('33' is not a valid netmask)"),
        ("{dst: 10.0.0, action: drop}", "dst", "'10.0.0' is not an IPv4 prefix or address"),
        ("{src: 12, action: drop}", "src", "12 is not an IPv4 prefix or address"),
        ("{protocol: tcpp, action: drop}", "protocol",
         "'tcpp' is not a protocol (tcp, udp, icmp, any or 0-255)"),
        ("{protocol: 256, action: drop}", "protocol",
         "256 is not a protocol (tcp, udp, icmp, any or 0-255)"),
        ("{protocol: udp, src_ports: 70000, action: drop}", "src_ports",
         "70000 is not a port (0-65535)"),
        ("{protocol: udp, src_ports: '1-70000', action: drop}", "src_ports",
         "'1-70000' is not a port range (ports are 0-65535)"),
        ("{protocol: udp, src_ports: http, action: drop}", "src_ports",
         "'http' is not a port or a port range like '8000-8080'"),
        ("{protocol: udp, dst_ports: [80, '90-85'], action: drop}", "dst_ports[1]",
         "'90-85' is not a port range (low > high)"),
        ("{protocol: udp, dst_ports: [], action: drop}", "dst_ports",
         "an empty list matches no port (leave the field out for any port)"),
        ("{protocol: icmp, dst_ports: 7, action: drop}", "dst_ports",
         "ports only apply to tcp or udp, not protocol icmp"),
        ("{dst_ports: 80, action: drop}", "dst_ports",
         "ports only apply to tcp or udp, not protocol any"),
        ("{in_ports: [1, 600], action: drop}", "in_ports[1]",
         "600 is not a switch port (0-510)"),
        ("{action: forward}", "port",
         "required field is missing: 'action: forward' needs the egress port"),
        ("{action: forward, port: 511}", "port", "511 is not a switch port (0-510)"),
        ("{action: forward, port: 2, to_address: 1.2.3.4}", "to_address",
         "only used by 'action: snat' or 'action: dnat'"),
        ("{action: drop, port: 2}", "port", "not used by 'action: drop'"),
        ("{action: snat, port: 2}", "to_address",
         "required field is missing: 'action: snat' needs the new source address"),
        ("{action: dnat, port: 2}", "to_address",
         "required field is missing: 'action: dnat' needs the new destination address"),
        ("{action: snat, port: 2, to_address: 1.2.3.256}", "to_address",
         "'1.2.3.256' is not an IPv4 address"),
        ("{action: snat, port: 2, to_address: 1.2.3.4, to_port: 1000}", "to_port",
         "port translation needs protocol tcp or udp, not any"),
        ("{protocol: tcp, action: snat, port: 2, to_address: 1.2.3.4, to_port: 65536}",
         "to_port", "65536 is out of range (1-65535)"),
        ("{action: accept}", "action", "'accept' is not one of forward, drop, snat, dnat"),
        ("{name: web}", "action", "required field is missing"),
        ("{name: 'a b', action: drop}", "name",
         "'a b' is not a name (letters, digits, '_', '.', ':', '-')"),
        ("{dst_port: 80, action: drop}", "dst_port",
         "unknown key (did you mean 'dst_ports'?); expected one of: name, src, dst, protocol, "
         "src_ports, dst_ports, in_ports, action, port, to_address, to_port"),
    ],
)
def test_rule_errors(rule: str, field: str, message: str) -> None:
    issue = error(policy_text(f"- {rule}\n"))
    assert issue.startswith(f"t.yaml:10: policy.vrfs.0.rules[0].{field}: {message}")


def test_rule_names_unique_in_a_vrf() -> None:
    assert error(policy_text("""\
        - {name: web, action: drop}
        - {name: web, action: drop}
    """)) == "t.yaml:11: policy.vrfs.0.rules[1].name: 'web' is already the name of rules[0]"


def test_rule_default_names() -> None:
    cfg = config(policy_text("- {action: drop}\n- {action: drop}\n"))
    assert [r.name for r in cfg.policy.vrfs[0].rules] == ["vrf0.rule0", "vrf0.rule1"]


def test_policy_defaults_validated() -> None:
    assert errors(DEVICE + textwrap.dedent("""\
        policy:
          default: {action: forward}
          vrfs:
            1:
              default: {action: dnat, port: 1, to_address: 10.0.0.1, to_port: 80}
    """)) == [
        "t.yaml:6: policy.default.port: required field is missing: 'action: forward' needs the "
        "egress port",
        "t.yaml:9: policy.vrfs.1.default.to_port: port translation needs protocol tcp or udp, "
        "not any",
    ]


def test_vrf_keys() -> None:
    cfg = config(DEVICE + "policy:\n  vrfs:\n    '7': {rules: []}\n    8: {}\n")
    assert sorted(cfg.policy.vrfs) == [7, 8]
    assert errors(DEVICE + textwrap.dedent("""\
        policy:
          vrfs:
            70000: {}
            blue: {}
            0: {}
            '0': {}
    """)) == [
        "t.yaml:7: policy.vrfs: 70000 is not a VRF number (0-65535)",
        "t.yaml:8: policy.vrfs: 'blue' is not a VRF number (0-65535)",
        "t.yaml:10: policy.vrfs.0: VRF given twice (as a number and as text)",
    ]


def test_rules_must_be_a_list() -> None:
    assert error(DEVICE + "policy:\n  vrfs:\n    0:\n      rules: {name: x}\n") == (
        "t.yaml:8: policy.vrfs.0.rules: expected a list, got a mapping")


def test_one_broken_rule_does_not_hide_the_next() -> None:
    assert errors(policy_text("""\
        - {action: forward}
        - {action: drop, src: 300.0.0.0/8}
    """)) == [
        "t.yaml:10: policy.vrfs.0.rules[0].port: required field is missing: 'action: forward' "
        "needs the egress port",
        "t.yaml:11: policy.vrfs.0.rules[1].src: '300.0.0.0/8' is not an IPv4 prefix or address "
        "(Octet 300 (> 255) not permitted in '300.0.0.0')",
    ]


# --- checks made after loading --------------------------------------------------------------


def test_issue_points_at_the_field_or_its_parent() -> None:
    cfg = config(DEVICE + "tables:\n  flow_entries: 1024\n", "c.yaml")
    assert str(cfg.issue("tables.flow_entries", "too big")) == (
        "c.yaml:6: tables.flow_entries: too big")
    assert str(cfg.issue("tables.bucket_ways", "odd")) == "c.yaml:5: tables.bucket_ways: odd"
    assert str(cfg.issue("devices[0].tls.ca", "no")) == "c.yaml:2: devices[0].tls.ca: no"


def test_check_table_sizes() -> None:
    cfg = config(DEVICE + "tables: {flow_entries: 1024, overflow_entries: 64, bucket_ways: 4}\n")
    assert cfg.check_table_sizes({"flow_entries": 1024, "overflow_entries": 64,
                                  "bucket_ways": 4}) == []
    assert [str(i) for i in cfg.check_table_sizes({"flow_entries": 512000, "bucket_ways": 4,
                                                   "overflow_entries": 64})] == [
        "t.yaml:5: tables.flow_entries: 1024, but the pipeline was compiled with 512000"]


def test_example_tables_match_the_committed_pipeline() -> None:
    import yaml

    pipeline = bundled_pipeline_dir() / "pipeline.yaml"
    if not pipeline.is_file():
        pytest.skip(f"{pipeline} is not there yet")
    sizes = yaml.safe_load(pipeline.read_text())["sizes"]
    assert load_config(EXAMPLE).check_table_sizes(sizes) == []


# --- what a user can write must never crash the loader -------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("role: 2024-02-30", "'2024-02-30' is not a date or time (day is out of range for "
         "month); quote it if it is text"),
        ("device_id: 0x_", "'0x_' is not an integer; quote it if it is text"),
        ("device_id: 0b_", "'0b_' is not an integer; quote it if it is text"),
        ("device_id: ._", "'._' is not an integer"),  # a string to PyYAML: no crash here
        ("role: !!int abc", "'abc' is not an integer"),
        ("role: !!float abc", "'abc' is not a number"),
        ("push_pipeline: !!bool maybe", "'maybe' is not true or false"),
        ("role: !!timestamp soon", "'soon' is not a date or time"),
    ],
)
def test_scalars_yaml_cannot_build_are_errors(line: str, message: str) -> None:
    field = line.partition(":")[0]
    if field == "device_id":
        text, line_number = DEVICE.replace("device_id: 1", line), 4
    else:
        text, line_number = DEVICE + f"    {line}\n", 5
    assert error(text) == f"t.yaml:{line_number}: devices[0].{field}: {message}"


def test_a_key_yaml_cannot_build_is_one_error() -> None:
    assert error(DEVICE + "tables: {2024-02-30: 1}\n") == (
        "t.yaml:5: tables: '2024-02-30' is not a date or time (day is out of range for month); "
        "quote it if it is text")
    # The same bad node reached twice (an alias) is reported for each field (at the
    # line it is written on), not as a "recursive node" the second time.
    assert errors(DEVICE + "    role: &r !!int abc\n  - {name: s2, address: 'h:1', device_id: 2,"
                  " role: *r}\n") == [
        "t.yaml:5: devices[0].role: 'abc' is not an integer",
        "t.yaml:5: devices[1].role: 'abc' is not an integer",
    ]


def test_giant_integer_duration() -> None:
    assert error(DEVICE + f"aging: {{default_timeout: {'9' * 400}}}\n") == (
        "t.yaml:5: aging.default_timeout: a 400-digit number is more than 365 days")


@pytest.mark.parametrize("field", ["pipeline", "tls.ca", "tls.key"])
def test_path_with_a_nul_character(field: str) -> None:
    key = field.rpartition(".")[2]
    value = '"a\\0b"'
    text = DEVICE + (f"    {key}: {value}\n" if key == "pipeline" else
                     f"    tls: {{{key}: {value}, {'cert' if key == 'key' else 'server_name'}: "
                     "x}\n")
    assert (f"t.yaml:5: devices[0].{field}: 'a\\x00b' has a NUL character, which no file "
            "name can hold") in errors(text)


@pytest.mark.parametrize("field", ["pipeline", "tls.ca"])
def test_path_name_too_long(tmp_path: Path, field: str) -> None:
    key = field.rpartition(".")[2]
    name = "a" * 300
    text = DEVICE + (f"    {key}: {name}\n" if key == "pipeline" else f"    tls: {{ca: {name}}}\n")
    with pytest.raises(ConfigError) as info:
        parse_config(text, str(tmp_path / "c.yaml"))
    assert [str(e) for e in info.value.errors] == [
        f"{tmp_path / 'c.yaml'}:5: devices[0].{field}: {tmp_path / name}: File name too long"]


def test_deep_nesting_is_an_error() -> None:
    text = "devices: " + "[" * 1000 + "]" * 1000 + "\n"
    assert error(text) == ("t.yaml:1: devices: lists and mappings nested more than 64 deep (no "
                           "configuration needs that many)")
    text = DEVICE + "tables:\n" + "".join("  " * i + f"  k{i}:\n" for i in range(1000))
    assert error(text) == ("t.yaml:68: tables: lists and mappings nested more than 64 deep (no "
                           "configuration needs that many)")
    assert error("? " + "[" * 300 + "]" * 300 + "\n: 1\n") == (
        "t.yaml:1: lists and mappings nested more than 64 deep (no configuration needs that many)")
    # As deep as any real file goes: fine (the keys are unknown, nothing more).
    assert error(DEVICE + "tables: " + "{a: " * 30 + "1" + "}" * 30 + "\n").startswith(
        "t.yaml:5: tables.a: unknown key")


# --- values YAML would read in a surprising way ---------------------------------------------


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        ("{protocol: tcp, dst_ports: 20:21, action: drop}", "dst_ports",
         "'20:21' is not a plain decimal number (YAML 1.1 reads it as 1221)"),
        ("{protocol: tcp, dst_ports: [80, 1_000], action: drop}", "dst_ports[1]",
         "'1_000' is not a plain decimal number (YAML 1.1 reads it as 1000)"),
        ("{protocol: tcp, src_ports: 010, action: drop}", "src_ports",
         "'010' is not a plain decimal number (YAML 1.1 reads it as 8)"),
        ("{protocol: tcp, src_ports: '1_000', action: drop}", "src_ports",
         "'1_000' is not a port or a port range like '8000-8080'"),
        ("{protocol: tcp, src_ports: '0080-90', action: drop}", "src_ports",
         "'0080-90' is not a port or a port range like '8000-8080'"),
        ("{protocol: tcp, action: dnat, port: 1, to_address: 10.0.0.1, to_port: 1:20}",
         "to_port", "'1:20' is not a plain decimal number (YAML 1.1 reads it as 80)"),
        ("{action: forward, port: 0x2}", "port",
         "'0x2' is not a plain decimal number (YAML 1.1 reads it as 2)"),
        ("{in_ports: [1, 02], action: drop}", "in_ports[1]",
         "'02' is not a plain decimal number (YAML 1.1 reads it as 2)"),
    ],
)
def test_ports_are_plain_decimal(rule: str, field: str, message: str) -> None:
    issue = error(policy_text(f"- {rule}\n"))
    assert issue == f"t.yaml:10: policy.vrfs.0.rules[0].{field}: {message}"


def test_aging_override_port_is_plain_decimal() -> None:
    assert error(DEVICE + "aging:\n  overrides:\n    - {protocol: udp, port: 1:53, timeout: 5s}\n"
                 ) == ("t.yaml:7: aging.overrides[0].port: '1:53' is not a plain decimal number "
                       "(YAML 1.1 reads it as 113)")
    assert error(DEVICE + "    port_vrf: {1_0: 1}\n") == (
        "t.yaml:5: devices[0].port_vrf: '1_0' is not a plain decimal number (YAML 1.1 reads it "
        "as 10)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1_000", "'1_000' is not a plain decimal number (YAML 1.1 reads it as 1000)"),
        ("1:30", "'1:30' is not a plain decimal number (YAML 1.1 reads it as 90)"),
        ("1_0.5", "'1_0.5' is not a plain decimal number (YAML 1.1 reads it as 10.5)"),
        ("'1_000'", "'1_000' is not a duration (a number of seconds, or e.g. '500ms', '5s', "
         "'2m', '1h')"),
        ("'\u0665s'", "'\u0665s' is not a duration (a number of seconds, or e.g. '500ms', '5s', "
         "'2m', '1h')"),
    ],
)
def test_durations_are_plain_decimal(text: str, message: str) -> None:
    assert error(DEVICE + f"aging: {{default_timeout: {text}}}\n") == (
        f"t.yaml:5: aging.default_timeout: {message}")


@pytest.mark.parametrize(
    ("field", "address", "message"),
    [
        ("devices[0].address", "300.1.1.1:9559",
         "'300.1.1.1:9559' has a bad IPv4 address '300.1.1.1'"),
        ("devices[0].address", "10.1.1:9559", "'10.1.1:9559' has a bad IPv4 address '10.1.1'"),
        ("metrics.address", "1.2.3.4.5:9100", "'1.2.3.4.5:9100' has a bad IPv4 address "
         "'1.2.3.4.5'"),
        ("devices[0].address", "'h:\u00b2'", "'h:\u00b2' has a bad port '\u00b2' (the port must be "
         "a decimal number)"),
        ("devices[0].address", "'h:\u0665'", "'h:\u0665' has a bad port '\u0665' (the port must be "
         "a decimal number)"),
        ("devices[0].address", "'s1\n:1'", "'s1\\n:1' has a bad host name 's1\\n'"),
    ],
)
def test_address_host_and_port_forms(field: str, address: str, message: str) -> None:
    if field.startswith("metrics"):
        text = DEVICE + f"metrics: {{address: {address}}}\n"
        line = 5
    else:
        text = DEVICE.replace("127.0.0.1:9559", address.replace("\n", "\\n").replace("'", '"'))
        line = 3
    assert error(text) == f"t.yaml:{line}: {field}: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.1ns", "'0.1ns' is less than 1ns (the smallest duration P4Runtime can express)"),
        ("0.0000000001", "1e-10 is less than 1ns (the smallest duration P4Runtime can express)"),
        ("1.0e+300", "1e+300 is more than 365 days"),
        ("1.0e+12", "1000000000000.0 is more than 365 days"),
        ("99999999999h", "'99999999999h' is more than 365 days"),
        ("366d", "'366d' is not a duration (a number of seconds, or e.g. '500ms', '5s', '2m', "
         "'1h')"),
    ],
)
def test_duration_bounds(text: str, message: str) -> None:
    assert error(DEVICE + f"aging: {{default_timeout: {text}}}\n") == (
        f"t.yaml:5: aging.default_timeout: {message}")
    # The same for a duration that may be 0: only 0 itself is "nothing".
    assert error(DEVICE + f"reconcile: {{interval: {text}}}\n") == (
        f"t.yaml:5: reconcile.interval: {message}")


def test_duration_limits_themselves_are_accepted() -> None:
    cfg = config(DEVICE + "aging: {default_timeout: 1ns}\nreconcile: {interval: 8760h}\n"
                 "flows: {digest: {max_timeout: 0.6ns}}\n")
    assert cfg.aging.default_timeout == pytest.approx(1e-9)
    assert cfg.reconcile.interval == 365 * 24 * 3600
    assert cfg.flows.digest.max_timeout_ns == 1


def test_tags_on_mappings_and_lists_are_refused() -> None:
    assert errors("!!python/object/apply:os.system\n" + DEVICE) == [
        "t.yaml:1: expected a mapping, got one tagged !!python/object/apply:os.system (tags "
        "are refused on mappings and lists)"]
    assert error(DEVICE.replace("devices:", "devices: !!python/object/apply:os.system")) == (
        "t.yaml:1: devices: expected a list, got one tagged !!python/object/apply:os.system "
        "(tags are refused on mappings and lists)")
    assert error(DEVICE + "tables: !!str {bucket_ways: 2}\n") == (
        "t.yaml:5: tables: expected a mapping, got one tagged !!str (tags are refused on "
        "mappings and lists)")
    assert error(DEVICE + "    election_id: !!omap [a: 1, b: 2]\n") == (
        "t.yaml:5: devices[0].election_id: expected a list, got one tagged !!omap (tags are "
        "refused on mappings and lists)")
    assert error(policy_text("- {protocol: tcp, dst_ports: !foo [80], action: drop}\n")) == (
        "t.yaml:10: policy.vrfs.0.rules[0].dst_ports: expected a list, got one tagged !foo "
        "(tags are refused on mappings and lists)")
    assert error(policy_text("- {in_ports: !!pairs [a: 1], action: drop}\n")) == (
        "t.yaml:10: policy.vrfs.0.rules[0].in_ports: expected a list, got one tagged !!pairs "
        "(tags are refused on mappings and lists)")
    assert error(DEVICE + "tables: {<<: !!python/object:x {bucket_ways: 2}}\n") == (
        "t.yaml:5: tables: expected a mapping, got one tagged !!python/object:x (tags are "
        "refused on mappings and lists)")
    # A tag that only says what YAML already assumes is fine.
    assert config(DEVICE + "tables: !!map {bucket_ways: 2, flow_entries: 2, "
                  "overflow_entries: 2}\n").tables.bucket_ways == 2


def test_name_with_a_trailing_newline() -> None:
    assert error(DEVICE.replace("name: s1", "name: |\n      s1")) == (
        "t.yaml:2: devices[0].name: 's1\\n' is not a name (letters, digits, '_', '.', ':', '-')")
    assert error(policy_text("- {name: \"web\\n\", action: drop}\n")) == (
        "t.yaml:10: policy.vrfs.0.rules[0].name: 'web\\n' is not a name (letters, digits, '_', "
        "'.', ':', '-')")


def test_to_port_zero() -> None:
    rule = "- {protocol: tcp, action: dnat, port: 1, to_address: 10.0.0.1, to_port: 0}\n"
    assert error(policy_text(rule)) == (
        "t.yaml:10: policy.vrfs.0.rules[0].to_port: 0 is out of range (1-65535)")
    # Port 0 still has a meaning in a match (it is a port a packet can carry).
    cfg = config(policy_text("- {protocol: tcp, dst_ports: 0, action: drop}\n"))
    assert cfg.policy.vrfs[0].rules[0].dst_ports.ranges == ((0, 0),)


def test_merge_node_reached_twice_through_an_alias() -> None:
    cfg = config(DEVICE + textwrap.dedent("""\
        policy:
          vrfs:
            0:
              rules: &r0
                - &fwd {name: a, action: forward, port: 1}
                - {<<: *fwd, name: b}
            1:
              rules: *r0
    """))
    for vrf in (0, 1):
        assert [(r.name, r.then.port) for r in cfg.policy.vrfs[vrf].rules] == [("a", 1), ("b", 1)]
    # A real duplicate in such a mapping is reported once, at its line.
    assert error(DEVICE + textwrap.dedent("""\
        policy:
          vrfs:
            0:
              rules: &r0
                - &fwd {name: a, action: forward, port: 1}
                - {<<: *fwd, name: b, name: c}
            1:
              rules: *r0
    """)) == "t.yaml:10: policy.vrfs.0.rules[1].name: duplicate key (first given on line 10)"


def test_a_mapping_merging_itself() -> None:
    assert error(DEVICE + "reconcile: &r {interval: 5s, <<: *r}\n") == (
        "t.yaml:5: reconcile: a mapping cannot merge itself")


def test_merge_source_checked_before_it_is_merged() -> None:
    # policy.default is read before the VRFs: merging &b into it flattens &b in
    # place, and &b's own override of 'port' must not then look like a duplicate.
    cfg = config(DEVICE + textwrap.dedent("""\
        policy:
          vrfs:
            0: {default: &a {action: forward, port: 1}}
            1: {default: &b {<<: *a, port: 2}}
          default: {<<: *b}
    """))
    assert cfg.policy.default.port == 2
    assert [cfg.policy.vrfs[vrf].default.port for vrf in (0, 1)] == [1, 2]


@pytest.mark.parametrize("key", ["[a]", "{a: 1}", "[a, [2024-02-30]]"])
def test_a_list_as_a_key_is_one_error(key: str) -> None:
    kind = "a mapping" if key.startswith("{") else "a list"
    assert error(DEVICE + f"tables: {{{key}: 1}}\n") == f"t.yaml:5: tables: {kind} cannot be a key"


def test_a_list_as_a_top_level_key() -> None:
    assert errors("? [a]\n: 1\n" + DEVICE) == ["t.yaml:1: a list cannot be a key"]
