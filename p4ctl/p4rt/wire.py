"""Protobuf wire format, for messages sent in bulk (the controller's flow
entries, the software switch's digest lists).

Building a ``p4.v1.Update`` field by field through the protobuf runtime,
then copying it into a ``WriteRequest`` and serializing that, costs about
three times what the same bytes cost when spliced from pieces prepared
once: most fields of a flow entry (table id, field ids, action id, the
parameters a policy rule fixes) are the same for every flow, and only a
handful of short values change. The pieces are made here, from the field
numbers in the protos' descriptors, and the result is checked against the
protobuf runtime's own serialization in the tests.

A serialized message is a concatenation of fields, and a field is a tag
(field number and wire type) followed by a varint or by a length and bytes.
Concatenating two serialized messages of one type merges them, which is how
a request's fixed header and its updates are put together.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from google.protobuf.descriptor import Descriptor
from p4.v1 import p4runtime_pb2

__all__ = [
    "I32", "I64", "LEN", "VARINT", "exact_match_head", "field_number", "len_field", "param_head",
    "read_varint", "split_field", "tag", "value_pattern", "varint", "varint_field",
    "varint_len",
]

#: wire types
VARINT = 0
I64 = 1
LEN = 2
I32 = 5

_ONE_BYTE = [bytes((n,)) for n in range(0x80)]


def varint(n: int) -> bytes:
    """``n`` (non-negative) as a base-128 varint."""
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it (IndexError if cut short)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def split_field(data: bytes, number: int) -> tuple[bytes, list[tuple[int, int]]] | None:
    """A serialized message's occurrences of one length-delimited field, set apart.

    Returns the other fields' bytes, joined in their order (the same message
    without that field), and each occurrence's value as a span ``(start,
    end)`` of ``data``. None if the bytes cannot be walked (cut short, a
    group, a length past the end): the caller then parses them whole and
    gets the parser's error.
    """
    wanted = number << 3 | LEN
    rest: list[bytes] = []
    spans: list[tuple[int, int]] = []
    pos, end = 0, len(data)
    try:
        while pos < end:
            first = pos
            key = data[pos]
            if key < 0x80:  # most tags and lengths take a byte: no call for those
                pos += 1
            else:
                key, pos = read_varint(data, pos)
            wire = key & 7
            if wire == LEN:
                n = data[pos]
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = read_varint(data, pos)
                start, pos = pos, pos + n
                if key == wanted:
                    spans.append((start, pos))
                    continue
            elif wire == VARINT:
                pos = read_varint(data, pos)[1]
            elif wire == I64:
                pos += 8
            elif wire == I32:
                pos += 4
            else:
                return None
            rest.append(data[first:pos])
    except IndexError:
        return None
    if pos != end:
        return None
    return b"".join(rest), spans


def varint_len(n: int) -> int:
    """Bytes :func:`varint` takes for ``n``."""
    return max(1, (n.bit_length() + 6) // 7)


def field_number(message: Descriptor, name: str) -> int:
    """The number of field ``name`` of a message type (``Update.DESCRIPTOR``, ...)."""
    return message.fields_by_name[name].number


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def varint_field(number: int, value: int) -> bytes:
    """A varint field (an integer or enum value)."""
    return tag(number, VARINT) + varint(value)


def len_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a bytes value or an embedded message)."""
    return tag(number, LEN) + varint(len(payload)) + payload


# -- P4Runtime table-entry pieces: the controller's flow entries are spliced
# -- from them, and the software switch recognizes plain entries by them

_TE = p4runtime_pb2.TableEntry.DESCRIPTOR
_FM = p4runtime_pb2.FieldMatch.DESCRIPTOR
_EXACT = p4runtime_pb2.FieldMatch.Exact.DESCRIPTOR
_ACTION = p4runtime_pb2.Action.DESCRIPTOR
_PARAM = p4runtime_pb2.Action.Param.DESCRIPTOR


def exact_match_head(field_id: int, n: int) -> bytes:
    """A ``TableEntry.match`` field with an ``n``-byte exact value, serialized, less the value."""
    exact = tag(field_number(_EXACT, "value"), LEN) + varint(n)
    fm = (varint_field(field_number(_FM, "field_id"), field_id)
          + tag(field_number(_FM, "exact"), LEN) + varint(len(exact) + n) + exact)
    return tag(field_number(_TE, "match"), LEN) + varint(len(fm) + n) + fm


def param_head(param_id: int, n: int) -> bytes:
    """An ``Action.params`` field with an ``n``-byte value, serialized, less the value."""
    param = (varint_field(field_number(_PARAM, "param_id"), param_id)
             + tag(field_number(_PARAM, "value"), LEN) + varint(n))
    return tag(field_number(_ACTION, "params"), LEN) + varint(len(param) + n) + param


def value_pattern(head_of: Callable[[int], bytes], width: int) -> bytes:
    """A regex for a ``width``-bit value of 1 to its bytes' length with its framing.

    ``head_of(n)`` is the serialized framing before an ``n``-byte value. The
    framing is one alternative per length; the one capture group then takes
    as many bytes as the framing just matched announced (each of its
    alternatives looks behind for its own framing), so the group holds the
    value alone. A value as long as its bytes may still be wider than
    ``width`` bits: the pattern bounds its first byte, so a matched value
    always fits. For patterns compiled with ``re.DOTALL``.
    """
    nbytes = (width + 7) // 8
    heads = [re.escape(head_of(n)) for n in range(1, nbytes + 1)]
    top = (1 << (width - 8 * (nbytes - 1))) - 1
    values = [b"(?<=%s).{%d}" % (head, n) for n, head in enumerate(heads[:-1], 1)]
    values.append(b"(?<=%s)[\\x00-\\x%02x].{%d}" % (heads[-1], top, nbytes - 1))
    return b"(?:" + b"|".join(heads) + b")(" + b"|".join(values) + b")"
