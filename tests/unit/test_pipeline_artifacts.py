"""The committed pipeline: P4Info parses, names what pipeline.yaml names, and is current."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from p4.config.v1 import p4info_pb2

from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import FlowKey
from p4ctl.p4rt.p4info import P4Info
from p4ctl.pipeline import BUNDLED, FlowMapping, PipelineSpec, PipelineSpecError


@pytest.fixture(scope="module")
def spec() -> PipelineSpec:
    return PipelineSpec.load(BUNDLED)


def test_p4info_parses_with_the_protos(spec: PipelineSpec) -> None:
    from google.protobuf import text_format

    info = text_format.Parse(spec.p4info_path.read_text(), p4info_pb2.P4Info())
    assert info.pkg_info.arch == "v1model"
    assert {t.preamble.name for t in info.tables} >= {
        "FlowIngress.flow_table", "FlowIngress.port_vrf", "FlowIngress.miss_policy"
    }


def test_every_object_has_an_explicit_stable_id(spec: PipelineSpec) -> None:
    info = spec.load_p4info()
    # @id(N) in the source gives the low bits; p4c adds the resource-type prefix.
    assert info.tables["FlowIngress.flow_table"].id & 0xFFFFFF == 2
    assert info.registers["FlowIngress.ovf_valid"].id & 0xFFFFFF == 3
    assert info.actions["FlowIngress.flow_nat"].id & 0xFFFFFF == 5


def test_pipeline_yaml_names_resolve(spec: PipelineSpec) -> None:
    mapping = FlowMapping(spec, spec.load_p4info())
    assert set(mapping.registers) >= {"tcp_state", "last_seen", "overflow_valid"}
    info = spec.load_p4info()
    flow = info.tables[mapping.flow_table_id]
    assert flow.size == spec.sizes.flow_entries
    assert info.registers[mapping.registers["overflow_valid"]].size == spec.sizes.overflow_entries
    assert info.registers[mapping.registers["tcp_state"]].size == spec.sizes.slots
    assert info.digests[mapping.new_flow_digest_id].member_names == tuple(
        spec.role("digests", "new_flow", "fields")
    )
    assert info.digests[mapping.flow_event_digest_id].member_names == tuple(
        spec.role("digests", "flow_event", "fields")
    )
    for role in ("packet_in", "packet_out"):
        meta = info.controller_packet_metadata[spec.role("packet_metadata", role, "name")]
        assert [f.name for f in meta.fields if not f.name.startswith("_")] == list(
            spec.role("packet_metadata", role, "fields")
        )


def test_table_entry_round_trip(spec: PipelineSpec) -> None:
    mapping = FlowMapping(spec, spec.load_p4info())
    key = FlowKey.parse("1,10.0.0.1,10.0.0.2,tcp,1234,80")
    nat = FlowAction(ActionKind.NAT, 2, 0xC0000201, key.dst_addr, 40000, 80)
    for action in (FlowAction(ActionKind.FORWARD, 2), FlowAction(ActionKind.DROP), nat):
        msg = mapping.table_entry(key, 77, action, idle_timeout_ns=5_000_000_000)
        assert msg.idle_timeout_ns == 5_000_000_000
        assert mapping.parse_table_entry(msg) == (key, 77, action)


def test_a_flow_table_field_of_another_width_is_refused(spec: PipelineSpec) -> None:
    """The table entries encode the flow key's fields: their widths must be the key's."""
    proto = spec.load_p4info().proto
    changed = p4info_pb2.P4Info()
    changed.CopyFrom(proto)
    name = spec.role("tables", "flow", "name")
    table = next(t for t in changed.tables if t.preamble.name == name)
    table.match_fields[0].bitwidth += 1
    with pytest.raises(PipelineSpecError, match=r"is bit<\d+> in .*the flow key has bit<\d+>"):
        FlowMapping(spec, P4Info(changed))


def test_bmv2_json_matches_the_p4info(spec: PipelineSpec) -> None:
    doc = json.loads(spec.bmv2_json().decode())
    names = {t["name"] for p in doc["pipelines"] for t in p["tables"]}
    assert "FlowIngress.flow_table" in names
    flow = next(t for p in doc["pipelines"] for t in p["tables"]
                if t["name"] == "FlowIngress.flow_table")
    assert flow["support_timeout"] is True
    assert flow["max_size"] == spec.sizes.flow_entries
    assert {r["name"] for r in doc["register_arrays"]} >= set(
        spec.role("registers").values()
    )


@pytest.mark.skipif(
    shutil.which("p4c-bm2-ss") is None, reason="p4c-bm2-ss (p4c's BMv2 backend) is not on PATH"
)
def test_committed_artifacts_are_p4c_output() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "p4ctl.compile", "--check"], capture_output=True, text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(
    shutil.which("p4test") is None or not os.environ.get("P4C_TNA_INCLUDE"),
    reason="needs p4test on PATH and P4C_TNA_INCLUDE (p4c's backends/tofino/bf-p4c/p4include)",
)
def test_tna_program_passes_p4c_frontend() -> None:
    from pathlib import Path

    from p4ctl.compile import check_tna_frontend

    check_tna_frontend(Path(os.environ["P4C_TNA_INCLUDE"]))
