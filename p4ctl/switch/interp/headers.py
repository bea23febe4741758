"""Header types, header instances, stacks and unions: the layout of the PHV.

behavioral-model keeps a PHV of ``Header`` objects made of ``Field`` objects
(``src/bm_sim/phv.cpp``, ``headers.cpp``, ``fields.cpp``). Here the PHV is
flat and cheap to copy (``runtime.Pkt``): one Python list holds every field
value of every header instance (a field reference compiles to an index into
it), one list holds header validity and one holds each header stack's
``next`` index. This module computes those indices.

Value representation (``fields.cpp`` ``Field::set``/``sync_value``): an
unsigned field holds its value modulo 2**width; a signed field holds the
two's-complement value in ``[-2**(w-1), 2**(w-1))``. Metadata headers are
always valid (``Header::is_valid`` returns ``metadata || valid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from p4ctl.switch.interp.loader import need, obj_name
from p4ctl.switch.state import PipelineError

__all__ = ["FieldRef", "HeaderInfo", "HeaderTypeInfo", "Layout", "StackInfo", "UnionInfo", "wrap"]


@dataclass(slots=True)
class HeaderTypeInfo:
    name: str
    id: int
    fields: list[tuple[str, int, bool]]  # (name, width, signed); VL width is 0
    vl_index: int | None = None  # position of the variable-length field
    length_exp: Any = None  # JSON expression giving the VL field's width in bits
    max_length: int | None = None  # bytes

    def index(self, fname: str) -> int | None:
        for i, (n, _w, _s) in enumerate(self.fields):
            if n == fname:
                return i
        return None


@dataclass(slots=True)
class HeaderInfo:
    name: str
    id: int
    index: int
    type: HeaderTypeInfo
    metadata: bool
    base: int  # slot of the first field in Pkt.f
    slots: list[int] = field(default_factory=list)
    nbits: int = 0  # packet bits of the fixed fields
    stack: str | None = None
    union: str | None = None


@dataclass(slots=True)
class StackInfo:
    name: str
    id: int
    index: int  # position in Pkt.st
    headers: list[int]  # header indices, stack[0] first


@dataclass(slots=True)
class UnionInfo:
    name: str
    id: int
    headers: list[int]  # header indices in member order
    members: list[str]


@dataclass(slots=True, frozen=True)
class FieldRef:
    """A resolved field: where its value lives and how to wrap values into it."""

    header: int  # header index (validity), or -1 for none
    slot: int  # index into Pkt.f; -1 for the hidden $valid$ field
    width: int
    signed: bool
    name: str
    vl: bool = False


def wrap(value: int, width: int, signed: bool) -> int:
    """Truncate ``value`` into a field of ``width`` bits (``Field::set``)."""
    if signed:
        half = 1 << (width - 1)
        return ((value + half) & ((1 << width) - 1)) - half
    return value & ((1 << width) - 1)


class Layout:
    """Everything about headers that is fixed at load: types, instances, slots."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.types: dict[str, HeaderTypeInfo] = {}
        self.headers: dict[str, HeaderInfo] = {}
        self.hlist: list[HeaderInfo] = []
        self.stacks: dict[str, StackInfo] = {}
        self.unions: dict[str, UnionInfo] = {}
        self.aliases: dict[str, tuple[str, str]] = {}
        self.errors: dict[str, int] = {}
        self.nslots = 0
        self._load_types(doc.get("header_types") or [])
        self._load_headers(doc.get("headers") or [])
        self._load_stacks(doc.get("header_stacks") or [])
        self._load_unions(doc)
        for al in doc.get("field_aliases") or []:
            if (
                not isinstance(al, list)
                or len(al) != 2
                or not isinstance(al[0], str)
                or not isinstance(al[1], list)
                or len(al[1]) != 2
            ):
                raise PipelineError(f"field_aliases: malformed alias {al!r}")
            self.aliases[al[0]] = (al[1][0], al[1][1])
        for err in doc.get("errors") or []:
            if not isinstance(err, list) or len(err) != 2 or not isinstance(err[1], int):
                raise PipelineError(f"errors: malformed error {err!r}")
            self.errors[str(err[0])] = err[1]
        self.template_f = [0] * self.nslots
        self.template_v = [h.metadata for h in self.hlist]
        self.template_st = [0] * len(self.stacks)

    # ----- loading ------------------------------------------------------

    def _load_types(self, types: list[Any]) -> None:
        for t in types:
            name = obj_name(t, "header_types")
            fields: list[tuple[str, int, bool]] = []
            vl_index = None
            for fd in need(t, "fields", f"header type {name}", list):
                if not isinstance(fd, list) or len(fd) not in (2, 3) or not isinstance(fd[0], str):
                    raise PipelineError(f"header type {name}: malformed field {fd!r}")
                signed = bool(fd[2]) if len(fd) == 3 else False
                if fd[1] == "*":
                    if vl_index is not None:
                        raise PipelineError(f"header type {name}: more than one VL field")
                    vl_index = len(fields)
                    fields.append((fd[0], 0, signed))
                elif isinstance(fd[1], int) and fd[1] > 0:
                    if signed and fd[1] < 2:
                        raise PipelineError(f"header type {name}: signed field {fd[0]} < 2 bits")
                    fields.append((fd[0], fd[1], signed))
                else:
                    raise PipelineError(f"header type {name}: bad width in field {fd!r}")
            ht = HeaderTypeInfo(name, t.get("id", len(self.types)), fields, vl_index)
            if vl_index is not None:
                ht.length_exp = t.get("length_exp")
                ht.max_length = t.get("max_length")
            self.types[name] = ht

    def _load_headers(self, headers: list[Any]) -> None:
        for h in headers:
            name = obj_name(h, "headers")
            tname = need(h, "header_type", f"header {name}", str)
            ht = self.types.get(tname)
            if ht is None:
                raise PipelineError(f"header {name}: unknown header type {tname}")
            info = HeaderInfo(
                name=name,
                id=need(h, "id", f"header {name}", int),
                index=len(self.hlist),
                type=ht,
                metadata=bool(h.get("metadata", False)),
                base=self.nslots,
            )
            info.slots = list(range(self.nslots, self.nslots + len(ht.fields)))
            info.nbits = sum(w for _n, w, _s in ht.fields)
            if not info.metadata and info.nbits % 8 and ht.vl_index is None:
                # behavioral-model asserts packet headers are whole bytes (headers.cpp).
                raise PipelineError(f"header {name}: width {info.nbits} bits is not whole bytes")
            self.nslots += len(ht.fields)
            self.headers[name] = info
            self.hlist.append(info)

    def _by_id(self, hid: Any, where: str) -> HeaderInfo:
        for h in self.hlist:
            if h.id == hid:
                return h
        raise PipelineError(f"{where}: unknown header id {hid!r}")

    def _load_stacks(self, stacks: list[Any]) -> None:
        for s in stacks:
            name = obj_name(s, "header_stacks")
            ids = need(s, "header_ids", f"header stack {name}", list)
            members = [self._by_id(i, f"header stack {name}") for i in ids]
            for m in members:
                m.stack = name
            self.stacks[name] = StackInfo(
                name, s.get("id", len(self.stacks)), len(self.stacks), [m.index for m in members]
            )

    def _load_unions(self, doc: dict[str, Any]) -> None:
        utypes = {}
        for ut in doc.get("header_union_types") or []:
            utypes[obj_name(ut, "header_union_types")] = [
                m[0] for m in need(ut, "headers", "header_union_types", list)
            ]
        for u in doc.get("header_unions") or []:
            name = obj_name(u, "header_unions")
            ids = need(u, "header_ids", f"header union {name}", list)
            members = [self._by_id(i, f"header union {name}") for i in ids]
            for m in members:
                m.union = name
            names = utypes.get(u.get("union_type"), [m.name for m in members])
            self.unions[name] = UnionInfo(name, u.get("id", 0), [m.index for m in members], names)
        if doc.get("header_union_stacks"):
            raise PipelineError("header_union_stacks are not supported")

    # ----- references -----------------------------------------------------

    def header(self, name: Any, where: str) -> HeaderInfo:
        h = self.headers.get(name) if isinstance(name, str) else None
        if h is None:
            raise PipelineError(f"{where}: unknown header {name!r}")
        return h

    def stack(self, name: Any, where: str) -> StackInfo:
        s = self.stacks.get(name) if isinstance(name, str) else None
        if s is None:
            raise PipelineError(f"{where}: unknown header stack {name!r}")
        return s

    def field(self, ref: Any, where: str) -> FieldRef:
        """Resolve a JSON field reference ``[header, field]`` (aliases, ``$valid$``)."""
        if not isinstance(ref, list) or len(ref) != 2:
            raise PipelineError(f"{where}: malformed field reference {ref!r}")
        hname, fname = ref
        h = self.headers.get(hname)
        if h is None:
            alias = self.aliases.get(f"{hname}.{fname}")
            if alias is None:
                raise PipelineError(f"{where}: unknown header {hname!r}")
            return self.field(list(alias), where)
        return self.field_of(h, fname, where)

    def field_of(self, h: HeaderInfo, fname: Any, where: str) -> FieldRef:
        if fname == "$valid$":
            return FieldRef(h.index, -1, 1, False, f"{h.name}.$valid$")
        i = h.type.index(fname)
        if i is None:
            raise PipelineError(f"{where}: header {h.name} has no field {fname!r}")
        n, w, s = h.type.fields[i]
        return FieldRef(h.index, h.base + i, w, s, f"{h.name}.{n}", vl=i == h.type.vl_index)

    def named_field(self, name: str) -> FieldRef | None:
        """A field by its dotted name as a target expects it (``standard_metadata.x``)."""
        alias = self.aliases.get(name)
        if alias is not None:
            return self.field(list(alias), name)
        hname, _, fname = name.partition(".")
        h = self.headers.get(hname)
        if h is None or h.type.index(fname) is None:
            return None
        return self.field_of(h, fname, name)
