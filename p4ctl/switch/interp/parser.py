"""The ingress parser, compiled: one Python function per parse state.

behavioral-model ``src/bm_sim/parser.cpp`` and ``P4Objects::init_parsers``:

* parser ops run in order: ``extract`` (regular header or next element of a
  stack; ``PacketTooShort`` when the packet has fewer bytes than the header,
  ``StackOutOfBounds`` when the stack is full), ``extract_VL`` (length
  expression in bits, a multiple of 8 or ``ParserInvalidArgument``;
  ``HeaderTooShort`` above the header's ``max_length``), ``set`` (from a
  field, a constant, a ``lookahead`` -- ``PacketTooShort`` if fewer bytes than
  the lookahead's width remain -- or an expression), ``verify`` (raises the
  error expression's value when the condition is false), ``shift``/``advance``
  and ``primitive`` (an action primitive called from the parser);
* the transition key is the concatenation of its elements, each padded to
  whole bytes; cases are tried in order, ``key == value`` or
  ``key & mask == value & mask``; no match -> the default (or the end);
* a parser exception stops parsing: the error code is kept, the bytes of the
  headers extracted so far are consumed (``Parser::parse``) and the packet
  goes on (simple_switch copies the code into ``standard_metadata.parser_error``).

Error codes come from the JSON's ``errors``; core errors missing there get
the next free values in ``ErrorCodeMap::add_core`` order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p4ctl.switch.interp.codegen import Code, ParserError
from p4ctl.switch.interp.expressions import DATA, E, ExprCompiler
from p4ctl.switch.interp.headers import HeaderInfo, Layout
from p4ctl.switch.interp.loader import hexstr, need, obj_name
from p4ctl.switch.interp.primitives import ActionCompiler
from p4ctl.switch.state import PipelineError

__all__ = ["CORE_ERRORS", "ParserCompiler", "error_codes", "make_parser_helpers"]

CORE_ERRORS = (
    "NoError",
    "PacketTooShort",
    "NoMatch",
    "StackOutOfBounds",
    "HeaderTooShort",
    "ParserTimeout",
    "ParserInvalidArgument",
)


def error_codes(declared: dict[str, int]) -> dict[str, int]:
    """``ErrorCodeMap``: the JSON's errors plus the missing core ones (``add_core``)."""
    codes = dict(declared)
    nxt = max(codes.values()) + 1 if codes else 0
    for name in CORE_ERRORS:
        if name not in codes:
            codes[name] = nxt
            nxt += 1
    return codes


def _hexstr_nbytes(value: Any) -> int:
    s = str(value).strip().lower()
    if s.startswith("-"):
        s = s[1:]
    if s.startswith("0x"):
        s = s[2:]
    return (len(s) + 1) // 2


def _field_extract_lines(h: HeaderInfo, var: str) -> list[str]:
    """Assignments of every field of fixed header ``h`` from integer ``var``."""
    lines = []
    shift = h.nbits
    for k, (_n, w, signed) in enumerate(h.type.fields):
        shift -= w
        val = f"{var} >> {shift}" if shift else var
        if k:  # the first field needs no mask: nothing is above it
            val = f"({val}) & {(1 << w) - 1}"
        if signed:
            val = f"_sw({val}, {w})"
        lines.append(f"f[{h.base + k}] = {val}")
    return lines


def make_parser_helpers(layout: Layout, errors: dict[str, int]) -> dict[str, Callable[..., Any]]:
    short = errors["PacketTooShort"]
    too_short_hdr = errors["HeaderTooShort"]
    invalid_arg = errors["ParserInvalidArgument"]
    hlist = layout.hlist
    union_of: list[tuple[int, ...]] = [()] * len(hlist)
    for u in layout.unions.values():
        for i in u.headers:
            union_of[i] = tuple(x for x in u.headers if x != i)

    def _mark(v: list[bool], h: int) -> None:
        v[h] = True
        for o in union_of[h]:
            v[o] = False

    def _extract(p: Any, data: bytes, pos: int, h: int) -> int:
        """Extract fixed header ``h`` at ``pos``; return the new position."""
        info = hlist[h]
        if info.type.vl_index is not None:
            raise ParserError(invalid_arg, pos)
        nb = info.nbits // 8
        if len(data) - pos < nb:
            raise ParserError(short, pos)
        x = int.from_bytes(data[pos : pos + nb], "big")
        f = p.f
        shift = info.nbits
        for k, (_n, w, signed) in enumerate(info.type.fields):
            shift -= w
            val = (x >> shift) & ((1 << w) - 1)
            if signed and val >> (w - 1):
                val -= 1 << w
            f[info.base + k] = val
        _mark(p.v, h)
        return pos + nb

    def _extract_vl(p: Any, data: bytes, pos: int, h: int, nbits: int) -> int:
        """``extract_VL``: fixed fields plus a variable-length field of ``nbits``."""
        info = hlist[h]
        if nbits % 8 or nbits < 0:
            raise ParserError(invalid_arg, pos)
        nb = info.nbits // 8 + nbits // 8
        if len(data) - pos < nb:
            raise ParserError(short, pos)
        max_len = info.type.max_length or 0
        if max_len and max_len < nb:
            raise ParserError(too_short_hdr, pos)
        x = int.from_bytes(data[pos : pos + nb], "big")
        total = nb * 8
        f = p.f
        shift = total
        for k, (_n, w, signed) in enumerate(info.type.fields):
            if k == info.type.vl_index:
                w = nbits
                if p.vlw is None:
                    p.vlw = {}
                p.vlw[info.base + k] = nbits
            shift -= w
            val = (x >> shift) & ((1 << w) - 1) if w else 0
            if signed and w and val >> (w - 1):
                val -= 1 << w
            f[info.base + k] = val
        _mark(p.v, h)
        return pos + nb

    def _peek(data: bytes, pos: int, offset: int, width: int) -> int:
        """Bits ``[offset, offset + width)`` after ``pos`` (zeros past the end)."""
        start = pos + offset // 8
        bit = offset % 8
        nb = (bit + width + 7) // 8
        chunk = data[start : start + nb]
        if len(chunk) < nb:
            chunk = chunk + bytes(nb - len(chunk))
        return (int.from_bytes(chunk, "big") >> (nb * 8 - bit - width)) & ((1 << width) - 1)

    return {"_extract": _extract, "_extract_vl": _extract_vl, "_peek": _peek}


class ParserCompiler:
    def __init__(self, ex: ExprCompiler, ac: ActionCompiler, errors: dict[str, int]) -> None:
        self.ex = ex
        self.ac = ac
        self.layout = ex.layout
        self.ns = ex.ns
        self.errors = errors

    def err(self, name: str) -> int:
        return self.errors[name]

    def compile(self, parser: dict[str, Any]) -> str:
        """Generate ``def parse(p, data) -> (bytes_parsed, error_code)``; return its name."""
        pname = obj_name(parser, "parsers")
        states = need(parser, "parse_states", f"parser {pname}", list)
        index: dict[str, int] = {}
        for i, s in enumerate(states):
            sname = obj_name(s, f"parser {pname} parse_states")
            if sname in index:
                raise PipelineError(f"parser {pname}: duplicate parse state {sname}")
            index[sname] = i
        fnames = []
        for s in states:
            fname = self.ns.fresh("ps")
            fnames.append(fname)
            self.ns.add(self._state(fname, s, index, f"parser {pname} state {s['name']}"))
        init = parser.get("init_state")
        if init is None:
            init_i = -1
        elif init in index:
            init_i = index[init]
        else:
            raise PipelineError(f"parser {pname}: unknown init_state {init!r}")
        table = self.ns.fresh("PS")
        drv = self.ns.fresh("parse")
        code = Code()
        code(f"{table} = ({''.join(n + ', ' for n in fnames)})")
        code(f"def {drv}(p, data):")
        code.indent()
        code(f"pos = 0; i = {init_i}")
        code("try:")
        code(f"    while i >= 0: i, pos = {table}[i](p, data, pos)")
        code("except ParserError as e:")
        code("    return e.pos, e.code")
        code(f"return pos, {self.err('NoError')}")
        self.ns.add(code)
        return drv

    def _state(self, fname: str, s: dict[str, Any], index: dict[str, int], where: str) -> Code:
        code = Code()
        code(f"def {fname}(p, data, pos):")
        code.indent()
        code("f = p.f; v = p.v; st = p.st")
        for k, op in enumerate(need(s, "parser_ops", where, list)):
            self._op(code, op, f"{where} op {k}")
        self._transitions(code, s, index, where)
        return code

    def _op(self, code: Code, op: Any, where: str) -> None:
        if not isinstance(op, dict):
            raise PipelineError(f"{where}: malformed parser op")
        name = op.get("op")
        params = op.get("parameters") or []
        where = f"{where} ({name})"
        short = self.err("PacketTooShort")
        if name in ("extract", "extract_VL"):
            if len(params) != (1 if name == "extract" else 2):
                raise PipelineError(f"{where}: wrong number of parameters")
            target = params[0] if isinstance(params[0], dict) else {}
            kind, value = target.get("type"), target.get("value")
            if kind == "regular":
                h = self.layout.header(value, where)
                hcode = str(h.index)
                htype = h.type
            elif kind == "stack":
                stk = self.layout.stack(value, where)
                htype = self.layout.hlist[stk.headers[0]].type
                depth = len(stk.headers)
                code(f"if st[{stk.index}] >= {depth}:")
                code(f"    raise ParserError({self.err('StackOutOfBounds')}, pos)")
                code(f"_h = {self.ex.stack_tuple(stk)}[st[{stk.index}]]")
                hcode, h = "_h", None
            else:
                raise PipelineError(f"{where}: extract type {kind!r} is not supported")
            if name == "extract_VL":
                if htype.vl_index is None:
                    raise PipelineError(f"{where}: extract_VL of a fixed-size header")
                lexp = params[1]
                if not isinstance(lexp, dict) or lexp.get("type") != "expression":
                    raise PipelineError(f"{where}: length must be an expression")
                nbits = self.ex.data(lexp.get("value"), where)
                code(f"pos = _extract_vl(p, data, pos, {hcode}, {nbits.code})")
            elif htype.vl_index is not None:
                raise PipelineError(
                    f"{where}: extract of variable-length header type {htype.name} "
                    "(length_exp headers are not supported; p4c emits extract_VL)"
                )
            elif h is not None:
                nb = h.nbits // 8
                code(f"if len(data) - pos < {nb}: raise ParserError({short}, pos)")
                code(f"_x = int.from_bytes(data[pos:pos + {nb}], 'big')")
                code.extend(_field_extract_lines(h, "_x"))
                code.extend(
                    self.ac.set_valid(self.ex.header({"type": "header", "value": h.name}, where))
                )
                code(f"pos += {nb}")
            else:
                code(f"pos = _extract(p, data, pos, {hcode})")
            if kind == "stack":
                code(f"st[{stk.index}] += 1")
            return
        if name == "set":
            if len(params) != 2:
                raise PipelineError(f"{where}: wrong number of parameters")
            dst, src = params
            if not isinstance(dst, dict) or dst.get("type") != "field":
                raise PipelineError(f"{where}: destination must be a field")
            lv = self.ex.lvalue(dst, where)
            stype = src.get("type") if isinstance(src, dict) else None
            if lv.vl:
                if stype != "field":
                    raise PipelineError(f"{where}: variable-length set needs a field source")
                slv = self.ex.lvalue(src, where)
                code(f"_assign_vl(p, {lv.slot}, {slv.slot}, {lv.header})")
                return
            if stype == "lookahead":
                la = src.get("value")
                if not (
                    isinstance(la, list) and len(la) == 2 and all(isinstance(x, int) for x in la)
                ):
                    raise PipelineError(f"{where}: malformed lookahead {la!r}")
                off, bw = la
                if off < 0 or bw <= 0:
                    raise PipelineError(f"{where}: bad lookahead {la!r}")
                code(f"if len(data) - pos < {(bw + 7) // 8}: raise ParserError({short}, pos)")
                code(self.ex.store(lv, E(f"_peek(data, pos, {off}, {bw})", DATA, bits=bw)))
                return
            if stype == "expression":
                e = self.ex.data(src.get("value"), where)
            elif stype in ("field", "hexstr"):
                e = self.ex.data(src, where)
            else:
                raise PipelineError(f"{where}: set source type {stype!r} is not supported")
            code(self.ex.store(lv, e))
            return
        if name == "verify":
            if len(params) != 2:
                raise PipelineError(f"{where}: wrong number of parameters")
            cond = self.ex.boolean(params[0], where)
            errp = params[1]
            if isinstance(errp, int):
                if errp not in self.errors.values():
                    raise PipelineError(f"{where}: unknown error code {errp}")
                ecode = str(errp)
            else:
                ecode = self.ex.data(errp, where).code
            code(f"if not {cond.code}: raise ParserError(({ecode}) & 0xFFFFFFFF, pos)")
            return
        if name == "primitive":
            if len(params) != 1:
                raise PipelineError(f"{where}: wrong number of parameters")
            code.extend(self.ac.primitive(params[0], where))
            return
        if name in ("shift", "advance"):
            if len(params) != 1:
                raise PipelineError(f"{where}: wrong number of parameters")
            if name == "shift":
                n = params[0]
                if not isinstance(n, int) or n < 0:
                    raise PipelineError(f"{where}: bad shift {n!r}")
                code(f"if len(data) - pos < {n}: raise ParserError({short}, pos)")
                code(f"pos += {n}")
                return
            p0 = params[0]
            t = p0.get("type") if isinstance(p0, dict) else None
            if t == "expression":
                bits = self.ex.data(p0.get("value"), where)
            elif t in ("hexstr", "field"):
                bits = self.ex.data(p0, where)
            else:
                raise PipelineError(f"{where}: advance amount of type {t!r}")
            inv = self.err("ParserInvalidArgument")
            code(f"_b = {bits.code}")
            code(f"if _b < 0 or _b % 8: raise ParserError({inv}, pos)")
            code(f"if len(data) - pos < _b // 8: raise ParserError({short}, pos)")
            code("pos += _b // 8")
            return
        raise PipelineError(f"{where}: parser op {name!r} is not supported")

    def _transitions(
        self, code: Code, s: dict[str, Any], index: dict[str, int], where: str
    ) -> None:
        def target(t: dict[str, Any]) -> int:
            nxt = t.get("next_state")
            if nxt is None:
                return -1
            if nxt not in index:
                raise PipelineError(f"{where}: transition to unknown state {nxt!r}")
            return index[nxt]

        key_parts: list[tuple[str, int]] = []  # (python code, width in whole bytes)
        for k, el in enumerate(s.get("transition_key") or []):
            w = f"{where} transition_key {k}"
            t = el.get("type") if isinstance(el, dict) else None
            if t == "field":
                ref = self.layout.field(el.get("value"), w)
                if ref.vl:
                    raise PipelineError(f"{w}: variable-length field in a select key")
                e = self.ex.field_load(ref)
                key_parts.append((f"({e.code} & {(1 << ref.width) - 1})", (ref.width + 7) // 8))
            elif t == "stack_field":
                _h, slot, width, _s = self.ex.stack_field(el.get("value"), w)
                key_parts.append((f"(f[{slot}] & {(1 << width) - 1})", (width + 7) // 8))
            elif t == "lookahead":
                la = el.get("value")
                if not (
                    isinstance(la, list) and len(la) == 2 and all(isinstance(x, int) for x in la)
                ):
                    raise PipelineError(f"{w}: malformed lookahead {la!r}")
                if la[0] < 0 or la[1] <= 0:
                    raise PipelineError(f"{w}: bad lookahead {la!r}")
                key_parts.append((f"_peek(data, pos, {la[0]}, {la[1]})", (la[1] + 7) // 8))
            else:
                raise PipelineError(f"{w}: transition key element of type {t!r}")
        nbytes = sum(n for _c, n in key_parts)
        default = -1
        cases: list[tuple[int, int | None, int]] = []
        for k, t in enumerate(need(s, "transitions", where, list)):
            w = f"{where} transition {k}"
            if not isinstance(t, dict):
                raise PipelineError(f"{w}: malformed transition")
            ttype = t.get("type", "hexstr")
            if ttype == "hexstr" and t.get("value") == "default":
                ttype = "default"
            if ttype == "default":
                default = target(t)
                continue
            if ttype == "parse_vset":
                raise PipelineError(f"{w}: parser value sets (parse_vset) are not supported")
            if ttype != "hexstr":
                raise PipelineError(f"{w}: transition type {ttype!r} is not supported")
            if not key_parts:
                raise PipelineError(f"{w}: value transition without a transition key")
            if _hexstr_nbytes(t.get("value")) != nbytes:
                raise PipelineError(f"{w}: value has the wrong width (expected {nbytes} bytes)")
            value = hexstr(t.get("value"), w)
            mask = t.get("mask")
            if mask is not None:
                if _hexstr_nbytes(mask) != nbytes:
                    raise PipelineError(f"{w}: mask has the wrong width (expected {nbytes} bytes)")
                m = hexstr(mask, w)
                cases.append((value & m, m, target(t)))
            else:
                cases.append((value, None, target(t)))
        if cases:
            parts, shift = [], nbytes * 8
            for c, n in key_parts:
                shift -= n * 8
                parts.append(f"({c} << {shift})" if shift else c)
            code(f"key = {' | '.join(parts)}")
            for value, mask, nxt in cases:
                test = f"key == {value}" if mask is None else f"(key & {mask}) == {value}"
                code(f"if {test}: return {nxt}, pos")
        code(f"return {default}, pos")
