"""The ``p4ctl switch`` entry point (p4ctl.switch.main) run as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

import grpc
import pytest
from p4.v1 import p4runtime_pb2 as p4r
from p4.v1 import p4runtime_pb2_grpc
from switch_helpers import FIXTURES, P4INFO

RUNNER = (
    "import argparse, asyncio, logging, sys\n"
    "from p4ctl.switch import main\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "p = argparse.ArgumentParser()\n"
    "main.add_arguments(p)\n"
    "sys.exit(asyncio.run(main.run(p.parse_args(sys.argv[1:]))))\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUNNER, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )


async def _run_and_stop(
    talk: Callable[[p4runtime_pb2_grpc.P4RuntimeStub], Awaitable[None]], *args: str
) -> str:
    """Start ``p4ctl switch``, ``talk`` to it over P4Runtime, stop it with SIGTERM; its log."""
    grpc_port = _free_port()
    proc = await _spawn("--grpc-address", f"127.0.0.1:{grpc_port}", *args)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), 60)
            await talk(p4runtime_pb2_grpc.P4RuntimeStub(channel))
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_runs_with_a_preloaded_pipeline_and_stops_on_sigterm() -> None:
    async def talk(stub: p4runtime_pb2_grpc.P4RuntimeStub) -> None:
        resp = await stub.GetForwardingPipelineConfig(
            p4r.GetForwardingPipelineConfigRequest(device_id=3)
        )
        assert resp.config.p4info == P4INFO

    text = await _run_and_stop(
        talk,
        "--thrift-address", f"127.0.0.1:{_free_port()}",
        "--p4info", str(FIXTURES / "switch_test.p4info.txtpb"),
        "--json", str(FIXTURES / "switch_test.json"),
        "--device-id", "3",
    )
    assert "P4Runtime server listening" in text
    assert "software switch stopped" in text


async def test_a_pipeline_pushed_later_is_frozen_out_of_the_collector() -> None:
    async def talk(stub: p4runtime_pb2_grpc.P4RuntimeStub) -> None:
        await stub.SetForwardingPipelineConfig(p4r.SetForwardingPipelineConfigRequest(
            device_id=1, action=p4r.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
            config=p4r.ForwardingPipelineConfig(
                p4info=P4INFO, p4_device_config=(FIXTURES / "switch_test.json").read_bytes()),
        ))

    text = await _run_and_stop(talk, "--no-thrift")
    pushed = text.index("SetForwardingPipelineConfig VERIFY_AND_COMMIT accepted")
    assert "collected and froze long-lived objects" in text[:pushed]


async def test_missing_pipeline_files_exit_2(tmp_path) -> None:
    proc = await _spawn("--pipeline", str(tmp_path), "--no-thrift",
                        "--grpc-address", "127.0.0.1:0")
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert b"not found" in out


async def test_bad_interface_syntax_is_a_usage_error() -> None:
    proc = await _spawn("-i", "eth0")
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert b"PORT@IFNAME" in out


async def test_a_busy_p4runtime_address_is_refused(switch_factory) -> None:
    """gRPC's default SO_REUSEPORT would let a second switch share it, silently."""
    first = await switch_factory()
    with pytest.raises(OSError, match=f"cannot listen on {first.grpc_target}"):
        await switch_factory(grpc_address=first.grpc_target)


async def test_an_unusable_p4runtime_address_is_a_message() -> None:
    proc = await _spawn("--grpc-address", "nonsense", "--no-thrift")
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert b"cannot start the switch: cannot listen on nonsense" in out
    assert b"Traceback" not in out


async def test_a_port_wider_than_v1model_is_a_usage_error() -> None:
    proc = await _spawn("-i", "600@eth0", "--no-thrift")
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert b"v1model ports have 9 bits (0 to 511)" in out


@pytest.mark.skipif(os.geteuid() != 0, reason="packet sockets need root")
async def test_an_unknown_interface_is_named() -> None:
    proc = await _spawn("-i", "1@no-such-if0", "--no-thrift", "--grpc-address", "127.0.0.1:0")
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert b"cannot start the switch: [Errno 19] interface no-such-if0 (port 1): " in out
