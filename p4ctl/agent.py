"""The flow agent: from a new-flow digest to a paired, installed flow.

What Contrail's vRouter agent does on a new flow, over an ONOS-style
authoritative store. For each new-flow digest message:

1. decode it (a malformed message is counted, logged and skipped);
2. skip it when the flow is already pending or installed (the switch may
   report a flow again before its entries land); a FAILED record is retried;
3. apply the limits on active flows per ingress port and per VRF;
4. ask policy for the forward action and derive the reverse entry (swapped
   tuple; for NAT the translated tuple), refusing a reverse key that belongs
   to another flow;
5. take a token of the new-flows-per-second limit, so that only a flow that
   passed the checks above spends the rate. Excess over any limit is dropped
   and counted (the digest is still acknowledged, so the switch reports the
   flow again later);
6. allocate both slots (main bucket, else its overflow list; neither: FAILED
   with reason TABLE_FULL);
7. install each flow as a two-stage batch, reverse entry first, so the
   reply never arrives before its entry. The batches go through one
   :class:`~p4ctl.flows.batch.BatchPipeline`: each write round carries the
   forward entries of the flows whose reverse entries the previous round
   confirmed and the reverse entries of every flow that arrived meanwhile
   (one flow alone goes at once; a burst goes in large writes). Entries
   become ADDED when the switch confirms them; a pair whose forward entry
   was rejected has its reverse entry removed again, a refused entry gives
   up its slot, and one flow's failure does not touch the others.

The digest list is acknowledged (by the client) when this handler returns,
that is after the writes were acknowledged.

Hold mode: packets the switch sends to the CPU for a pending flow are queued
per flow (bounded, as vRouter holds a few per flow) and re-injected through
the flow table with packet-out once the flow is installed; those of a flow
that fails are dropped and counted.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from p4ctl.flows.batch import BatchPipeline, FlowOp, OpKind
from p4ctl.flows.entry import FlowEntry
from p4ctl.flows.key import FlowKey, bucket_hash_of, pack_key
from p4ctl.flows.state import LIVE, FlowState
from p4ctl.flows.store import FlowStore
from p4ctl.log_throttle import LogThrottle
from p4ctl.metrics import Collector, Labels, Metrics
from p4ctl.policy import Policy, reverse_of
from p4ctl.provider import SwitchFlowProvider

log = logging.getLogger(__name__)



@dataclass(slots=True)
class AgentLimits:
    max_new_flows_per_second: int = 0  # 0: unlimited
    max_flows_per_port: int = 0
    max_flows_per_vrf: int = 0
    hold_queue: int = 3  # packets held per pending flow
    max_held_flows: int = 4096  # flows with held packets at once
    #: seconds a held packet may wait: a flow refused (by a limit) or slow to
    #: install has its packets dropped, not sent late
    hold_timeout_s: float = 2.0


@dataclass(slots=True)
class _Held:
    """Packets held for one pending flow, since the first of them came."""

    since: float
    packets: list[bytes]


class TokenBucket:
    """``rate`` tokens a second, up to one second's worth banked."""

    __slots__ = ("_clock", "_last", "_tokens", "rate")

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._tokens = float(rate)
        self._last = clock()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class _Pending:
    """A flow of the digest list being handled: its two entries."""

    forward: FlowEntry
    reverse: FlowEntry | None
    vrf: int
    in_port: int


@dataclass(slots=True)
class AgentCounters:
    digests: int = 0
    malformed: int = 0
    duplicates: int = 0
    installed: int = 0
    failed: int = 0
    table_full: int = 0
    rate_limited: int = 0
    port_limited: int = 0
    vrf_limited: int = 0
    reverse_conflicts: int = 0
    hash_mismatches: int = 0
    held: int = 0
    hold_dropped: int = 0
    reinjected: int = 0
    flow_events: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)


class FlowAgent:
    """Handles new-flow digests for one device."""

    def __init__(
        self,
        store: FlowStore,
        policy: Policy,
        provider: SwitchFlowProvider,
        *,
        port_vrf: Mapping[int, int] | None = None,
        limits: AgentLimits | None = None,
        send_packet_out: Callable[..., Any] | None = None,
        metrics: Metrics | None = None,
        device: str = "",
        clock: Callable[[], float] = time.monotonic,
        write_batch_size: int = 1000,
    ) -> None:
        """``device``: the name the metrics' series carry (label ``device``), so
        that several devices' agents can share one registry."""
        self.store = store
        self.policy = policy
        self.provider = provider
        self.port_vrf = dict(port_vrf or {})
        self.limits = limits or AgentLimits()
        self.send_packet_out = send_packet_out
        self.clock = clock
        self.counters = AgentCounters()
        self._bucket = TokenBucket(self.limits.max_new_flows_per_second, clock)
        self._per_port: dict[int, int] = {}
        self._per_vrf: dict[int, int] = {}
        self._held: OrderedDict[int, _Held] = OrderedDict()
        #: new flows admitted under each policy rule (or VRF default), by its name
        self.decisions_by_rule: dict[str, int] = {}
        self._conflict_log = LogThrottle()
        self._failure_log = LogThrottle()
        # a round is one WriteRequest at most, so rounds can overlap on the wire
        self._pipeline = BatchPipeline(store, provider, max_ops=write_batch_size)
        self._metrics = metrics
        if metrics is not None:
            self._register_metrics(metrics, (("device", device),) if device else ())

    # -- new flows ---------------------------------------------------------
    async def on_new_flows(self, digest: Any) -> None:
        """Digest-list handler: install every new flow of the list, each as a staged batch."""
        self.counters.digests += 1
        pending: list[_Pending] = []
        for message in digest.data:
            try:
                item = self._admit(message)
            except (KeyError, TypeError, ValueError) as exc:
                self.counters.malformed += 1
                log.warning("malformed new-flow digest message %r: %s", message, exc)
                continue
            if item is not None:
                pending.append(item)
        if pending:
            await self._install(pending)

    def _admit(self, message: Mapping[str, int]) -> _Pending | None:
        # keys as packed integers: a FlowKey object costs more than the rest of
        # the checks, and the store indexes by the integer anyway
        fields = (message["vrf"], message["src_addr"], message["dst_addr"],
                  message["proto"], message["src_port"], message["dst_port"])
        key = pack_key(fields)
        vrf = fields[0]
        in_port = int(message["ingress_port"])
        switch_hash = int(message["bucket_hash"])
        counters = self.counters
        store = self.store
        bucket_hash = bucket_hash_of(key)
        if switch_hash != bucket_hash:
            counters.hash_mismatches += 1
            log.error("bucket hash of %s: switch %#010x, controller %#010x",
                      FlowKey.unpack(key), switch_hash, bucket_hash)
        existing = store.get(key)
        if existing is not None:
            if existing.state in LIVE:
                counters.duplicates += 1
                return None
            self._drop_record(existing)  # FAILED earlier: try again
        limits = self.limits
        per_port = self._per_port.get(in_port, 0)
        if limits.max_flows_per_port and per_port >= limits.max_flows_per_port:
            counters.port_limited += 1
            return self._refused(key)
        if limits.max_flows_per_vrf and self._per_vrf.get(vrf, 0) >= limits.max_flows_per_vrf:
            counters.vrf_limited += 1
            return self._refused(key)

        decision = self.policy.decide(*fields, in_port)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("flow %s from port %d: %s", FlowKey.unpack(key), in_port, decision)
        egress = decision.port
        reverse_vrf = self.port_vrf.get(egress, 0) if egress is not None else vrf
        rev_fields, rev_decision = reverse_of(fields, decision, in_port, reverse_vrf=reverse_vrf)
        rev_key = pack_key(rev_fields)
        # a flow whose reply has its own key (not, say, a packet to itself)
        two_way = rev_key != key
        if two_way:
            other = store.get(rev_key)
            if other is not None:
                if other.state in LIVE:
                    counters.reverse_conflicts += 1
                    more = self._conflict_log.allow(self.clock())
                    if more is not None:
                        log.warning("flow %s (%s): reverse key %s belongs to another flow%s",
                                    FlowKey.unpack(key), decision.rule,
                                    FlowKey.unpack(rev_key), more)
                    return self._refused(key)
                self._drop_record(other)
        # a flow refused above is not a new flow: it does not spend the rate
        if not self._bucket.take():
            counters.rate_limited += 1
            return self._refused(key)
        now = self.clock()
        forward = store.allocate(key, decision.action, in_port=in_port,
                                 bucket_hash=bucket_hash, now=now)
        if forward is None:
            self._table_full(key, decision.action, in_port, now)
            return None
        reverse = None
        if two_way:
            reverse = store.allocate(rev_key, rev_decision.action, in_port=egress or 0,
                                     forward=False, now=now)
            if reverse is None:
                store.discard(forward)
                self._table_full(key, decision.action, in_port, now)
                return None
            store.pair(forward, reverse)
        self._per_port[in_port] = self._per_port.get(in_port, 0) + 1
        self._per_vrf[vrf] = self._per_vrf.get(vrf, 0) + 1
        # a new flow, admitted: counted once under its rule, whatever its writes
        by_rule = self.decisions_by_rule
        by_rule[decision.rule] = by_rule.get(decision.rule, 0) + 1
        return _Pending(forward, reverse, vrf, in_port)

    def _refused(self, key: int) -> None:
        """A flow over a limit is not installed: its held packets go (the next report
        of the flow may be admitted, and its packets would then be stale)."""
        if self._held:
            self._drop_held(key)

    def _table_full(self, key: int, action: Any, in_port: int, now: float) -> None:
        self.counters.table_full += 1
        self._count_failure("TABLE_FULL")
        self.store.add_failed(key, action, "TABLE_FULL", in_port=in_port, now=now)
        self._drop_held(key)

    def _drop_held(self, key: int) -> None:
        """Throw away the packets held for a flow that will not be installed, counted."""
        held = self._held.pop(key, None)
        if held is not None:
            self.counters.hold_dropped += len(held.packets)

    async def _install(self, pending: list[_Pending]) -> None:
        results = await self._pipeline.submit_all([
            ([FlowOp(OpKind.ADD, p.reverse)] if p.reverse is not None else [],
             [FlowOp(OpKind.ADD, p.forward)])
            for p in pending
        ])
        cleanup: list[FlowOp] = []
        failed: list[tuple[FlowEntry, str]] = []
        for p, result in zip(pending, results, strict=True):
            fwd, rev = p.forward, p.reverse
            if result.ok:
                self.counters.installed += 1
                if self._held:  # packets wait only in hold mode
                    await self._release_held(fwd)
                continue
            self.counters.failed += 1
            # the first refusal is the cause; a later stage's is ABORTED for it
            reason = result.failed[0].reason
            self._count_failure(reason)
            failed.append((fwd, reason))
            self._release_limits(p.in_port, p.vrf)
            if self.store.get(fwd.key) is fwd:  # not a retry's by now: its packets are its own
                self._drop_held(fwd.key)
            if rev is not None and rev.state is FlowState.ADDED:
                self.store.move(rev, FlowState.PENDING_REMOVE)
                cleanup.append(FlowOp(OpKind.REMOVE, rev))
            if fwd.state is FlowState.ADDED:
                self.store.move(fwd, FlowState.PENDING_REMOVE)
                cleanup.append(FlowOp(OpKind.REMOVE, fwd))
        if failed:
            more = self._failure_log.allow(self.clock())
            if more is not None:
                first, reason = failed[0]
                log.warning("%d of %d new flows not installed; the first, %s: %s%s",
                            len(failed), len(pending), first.flow_key, reason, more)
        if cleanup:
            await self._pipeline.submit([cleanup])

    def _drop_record(self, entry: FlowEntry) -> None:
        """Forget a FAILED record (and its FAILED partner) before a retry."""
        for e in (entry, entry.partner):
            if e is not None and e.state is FlowState.FAILED:
                self.store.move(e, FlowState.REMOVED)

    def _release_limits(self, in_port: int, vrf: int) -> None:
        self._per_port[in_port] = max(0, self._per_port.get(in_port, 0) - 1)
        self._per_vrf[vrf] = max(0, self._per_vrf.get(vrf, 0) - 1)

    def flow_removed(self, forward: FlowEntry) -> None:
        """Tell the agent a flow it installed is gone (aging, eviction), for the limits."""
        self._release_limits(forward.in_port, forward.flow_key.vrf)

    def _count_failure(self, reason: str) -> None:
        code = reason.split(":", 1)[0]
        by = self.counters.failures_by_reason
        by[code] = by.get(code, 0) + 1

    # -- flow events ---------------------------------------------------------
    async def on_flow_events(self, digest: Any) -> None:
        """FIN/RST newly seen on an entry: record the TCP state on the entry."""
        for message in digest.data:
            try:
                flow_id = int(message["flow_id"])
                flags = int(message["tcp_flags"])
            except (KeyError, TypeError, ValueError) as exc:
                self.counters.malformed += 1
                log.warning("malformed flow-event digest message %r: %s", message, exc)
                continue
            self.counters.flow_events += 1
            entry = self.store.by_flow_id(flow_id)
            if entry is not None:
                entry.tcp_state |= flags

    # -- hold mode -------------------------------------------------------------
    async def on_packet_in(self, packet: Any) -> None:
        """Queue a packet held for a pending flow; re-inject it if the flow is already in."""
        in_port = int(packet.metadata.get("ingress_port", 0))
        key = parse_flow_key(packet.payload, self.port_vrf.get(in_port, 0))
        if key is None:
            self.counters.hold_dropped += 1
            return
        packed = key.packed()
        entry = self.store.get(packed)
        if entry is not None and entry.state is FlowState.ADDED:
            await self._reinject(packet.payload, in_port)
            return
        if entry is not None and entry.state is FlowState.FAILED:
            self.counters.hold_dropped += 1
            return
        held = self._held.get(packed)
        if held is None:
            if len(self._held) >= self.limits.max_held_flows:
                self.counters.hold_dropped += len(self._held.popitem(last=False)[1].packets)
            held = self._held[packed] = _Held(self.clock(), [])
        if len(held.packets) >= self.limits.hold_queue:
            self.counters.hold_dropped += 1
            return
        held.packets.append(packet.payload)
        self.counters.held += 1

    async def _release_held(self, forward: FlowEntry) -> None:
        held = self._held.pop(forward.key, None)
        if held is None:
            return
        if self.clock() - held.since > self.limits.hold_timeout_s:
            self.counters.hold_dropped += len(held.packets)  # too late to be of use
            return
        for payload in held.packets:
            await self._reinject(payload, forward.in_port)

    async def _reinject(self, payload: bytes, in_port: int) -> None:
        if self.send_packet_out is None:
            self.counters.hold_dropped += 1
            return
        try:
            await self.send_packet_out(payload, egress_port=0, ingress_port=in_port, mode=0)
            self.counters.reinjected += 1
        except Exception as exc:  # the controller must survive a failed packet-out
            self.counters.hold_dropped += 1
            log.warning("packet-out failed: %s", exc)

    # -- metrics -------------------------------------------------------------
    def _register_metrics(self, m: Metrics, device: Labels) -> None:
        c = self.counters

        def by(label: str, counts: Callable[[], Iterable[tuple[str, float]]]) -> Collector:
            return lambda: [((*device, (label, k)), n) for k, n in counts()]

        events = ("digests", "malformed", "duplicates", "installed", "failed", "table_full",
                  "rate_limited", "port_limited", "vrf_limited", "reverse_conflicts",
                  "hash_mismatches", "held", "hold_dropped", "reinjected", "flow_events")
        m.counter("agent_events_total", "New-flow agent events since start (by event)",
                  collect=by("event", lambda: [(n, getattr(c, n)) for n in events]))
        m.counter("flow_failures_total", "Flows that failed to install, by reason",
                  collect=by("reason", lambda: c.failures_by_reason.items()))
        m.gauge("flow_entries", "Flow entries in the store, by state",
                collect=by("state", lambda: self.store.counts().items()))
        m.counter("policy_decisions_total",
                  "New flows admitted under each policy rule (or VRF default), by rule name",
                  collect=by("rule", lambda: self.decisions_by_rule.items()))


#: bytes of the L4 header the data plane's parser extracts, by IP protocol
_L4_HEADER = {6: 20, 17: 8, 1: 8}


def parse_flow_key(frame: bytes, vrf: int) -> FlowKey | None:
    """The flow key of an Ethernet/IPv4 frame, as the data plane builds it; None if not IPv4."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    proto = ip[9]
    src = int.from_bytes(ip[12:16], "big")
    dst = int.from_bytes(ip[16:20], "big")
    frag = int.from_bytes(ip[6:8], "big") & 0x1FFF
    sport = dport = 0
    l4 = ip[ihl:]
    # The parser extracts a whole header or none (a frame cut short keeps ports
    # 0 in the switch's key): TCP's 20 bytes, UDP's and ICMP's 8.
    if ihl == 20 and frag == 0 and len(l4) >= _L4_HEADER.get(proto, 1 << 16):
        if proto in (6, 17):
            sport = int.from_bytes(l4[0:2], "big")
            dport = int.from_bytes(l4[2:4], "big")
        elif l4[0] in (0, 8):  # ICMP echo reply or request: the identifier
            sport = dport = int.from_bytes(l4[4:6], "big")
    return FlowKey(vrf, src, dst, proto, sport, dport)
