"""Tables with P4 ``optional`` match fields over P4Runtime: the software switch and BMv2.

``fixtures/optional_test.p4`` (compiled by p4c, outputs committed next to it)
has a table written by the controller (an exact field and two optional
ones, one of 9 bits) and a const table. p4c writes optional keys as
"ternary" in the BMv2 JSON while the P4Info says OPTIONAL; PI turns an
optional value into a ternary match with an all-ones mask and an omitted
optional field into a wildcard, and reads them back in the optional form.

Every test runs against the software switch (in-process ports) and against
``simple_switch_grpc`` where it is on PATH (as root: veth pairs), through the
target helpers of the client's integration tests, so both answer the same
requests with the same packets, entries and codes. Every packet leaves on
port 3 with what matched written into its source address, and packets go in
on ports 1 and 2 only (a raw socket on a veth's host end also sees what it
sends).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.rpc import code_pb2
from p4.config.v1 import p4info_pb2
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import (
    FIXTURES,
    Client,
    canon,
    frame,
    pipeline_config,
    rpc_error,
    update,
    write_errors,
)

from p4ctl.switch.device import load_p4info

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "p4rt"))
from p4rt_helpers import Target, started_target

P4INFO = load_p4info(FIXTURES / "optional_test.p4info.txtpb")
JSON = (FIXTURES / "optional_test.json").read_bytes()
IDS = {t.preamble.name: t.preamble.id for t in P4INFO.tables}
IDS |= {a.preamble.name: a.preamble.id for a in P4INFO.actions}
OPT, OPT_CONST = IDS["OptIngress.opt"], IDS["OptIngress.opt_const"]
SET_TAG, MARK = IDS["OptIngress.set_tag"], IDS["OptIngress.mark"]
#: match field ids of OptIngress.opt (P4Info order)
DST, ETHER_TYPE, INGRESS_PORT = 1, 2, 3

HOST_A, HOST_B, HOST_C = 0x020000000002, 0x020000000003, 0x020000000004
IPV4, IPV6 = 0x0800, 0x86DD
OUT_PORT = 3
MISS = 0  # opt's default action: set_tag(0)


@pytest.fixture(params=["software", "bmv2"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    async with started_target(request.param, tmp_path) as switch:
        yield switch


@pytest.fixture
async def client(target: Target) -> AsyncIterator[Client]:
    """A primary client with the optional-match program installed."""
    async with Client(target.grpc_address) as c:
        await c.primary(1)
        await c.set_pipeline(config=pipeline_config(P4INFO, JSON))
        yield c


def opt_entry(
    dst: int,
    *,
    ether_type: int | None = None,
    ingress_port: int | None = None,
    priority: int,
    tag: int,
) -> p4r.TableEntry:
    """An entry of OptIngress.opt; an optional field left None is omitted (a wildcard)."""
    te = p4r.TableEntry(table_id=OPT, priority=priority)
    te.match.add(field_id=DST).exact.value = canon(dst)
    if ether_type is not None:
        te.match.add(field_id=ETHER_TYPE).optional.value = canon(ether_type)
    if ingress_port is not None:
        te.match.add(field_id=INGRESS_PORT).optional.value = canon(ingress_port)
    te.action.action.action_id = SET_TAG
    te.action.action.params.add(param_id=1, value=canon(tag))
    return te


def packet(dst: int, ether_type: int) -> bytes:
    return frame(dst, src=0x0A0000000001, ether_type=ether_type, payload=bytes(46))


async def tagged(target: Target, in_port: int, dst: int, ether_type: int, tag: int) -> None:
    """Send a frame in on ``in_port``; opt must have given it ``tag``.

    opt writes its tag into byte 4 of the source address; opt_const marks
    byte 5: 1 for IPv4 (its entry with a value), 2 otherwise (its ``_`` entry).
    """
    pkt = packet(dst, ether_type)
    await target.inject(in_port, pkt)
    got = await target.expect(OUT_PORT)
    assert (got[10], got[11]) == (tag, 1 if ether_type == IPV4 else 2)
    assert got[:10] + got[12 : len(pkt)] == pkt[:10] + pkt[12:]


def by_priority(entries: list[p4r.TableEntry]) -> list[p4r.TableEntry]:
    return sorted(entries, key=lambda e: -e.priority)


async def test_program_with_optional_fields_loads(client: Client) -> None:
    got = await client.stub.GetForwardingPipelineConfig(
        p4r.GetForwardingPipelineConfigRequest(device_id=1)
    )
    assert got.config.p4info == P4INFO
    kinds = {mf.name: mf.match_type for t in P4INFO.tables for mf in t.match_fields}
    assert kinds["hdr.ethernet.ether_type"] == p4info_pb2.MatchField.OPTIONAL
    json_kinds = {
        k["name"]: k["match_type"]
        for t in json.loads(JSON)["pipelines"][0]["tables"]
        for k in t["key"]
    }
    assert json_kinds["hdr.ethernet.ether_type"] == "ternary"  # p4c's form


async def test_values_and_wildcards_match_packets(client: Client, target: Target) -> None:
    by_type = opt_entry(HOST_A, ether_type=IPV4, priority=10, tag=1)  # any ingress port
    by_port = opt_entry(HOST_A, ingress_port=2, priority=20, tag=2)  # any EtherType
    both = opt_entry(HOST_B, ether_type=IPV6, ingress_port=1, priority=5, tag=3)
    neither = opt_entry(HOST_C, priority=1, tag=4)
    await client.insert(by_type, by_port, both, neither)

    await tagged(target, 1, HOST_A, IPV4, 1)  # by_type
    await tagged(target, 1, HOST_A, IPV6, MISS)  # neither entry of HOST_A
    await tagged(target, 2, HOST_A, IPV6, 2)  # by_port
    await tagged(target, 2, HOST_A, IPV4, 2)  # both match: by_port's priority wins
    await tagged(target, 1, HOST_B, IPV6, 3)  # both
    await tagged(target, 2, HOST_B, IPV6, MISS)  # another ingress port
    await tagged(target, 1, HOST_B, IPV4, MISS)  # another EtherType
    await tagged(target, 2, HOST_C, IPV4, 4)  # neither: wildcards only
    await tagged(target, 1, HOST_C, IPV6, 4)


async def test_read_back_is_what_was_written(client: Client) -> None:
    written = [
        opt_entry(HOST_A, ether_type=IPV4, priority=10, tag=1),
        opt_entry(HOST_A, ingress_port=0x1FF, priority=20, tag=2),  # all 9 bits
        opt_entry(HOST_B, ether_type=0, ingress_port=0, priority=5, tag=3),  # 0, not a wildcard
        opt_entry(HOST_C, priority=1, tag=4),
    ]
    await client.insert(*written)
    assert by_priority(await client.read_tables(OPT)) == by_priority(written)
    for te in written:  # one entry, by its key
        assert await client.read_tables(OPT, match=list(te.match), priority=te.priority) == [te]


async def test_modify_and_delete_find_entries_by_optional_key(
    client: Client, target: Target
) -> None:
    by_port = opt_entry(HOST_A, ingress_port=2, priority=20, tag=1)
    wildcard = opt_entry(HOST_A, priority=10, tag=2)
    await client.insert(by_port, wildcard)
    modified = opt_entry(HOST_A, ingress_port=2, priority=20, tag=3)
    await client.write(update(p4r.Update.MODIFY, table_entry=modified))
    await tagged(target, 2, HOST_A, IPV4, 3)
    await tagged(target, 1, HOST_A, IPV4, 2)
    await client.write(update(p4r.Update.DELETE, table_entry=wildcard))
    await tagged(target, 1, HOST_A, IPV4, MISS)
    assert await client.read_tables(OPT) == [modified]


async def test_optional_field_errors(client: Client) -> None:
    await client.insert(opt_entry(HOST_A, ether_type=IPV4, priority=10, tag=1))
    duplicate = opt_entry(HOST_A, ether_type=IPV4, priority=10, tag=2)
    as_ternary = opt_entry(HOST_A, priority=3, tag=2)
    fm = as_ternary.match.add(field_id=ETHER_TYPE)
    fm.ternary.value, fm.ternary.mask = canon(IPV4), b"\xff\xff"
    no_priority = opt_entry(HOST_B, ether_type=IPV4, priority=0, tag=2)
    too_wide = opt_entry(HOST_B, ingress_port=0x200, priority=4, tag=2)  # 10 bits
    missing = opt_entry(HOST_C, ingress_port=1, priority=9, tag=2)
    e = await rpc_error(client.write(
        *(update(p4r.Update.INSERT, table_entry=te)
          for te in (duplicate, as_ternary, no_priority, too_wide)),
        update(p4r.Update.DELETE, table_entry=missing),
    ))  # fmt: skip
    assert [err.canonical_code for err in write_errors(e)] == [
        code_pb2.ALREADY_EXISTS,
        code_pb2.INVALID_ARGUMENT,
        code_pb2.INVALID_ARGUMENT,
        code_pb2.INVALID_ARGUMENT,
        code_pb2.NOT_FOUND,
    ]


async def test_const_entries_read_in_the_optional_form(client: Client, target: Target) -> None:
    """p4c's const entries (a value with an all-ones mask, ``_`` with mask 0), as PI reads them."""
    first, second = by_priority(await client.read_tables(OPT_CONST))
    assert [(m.field_id, m.optional.value) for m in first.match] == [(1, canon(IPV4))]
    assert list(second.match) == []
    assert [(e.action.action.action_id, e.action.action.params[0].value)
            for e in (first, second)] == [(MARK, b"\x01"), (MARK, b"\x02")]  # fmt: skip
    await tagged(target, 1, HOST_C, IPV4, MISS)  # mark(1), checked by tagged
    await tagged(target, 1, HOST_C, IPV6, MISS)  # mark(2)


P4C = shutil.which("p4c")


@pytest.mark.p4c
@pytest.mark.skipif(P4C is None, reason="p4c is not on PATH")
async def test_a_fresh_p4c_compile_loads(software_switch, tmp_path: Path) -> None:
    """The committed files are p4c's output; a fresh compile loads the same way."""
    subprocess.run(
        [P4C, "--target", "bmv2", "--arch", "v1model", "-o", str(tmp_path),
         "--p4runtime-files", str(tmp_path / "p4info.txtpb"),
         str(FIXTURES / "optional_test.p4")],
        check=True, capture_output=True,
    )  # fmt: skip
    p4info = load_p4info(tmp_path / "p4info.txtpb")
    device_config = (tmp_path / "optional_test.json").read_bytes()
    async with Client.of(software_switch) as c:
        await c.primary(1)
        await c.set_pipeline(config=pipeline_config(p4info, device_config))
        te = opt_entry(HOST_A, ether_type=IPV4, priority=10, tag=1)
        await c.insert(te)
        assert await c.read_tables(OPT) == [te]
