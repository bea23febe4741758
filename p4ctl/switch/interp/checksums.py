"""Named calculations (hash inputs) and checksums, compiled.

* Calculations (behavioral-model ``src/bm_sim/calculations.cpp`` ``BufBuilder``):
  each becomes ``def cN(p) -> int`` that packs its inputs bit-contiguously
  (fields of invalid headers skipped), pads to a whole byte, appends the
  payload if asked and applies the hash (``hashes``).
* Checksums (``src/bm_sim/checksums.cpp``, ``P4Objects::init_checksums``):
  ``verify`` ones run at the end of the ingress parser (``Parser::parse`` ->
  ``verify_checksums``): skipped when the target header is invalid or the
  condition is false, a mismatch sets the packet's checksum error; ``update``
  ones run at the start of the deparser (``Deparser::update_checksums``):
  when the condition holds the target field gets the calculation's value
  (BMv2 does not check the target header's validity there).
"""

from __future__ import annotations

from typing import Any

from p4ctl.switch.interp.codegen import Code
from p4ctl.switch.interp.expressions import DATA, E, ExprCompiler
from p4ctl.switch.interp.hashes import hash_function, internet_checksum
from p4ctl.switch.interp.loader import hexstr, need, obj_name
from p4ctl.switch.state import PipelineError

__all__ = ["ChecksumCompiler"]


class ChecksumCompiler:
    def __init__(self, ex: ExprCompiler) -> None:
        self.ex = ex
        self.layout = ex.layout
        self.ns = ex.ns
        self.calculations: dict[str, str] = {}  # JSON name -> generated function name

    def calculations_from(self, doc: dict[str, Any]) -> None:
        for calc in doc.get("calculations") or []:
            name = obj_name(calc, "calculations")
            if name in self.calculations:
                raise PipelineError(f"calculation {name}: duplicate name")
            self.calculations[name] = self._calculation(calc, name)

    def _calculation(self, calc: dict[str, Any], name: str) -> str:
        where = f"calculation {name}"
        algo = need(calc, "algo", where, str)
        hfn = self.ns.bind("H", hash_function(algo, where))
        fname = self.ns.fresh("c")
        code = Code()
        code(f"def {fname}(p):")
        code.indent()
        code("f = p.f; v = p.v")
        code("acc = 0; n = 0")
        with_payload = False
        group_header: int | None = None  # header whose validity guards the open block
        for i, inp in enumerate(need(calc, "input", where, list)):
            w = f"{where} input {i}"
            t = inp.get("type") if isinstance(inp, dict) else None
            if with_payload:
                raise PipelineError(f"{w}: input after 'payload'")
            if t == "field":
                ref = self.layout.field(inp.get("value"), w)
                h = self.layout.hlist[ref.header]
                if ref.vl:
                    raise PipelineError(f"{w}: variable-length field in a calculation")
                if group_header != ref.header:
                    if group_header is not None:
                        code.dedent()
                    group_header = None
                    if not h.metadata:
                        code(f"if v[{ref.header}]:")
                        code.indent()
                        group_header = ref.header
                if ref.slot < 0:
                    val = f"(1 if v[{ref.header}] else 0)"
                else:
                    val = f"f[{ref.slot}]"
                    if ref.signed:
                        val = f"({val} & {(1 << ref.width) - 1})"
                code(f"acc = (acc << {ref.width}) | {val}; n += {ref.width}")
                continue
            if group_header is not None:
                code.dedent()
                group_header = None
            if t == "hexstr":
                bw = inp.get("bitwidth")
                if not isinstance(bw, int) or bw <= 0:
                    raise PipelineError(f"{w}: hexstr input needs a positive 'bitwidth'")
                c = hexstr(inp.get("value"), w) & ((1 << bw) - 1)
                code(f"acc = (acc << {bw}) | {c}; n += {bw}")
            elif t == "header":
                h = self.layout.header(inp.get("value"), w)
                if h.type.vl_index is not None:
                    raise PipelineError(f"{w}: variable-length header in a calculation")
                code(f"if v[{h.index}]:")
                code.indent()
                code("if n % 8: raise PacketAbort('header input not byte-aligned')")
                for k, (_fn, fw, fs) in enumerate(h.type.fields):
                    val = f"f[{h.base + k}]"
                    if fs:
                        val = f"({val} & {(1 << fw) - 1})"
                    code(f"acc = (acc << {fw}) | {val}")
                code(f"n += {h.nbits}")
                code.dedent()
            elif t == "payload":
                with_payload = True
            else:
                raise PipelineError(f"{w}: input type {t!r} is not supported")
        if group_header is not None:
            code.dedent()
        code("pad = -n % 8")
        code("buf = (acc << pad).to_bytes((n + pad) >> 3, 'big')")
        if with_payload:
            code("pl = p.payload")
            code("if p.trunc is not None: pl = pl[:p.trunc]")
            code("buf += pl")
        code(f"return {hfn}(buf)")
        self.ns.add(code)
        return fname

    # ----- checksums ---------------------------------------------------------

    def checksums(self, doc: dict[str, Any]) -> tuple[str, str]:
        """Generate ``verify_checksums(p) -> bool`` and ``update_checksums(p)``."""
        vcode, ucode = Code(), Code()
        vname, uname = self.ns.fresh("vck"), self.ns.fresh("uck")
        vcode(f"def {vname}(p):")
        ucode(f"def {uname}(p):")
        vcode.indent()
        ucode.indent()
        vcode("f = p.f; v = p.v; st = p.st; ok = True")
        ucode("f = p.f; v = p.v; st = p.st")
        for ck in doc.get("checksums") or []:
            name = obj_name(ck, "checksums")
            where = f"checksum {name}"
            ref = self.layout.field(need(ck, "target", where), where)
            if ref.slot < 0 or ref.vl:
                raise PipelineError(f"{where}: bad target field {ref.name}")
            ctype = ck.get("type", "generic")
            if ctype == "generic":
                fn = self.calculations.get(ck.get("calculation"))
                if fn is None:
                    raise PipelineError(f"{where}: unknown calculation {ck.get('calculation')!r}")
                call = f"{fn}(p)"
            elif ctype == "ipv4":
                call = self._ipv4(ref.header, ref.slot, where)
            else:
                raise PipelineError(f"{where}: checksum type {ctype!r} is not supported")
            cond = "True"
            if ck.get("if_cond") is not None:
                cond = self.ex.boolean(ck["if_cond"], where).code
            mask = (1 << ref.width) - 1
            if ck.get("verify", True):
                vcode(f"if v[{ref.header}] and {cond}:")
                vcode(f"    if ({call}) & 0xFFFFFFFFFFFFFFFF != (f[{ref.slot}] & {mask}):")
                vcode("        ok = False")
            if ck.get("update", True):
                ucode(f"if {cond}:")
                val = self.ex.wrapped(
                    E(f"({call}) & 0xFFFFFFFFFFFFFFFF", DATA, bits=64), ref.width, ref.signed
                )
                ucode(f"    f[{ref.slot}] = {val}")
        vcode("return ok")
        ucode("return None")
        self.ns.add(vcode)
        self.ns.add(ucode)
        return vname, uname

    def _ipv4(self, header: int, slot: int, where: str) -> str:
        """Legacy ``IPv4Checksum``: csum16 of the header bytes with the checksum zeroed."""
        h = self.layout.hlist[header]
        if h.type.vl_index is not None or h.nbits > 480:
            raise PipelineError(f"{where}: ipv4 checksum over an unsupported header")
        fname = self.ns.fresh("ip4c")
        csum = self.ns.bind("CS", internet_checksum)
        code = Code()
        code(f"def {fname}(p):")
        code.indent()
        code("f = p.f; acc = 0")
        for k, (_n, fw, _s) in enumerate(h.type.fields):
            val = "0" if h.base + k == slot else f"(f[{h.base + k}] & {(1 << fw) - 1})"
            code(f"acc = (acc << {fw}) | {val}")
        code(f"return {csum}(acc.to_bytes({h.nbits // 8}, 'big'))")
        self.ns.add(code)
        return f"{fname}(p)"
