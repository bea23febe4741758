"""Typed values carried as ``p4.v1.P4Data``: register cells, digest members.

The P4Info describes such values with a ``P4DataTypeSpec`` (a bit string, a
struct of named members, a tuple, a header...). :func:`resolve` turns the spec
into a small :class:`DataType` tree once, when the P4Info is loaded, so that
encoding a register write or decoding a digest list does no P4Info look-ups.

Python spellings: ``bit<W>``/``int<W>`` are ``int``; ``bool`` is ``bool``; a
struct is a ``dict`` of member name to value (in P4Info member order on the
wire); a tuple is a ``tuple``; a header is a ``dict`` or ``None`` when invalid;
a serializable enum is its member name (or its integer). Types this client does
not decode (header stacks, header unions) still load: they raise
:class:`~p4ctl.p4rt.encoding.EncodingError` only when a value of that type is
actually encoded or decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from p4.config.v1 import p4types_pb2
from p4.v1 import p4data_pb2

from p4ctl.p4rt.encoding import (
    EncodingError,
    decode_int,
    decode_uint,
    encode_int,
    encode_uint,
    to_int,
)
from p4ctl.p4rt.wire import LEN, field_number, tag, value_pattern, varint

__all__ = [
    "BitType",
    "BoolType",
    "DataType",
    "EnumType",
    "HeaderType",
    "SerializableEnumType",
    "StructType",
    "TupleType",
    "UnsupportedType",
    "VarbitType",
    "bitstring_member_head",
    "resolve",
]


class DataType(Protocol):
    """One P4 type: encodes a Python value into ``P4Data`` and back."""

    def encode(self, value: Any) -> p4data_pb2.P4Data: ...

    def decode(self, data: p4data_pb2.P4Data) -> Any: ...

    def describe(self) -> str: ...


def _expect(data: p4data_pb2.P4Data, kind: str, of: DataType) -> None:
    got = data.WhichOneof("data")
    if got != kind:
        raise EncodingError(f"expected P4Data.{kind} for {of.describe()}, got {got or 'nothing'}")


@dataclass(frozen=True, slots=True)
class BitType:
    """``bit<W>`` or, with ``signed``, ``int<W>``."""

    bitwidth: int
    signed: bool = False

    def encode_bytes(self, value: Any) -> bytes:
        if self.signed:
            return encode_int(to_int(value, self.bitwidth), self.bitwidth)
        return encode_uint(to_int(value, self.bitwidth), self.bitwidth)

    def decode_bytes(self, raw: bytes) -> int:
        if self.signed:
            return decode_int(raw, self.bitwidth)
        return decode_uint(raw, self.bitwidth)

    def encode(self, value: Any) -> p4data_pb2.P4Data:
        return p4data_pb2.P4Data(bitstring=self.encode_bytes(value))

    def decode(self, data: p4data_pb2.P4Data) -> int:
        _expect(data, "bitstring", self)
        return self.decode_bytes(data.bitstring)

    def describe(self) -> str:
        return f"{'int' if self.signed else 'bit'}<{self.bitwidth}>"


@dataclass(frozen=True, slots=True)
class VarbitType:
    """``varbit<max_bitwidth>``: a value together with its dynamic width."""

    max_bitwidth: int

    def encode(self, value: tuple[int, int]) -> p4data_pb2.P4Data:
        try:
            number, width = value
        except (TypeError, ValueError) as exc:
            raise EncodingError(f"varbit value must be (value, bitwidth), not {value!r}") from exc
        if not 0 <= width <= self.max_bitwidth:
            raise EncodingError(f"varbit width {width} exceeds {self.max_bitwidth}")
        raw = encode_uint(number, max(width, 1))
        return p4data_pb2.P4Data(varbit=p4data_pb2.P4Varbit(bitstring=raw, bitwidth=width))

    def decode(self, data: p4data_pb2.P4Data) -> tuple[int, int]:
        _expect(data, "varbit", self)
        width = data.varbit.bitwidth
        if width > self.max_bitwidth:
            raise EncodingError(f"varbit width {width} exceeds {self.max_bitwidth}")
        return decode_uint(data.varbit.bitstring, max(width, 1)), width

    def describe(self) -> str:
        return f"varbit<{self.max_bitwidth}>"


@dataclass(frozen=True, slots=True)
class BoolType:
    def encode(self, value: Any) -> p4data_pb2.P4Data:
        if not isinstance(value, bool):
            raise EncodingError(f"expected a bool, got {value!r}")
        return p4data_pb2.P4Data(bool=value)

    def decode(self, data: p4data_pb2.P4Data) -> bool:
        _expect(data, "bool", self)
        return data.bool

    def describe(self) -> str:
        return "bool"


_STRUCT_TAG = tag(field_number(p4data_pb2.P4Data.DESCRIPTOR, "struct"), LEN)
_MEMBER_TAG = tag(field_number(p4data_pb2.P4StructLike.DESCRIPTOR, "members"), LEN)
_BITSTRING_TAG = tag(field_number(p4data_pb2.P4Data.DESCRIPTOR, "bitstring"), LEN)


def bitstring_member_head(n: int) -> bytes:
    """A struct or tuple member that is a bitstring of ``n`` bytes, serialized, less the value.

    Digest messages are structs of such members; the software switch splices
    its digest lists from these, and :meth:`StructType.decode` reads them back.
    """
    bitstring = _BITSTRING_TAG + varint(n)
    return _MEMBER_TAG + varint(len(bitstring) + n) + bitstring


def _uint_pattern(uints: tuple[tuple[str, int], ...]) -> re.Pattern[bytes] | None:
    """A regex for a P4Data struct of non-empty bitstrings of these widths, as serialized.

    One group per member, its value alone, canonical or padded and bounded
    to its width (``value_pattern``). Only such a struct matches: another
    kind, another member count, an empty, longer or wider value, or an
    unknown field does not, nor a struct too long for a one-byte length.
    None when a member is too wide for one-byte lengths (such a struct never
    matches, and its pattern would only cost time to build).
    """
    one_byte = len(bitstring_member_head(1))
    if any(len(bitstring_member_head((w + 7) // 8)) != one_byte for _, w in uints):
        return None
    return re.compile(
        re.escape(_STRUCT_TAG) + rb"[\x00-\x7f]"
        + b"".join(value_pattern(bitstring_member_head, width) for _, width in uints),
        re.DOTALL,
    )


@dataclass(frozen=True, slots=True)
class StructType:
    """A struct: members in P4Info order, values by member name."""

    name: str
    members: tuple[tuple[str, DataType], ...]
    #: (name, bitwidth) when every member is an unsigned ``bit<W>`` (digests):
    #: such structs decode in one pass
    _uints: tuple[tuple[str, int], ...] | None = field(init=False, repr=False, compare=False)
    #: the serialized form of such a struct, one group per member (see ``_uint_pattern``)
    _uint_regex: re.Pattern[bytes] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        uints = None
        if self.members and all(type(t) is BitType and not t.signed for _, t in self.members):
            uints = tuple((name, t.bitwidth) for name, t in self.members)  # type: ignore[attr-defined]
        object.__setattr__(self, "_uints", uints)
        object.__setattr__(self, "_uint_regex", _uint_pattern(uints) if uints else None)

    def encode(self, value: Any) -> p4data_pb2.P4Data:
        if not isinstance(value, dict):
            raise EncodingError(f"struct {self.name} needs a dict, got {value!r}")
        names = {name for name, _ in self.members}
        unknown = set(value) - names
        missing = names - set(value)
        if unknown or missing:
            raise EncodingError(
                f"struct {self.name}: unknown members {sorted(unknown)}, "
                f"missing members {sorted(missing)}"
            )
        data = p4data_pb2.P4Data()
        out = data.struct.members
        for name, member_type in self.members:
            out.append(member_type.encode(value[name]))
        return data

    def decode(self, data: p4data_pb2.P4Data) -> dict[str, Any]:
        uints = self._uints
        if uints is not None:
            fast = self._decode_uints(data, uints)
            if fast is not None:
                return fast
        _expect(data, "struct", self)
        got = data.struct.members
        if len(got) != len(self.members):
            raise EncodingError(
                f"struct {self.name} has {len(self.members)} members, P4Data has {len(got)}"
            )
        return {
            name: member_type.decode(member)
            for (name, member_type), member in zip(self.members, got, strict=True)
        }

    def _decode_uints(
        self, data: p4data_pb2.P4Data, uints: tuple[tuple[str, int], ...]
    ) -> dict[str, int] | None:
        """All-``bit<W>`` members in one pass; None on anything unusual (the
        general path then names the error).

        Reading eight members through the protobuf runtime makes a Python
        object for each, which was most of the cost of a new-flow digest;
        the message is serialized back instead (in C) and its members taken
        from one match of ``_uint_regex``.
        """
        regex = self._uint_regex
        if regex is None:
            return None
        m = regex.fullmatch(data.SerializeToString())
        if m is None:
            return None
        return dict(zip([name for name, _ in uints], map(int.from_bytes, m.groups()),
                        strict=True))

    def describe(self) -> str:
        return f"struct {self.name}"


@dataclass(frozen=True, slots=True)
class TupleType:
    members: tuple[DataType, ...]

    def encode(self, value: Any) -> p4data_pb2.P4Data:
        if not isinstance(value, tuple | list) or len(value) != len(self.members):
            raise EncodingError(f"tuple of {len(self.members)} needs as many values: {value!r}")
        data = p4data_pb2.P4Data()
        for member_type, item in zip(self.members, value, strict=True):
            data.tuple.members.append(member_type.encode(item))
        return data

    def decode(self, data: p4data_pb2.P4Data) -> tuple[Any, ...]:
        _expect(data, "tuple", self)
        got = data.tuple.members
        if len(got) != len(self.members):
            raise EncodingError(f"tuple of {len(self.members)} members, P4Data has {len(got)}")
        return tuple(t.decode(m) for t, m in zip(self.members, got, strict=True))

    def describe(self) -> str:
        return f"tuple<{', '.join(m.describe() for m in self.members)}>"


@dataclass(frozen=True, slots=True)
class HeaderType:
    """A header: ``dict`` of field values when valid, ``None`` when invalid."""

    name: str
    members: tuple[tuple[str, BitType], ...]

    def encode(self, value: Any) -> p4data_pb2.P4Data:
        data = p4data_pb2.P4Data()
        if value is None:
            data.header.is_valid = False
            return data
        if not isinstance(value, dict) or set(value) != {n for n, _ in self.members}:
            raise EncodingError(f"header {self.name} needs a dict of its fields, got {value!r}")
        data.header.is_valid = True
        data.header.bitstrings.extend(t.encode_bytes(value[n]) for n, t in self.members)
        return data

    def decode(self, data: p4data_pb2.P4Data) -> dict[str, int] | None:
        _expect(data, "header", self)
        if not data.header.is_valid:
            return None
        got = data.header.bitstrings
        if len(got) != len(self.members):
            raise EncodingError(
                f"header {self.name}: {len(got)} fields, expected {len(self.members)}"
            )
        return {n: t.decode_bytes(raw) for (n, t), raw in zip(self.members, got, strict=True)}

    def describe(self) -> str:
        return f"header {self.name}"


@dataclass(frozen=True, slots=True)
class SerializableEnumType:
    """``enum bit<W> E { A = 1, ... }``: named members with integer values."""

    name: str
    bitwidth: int
    members: tuple[tuple[str, int], ...]

    def encode(self, value: Any) -> p4data_pb2.P4Data:
        if isinstance(value, str):
            for name, number in self.members:
                if name == value:
                    value = number
                    break
            else:
                raise EncodingError(f"enum {self.name} has no member {value!r}")
        return p4data_pb2.P4Data(enum_value=encode_uint(value, self.bitwidth))

    def decode(self, data: p4data_pb2.P4Data) -> str | int:
        _expect(data, "enum_value", self)
        number = decode_uint(data.enum_value, self.bitwidth)
        for name, member in self.members:
            if member == number:
                return name
        return number

    def describe(self) -> str:
        return f"enum bit<{self.bitwidth}> {self.name}"


@dataclass(frozen=True, slots=True)
class EnumType:
    """A plain (non-serializable) enum, or P4's ``error``: carried by member name."""

    name: str
    members: tuple[str, ...]
    field: str = "enum"  # "enum" or "error"

    def encode(self, value: Any) -> p4data_pb2.P4Data:
        if value not in self.members:
            raise EncodingError(f"{self.name} has no member {value!r}")
        return p4data_pb2.P4Data(**{self.field: value})

    def decode(self, data: p4data_pb2.P4Data) -> str:
        _expect(data, self.field, self)
        return getattr(data, self.field)

    def describe(self) -> str:
        return f"enum {self.name}"


@dataclass(frozen=True, slots=True)
class UnsupportedType:
    """A type the client does not handle; fails only when used."""

    what: str

    def encode(self, value: Any) -> p4data_pb2.P4Data:
        raise EncodingError(f"values of type {self.what} are not supported by this client")

    def decode(self, data: p4data_pb2.P4Data) -> Any:
        raise EncodingError(f"values of type {self.what} are not supported by this client")

    def describe(self) -> str:
        return self.what


def _bitstring(spec: p4types_pb2.P4BitstringLikeTypeSpec) -> DataType:
    kind = spec.WhichOneof("type_spec")
    if kind == "bit":
        return BitType(spec.bit.bitwidth)
    if kind == "int":
        return BitType(spec.int.bitwidth, signed=True)
    if kind == "varbit":
        return VarbitType(spec.varbit.max_bitwidth)
    return UnsupportedType(f"bitstring {kind}")


def resolve(spec: p4types_pb2.P4DataTypeSpec, info: p4types_pb2.P4TypeInfo) -> DataType:
    """The :class:`DataType` of a P4Info type spec (named types looked up in ``info``)."""
    kind = spec.WhichOneof("type_spec")
    if kind == "bitstring":
        return _bitstring(spec.bitstring)
    if kind == "bool":
        return BoolType()
    if kind == "tuple":
        return TupleType(tuple(resolve(m, info) for m in spec.tuple.members))
    if kind == "struct":
        name = spec.struct.name
        if name not in info.structs:
            return UnsupportedType(f"struct {name} (missing from type_info)")
        members = tuple(
            (m.name, resolve(m.type_spec, info)) for m in info.structs[name].members
        )
        return StructType(name, members)
    if kind == "header":
        name = spec.header.name
        if name not in info.headers:
            return UnsupportedType(f"header {name} (missing from type_info)")
        fields = []
        for m in info.headers[name].members:
            field_type = _bitstring(m.type_spec)
            if not isinstance(field_type, BitType):
                return UnsupportedType(f"header {name} with a {field_type.describe()} field")
            fields.append((m.name, field_type))
        return HeaderType(name, tuple(fields))
    if kind == "serializable_enum":
        name = spec.serializable_enum.name
        if name not in info.serializable_enums:
            return UnsupportedType(f"enum {name} (missing from type_info)")
        enum = info.serializable_enums[name]
        members = tuple(
            (m.name, int.from_bytes(m.value or b"\0", "big")) for m in enum.members
        )
        return SerializableEnumType(name, enum.underlying_type.bitwidth, members)
    if kind == "enum":
        name = spec.enum.name
        members = tuple(m.name for m in info.enums[name].members) if name in info.enums else ()
        return EnumType(name, members)
    if kind == "error":
        return EnumType("error", tuple(info.error.members), field="error")
    if kind == "new_type":
        name = spec.new_type.name
        if name not in info.new_types:
            return UnsupportedType(f"type {name} (missing from type_info)")
        new_type = info.new_types[name]
        if new_type.HasField("original_type"):
            return resolve(new_type.original_type, info)
        translated = new_type.translated_type
        if translated.WhichOneof("sdn_type") == "sdn_bitwidth":
            return BitType(translated.sdn_bitwidth)
        return UnsupportedType(f"type {name} translated to a string ({translated.uri})")
    return UnsupportedType(kind or "an empty type spec")
