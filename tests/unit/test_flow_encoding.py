"""Flow entries spliced as wire bytes equal the protobuf runtime's serialization.

The reference below builds each message field by field through
``p4runtime_pb2``, from the P4Info names (not from the encoder's ids), and
serializes it; the encoder's bytes must be identical and parse back to the
same message.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from p4.v1 import p4runtime_pb2

from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import KEY_FIELDS, FlowKey
from p4ctl.p4rt.wire import read_varint, varint, varint_len
from p4ctl.pipeline import BUNDLED, FlowMapping, PipelineSpec, PipelineSpecError

SPEC = PipelineSpec.load(BUNDLED)
P4INFO = SPEC.load_p4info()
MAPPING = FlowMapping(SPEC, P4INFO)
FLOW_ID_BITS = P4INFO.actions[SPEC.role("tables", "flow", "actions", "forward", "name")].param(
    SPEC.role("tables", "flow", "actions", "forward", "params", "flow_id")).bitwidth


def canonical(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def reference_entry(key: FlowKey, flow_id: int, action: FlowAction | None,
                    idle_ns: int) -> p4runtime_pb2.TableEntry:
    """The entry built through the protobuf runtime, by P4Info name."""
    table = P4INFO.tables[SPEC.role("tables", "flow", "name")]
    msg = p4runtime_pb2.TableEntry(table_id=table.id)
    roles = SPEC.role("tables", "flow", "match")
    for (name, _), value in zip(KEY_FIELDS, key.values(), strict=True):
        fm = msg.match.add(field_id=table.field(roles[name]).id)
        fm.exact.value = canonical(value)
    if action is None:
        return msg
    role = {ActionKind.FORWARD: "forward", ActionKind.DROP: "drop", ActionKind.NAT: "nat"}
    spec = SPEC.role("tables", "flow", "actions", role[action.kind])
    info = P4INFO.actions[spec["name"]]
    values = {"flow_id": flow_id, "port": action.port, "src_addr": action.nat_src_addr,
              "dst_addr": action.nat_dst_addr, "src_port": action.nat_src_port,
              "dst_port": action.nat_dst_port}
    act = msg.action.action
    act.action_id = info.id
    for param_role, param_name in spec["params"].items():
        act.params.add(param_id=info.param(param_name).id, value=canonical(values[param_role]))
    # parameters in the P4Info's order, as a reader of the action expects them
    ordered = sorted(act.params, key=lambda p: p.param_id)
    del act.params[:]
    act.params.extend(ordered)
    if idle_ns:
        msg.idle_timeout_ns = idle_ns
    return msg


u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
keys = st.builds(FlowKey, u16, u32, u32, st.integers(0, 255), u16, u16)
ports = st.integers(0, 511)
actions = st.one_of(
    st.builds(FlowAction, st.just(ActionKind.FORWARD), ports),
    st.just(FlowAction(ActionKind.DROP)),
    st.builds(FlowAction, st.just(ActionKind.NAT), ports, u32, u32, u16, u16),
)
flow_ids = st.integers(0, (1 << FLOW_ID_BITS) - 1)
timeouts = st.sampled_from([0, 1, 5 * 10**9, 180 * 10**9, (1 << 63) - 1])


@settings(max_examples=400, deadline=None)
@given(keys, flow_ids, actions, timeouts)
def test_entries_are_the_runtime_serialization(key: FlowKey, flow_id: int, action: FlowAction,
                                               idle_ns: int) -> None:
    encoder = MAPPING.encoder
    want = reference_entry(key, flow_id, action, idle_ns)
    got = encoder.entry(key.packed(), flow_id, action, idle_ns)
    assert got == want.SerializeToString(deterministic=True)
    assert p4runtime_pb2.TableEntry.FromString(got) == want
    for kind in (p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY):
        update = p4runtime_pb2.Update(type=kind)
        update.entity.table_entry.CopyFrom(want)
        assert encoder.update(kind, got) == update.SerializeToString(deterministic=True)


@settings(max_examples=300, deadline=None)
@given(keys, actions, st.integers(0, 100))
def test_an_overflow_slot_reads_back_as_written(key: FlowKey, action: FlowAction,
                                                slot: int) -> None:
    first, last = MAPPING.overflow_install(key, slot, action)
    assert {index for _, index, _ in first + last} == {slot}
    names = [name for name, _, _ in first]
    registers = MAPPING.registers
    # the kind last; the NAT words only for a NAT (a slot may be rewritten while valid)
    assert names[-1] == registers["overflow_action"]
    assert (registers["overflow_nat_addrs"] in names) == (action.kind is ActionKind.NAT)
    assert last == [(registers["overflow_valid"], slot, 1)]
    cells = {name: value for name, _, value in first}
    if action.kind is not ActionKind.NAT:  # the fields a kind does not use read as zero
        action = FlowAction(action.kind, action.port if action.kind is ActionKind.FORWARD else 0)
    assert MAPPING.parse_overflow(cells) == (key, action)


def test_an_unknown_overflow_action_is_an_error() -> None:
    cells = {name: 0 for name, _, _ in MAPPING.overflow_install(
        FlowKey.parse("0,10.0.0.1,10.0.0.2,udp,1,2"), 0, FlowAction(ActionKind.DROP))[0]}
    with pytest.raises(PipelineSpecError, match="overflow action 0 is not a flow action"):
        MAPPING.parse_overflow(cells)


@settings(max_examples=200, deadline=None)
@given(keys)
def test_delete_entries_carry_the_match_only(key: FlowKey) -> None:
    encoder = MAPPING.encoder
    want = p4runtime_pb2.Update(type=p4runtime_pb2.Update.DELETE)
    want.entity.table_entry.CopyFrom(reference_entry(key, 0, None, 0))
    got = encoder.update(p4runtime_pb2.Update.DELETE, encoder.key_entry(key.packed()))
    assert got == want.SerializeToString(deterministic=True)
    assert MAPPING.table_key(key) == want.entity.table_entry


def test_edge_values() -> None:
    """Zero values are one zero byte; the widest values keep every byte."""
    for key in (FlowKey(0, 0, 0, 0, 0, 0), FlowKey(0xFFFF, 2**32 - 1, 2**32 - 1, 255, 0xFFFF,
                                                   0xFFFF), FlowKey(256, 1 << 24, 255, 1, 256, 1)):
        for flow_id in (0, 1, 255, 256, (1 << FLOW_ID_BITS) - 1):
            action = FlowAction(ActionKind.FORWARD, 511)
            got = MAPPING.table_entry(key, flow_id, action, 5 * 10**9)
            assert got == reference_entry(key, flow_id, action, 5 * 10**9)
            assert MAPPING.parse_table_entry(got) == (key, flow_id, action)


def test_a_flow_id_wider_than_its_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        MAPPING.encoder.entry(0, 1 << FLOW_ID_BITS, FlowAction(ActionKind.DROP))
    with pytest.raises(ValueError, match="does not fit"):
        MAPPING.encoder.entry(0, -1, FlowAction(ActionKind.DROP))


@given(st.integers(0, 2**64 - 1))
def test_varints(n: int) -> None:
    msg = p4runtime_pb2.WriteRequest(device_id=n)  # uint64 field 1: a tag byte, the varint
    assert msg.SerializeToString() == (b"\x08" + varint(n) if n else b"")
    assert len(varint(n)) == varint_len(n)
    assert read_varint(b"x" + varint(n) + b"y", 1) == (n, 1 + varint_len(n))
    with pytest.raises(IndexError):
        read_varint(varint(n)[:-1], 0)
