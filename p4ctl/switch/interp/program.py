"""The whole program compiled, and simple_switch's packet flow around it.

Packet flow (behavioral-model ``targets/simple_switch/simple_switch.cpp``):

``receive_``
    metadata zeroed; ``ingress_port``, ``packet_length`` (and the packet
    length register), ``instance_type`` = NORMAL, ``ingress_global_timestamp``
    (microseconds since the switch started, or the caller's ``now_us``).
``ingress_thread``
    parse (+ checksum verification); ``parser_error`` and ``checksum_error``
    copied into standard metadata; ingress control; exit flag cleared; then in
    this order: ingress clone (the original packet re-parsed, metadata reset,
    the clone's field list copied, ``instance_type`` INGRESS_CLONE, sent to the
    mirror session's replicas), learning (one digest from the learn list of
    the last ``generate_digest``), resubmit (a new ingress pass with the field
    list, the original goes no further), multicast (``mcast_grp`` != 0: one
    copy per group replica with ``egress_rid``, the original goes no further),
    drop if ``egress_spec`` == 511, else enqueue to ``egress_spec``.
``enqueue``
    ``intrinsic_metadata.priority`` must be below the number of queues (1):
    otherwise the packet is dropped; queueing metadata set.
``egress_thread``
    ``egress_global_timestamp``, queueing metadata, ``egress_port``,
    ``egress_spec`` = 512 (wraps to 0 in the 9-bit field), ``packet_length``
    from the length register; egress control; egress clone (PHV copied,
    metadata reset, field list, EGRESS_CLONE); drop if ``egress_spec`` == 511;
    deparse (checksum update first); recirculate (a new ingress pass with the
    deparsed bytes and the field list); otherwise transmit.

Mirror sessions and multicast groups are what the control plane configures
in simple_switch's PRE: ``Pipeline.mirror_sessions`` and
``Pipeline.multicast_groups`` (both: id -> list of (egress_port, rid)).
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from p4ctl.switch.interp.checksums import ChecksumCompiler
from p4ctl.switch.interp.codegen import Namespace, PacketAbort, ParserError
from p4ctl.switch.interp.controls import ControlCompiler, run_control
from p4ctl.switch.interp.deparser import compile_deparser, make_deparser_helpers
from p4ctl.switch.interp.expressions import ExprCompiler
from p4ctl.switch.interp.headers import FieldRef, Layout, wrap
from p4ctl.switch.interp.loader import need, obj_name
from p4ctl.switch.interp.metadata import Metadata
from p4ctl.switch.interp.parser import ParserCompiler, error_codes, make_parser_helpers
from p4ctl.switch.interp.primitives import (
    DROP_PORT,
    ActionCompiler,
    TargetInfo,
    make_header_helpers,
)
from p4ctl.switch.interp.runtime import HELPERS, Pkt, ProcessResult
from p4ctl.switch.state import PipelineError

__all__ = ["Program"]

_log = logging.getLogger("p4ctl.switch.interp")

# PktInstanceType (targets/simple_switch/simple_switch.h)
NORMAL, INGRESS_CLONE, EGRESS_CLONE, COALESCED, RECIRC, REPLICATION, RESUBMIT = range(7)

#: Packet passes (ingress or egress) allowed for one input packet before giving up:
#: BMv2 would loop forever on a program that always recirculates.
MAX_PASSES = 256

_UNSUPPORTED_TOP = ("parse_vsets", "meter_arrays", "extern_instances", "header_union_stacks")


class Program:
    """A BMv2 JSON compiled for simple_switch's packet flow."""

    def __init__(self, doc: dict[str, Any], layout: Layout, md: Metadata) -> None:
        for key in _UNSUPPORTED_TOP:
            if doc.get(key):
                raise PipelineError(f"{key} are not supported")
        self.layout = layout
        self.md = md
        self.errors = error_codes(layout.errors)
        self.mirror_sessions: dict[int, list[tuple[int, int]]] = {}
        self.multicast_groups: dict[int, list[tuple[int, int]]] = {}
        self.rng = random.Random()
        self._t0 = time.monotonic_ns()
        self._std(layout)
        ns = Namespace({**HELPERS, **make_header_helpers(layout)})
        ns.globals.update(make_parser_helpers(layout, self.errors))
        ns.globals.update(make_deparser_helpers(layout))
        ns.globals["ParserError"] = ParserError
        ns.globals["_log_on"] = lambda: _log.isEnabledFor(logging.INFO)
        self.ns = ns
        ex = ExprCompiler(layout, ns, md.registers)
        target = TargetInfo(
            counters=md.counters,
            learn_list_ids=set(md.learn_lists),
            field_list_ids=set(),
            egress_spec_slot=self.sm["egress_spec"].slot,
            mcast_grp_slot=self.mcast.slot if self.mcast is not None else None,
            rng=ns.bind("RNG", self.rng),
        )
        self._field_lists(doc, target)
        ck = ChecksumCompiler(ex)
        ck.calculations_from(doc)
        target.calculations = ck.calculations
        ac = ActionCompiler(ex, target)
        # Actions first: tables bind the functions themselves.
        # Names may repeat across ids (p4c copies NoAction per table): keep both maps.
        action_fns: dict[int, str] = {}
        for aid, a in md.actions_by_id.items():
            name = a["name"]
            fname = ns.fresh("a")
            widths = [rd["bitwidth"] for rd in a.get("runtime_data") or []]
            ns.add(ac.function(fname, a.get("primitives") or [], f"action {name}", widths))
            action_fns[aid] = fname
        vck, uck = ck.checksums(doc)
        parsers = {obj_name(p, "parsers"): p for p in doc.get("parsers") or []}
        deparsers = {obj_name(d, "deparsers"): d for d in doc.get("deparsers") or []}
        pipes = {obj_name(p, "pipelines"): p for p in doc.get("pipelines") or []}
        for what, found in (("parser", parsers), ("deparser", deparsers)):
            if what not in found:
                raise PipelineError(f"simple_switch needs a {what} named {what!r}")
        for what in ("ingress", "egress"):
            if what not in pipes:
                raise PipelineError(f"simple_switch needs a pipeline named {what!r}")
        pc = ParserCompiler(ex, ac, self.errors)
        parse = pc.compile(parsers["parser"])
        dp = compile_deparser(deparsers["deparser"], ex, ac, uck)
        ns.build()  # actions must exist before tables bind them
        cc = ControlCompiler(ex, md, action_fns)
        ing = cc.compile(pipes["ingress"])
        egr = cc.compile(pipes["egress"])
        ns.build()
        self._parse: Callable[[Pkt, bytes], tuple[int, int]] = ns.fn(parse)
        self._verify: Callable[[Pkt], bool] = ns.fn(vck)
        self._deparse: Callable[[Pkt], bytes] = ns.fn(dp)
        self._ingress = ns.globals[ing]
        self._egress = ns.globals[egr]
        self._learn: dict[int, tuple[str, list[tuple[int, int]]]] = {}
        for lid, ll in md.learn_lists.items():
            refs = [layout.field(el["value"], f"learn list {ll['name']}") for el in ll["elements"]]
            self._learn[lid] = (ll["name"], [(r.slot, (1 << r.width) - 1) for r in refs])
        self._meta_ranges = [
            (h.base, h.base + len(h.type.fields)) for h in layout.hlist if h.metadata
        ]

    # ----- load-time pieces ------------------------------------------------

    def _std(self, layout: Layout) -> None:
        """Standard metadata fields simple_switch reads and writes (required first)."""
        self.sm: dict[str, FieldRef] = {}
        for name in (
            "ingress_port",
            "packet_length",
            "instance_type",
            "egress_spec",
            "egress_port",
        ):
            ref = layout.named_field(f"standard_metadata.{name}")
            if ref is None:
                raise PipelineError(f"simple_switch needs the field standard_metadata.{name}")
            self.sm[name] = ref

        def opt(name: str) -> FieldRef | None:
            return layout.named_field(name)

        self.parser_error = opt("standard_metadata.parser_error")
        self.checksum_error = opt("standard_metadata.checksum_error")
        self.mcast = opt("intrinsic_metadata.mcast_grp")
        self.egress_rid = opt("intrinsic_metadata.egress_rid")
        self.ig_ts = opt("intrinsic_metadata.ingress_global_timestamp")
        self.eg_ts = opt("intrinsic_metadata.egress_global_timestamp")
        self.priority = opt("intrinsic_metadata.priority")
        q = {
            n: opt(f"queueing_metadata.{n}")
            for n in ("enq_timestamp", "enq_qdepth", "deq_timedelta", "deq_qdepth")
        }
        self.queueing = q if all(r is not None for r in q.values()) else None
        self.qid = opt("queueing_metadata.qid")

    def _field_lists(self, doc: dict[str, Any], target: TargetInfo) -> None:
        """``field_lists``: what clone/resubmit/recirculate copy into the new instance."""
        self._fl: dict[int, list[int]] = {}
        for fl in doc.get("field_lists") or []:
            where = f"field list {fl.get('name', fl.get('id'))}"
            lid = need(fl, "id", where, int)
            slots = []
            for el in need(fl, "elements", where, list):
                t = el.get("type") if isinstance(el, dict) else None
                if t == "field":
                    ref = self.layout.field(el.get("value"), where)
                    if ref.slot >= 0:
                        slots.append(ref.slot)
                elif t != "hexstr":
                    raise PipelineError(f"{where}: element type {t!r}")
            self._fl[lid] = slots
        target.field_list_ids = set(self._fl)

    # ----- per packet --------------------------------------------------------

    def _set(self, p: Pkt, ref: FieldRef | None, value: int) -> None:
        if ref is not None and ref.slot >= 0:
            p.f[ref.slot] = wrap(value, ref.width, ref.signed)

    def _fresh(self) -> Pkt:
        lay = self.layout
        return Pkt(lay.template_f[:], lay.template_v[:], lay.template_st[:])

    def _reset_metadata(self, p: Pkt) -> None:
        f = p.f
        for a, b in self._meta_ranges:
            f[a:b] = [0] * (b - a)

    def _copy_field_list(self, dst: Pkt, src: Pkt, fl: int) -> None:
        for s in self._fl.get(fl, ()):
            dst.f[s] = src.f[s]

    def _copy(self, p: Pkt) -> Pkt:
        """``clone_with_phv_ptr``: same PHV values and payload, packet registers cleared."""
        c = Pkt(p.f[:], p.v[:], p.st[:])
        c.vlw = dict(p.vlw) if p.vlw else None
        c.payload = p.payload
        c.plen = p.plen
        c.ilen = p.ilen
        c.trunc = p.trunc
        return c

    def now_us(self) -> int:
        return (time.monotonic_ns() - self._t0) // 1000

    def process(self, packet: bytes, ingress_port: int, now_us: int | None = None) -> ProcessResult:
        res = ProcessResult()
        now = self.now_us() if now_us is None else now_us
        p = self._fresh()
        self._set(p, self.sm["ingress_port"], ingress_port)
        self._set(p, self.sm["packet_length"], len(packet))
        self._set(p, self.sm["instance_type"], NORMAL)
        self._set(p, self.ig_ts, now)
        p.plen = p.ilen = len(packet)
        work: deque[tuple[bool, Pkt, Any]] = deque([(True, p, bytes(packet))])
        passes = 0
        while work:
            passes += 1
            if passes > MAX_PASSES:
                _log.error("packet exceeded %d pipeline passes; dropped", MAX_PASSES)
                break
            is_ingress, pkt, arg = work.popleft()
            try:
                if is_ingress:
                    self._ingress_pass(pkt, arg, ingress_port, now, res, work)
                else:
                    self._egress_pass(pkt, arg, now, res, work)
            except PacketAbort as exc:
                _log.error("packet dropped: %s", exc)
            except Exception:  # a packet must never take the switch down
                _log.exception("packet dropped: unexpected error in the pipeline")
        return res

    def _ingress_pass(
        self, p: Pkt, raw: bytes, port: int, now: int, res: Any, work: deque[Any]
    ) -> None:
        sm = self.sm
        ingress_size = p.plen
        pos, err = self._parse(p, raw)
        p.payload = raw[pos:]
        ok = self._verify(p)
        self._set(p, self.parser_error, err)
        self._set(p, self.checksum_error, 0 if ok else 1)
        run_control(self._ingress, p)
        p.exit = False
        f = p.f
        egress_spec = f[sm["egress_spec"].slot] & ((1 << sm["egress_spec"].width) - 1)
        if p.clone_sid:
            sid, fl = p.clone_sid & 0x7FFF, p.clone_fl
            p.clone_sid = p.clone_fl = 0
            replicas = self.mirror_sessions.get(sid)
            if replicas is not None:
                c = self._fresh()
                c.plen = ingress_size
                c.ilen = p.ilen
                self._set(c, sm["ingress_port"], port)  # the port it came in on
                cpos, _err = self._parse(c, raw)
                c.payload = raw[cpos:]
                self._verify(c)
                self._reset_metadata(c)
                self._copy_field_list(c, p, fl)
                self._set(c, sm["instance_type"], INGRESS_CLONE)
                self._replicate(c, replicas, now, work)
        if p.lf > 0:
            learn = self._learn.get(p.lf)
            if learn is None:
                _log.error("generate_digest with unknown learn list id %d", p.lf)
            else:
                name, fields = learn
                res.digests.append((name, tuple(f[s] & m for s, m in fields)))
        if p.resubmit:
            c = self._fresh()
            self._copy_field_list(c, p, p.resubmit)
            self._set(c, sm["instance_type"], RESUBMIT)
            c.plen = c.ilen = ingress_size
            self._set(c, sm["packet_length"], ingress_size)
            work.append((True, c, raw))
            return
        if self.mcast is not None:
            mgid = f[self.mcast.slot] & ((1 << self.mcast.width) - 1)
            if mgid:
                self._set(p, sm["instance_type"], REPLICATION)
                self._replicate(p, self.multicast_groups.get(mgid, []), now, work)
                return
        if egress_spec == DROP_PORT:
            return
        self._set(p, sm["instance_type"], NORMAL)
        self._enqueue(p, egress_spec, now, work)

    def _replicate(
        self, p: Pkt, replicas: list[tuple[int, int]], now: int, work: deque[Any]
    ) -> None:
        """``SimpleSwitch::multicast``: one copy per (egress_port, rid)."""
        for port, rid in replicas:
            self._set(p, self.egress_rid, rid)
            self._enqueue(self._copy(p), port, now, work)

    def _enqueue(self, p: Pkt, port: int, now: int, work: deque[Any]) -> None:
        if self.priority is not None and p.f[self.priority.slot] != 0:
            _log.error("priority out of range (1 queue per port), dropping packet")
            return
        if self.queueing is not None:
            self._set(p, self.queueing["enq_timestamp"], now)
            self._set(p, self.queueing["enq_qdepth"], 0)
        work.append((False, p, port))

    def _egress_pass(self, p: Pkt, port: int, now: int, res: Any, work: deque[Any]) -> None:
        sm = self.sm
        self._set(p, self.eg_ts, now)
        if self.queueing is not None:
            enq = self.queueing["enq_timestamp"]
            self._set(p, self.queueing["deq_timedelta"], now - p.f[enq.slot])
            self._set(p, self.queueing["deq_qdepth"], 0)
            self._set(p, self.qid, 0)
        self._set(p, sm["egress_port"], port)
        self._set(p, sm["egress_spec"], DROP_PORT + 1)
        self._set(p, sm["packet_length"], p.plen)
        run_control(self._egress, p)
        if p.clone_sid:
            sid, fl = p.clone_sid & 0x7FFF, p.clone_fl
            p.clone_sid = p.clone_fl = 0
            replicas = self.mirror_sessions.get(sid)
            if replicas is not None:
                c = self._copy(p)
                c.exit = False
                self._reset_metadata(c)
                self._copy_field_list(c, p, fl)
                self._set(c, sm["instance_type"], EGRESS_CLONE)
                self._replicate(c, replicas, now, work)
        es = sm["egress_spec"]
        if p.f[es.slot] & ((1 << es.width) - 1) == DROP_PORT:
            return
        data = self._deparse(p)
        if p.recirc:
            c = self._fresh()
            self._copy_field_list(c, p, p.recirc)
            self._set(c, sm["instance_type"], RECIRC)
            c.plen = c.ilen = len(data)
            self._set(c, sm["packet_length"], len(data))
            work.append((True, c, data))
            return
        res.outputs.append((port, data))
