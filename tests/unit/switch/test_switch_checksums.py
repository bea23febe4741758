"""Checksum verification (parser end) and update (deparser start), as p4c emits them."""

from __future__ import annotations

import bmv2json as J
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from switch_probe import digest_of, probe, tcp_packet, udp_packet

from p4ctl.switch import Pipeline

H = J.hexv
IPV4_FIELDS = [
    "version",
    "ihl",
    "diffserv",
    "total_len",
    "identification",
    "flags",
    "frag_offset",
    "ttl",
    "protocol",
    "src_addr",
    "dst_addr",
]


SCALARS = [("rewrite", 8), ("l4_len", 16)]


def add_checksums(doc, verify: bool, update: bool) -> None:
    """verify_checksum / update_checksum on IPv4, update_checksum_with_payload on TCP."""
    J.scalars(doc, *SCALARS)
    doc["calculations"] += [
        {
            "name": "calc",
            "id": 0,
            "algo": "csum16",
            "input": [J.fld("ipv4", f) for f in IPV4_FIELDS],
        },
        {
            "name": "calc_0",
            "id": 1,
            "algo": "csum16",
            "input": [
                J.fld("ipv4", "src_addr"),
                J.fld("ipv4", "dst_addr"),
                {"type": "hexstr", "value": "0x00", "bitwidth": 8},
                J.fld("ipv4", "protocol"),
                J.fld("scalars", "l4_len"),
                *[
                    J.fld("tcp", f)
                    for f in [
                        "src_port",
                        "dst_port",
                        "seq_no",
                        "ack_no",
                        "data_offset",
                        "res",
                        "flags",
                        "window",
                        "urgent_ptr",
                    ]
                ],
                {"type": "payload", "value": None},
            ],
        },
    ]
    rewrite = J.op("==", J.fld("scalars", "rewrite"), H(1, 1))
    if verify:
        doc["checksums"].append(
            {
                "name": "cksum",
                "id": 0,
                "target": ["ipv4", "hdr_checksum"],
                "type": "generic",
                "calculation": "calc",
                "verify": True,
                "update": False,
                "if_cond": J.op("d2b", None, J.fld("ipv4", "$valid$")),
            }
        )
    if update:
        doc["checksums"] += [
            {
                "name": "cksum_0",
                "id": 1,
                "target": ["ipv4", "hdr_checksum"],
                "type": "generic",
                "calculation": "calc",
                "verify": False,
                "update": True,
                "if_cond": J.op("and", J.op("d2b", None, J.fld("ipv4", "$valid$")), rewrite),
            },
            {
                "name": "cksum_1",
                "id": 2,
                "target": ["tcp", "checksum"],
                "type": "generic",
                "calculation": "calc_0",
                "verify": False,
                "update": True,
                "if_cond": J.op("and", J.op("d2b", None, J.fld("tcp", "$valid$")), rewrite),
            },
        ]


def test_verify_sets_checksum_error(doc) -> None:
    add_checksums(doc, verify=True, update=False)
    pipe = probe(
        doc,
        [("err", 8), *SCALARS],
        [J.assign(J.fld("scalars", "err"), J.fld("standard_metadata", "checksum_error"))],
    )
    good = tcp_packet()
    assert digest_of(pipe, good)[0] == 0
    bad = bytearray(good)
    bad[24] ^= 0xFF  # IPv4 header checksum byte
    assert digest_of(pipe, bytes(bad))[0] == 1
    # the packet still goes out, unchanged (no update checksum here)
    assert pipe.process(bytes(bad), 1).outputs == [(0, bytes(bad))]


def test_nat_rewrite_updates_ipv4_and_tcp_checksums_with_payload(doc) -> None:
    add_checksums(doc, verify=True, update=True)
    J.run_actions(
        doc,
        "ingress",
        [
            J.assign(J.fld("scalars", "rewrite"), H(1, 1)),
            J.assign(
                J.fld("scalars", "l4_len"),
                J.op("&", J.op("-", J.fld("ipv4", "total_len"), H(20, 2)), H(0xFFFF, 2)),
            ),
            J.assign(J.fld("ipv4", "src_addr"), H(0xC0A80101, 4)),
            J.assign(J.fld("tcp", "src_port"), H(40000, 2)),
        ],
    )
    pipe = Pipeline.from_json(doc)
    ((_port, out),) = pipe.process(tcp_packet(payload=b"some odd payload!"), 1).outputs
    got = Ether(out)
    assert got[IP].src == "192.168.1.1" and got[TCP].sport == 40000
    fresh = got.copy()
    del fresh[IP].chksum
    del fresh[TCP].chksum
    fresh = Ether(bytes(fresh))
    assert (got[IP].chksum, got[TCP].chksum) == (fresh[IP].chksum, fresh[TCP].chksum)


def test_update_skipped_when_condition_false(doc) -> None:
    add_checksums(doc, verify=False, update=True)
    J.run_actions(doc, "ingress", [J.assign(J.fld("ipv4", "ttl"), H(9, 1))])  # rewrite stays 0
    pipe = Pipeline.from_json(doc)
    pkt = tcp_packet(ttl=64)
    ((_port, out),) = pipe.process(pkt, 1).outputs
    assert Ether(out)[IP].ttl == 9
    assert out[24:26] == pkt[24:26]  # stale checksum left as it was


def test_udp_is_not_touched_by_tcp_checksum(doc) -> None:
    add_checksums(doc, verify=False, update=True)
    J.run_actions(doc, "ingress", [J.assign(J.fld("scalars", "rewrite"), H(1, 1))])
    pipe = Pipeline.from_json(doc)
    pkt = udp_packet()
    ((_port, out),) = pipe.process(pkt, 1).outputs
    assert Ether(out)[UDP].chksum == Ether(pkt)[UDP].chksum
