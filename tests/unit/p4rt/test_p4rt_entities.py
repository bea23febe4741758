"""Entities: P4 names in, canonical bytes on the wire, and back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from p4.v1 import p4data_pb2, p4runtime_pb2

from p4ctl.p4rt.encoding import EncodingError
from p4ctl.p4rt.entities import (
    LPM,
    CounterData,
    CounterEntry,
    DigestEntry,
    DirectCounterEntry,
    OptionalMatch,
    Range,
    RegisterEntry,
    TableEntry,
    Ternary,
    UpdateType,
    decode_entity,
    delete,
    insert,
    modify,
)
from p4ctl.p4rt.messages import (
    DigestList,
    IdleTimeoutNotification,
    PacketIn,
    PacketOut,
    StreamError,
)
from p4ctl.p4rt.p4info import P4Info

FIXTURE = Path(__file__).parent / "fixtures" / "mini.p4info.txtpb"


@pytest.fixture(scope="module")
def p4info() -> P4Info:
    return P4Info.load(FIXTURE)


def flow(**over: object) -> TableEntry:
    match = {
        "vrf": 1, "src_addr": "10.0.0.1", "dst_addr": "10.0.0.2",
        "proto": 6, "sport": 1234, "dport": 80,
    }
    entry = TableEntry(
        "flow_table", match, "forward", {"port": 2, "flow_id": 7}, idle_timeout_ns=10**9
    )
    for k, v in over.items():
        setattr(entry, k, v)
    return entry


def test_exact_entry_encodes_canonical_bytes(p4info: P4Info) -> None:
    msg = flow().to_table_entry(p4info)
    assert msg.table_id == 37375156
    assert [(m.field_id, m.exact.value) for m in msg.match] == [
        (1, b"\x01"),
        (2, b"\x0a\x00\x00\x01"),
        (3, b"\x0a\x00\x00\x02"),
        (4, b"\x06"),
        (5, b"\x04\xd2"),
        (6, b"\x50"),
    ]
    assert msg.action.action.action_id == 29683729
    assert [(p.param_id, p.value) for p in msg.action.action.params] == [(1, b"\x02"), (2, b"\x07")]
    assert msg.idle_timeout_ns == 10**9
    assert msg.priority == 0
    assert not msg.HasField("time_since_last_hit")


def test_round_trip_gives_the_normal_form(p4info: P4Info) -> None:
    entry = flow()
    back = TableEntry.from_proto(entry.to_proto(p4info), p4info)
    assert back.table == "FlowIngress.flow_table"
    assert back.action == "FlowIngress.forward"
    assert back.params == {"port": 2, "flow_id": 7}
    assert back.match["meta.flow.src_addr"] == 0x0A000001
    assert back.idle_timeout_ns == 10**9
    again = TableEntry.from_proto(back.to_proto(p4info), p4info)
    assert again == back
    assert again.key() == back.key()


def test_lpm_ternary_range_optional_and_dont_care(p4info: P4Info) -> None:
    route = TableEntry("route", {"dst_addr": "10.1.0.0/16"}, "set_port",
                       {"port": 3, "dmac": "02:00:00:00:00:01"})
    msg = route.to_table_entry(p4info)
    assert msg.match[0].lpm.value == b"\x0a\x01\x00\x00"
    assert msg.match[0].lpm.prefix_len == 16
    assert msg.action.action.params[1].value == b"\x02\x00\x00\x00\x00\x01"
    assert TableEntry.from_table_entry(msg, p4info).match == {
        "hdr.ipv4.dst_addr": LPM(0x0A010000, 16)
    }
    # a /0 prefix is "don't care": omitted from the message
    assert not TableEntry("route", {"dst_addr": LPM(0, 0)}, "NoAction").to_table_entry(p4info).match

    acl = TableEntry(
        "acl",
        {"dst_addr": Ternary("10.0.0.0", "255.0.0.0"), "dst_port": Range(80, 443),
         "ingress_port": OptionalMatch(5)},
        "deny",
        priority=10,
    )
    msg = acl.to_table_entry(p4info)
    kinds = [m.WhichOneof("field_match_type") for m in msg.match]
    assert kinds == ["ternary", "range", "optional"]
    assert msg.match[0].ternary.mask == b"\xff\x00\x00\x00"
    assert (msg.match[1].range.low, msg.match[1].range.high) == (b"\x50", b"\x01\xbb")
    assert msg.priority == 10
    back = TableEntry.from_table_entry(msg, p4info)
    assert back.match == {
        "hdr.ipv4.dst_addr": Ternary(0x0A000000, 0xFF000000),
        "hdr.tcp.dst_port": Range(80, 443),
        "standard_metadata.ingress_port": 5,
    }
    # mask 0, full range: don't care, omitted
    wild = TableEntry("acl", {"dst_addr": (0, 0), "dst_port": (0, 0xFFFF)}, "deny", priority=1)
    assert not wild.to_table_entry(p4info).match
    # text spellings
    assert TableEntry("acl", {"dst_addr": "10.0.0.0&&&0xff000000"}, "deny", priority=1) \
        .to_table_entry(p4info).match[0].ternary.value == b"\x0a\x00\x00\x00"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (TableEntry("flow_tabel", {}), "unknown table"),
        (TableEntry("flow_table", {"nope": 1}, "forward"), "no match field 'nope'"),
        (TableEntry("flow_table", {"proto": 256}, "drop_flow", {"flow_id": 1}),
         "field meta.flow.proto: value 0x100 does not fit in bit<8>"),
        (TableEntry("flow_table", {"proto": -1}, "drop_flow", {"flow_id": 1}), "negative"),
        (TableEntry("flow_table", {"proto": 6}, "set_port", {"port": 1, "dmac": 0}),
         "does not allow action FlowIngress.set_port"),
        (TableEntry("flow_table", {"proto": 6}, "NoAction"), "default-only"),
        (TableEntry("flow_table", {"proto": 6}, "forward", {"port": 1}), "missing parameters"),
        (TableEntry("flow_table", {"proto": 6}, "forward", {"port": 1, "flow_id": 2, "x": 3}),
         "unknown parameters \\['x'\\]"),
        (TableEntry("flow_table", {"proto": 6}, "forward", {"port": 512, "flow_id": 2}),
         "parameter port: value 0x200 does not fit in bit<9>"),
        (TableEntry("flow_table", {"proto": 6}, "drop_flow", {"flow_id": 1}, priority=3),
         "priority must be 0"),
        (TableEntry("acl", {"dst_addr": (1, 0xFF00)}, "deny", priority=1), "outside mask"),
        (TableEntry("acl", {"dst_port": Range(9, 3)}, "deny", priority=1), "empty range"),
        (TableEntry("acl", {"dst_addr": (0, 0xFF)}, "deny"), "needs a priority"),
        (TableEntry("route", {"dst_addr": LPM(0x0A010001, 16)}, "NoAction"), "beyond its /16"),
        (TableEntry("route", {"dst_addr": "10.1.0.1/16"}, "NoAction"), "has host bits set"),
        (TableEntry("route", {"dst_addr": "10.0.0.0/33"}, "NoAction"), "is not a prefix"),
        (TableEntry("route", {"dst_addr": "10.0.0.0/8"}, "NoAction", idle_timeout_ns=5),
         "does not support idle timeout"),
        (TableEntry("flow_table", {}, "NoAction", is_default_action=True, idle_timeout_ns=5),
         "default entries have no idle timeout"),
    ],
)
def test_bad_entries_are_refused_with_clear_errors(
    p4info: P4Info, entry: TableEntry, message: str
) -> None:
    with pytest.raises((EncodingError, LookupError), match=message):
        entry.to_table_entry(p4info)


def test_default_entry_and_wildcard_filter(p4info: P4Info) -> None:
    default = TableEntry("flow_table", action="NoAction", is_default_action=True)
    msg = default.to_table_entry(p4info)
    assert msg.is_default_action and not msg.match
    wildcard = TableEntry("acl").to_table_entry(p4info)
    assert wildcard.table_id == 48966319 and not wildcard.match and not wildcard.HasField("action")


def test_decoding_peer_data_never_crashes(p4info: P4Info) -> None:
    msg = flow().to_table_entry(p4info)
    msg.match[1].exact.value = b"\x01\x00\x00\x00\x00"  # 33 bits for a bit<32>
    with pytest.raises(EncodingError, match=r"src_addr.*does not fit"):
        TableEntry.from_table_entry(msg, p4info)
    msg = flow().to_table_entry(p4info)
    msg.match[0].field_id = 99
    with pytest.raises(EncodingError, match=r"no match field id 99"):
        TableEntry.from_table_entry(msg, p4info)
    with pytest.raises(EncodingError, match=r"no table with id 5"):
        TableEntry.from_table_entry(p4runtime_pb2.TableEntry(table_id=5), p4info)
    with pytest.raises(EncodingError, match=r"not supported"):
        decode_entity(p4runtime_pb2.Entity(meter_entry=p4runtime_pb2.MeterEntry()), p4info)


def test_time_since_last_hit_zero_without_ttl_is_unknown(p4info: P4Info) -> None:
    msg = flow(idle_timeout_ns=0).to_table_entry(p4info)
    msg.time_since_last_hit.elapsed_ns = 0  # what PI answers for TTL 0 entries
    assert TableEntry.from_table_entry(msg, p4info).time_since_last_hit_ns is None
    msg = flow().to_table_entry(p4info)
    msg.time_since_last_hit.elapsed_ns = 0
    assert TableEntry.from_table_entry(msg, p4info).time_since_last_hit_ns == 0
    msg.time_since_last_hit.elapsed_ns = 1500
    msg.counter_data.packet_count = 3
    msg.counter_data.byte_count = 300
    back = TableEntry.from_table_entry(msg, p4info)
    assert back.time_since_last_hit_ns == 1500
    assert back.counter_data == CounterData(300, 3)


def test_register_entries(p4info: P4Info) -> None:
    msg = RegisterEntry("tcp_state", 5, 0x12).to_proto(p4info)
    assert msg.register_entry.register_id == 369500001
    assert msg.register_entry.index.index == 5
    assert msg.register_entry.data.bitstring == b"\x12"
    assert decode_entity(msg, p4info) == RegisterEntry("FlowIngress.tcp_state", 5, 0x12)
    # wildcard: no index, no data
    wild = RegisterEntry("tcp_state").to_proto(p4info).register_entry
    assert not wild.HasField("index") and not wild.HasField("data")
    # signed register
    neg = RegisterEntry("delta", 1, -2).to_proto(p4info)
    assert neg.register_entry.data.bitstring == b"\xfe"
    assert decode_entity(neg, p4info).value == -2
    with pytest.raises(EncodingError, match=r"index 1024 out of range"):
        RegisterEntry("tcp_state", 1024, 1).to_proto(p4info)
    with pytest.raises(EncodingError, match=r"register FlowIngress.tcp_state.*does not fit"):
        RegisterEntry("tcp_state", 0, 256).to_proto(p4info)
    bad = RegisterEntry("tcp_state", 0, 1).to_proto(p4info)
    bad.register_entry.data.CopyFrom(p4data_pb2.P4Data(bool=True))
    with pytest.raises(EncodingError, match=r"expected P4Data.bitstring"):
        decode_entity(bad, p4info)


def test_counters_direct_counters_digests(p4info: P4Info) -> None:
    msg = CounterEntry("port_packets", 3, CounterData(10, 1)).to_proto(p4info)
    assert msg.counter_entry.counter_id == 302045678
    assert decode_entity(msg, p4info) == CounterEntry(
        "FlowIngress.port_packets", 3, CounterData(10, 1)
    )
    with pytest.raises(EncodingError, match=r"out of range"):
        CounterEntry("port_packets", 512).to_proto(p4info)
    direct = DirectCounterEntry(flow(idle_timeout_ns=0, action=None, params={})).to_proto(p4info)
    assert direct.direct_counter_entry.table_entry.table_id == 37375156
    assert len(direct.direct_counter_entry.table_entry.match) == 6
    with pytest.raises(EncodingError, match=r"has no direct counter"):
        DirectCounterEntry(TableEntry("route")).to_proto(p4info)
    digest = DigestEntry("new_flow_t", max_timeout_ns=10**6, max_list_size=100,
                         ack_timeout_ns=10**9).to_proto(p4info)
    assert digest.digest_entry.digest_id == 385900001
    assert digest.digest_entry.config.max_list_size == 100
    assert decode_entity(digest, p4info) == DigestEntry("new_flow_t", 10**6, 100, 10**9)
    assert not DigestEntry("new_flow_t", has_config=False).to_proto(p4info) \
        .digest_entry.HasField("config")


def test_updates(p4info: P4Info) -> None:
    entry = flow()
    assert insert(entry).type is UpdateType.INSERT
    assert modify(entry).type is UpdateType.MODIFY
    proto = delete(entry).to_proto(p4info)
    assert proto.type == p4runtime_pb2.Update.DELETE
    assert proto.entity.table_entry.table_id == 37375156
    raw = p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(table_id=1))
    assert insert(raw).to_proto(p4info).entity is not None


def test_packet_out_and_in(p4info: P4Info) -> None:
    out = PacketOut(b"\x00" * 20, {"egress_port": 3}).to_proto(p4info)
    assert [(m.metadata_id, m.value) for m in out.metadata] == [(1, b"\x03"), (2, b"\x00")]
    with pytest.raises(EncodingError, match=r"egress_port is missing"):
        PacketOut(b"x", {}).to_proto(p4info)
    with pytest.raises(EncodingError, match=r"no metadata field 'port'"):
        PacketOut(b"x", {"port": 1}).to_proto(p4info)
    with pytest.raises(EncodingError, match=r"does not fit in bit<9>"):
        PacketOut(b"x", {"egress_port": 512}).to_proto(p4info)
    msg = p4runtime_pb2.PacketIn(payload=b"abc")
    msg.metadata.add(metadata_id=1, value=b"\x01\x02")
    msg.metadata.add(metadata_id=2, value=b"\x07")
    assert PacketIn.from_proto(msg, p4info) == PacketIn(b"abc", {"ingress_port": 258, "reason": 7})
    msg.metadata.add(metadata_id=9, value=b"\x07")
    with pytest.raises(EncodingError, match=r"no metadata id 9"):
        PacketIn.from_proto(msg, p4info)


def test_digest_list_and_idle_notification(p4info: P4Info) -> None:
    digest = p4info.digests["new_flow_t"]
    values = {"vrf": 1, "src_addr": 0x0A000001, "dst_addr": 0x0A000002, "proto": 17,
              "sport": 53, "dport": 5353, "ingress_port": 1, "hash": 0xDEADBEEF}
    msg = p4runtime_pb2.DigestList(digest_id=digest.id, list_id=4, timestamp=99)
    msg.data.append(digest.type.encode(values))
    got = DigestList.from_proto(msg, p4info)
    assert got == DigestList("new_flow_t", digest.id, 4, [values], 99)
    msg.data[0].struct.members.pop()
    with pytest.raises(EncodingError, match=r"new_flow_t list 4.*8 members, P4Data has 7"):
        DigestList.from_proto(msg, p4info)
    note = p4runtime_pb2.IdleTimeoutNotification(timestamp=5)
    note.table_entry.append(flow().to_table_entry(p4info))
    decoded = IdleTimeoutNotification.from_proto(note, p4info)
    assert decoded.entries[0].match["meta.flow.dport"] == 80


def test_stream_error_keeps_the_offending_message(p4info: P4Info) -> None:
    msg = p4runtime_pb2.StreamError(canonical_code=3, message="bad port")
    msg.packet_out.packet_out.CopyFrom(PacketOut(b"p", {"egress_port": 511}).to_proto(p4info))
    error = StreamError.from_proto(msg, p4info)
    assert error.kind == "packet_out"
    assert error.offending == PacketOut(b"p", {"egress_port": 511, "_pad": 0})
    ack = p4runtime_pb2.StreamError(canonical_code=3)
    ack.digest_list_ack.digest_list_ack.digest_id = 7
    assert StreamError.from_proto(ack, p4info).offending.digest_id == 7


def test_digest_struct_decoding_refuses_what_the_general_path_refuses(p4info: P4Info) -> None:
    """All-bit<W> structs decode in one pass; anything unusual still gets its error."""
    struct = p4info.digests["new_flow_t"].type
    values = {"vrf": 1, "src_addr": 0x0A000001, "dst_addr": 0x0A000002, "proto": 17,
              "sport": 53, "dport": 5353, "ingress_port": 1, "hash": 0xDEADBEEF}
    good = struct.encode(values)
    padded = p4data_pb2.P4Data()
    padded.CopyFrom(good)
    padded.struct.members[3].bitstring = b"\x00\x00\x11"  # zero-padded: accepted, as PI does
    assert struct.decode(padded) == values
    too_wide = p4data_pb2.P4Data()
    too_wide.CopyFrom(good)
    too_wide.struct.members[3].bitstring = b"\x01\x11"  # proto is bit<8>
    with pytest.raises(EncodingError, match=r"does not fit in bit<8>"):
        struct.decode(too_wide)
    not_bits = p4data_pb2.P4Data()
    not_bits.CopyFrom(good)
    not_bits.struct.members[0].bool = True
    with pytest.raises(EncodingError, match=r"expected P4Data.bitstring"):
        struct.decode(not_bits)
    with pytest.raises(EncodingError, match=r"expected P4Data.struct"):
        struct.decode(p4data_pb2.P4Data(bitstring=b"\x01"))


_STRUCT = P4Info.load(FIXTURE).digests["new_flow_t"].type
NEW_FLOW_WIDTHS = tuple(t.bitwidth for _, t in _STRUCT.members)


@st.composite
def _struct_data(draw) -> p4data_pb2.P4Data:
    """A new_flow_t struct, its members canonical or padded, with at most one
    member odd (empty, too wide, not a bitstring), or members missing or
    extra, or unknown fields added."""
    odd_at = draw(st.integers(0, len(NEW_FLOW_WIDTHS) - 1))
    odd = draw(st.sampled_from([None, None, "extra_zero", "empty", "wide", "wide_in_bytes",
                                "bool"]))
    data = p4data_pb2.P4Data()
    members = data.struct.members
    for i, width in enumerate(NEW_FLOW_WIDTHS):
        nbytes = (width + 7) // 8
        value = draw(st.one_of(st.integers(0, 3), st.integers(0, (1 << width) - 1)))
        form = odd if i == odd_at and odd else draw(st.sampled_from(["canonical", "padded"]))
        member = members.add()
        if form == "bool":
            member.bool = True
        elif form == "canonical":
            member.bitstring = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
        elif form == "padded":
            member.bitstring = value.to_bytes(nbytes, "big")
        elif form == "extra_zero":
            member.bitstring = b"\x00" + value.to_bytes(nbytes, "big")
        elif form == "empty":
            member.bitstring = b""
        elif form == "wide_in_bytes" and width % 8:  # fits the bytes, not the bits
            member.bitstring = draw(st.integers(1 << width, (1 << 8 * nbytes) - 1)).to_bytes(
                nbytes, "big")
        else:
            member.bitstring = draw(st.integers(1 << 8 * nbytes, 1 << 8 * nbytes + 8)).to_bytes(
                nbytes + 2, "big").lstrip(b"\x00")
    shape = draw(st.sampled_from(["as is"] * 4 + ["one less", "one more", "unknown field",
                                                  "unknown member field"]))
    if shape == "one less":
        members.pop()
    elif shape == "one more":
        members.add().bitstring = b"\x01"
    elif shape == "unknown member field":
        members[0].MergeFromString(b"\xf8\x07\x01")  # field 127, a varint
    raw = data.SerializeToString()
    if shape == "unknown field":
        raw += b"\xf8\x07\x01"
    return p4data_pb2.P4Data.FromString(raw)


@given(_struct_data())
@settings(max_examples=400, deadline=None)
def test_digest_struct_fast_decoding_agrees_with_member_decoding(data) -> None:
    """The one-pass decoding of all-bit<W> structs gives the general path's value or error."""
    struct = _STRUCT
    try:
        expected = {name: t.decode(m) for (name, t), m in
                    zip(struct.members, data.struct.members, strict=True)}
    except (EncodingError, ValueError):  # ValueError: another member count
        expected = None
    if expected is None:
        with pytest.raises(EncodingError):
            struct.decode(data)
    else:
        assert struct.decode(data) == expected



def test_digest_structs_in_canonical_or_padded_form_are_read_in_one_pass() -> None:
    values = dict(zip((name for name, _ in _STRUCT.members),
                      (1, 0x0A000001, 0xC0A80002, 17, 53, 5353, 0x1FF, 0xDEADBEEF), strict=True))
    data = _STRUCT.encode(values)
    assert _STRUCT._decode_uints(data, _STRUCT._uints) == values
    data.struct.members[1].bitstring = b"\x00" * 4
    values["src_addr"] = 0
    assert _STRUCT._decode_uints(data, _STRUCT._uints) == values
    data.struct.members[6].bitstring = b"\x02\x00"  # two bytes, but ingress_port is bit<9>
    assert _STRUCT._decode_uints(data, _STRUCT._uints) is None
    with pytest.raises(EncodingError, match=r"does not fit in bit<9>"):
        _STRUCT.decode(data)
