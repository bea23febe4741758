"""The software switch as one object: interpreter, P4Runtime, Thrift, ports, faults.

:class:`SoftwareSwitch` is what ``p4ctl switch`` runs and what tests start
in-process (see ``tests/integration/conftest.py``)::

    sw = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0")
    await sw.start()                  # sw.grpc_port is the bound port
    await sw.inject(1, frame)         # a packet arrives on port 1
    out = await sw.expect(2)          # what left on port 2
    sw.faults.reject_writes(3)        # the next 3 Writes fail
    await sw.stop()

The packet path: a packet arriving on a port (an interface, :meth:`inject`
or a P4Runtime packet-out on the CPU port) runs through the committed
pipeline; each output goes to its port, except outputs to the CPU port,
which become ``PacketIn`` messages for the primary client (as in
``simple_switch_grpc``'s ``transmit_fn``); digests go to the digest engine.
Everything runs on one asyncio loop, so a packet sees a table either
before or after an update, never during one.

``cpu_port`` is 255 by default here; ``simple_switch_grpc`` has no CPU port
unless ``--cpu-port`` is given. ``None`` disables packet-in/out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from google.protobuf import text_format
from p4.config.v1 import p4info_pb2
from p4.v1 import p4runtime_pb2

from p4ctl.switch.arbitration import Arbiter
from p4ctl.switch.codec import P4RuntimeError
from p4ctl.switch.device_mgr import DeviceMgr
from p4ctl.switch.faults import FaultInjector
from p4ctl.switch.p4runtime_server import P4RuntimeServer
from p4ctl.switch.ports import Ports
from p4ctl.switch.thrift_server import ThriftServer

log = logging.getLogger(__name__)

__all__ = ["SoftwareSwitch", "load_p4info"]

DEFAULT_CPU_PORT = 255
#: Pipeline failures logged with a traceback; later ones are only counted.
LOGGED_PROCESS_ERRORS = 10


def load_p4info(path: str | Path) -> p4info_pb2.P4Info:
    """Read a P4Info file: text format (``.txt``, ``.txtpb``) or binary."""
    data = Path(path).read_bytes()
    p4info = p4info_pb2.P4Info()
    try:
        text_format.Parse(data.decode(), p4info)
    except (UnicodeDecodeError, text_format.ParseError):
        p4info.Clear()
        p4info.ParseFromString(data)
    return p4info


class SoftwareSwitch:
    """A BMv2-JSON switch behind a P4Runtime server and BMv2's Thrift register calls."""

    def __init__(
        self,
        device_id: int = 1,
        grpc_address: str = "127.0.0.1:0",
        thrift_address: str | None = None,
        cpu_port: int | None = DEFAULT_CPU_PORT,
        ports: dict[int, str] | None = None,
        *,
        registers_via_p4runtime: bool = True,
        idle_sweep_interval: float = 1.0,
        stream_error_reporting: bool = False,
    ) -> None:
        self.device_id = device_id
        self.grpc_address = grpc_address
        self.thrift_address = thrift_address
        self.cpu_port = cpu_port
        self._interfaces = dict(ports or {})
        if cpu_port is not None and cpu_port in self._interfaces:
            raise ValueError(f"CPU port {cpu_port} is used as a data port")
        self._registers_via_p4runtime = registers_via_p4runtime
        self._idle_sweep_interval = idle_sweep_interval
        self._stream_error_reporting = stream_error_reporting
        self.faults = FaultInjector(self)
        self.device_mgr: DeviceMgr
        self.p4runtime: P4RuntimeServer
        self.ports: Ports
        self.thrift: ThriftServer | None = None
        self.arbiter = Arbiter(device_id)
        self._preload: tuple[p4info_pb2.P4Info, bytes] | None = None
        self._started = False
        #: packets the pipeline failed on (malformed input must never stop the switch)
        self.process_errors = 0
        #: called after a controller's SetForwardingPipelineConfig changed the
        #: device (``p4ctl switch`` freezes the new pipeline's objects then)
        self.on_pipeline: Callable[[], None] | None = None

    # ----- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        loop = asyncio.get_running_loop()
        self.device_mgr = DeviceMgr(
            self.device_id,
            self.arbiter.send_to_primaries,
            registers_via_p4runtime=self._registers_via_p4runtime,
            idle_sweep_interval=self._idle_sweep_interval,
            loop=loop,
        )
        self.ports = Ports(self._receive, loop)
        self.p4runtime = P4RuntimeServer(
            self.device_mgr,
            self.arbiter,
            address=self.grpc_address,
            inject=self._packet_out,
            before_rpc=self.faults.before_rpc,
            after_write=self.faults.after_write,
            after_pipeline=self._after_pipeline,
            stream_error_reporting=self._stream_error_reporting,
        )
        try:
            if self._preload is not None:
                self._apply_preload(*self._preload)
            for port, ifname in self._interfaces.items():
                self.ports.attach(port, ifname)
            await self.p4runtime.start()
            if self.thrift_address is not None:
                self.thrift = ThriftServer(lambda: self.device_mgr, self.thrift_address, loop)
                self.thrift.start()
        except BaseException:
            await self._teardown()
            raise
        self._started = True
        log.info(
            "software switch up: device id %d, P4Runtime on port %d%s, CPU port %s",
            self.device_id,
            self.grpc_port,
            f", Thrift on port {self.thrift_port}" if self.thrift else "",
            self.cpu_port,
        )

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._teardown()
        log.info("software switch stopped")

    async def _teardown(self) -> None:
        if self.thrift is not None:
            await self.thrift.stop()
            self.thrift = None
        if hasattr(self, "p4runtime"):
            await self.p4runtime.stop()
        if hasattr(self, "ports"):
            self.ports.close()
        if hasattr(self, "device_mgr"):
            self.device_mgr.close()

    async def __aenter__(self) -> SoftwareSwitch:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def grpc_port(self) -> int:
        return self.p4runtime.port

    @property
    def grpc_target(self) -> str:
        """``host:port`` a client can dial."""
        host = self.grpc_address.rsplit(":", 1)[0] or "127.0.0.1"
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{host}:{self.grpc_port}"

    @property
    def thrift_port(self) -> int | None:
        return self.thrift.port if self.thrift is not None else None

    # ----- pipeline preload ------------------------------------------------------

    def _after_pipeline(self) -> None:
        if self.on_pipeline is None:
            return
        try:
            self.on_pipeline()
        except Exception:  # the pipeline is in: a failed hook must not answer otherwise
            log.exception("pipeline-change hook failed")

    def preload(self, p4info_path: str | Path, json_path: str | Path) -> None:
        """Commit a pipeline at start (or now, if started), as a client's
        SetForwardingPipelineConfig VERIFY_AND_COMMIT would."""
        p4info = load_p4info(p4info_path)
        device_config = Path(json_path).read_bytes()
        if self._started:
            self._apply_preload(p4info, device_config)
        else:
            self._preload = (p4info, device_config)

    def _apply_preload(self, p4info: p4info_pb2.P4Info, device_config: bytes) -> None:
        config = p4runtime_pb2.ForwardingPipelineConfig(
            p4info=p4info, p4_device_config=device_config
        )
        try:
            self.device_mgr.set_pipeline(
                p4runtime_pb2.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT, config
            )
        except P4RuntimeError as e:
            raise ValueError(f"cannot load the pipeline: {e.message}") from None

    # ----- packets ---------------------------------------------------------------

    def _receive(self, port: int, packet: bytes) -> None:
        """A packet arrived on ``port``: run it and deliver its outputs."""
        try:
            outputs = self.device_mgr.process(packet, port)
        except Exception:
            self.process_errors += 1
            if self.process_errors <= LOGGED_PROCESS_ERRORS:
                log.exception(
                    "pipeline failed on a %d-byte packet from port %d", len(packet), port
                )
            return
        cpu = self.cpu_port
        for egress, out in outputs:
            if cpu is not None and egress == cpu:
                self.device_mgr.packet_in(out)
            else:
                self.ports.transmit(egress, out)

    def _packet_out(self, packet: bytes) -> None:
        if self.cpu_port is None:
            log.warning("packet-out dropped: the switch has no CPU port")
            return
        self._receive(self.cpu_port, packet)

    async def inject(self, port: int, packet: bytes) -> None:
        """Put ``packet`` into the switch as if it arrived on ``port``.

        The pipeline runs before this returns: its outputs are already in
        the port queues (and packet-ins on their way to the primary).
        """
        self._receive(port, bytes(packet))

    def output_queue(self, port: int) -> asyncio.Queue[bytes]:
        """The queue of packets the switch sent to in-process ``port``."""
        return self.ports.queue(port)

    async def expect(self, port: int, timeout: float | None = 5.0) -> bytes:
        """The next packet sent out of ``port`` (``asyncio.TimeoutError`` if none)."""
        return await asyncio.wait_for(self.ports.queue(port).get(), timeout)

    def drain(self, port: int) -> list[bytes]:
        """Every packet waiting on ``port``'s queue, now (possibly none)."""
        q = self.ports.queue(port)
        out = []
        while not q.empty():
            out.append(q.get_nowait())
        return out
