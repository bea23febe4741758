"""BMv2 expressions compiled to Python expressions.

behavioral-model ``src/bm_sim/expressions.cpp`` evaluates a stack program
over ``Data`` values that are arbitrary-precision signed integers
(``include/bm/bm_sim/data.h``: Boost/GMP ``Bignum``): ``+``, ``-``, ``*``,
``<<``, ``>>``, ``&``, ``|``, ``^`` and ``~`` do not wrap; a value is
truncated only when it is written into a field or register (``Field::set``).
Python ints have exactly these semantics (``~x == -x - 1``, arithmetic right
shift, two's-complement bitwise ops on negatives), so each operator maps to
the Python operator, and p4c's explicit ``& mask`` nodes give the P4 widths.
Operators that are not Python operators (``two_comp_mod``, ``usat_cast``,
``sat_cast``, ``/``, ``%``, variable shifts) call ``runtime`` helpers.

Expression kinds follow ``ExprType``: DATA (int), BOOL (bool), HEADER (the
header's index), HEADER_STACK, UNION. ``and``/``or`` evaluate both sides in
BMv2; expressions have no side effects, so Python's short circuit is the
same. The JSON shapes are those of ``P4Objects::build_expression``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from p4ctl.switch.interp.codegen import Namespace
from p4ctl.switch.interp.headers import FieldRef, HeaderTypeInfo, Layout, StackInfo, UnionInfo
from p4ctl.switch.interp.loader import hexstr
from p4ctl.switch.state import PipelineError, RegisterArray

__all__ = ["BOOL", "DATA", "HEADER", "STACK", "UNION", "E", "ExprCompiler", "LValue"]

DATA, BOOL, HEADER, STACK, UNION = "data", "bool", "header", "header_stack", "header_union"

_ARITH = {"+": "+", "-": "-", "*": "*", "&": "&", "|": "|", "^": "^"}
_COMPARE = {"<": "<", ">": ">", "<=": "<=", ">=": ">="}


@dataclass(slots=True)
class E:
    """A compiled expression: Python source, kind, and what the compiler knows about it."""

    code: str
    kind: str
    bits: int | None = None  # upper bound on the bit length of a DATA value >= 0
    htype: HeaderTypeInfo | None = None  # HEADER: its type
    static_header: int | None = None  # HEADER: its index when known at load
    stack: StackInfo | None = None
    union: UnionInfo | None = None
    const: int | None = None  # DATA: value when constant


@dataclass(slots=True)
class LValue:
    """Where a primitive writes a field: a slot expression and the field's format."""

    slot: str  # Python expression giving the index into p.f
    width: int
    signed: bool
    vl: bool = False
    header: str | None = None  # Python expression giving the header index
    register: tuple[str, RegisterArray] | None = None  # (index code, array) for registers


class ExprCompiler:
    """Compiles type-value JSON objects (``docs/JSON_format.md``) to Python source.

    Generated code runs with the locals ``p`` (runtime.Pkt), ``f`` (``p.f``),
    ``v`` (``p.v``), ``st`` (``p.st``) and, in actions, ``rd`` (action data).
    """

    def __init__(
        self,
        layout: Layout,
        ns: Namespace,
        registers: dict[str, RegisterArray],
    ) -> None:
        self.layout = layout
        self.ns = ns
        self.registers = registers
        self.runtime_widths: list[int] | None = None  # set while compiling an action
        # Header index -> slot of its first field, for fields of headers known at run time.
        self.hbase = ns.bind("HB", tuple(h.base for h in layout.hlist))
        self._stack_names: dict[str, str] = {}
        self._reg_names: dict[str, str] = {}

    # ----- names bound in the namespace ----------------------------------

    def stack_tuple(self, s: StackInfo) -> str:
        name = self._stack_names.get(s.name)
        if name is None:
            name = self._stack_names[s.name] = self.ns.bind("S", tuple(s.headers))
        return name

    def register_cells(self, reg: RegisterArray) -> str:
        name = self._reg_names.get(reg.name)
        if name is None:
            name = self._reg_names[reg.name] = self.ns.bind("R", reg.cells)
        return name

    def register(self, name: Any, where: str) -> RegisterArray:
        reg = self.registers.get(name) if isinstance(name, str) else None
        if reg is None:
            raise PipelineError(f"{where}: unknown register array {name!r}")
        return reg

    # ----- field access ---------------------------------------------------

    def field_load(self, ref: FieldRef) -> E:
        if ref.slot < 0:  # hidden $valid$
            return E(f"(1 if v[{ref.header}] else 0)", DATA, bits=1)
        return E(f"f[{ref.slot}]", DATA, bits=None if ref.signed else ref.width)

    def stack_field(self, value: Any, where: str) -> tuple[str, str, int, bool]:
        """``stack_field`` [stack, field]: (header code, slot code, width, signed)."""
        if not isinstance(value, list) or len(value) != 2:
            raise PipelineError(f"{where}: malformed stack_field {value!r}")
        s = self.layout.stack(value[0], where)
        htype = self.layout.hlist[s.headers[0]].type
        i = htype.index(value[1])
        if i is None:
            raise PipelineError(f"{where}: stack {s.name} has no field {value[1]!r}")
        _n, w, signed = htype.fields[i]
        hcode = f"_last(p, {s.index}, {self.stack_tuple(s)})"
        return hcode, f"{self.hbase}[{hcode}] + {i}", w, signed

    # ----- expressions ----------------------------------------------------

    def compile(self, tv: Any, where: str) -> E:
        if tv is None:
            raise PipelineError(f"{where}: empty expression")
        if not isinstance(tv, dict) or "type" not in tv:
            raise PipelineError(f"{where}: malformed expression {str(tv)[:80]}")
        t, value = tv["type"], tv.get("value")
        if t == "expression":
            if isinstance(value, dict) and "op" in value:
                return self._op(value, where)
            return self.compile(value, where)
        if t == "field":
            return self.field_load(self.layout.field(value, where))
        if t == "hexstr":
            c = hexstr(value, where)
            return E(repr(c), DATA, bits=c.bit_length() if c >= 0 else None, const=c)
        if t == "bool":
            if not isinstance(value, bool):
                raise PipelineError(f"{where}: bool value {value!r}")
            return E("True" if value else "False", BOOL)
        if t in ("local", "runtime_data"):
            return self.runtime_data(value, where)
        if t == "header":
            h = self.layout.header(value, where)
            return E(str(h.index), HEADER, htype=h.type, static_header=h.index)
        if t == "header_stack":
            s = self.layout.stack(value, where)
            return E(str(s.index), STACK, stack=s)
        if t == "header_union":
            u = self.layout.unions.get(value) if isinstance(value, str) else None
            if u is None:
                raise PipelineError(f"{where}: unknown header union {value!r}")
            return E(repr(tuple(u.headers)), UNION, union=u)
        if t == "stack_field":
            _h, slot, w, signed = self.stack_field(value, where)
            return E(f"f[{slot}]", DATA, bits=None if signed else w)
        if t == "register":
            if not isinstance(value, list) or len(value) != 2:
                raise PipelineError(f"{where}: malformed register reference {value!r}")
            reg = self.register(value[0], where)
            idx = self.data(value[1], where)
            cells = self.register_cells(reg)
            if idx.const is not None:
                if not 0 <= idx.const < reg.size:
                    raise PipelineError(f"{where}: register index {idx.const} out of range")
                return E(f"{cells}[{idx.const}]", DATA, bits=reg.bitwidth)
            return E(f"{cells}[_deref(range({reg.size}), {idx.code})]", DATA, bits=reg.bitwidth)
        raise PipelineError(f"{where}: expression type {t!r} is not supported")

    def runtime_data(self, value: Any, where: str) -> E:
        widths = self.runtime_widths
        if widths is None:
            raise PipelineError(f"{where}: action data used outside an action")
        if not isinstance(value, int) or not 0 <= value < len(widths):
            raise PipelineError(f"{where}: runtime data index {value!r} out of range")
        return E(f"rd[{value}]", DATA, bits=widths[value])

    def data(self, tv: Any, where: str) -> E:
        e = self.compile(tv, where)
        if e.kind != DATA:
            raise PipelineError(f"{where}: expected an integral expression, got {e.kind}")
        return e

    def boolean(self, tv: Any, where: str) -> E:
        e = self.compile(tv, where)
        if e.kind != BOOL:
            raise PipelineError(f"{where}: expected a boolean expression, got {e.kind}")
        return e

    def header(self, tv: Any, where: str) -> E:
        e = self.compile(tv, where)
        if e.kind != HEADER:
            raise PipelineError(f"{where}: expected a header, got {e.kind}")
        return e

    def _op(self, node: dict[str, Any], where: str) -> E:
        op = node.get("op")
        left, right = node.get("left"), node.get("right")
        w = f"{where} (op {op!r})"
        if op in _ARITH or op in ("<<", ">>", "/", "%"):
            if left is None and op in ("+", "-"):
                lhs = E("0", DATA, bits=0, const=0)  # unary +/-: left operand 0
            else:
                lhs = self.data(left, w)
            rhs = self.data(right, w)
            return self._arith(op, lhs, rhs)
        if op in ("==", "!="):
            lhs, rhs = self.compile(left, w), self.compile(right, w)
            if lhs.kind != rhs.kind:
                raise PipelineError(f"{w}: comparing {lhs.kind} with {rhs.kind}")
            neg = "not " if op == "!=" else ""
            if lhs.kind in (DATA, BOOL):
                return E(f"({lhs.code} {op} {rhs.code})", BOOL)
            if lhs.kind == HEADER:
                if lhs.htype is not rhs.htype:
                    return E("False" if op == "==" else "True", BOOL)
                return E(f"({neg}_heq(p, {lhs.code}, {rhs.code}))", BOOL)
            if lhs.kind == UNION:
                return E(f"({neg}_ueq(p, {lhs.code}, {rhs.code}))", BOOL)
            raise PipelineError(f"{w}: cannot compare {lhs.kind} values")
        if op in _COMPARE:
            lhs, rhs = self.data(left, w), self.data(right, w)
            return E(f"({lhs.code} {op} {rhs.code})", BOOL)
        if op in ("and", "or"):
            lhs, rhs = self.boolean(left, w), self.boolean(right, w)
            return E(f"({lhs.code} {op} {rhs.code})", BOOL)
        if op == "not":
            return E(f"(not {self.boolean(right, w).code})", BOOL)
        if op == "~":
            return E(f"(~{self.data(right, w).code})", DATA)
        if op == "valid":
            h = self.header(right, w)
            return E(f"v[{h.code}]", BOOL)
        if op == "valid_union":
            u = self.compile(right, w)
            if u.kind != UNION or u.union is None:
                raise PipelineError(f"{w}: valid_union needs a header union")
            return E("(" + " or ".join(f"v[{i}]" for i in u.union.headers) + ")", BOOL)
        if op == "?":
            cond = self.boolean(node.get("cond"), w)
            lhs, rhs = self.compile(left, w), self.compile(right, w)
            if lhs.kind != rhs.kind or lhs.kind not in (DATA, BOOL):
                raise PipelineError(f"{w}: ternary over {lhs.kind}/{rhs.kind}")
            bits = None if lhs.bits is None or rhs.bits is None else max(lhs.bits, rhs.bits)
            return E(f"({lhs.code} if {cond.code} else {rhs.code})", lhs.kind, bits=bits)
        if op in ("two_comp_mod", "usat_cast", "sat_cast"):
            lhs, rhs = self.data(left, w), self.data(right, w)
            fn = {"two_comp_mod": "_tcm", "usat_cast": "_usat", "sat_cast": "_sat"}[op]
            bits = rhs.const if op == "usat_cast" and rhs.const is not None else None
            return E(f"{fn}({lhs.code}, {rhs.code})", DATA, bits=bits)
        if op == "d2b":
            return E(f"({self.data(right, w).code} != 0)", BOOL)
        if op == "b2d":
            return E(f"(1 if {self.boolean(right, w).code} else 0)", DATA, bits=1)
        if op in ("dereference_header_stack", "dereference_stack"):
            s = self.compile(left, w)
            if s.kind != STACK or s.stack is None:
                raise PipelineError(f"{w}: needs a header stack")
            idx = self.data(right, w)
            htype = self.layout.hlist[s.stack.headers[0]].type
            if idx.const is not None:
                if not 0 <= idx.const < len(s.stack.headers):
                    raise PipelineError(f"{w}: stack index {idx.const} out of range")
                h = s.stack.headers[idx.const]
                return E(str(h), HEADER, htype=htype, static_header=h)
            return E(f"_deref({self.stack_tuple(s.stack)}, {idx.code})", HEADER, htype=htype)
        if op in ("last_stack_index", "size_stack"):
            s = self.compile(right, w)
            if s.kind != STACK or s.stack is None:
                raise PipelineError(f"{w}: needs a header stack")
            sub = " - 1" if op == "last_stack_index" else ""
            return E(f"(st[{s.stack.index}]{sub})", DATA)
        if op == "access_field":
            h = self.header(left, w)
            if not isinstance(right, int) or h.htype is None:
                raise PipelineError(f"{w}: bad field offset {right!r}")
            if not 0 <= right < len(h.htype.fields):
                raise PipelineError(f"{w}: field offset {right} out of range")
            _n, width, signed = h.htype.fields[right]
            bits = None if signed else width
            if h.static_header is not None:
                slot = self.layout.hlist[h.static_header].base + right
                return E(f"f[{slot}]", DATA, bits=bits)
            return E(f"f[{self.hbase}[{h.code}] + {right}]", DATA, bits=bits)
        if op == "access_union_header":
            u = self.compile(left, w)
            if u.kind != UNION or u.union is None or not isinstance(right, int):
                raise PipelineError(f"{w}: needs a header union and a member offset")
            if not 0 <= right < len(u.union.headers):
                raise PipelineError(f"{w}: union member {right} out of range")
            h = self.layout.hlist[u.union.headers[right]]
            return E(str(h.index), HEADER, htype=h.type, static_header=h.index)
        raise PipelineError(f"{w}: expression operator {op!r} is not supported")

    def _arith(self, op: str, lhs: E, rhs: E) -> E:
        if lhs.const is not None and rhs.const is not None and op not in ("/", "%"):
            c = {
                "+": lambda a, b: a + b,
                "-": lambda a, b: a - b,
                "*": lambda a, b: a * b,
                "&": lambda a, b: a & b,
                "|": lambda a, b: a | b,
                "^": lambda a, b: a ^ b,
                "<<": lambda a, b: a << b if 0 <= b < 1 << 16 else None,
                ">>": lambda a, b: a >> b if b >= 0 else None,
            }[op](lhs.const, rhs.const)
            if c is not None:
                return E(repr(c), DATA, bits=c.bit_length() if c >= 0 else None, const=c)
        if op == "&":
            bits = None
            if lhs.bits is not None and rhs.bits is not None:
                bits = min(lhs.bits, rhs.bits)
            elif lhs.bits is not None or rhs.bits is not None:
                bits = lhs.bits if lhs.bits is not None else rhs.bits
            return E(f"({lhs.code} & {rhs.code})", DATA, bits=bits)
        if op in ("|", "^"):
            bits = None
            if lhs.bits is not None and rhs.bits is not None:
                bits = max(lhs.bits, rhs.bits)
            return E(f"({lhs.code} {op} {rhs.code})", DATA, bits=bits)
        if op == "+":
            bits = None
            if lhs.bits is not None and rhs.bits is not None:
                bits = max(lhs.bits, rhs.bits) + 1
            return E(f"({lhs.code} + {rhs.code})", DATA, bits=bits)
        if op in ("-", "*"):
            bits = None
            if op == "*" and lhs.bits is not None and rhs.bits is not None:
                bits = lhs.bits + rhs.bits
            return E(f"({lhs.code} {op} {rhs.code})", DATA, bits=bits)
        if op == "<<":
            if rhs.const is not None and 0 <= rhs.const < 1 << 16:
                bits = None if lhs.bits is None else lhs.bits + rhs.const
                return E(f"({lhs.code} << {rhs.const})", DATA, bits=bits)
            return E(f"_shl({lhs.code}, {rhs.code})", DATA)
        if op == ">>":
            if rhs.const is not None and rhs.const >= 0:
                return E(f"({lhs.code} >> {rhs.const})", DATA, bits=lhs.bits)
            return E(f"_shr({lhs.code}, {rhs.code})", DATA, bits=lhs.bits)
        fn = "_div" if op == "/" else "_mod"
        return E(f"{fn}({lhs.code}, {rhs.code})", DATA, bits=lhs.bits)

    # ----- assignment -------------------------------------------------------

    def lvalue(self, tv: Any, where: str) -> LValue:
        """A writable field: ``field``, ``stack_field``, ``register`` or a field expression."""
        if not isinstance(tv, dict):
            raise PipelineError(f"{where}: malformed destination {tv!r}")
        t, value = tv.get("type"), tv.get("value")
        if t == "field":
            ref = self.layout.field(value, where)
            if ref.slot < 0:
                raise PipelineError(f"{where}: {ref.name} is read-only")
            return LValue(str(ref.slot), ref.width, ref.signed, ref.vl, str(ref.header))
        if t == "stack_field":
            hcode, slot, w, signed = self.stack_field(value, where)
            return LValue(slot, w, signed, False, hcode)
        if t == "register":
            if not isinstance(value, list) or len(value) != 2:
                raise PipelineError(f"{where}: malformed register reference {value!r}")
            reg = self.register(value[0], where)
            idx = self.data(value[1], where)
            return LValue("", reg.bitwidth, False, register=(idx.code, reg))
        if t == "expression":
            inner = value
            while isinstance(inner, dict) and inner.get("type") == "expression":
                inner = inner.get("value")
            if isinstance(inner, dict) and inner.get("op") == "access_field":
                h = self.header(inner.get("left"), where)
                off = inner.get("right")
                if (
                    h.htype is None
                    or not isinstance(off, int)
                    or not 0 <= off < len(h.htype.fields)
                ):
                    raise PipelineError(f"{where}: bad access_field destination")
                _n, width, signed = h.htype.fields[off]
                vl = off == h.htype.vl_index
                if h.static_header is not None:
                    slot = str(self.layout.hlist[h.static_header].base + off)
                else:
                    slot = f"{self.hbase}[{h.code}] + {off}"
                return LValue(slot, width, signed, vl, h.code)
            if isinstance(inner, dict) and "type" in inner:
                return self.lvalue(inner, where)
        raise PipelineError(f"{where}: destination of type {t!r} is not a field")

    def store(self, lv: LValue, src: E) -> str:
        """A statement writing ``src`` into ``lv`` with the field's truncation."""
        if lv.register is not None:
            idx, reg = lv.register
            cells = self.register_cells(reg)
            val = self.wrapped(src, reg.bitwidth, False)
            return f"{cells}[_deref(range({reg.size}), {idx})] = {val}"
        if lv.vl:
            raise PipelineError("assignment to a variable-length field needs assign_VL")
        return f"f[{lv.slot}] = {self.wrapped(src, lv.width, lv.signed)}"

    @staticmethod
    def wrapped(src: E, width: int, signed: bool) -> str:
        if signed:
            return f"_sw({src.code}, {width})"
        if src.bits is not None and src.bits <= width:
            return src.code
        return f"({src.code}) & {(1 << width) - 1}"
