"""Control-plane objects of a BMv2 JSON: actions, tables, registers, counters, digests.

These are what the P4Runtime/Thrift servers see (``Pipeline.tables`` etc.);
they are built before any packet code is compiled, and the compiler binds the
packet path to these very objects (so a control-plane write is visible to the
next packet without any copy).

Sources: behavioral-model ``src/bm_sim/P4Objects.cpp`` (``init_actions``,
``init_pipelines``, ``init_counter_arrays``, ``init_register_arrays``,
``init_learn_lists``, const entries and default entries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from p4ctl.switch.interp.headers import Layout
from p4ctl.switch.interp.loader import hexstr, need, obj_name
from p4ctl.switch.state import (
    BM_MAX_PRIORITY,
    ActionInfo,
    CounterArray,
    DigestInfo,
    MatchFieldInfo,
    PipelineError,
    RegisterArray,
    StateError,
    Table,
    TableEntry,
)

__all__ = ["Metadata", "TableKeySpec"]


@dataclass(slots=True)
class TableKeySpec:
    """How the packet path builds one key element of a table."""

    match_type: str
    target: Any  # [header, field] or header name (valid)
    mask: int | None
    width: int


@dataclass(slots=True)
class Metadata:
    actions: dict[str, ActionInfo] = field(default_factory=dict)
    actions_by_id: dict[int, dict[str, Any]] = field(default_factory=dict)
    action_infos: dict[int, ActionInfo] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    table_json: dict[str, dict[str, Any]] = field(default_factory=dict)
    table_keys: dict[str, list[TableKeySpec]] = field(default_factory=dict)
    registers: dict[str, RegisterArray] = field(default_factory=dict)
    counters: dict[str, CounterArray] = field(default_factory=dict)
    direct_counters: dict[str, str] = field(default_factory=dict)
    digests: dict[str, DigestInfo] = field(default_factory=dict)
    learn_lists: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, doc: dict[str, Any], layout: Layout) -> Metadata:
        md = cls()
        md._load_actions(doc)
        md._load_registers(doc)
        md._load_counters(doc)
        md._load_learn_lists(doc, layout)
        for pipe in doc.get("pipelines") or []:
            pname = obj_name(pipe, "pipelines")
            for t in need(pipe, "tables", f"pipeline {pname}", list):
                md._load_table(t, layout)
        for cname, tname in md.direct_counters.items():
            table = md.tables.get(tname)
            if table is None:
                raise PipelineError(f"direct counter {cname}: bound to unknown table {tname!r}")
            table.direct_counter = cname
        return md

    def _load_actions(self, doc: dict[str, Any]) -> None:
        for a in doc.get("actions") or []:
            name = obj_name(a, "actions")
            aid = need(a, "id", f"action {name}", int)
            params = []
            for rd in need(a, "runtime_data", f"action {name}", list):
                pname = need(rd, "name", f"action {name} runtime_data", str)
                width = need(rd, "bitwidth", f"action {name} runtime_data", int)
                params.append((pname, width))
            if aid in self.actions_by_id:
                raise PipelineError(f"action {name}: duplicate action id {aid}")
            self.actions_by_id[aid] = a
            info = ActionInfo(name, aid, params)
            self.action_infos[aid] = info
            # p4c emits two actions of one name when a table action is also
            # called directly from a control: the table's copy keeps the
            # parameters, the direct call's copy has them inlined (no
            # runtime_data). The id map is authoritative for the packet path
            # and each table resolves names among its own action_ids, as
            # BMv2's P4Objects does; the global name map keeps the copy with
            # the declared parameters (what the P4Info describes).
            known = self.actions.get(name)
            if known is None or len(params) > len(known.params):
                self.actions[name] = info

    def action_name(self, aid: Any, where: str) -> str:
        a = self.actions_by_id.get(aid)
        if a is None:
            raise PipelineError(f"{where}: unknown action id {aid!r}")
        return a["name"]

    def _load_registers(self, doc: dict[str, Any]) -> None:
        for r in doc.get("register_arrays") or []:
            name = obj_name(r, "register_arrays")
            where = f"register array {name}"
            self.registers[name] = RegisterArray(
                name,
                need(r, "id", where, int),
                need(r, "bitwidth", where, int),
                need(r, "size", where, int),
            )

    def _load_counters(self, doc: dict[str, Any]) -> None:
        for c in doc.get("counter_arrays") or []:
            name = obj_name(c, "counter_arrays")
            where = f"counter array {name}"
            if c.get("is_direct"):
                self.direct_counters[name] = need(c, "binding", where, str)
            else:
                self.counters[name] = CounterArray(
                    name, need(c, "id", where, int), need(c, "size", where, int)
                )
        for m in doc.get("meter_arrays") or []:
            raise PipelineError(f"meter arrays are not supported (meter_arrays: {m.get('name')})")

    def _load_learn_lists(self, doc: dict[str, Any], layout: Layout) -> None:
        for ll in doc.get("learn_lists") or []:
            name = obj_name(ll, "learn_lists")
            where = f"learn list {name}"
            lid = need(ll, "id", where, int)
            fields = []
            for el in need(ll, "elements", where, list):
                if not isinstance(el, dict) or el.get("type") != "field":
                    raise PipelineError(f"{where}: element {el!r} is not a field")
                ref = layout.field(el.get("value"), where)
                fields.append((ref.name, ref.width))
            self.digests[name] = DigestInfo(name, lid, fields)
            self.learn_lists[lid] = ll

    def _load_table(self, t: dict[str, Any], layout: Layout) -> None:
        name = obj_name(t, "tables")
        where = f"table {name}"
        ttype = t.get("type", "simple")
        if ttype != "simple":
            raise PipelineError(f"{where}: table type {ttype!r} (action profiles) is not supported")
        if t.get("direct_meters"):
            raise PipelineError(f"{where}: direct meters are not supported")
        keys: list[TableKeySpec] = []
        mfs: list[MatchFieldInfo] = []
        for k in need(t, "key", where, list):
            mt = need(k, "match_type", where, str)
            target = k.get("target")
            if mt == "valid":
                h = layout.header(target, where)
                width = 1
                kname = k.get("name") or f"{h.name}.$valid$"
            elif mt == "optional":
                # BMv2's match_name_to_match_type knows no "optional": p4c
                # writes optional keys as "ternary" (PI converts on write).
                raise PipelineError(f"{where}: match type 'optional' is not a BMv2 JSON match "
                                    "type (p4c writes optional keys as 'ternary')")
            elif mt in ("exact", "lpm", "ternary", "range"):
                ref = layout.field(target, where)
                if ref.vl:
                    raise PipelineError(f"{where}: match on a variable-length field")
                width = ref.width
                kname = k.get("name") or ref.name
            else:
                raise PipelineError(f"{where}: match type {mt!r} is not supported")
            mask = k.get("mask")
            smask = None if mask is None else hexstr(mask, where)
            keys.append(TableKeySpec(mt, target, smask, width))
            mfs.append(MatchFieldInfo(kname, mt, width))
        action_names = []
        ids = t.get("action_ids")
        if ids is None:
            raise PipelineError(f"{where}: missing attribute 'action_ids'")
        table_actions: dict[str, ActionInfo] = {}
        for aid in ids:
            aname = self.action_name(aid, where)
            action_names.append(aname)
            table_actions[aname] = self.action_infos[aid]
        de = t.get("default_entry")
        if de is not None:
            did = need(de, "action_id", f"{where} default_entry")
            dname = self.action_name(did, where)
            table_actions.setdefault(dname, self.action_infos[did])
            dargs = tuple(hexstr(v, where) for v in de.get("action_data") or [])
            const_default = bool(de.get("action_const", False))
            const_entry = bool(de.get("action_entry_const", False)) and "action_data" in de
        else:
            # behavioral-model: without default_entry a miss runs no action.
            dname, dargs, const_default, const_entry = "", (), False, False
        entries = t.get("entries") or []
        table = Table(
            name=name,
            id=need(t, "id", where, int),
            match_fields=mfs,
            size=need(t, "max_size", where, int),
            action_names=action_names,
            actions=table_actions,
            default_action=(dname, dargs),
            support_timeout=bool(t.get("support_timeout", False)),
            const_default=const_default,
            const_default_entry=const_entry,
            has_const_entries=bool(entries),
        )
        if dname and dname not in action_names:
            # p4c puts the default action in action_ids; tolerate JSONs that do not.
            table.action_names.append(dname)
        for i, e in enumerate(entries):
            self._const_entry(table, e, keys, f"{where} entry {i}")
        if name in self.tables:
            raise PipelineError(f"{where}: duplicate table name")
        self.tables[name] = table
        self.table_json[name] = t
        self.table_keys[name] = keys

    def _const_entry(
        self, table: Table, e: dict[str, Any], keys: list[TableKeySpec], where: str
    ) -> None:
        mk = need(e, "match_key", where, list)
        if len(mk) != len(keys):
            raise PipelineError(f"{where}: {len(mk)} key elements for {len(keys)} fields")
        key: list[Any] = []
        for spec, el in zip(keys, mk, strict=True):
            mt = el.get("match_type")
            if mt != spec.match_type:
                raise PipelineError(f"{where}: match type {mt!r} for a {spec.match_type} field")
            if mt == "valid":
                key.append(int(bool(need(el, "key", where))))
            elif mt == "exact":
                key.append(hexstr(need(el, "key", where), where))
            elif mt == "lpm":
                plen = el.get("prefix_length")
                if not isinstance(plen, int) or not 0 <= plen <= spec.width:
                    raise PipelineError(f"{where}: bad prefix_length {plen!r}")
                pmask = ((1 << spec.width) - 1) ^ ((1 << (spec.width - plen)) - 1)
                key.append((hexstr(need(el, "key", where), where) & pmask, plen))
            elif mt == "ternary":
                v, m = hexstr(need(el, "key", where), where), hexstr(need(el, "mask", where), where)
                key.append((v & m, m))
            elif mt == "range":
                key.append((hexstr(need(el, "start", where), where), hexstr(el.get("end"), where)))
            else:
                raise PipelineError(f"{where}: match type {mt!r} is not supported")
        ae = need(e, "action_entry", where, dict)
        action = self.action_name(need(ae, "action_id", where), where)
        args = tuple(hexstr(v, where) for v in ae.get("action_data") or [])
        if table.requires_priority:
            # JSON priorities are BMv2's (lower wins); store them as PI reports them.
            bm_prio = e.get("priority", 0)
            if not isinstance(bm_prio, int) or not 0 <= bm_prio < BM_MAX_PRIORITY:
                raise PipelineError(f"{where}: bad priority {bm_prio!r}")
            prio = BM_MAX_PRIORITY - bm_prio
        else:
            prio = 0
        try:
            table.insert(TableEntry(tuple(key), prio, action, args), const=True)
        except StateError as exc:
            raise PipelineError(f"{where}: {exc}") from None
