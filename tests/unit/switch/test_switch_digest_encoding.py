"""Digest lists spliced as wire bytes equal the protobuf runtime's serialization.

The reference builds each P4Data member by member through ``p4data_pb2``,
as PI's digest messages are laid out (a struct or tuple of bitstrings, or a
single bitstring; canonical bytes of the value cut to its width).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from p4.v1 import p4data_pb2, p4runtime_pb2

from p4ctl.switch.digests import _encode_data
from p4ctl.switch.p4info_map import DigestMap
from p4ctl.switch.state import DigestInfo


def _reference(dmap: DigestMap, samples: list[tuple[int, ...]]) -> bytes:
    dl = p4runtime_pb2.DigestList()
    for sample in samples:
        data = dl.data.add()
        if dmap.kind == "bitstring":
            data.bitstring = _canonical(sample[0], dmap.widths[0])
            continue
        members = data.struct.members if dmap.kind == "struct" else data.tuple.members
        for value, width in zip(sample, dmap.widths, strict=False):
            members.add().bitstring = _canonical(value, width)
    return dl.SerializeToString(deterministic=True)


def _canonical(value: int, width: int) -> bytes:
    value &= (1 << width) - 1
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


@st.composite
def digests(draw) -> tuple[DigestMap, list[tuple[int, ...]]]:
    kind = draw(st.sampled_from(["struct", "tuple", "bitstring"]))
    n = 1 if kind == "bitstring" else draw(st.integers(1, 10))
    # up to 600 bits: members whose framing needs a two-byte length
    widths = draw(st.lists(st.integers(1, 600), min_size=n, max_size=n))
    samples = draw(st.lists(
        st.tuples(*[st.one_of(st.integers(0, 3), st.integers(0, (1 << (w + 4)) - 1))
                    for w in widths]),
        max_size=6))
    info = DigestInfo("d", 1, [(f"f{i}", w) for i, w in enumerate(widths)])
    return DigestMap(1, "d", info, kind, widths), samples


@given(digests())
def test_digest_data_is_the_runtime_serialization(case) -> None:
    dmap, samples = case
    assert _encode_data(dmap, samples) == _reference(dmap, samples)


def test_flow_digest_members_read_back() -> None:
    """A new-flow digest's eight members, values as the controller reads them."""
    widths = [9, 16, 32, 32, 8, 16, 16, 12]
    info = DigestInfo("new_flow_digest_t", 1, [(f"f{i}", w) for i, w in enumerate(widths)])
    dmap = DigestMap(1, info.name, info, "struct", widths)
    sample = (3, 7, 0x0A000001, 0xC0A80001, 6, 40000, 80, 0)
    dl = p4runtime_pb2.DigestList.FromString(_encode_data(dmap, [sample, sample]))
    assert len(dl.data) == 2
    got = [int.from_bytes(m.bitstring, "big") for m in dl.data[1].struct.members]
    assert got == list(sample)
    assert dl.data[0].struct.members[7].bitstring == b"\x00"
    assert isinstance(dl.data[0], p4data_pb2.P4Data)
