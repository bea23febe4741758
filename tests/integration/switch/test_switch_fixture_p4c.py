"""The hand-written test fixture agrees with what p4c makes of its source (where p4c exists)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import FIXTURES, JSON, P4INFO, Client, canon, frame, pipeline_config

from p4ctl.switch.device import load_p4info

P4C = shutil.which("p4c-bm2-ss")
pytestmark = [
    pytest.mark.p4c,
    pytest.mark.skipif(P4C is None, reason="p4c-bm2-ss is not on PATH"),
]


def _names(p4info) -> dict[str, list[str]]:
    return {
        "tables": sorted(t.preamble.name for t in p4info.tables),
        "actions": sorted(a.preamble.name for a in p4info.actions),
        "counters": sorted(c.preamble.name for c in p4info.counters),
        "direct_counters": sorted(c.preamble.name for c in p4info.direct_counters),
        "registers": sorted(r.preamble.name for r in p4info.registers),
        "digests": sorted(d.preamble.name for d in p4info.digests),
        "controller": sorted(c.preamble.name for c in p4info.controller_packet_metadata),
    }


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("p4c")
    subprocess.run(
        [P4C, "--arch", "v1model", "-o", str(out / "switch_test.json"),
         "--p4runtime-files", str(out / "switch_test.p4info.txtpb"),
         str(FIXTURES / "switch_test.p4")],
        check=True, capture_output=True,
    )
    return load_p4info(out / "switch_test.p4info.txtpb"), (out / "switch_test.json").read_bytes()


def test_same_p4_objects(compiled) -> None:
    p4info, _ = compiled
    assert _names(p4info) == _names(P4INFO)


async def test_the_compiled_program_behaves_like_the_fixture(compiled, switch_factory) -> None:
    """Same forwarding and digest for both JSONs (ids come from each P4Info)."""
    for p4info, device_config in (compiled, (P4INFO, JSON)):
        sw = await switch_factory()
        ids = {t.preamble.name: t.preamble.id for t in p4info.tables}
        ids |= {a.preamble.name: a.preamble.id for a in p4info.actions}
        async with Client.of(sw) as c:
            await c.primary(1)
            await c.set_pipeline(config=pipeline_config(p4info, device_config))
            te = p4r.TableEntry(table_id=ids["TestIngress.l2"])
            te.match.add(field_id=1).exact.value = canon(2)
            te.action.action.action_id = ids["TestIngress.forward"]
            te.action.action.params.add(param_id=1, value=b"\x03")
            await c.insert(te)
            await sw.inject(1, frame(2))
            assert await sw.expect(3) == frame(2)
