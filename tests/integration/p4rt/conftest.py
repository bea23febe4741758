"""Targets for the client's integration tests: the software switch and, where installed, BMv2.

Every test that takes the ``target`` fixture runs twice: against the
project's software switch (in-process, real gRPC and Thrift on loopback) and
against ``simple_switch_grpc`` (skipped with the reason when the binary is not
on PATH). Both get the committed flow-cache pipeline pushed by the client
itself (SetForwardingPipelineConfig), as a controller would.

Packets: the software switch takes them in-process (``inject`` / ``expect``);
BMv2 gets veth pairs (ports 1..3) that the fixture creates and removes, and the
test sends and sniffs on the host ends through raw sockets (needs root).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from p4rt_helpers import BMv2Target, Target, software_switch_in_thread, started_target

from p4ctl.p4rt import P4RuntimeClient, PipelineConfig

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / "pipelines" / "flowcache"


@pytest.fixture(scope="session")
def flowcache() -> PipelineConfig:
    """The committed flow-cache pipeline (P4Info + BMv2 JSON)."""
    p4info, bmv2 = PIPELINE / "p4info.txtpb", PIPELINE / "bmv2.json"
    if not (p4info.exists() and bmv2.exists()):
        pytest.skip("the compiled pipeline (pipelines/flowcache/p4info.txtpb, bmv2.json) is absent")
    return PipelineConfig.bmv2(p4info, bmv2)


@pytest.fixture(params=["software", "bmv2"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "software":
        try:
            import p4ctl.switch.device  # noqa: F401
        except ImportError as exc:
            pytest.skip(f"the software switch is not importable: {exc}")
    async with started_target(request.param, tmp_path) as switch:
        yield switch


@pytest.fixture(params=["software", "bmv2"])
async def isolated_address(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Address of a switch whose own tasks are not on the test's event loop.

    The software switch runs on a loop in another thread, BMv2 in its own
    process: whatever task is left on the test's loop belongs to the client.
    """
    if request.param == "software":
        try:
            import p4ctl.switch.device  # noqa: F401
        except ImportError as exc:
            pytest.skip(f"the software switch is not importable: {exc}")
        async with software_switch_in_thread(device_id=1, grpc_address="127.0.0.1:0") as switch:
            yield switch.grpc_target
        return
    async with started_target("bmv2", tmp_path) as bmv2:
        assert isinstance(bmv2, BMv2Target)
        yield bmv2.grpc_address


@pytest.fixture
async def client(target: Target, flowcache: PipelineConfig) -> AsyncIterator[P4RuntimeClient]:
    """A connected primary client with the flow-cache pipeline installed."""
    c = target.client(flowcache, election_id=(0, 10))
    await c.connect()
    assert c.is_primary
    try:
        yield c
    finally:
        await c.close()
