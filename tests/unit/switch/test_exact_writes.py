"""The write fast path for all-exact tables answers exactly as PI's general path does.

Two devices load the bundled pipeline, one with the fast path and one
without, and get the same generated WriteRequests: plain entries, and every
way an entry can leave the plain form (padded, over-wide or empty values,
fields out of order, missing or repeated, priorities, default entries,
metadata, direct counter data, actions the table does not allow, negative
timeouts, unknown fields around the entry). Per-update results and the
tables read back must be identical, and the plain forms must actually take
the fast path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from p4.v1 import p4runtime_pb2

from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import FlowKey
from p4ctl.p4rt.wire import LEN, VARINT, len_field, tag, varint, varint_field
from p4ctl.pipeline import BUNDLED, FlowMapping, PipelineSpec
from p4ctl.switch.codec import Code, P4RuntimeError
from p4ctl.switch.device_mgr import DeviceMgr
from p4ctl.switch.exact_writes import ExactTableWrites
from p4ctl.switch.write_request import ReceivedWrite

U = p4runtime_pb2.Update
SPEC = PipelineSpec.load(BUNDLED)
P4INFO = SPEC.load_p4info()
MAPPING = FlowMapping(SPEC, P4INFO)
FLOW = P4INFO.tables["FlowIngress.flow_table"]
PORT_VRF = P4INFO.tables["FlowIngress.port_vrf"]
TABLES = {
    t.id: (
        [(f.id, f.bitwidth) for f in t.match_fields],
        [P4INFO.actions[a] for a in sorted(t.action_ids)],
    )
    for t in (FLOW, PORT_VRF)
}
UNKNOWN_ACTION = 16777299


def _device(fast: bool, loop: asyncio.AbstractEventLoop) -> DeviceMgr:
    mgr = DeviceMgr(1, lambda *_: None, loop=loop, fast_writes=fast)
    config = p4runtime_pb2.ForwardingPipelineConfig(
        p4info=P4INFO.proto, p4_device_config=SPEC.bmv2_json_path.read_bytes())
    mgr.set_pipeline(p4runtime_pb2.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT, config)
    return mgr


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _plain(width: int) -> st.SearchStrategy[int]:
    # A small space so that entries collide (duplicates, deletes that hit), and the top value.
    return st.one_of(st.integers(0, 2), st.just((1 << width) - 1))


def _odd(draw, width: int) -> bytes:
    """A value in one of the forms PI reads differently or not at all."""
    nbytes = (width + 7) // 8
    form = draw(st.sampled_from(["wide", "wide_in_bytes", "empty", "padded", "extra_zero"]))
    if form == "empty":
        return b""
    if form == "wide_in_bytes" and width % 8:  # fits the bytes, not the bits
        return draw(st.integers(1 << width, (1 << 8 * nbytes) - 1)).to_bytes(nbytes, "big")
    if form in ("wide", "wide_in_bytes"):
        value = draw(st.integers(1 << width, 1 << (width + 8)))
        return value.to_bytes((value.bit_length() + 7) // 8, "big")
    padded = draw(_plain(width)).to_bytes(nbytes, "big")
    return b"\x00" + padded if form == "extra_zero" else padded


def _values(draw, widths: list[int], odd: bool) -> list[bytes]:
    """Canonical values, one of them odd when ``odd``."""
    out = [canonical(draw(_plain(w))) for w in widths]
    if odd and out:
        i = draw(st.integers(0, len(out) - 1))
        out[i] = _odd(draw, widths[i])
    return out


def canonical(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


EXTRAS = ["priority", "metadata", "controller_metadata", "is_default", "counter_data",
          "no_action", "unknown_action", "params_reversed", "param_missing",
          "fields_reversed", "field_missing", "field_repeated", "negative_ttl",
          "te_unknown_field", "entity_trailing_field", "action_unknown_field",
          "table_action_unknown_field", "odd_match_value", "odd_param_value"]
#: field 9 as a varint: unknown where it is put, and an idle timeout in a table entry
TRAILING = tag(9, VARINT) + varint(5)


@st.composite
def updates(draw, odd: str | None = None) -> bytes:
    """One serialized Update: plain, or with ``odd`` or some of :data:`EXTRAS`."""
    table_id = draw(st.sampled_from(sorted(TABLES)))
    fields, actions = TABLES[table_id]
    utype = draw(st.sampled_from([U.INSERT, U.INSERT, U.DELETE, U.MODIFY]))
    extras: set[str] = set()
    if odd is not None:
        extras = {odd}
    elif draw(st.booleans()):
        extras = draw(st.sets(st.sampled_from(EXTRAS), max_size=2))
    te = p4runtime_pb2.TableEntry(table_id=table_id)
    matches = []
    values = _values(draw, [w for _, w in fields], "odd_match_value" in extras)
    for (fid, _), value in zip(fields, values, strict=True):
        fm = p4runtime_pb2.FieldMatch(field_id=fid)
        fm.exact.value = value
        matches.append(fm)
    if "fields_reversed" in extras:
        matches.reverse()
    if "field_missing" in extras:
        matches.pop()
    if "field_repeated" in extras and matches:
        matches.append(matches[0])
    te.match.extend(matches)
    action_bytes = b""
    if utype != U.DELETE or draw(st.integers(0, 9)) == 0:
        action = draw(st.sampled_from(actions))
        act = p4runtime_pb2.Action(
            action_id=UNKNOWN_ACTION if "unknown_action" in extras else action.id)
        values = _values(draw, [p.bitwidth for p in action.params], "odd_param_value" in extras)
        params = [p4runtime_pb2.Action.Param(param_id=p.id, value=value)
                  for p, value in zip(action.params, values, strict=True)]
        if "params_reversed" in extras:
            params.reverse()
        if "param_missing" in extras and params:
            params.pop()
        act.params.extend(params)
        # Unknown fields inside the action (kept and sent on by the protobuf
        # runtime): a varint field 9, which reads as an idle timeout if the
        # action's lengths were not checked.
        act_bytes = act.SerializeToString()
        if "action_unknown_field" in extras:
            act_bytes += TRAILING
        table_action = len_field(1, act_bytes)
        if "table_action_unknown_field" in extras:
            table_action += TRAILING
        if "no_action" not in extras:
            action_bytes = len_field(3, table_action)
        te.idle_timeout_ns = draw(st.sampled_from([0, 0, 5_000_000_000, 180 * 10**9, 1]))
    if "negative_ttl" in extras:
        te.idle_timeout_ns = -1
    if "priority" in extras:
        te.priority = 10
    if "metadata" in extras:
        te.metadata = b"cookie"
    if "controller_metadata" in extras:
        te.controller_metadata = 7
    if "is_default" in extras:
        te.is_default_action = True
    if "counter_data" in extras:
        te.counter_data.packet_count = 3
    te_bytes = te.SerializeToString() + action_bytes
    if "te_unknown_field" in extras:
        te_bytes += tag(1000, VARINT) + varint(1)
    entity = len_field(2, te_bytes)
    if "entity_trailing_field" in extras:
        entity += TRAILING  # read as the entry's idle timeout if its length were not checked
    update = varint_field(1, utype) + len_field(2, entity)
    U.FromString(update)  # well formed
    return update


def _answers(mgr: DeviceMgr, batch: list[bytes]) -> list[tuple[int, str] | None]:
    request = p4runtime_pb2.WriteRequest(device_id=1)
    for raw in batch:
        request.updates.add().MergeFromString(raw)
    return [None if e is None else (e.code, e.message) for e in mgr.write(request)]


def _tables(mgr: DeviceMgr) -> list[bytes]:
    read = p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry())
    return sorted(e.SerializeToString(deterministic=True) for e in mgr.read([read]))


@pytest.fixture(scope="module")
def devices(loop) -> tuple[DeviceMgr, DeviceMgr]:
    return _device(True, loop), _device(False, loop)


def _same_answers(devices: tuple[DeviceMgr, DeviceMgr], requests: list[list[bytes]]) -> None:
    fast, general = devices
    for mgr in devices:
        mgr.reset_state()
    for batch in requests:
        assert _answers(fast, batch) == _answers(general, batch)
    assert _tables(fast) == _tables(general)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(requests=st.lists(st.lists(updates(), min_size=1, max_size=12), min_size=1, max_size=4))
def test_fast_path_answers_as_the_general_path(devices, requests) -> None:
    _same_answers(devices, requests)


@pytest.mark.parametrize("odd", EXTRAS)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_each_odd_form_answers_as_the_general_path(devices, odd, data) -> None:
    """Plain updates with one odd one among them, for every odd form."""
    batch = [*data.draw(st.lists(updates(), max_size=4)), data.draw(updates(odd))]
    _same_answers(devices, [batch, data.draw(st.lists(updates(odd), min_size=1, max_size=3))])


#: top-level fields a WriteRequest's updates may be interleaved with, as a
#: client or a proxy may send them: its header, in any order, and unknown
#: fields of every wire type, the updates' own number among them
AROUND_UPDATES = [
    tag(1, VARINT) + varint(1),  # device_id
    tag(3, LEN) + varint(2) + tag(2, VARINT) + varint(9),  # election_id
    tag(6, LEN) + varint(4) + b"role",
    tag(5, VARINT) + varint(0),  # atomicity: CONTINUE_ON_ERROR, spelled out
    tag(100, VARINT) + varint(300),
    # fixed64 and fixed32, whose bytes read as an update if skipped by the wrong width
    tag(101, 1) + b"\x0a\x0b\x0c\x0d\x22\x02\x08\x01",
    tag(102, 5) + b"\x22\x02\x08\x01",
    tag(103, LEN) + varint(3) + b"abc",
    tag(4, VARINT) + varint(7),  # the updates' number with another wire type: unknown
    tag(4, 5) + b"\x22\x02\x08\x01",  # ... that looks like an update inside
    tag(104, 3) + tag(1, VARINT) + varint(5) + tag(104, 4),  # a group
]


def _framed(update: p4runtime_pb2.Update | bytes) -> bytes:
    """An update as a WriteRequest field."""
    raw = update if isinstance(update, bytes) else update.SerializeToString()
    return len_field(4, raw)


@st.composite
def raw_requests(draw) -> bytes:
    """A serialized WriteRequest: updates with other fields between them."""
    pieces = [_framed(u)
              for u in draw(st.lists(updates(), min_size=1, max_size=8))]
    for piece in draw(st.lists(st.sampled_from(AROUND_UPDATES), max_size=4)):
        pieces.insert(draw(st.integers(0, len(pieces))), piece)
    return b"".join(pieces)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(requests=st.lists(raw_requests(), min_size=1, max_size=3))
def test_updates_read_from_the_request_as_received(devices, requests) -> None:
    """The fast path reads the request's own bytes, whatever lies between its updates."""
    fast, general = devices
    for mgr in devices:
        mgr.reset_state()
    for raw in requests:
        parsed = p4runtime_pb2.WriteRequest.FromString(raw)
        received = ReceivedWrite(raw)
        assert len(received) == len(parsed.updates)
        assert [received.update(i) for i in range(len(received))] == list(parsed.updates)
        if received.spans is not None:  # else parsed whole (a group in it)
            del parsed.updates[:]
            assert received.header == parsed
        answers = [[None if e is None else (e.code, e.message)
                    for e in mgr.write(ReceivedWrite(raw))] for mgr in devices]
        assert answers[0] == answers[1]
    assert _tables(fast) == _tables(general)


@pytest.mark.parametrize("piece", AROUND_UPDATES)
def test_fields_between_updates_are_stepped_over(loop, piece) -> None:
    mgr = _device(True, loop)
    assert mgr.pmap is not None
    exact = ExactTableWrites(mgr.pmap)
    one, two = (_framed(_flow_update(U.INSERT, i, FlowAction(ActionKind.FORWARD, 1)))
                for i in (1, 2))
    received = ReceivedWrite(one + piece + two)
    if piece[0] & 7 == 3:
        # a group is not walked over (no WriteRequest field is one): the request is parsed
        assert received.spans is None
    else:
        assert received.spans is not None
        assert [exact.read(received.data, *span) is not None
                for span in received.spans] == [True, True]
    assert mgr.write(received) == [None, None]
    assert len(mgr.pmap.tables[FLOW.id].table) == 2


def test_a_malformed_request_changes_nothing(loop) -> None:
    mgr = _device(True, loop)
    assert mgr.pmap is not None
    one, two = (_flow_update(U.INSERT, i, FlowAction(ActionKind.FORWARD, 1)).SerializeToString()
                for i in (1, 2))
    for cut in (_framed(one) + _framed(two)[:-1],  # the last update cut short
                _framed(one) + tag(4, LEN) + varint(len(two) + 1) + two,  # a length past the end
                _framed(one) + tag(4, LEN) + b"\x80"):  # a varint cut short
        with pytest.raises(DecodeError):
            ReceivedWrite(cut)
    # The fields around the updates walk, the first update is plain, the second is no message:
    # nothing is applied, as when the whole request failed to parse.
    not_a_message = tag(1, VARINT) + varint(U.INSERT) + tag(2, LEN) + varint(5) + b"\x12"
    # An entity one byte shorter than the entry it holds: the pattern would
    # match it, were the entity's length not checked.
    entity = U.FromString(two).entity.table_entry.SerializeToString()
    entity = len_field(2, entity)
    short_entity = (tag(1, VARINT) + varint(U.INSERT)
                    + tag(2, LEN) + varint(len(entity) - 1) + entity)
    for bad in (not_a_message, short_entity):
        with pytest.raises(P4RuntimeError) as e:
            mgr.write(ReceivedWrite(_framed(one) + _framed(bad)))
        assert e.value.code == Code.INVALID_ARGUMENT
        assert len(mgr.pmap.tables[FLOW.id].table) == 0


def _flow_update(utype: int, i: int, action: FlowAction, ttl: int = 0) -> p4runtime_pb2.Update:
    enc = MAPPING.encoder
    packed = FlowKey(i & 0xFF, 0x0A000000 + i, 0xC0A80001, 6, 1024 + i, 80).packed()
    te = enc.entry(packed, i, action, ttl) if utype == U.INSERT else enc.key_entry(packed)
    return U.FromString(enc.update(utype, te))


def _fast(exact: ExactTableWrites, *updates: p4runtime_pb2.Update,
          on_delete=None) -> list[bool]:
    """Which of the updates, sent in one request, the fast path applied."""
    received = ReceivedWrite.of(p4runtime_pb2.WriteRequest(device_id=1, updates=updates))
    assert received.spans is not None
    out = []
    for span in received.spans:
        plain = exact.read(received.data, *span)
        out.append(plain is not None and exact.apply(plain, 0, on_delete))
    return out


def test_plain_entries_take_the_fast_path(loop) -> None:
    mgr = _device(True, loop)
    assert mgr.pmap is not None
    exact = ExactTableWrites(mgr.pmap)
    deleted = []
    nat = FlowAction(ActionKind.NAT, 3, 0xC0A80063, 0x08080808, 40000, 53)
    plain = []
    for i, action in enumerate([FlowAction(ActionKind.FORWARD, 1),
                                FlowAction(ActionKind.DROP), nat]):
        plain += [_flow_update(U.INSERT, i, action, 180 * 10**9),
                  _flow_update(U.INSERT, 100 + i, action)]
    assert _fast(exact, *plain) == [True] * 6
    # values padded to the field's width are plain too (PI accepts them)
    te = p4runtime_pb2.TableEntry(table_id=PORT_VRF.id)
    te.match.add(field_id=1).exact.value = b"\x00\x07"
    te.action.action.action_id = P4INFO.actions["FlowIngress.set_vrf"].id
    te.action.action.params.add(param_id=1, value=b"\x00\x05")
    padded = U(type=U.INSERT, entity=p4runtime_pb2.Entity(table_entry=te))
    assert _fast(exact, padded, padded) == [True, False], \
        "a duplicate is left to the general path"
    delete = _flow_update(U.DELETE, 1, FlowAction(ActionKind.DROP))
    assert _fast(exact, delete, delete, on_delete=deleted.append) == [True, False]
    assert [e.key[1] for e in deleted] == [0x0A000001]
    assert len(mgr.pmap.tables[FLOW.id].table) == 5


def test_fields_around_the_entry_are_not_read_as_its_own(loop) -> None:
    mgr = _device(True, loop)
    assert mgr.pmap is not None
    exact = ExactTableWrites(mgr.pmap)
    plain = _flow_update(U.INSERT, 1, FlowAction(ActionKind.FORWARD, 1)).SerializeToString()
    te = U.FromString(plain).entity.table_entry.SerializeToString()
    entity = len_field(2, te) + varint_field(9, 5)
    update = U.FromString(varint_field(1, U.INSERT) + len_field(2, entity))
    assert _fast(exact, update) == [False]
    assert len(mgr.pmap.tables[FLOW.id].table) == 0


def _largest(nbytes: int, width: int) -> bytes:
    """The largest value ``nbytes`` long that fits ``width`` bits (canonical: no leading zero)."""
    return min((1 << 8 * nbytes) - 1, (1 << width) - 1).to_bytes(nbytes, "big")


def test_every_value_length_reads_as_its_value(loop) -> None:
    """Each match field and parameter at each of its lengths, in every table, action and timeout.

    The pattern gives each value one group and picks its length from the
    framing before it: a value read with another length, or a table, an
    action or a timeout told from the wrong group, would read wrong here.
    """
    mgr = _device(True, loop)
    assert mgr.pmap is not None
    exact = ExactTableWrites(mgr.pmap)
    idle = {FLOW.id}
    checked = 0
    for table_id, (fields, actions) in TABLES.items():
        default_only = P4INFO.tables[table_id].default_only_action_ids
        for action in (a for a in actions if a.id not in default_only):
            slots = [w for _, w in fields] + [p.bitwidth for p in action.params]
            for ttl in (0, 180 * 10**9):
                for k, width in enumerate(slots):
                    for nbytes in range(1, (width + 7) // 8 + 1):
                        values = [b"\x01"] * len(slots)
                        values[k] = _largest(nbytes, width)
                        te = p4runtime_pb2.TableEntry(table_id=table_id, idle_timeout_ns=ttl)
                        for (fid, _), value in zip(fields, values, strict=False):
                            te.match.add(field_id=fid).exact.value = value
                        te.action.action.action_id = action.id
                        for p, value in zip(action.params, values[len(fields):], strict=True):
                            te.action.action.params.add(param_id=p.id, value=value)
                        for utype in (U.INSERT, U.DELETE):
                            if utype == U.DELETE:
                                te.ClearField("action")
                                te.idle_timeout_ns = 0
                            data = U(type=utype, entity=p4runtime_pb2.Entity(
                                table_entry=te)).SerializeToString()
                            plain = exact.read(data, 0, len(data))
                            if te.idle_timeout_ns and table_id not in idle:
                                assert plain is None, "a timeout where the table has none"
                                continue
                            assert plain is not None, (table_id, action.name, k, nbytes)
                            ints = [int.from_bytes(v, "big") for v in values]
                            assert plain[0] is mgr.pmap.tables[table_id].table
                            assert plain[1] == tuple(ints[:len(fields)])
                            if utype == U.INSERT:
                                assert plain[2] is not None and plain[2].name == action.name
                                assert plain[3:] == (tuple(ints[len(fields):]), ttl)
                            else:
                                assert plain[2:] == (None, (), 0)
                            checked += 1
    assert checked > 100
