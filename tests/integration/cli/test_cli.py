"""The command line end to end: the demo, run, flows, hash and config errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from p4ctl.cli import _flows
from p4ctl.config import load_config
from p4ctl.controller import DeviceController
from p4ctl.demo import run_demo
from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import FlowKey
from p4ctl.metrics import Metrics
from p4ctl.switch.device import SoftwareSwitch

REPO = Path(__file__).resolve().parents[3]


async def test_demo_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo() == 0
    out = capsys.readouterr().out
    assert "source NAT 10.0.0.1 <-> 203.0.113.1 applied both ways" in out
    assert "demo passed: 6 packets forwarded and checked" in out


def p4ctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "p4ctl.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=REPO)


def test_hash_command() -> None:
    done = p4ctl("hash", "0,10.0.0.1,10.0.0.2,tcp,1234,80")
    assert done.returncode == 0 and done.stdout.strip() == "0x3fecf737"
    bad = p4ctl("hash", "0,10.0.0.1,tcp")
    assert bad.returncode == 2 and "expected vrf,src,dst,proto,sport,dport" in bad.stderr


def test_run_refuses_an_invalid_config_naming_file_line_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("devices:\n  - name: s1\n    address: 127.0.0.1:9559\n"
                      "    device_id: one\n")
    done = p4ctl("run", "--config", str(config))
    assert done.returncode == 2
    assert f"{config}:4: devices[0].device_id" in done.stderr


async def test_run_installs_flows_and_flows_command_shows_them(tmp_path: Path) -> None:
    switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0")
    await switch.start()
    example = (REPO / "examples" / "p4ctl.yaml").read_text()
    config = tmp_path / "p4ctl.yaml"
    config.write_text(example.replace("127.0.0.1:9559", switch.grpc_target)
                      .replace("address: 127.0.0.1:9100", "address: null")
                      .replace("log_interval: 60s", "log_interval: 1s"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "p4ctl.cli", "run", "--config", str(config),
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ),
    )
    try:
        frame = bytes(Ether() / IP(src="10.0.0.9", dst="192.0.2.1") / UDP(sport=1, dport=2))
        deadline = time.monotonic() + 30
        forwarded = False
        while time.monotonic() < deadline and not forwarded:
            await switch.inject(1, frame)
            await asyncio.sleep(0.2)
            forwarded = bool(switch.drain(2))
        assert forwarded, "the controller never installed the flow"
        done = await asyncio.to_thread(p4ctl, "flows", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert "vrf 0 10.0.0.9:1 -> 192.0.2.1:2 proto 17" in done.stdout
        assert "vrf 0 192.0.2.1:2 -> 10.0.0.9:1 proto 17" in done.stdout
        assert "(2 entries shown)" in done.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        await switch.stop()
    assert proc.returncode == 0, out.decode()
    # the periodic status line: flows/s, active entries, failures
    assert "s1: " in out.decode() and " flows/s, " in out.decode()
    assert "2 entries active, 0 pending, 0 failed, 0 reports over limits\n" in out.decode()


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_stops_on_a_signal_while_it_waits_for_the_switch(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """The switch never answers; Ctrl-C or a service stop still ends ``p4ctl run`` cleanly."""
    example = (REPO / "examples" / "p4ctl.yaml").read_text()
    config = tmp_path / "p4ctl.yaml"
    config.write_text(example.replace("127.0.0.1:9559", f"127.0.0.1:{closed_port()}")
                      .replace("address: 127.0.0.1:9100", "address: null"))
    proc = subprocess.Popen([sys.executable, "-m", "p4ctl.cli", "run", "--config", str(config)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # until it is trying to connect
            seen.append(line)
            if "connecting to" in line:
                break
        assert proc.poll() is None, "".join(seen)
        proc.send_signal(sig)
        # it would otherwise try to connect for 30 s and then fail
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(seen) + out


def example_config(tmp_path: Path, switch: str, metrics: str = "null") -> Path:
    """The example configuration, for ``switch``, with ``metrics`` as its metrics address."""
    text = (REPO / "examples" / "p4ctl.yaml").read_text()
    path = tmp_path / "p4ctl.yaml"
    path.write_text(text.replace("127.0.0.1:9559", switch)
                    .replace("address: 127.0.0.1:9100", f"address: {metrics}"))
    return path


def test_run_with_the_metrics_port_taken_says_so(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        config = example_config(tmp_path, f"127.0.0.1:{closed_port()}", address)
        done = p4ctl("run", "--config", str(config))
    assert done.returncode == 2, done.stderr
    assert f"{config}: metrics.address {address}: " in done.stderr
    assert "Traceback" not in done.stderr


def test_flows_with_a_broken_pipeline_says_so(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipe"
    pipeline.mkdir()
    (pipeline / "pipeline.yaml").write_text("name: x\n")
    config = example_config(tmp_path, f"127.0.0.1:{closed_port()}")
    config.write_text(config.read_text().replace("# pipeline: ../pipelines/flowcache",
                                                 f"pipeline: {pipeline}  #"))
    done = p4ctl("flows", "--config", str(config))
    assert done.returncode == 2 and done.stderr.startswith("p4ctl flows: "), done.stderr
    assert "Traceback" not in done.stderr
    bad = p4ctl("flows", "--config", str(config), "--limit", "-1")
    assert bad.returncode == 2 and "argument --limit: -1 is less than 0" in bad.stderr
    bad = p4ctl("flows", "--config", str(config), "--limit", "1_000")
    assert bad.returncode == 2 and "argument --limit: '1_000' is not a whole number" in bad.stderr


@contextlib.asynccontextmanager
async def controlled_switch(
    tmp_path: Path,
) -> AsyncIterator[tuple[SoftwareSwitch, Path, DeviceController]]:
    """A software switch, the example configuration for it, and a started controller."""
    switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0")
    await switch.start()
    config = example_config(tmp_path, switch.grpc_target)
    loaded = load_config(config)
    controller = DeviceController(loaded, loaded.devices[0], Metrics())
    try:
        await controller.start()
        yield switch, config, controller
    finally:
        await controller.stop()
        await switch.stop()


async def one_flow(switch: SoftwareSwitch, controller: DeviceController) -> None:
    """A flow from port 1 to port 2, installed."""
    await switch.inject(1, bytes(Ether() / IP(src="10.0.0.9", dst="192.0.2.1")
                                 / UDP(sport=1, dport=2)))
    deadline = time.monotonic() + 10
    while controller.agent.counters.installed < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def test_flows_limit_counts_what_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with controlled_switch(tmp_path) as (switch, config, controller):
        await one_flow(switch, controller)
        capsys.readouterr()
        more = "; there are more: --limit N shows N"
        for limit, end in ((0, f"(0 entries shown{more})"), (1, f"(1 entries shown{more})"),
                           (2, "(2 entries shown)"), (5, "(2 entries shown)")):
            assert await _flows(config, None, limit) == 0  # a flow is two entries
            assert capsys.readouterr().out.endswith(end + "\n")


async def test_flows_shows_the_overflow_slots_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A flow whose main bucket was full lives in registers; the view lists it with its counts."""
    async with controlled_switch(tmp_path) as (switch, config, controller):
        store = controller.store
        sizes = store.sizes
        ports: dict[int, list[int]] = {}
        port = 1024
        while True:  # bucket_ways + 1 source ports whose keys share a main bucket
            key = FlowKey(0, 0x0A000009, 0xC0000201, 17, port, 2)
            group = ports.setdefault(key.bucket_hash() % sizes.main_buckets, [])
            group.append(port)
            if len(group) > sizes.bucket_ways:
                break
            port += 1
        for sport in group:
            frame = bytes(Ether() / IP(src="10.0.0.9", dst="192.0.2.1") / UDP(sport=sport, dport=2))
            await switch.inject(1, frame)
            deadline = time.monotonic() + 10
            while not switch.drain(2) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                await switch.inject(1, frame)
        last = store.get(FlowKey(0, 0x0A000009, 0xC0000201, 17, group[-1], 2))
        assert last is not None and store.is_overflow(last)
        await switch.inject(1, frame)  # the overflow flow's packets are counted
        assert await _flows(config, None, 100) == 0
        out = capsys.readouterr().out
        line = next(x for x in out.splitlines() if x.lstrip().startswith(f"{last.flow_id} "))
        assert f"10.0.0.9:{group[-1]} -> 192.0.2.1:2 proto 17" in line
        assert str(last.action) in line
        assert int(line.split()[1]) >= 2 and int(line.split()[2]) > 0
        entries = 2 * len(group)
        overflow = sum(store.is_overflow(e) for e in store)
        assert out.endswith(f"({entries} entries shown, {overflow} of them in overflow slots)\n")


async def test_flows_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    """``p4ctl flows | head``: no traceback for a reader that stopped reading."""
    async with controlled_switch(tmp_path) as (switch, config, controller):
        await one_flow(switch, controller)
        # `true` has gone by the time p4ctl writes: every write meets a closed pipe
        proc = await asyncio.create_subprocess_shell(
            f"{sys.executable} -m p4ctl.cli flows --config {config} | true",
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


async def test_flows_at_the_limit_says_overflow_slots_were_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with controlled_switch(tmp_path) as (switch, config, controller):
        await one_flow(switch, controller)  # two main-table entries
        first, valid = controller.mapping.overflow_install(
            FlowKey.parse("0,10.0.0.9,192.0.2.1,udp,7,2"), 5, FlowAction(ActionKind.FORWARD, 2))
        await controller.registers.write_many(first + valid)
        capsys.readouterr()
        assert await _flows(config, None, 3) == 0
        assert capsys.readouterr().out.endswith(
            "(3 entries shown, 1 of them in overflow slots)\n")
        assert await _flows(config, None, 2) == 0  # the main table fills the list
        assert capsys.readouterr().out.endswith(
            "(2 entries shown; there are more: --limit N shows N)\n")
