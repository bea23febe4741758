"""Canonical byte strings (P4Runtime-Spec "Bytestrings"), property-based for widths 1..128."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p4ctl.p4rt.encoding import (
    EncodingError,
    canonical,
    decode_int,
    decode_ipv4,
    decode_ipv6,
    decode_mac,
    decode_uint,
    encode_int,
    encode_ipv4,
    encode_ipv6,
    encode_mac,
    encode_uint,
    encode_value,
    prefix_mask,
    to_int,
)

widths = st.integers(min_value=1, max_value=128)


@st.composite
def width_and_value(draw: st.DrawFn) -> tuple[int, int]:
    width = draw(widths)
    return width, draw(st.integers(min_value=0, max_value=(1 << width) - 1))


@st.composite
def width_and_signed(draw: st.DrawFn) -> tuple[int, int]:
    width = draw(widths)
    return width, draw(st.integers(min_value=-(1 << (width - 1)), max_value=(1 << (width - 1)) - 1))


@given(width_and_value())
def test_uint_round_trip_and_canonical_form(wv: tuple[int, int]) -> None:
    width, value = wv
    raw = encode_uint(value, width)
    assert decode_uint(raw, width) == value
    # shortest form: at least one byte, no leading zero byte unless the value is 0
    assert len(raw) == max(1, (value.bit_length() + 7) // 8)
    assert raw == b"\x00" or raw[0] != 0
    assert canonical(raw) == raw


@given(width_and_value(), st.integers(min_value=0, max_value=4))
def test_padded_strings_decode_to_the_same_value(wv: tuple[int, int], pad: int) -> None:
    width, value = wv
    padded = value.to_bytes((width + 7) // 8, "big")
    assert decode_uint(b"\x00" * pad + padded, width) == value
    assert canonical(b"\x00" * pad + padded) == encode_uint(value, width)


@given(widths, st.integers(min_value=1, max_value=1 << 140))
def test_values_beyond_the_width_are_refused(width: int, excess: int) -> None:
    value = (1 << width) - 1 + excess
    with pytest.raises(EncodingError, match=r"does not fit"):
        encode_uint(value, width)
    with pytest.raises(EncodingError, match=r"does not fit"):
        decode_uint(value.to_bytes((value.bit_length() + 7) // 8, "big"), width)


@given(widths, st.integers(max_value=-1))
def test_negative_values_are_refused_for_bit(width: int, value: int) -> None:
    with pytest.raises(EncodingError, match=r"negative"):
        encode_uint(value, width)


@given(width_and_signed())
def test_int_round_trip_and_shortest_twos_complement(wv: tuple[int, int]) -> None:
    width, value = wv
    raw = encode_int(value, width)
    assert decode_int(raw, width) == value
    # one byte fewer would not hold the value in two's complement
    if len(raw) > 1:
        shorter = raw[1:]
        assert int.from_bytes(shorter, "big", signed=True) != value
    assert len(raw) >= 1


@given(width_and_signed(), st.integers(min_value=1, max_value=3))
def test_sign_extended_int_strings_decode(wv: tuple[int, int], pad: int) -> None:
    width, value = wv
    raw = encode_int(value, width)
    fill = b"\xff" if value < 0 else b"\x00"
    assert decode_int(fill * pad + raw, width) == value


@given(widths)
def test_int_range_is_checked(width: int) -> None:
    with pytest.raises(EncodingError):
        encode_int(1 << (width - 1), width)
    with pytest.raises(EncodingError):
        encode_int(-(1 << (width - 1)) - 1, width)


def test_known_encodings() -> None:
    assert encode_uint(0, 1) == b"\x00"
    assert encode_uint(1, 1) == b"\x01"
    assert encode_uint(0x1FF, 9) == b"\x01\xff"
    assert encode_uint(0x0A000001, 32) == b"\x0a\x00\x00\x01"
    assert encode_uint(5, 32) == b"\x05"
    assert encode_int(-1, 8) == b"\xff"
    assert encode_int(128, 16) == b"\x00\x80"
    assert encode_int(-128, 8) == b"\x80"
    assert encode_int(0, 4) == b"\x00"


def test_bad_inputs_give_clear_errors() -> None:
    with pytest.raises(EncodingError, match=r"empty"):
        decode_uint(b"", 8)
    with pytest.raises(EncodingError, match=r"empty"):
        decode_int(b"", 8)
    with pytest.raises(EncodingError, match=r"expected an integer"):
        encode_uint(True, 8)  # a bool is not a P4 number
    with pytest.raises(EncodingError, match=r"expected an integer"):
        encode_uint("5", 8)  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match=r"bit width"):
        encode_uint(0, 0)
    with pytest.raises(EncodingError, match=r"does not fit"):
        encode_uint(256, 8)


def test_addresses() -> None:
    assert encode_ipv4("10.0.0.1") == b"\x0a\x00\x00\x01"
    assert encode_ipv4("0.0.0.7") == b"\x07"
    assert decode_ipv4(b"\x07") == ipaddress.IPv4Address("0.0.0.7")
    assert decode_ipv4(b"\x0a\x00\x00\x01") == ipaddress.IPv4Address("10.0.0.1")
    assert encode_mac("00:00:00:00:00:01") == b"\x01"
    assert encode_mac("aa-bb-cc-dd-ee-ff") == bytes.fromhex("aabbccddeeff")
    assert decode_mac(b"\x01") == "00:00:00:00:00:01"
    assert encode_ipv6("::1") == b"\x01"
    assert decode_ipv6(b"\x01") == ipaddress.IPv6Address("::1")
    with pytest.raises(EncodingError, match=r"IPv4"):
        encode_ipv4("10.0.0.256")
    with pytest.raises(EncodingError, match=r"MAC"):
        encode_mac("00:11:22:33:44")


def test_flexible_values() -> None:
    assert to_int("10.0.0.1", 32) == 0x0A000001
    assert to_int("0x10", 16) == 16
    assert to_int("17", 16) == 17
    assert to_int("02:00:00:00:00:01", 48) == 0x020000000001
    assert to_int("2001:db8::1", 128) == int(ipaddress.IPv6Address("2001:db8::1"))
    assert to_int(b"\x00\x05", 16) == 5
    assert to_int(ipaddress.IPv4Address("1.2.3.4"), 32) == 0x01020304
    assert encode_value("10.0.0.1", 32) == b"\x0a\x00\x00\x01"
    with pytest.raises(EncodingError, match=r"cannot read"):
        to_int("10.0.0.1", 16)
    with pytest.raises(EncodingError, match=r"cannot read"):
        to_int(1.5, 16)  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match=r"does not fit"):
        encode_value(b"\x01\x00", 8)


@given(widths, st.data())
def test_prefix_mask(width: int, data: st.DataObject) -> None:
    plen = data.draw(st.integers(min_value=0, max_value=width))
    mask = prefix_mask(plen, width)
    assert mask.bit_count() == plen
    assert mask < 1 << width
    with pytest.raises(EncodingError):
        prefix_mask(width + 1, width)
