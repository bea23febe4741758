"""Policy: which action a new flow gets, and what its reverse entry is.

Rules come from the configuration (:class:`p4ctl.config.PolicyConfig`): per
VRF an ordered list, first match wins, then the VRF's default, then the global
default. This runs once per new flow (about 10k flows/s at full rate), so the
rules are compiled once: prefixes to ``(network, mask)`` integers, port sets
to tuples of ranges, protocols to numbers. The result of a forward or drop
rule does not depend on the key, so each such rule hands out one shared
:class:`Decision` (and one per ingress port for its reverse direction):
half a million flows do not allocate half a million decisions. NAT results
carry the translated tuple, so they are built per flow.

Actions are :class:`p4ctl.flows.entry.FlowAction` values, exactly what the
flow store keeps and the pipeline writes (the NAT action rewrites all four of
source/destination address and port, an untranslated field keeping its value,
as ``flow_nat`` in ``p4src/flowcache_v1model.p4`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p4ctl.config.model import ActionSpec, PolicyConfig, PolicyRule, PortSet, RuleAction
from p4ctl.flows.entry import DROP, ActionKind, FlowAction

#: A flow key as plain integers: (vrf, src_addr, dst_addr, proto, src_port, dst_port),
#: the field order of :class:`p4ctl.flows.key.FlowKey`.
KeyFields = tuple[int, int, int, int, int, int]

GLOBAL_DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of policy for one direction of a flow.

    ``action`` is what the switch does (kind, egress port, NAT rewrite) and
    ``rule`` names the rule or default that decided, for logs and metrics.
    Decisions of forward rules remember their reverse per ingress port
    (``_reverse``), so that those are shared too.
    """

    action: FlowAction
    rule: str
    _reverse: dict[int, Decision] | None = field(default=None, compare=False, repr=False)

    @property
    def kind(self) -> ActionKind:
        return self.action.kind

    @property
    def port(self) -> int | None:
        """The egress port (None for a drop)."""
        return None if self.action.kind is ActionKind.DROP else self.action.port

    @property
    def nat(self) -> tuple[int, int, int, int] | None:
        """For NAT, the packet's (src_addr, dst_addr, src_port, dst_port) after translation."""
        action = self.action
        if action.kind is not ActionKind.NAT:
            return None
        return (action.nat_src_addr, action.nat_dst_addr, action.nat_src_port,
                action.nat_dst_port)

    def __str__(self) -> str:
        return f"{self.action} by {self.rule}"


class _Outcome:
    """A compiled action: a shared decision, or the recipe of a per-flow NAT decision."""

    __slots__ = ("decision", "name", "port", "snat", "to_addr", "to_port")

    def __init__(self, spec: ActionSpec, name: str) -> None:
        self.name = name
        self.port = spec.port if spec.port is not None else 0
        self.snat = spec.action is RuleAction.SNAT
        self.to_addr = int(spec.to_address) if spec.to_address is not None else 0
        self.to_port = spec.to_port if spec.to_port is not None else -1  # -1: keep the port
        self.decision: Decision | None
        if spec.action is RuleAction.DROP:
            self.decision = Decision(DROP, name)
        elif spec.action is RuleAction.FORWARD:
            self.decision = Decision(FlowAction(ActionKind.FORWARD, self.port), name, {})
        else:
            self.decision = None

    def decide(self, src_addr: int, dst_addr: int, src_port: int, dst_port: int) -> Decision:
        decision = self.decision
        if decision is not None:
            return decision
        if self.snat:
            new_port = src_port if self.to_port < 0 else self.to_port
            action = FlowAction(ActionKind.NAT, self.port, self.to_addr, dst_addr, new_port,
                                dst_port)
        else:
            new_port = dst_port if self.to_port < 0 else self.to_port
            action = FlowAction(ActionKind.NAT, self.port, src_addr, self.to_addr, src_port,
                                new_port)
        return Decision(action, self.name)


def _ranges(ports: PortSet) -> tuple[tuple[int, int], ...] | None:
    return None if ports.is_any else ports.ranges


def _in_ranges(port: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    # A plain loop: about twice as fast as any() over a generator on this hot path.
    for low, high in ranges:  # noqa: SIM110
        if low <= port <= high:
            return True
    return False


class _Rule:
    """A rule compiled to integers; ``None`` / -1 / mask 0 stand for "any"."""

    __slots__ = ("dst_mask", "dst_net", "dst_ports", "in_ports", "outcome", "proto", "src_mask",
                 "src_net", "src_ports")

    def __init__(self, rule: PolicyRule) -> None:
        self.src_net = int(rule.src.network_address)
        self.src_mask = int(rule.src.netmask)
        self.dst_net = int(rule.dst.network_address)
        self.dst_mask = int(rule.dst.netmask)
        self.proto = rule.protocol if rule.protocol is not None else -1
        self.src_ports = _ranges(rule.src_ports)
        self.dst_ports = _ranges(rule.dst_ports)
        self.in_ports = rule.in_ports
        self.outcome = _Outcome(rule.then, rule.name)


class _Vrf:
    __slots__ = ("default", "rules")

    def __init__(self, rules: tuple[_Rule, ...], default: _Outcome | None) -> None:
        self.rules = rules
        self.default = default


class Policy:
    """Compiled policy; :meth:`decide` is the per-new-flow call."""

    __slots__ = ("_default", "_vrfs")

    def __init__(self, config: PolicyConfig) -> None:
        self._default = _Outcome(config.default, GLOBAL_DEFAULT)
        self._vrfs: dict[int, _Vrf] = {}
        for vrf, vrf_policy in config.vrfs.items():
            default = None
            if vrf_policy.default is not None:
                default = _Outcome(vrf_policy.default, f"vrf{vrf}.default")
            self._vrfs[vrf] = _Vrf(tuple(_Rule(r) for r in vrf_policy.rules), default)

    @classmethod
    def from_config(cls, config: PolicyConfig) -> Policy:
        return cls(config)

    @property
    def vrfs(self) -> frozenset[int]:
        """The VRFs that have rules or a default of their own."""
        return frozenset(self._vrfs)

    def decide(
        self,
        vrf: int,
        src_addr: int,
        dst_addr: int,
        proto: int,
        src_port: int,
        dst_port: int,
        ingress_port: int,
    ) -> Decision:
        """The first matching rule of ``vrf``, else its default, else the global default."""
        table = self._vrfs.get(vrf)
        if table is not None:
            for rule in table.rules:
                if (
                    (src_addr & rule.src_mask) != rule.src_net
                    or (dst_addr & rule.dst_mask) != rule.dst_net
                    or (rule.proto >= 0 and rule.proto != proto)
                    or (rule.in_ports is not None and ingress_port not in rule.in_ports)
                    or (rule.src_ports is not None and not _in_ranges(src_port, rule.src_ports))
                    or (rule.dst_ports is not None and not _in_ranges(dst_port, rule.dst_ports))
                ):
                    continue
                return rule.outcome.decide(src_addr, dst_addr, src_port, dst_port)
            if table.default is not None:
                return table.default.decide(src_addr, dst_addr, src_port, dst_port)
        return self._default.decide(src_addr, dst_addr, src_port, dst_port)


def reverse_of(
    key_fields: KeyFields,
    decision: Decision,
    ingress_port: int,
    *,
    reverse_vrf: int | None = None,
) -> tuple[KeyFields, Decision]:
    """The reverse (reply) entry of a flow: its key and its decision.

    ``key_fields`` and ``decision`` are the forward direction's key and
    decision; ``ingress_port`` is where the forward direction came in, which
    is where replies go out. The reply arrives as the forward packet *left*
    the switch, with addresses and ports swapped:

    - forward/drop: key ``(vrf, dst, src, proto, dport, sport)``; a drop's
      reverse is a drop too;
    - NAT with translated ``(src', dst', sport', dport')``: key
      ``(vrf, dst', src', proto, dport', sport')``, rewritten to
      ``(dst, src, dport, sport)``. For SNAT that is
      ``(vrf, dst, snat_addr, proto, dport, snat_port)`` with the destination
      put back to the original source; for DNAT
      ``(vrf, dnat_addr, src, proto, dnat_port, sport)`` with the source put
      back to the original destination.

    ``reverse_vrf`` is the VRF of the egress port when it differs from the
    forward key's.

    Static SNAT (one address, the port kept or one fixed port) can map two
    flows onto the same reverse key (two hosts using the same source port
    towards the same peer). This function cannot know; the caller must check
    that the reverse key is free in the flow store and refuse the flow if not,
    rather than overwrite another flow's reverse entry.
    """
    vrf, src, dst, proto, sport, dport = key_fields
    if reverse_vrf is not None:
        vrf = reverse_vrf
    action = decision.action
    kind = action.kind
    if kind is ActionKind.NAT:
        reverse_key = (vrf, action.nat_dst_addr, action.nat_src_addr, proto,
                       action.nat_dst_port, action.nat_src_port)
        undo = FlowAction(ActionKind.NAT, ingress_port, dst, src, dport, sport)
        return reverse_key, Decision(undo, decision.rule)
    reverse_key = (vrf, dst, src, proto, dport, sport)
    if kind is ActionKind.DROP:
        return reverse_key, decision
    memo = decision._reverse
    if memo is None:  # a decision built by hand: nothing to share it with
        return reverse_key, Decision(FlowAction(ActionKind.FORWARD, ingress_port), decision.rule)
    reverse = memo.get(ingress_port)
    if reverse is None:
        reverse = Decision(FlowAction(ActionKind.FORWARD, ingress_port), decision.rule)
        memo[ingress_port] = reverse
    return reverse_key, reverse
