"""Set/GetForwardingPipelineConfig (PI's pipeline_config_set / _get)."""

from __future__ import annotations

import json

import grpc
import pytest
from p4.v1 import p4runtime_pb2 as p4r
from switch_helpers import (
    JSON,
    L2,
    P4INFO,
    PORT_COUNTER,
    Client,
    SetAction,
    canon,
    frame,
    l2_entry,
    pipeline_config,
    rpc_error,
    update,
)

GetType = p4r.GetForwardingPipelineConfigRequest


async def _get(c: Client, response_type: int = GetType.ALL) -> p4r.ForwardingPipelineConfig:
    resp = await c.stub.GetForwardingPipelineConfig(
        p4r.GetForwardingPipelineConfigRequest(device_id=1, response_type=response_type)
    )
    return resp.config


async def test_before_any_pipeline_everything_is_failed_precondition(software_switch) -> None:
    async with Client.of(software_switch) as c:
        await c.primary(1)
        for call in (_get(c), c.insert(l2_entry(1)), c.read_tables()):
            e = await rpc_error(call)
            assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert e.details() == "No forwarding pipeline config set for this device"


async def test_verify_and_commit_then_get_returns_what_was_sent(software_switch) -> None:
    async with Client.of(software_switch) as c:
        await c.primary(1)
        await c.set_pipeline(config=pipeline_config(cookie=77))
        cfg = await _get(c)
        assert cfg.p4info == P4INFO
        assert cfg.p4_device_config == JSON
        assert cfg.cookie.cookie == 77
        only_cookie = await _get(c, GetType.COOKIE_ONLY)
        assert not only_cookie.HasField("p4info") and not only_cookie.p4_device_config
        assert only_cookie.cookie.cookie == 77
        p4info_only = await _get(c, GetType.P4INFO_AND_COOKIE)
        assert p4info_only.p4info == P4INFO and not p4info_only.p4_device_config
        dev_only = await _get(c, GetType.DEVICE_CONFIG_AND_COOKIE)
        assert dev_only.p4_device_config == JSON and not dev_only.HasField("p4info")


async def test_the_switch_hears_of_each_pipeline_change_before_the_answer(
        software_switch) -> None:
    """``on_pipeline`` (``p4ctl switch`` collects and freezes then) runs on changes only."""
    seen: list[bytes] = []
    software_switch.on_pipeline = lambda: seen.append(software_switch.device_mgr.device_config)
    async with Client.of(software_switch) as c:
        await c.primary(1)
        await c.set_pipeline(SetAction.VERIFY)  # checked, nothing installed
        e = await rpc_error(c.set_pipeline(config=pipeline_config(device_config=b"{")))
        assert e.code() == grpc.StatusCode.UNKNOWN
        assert seen == []
        await c.set_pipeline(config=pipeline_config())
        assert seen == [JSON]  # called with the new pipeline in place, before the answer
        await c.set_pipeline(SetAction.VERIFY_AND_SAVE)
        await c.set_pipeline(SetAction.COMMIT)
        assert len(seen) == 3


async def test_a_failing_pipeline_hook_does_not_fail_the_change(software_switch) -> None:
    def broken() -> None:
        raise RuntimeError("hook")

    software_switch.on_pipeline = broken
    async with Client.of(software_switch) as c:
        await c.primary(1)
        await c.set_pipeline(config=pipeline_config(cookie=5))
        assert (await _get(c)).cookie.cookie == 5


async def test_bad_response_type_is_invalid_argument(loaded_switch) -> None:
    async with Client.of(loaded_switch) as c:
        e = await rpc_error(_get(c, 42))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unspecified_action_is_invalid_argument(software_switch) -> None:
    async with Client.of(software_switch) as c:
        e = await rpc_error(c.set_pipeline(SetAction.UNSPECIFIED, election_id=None))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_verify_checks_but_installs_nothing(software_switch) -> None:
    async with Client.of(software_switch) as c:
        await c.set_pipeline(SetAction.VERIFY, election_id=None)
        e = await rpc_error(_get(c))
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("device_config", [b"{nope", b"[" * 100_000, b'{"a":' * 50_000])
async def test_malformed_json_is_unknown(software_switch, device_config: bytes) -> None:
    """Nested too deep for the JSON reader, too: the same answer."""
    async with Client.of(software_switch) as c:
        e = await rpc_error(
            c.set_pipeline(election_id=None, config=pipeline_config(device_config=device_config))
        )
        assert e.code() == grpc.StatusCode.UNKNOWN
        assert e.details().startswith("Error in first phase of device update")


async def test_unsupported_json_construct_is_unknown_and_named(software_switch) -> None:
    doc = json.loads(JSON)
    doc["meter_arrays"] = [{"name": "m", "id": 0, "is_direct": False, "size": 1,
                            "rate_count": 2, "type": "bytes"}]
    async with Client.of(software_switch) as c:
        e = await rpc_error(c.set_pipeline(
            election_id=None, config=pipeline_config(device_config=json.dumps(doc).encode())
        ))
        assert e.code() == grpc.StatusCode.UNKNOWN
        assert "meter" in e.details()


async def test_p4info_that_does_not_match_the_json_is_refused(software_switch) -> None:
    p4info = type(P4INFO)()
    p4info.CopyFrom(P4INFO)
    p4info.tables[1].preamble.name = "TestIngress.nonexistent"
    async with Client.of(software_switch) as c:
        e = await rpc_error(c.set_pipeline(election_id=None, config=pipeline_config(p4info)))
        assert e.code() == grpc.StatusCode.UNKNOWN
        assert "TestIngress.nonexistent" in e.details()


async def test_commit_without_a_saved_config_is_unknown(software_switch) -> None:
    async with Client.of(software_switch) as c:
        e = await rpc_error(c.set_pipeline(SetAction.COMMIT, election_id=None))
        assert e.code() == grpc.StatusCode.UNKNOWN


async def test_verify_and_save_takes_writes_and_commit_starts_forwarding(software_switch) -> None:
    sw = software_switch
    async with Client.of(sw) as c:
        await c.primary(1)
        await c.set_pipeline(SetAction.VERIFY_AND_SAVE)
        await c.insert(l2_entry(0x02, port=2))
        await sw.inject(1, frame(0x02))
        assert sw.drain(2) == []  # not committed: no pipeline forwards yet
        await c.set_pipeline(SetAction.COMMIT, config=p4r.ForwardingPipelineConfig())
        await sw.inject(1, frame(0x02))
        assert sw.drain(2) == [frame(0x02)]


async def test_verify_and_commit_replaces_all_state(loaded_switch) -> None:
    async with Client.of(loaded_switch) as c:
        await c.primary(1)
        await c.insert(l2_entry(1))
        await c.set_pipeline()
        assert await c.read_tables() == []


async def test_reconcile_and_commit_keeps_entries_and_counters(loaded_switch) -> None:
    sw = loaded_switch
    async with Client.of(sw) as c:
        await c.primary(1)
        await c.insert(l2_entry(1, port=2, ttl_ns=5_000_000_000, controller_metadata=9))
        ce = p4r.CounterEntry(counter_id=PORT_COUNTER)
        ce.index.index = 3
        ce.data.packet_count = 11
        ce.data.byte_count = 22
        await c.write(update(p4r.Update.MODIFY, counter_entry=ce))
        await c.set_pipeline(SetAction.RECONCILE_AND_COMMIT)
        entries = await c.read_tables(L2)
        assert len(entries) == 1
        assert entries[0].match[0].exact.value == canon(1)
        assert entries[0].idle_timeout_ns == 5_000_000_000
        assert entries[0].controller_metadata == 9
        read = p4r.CounterEntry(counter_id=PORT_COUNTER)
        read.index.index = 3
        got = await c.read(p4r.Entity(counter_entry=read))
        assert got[0].counter_entry.data.packet_count == 11
        # and the new pipeline forwards with the replayed entry
        await sw.inject(1, frame(1))
        assert sw.drain(2) == [frame(1)]


async def test_set_pipeline_from_a_backup_is_permission_denied(software_switch) -> None:
    async with Client.of(software_switch) as c:
        await c.primary(10)
        b = c.stream()
        b.arbitrate(2)
        await b.recv()
        e = await rpc_error(c.set_pipeline(election_id=2))
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED
