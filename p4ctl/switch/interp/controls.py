"""Controls (``pipelines``): tables, conditionals and action calls, compiled.

Every control-flow node becomes ``def nK(p)`` returning the next node
(a function) or ``None``; ``run_control`` drives them and stops early when
the packet is marked for exit (behavioral-model ``src/bm_sim/pipeline.cpp``).

Tables (``src/bm_sim/match_tables.cpp``, ``P4Objects::init_pipelines``):

* the key is built from the packet (static masks applied; a ``valid`` key is
  the header's validity) and looked up in ``state.Table`` (dict for exact);
* a hit updates the entry's ageing timestamp and, with direct counters, its
  packet and byte counts (bytes = the packet's ingress length:
  ``counters.h``), then runs the entry's action; a miss runs the current
  default action (none if the table has no ``default_entry``);
* the next node is chosen by ``__HIT__``/``__MISS__`` when the JSON has them,
  otherwise by the action that ran (``next_tables``); a miss whose default
  action has no entry in ``next_tables`` goes to ``base_default_next``.

Conditionals evaluate their boolean expression; ``action_calls`` run one
parameterless action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p4ctl.switch.interp.codegen import Code
from p4ctl.switch.interp.expressions import ExprCompiler
from p4ctl.switch.interp.loader import need, obj_name
from p4ctl.switch.interp.metadata import Metadata
from p4ctl.switch.state import PipelineError

__all__ = ["ControlCompiler", "run_control"]


def run_control(first: Callable[[Any], Any] | None, p: Any) -> None:
    node = first
    while node is not None and not p.exit:
        node = node(p)


class ControlCompiler:
    def __init__(self, ex: ExprCompiler, md: Metadata, action_fns: dict[int, str]) -> None:
        self.ex = ex
        self.md = md
        self.layout = ex.layout
        self.ns = ex.ns
        self.action_fns = action_fns  # action id -> generated function name

    def compile(self, pipe: dict[str, Any]) -> str:
        """Generate the nodes of one control; return the name holding its first node."""
        pname = obj_name(pipe, "pipelines")
        where = f"pipeline {pname}"
        nodes: dict[str, str] = {}
        tables = need(pipe, "tables", where, list)
        conds = pipe.get("conditionals") or []
        calls = pipe.get("action_calls") or []
        if pipe.get("action_profiles"):
            raise PipelineError(f"{where}: action profiles are not supported")
        for obj in [*tables, *conds, *calls]:
            name = obj_name(obj, where)
            if name in nodes:
                raise PipelineError(f"{where}: duplicate node name {name}")
            nodes[name] = self.ns.fresh("n")

        def ref(name: Any, w: str) -> str:
            if name is None:
                return "None"
            if name not in nodes:
                raise PipelineError(f"{w}: unknown next node {name!r}")
            return nodes[name]

        for t in tables:
            self.ns.add(self._table(nodes[t["name"]], t, ref))
        for c in conds:
            w = f"{where} conditional {c['name']}"
            expr = self.ex.boolean(need(c, "expression", w), w)
            code = Code()
            code(f"def {nodes[c['name']]}(p):")
            code.indent()
            code("f = p.f; v = p.v; st = p.st")
            tn, fn = ref(c.get("true_next"), w), ref(c.get("false_next"), w)
            code(f"return {tn} if {expr.code} else {fn}")
            self.ns.add(code)
        for a in calls:
            w = f"{where} action call {a['name']}"
            aid = need(a, "action_id", w)
            aname = self.md.action_name(aid, w)
            if self.md.actions_by_id[aid].get("runtime_data"):
                raise PipelineError(f"{w}: action {aname} takes parameters")
            code = Code()
            code(f"def {nodes[a['name']]}(p):")
            code(f"    {self.action_fns[aid]}(p, ())")
            code(f"    return {ref(a.get('next_node'), w)}")
            self.ns.add(code)
        first = self.ns.fresh("FIRST")
        self.ns.add_late(f"{first} = {ref(pipe.get('init_table'), where)}\n")
        return first

    def _table(self, fname: str, t: dict[str, Any], ref: Callable[[Any, str], str]) -> Code:
        name = t["name"]
        where = f"table {name}"
        table = self.md.tables[name]
        specs = self.md.table_keys[name]
        parts = []
        for k, spec in zip(table.match_fields, specs, strict=True):
            w = f"{where} key {k.name}"
            if spec.match_type == "valid":
                h = self.layout.header(spec.target, w)
                parts.append(f"(1 if v[{h.index}] else 0)")
                continue
            fref = self.layout.field(spec.target, w)
            val = self.ex.field_load(fref).code
            full = (1 << fref.width) - 1
            mask = full if spec.mask is None else spec.mask & full
            if fref.signed or mask != full or fref.slot < 0:
                val = f"({val} & {mask})"
            parts.append(val)
        key = "(" + "".join(p + ", " for p in parts) + ")"
        tname = self.ns.bind("T", table)
        lookup = self.ns.bind("LK", table.lookup)
        ids = list(t.get("action_ids") or [])
        de = t.get("default_entry")
        if isinstance(de, dict) and de.get("action_id") not in ids:
            ids.append(de.get("action_id"))
        fns = {}
        for aid in ids:
            fns.setdefault(self.md.action_name(aid, where), self.ns.globals[self.action_fns[aid]])
        afs = self.ns.bind("AF", fns)
        nt = t.get("next_tables")
        if not isinstance(nt, dict):
            raise PipelineError(f"{where}: 'next_tables' must be an object")
        code = Code()
        code(f"def {fname}(p):")
        code.indent()
        code("f = p.f; v = p.v")
        code(f"e = {lookup}({key})")
        code("if e is not None:")
        code.indent()
        code("e.last_hit_ns = _mono()")
        if table.direct_counter is not None:
            code("e.packets += 1; e.bytes += p.ilen")
        code("a = e.action")
        code(f"{afs}[a](p, e.args)")
        hit_miss = "__HIT__" in nt or "__MISS__" in nt
        if hit_miss:
            if set(nt) != {"__HIT__", "__MISS__"}:
                raise PipelineError(f"{where}: next_tables needs both __HIT__ and __MISS__ only")
            code(f"return {ref(nt['__HIT__'], where)}")
            code.dedent()
            code(f"a, args = {tname}.default_action")
            code(f"if a: {afs}[a](p, args)")
            code(f"return {ref(nt['__MISS__'], where)}")
            return code
        if set(nt) != set(table.action_names) - self._extra_default(t, table):
            missing = set(table.action_names) - set(nt)
            if missing - self._extra_default(t, table):
                raise PipelineError(f"{where}: next_tables lacks actions {sorted(missing)}")
        base = ref(t.get("base_default_next"), where) if "base_default_next" in t else "None"
        nxt = {a: ref(nt.get(a), where) if a in nt else base for a in table.action_names}
        nxt_name = self.ns.fresh("NX")
        items = "".join(f"{self.ns.bind('K', a)}: {n}, " for a, n in nxt.items())
        self.ns.add_late(f"{nxt_name} = {{{items}}}\n")
        code(f"return {nxt_name}[a]")
        code.dedent()
        code(f"a, args = {tname}.default_action")
        code("if not a:")
        code(f"    return {base}")
        code(f"{afs}[a](p, args)")
        code(f"return {nxt_name}[a]")
        return code

    @staticmethod
    def _extra_default(t: dict[str, Any], table: Any) -> set[str]:
        """A default action missing from ``action_ids`` (tolerated, see metadata)."""
        return set(table.action_names[len(t.get("action_ids") or []) :])
