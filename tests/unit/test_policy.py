"""Policy decisions: first match, defaults, prefixes, ports, NAT and reverse entries."""

from __future__ import annotations

import ipaddress
import textwrap

from hypothesis import given
from hypothesis import strategies as st

from p4ctl.config import parse_config
from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, FlowKey
from p4ctl.policy import Decision, Policy, reverse_of

TCP, UDP, ICMP = IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_ICMP


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def policy(text: str) -> Policy:
    """A Policy from the ``policy:`` section of a configuration (given dedented)."""
    doc = "devices: [{name: s1, address: '127.0.0.1:9559', device_id: 1}]\npolicy:\n"
    doc += textwrap.indent(textwrap.dedent(text), "  ")
    return Policy.from_config(parse_config(doc, "p.yaml").policy)


def decide(p: Policy, vrf: int, src: str, dst: str, proto: int = TCP, sport: int = 40000,
           dport: int = 80, in_port: int = 1) -> Decision:
    return p.decide(vrf, ip(src), ip(dst), proto, sport, dport, in_port)


ORDERED = policy("""\
    default: {action: drop}
    vrfs:
      0:
        default: {action: forward, port: 9}
        rules:
          - {name: block-host, src: 10.0.0.66, action: drop}
          - {name: web, src: 10.0.0.0/24, dst: 10.0.1.0/24, protocol: tcp,
             dst_ports: [80, 443, "8000-8080"], action: forward, port: 2}
          - {name: high-ports, protocol: udp, src_ports: "1024-65535", dst_ports: "5000-5001",
             action: forward, port: 3}
          - {name: from-port-4, in_ports: [4, 5], action: forward, port: 6}
          - {name: icmp, protocol: icmp, action: forward, port: 7}
          - {name: subnet, src: 10.0.0.0/24, action: forward, port: 8}
      1:
        rules:
          - {name: only-rule, dst: 192.168.0.0/16, action: forward, port: 1}
""")


def test_first_matching_rule_wins() -> None:
    assert decide(ORDERED, 0, "10.0.0.66", "10.0.1.1").rule == "block-host"  # before "web"
    assert decide(ORDERED, 0, "10.0.0.65", "10.0.1.1").rule == "web"
    assert decide(ORDERED, 0, "10.0.0.65", "10.0.1.1", dport=22).rule == "subnet"
    d = decide(ORDERED, 0, "10.0.0.65", "10.0.1.1")
    assert (d.kind, d.port, d.nat) == (ActionKind.FORWARD, 2, None)
    d = decide(ORDERED, 0, "10.0.0.66", "10.0.1.1")
    assert (d.kind, d.port, d.nat) == (ActionKind.DROP, None, None)


def test_vrf_default_then_global_default() -> None:
    d = decide(ORDERED, 0, "172.16.0.1", "172.16.0.2", dport=22)
    assert (d.rule, d.kind, d.port) == ("vrf0.default", ActionKind.FORWARD, 9)
    d = decide(ORDERED, 1, "172.16.0.1", "172.16.0.2")  # VRF 1 has no default of its own
    assert (d.rule, d.kind) == ("default", ActionKind.DROP)
    assert decide(ORDERED, 1, "172.16.0.1", "192.168.3.4").rule == "only-rule"
    d = decide(ORDERED, 99, "10.0.0.66", "10.0.1.1")  # a VRF without any policy
    assert (d.rule, d.kind) == ("default", ActionKind.DROP)
    assert ORDERED.vrfs == frozenset({0, 1})


def test_prefix_boundaries() -> None:
    for src, rule in (("10.0.0.0", "web"), ("10.0.0.255", "web"), ("10.0.1.0", "vrf0.default"),
                      ("9.255.255.255", "vrf0.default")):
        assert decide(ORDERED, 0, src, "10.0.1.1").rule == rule, src
    for dst, rule in (("10.0.1.0", "web"), ("10.0.1.255", "web"), ("10.0.2.0", "subnet")):
        assert decide(ORDERED, 0, "10.0.0.1", dst).rule == rule, dst


def test_port_sets_and_ranges() -> None:
    for dport, rule in ((80, "web"), (443, "web"), (8000, "web"), (8080, "web"), (81, "subnet"),
                        (7999, "subnet"), (8081, "subnet"), (442, "subnet")):
        assert decide(ORDERED, 0, "10.0.0.1", "10.0.1.1", dport=dport).rule == rule, dport
    for sport, dport, rule in ((1024, 5000, "high-ports"), (65535, 5001, "high-ports"),
                               (1023, 5000, "vrf0.default"), (2000, 5002, "vrf0.default")):
        assert decide(ORDERED, 0, "1.1.1.1", "2.2.2.2", UDP, sport, dport).rule == rule


def test_protocol_and_ingress_port() -> None:
    assert decide(ORDERED, 0, "1.1.1.1", "2.2.2.2", TCP, 1024, 5000).rule == "vrf0.default"
    assert decide(ORDERED, 0, "1.1.1.1", "2.2.2.2", ICMP, 7, 7).rule == "icmp"
    assert decide(ORDERED, 0, "1.1.1.1", "2.2.2.2", ICMP, 7, 7, in_port=5).rule == "from-port-4"
    assert decide(ORDERED, 0, "1.1.1.1", "2.2.2.2", in_port=4).port == 6
    assert decide(ORDERED, 0, "1.1.1.1", "2.2.2.2", in_port=3).rule == "vrf0.default"


def test_forward_and_drop_decisions_are_shared() -> None:
    a = decide(ORDERED, 0, "10.0.0.1", "10.0.1.1", sport=1)
    b = decide(ORDERED, 0, "10.0.0.2", "10.0.1.2", sport=2, dport=443)
    assert a is b
    assert decide(ORDERED, 7, "1.1.1.1", "1.1.1.2") is decide(ORDERED, 8, "3.3.3.3", "4.4.4.4")
    keys = [(0, ip("10.0.0.1") + i, ip("10.0.1.1"), TCP, 1000 + i, 80) for i in range(3)]
    reverses = {id(reverse_of(k, a, 1)[1]) for k in keys}
    assert len(reverses) == 1  # one reverse decision per (rule, ingress port)
    assert reverse_of(keys[0], a, 1)[1] is not reverse_of(keys[0], a, 4)[1]


NAT = policy("""\
    vrfs:
      0:
        rules:
          - {name: out, src: 10.0.0.0/24, action: snat, port: 2, to_address: 203.0.113.1}
          - {name: out-port, src: 10.0.9.0/24, protocol: udp, action: snat, port: 2,
             to_address: 203.0.113.2, to_port: 5353}
          - {name: web, dst: 203.0.113.10, protocol: tcp, dst_ports: 80, action: dnat, port: 1,
             to_address: 10.0.0.10, to_port: 8080}
          - {name: vip, dst: 203.0.113.11, action: dnat, port: 1, to_address: 10.0.0.11}
""")


def test_snat_forward_and_reverse() -> None:
    key = (0, ip("10.0.0.5"), ip("198.51.100.7"), TCP, 40000, 443)
    d = NAT.decide(*key, 1)
    assert (d.kind, d.port, d.rule) == (ActionKind.NAT, 2, "out")
    assert d.nat == (ip("203.0.113.1"), ip("198.51.100.7"), 40000, 443)  # source port kept
    rkey, rev = reverse_of(key, d, 1)
    assert rkey == (0, ip("198.51.100.7"), ip("203.0.113.1"), TCP, 443, 40000)
    # The reply goes out of the flow's ingress port with the destination put back.
    assert (rev.kind, rev.port, rev.rule) == (ActionKind.NAT, 1, "out")
    assert rev.nat == (ip("198.51.100.7"), ip("10.0.0.5"), 443, 40000)


def test_snat_with_port() -> None:
    key = (0, ip("10.0.9.5"), ip("198.51.100.7"), UDP, 40000, 53)
    d = NAT.decide(*key, 1)
    assert d.nat == (ip("203.0.113.2"), ip("198.51.100.7"), 5353, 53)
    rkey, rev = reverse_of(key, d, 1)
    assert rkey == (0, ip("198.51.100.7"), ip("203.0.113.2"), UDP, 53, 5353)
    assert rev.nat == (ip("198.51.100.7"), ip("10.0.9.5"), 53, 40000)


def test_dnat_forward_and_reverse() -> None:
    key = (0, ip("198.51.100.7"), ip("203.0.113.10"), TCP, 50000, 80)
    d = NAT.decide(*key, 2)
    assert (d.kind, d.port, d.rule) == (ActionKind.NAT, 1, "web")
    assert d.nat == (ip("198.51.100.7"), ip("10.0.0.10"), 50000, 8080)
    rkey, rev = reverse_of(key, d, 2)
    assert rkey == (0, ip("10.0.0.10"), ip("198.51.100.7"), TCP, 8080, 50000)
    # The reply's source is put back to the address the client talked to.
    assert (rev.port, rev.nat) == (2, (ip("203.0.113.10"), ip("198.51.100.7"), 80, 50000))


def test_dnat_keeps_ports_and_icmp_identifier() -> None:
    key = (0, ip("198.51.100.7"), ip("203.0.113.11"), ICMP, 77, 77)  # echo id 77
    d = NAT.decide(*key, 2)
    assert d.nat == (ip("198.51.100.7"), ip("10.0.0.11"), 77, 77)
    rkey, rev = reverse_of(key, d, 2)
    assert rkey == (0, ip("10.0.0.11"), ip("198.51.100.7"), ICMP, 77, 77)
    assert rev.nat == (ip("203.0.113.11"), ip("198.51.100.7"), 77, 77)


def test_nat_decisions_are_per_flow() -> None:
    a = NAT.decide(0, ip("10.0.0.5"), ip("198.51.100.7"), TCP, 1000, 2, 1)
    b = NAT.decide(0, ip("10.0.0.6"), ip("198.51.100.7"), TCP, 1001, 2, 1)
    assert a.nat != b.nat and a is not b


def test_snat_without_port_translation_can_share_a_reverse_key() -> None:
    """Two hosts with the same source port to the same peer meet in one reverse key.

    Static SNAT keeps the port, so the replies cannot be told apart: the caller
    must find the reverse key taken (the store's key index) and refuse the
    second flow rather than overwrite the first one's reverse entry.
    """
    a_key = (0, ip("10.0.0.5"), ip("198.51.100.7"), TCP, 1000, 2)
    b_key = (0, ip("10.0.0.6"), ip("198.51.100.7"), TCP, 1000, 2)
    a_rev = reverse_of(a_key, NAT.decide(*a_key, 1), 1)
    b_rev = reverse_of(b_key, NAT.decide(*b_key, 1), 1)
    assert a_rev[0] == b_rev[0]
    assert a_rev[1].nat != b_rev[1].nat


def test_forward_reverse_matches_flow_key_reverse() -> None:
    key = FlowKey(0, ip("10.0.0.1"), ip("10.0.1.1"), TCP, 40000, 80)
    d = ORDERED.decide(*key.values(), 1)
    rkey, rev = reverse_of(key.values(), d, 1)
    assert rkey == key.reverse().values()
    assert (rev.kind, rev.port, rev.rule) == (ActionKind.FORWARD, 1, "web")


def test_drop_reverse_is_a_drop() -> None:
    key = (0, ip("10.0.0.66"), ip("10.0.1.1"), TCP, 40000, 80)
    d = ORDERED.decide(*key, 1)
    rkey, rev = reverse_of(key, d, 1)
    assert rkey == (0, ip("10.0.1.1"), ip("10.0.0.66"), TCP, 80, 40000)
    assert rev is d and rev.kind is ActionKind.DROP and rev.port is None


def test_reverse_vrf_and_hand_made_decisions() -> None:
    d = Decision(FlowAction(ActionKind.FORWARD, 3), "manual")
    rkey, rev = reverse_of((5, 1, 2, UDP, 3, 4), d, 7, reverse_vrf=6)
    assert rkey == (6, 2, 1, UDP, 4, 3)
    assert (rev.kind, rev.port, rev.rule) == (ActionKind.FORWARD, 7, "manual")
    assert str(rev) == "forward(7) by manual"


def test_policy_from_example_config() -> None:
    from pathlib import Path

    from p4ctl.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "examples" / "p4ctl.yaml")
    p = Policy.from_config(cfg.policy)
    assert decide(p, 0, "10.0.0.5", "198.51.100.9", in_port=1).nat == (
        ip("203.0.113.1"), ip("198.51.100.9"), 40000, 80)
    assert decide(p, 0, "10.0.0.5", "10.0.1.9", in_port=1).port == 2
    assert decide(p, 0, "10.0.1.9", "10.0.0.5", in_port=2).port == 1
    assert decide(p, 0, "198.51.100.9", "203.0.113.10", in_port=2).nat == (
        ip("198.51.100.9"), ip("10.0.0.10"), 40000, 8080)
    assert decide(p, 0, "10.0.0.5", "10.0.1.9", in_port=3).kind is ActionKind.DROP


# --- the pair carries packets there and back ------------------------------------------------

addresses = st.integers(0, (1 << 32) - 1)
ports = st.integers(0, 65535)


def rewrite(packet: tuple[int, int, int, int], decision: Decision) -> tuple[int, int, int, int]:
    """What the switch does to (src, dst, sport, dport) under ``decision``."""
    return decision.nat if decision.nat is not None else packet


@given(addresses, addresses, st.sampled_from([TCP, UDP]), ports, ports, st.integers(0, 510),
       addresses, st.one_of(st.none(), st.integers(1, 65535)), st.booleans())
def test_nat_pair_round_trip(src: int, dst: int, proto: int, sport: int, dport: int,
                             in_port: int, to_addr: int, to_port: int | None,
                             snat: bool) -> None:
    """A reply to the translated packet hits the reverse key and is translated back."""
    rule = (f"{{action: {'snat' if snat else 'dnat'}, port: 2, protocol: {proto}, "
            f"to_address: {ipaddress.IPv4Address(to_addr)}"
            + (f", to_port: {to_port}" if to_port is not None else "") + "}")
    p = policy(f"vrfs: {{3: {{rules: [{rule}]}}}}\n")
    key = (3, src, dst, proto, sport, dport)
    d = p.decide(*key, in_port)
    out_src, out_dst, out_sport, out_dport = rewrite((src, dst, sport, dport), d)
    reply = (out_dst, out_src, out_dport, out_sport)  # the peer answers the packet it got
    rkey, rev = reverse_of(key, d, in_port)
    assert rkey == (3, reply[0], reply[1], proto, reply[2], reply[3])
    assert rewrite(reply, rev) == (dst, src, dport, sport)  # the originator sees its peer
    assert rev.port == in_port
