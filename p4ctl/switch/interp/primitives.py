"""Actions and the primitives p4c emits for v1model, compiled to Python statements.

Semantics, primitive by primitive, from behavioral-model:

* core (``src/bm_sim/core/primitives.cpp``, ``src/bm_sim/actions.cpp``):
  ``assign``, ``assign_VL``, ``assign_header``, ``assign_union``,
  ``assign_header_stack``, ``push``/``pop`` (P4_16 stacks, ``stacks.cpp``),
  ``exit`` (marks the packet; the rest of the action still runs, the control
  stops before its next node), ``assert``/``assume``, ``log_msg``,
  ``_jump``/``_jump_if_zero`` (conditionals inside actions).
* simple_switch (``targets/simple_switch/primitives.cpp``): ``modify_field``,
  ``add_to_field``, ``subtract_from_field``, ``add``, ``subtract``,
  ``bit_and/or/xor``, ``shift_left/right``, ``drop``, ``mark_to_drop``,
  ``generate_digest``, ``add_header`` (zeroes the fields, marks valid, grows the
  packet length register), ``add_header_fast``, ``remove_header``,
  ``copy_header``, ``clone_ingress_pkt_to_egress``, ``clone_egress_pkt_to_egress``,
  ``resubmit``, ``recirculate``, ``modify_field_with_hash_based_offset``
  (``base + hash % max``, max 0 treated as 1), ``modify_field_rng_uniform``,
  ``no_op``, ``count``, ``register_read``, ``register_write`` (out-of-range
  indices are logged and ignored, as BMv2's debug build does), ``truncate``.

Anything else (meters, extern instances, unknown primitives) is refused at load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from p4ctl.switch.interp.codegen import Code
from p4ctl.switch.interp.expressions import BOOL, DATA, HEADER, STACK, UNION, E, ExprCompiler
from p4ctl.switch.interp.headers import HeaderInfo, Layout
from p4ctl.switch.interp.loader import hexstr
from p4ctl.switch.state import CounterArray, PipelineError

__all__ = ["ActionCompiler", "TargetInfo"]

#: simple_switch's default drop port (targets/simple_switch/simple_switch.h).
DROP_PORT = 511

#: Primitive steps one action may take (loops in actions jump backwards).
MAX_ACTION_STEPS = 1 << 16

# ActionPrimitive signatures (targets/simple_switch/primitives.cpp, core/primitives.cpp).
_NPARAMS = {
    "assign": 2, "modify_field": 2, "assign_VL": 2, "assign_header": 2, "copy_header": 2,
    "assign_union": 2, "assign_header_stack": 2, "push": 2, "pop": 2, "assume": 1,
    "assert": 1, "exit": 0, "log_msg": 2, "add_to_field": 2, "subtract_from_field": 2,
    "add": 3, "subtract": 3, "bit_xor": 3, "bit_or": 3, "bit_and": 3, "shift_left": 3,
    "shift_right": 3, "drop": 0, "mark_to_drop": 1, "generate_digest": 2, "add_header": 1,
    "add_header_fast": 1, "remove_header": 1, "clone_ingress_pkt_to_egress": 2,
    "clone_egress_pkt_to_egress": 2, "resubmit": 1, "recirculate": 1,
    "modify_field_with_hash_based_offset": 4, "modify_field_rng_uniform": 3, "no_op": 0,
    "count": 2, "register_read": 3, "register_write": 3, "truncate": 1, "_jump": 1,
    "_jump_if_zero": 2,
}  # fmt: skip


@dataclass(slots=True)
class TargetInfo:
    """What primitives need from the rest of the program."""

    calculations: dict[str, str] = field(default_factory=dict)  # name -> generated fn name
    counters: dict[str, CounterArray] = field(default_factory=dict)
    learn_list_ids: set[int] = field(default_factory=set)
    field_list_ids: set[int] = field(default_factory=set)
    egress_spec_slot: int = -1
    mcast_grp_slot: int | None = None  # intrinsic_metadata.mcast_grp (alias)
    rng: str = ""  # name of the random.Random bound in the namespace


class ActionCompiler:
    """Compiles action bodies (lists of primitive calls) into Python statements."""

    def __init__(self, ex: ExprCompiler, target: TargetInfo) -> None:
        self.ex = ex
        self.layout: Layout = ex.layout
        self.ns = ex.ns
        self.target = target
        self._header_ranges = self.ns.bind(
            "HR", tuple((h.base, h.base + len(h.type.fields)) for h in self.layout.hlist)
        )

    # ----- bodies ---------------------------------------------------------------

    def function(
        self, fname: str, primitives: list[Any], where: str, params: list[int] | None
    ) -> Code:
        """``def fname(p, rd)`` running the primitives (``params``: runtime data widths)."""
        self.ex.runtime_widths = params
        try:
            code = Code()
            code(f"def {fname}(p, rd):")
            code.indent()
            code("f = p.f; v = p.v; st = p.st")
            self.body(code, primitives, where)
            code("return None")
            return code
        finally:
            self.ex.runtime_widths = None

    def body(self, code: Code, primitives: list[Any], where: str) -> None:
        if not isinstance(primitives, list):
            raise PipelineError(f"{where}: 'primitives' must be a list")
        ops = [p.get("op") if isinstance(p, dict) else None for p in primitives]
        if "_jump" in ops or "_jump_if_zero" in ops:
            self._jumping_body(code, primitives, where)
            return
        for i, prim in enumerate(primitives):
            code.extend(self.primitive(prim, f"{where} primitive {i}"))

    def _jumping_body(self, code: Code, primitives: list[Any], where: str) -> None:
        """Actions with ``_jump``: a small program counter loop (``ActionFnEntry::execute``)."""
        n = len(primitives)
        code("pc = 0; steps = 0")
        code(f"while pc < {n}:")
        code.indent()
        # p4c's loops are bounded; a JSON that jumps back forever must not hang the switch.
        code("steps += 1")
        code(f"if steps > {MAX_ACTION_STEPS}: raise PacketAbort('action loops without end')")
        for i, prim in enumerate(primitives):
            w = f"{where} primitive {i}"
            code(("if" if i == 0 else "elif") + f" pc == {i}:")
            code.indent()
            op = prim.get("op") if isinstance(prim, dict) else None
            params = self._params(prim, w)
            if op == "_jump":
                target = self._jump_target(params[0], n, w)
                code(f"pc = {target}")
            elif op == "_jump_if_zero":
                cond = self.data_param(params[0], w)
                target = self._jump_target(params[1], n, w)
                code(f"pc = {target} if ({cond.code}) == 0 else {i + 1}")
            else:
                code.extend(self.primitive(prim, w))
                code(f"pc = {i + 1}")
            code.dedent()
        code("else:")
        code("    break")
        code.dedent()

    @staticmethod
    def _jump_target(tv: Any, n: int, where: str) -> int:
        if not isinstance(tv, dict) or tv.get("type") != "hexstr":
            raise PipelineError(f"{where}: jump offset must be a constant")
        target = hexstr(tv.get("value"), where)
        if not 0 <= target <= n:
            raise PipelineError(f"{where}: jump offset {target} out of range")
        return target

    # ----- parameters -------------------------------------------------------

    @staticmethod
    def _params(prim: Any, where: str) -> list[Any]:
        if not isinstance(prim, dict) or not isinstance(prim.get("op"), str):
            raise PipelineError(f"{where}: malformed primitive call")
        params = prim.get("parameters", [])
        if not isinstance(params, list):
            raise PipelineError(f"{where}: 'parameters' must be a list")
        return params

    def data_param(self, tv: Any, where: str, allow_bool: bool = False) -> E:
        """A ``const Data &`` parameter (``ActionParam::to<const Data &>``)."""
        if isinstance(tv, dict) and tv.get("type") == "expression":
            e = self.ex.compile(tv.get("value"), where)
        else:
            e = self.ex.compile(tv, where)
        if e.kind == BOOL and allow_bool:
            return E(f"(1 if {e.code} else 0)", DATA, bits=1)
        if e.kind != DATA:
            raise PipelineError(f"{where}: expected an integral parameter, got {e.kind}")
        return e

    def header_param(self, tv: Any, where: str) -> E:
        if isinstance(tv, dict) and tv.get("type") == "expression":
            e = self.ex.compile(tv.get("value"), where)
        else:
            e = self.ex.compile(tv, where)
        if e.kind != HEADER:
            raise PipelineError(f"{where}: expected a header parameter, got {e.kind}")
        return e

    def const_param(self, tv: Any, where: str) -> int | None:
        e = self.data_param(tv, where)
        return e.const

    # ----- header validity --------------------------------------------------

    def set_valid(self, h: E) -> list[str]:
        """Mark a header valid; in a union, the other members become invalid (header_unions.cpp)."""
        if h.static_header is not None:
            info = self.layout.hlist[h.static_header]
            lines = [f"v[{info.index}] = True"]
            if info.union is not None:
                for other in self.layout.unions[info.union].headers:
                    if other != info.index:
                        lines.append(f"v[{other}] = False")
            return lines
        return [f"_setvalid(v, {h.code})"]

    def reset_fields(self, h: E) -> str:
        if h.static_header is not None:
            info: HeaderInfo = self.layout.hlist[h.static_header]
            n = len(info.type.fields)
            return f"f[{info.base}:{info.base + n}] = {[0] * n!r}"
        return f"_zero(f, {self._header_ranges}[{h.code}])"

    def header_bytes(self, h: E) -> str:
        if h.static_header is not None:
            info = self.layout.hlist[h.static_header]
            if info.type.vl_index is None:
                return str(info.nbits // 8)
        return f"_hbytes(p, {h.code})"

    # ----- one primitive ----------------------------------------------------

    def primitive(self, prim: Any, where: str) -> list[str]:
        params = self._params(prim, where)
        op = prim["op"]
        where = f"{where} ({op})"
        expected = _NPARAMS.get(op)
        if expected is None:
            raise PipelineError(f"{where}: primitive {op!r} is not supported")
        if len(params) != expected:
            raise PipelineError(f"{where}: expected {expected} parameters, got {len(params)}")
        ex = self.ex
        if op in ("assign", "modify_field"):
            dst = ex.lvalue(params[0], where)
            if dst.vl:
                return self._assign_vl(params, where)
            return [ex.store(dst, self.data_param(params[1], where))]
        if op == "assign_VL":
            return self._assign_vl(params, where)
        if op in ("assign_header", "copy_header"):
            dst, src = self.header_param(params[0], where), self.header_param(params[1], where)
            if dst.htype is not src.htype:
                raise PipelineError(f"{where}: headers of different types")
            return [f"_assign_header(p, {dst.code}, {src.code})"]
        if op == "assign_union":
            dst, src = ex.compile(params[0], where), ex.compile(params[1], where)
            if dst.kind != UNION or src.kind != UNION or dst.union is None or src.union is None:
                raise PipelineError(f"{where}: needs header unions")
            return [
                f"_assign_header(p, {d}, {s})"
                for d, s in zip(dst.union.headers, src.union.headers, strict=True)
            ]
        if op == "assign_header_stack":
            dst, src = ex.compile(params[0], where), ex.compile(params[1], where)
            if dst.kind != STACK or src.kind != STACK or dst.stack is None or src.stack is None:
                raise PipelineError(f"{where}: needs header stacks")
            if len(dst.stack.headers) != len(src.stack.headers):
                raise PipelineError(f"{where}: stacks of different depths")
            lines = [f"st[{dst.stack.index}] = st[{src.stack.index}]"]
            lines += [
                f"_assign_header(p, {d}, {s})"
                for d, s in zip(dst.stack.headers, src.stack.headers, strict=True)
            ]
            return lines
        if op in ("push", "pop"):
            s = ex.compile(params[0], where)
            if s.kind != STACK or s.stack is None:
                raise PipelineError(f"{where}: needs a header stack")
            num = self.data_param(params[1], where)
            fn = "_push_front" if op == "push" else "_pop_front"
            return [f"{fn}(p, {s.stack.index}, {ex.stack_tuple(s.stack)}, {num.code})"]
        if op in ("assume", "assert"):
            c = self.data_param(params[0], where, allow_bool=True)
            return [f"_assert(({c.code}) != 0, {op!r})"]
        if op == "exit":
            return ["p.exit = True"]
        if op == "log_msg":
            return self._log_msg(params, where)
        if op in ("add_to_field", "subtract_from_field"):
            dst = ex.lvalue(params[0], where)
            d = self.data_param(params[1], where)
            sign = "+" if op == "add_to_field" else "-"
            return [ex.store(dst, E(f"(f[{dst.slot}] {sign} {d.code})", DATA))]
        if op in ("add", "subtract", "bit_xor", "bit_or", "bit_and", "shift_left", "shift_right"):
            dst = ex.lvalue(params[0], where)
            a, b = self.data_param(params[1], where), self.data_param(params[2], where)
            pyop = {"add": "+", "subtract": "-", "bit_xor": "^", "bit_or": "|", "bit_and": "&"}
            if op in pyop:
                return [ex.store(dst, E(f"({a.code} {pyop[op]} {b.code})", DATA))]
            fn = "_shl" if op == "shift_left" else "_shr"
            return [ex.store(dst, E(f"{fn}({a.code}, {b.code})", DATA))]
        if op == "drop":
            lines = [f"f[{self.target.egress_spec_slot}] = {DROP_PORT}"]
            if self.target.mcast_grp_slot is not None:
                lines.append(f"f[{self.target.mcast_grp_slot}] = 0")
            return lines
        if op == "mark_to_drop":
            h = self.header_param(params[0], where)
            if h.static_header is None or h.htype is None:
                raise PipelineError(f"{where}: needs the standard_metadata header")
            info = self.layout.hlist[h.static_header]
            es = info.type.index("egress_spec")
            if es is None:
                raise PipelineError(f"{where}: header {info.name} has no egress_spec field")
            lines = [f"f[{info.base + es}] = {DROP_PORT}"]
            mg = info.type.index("mcast_grp")
            if mg is not None:
                lines.append(f"f[{info.base + mg}] = 0")
            return lines
        if op == "generate_digest":
            self.data_param(params[0], where)  # receiver: evaluated by BMv2, then ignored
            lid = self.data_param(params[1], where)
            if lid.const is not None and (lid.const & 0xFFFF) not in self.target.learn_list_ids:
                raise PipelineError(f"{where}: unknown learn list id {lid.const}")
            return [f"p.lf = ({lid.code}) & 0xFFFF"]
        if op in ("add_header", "add_header_fast"):
            h = self.header_param(params[0], where)
            if op == "add_header_fast":
                return self.set_valid(h)
            lines = [f"if not v[{h.code}]:"]
            lines += ["    " + self.reset_fields(h)]
            lines += ["    " + s for s in self.set_valid(h)]
            lines += [f"    p.plen += {self.header_bytes(h)}"]
            return lines
        if op == "remove_header":
            h = self.header_param(params[0], where)
            return [
                f"if v[{h.code}]:",
                f"    p.plen -= {self.header_bytes(h)}",
                f"    v[{h.code}] = False",
            ]
        if op in ("clone_ingress_pkt_to_egress", "clone_egress_pkt_to_egress"):
            sid = self.data_param(params[0], where)
            fl = self.data_param(params[1], where)
            self._check_field_list(fl, where)
            return [
                f"p.clone_sid = (({sid.code}) & 0xFFFF) | 0x8000",
                f"p.clone_fl = ({fl.code}) & 0xFFFF",
            ]
        if op in ("resubmit", "recirculate"):
            fl = self.data_param(params[0], where)
            self._check_field_list(fl, where)
            attr = "resubmit" if op == "resubmit" else "recirc"
            return [f"p.{attr} = ({fl.code}) & 0xFFFF"]
        if op == "modify_field_with_hash_based_offset":
            dst = ex.lvalue(params[0], where)
            base = self.data_param(params[1], where)
            calc = params[2]
            if not isinstance(calc, dict) or calc.get("type") != "calculation":
                raise PipelineError(f"{where}: third parameter must be a calculation")
            fn = self.target.calculations.get(calc.get("value"))
            if fn is None:
                raise PipelineError(f"{where}: unknown calculation {calc.get('value')!r}")
            size = self.data_param(params[3], where)
            # get<uint64_t>: values are taken modulo 2**64.
            b = f"(({base.code}) & 0xFFFFFFFFFFFFFFFF)"
            if size.const is not None:
                sz = size.const & 0xFFFFFFFFFFFFFFFF or 1
                val = E(f"(({fn}(p) % {sz}) + {b}) & 0xFFFFFFFFFFFFFFFF", DATA, bits=64)
            else:
                sz = f"((({size.code}) & 0xFFFFFFFFFFFFFFFF) or 1)"
                val = E(f"(({fn}(p) % {sz}) + {b}) & 0xFFFFFFFFFFFFFFFF", DATA, bits=64)
            return [ex.store(dst, val)]
        if op == "modify_field_rng_uniform":
            dst = ex.lvalue(params[0], where)
            lo, hi = self.data_param(params[1], where), self.data_param(params[2], where)
            m64 = 0xFFFFFFFFFFFFFFFF
            lines = [f"_lo = ({lo.code}) & {m64}; _hi = ({hi.code}) & {m64}"]
            lines.append("if _lo <= _hi:")
            lines.append("    " + ex.store(dst, E(f"{self.target.rng}.randint(_lo, _hi)", DATA)))
            return lines
        if op == "no_op":
            return []
        if op == "count":
            return self._count(params, where)
        if op == "register_read":
            dst = ex.lvalue(params[0], where)
            reg = self._register_param(params[1], where)
            idx = self.data_param(params[2], where)
            cells = ex.register_cells(reg)
            src = E(f"{cells}[_i]", DATA, bits=reg.bitwidth)
            return [
                f"_i = {idx.code}",
                f"if 0 <= _i < {reg.size}:",
                "    " + ex.store(dst, src),
                "else:",
                f"    _oob({self.ns.bind('M', 'register_read ' + reg.name)}, _i)",
            ]
        if op == "register_write":
            reg = self._register_param(params[0], where)
            idx = self.data_param(params[1], where)
            src = self.data_param(params[2], where)
            cells = ex.register_cells(reg)
            return [
                f"_i = {idx.code}",
                f"if 0 <= _i < {reg.size}:",
                f"    {cells}[_i] = {ex.wrapped(src, reg.bitwidth, False)}",
                "else:",
                f"    _oob({self.ns.bind('M', 'register_write ' + reg.name)}, _i)",
            ]
        if op == "truncate":
            n = self.data_param(params[0], where)
            return [
                f"_n = ({n.code}) & 0xFFFFFFFFFFFFFFFF",
                "p.trunc = _n if p.trunc is None or _n < p.trunc else p.trunc",
            ]
        if op in ("_jump", "_jump_if_zero"):  # pragma: no cover - handled by _jumping_body
            raise PipelineError(f"{where}: jump outside a jumping body")
        raise PipelineError(f"{where}: primitive {op!r} is not supported")  # pragma: no cover

    def _register_param(self, tv: Any, where: str):
        if not isinstance(tv, dict) or tv.get("type") != "register_array":
            raise PipelineError(f"{where}: expected a register_array parameter")
        return self.ex.register(tv.get("value"), where)

    def _check_field_list(self, fl: E, where: str) -> None:
        if fl.const is not None and fl.const != 0 and fl.const not in self.target.field_list_ids:
            raise PipelineError(f"{where}: unknown field list id {fl.const}")

    def _count(self, params: list[Any], where: str) -> list[str]:
        tv = params[0]
        if not isinstance(tv, dict) or tv.get("type") != "counter_array":
            raise PipelineError(f"{where}: expected a counter_array parameter")
        ctr = self.target.counters.get(tv.get("value"))
        if ctr is None:
            raise PipelineError(f"{where}: unknown (or direct) counter {tv.get('value')!r}")
        idx = self.data_param(params[1], where)
        pk, by = self.ns.bind("CP", ctr.packets), self.ns.bind("CB", ctr.bytes)
        return [
            f"_i = {idx.code}",
            f"if 0 <= _i < {ctr.size}:",
            f"    {pk}[_i] += 1; {by}[_i] += p.ilen",
            "else:",
            f"    _oob({self.ns.bind('M', 'count ' + ctr.name)}, _i)",
        ]

    def _assign_vl(self, params: list[Any], where: str) -> list[str]:
        dst = self.ex.lvalue(params[0], where)
        src = self.ex.lvalue(params[1], where)
        if not dst.vl or not src.vl:
            raise PipelineError(f"{where}: assign_VL needs variable-length fields")
        return [f"_assign_vl(p, {dst.slot}, {src.slot}, {dst.header})"]

    def _log_msg(self, params: list[Any], where: str) -> list[str]:
        fmt, vec = params
        if not isinstance(fmt, dict) or fmt.get("type") != "string":
            raise PipelineError(f"{where}: log_msg format must be a string")
        if not isinstance(vec, dict) or vec.get("type") != "parameters_vector":
            raise PipelineError(f"{where}: log_msg arguments must be a parameters_vector")
        values = [self.data_param(x, where).code for x in vec.get("value") or []]
        fmt_name = self.ns.bind("LM", str(fmt.get("value")))
        tup = "(" + "".join(v + ", " for v in values) + ")"
        return [f"if _log_on(): _log_msg({fmt_name}, {tup})"]


def make_header_helpers(layout: Layout) -> dict[str, Callable[..., Any]]:
    """Helpers over whole headers that generated code calls with a header index."""
    ranges = [(h.base, h.base + len(h.type.fields)) for h in layout.hlist]
    union_of: list[tuple[int, ...]] = [()] * len(layout.hlist)
    for u in layout.unions.values():
        for i in u.headers:
            union_of[i] = tuple(x for x in u.headers if x != i)
    fixed_bytes = [h.nbits // 8 for h in layout.hlist]
    vl_slot = [
        h.base + h.type.vl_index if h.type.vl_index is not None else -1 for h in layout.hlist
    ]
    type_of = [h.type for h in layout.hlist]

    def _setvalid(v: list[bool], h: int) -> None:
        v[h] = True
        for o in union_of[h]:
            v[o] = False

    def _zero(f: list[int], r: tuple[int, int]) -> None:
        f[r[0] : r[1]] = [0] * (r[1] - r[0])

    def _hbytes(p: Any, h: int) -> int:
        s = vl_slot[h]
        if s < 0:
            return fixed_bytes[h]
        return fixed_bytes[h] + ((p.vlw or {}).get(s, 0) // 8)

    def _copy_vl(p: Any, dst_slot: int, src_slot: int) -> None:
        if dst_slot >= 0:
            w = (p.vlw or {}).get(src_slot, 0)
            if p.vlw is None:
                p.vlw = {}
            p.vlw[dst_slot] = w

    def _assign_header(p: Any, dst: int, src: int) -> None:
        """``core::assign_header``: an invalid source makes the destination invalid."""
        v = p.v
        if not v[src]:
            v[dst] = False
            return
        _setvalid(v, dst)
        d0, d1 = ranges[dst]
        s0, s1 = ranges[src]
        p.f[d0:d1] = p.f[s0:s1]
        if vl_slot[dst] >= 0:
            _copy_vl(p, vl_slot[dst], vl_slot[src])

    def _swap(p: Any, a: int, b: int) -> None:
        """``Header::swap_values``: validity and field values."""
        v, f = p.v, p.f
        v[a], v[b] = v[b], v[a]
        a0, a1 = ranges[a]
        b0, b1 = ranges[b]
        f[a0:a1], f[b0:b1] = f[b0:b1], f[a0:a1]
        if vl_slot[a] >= 0 and p.vlw:
            wa, wb = p.vlw.get(vl_slot[a], 0), p.vlw.get(vl_slot[b], 0)
            p.vlw[vl_slot[a]], p.vlw[vl_slot[b]] = wb, wa

    def _push_front(p: Any, stack: int, headers: tuple[int, ...], num: int) -> None:
        """``StackP4_16::push_front(num)`` (stacks.cpp)."""
        num &= 0xFFFFFFFFFFFFFFFF
        if num == 0:
            return
        size = len(headers)
        p.st[stack] = min(size, p.st[stack] + num)
        i = size - 1
        while i > num - 1:
            _swap(p, headers[i], headers[i - num])
            i -= 1
        for i in range(min(size, num)):
            p.v[headers[i]] = False

    def _pop_front(p: Any, stack: int, headers: tuple[int, ...], num: int) -> None:
        """``StackP4_16::pop_front(num)`` (stacks.cpp)."""
        num &= 0xFFFFFFFFFFFFFFFF
        if num == 0:
            return
        size = len(headers)
        p.st[stack] -= min(p.st[stack], num)
        i = 0
        if num < size:
            while i < size - num:
                _swap(p, headers[i], headers[i + num])
                i += 1
        while i < size:
            p.v[headers[i]] = False
            i += 1

    def _heq(p: Any, a: int, b: int) -> bool:
        """``Header::cmp``: same type, both valid, equal fields."""
        if type_of[a] is not type_of[b] or not (p.v[a] and p.v[b]):
            return False
        a0, a1 = ranges[a]
        b0, b1 = ranges[b]
        return p.f[a0:a1] == p.f[b0:b1]

    def _ueq(p: Any, a: tuple[int, ...], b: tuple[int, ...]) -> bool:
        """``HeaderUnion::cmp``: the same member valid in both, and equal."""
        for x, y in zip(a, b, strict=True):
            if p.v[x] != p.v[y]:
                return False
            if p.v[x] and not _heq(p, x, y):
                return False
        return True

    def _assign_vl(p: Any, dst_slot: int, src_slot: int, _dst_header: int) -> None:
        p.f[dst_slot] = p.f[src_slot]
        _copy_vl(p, dst_slot, src_slot)

    return {
        "_setvalid": _setvalid,
        "_zero": _zero,
        "_hbytes": _hbytes,
        "_assign_header": _assign_header,
        "_push_front": _push_front,
        "_pop_front": _pop_front,
        "_heq": _heq,
        "_ueq": _ueq,
        "_assign_vl": _assign_vl,
    }
