"""Helpers shared by the client's integration tests (frames, waiting, task leaks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from p4ctl.p4rt import ClientOptions, P4RuntimeClient, PipelineConfig

DEVICE_ID = 1
CPU_PORT = 255
DATA_PORTS = (1, 2, 3)



def tcp_frame(src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 1234,
              dport: int = 80, flags: str = "S", payload: bytes = b"") -> bytes:
    frame = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags=flags)
        / payload
    )
    return bytes(frame)


def udp_frame(src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 5353,
              dport: int = 53, payload: bytes = b"q") -> bytes:
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=dst) / UDP(
        sport=sport, dport=dport
    ) / payload
    return bytes(frame)


def icmp_frame(src: str = "10.0.0.1", dst: str = "10.0.0.2", ident: int = 7) -> bytes:
    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=dst) / ICMP(
        id=ident
    )
    return bytes(frame)


def leaked_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks alive now that were not before (the current one excepted)."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t not in before and t is not current and not t.done()]


async def eventually(predicate: Any, what: str, timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (a guard against hangs, not a speed check)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Target:
    """A switch under test, seen the same way whatever it is."""

    kind = ""
    grpc_address = ""
    thrift_address = ""
    device_id = DEVICE_ID
    #: whether P4Runtime RegisterEntry works (BMv2: UNIMPLEMENTED)
    p4runtime_registers = True
    #: whether the target honours P4Runtime roles (PI ignores them)
    roles = True

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def inject(self, port: int, frame: bytes) -> None:
        raise NotImplementedError

    async def expect(self, port: int, timeout: float = 10.0) -> bytes:
        raise NotImplementedError

    async def restart(self) -> None:
        """The switch restarts with no pipeline and no state (streams drop)."""
        raise NotImplementedError

    def client(self, pipeline: PipelineConfig | None = None, **kw: Any) -> P4RuntimeClient:
        options = kw.pop("options", None) or ClientOptions(backoff_initial=0.05, backoff_max=0.5)
        return P4RuntimeClient(
            self.grpc_address, self.device_id, pipeline=pipeline, options=options, **kw
        )


class SoftwareTarget(Target):
    kind = "software"

    def __init__(self) -> None:
        from p4ctl.switch.device import SoftwareSwitch

        self.switch = SoftwareSwitch(
            device_id=DEVICE_ID,
            grpc_address="127.0.0.1:0",
            thrift_address="127.0.0.1:0",
            cpu_port=CPU_PORT,
            idle_sweep_interval=0.2,
            stream_error_reporting=True,
        )

    async def start(self) -> None:
        await self.switch.start()
        self.grpc_address = self.switch.grpc_target
        self.thrift_address = f"127.0.0.1:{self.switch.thrift_port}"

    async def stop(self) -> None:
        await self.switch.stop()

    async def inject(self, port: int, frame: bytes) -> None:
        await self.switch.inject(port, frame)

    async def expect(self, port: int, timeout: float = 10.0) -> bytes:
        return await self.switch.expect(port, timeout)

    async def restart(self) -> None:
        await self.switch.faults.restart(keep_pipeline=False)


class BMv2Target(Target):
    """``simple_switch_grpc --no-p4`` on veth pairs, in its own process."""

    kind = "bmv2"
    p4runtime_registers = False
    roles = False

    def __init__(self, binary: str, tmp: Path) -> None:
        self.binary = binary
        self.tmp = tmp
        self.grpc_port = free_port()
        self.thrift_port = free_port()
        self.grpc_address = f"127.0.0.1:{self.grpc_port}"
        self.thrift_address = f"127.0.0.1:{self.thrift_port}"
        tag = f"{os.getpid() % 10000}"
        self.veths = {p: (f"p4b{tag}s{p}", f"p4b{tag}h{p}") for p in DATA_PORTS}
        self.proc: subprocess.Popen[bytes] | None = None
        self.sockets: dict[int, socket.socket] = {}

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def _make_veths(self) -> None:
        for switch_end, host_end in self.veths.values():
            self._ip("link", "add", switch_end, "type", "veth", "peer", "name", host_end)
            for name in (switch_end, host_end):
                with contextlib.suppress(OSError):
                    Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1")
                self._ip("link", "set", name, "up")
        for port, (_, host_end) in self.veths.items():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            s.bind((host_end, 0))
            s.setblocking(False)
            self.sockets[port] = s

    def _remove_veths(self) -> None:
        for s in self.sockets.values():
            s.close()
        self.sockets.clear()
        for switch_end, _ in self.veths.values():
            subprocess.run(["ip", "link", "del", switch_end], capture_output=True, check=False)

    def _spawn(self) -> None:
        args = [self.binary, "--no-p4", "--device-id", str(DEVICE_ID),
                "--thrift-port", str(self.thrift_port), "--log-level", "warn"]
        for port, (switch_end, _) in self.veths.items():
            args += ["-i", f"{port}@{switch_end}"]
        args += ["--", "--grpc-server-addr", self.grpc_address, "--cpu-port", str(CPU_PORT)]
        log = (self.tmp / "simple_switch_grpc.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"simple_switch_grpc exited: see {self.tmp}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.grpc_port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("simple_switch_grpc did not open its gRPC port")

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    async def start(self) -> None:
        if os.geteuid() != 0:
            pytest.skip("BMv2 tests need root for their veth pairs")
        await asyncio.to_thread(self._make_veths)
        try:
            await asyncio.to_thread(self._spawn)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await asyncio.to_thread(self._kill)
        await asyncio.to_thread(self._remove_veths)

    async def inject(self, port: int, frame: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sockets[port], frame)

    async def expect(self, port: int, timeout: float = 10.0) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(self.sockets[port], 65536), timeout)

    async def restart(self) -> None:
        await asyncio.to_thread(self._kill)
        await asyncio.to_thread(self._spawn)


@contextlib.asynccontextmanager
async def started_target(kind: str, tmp: Path) -> AsyncIterator[Target]:
    """A started "software" or "bmv2" target (BMv2 skips where not installed), stopped after."""
    if kind == "software":
        switch: Target = SoftwareTarget()
    else:
        binary = shutil.which("simple_switch_grpc")
        if binary is None:
            pytest.skip("simple_switch_grpc is not on PATH")
        switch = BMv2Target(binary, tmp)
    await switch.start()
    try:
        yield switch
    finally:
        await switch.stop()


@contextlib.asynccontextmanager
async def software_switch_in_thread(**options: Any) -> AsyncIterator[Any]:
    """A software switch on its own event loop in another thread.

    For checks of what the *client* leaves behind: the server's own tasks
    (which notice a closed stream a little later) are then on another loop.
    Yields the switch; its ``grpc_target`` is the address to dial.
    """
    from p4ctl.switch.device import SoftwareSwitch

    ready = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            switch = SoftwareSwitch(**options)
            try:
                await switch.start()
            except BaseException as exc:
                state["error"] = exc
                ready.set()
                return
            stop = asyncio.Event()
            state.update(switch=switch, loop=asyncio.get_running_loop(), stop=stop)
            ready.set()
            await stop.wait()
            await switch.stop()

        asyncio.run(main())

    thread = threading.Thread(target=run, name="software switch", daemon=True)
    thread.start()
    await asyncio.to_thread(ready.wait)
    if "error" in state:
        raise state["error"]
    try:
        yield state["switch"]
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        await asyncio.to_thread(thread.join)
