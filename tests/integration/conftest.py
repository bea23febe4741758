"""Shared fixtures for integration tests: the software switch, in-process, on loopback.

``software_switch`` is a started :class:`p4ctl.switch.device.SoftwareSwitch`
with no pipeline (P4Runtime on ``127.0.0.1:<free port>``, BMv2 Thrift on
``127.0.0.1:<free port>``, CPU port 255, device id 1); ``loaded_switch`` is
the same with the small test program of ``switch/fixtures`` committed;
``switch_factory`` starts switches with other options and stops them all at
the end of the test. ``p4rt_stub`` is a raw ``P4RuntimeStub`` on a
``grpc.aio`` channel to ``software_switch``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from p4.v1 import p4runtime_pb2_grpc

from p4ctl.switch.device import SoftwareSwitch

SWITCH_FIXTURES = Path(__file__).resolve().parent / "switch" / "fixtures"
TEST_P4INFO = SWITCH_FIXTURES / "switch_test.p4info.txtpb"
TEST_JSON = SWITCH_FIXTURES / "switch_test.json"
DEVICE_ID = 1
CPU_PORT = 255


@pytest.fixture
async def switch_factory() -> AsyncIterator[Callable[..., Awaitable[SoftwareSwitch]]]:
    """``await switch_factory(**SoftwareSwitch kwargs, pipeline=True)`` -> a started switch."""
    started: list[SoftwareSwitch] = []

    async def make(*, pipeline: bool = False, **kwargs: Any) -> SoftwareSwitch:
        kwargs.setdefault("device_id", DEVICE_ID)
        kwargs.setdefault("grpc_address", "127.0.0.1:0")
        kwargs.setdefault("thrift_address", "127.0.0.1:0")
        kwargs.setdefault("cpu_port", CPU_PORT)
        sw = SoftwareSwitch(**kwargs)
        if pipeline:
            sw.preload(TEST_P4INFO, TEST_JSON)
        await sw.start()
        started.append(sw)
        return sw

    try:
        yield make
    finally:
        for sw in reversed(started):
            await sw.stop()


@pytest.fixture
async def software_switch(switch_factory) -> SoftwareSwitch:
    """A started software switch without a pipeline."""
    return await switch_factory()


@pytest.fixture
async def loaded_switch(switch_factory) -> SoftwareSwitch:
    """A started software switch running the test program of ``switch/fixtures``."""
    return await switch_factory(pipeline=True)


@pytest.fixture
async def p4rt_stub(
    software_switch: SoftwareSwitch,
) -> AsyncIterator[p4runtime_pb2_grpc.P4RuntimeStub]:
    async with grpc.aio.insecure_channel(software_switch.grpc_target) as channel:
        yield p4runtime_pb2_grpc.P4RuntimeStub(channel)
