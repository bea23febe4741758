"""The P4Info index: names <-> ids for every entity, aliases, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from p4ctl.p4rt.p4data import BitType, StructType
from p4ctl.p4rt.p4info import CounterUnit, MatchType, P4Info, P4InfoError

FIXTURE = Path(__file__).parent / "fixtures" / "mini.p4info.txtpb"


@pytest.fixture(scope="module")
def p4info() -> P4Info:
    return P4Info.load(FIXTURE)


def test_loads_text_and_binary_alike(p4info: P4Info, tmp_path: Path) -> None:
    binary = tmp_path / "mini.p4info.pb"
    binary.write_bytes(p4info.proto.SerializeToString())
    again = P4Info.load(binary)
    assert again.proto == p4info.proto
    assert P4Info.parse(p4info.to_text()).proto == p4info.proto
    assert P4Info.parse(p4info.proto.SerializeToString()).proto == p4info.proto


def test_garbage_is_refused_with_the_file_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txtpb"
    bad.write_text("tables { preamble { id: oops } }")
    with pytest.raises(P4InfoError, match=r"bad.txtpb"):
        P4Info.load(bad)
    with pytest.raises(P4InfoError):
        P4Info.parse(b"\xff\xfe\x00garbage")


def test_tables_by_full_name_alias_suffix_and_id(p4info: P4Info) -> None:
    table = p4info.tables["FlowIngress.flow_table"]
    assert p4info.tables["flow_table"] is table
    assert p4info.tables[37375156] is table
    assert table.size == 1024
    assert table.supports_idle_timeout
    assert not table.needs_priority
    assert [f.name for f in table.match_fields][:2] == ["meta.flow.vrf", "meta.flow.src_addr"]
    assert table.field("src_addr").id == 2  # unique suffix within the table
    assert table.field("meta.flow.dport").bitwidth == 16
    assert table.field(6).name == "meta.flow.dport"
    assert p4info.direct_counter_of(table).name == "FlowIngress.flow_counter"
    assert p4info.name_of(table.id) == "FlowIngress.flow_table"


def test_match_kinds_and_priority(p4info: P4Info) -> None:
    acl = p4info.tables["acl"]
    kinds = [f.match_type for f in acl.match_fields]
    assert kinds == [MatchType.TERNARY, MatchType.RANGE, MatchType.OPTIONAL]
    assert acl.needs_priority
    assert p4info.tables["route"].match_fields[0].match_type is MatchType.LPM


def test_ambiguous_short_name_is_refused_with_candidates(p4info: P4Info) -> None:
    with pytest.raises(P4InfoError, match=r"ambiguous.*FlowEgress.stats.*FlowIngress.stats"):
        p4info.tables["stats"]
    assert p4info.tables["FlowEgress.stats"].id == 34000002


def test_unknown_names_list_what_exists(p4info: P4Info) -> None:
    with pytest.raises(P4InfoError, match=r"unknown table 'flow_tabel'.*FlowIngress.flow_table"):
        p4info.tables["flow_tabel"]
    with pytest.raises(P4InfoError, match=r"no table with id 1"):
        p4info.tables[1]
    with pytest.raises(P4InfoError, match=r"has no match field 'nope'"):
        p4info.tables["flow_table"].field("nope")
    with pytest.raises(P4InfoError, match=r"has no parameter 'speed'"):
        p4info.actions["forward"].param("speed")
    with pytest.raises(P4InfoError, match=r"unknown register"):
        p4info.registers["flow_table"]
    assert p4info.tables.get("nope") is None
    assert "flow_table" in p4info.tables and 37375156 in p4info.tables


def test_actions_and_params(p4info: P4Info) -> None:
    forward = p4info.actions["forward"]
    assert forward.name == "FlowIngress.forward"
    assert [(p.id, p.name, p.bitwidth) for p in forward.params] == [
        (1, "port", 9),
        (2, "flow_id", 32),
    ]
    flow_table = p4info.tables["flow_table"]
    no_action = p4info.actions["NoAction"]
    assert no_action.id in flow_table.default_only_action_ids
    assert forward.id in flow_table.action_ids


def test_registers_counters_meters_digests(p4info: P4Info) -> None:
    tcp = p4info.registers["tcp_state"]
    assert (tcp.size, tcp.bitwidth) == (1024, 8)
    delta = p4info.registers["delta"]
    assert delta.type == BitType(16, signed=True)
    assert p4info.counters["port_packets"].unit is CounterUnit.BOTH
    assert p4info.counters["port_packets"].size == 512
    assert p4info.direct_counters["flow_counter"].table_id == 37375156
    assert p4info.meters["port_meter"].size == 512
    digest = p4info.digests["new_flow_t"]
    assert isinstance(digest.type, StructType)
    assert digest.member_names == (
        "vrf", "src_addr", "dst_addr", "proto", "sport", "dport", "ingress_port", "hash",
    )


def test_controller_packet_metadata_and_value_sets(p4info: P4Info) -> None:
    packet_in = p4info.packet_in()
    assert packet_in is not None
    assert packet_in.field("ingress_port").bitwidth == 9
    assert packet_in.field(2).name == "reason"
    packet_out = p4info.packet_out()
    assert packet_out is not None and [f.name for f in packet_out.fields] == ["egress_port", "_pad"]
    vset = p4info.value_sets["tunnel_ports"]
    assert vset.size == 4 and vset.match_fields[0].bitwidth == 16
    with pytest.raises(P4InfoError, match=r"no metadata field 'port'"):
        packet_in.field("port")


def test_every_entity_kind_is_indexed_by_id(p4info: P4Info) -> None:
    proto = p4info.proto
    kinds = {
        "tables": p4info.tables, "actions": p4info.actions, "registers": p4info.registers,
        "counters": p4info.counters, "direct_counters": p4info.direct_counters,
        "meters": p4info.meters, "digests": p4info.digests,
        "controller_packet_metadata": p4info.controller_packet_metadata,
        "value_sets": p4info.value_sets,
    }
    for field, index in kinds.items():
        for item in getattr(proto, field):
            assert index[item.preamble.id].name == item.preamble.name
            assert index[item.preamble.name].id == item.preamble.id
        assert len(index) == len(getattr(proto, field))
