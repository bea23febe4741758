"""The deparser, compiled (behavioral-model ``src/bm_sim/deparser.cpp``).

``Deparser::deparse``: update the checksums, run the deparser's method calls
(``primitives``), then emit every *valid* header of ``order`` in that order,
followed by the payload (what the parser did not consume). simple_switch
sends at most the truncation length (``Packet::get_data_size``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p4ctl.switch.interp.codegen import Code
from p4ctl.switch.interp.expressions import ExprCompiler
from p4ctl.switch.interp.headers import Layout
from p4ctl.switch.interp.loader import obj_name
from p4ctl.switch.interp.primitives import ActionCompiler

__all__ = ["compile_deparser", "make_deparser_helpers"]


def make_deparser_helpers(layout: Layout) -> dict[str, Callable[..., Any]]:
    hlist = layout.hlist

    def _emit_any(p: Any, h: int) -> bytes:
        """Bytes of header ``h`` (any layout, including a variable-length field)."""
        info = hlist[h]
        f = p.f
        acc, n = 0, 0
        for k, (_name, w, _s) in enumerate(info.type.fields):
            if k == info.type.vl_index:
                w = (p.vlw or {}).get(info.base + k, 0)
            if w:
                acc = (acc << w) | (f[info.base + k] & ((1 << w) - 1))
                n += w
        return acc.to_bytes(n // 8, "big")

    return {"_emit_any": _emit_any}


def compile_deparser(
    deparser: dict[str, Any], ex: ExprCompiler, ac: ActionCompiler, update_checksums: str
) -> str:
    """Generate ``def dp(p) -> bytes``; return its name."""
    layout = ex.layout
    name = obj_name(deparser, "deparsers")
    where = f"deparser {name}"
    fname = ex.ns.fresh("dp")
    code = Code()
    code(f"def {fname}(p):")
    code.indent()
    code(f"{update_checksums}(p)")
    code("f = p.f; v = p.v; st = p.st")
    ac.ex.runtime_widths = None
    for i, prim in enumerate(deparser.get("primitives") or []):
        code.extend(ac.primitive(prim, f"{where} primitive {i}"))
    code("out = []")
    for hname in deparser.get("order") or []:
        h = layout.header(hname, where)
        code(f"if v[{h.index}]:")
        if h.type.vl_index is not None:
            code(f"    out.append(_emit_any(p, {h.index}))")
            continue
        parts, shift = [], h.nbits
        for k, (_n, w, signed) in enumerate(h.type.fields):
            shift -= w
            val = f"f[{h.base + k}]"
            if signed:
                val = f"({val} & {(1 << w) - 1})"
            parts.append(f"({val} << {shift})" if shift else val)
        code(f"    out.append(({' | '.join(parts) or '0'}).to_bytes({h.nbits // 8}, 'big'))")
    code("out.append(p.payload)")
    code("data = b''.join(out)")
    code("return data if p.trunc is None else data[:p.trunc]")
    ex.ns.add(code)
    return fname
