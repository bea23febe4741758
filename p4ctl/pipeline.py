"""Flow entries <-> P4 entities, from ``pipeline.yaml``.

This is the only controller module that knows P4 names, and it learns them
from the pipeline description (``pipelines/flowcache/pipeline.yaml``), which
names every table, action, register, counter and digest under a role the
controller code uses ("flow" table, "forward" action, "overflow_valid"
register, ...). At load the names are resolved to P4Info ids once, and a
missing or mistyped name is an error that says which role and which name.

The hot path (two table entries per new flow) goes through
:class:`~p4ctl.flow_encoding.FlowEntryEncoder`, which splices serialized
entries from pieces prepared from the resolved ids, with no per-call name
look-up and no protobuf message built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from p4.v1 import p4runtime_pb2

from p4ctl.flow_encoding import FlowActionIds, FlowEntryEncoder
from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import KEY_FIELDS, FlowKey
from p4ctl.flows.store import StoreSizes
from p4ctl.p4rt.encoding import decode_uint
from p4ctl.p4rt.p4info import P4Info, P4InfoError

BUNDLED = Path(__file__).resolve().parent.parent / "pipelines" / "flowcache"


class PipelineSpecError(ValueError):
    """pipeline.yaml is malformed or names something the P4Info lacks."""


def _need(doc: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(doc, Mapping) or key not in doc:
        raise PipelineSpecError(f"{where}: missing '{key}'")
    return doc[key]


@dataclass(slots=True, frozen=True)
class PipelineSpec:
    """The parsed pipeline description and where its artifacts are."""

    name: str
    arch: str
    directory: Path
    p4info_path: Path
    bmv2_json_path: Path | None
    cpu_port: int
    sizes: StoreSizes
    hash_fields: tuple[tuple[str, int], ...]
    doc: Mapping[str, Any]

    @classmethod
    def load(cls, path: str | Path = BUNDLED) -> PipelineSpec:
        """Load ``pipeline.yaml`` (or a folder containing it)."""
        path = Path(path)
        if path.is_dir():
            path = path / "pipeline.yaml"
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise PipelineSpecError(f"{path}: {exc}") from exc
        where = str(path)
        artifacts = _need(doc, "artifacts", where)
        sizes = _need(doc, "sizes", where)
        hash_doc = _need(doc, "hash", where)
        fields = tuple((str(n), int(w)) for n, w in _need(hash_doc, "fields", f"{where}: hash"))
        if fields != KEY_FIELDS:
            raise PipelineSpecError(
                f"{where}: hash.fields {fields} differ from the controller's key layout "
                f"{KEY_FIELDS}"
            )
        bmv2 = artifacts.get("bmv2_json")
        return cls(
            name=str(_need(doc, "name", where)),
            arch=str(_need(doc, "arch", where)),
            directory=path.parent,
            p4info_path=path.parent / str(_need(artifacts, "p4info", f"{where}: artifacts")),
            bmv2_json_path=path.parent / str(bmv2) if bmv2 else None,
            cpu_port=int(doc.get("cpu_port", 255)),
            sizes=StoreSizes(
                int(_need(sizes, "flow_entries", f"{where}: sizes")),
                int(_need(sizes, "overflow_entries", f"{where}: sizes")),
                int(_need(sizes, "bucket_ways", f"{where}: sizes")),
            ),
            hash_fields=fields,
            doc=doc,
        )

    def role(self, *path: str) -> Any:
        """The value at ``path`` (e.g. ``role("tables", "flow", "name")``)."""
        node: Any = self.doc
        for i, part in enumerate(path):
            if not isinstance(node, Mapping) or part not in node:
                raise PipelineSpecError(
                    f"{self.directory / 'pipeline.yaml'}: missing '{'.'.join(path[: i + 1])}'"
                )
            node = node[part]
        return node

    def load_p4info(self) -> P4Info:
        return P4Info.load(self.p4info_path)

    def bmv2_json(self) -> bytes:
        if self.bmv2_json_path is None:
            raise PipelineSpecError(f"pipeline {self.name} has no BMv2 JSON")
        return self.bmv2_json_path.read_bytes()


class FlowMapping:
    """Translates flow entries to P4Runtime entities for one pipeline."""

    def __init__(self, spec: PipelineSpec, p4info: P4Info) -> None:
        self.spec = spec
        self.p4info = p4info
        try:
            self._resolve()
        except P4InfoError as exc:
            raise PipelineSpecError(
                f"{spec.directory / 'pipeline.yaml'} names something {spec.p4info_path.name} "
                f"lacks: {exc}"
            ) from exc

    def _resolve(self) -> None:
        spec, info = self.spec, self.p4info
        flow = info.tables[spec.role("tables", "flow", "name")]
        self.flow_table_id = flow.id
        match_roles = spec.role("tables", "flow", "match")
        self._match: tuple[tuple[int, int], ...] = tuple(
            (flow.field(match_roles[name]).id, flow.field(match_roles[name]).bitwidth)
            for name, _ in KEY_FIELDS
        )
        for (name, width), (_, p4_width) in zip(KEY_FIELDS, self._match, strict=True):
            if width != p4_width:
                raise PipelineSpecError(
                    f"flow table match field for {name} is bit<{p4_width}> in "
                    f"{spec.p4info_path.name}; the flow key has bit<{width}>"
                )
        self._actions: dict[ActionKind, FlowActionIds] = {}
        action_roles = spec.role("tables", "flow", "actions")
        params_order = {
            ActionKind.FORWARD: ("flow_id", "port"),
            ActionKind.DROP: ("flow_id",),
            ActionKind.NAT: ("flow_id", "port", "src_addr", "dst_addr", "src_port", "dst_port"),
        }
        for kind, role in ((ActionKind.FORWARD, "forward"), (ActionKind.DROP, "drop"),
                           (ActionKind.NAT, "nat")):
            action = info.actions[action_roles[role]["name"]]
            roles = action_roles[role]["params"]
            params = tuple(
                (action.param(roles[p]).id, action.param(roles[p]).bitwidth)
                for p in params_order[kind]
            )
            self._actions[kind] = FlowActionIds(action.id, params)
        self._action_kind = {a.id: k for k, a in self._actions.items()}
        flow_id_widths = {ids.params[0][1] for ids in self._actions.values()}
        if len(flow_id_widths) != 1:
            raise PipelineSpecError(
                f"flow actions in {spec.p4info_path.name} disagree on the flow id's width: "
                f"{sorted(flow_id_widths)}"
            )
        self.encoder = FlowEntryEncoder(self.flow_table_id, self._match, self._actions,
                                        flow_id_widths.pop())
        self.port_vrf_table_id = info.tables[spec.role("tables", "port_vrf", "name")].id
        self.miss_policy_table_id = info.tables[spec.role("tables", "miss_policy", "name")].id
        self.registers = {role: info.registers[name].name
                          for role, name in spec.role("registers").items()}
        self.new_flow_digest_id = info.digests[spec.role("digests", "new_flow", "name")].id
        self.flow_event_digest_id = info.digests[spec.role("digests", "flow_event", "name")].id

    # -- table entries ---------------------------------------------------
    def table_entry(self, key: FlowKey, flow_id: int, action: FlowAction,
                    idle_timeout_ns: int = 0) -> p4runtime_pb2.TableEntry:
        """The main-table entry of a flow (the writes use :attr:`encoder`'s bytes directly)."""
        return p4runtime_pb2.TableEntry.FromString(
            self.encoder.entry(key.packed(), flow_id, action, idle_timeout_ns))

    def table_key(self, key: FlowKey) -> p4runtime_pb2.TableEntry:
        """The main-table entry of a flow with its match only (for DELETE)."""
        return p4runtime_pb2.TableEntry.FromString(self.encoder.key_entry(key.packed()))

    def parse_table_entry(self, msg: p4runtime_pb2.TableEntry) -> tuple[FlowKey, int, FlowAction]:
        """(key, flow id, action) of a main-table entry read from the switch."""
        if msg.table_id != self.flow_table_id:
            raise PipelineSpecError(f"table id {msg.table_id} is not the flow table")
        by_id = {fm.field_id: fm.exact.value for fm in msg.match}
        values = [decode_uint(by_id[fid], width) for fid, width in self._match]
        key = FlowKey(*values)
        action = msg.action.action
        kind = self._action_kind.get(action.action_id)
        if kind is None:
            raise PipelineSpecError(f"action id {action.action_id} is not a flow action")
        ids = self._actions[kind]
        given = {p.param_id: p.value for p in action.params}
        params = [decode_uint(given[pid], width) for pid, width in ids.params]
        if kind is ActionKind.FORWARD:
            return key, params[0], FlowAction(kind, params[1])
        if kind is ActionKind.DROP:
            return key, params[0], FlowAction(kind)
        return key, params[0], FlowAction(kind, *params[1:])

    # -- overflow registers ----------------------------------------------
    def overflow_install(
        self, key: FlowKey, index: int, action: FlowAction
    ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
        """Register writes that install an overflow slot, as two stages.

        The first stage writes the key and the action, the second sets the
        valid bit, so the data plane never matches a half-written slot.
        Each write is (register name, index, value), applied in order.

        A slot may also be written again while valid (a replay, a changed
        action): the action's kind goes last, and the NAT words only with a
        NAT action, so a packet in between sees the old action whole, or the
        old kind with the new port, never a NAT to words not yet written.
        """
        r = self.registers
        kinds = self.spec.role("constants", "overflow_action")
        kind = {ActionKind.FORWARD: kinds["forward"], ActionKind.DROP: kinds["drop"],
                ActionKind.NAT: kinds["nat"]}[action.kind]
        first = [
            (r["overflow_key_addrs"], index, key.src_addr << 32 | key.dst_addr),
            (r["overflow_key_rest"], index,
             key.vrf << 40 | key.proto << 32 | key.src_port << 16 | key.dst_port),
            (r["overflow_port"], index, action.port),
        ]
        if action.kind is ActionKind.NAT:
            first += [
                (r["overflow_nat_addrs"], index,
                 action.nat_src_addr << 32 | action.nat_dst_addr),
                (r["overflow_nat_ports"], index,
                 action.nat_src_port << 16 | action.nat_dst_port),
            ]
        first.append((r["overflow_action"], index, kind))
        return first, [(r["overflow_valid"], index, 1)]

    def parse_overflow(self, cells: Mapping[str, int]) -> tuple[FlowKey, FlowAction]:
        """(key, action) of a valid overflow slot, from its registers' values by name:
        what :meth:`overflow_install` wrote, read back."""
        r = self.registers
        kinds = self.spec.role("constants", "overflow_action")
        code = cells[r["overflow_action"]]
        kind = {kinds["forward"]: ActionKind.FORWARD, kinds["drop"]: ActionKind.DROP,
                kinds["nat"]: ActionKind.NAT}.get(code)
        if kind is None:
            raise PipelineSpecError(f"overflow action {code} is not a flow action")
        addrs, rest = cells[r["overflow_key_addrs"]], cells[r["overflow_key_rest"]]
        key = FlowKey(rest >> 40 & 0xFFFF, addrs >> 32, addrs & 0xFFFFFFFF, rest >> 32 & 0xFF,
                      rest >> 16 & 0xFFFF, rest & 0xFFFF)
        if kind is ActionKind.DROP:
            return key, FlowAction(kind)
        port = cells[r["overflow_port"]]
        if kind is ActionKind.FORWARD:
            return key, FlowAction(kind, port)
        nat, ports = cells[r["overflow_nat_addrs"]], cells[r["overflow_nat_ports"]]
        return key, FlowAction(kind, port, nat >> 32, nat & 0xFFFFFFFF, ports >> 16,
                               ports & 0xFFFF)

    def overflow_remove(self, index: int) -> list[tuple[str, int, int]]:
        """Clearing the valid bit is enough: the slot no longer matches."""
        return [(self.registers["overflow_valid"], index, 0)]
