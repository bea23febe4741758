"""The controller and the switch's state: configuration and flows written again when needed.

A switch that restarted, a replay the switch refused once, a controller that
started as backup, and one that lost primacy and got it back all end with the
switch holding the configuration and every installed flow. Real gRPC, the
software switch and its fault injection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from p4.v1 import p4runtime_pb2
from test_agent import CONFIG, Rig, rigged, udp

from p4ctl.config import parse_config
from p4ctl.controller import DeviceController
from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import FlowKey
from p4ctl.flows.state import FlowState
from p4ctl.metrics import Metrics
from p4ctl.p4rt.client import P4RuntimeClient
from p4ctl.p4rt.entities import TableEntry, Update, UpdateType
from p4ctl.p4rt.errors import P4RuntimeError
from p4ctl.pipeline import BUNDLED
from p4ctl.switch.device import SoftwareSwitch

FLOW = FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,5001,9")


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with rigged() as r:
        yield r


async def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


async def with_a_flow(rig: Rig) -> None:
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 5001, 9))
    await rig.installed(FLOW)
    assert len(await rig.switch_entries()) == 2


def replayed(rig: Rig) -> bool:
    task = rig.controller._replaying
    return task is not None and task.done()


async def test_a_restarted_switch_gets_its_configuration_and_flows_back(rig: Rig) -> None:
    await with_a_flow(rig)
    await rig.switch.faults.restart(keep_pipeline=True)
    await eventually(lambda: rig.controller.client.stats.sessions >= 2, "a new session")
    await eventually(lambda: replayed(rig), "the replay")
    assert len(await rig.switch_entries()) == 2
    # digests were configured again: a new flow is learned and installed
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 5002, 9))
    await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,5002,9"))


async def test_a_replay_shows_its_progress(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Half a million entries take a while: the replay says how far it got."""
    await with_a_flow(rig)
    rig.controller.replay_chunk, rig.controller.replay_progress_s = 1, 0.0
    caplog.set_level(logging.INFO, logger="p4ctl.controller")
    await rig.switch.faults.restart(keep_pipeline=True)
    await eventually(lambda: rig.controller.client.stats.sessions >= 2, "a new session")
    await eventually(lambda: replayed(rig), "the replay")
    lines = [r.getMessage() for r in caplog.records]
    assert "s1: replaying the switch configuration and 2 flow entries" in lines
    assert any(x.startswith("s1: replay: 1 of 2 flow entries written (") for x in lines)
    assert any(x.startswith("s1: replay: 2 of 2 flow entries written in ") for x in lines)


async def test_a_pipeline_push_the_restarted_switch_refused_is_tried_again(rig: Rig) -> None:
    await with_a_flow(rig)
    await rig.switch.faults.restart(keep_pipeline=False)  # (which clears the faults)
    rig.switch.faults.reject("SetForwardingPipelineConfig", 1)  # the reconnect's push
    await eventually(lambda: rig.switch.faults.rejected == 1, "the refused push")
    await eventually(lambda: replayed(rig), "the replay")
    assert rig.controller.client.pipeline_error is None
    assert len(await rig.switch_entries()) == 2


async def test_a_replay_the_switch_refuses_is_tried_again(rig: Rig) -> None:
    await with_a_flow(rig)
    await rig.switch.faults.restart(keep_pipeline=True)
    rig.switch.faults.reject_writes(1)  # the replay's first write: UNAVAILABLE
    await eventually(lambda: rig.switch.faults.rejected == 1, "the refused write")
    await eventually(lambda: replayed(rig), "the replay")
    assert rig.controller._replaying.exception() is None
    assert len(await rig.switch_entries()) == 2


def controller_for(switch: SoftwareSwitch, election: int = 1) -> DeviceController:
    """A controller of the test configuration for ``switch``, not started."""
    text = CONFIG.format(rate=0, ack="1s", hold="false", per_port=0, election=election)
    config = parse_config(text, str(Path(BUNDLED) / "test.yaml"))
    device = dataclasses.replace(config.devices[0], address=switch.grpc_target)
    return DeviceController(dataclasses.replace(config, devices=(device,)), device, Metrics())


async def primary_and_learning(rig: Rig, sport: int) -> None:
    """The controller becomes primary, replays, and then learns a new flow."""
    controller = rig.controller
    await eventually(lambda: controller.client.is_primary, "primary")
    await eventually(lambda: replayed(rig), "the replay")
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", sport, 9))
    await rig.installed(FlowKey.parse(f"0,10.1.0.1,10.2.0.1,udp,{sport},9"))


async def test_a_backup_configures_the_switch_once_it_becomes_primary() -> None:
    async with rigged(election=2) as primary_rig:
        switch = primary_rig.switch
        backup = controller_for(switch, election=1)
        try:
            await backup.start(timeout=5)  # another controller is primary: no writes
            assert not backup.client.is_primary
            await primary_rig.controller.stop()
            await primary_and_learning(Rig(switch, backup), 5003)
        finally:
            await backup.stop()


async def test_primacy_lost_while_starting_waits_and_configures_once_back() -> None:
    """Another controller takes over while the start's writes are on their way, then leaves."""
    switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0")
    await switch.start()
    controller = controller_for(switch)
    switch.faults.delay(0.5, ["Write"])  # the start's first write arrives after the takeover
    other = P4RuntimeClient(switch.grpc_target, 1, election_id=(0, 5))
    try:
        starting = asyncio.create_task(controller.start(timeout=5))
        await eventually(lambda: controller.client.is_primary, "primary")
        await other.connect(5)
        await starting  # as a backup now: no error
        assert not controller.client.is_primary
        switch.faults.delay(0)
        await other.close()
        await primary_and_learning(Rig(switch, controller), 5004)
    finally:
        await other.close()
        await controller.stop()
        await switch.stop()


async def another_primary_writes(
        rig: Rig, updates_of: Callable[[list[TableEntry]], list[Update]]) -> None:
    """Another controller takes over, writes ``updates_of(flow table entries)`` and
    leaves; returns once this one is primary again and has replayed."""
    controller = rig.controller
    other = P4RuntimeClient(rig.switch.grpc_target, 1, election_id=(0, 5),
                            p4info=controller.client.p4info)
    await other.connect(5)
    try:
        await eventually(lambda: not controller.client.is_primary, "the other takes over")
        table = controller.client.p4info.tables[controller.mapping.flow_table_id].name
        entries = [e async for e in other.read_table_entries(table)]
        (await other.write(updates_of(entries))).raise_on_error()
    finally:
        await other.close()
    await eventually(lambda: controller.client.is_primary, "primary again")
    await eventually(lambda: replayed(rig), "the replay")


async def test_regaining_primacy_writes_the_flows_again(rig: Rig) -> None:
    """Another controller takes over, empties the flow table and leaves."""
    await with_a_flow(rig)
    await another_primary_writes(rig, lambda entries: [
        Update(UpdateType.DELETE, e) for e in entries])
    assert len(await rig.switch_entries()) == 2


async def test_regaining_primacy_puts_back_the_actions_another_primary_changed(
        rig: Rig) -> None:
    """Another controller takes over, makes the flow's entries drop and leaves."""
    await with_a_flow(rig)
    controller = rig.controller
    forward = controller.store.get(FLOW)
    drop = controller.spec.role("tables", "flow")["actions"]["drop"]
    flow_id = drop["params"]["flow_id"]
    await another_primary_writes(rig, lambda entries: [
        Update(UpdateType.MODIFY, dataclasses.replace(
            e, action=drop["name"], params={flow_id: e.params[flow_id]})) for e in entries])
    assert (forward.state, forward.partner.state) == (FlowState.ADDED, FlowState.ADDED)
    on_switch = {controller.mapping.parse_table_entry(e) for e in await rig.switch_entries()}
    assert on_switch == {(FLOW, forward.flow_id, forward.action),
                         (FLOW.reverse(), forward.partner.flow_id, forward.partner.action)}


async def test_refused_port_to_vrf_entries_stop_the_start() -> None:
    """Flows of a port missing from the table would be classified in the wrong VRF."""
    switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0")
    await switch.start()
    controller = controller_for(switch)
    try:
        # the two digests go in; the write of the three ports' entries is refused
        switch.faults.reject_writes(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "no room", after=2)
        with pytest.raises(P4RuntimeError, match=r"3 of 3 updates failed.*no room"):
            await controller.start(timeout=5)
    finally:
        await controller.stop()
        await switch.stop()


async def test_a_replay_onto_a_switch_that_kept_its_entries_keeps_them_all(rig: Rig) -> None:
    """The stream breaks and comes back; the switch's tables are as they were."""
    await with_a_flow(rig)
    controller = rig.controller
    forward = controller.store.get(FLOW)
    slots = (forward.flow_id, forward.partner.flow_id)
    sessions = controller.client.stats.sessions
    rig.switch.faults.drop_streams()
    await eventually(lambda: controller.client.stats.sessions > sessions, "a new session")
    await eventually(lambda: replayed(rig), "the replay")
    assert (forward.state, forward.partner.state) == (FlowState.ADDED, FlowState.ADDED)
    assert (forward.flow_id, forward.partner.flow_id) == slots
    on_switch = {controller.mapping.parse_table_entry(e)[:2] for e in await rig.switch_entries()}
    assert on_switch == {(FLOW, slots[0]), (FLOW.reverse(), slots[1])}


def refuse_once_after_configuring(rig: Rig, code: grpc.StatusCode) -> None:
    """The replay's configuration goes in; its first flow write is refused, once."""
    controller = rig.controller
    configure = controller.configure_switch
    refused = []

    async def then_refuse() -> None:
        await configure()
        if not refused:
            refused.append(code)
            rig.switch.faults.reject_writes(1, code, "refused once")

    controller.configure_switch = then_refuse  # type: ignore[method-assign]


@pytest.mark.parametrize("keep_tables", [False, True])
async def test_flows_a_replay_could_not_write_are_written_again_with_their_slots(
    rig: Rig, keep_tables: bool
) -> None:
    await with_a_flow(rig)
    controller = rig.controller
    forward = controller.store.get(FLOW)
    slots = (forward.flow_id, forward.partner.flow_id)
    refuse_once_after_configuring(rig, grpc.StatusCode.RESOURCE_EXHAUSTED)
    sessions = controller.client.stats.sessions
    if keep_tables:  # a refusal does not show the entry is off the switch: it keeps its slot
        rig.switch.faults.drop_streams()
    else:
        await rig.switch.faults.restart(keep_pipeline=True)
    await eventually(lambda: controller.client.stats.sessions > sessions, "a new session")
    await eventually(lambda: rig.switch.faults.rejected == 1, "the refused write")
    await eventually(lambda: replayed(rig), "the replay, tried again")
    assert (forward.state, forward.partner.state) == (FlowState.ADDED, FlowState.ADDED)
    assert (forward.flow_id, forward.partner.flow_id) == slots
    assert len(await rig.switch_entries()) == 2


async def test_primacy_lost_during_a_replay_and_won_back_replays_in_full(rig: Rig) -> None:
    await with_a_flow(rig)
    controller = rig.controller
    configure = controller.configure_switch
    other: list[P4RuntimeClient] = []

    async def then_lose_primacy() -> None:
        await configure()
        if not other:  # another controller takes over while the replay writes
            other.append(P4RuntimeClient(rig.switch.grpc_target, 1, election_id=(0, 5),
                                         p4info=controller.client.p4info))
            await other[0].connect(5)
            await eventually(lambda: not controller.client.is_primary, "taken over")

    controller.configure_switch = then_lose_primacy  # type: ignore[method-assign]
    await rig.switch.faults.restart(keep_pipeline=True)
    await eventually(lambda: bool(other) and replayed(rig), "the replay stops")
    assert not controller._in_charge
    await other[0].close()
    await eventually(lambda: controller.client.is_primary, "primary again")
    await eventually(lambda: replayed(rig) and controller._in_charge, "the new replay")
    assert len(await rig.switch_entries()) == 2


async def test_a_switch_that_restarts_during_a_replay_gets_a_second_one(rig: Rig) -> None:
    await with_a_flow(rig)
    controller = rig.controller
    configure = controller.configure_switch
    calls = []

    async def then_restart() -> None:
        await configure()
        calls.append(1)
        if len(calls) == 1:  # the switch loses everything again, this replay's writes included
            sessions = controller.client.stats.sessions
            await rig.switch.faults.restart(keep_pipeline=True)
            await eventually(lambda: controller.client.stats.sessions > sessions
                             and controller.client.is_primary, "back")

    controller.configure_switch = then_restart  # type: ignore[method-assign]
    await rig.switch.faults.restart(keep_pipeline=True)
    await eventually(lambda: len(calls) >= 2 and replayed(rig), "a second replay")
    assert len(await rig.switch_entries()) == 2
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 5004, 9))  # digests configured again
    await rig.installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,5004,9"))


async def test_a_restarted_controller_starts_from_a_clean_flow_table(rig: Rig) -> None:
    """The switch outlived the controller: what it holds, the new store does not know."""
    await with_a_flow(rig)
    # a stale overflow slot too (flow ids after the main slots)
    overflow = rig.controller.mapping.registers["overflow_valid"]
    await rig.controller.registers.write(overflow, 3, 1)
    await rig.controller.stop()
    again = controller_for(rig.switch)
    await again.start(timeout=5)
    try:
        assert await rig.switch_entries() == []
        assert await again.registers.read(overflow, 3) == 0
        # the old flow's next packet is a new flow again
        fresh = Rig(rig.switch, again)
        await fresh.send(1, udp("10.1.0.1", "10.2.0.1", 5001, 9))
        await fresh.installed(FLOW)
        assert len(await fresh.switch_entries()) == 2
    finally:
        await again.stop()


async def test_a_replay_removes_what_was_added_behind_the_controllers_back(rig: Rig) -> None:
    await with_a_flow(rig)
    controller = rig.controller
    table = controller.client.p4info.tables[controller.mapping.flow_table_id].name
    stranger = FlowKey.parse("0,10.9.9.9,10.2.0.1,udp,7,9")
    rig.switch.faults.add_entry(table, stranger.values(), "FlowIngress.flow_drop", (4242,))
    assert len(await rig.switch_entries()) == 3
    sessions = controller.client.stats.sessions
    rig.switch.faults.drop_streams()  # the switch keeps its tables
    await eventually(lambda: controller.client.stats.sessions > sessions, "a new session")
    await eventually(lambda: replayed(rig), "the replay")
    on_switch = {controller.mapping.parse_table_entry(e)[0] for e in await rig.switch_entries()}
    assert on_switch == {FLOW, FLOW.reverse()}


async def test_a_slot_the_agent_takes_while_taking_charge_stays_valid() -> None:
    """The agent runs while the extraneous entries' delete is on the switch: an
    overflow slot found stale before may be a new flow's by the time it is cleared."""
    switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0")
    await switch.start()
    first = controller_for(switch)
    await first.start(timeout=5)
    sizes = first.store.sizes
    valid = first.mapping.registers["overflow_valid"]
    bucket_hash = FLOW.bucket_hash()
    slot = (bucket_hash % sizes.overflow_buckets) * sizes.bucket_ways  # its list's first way
    # the first controller leaves a flow and a stale overflow slot behind
    await switch.inject(1, udp("10.1.0.1", "10.2.0.1", 4000, 9))
    await Rig(switch, first).installed(FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,4000,9"))
    await first.registers.write(valid, slot, 1)
    await first.stop()
    again = controller_for(switch)
    for i in range(sizes.bucket_ways):  # FLOW's main bucket is full: it goes to `slot`
        again.store.allocate(FlowKey.parse(f"0,10.77.0.{i},10.2.0.1,udp,1,1"),
                             FlowAction(ActionKind.DROP), bucket_hash=bucket_hash)
    write = again.client.write
    arrived: list[bool] = []

    async def a_flow_arrives_during_the_delete(updates, **kw):  # type: ignore[no-untyped-def]
        updates = list(updates)
        result = await write(updates, **kw)
        if not arrived and any(isinstance(u, p4runtime_pb2.Update)
                               and u.type == p4runtime_pb2.Update.DELETE for u in updates):
            arrived.append(True)
            await switch.inject(1, udp("10.1.0.1", "10.2.0.1", 5001, 9))
            await Rig(switch, again).installed(FLOW)
        return result

    again.client.write = a_flow_arrives_during_the_delete  # type: ignore[method-assign]
    try:
        await again.start(timeout=5)
        assert arrived
        entry = again.store.get(FLOW)
        assert (entry.state, entry.flow_id) == (FlowState.ADDED, sizes.flow_entries + slot)
        assert await again.registers.read(valid, slot) == 1
    finally:
        await again.stop()
        await switch.stop()


async def test_a_replay_that_meets_a_surprise_is_tried_again(rig: Rig) -> None:
    """Not only a refusal: whatever stops a replay (here a switch's answer the code
    did not expect), the switch must not be left without its configuration."""
    await with_a_flow(rig)
    controller = rig.controller
    configure = controller.configure_switch
    surprised: list[bool] = []

    async def surprise_once() -> None:
        if not surprised:
            surprised.append(True)
            raise AttributeError("a switch's answer of an unexpected kind")
        await configure()

    controller.configure_switch = surprise_once  # type: ignore[method-assign]
    await rig.switch.faults.restart(keep_pipeline=True)
    await eventually(lambda: surprised and replayed(rig), "the replay, tried again")
    assert controller._replaying.exception() is None
    assert len(await rig.switch_entries()) == 2


async def test_taking_charge_leaves_an_entry_the_agent_made_its_own_meanwhile(
        rig: Rig) -> None:
    """The read-back reads a stale entry; before its delete goes out, a new flow's
    add meets that entry and modifies it into its own: the delete must not follow."""
    controller = rig.controller
    flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,6001,9")
    table = controller.client.p4info.tables[controller.mapping.flow_table_id].name
    rig.switch.faults.add_entry(table, flow.reverse().values(), "FlowIngress.flow_drop", (777,))
    gate, reached = asyncio.Event(), asyncio.Event()
    read_all = controller.registers.read_all

    async def slow_read_all(name: str) -> list[int]:  # a big switch's slow read-back
        reached.set()
        await gate.wait()
        return await read_all(name)

    controller.registers.read_all = slow_read_all  # type: ignore[method-assign]
    taking_charge = asyncio.create_task(controller.remove_extraneous())
    await reached.wait()
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 6001, 9))
    await rig.installed(flow)
    gate.set()
    await taking_charge
    on_switch = {controller.mapping.parse_table_entry(e)[0] for e in await rig.switch_entries()}
    assert on_switch == {flow, flow.reverse()}


async def test_a_modify_refused_after_already_exists_keeps_the_slot(rig: Rig) -> None:
    """The entry is on the switch, maybe with this flow id: its slot is not reused."""
    controller = rig.controller
    flow = FlowKey.parse("0,10.1.0.1,10.2.0.1,udp,6002,9")
    rig.switch.faults.lose_answers(1)  # the reverse entry is applied, its answer lost
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 6002, 9))
    await rig.failed(flow)
    # reported again: the INSERT meets ALREADY_EXISTS, and the MODIFY is refused
    rig.switch.faults.reject_writes(1, grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", after=1)
    await rig.send(1, udp("10.1.0.1", "10.2.0.1", 6002, 9))
    await eventually(lambda: controller.agent.counters.failed >= 2, "the retry failed")
    ((key, flow_id),) = [controller.mapping.parse_table_entry(e)[:2]
                         for e in await rig.switch_entries()]
    assert key == flow.reverse() and controller.store.by_flow_id(flow_id) is not None


async def test_a_replay_cut_short_in_its_writes_writes_the_flows_when_tried_again(
        rig: Rig) -> None:
    await with_a_flow(rig)
    controller = rig.controller
    apply = controller.provider.apply
    surprised: list[bool] = []

    async def surprise_once(ops):  # type: ignore[no-untyped-def]
        if not surprised:
            surprised.append(True)
            raise AttributeError("a switch's answer of an unexpected kind")
        return await apply(ops)

    controller.provider.apply = surprise_once  # type: ignore[method-assign]
    await rig.switch.faults.restart(keep_pipeline=True)  # the switch lost its tables
    await eventually(lambda: surprised and replayed(rig), "the replay, tried again", timeout=20)
    entry = controller.store.get(FLOW)
    assert (entry.state, entry.partner.state) == (FlowState.ADDED, FlowState.ADDED)
    assert len(await rig.switch_entries()) == 2
