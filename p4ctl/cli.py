"""The ``p4ctl`` command line: the one place that wires the pieces together.

- ``p4ctl run --config FILE``: the controller, one :class:`DeviceController` per device.
- ``p4ctl switch ...``: the software switch (P4Runtime + Thrift servers, ports).
- ``p4ctl demo``: the main job end to end on an embedded software switch.
- ``p4ctl flows --config FILE``: the flow table as the switch has it, its overflow
  slots included (read as a backup).
- ``p4ctl compile``: p4c -> ``pipelines/`` (and ``--check``).
- ``p4ctl hash KEY``: the bucket hash of a flow key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    from p4ctl import compile as compile_cmd
    from p4ctl.switch import main as switch_main

    parser = argparse.ArgumentParser(prog="p4ctl", description="Flow-cache control plane for P4")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the controller")
    run.add_argument("--config", "-c", type=Path, required=True, help="configuration (YAML)")

    switch_main.add_arguments(sub.add_parser("switch", help="run the software switch"))

    demo = sub.add_parser("demo", help="the main job end to end on an embedded software switch")
    demo.add_argument("--config", "-c", type=Path, default=None,
                      help="configuration (default: examples/p4ctl.yaml)")

    flows = sub.add_parser("flows", help="show the flow table a switch has")
    flows.add_argument("--config", "-c", type=Path, required=True)
    flows.add_argument("--device", help="device name (default: the first)")
    flows.add_argument("--limit", type=switch_main.whole_number, default=100,
                       help="at most this many entries")

    compile_cmd.add_arguments(sub.add_parser("compile", help="compile p4src/ with p4c"))

    sub.add_parser("hash", help="print the bucket hash of a flow key").add_argument(
        "key", help="vrf,src,dst,proto,sport,dport (proto as a number or tcp/udp/icmp)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = args.command in ("demo", "flows", "hash")  # their output is the point
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "hash":
        from p4ctl.flows.key import FlowKey

        try:
            key = FlowKey.parse(args.key)
        except ValueError as exc:
            print(f"p4ctl hash: {exc}", file=sys.stderr)
            return 2
        print(f"{key.bucket_hash():#010x}")
        return 0
    if args.command == "compile":
        from p4ctl import compile as compile_cmd

        return compile_cmd.run(args)
    if args.command == "switch":
        from p4ctl.switch import main as switch_main

        return asyncio.run(switch_main.run(args))
    if args.command == "run":
        return asyncio.run(_run(args.config))
    if args.command == "demo":
        from p4ctl.demo import run_demo

        return asyncio.run(run_demo(args.config))
    if args.command == "flows":
        try:
            code = asyncio.run(_flows(args.config, args.device, args.limit))
            sys.stdout.flush()  # here, where a closed pipe can still be told apart
            return code
        except BrokenPipeError:  # `p4ctl flows | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    return 2


def _load(path: Path):  # -> Config | None
    from p4ctl.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless ``stop`` is set first, which cancels it; True if it finished.

    Its error, if it raised one, is raised here.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return False
    task.result()
    return True


async def _run(config_path: Path) -> int:
    from p4ctl.config import ConfigError
    from p4ctl.config.values import split_host_port
    from p4ctl.controller import DeviceController
    from p4ctl.gc_freeze import GcFreezer
    from p4ctl.metrics import Metrics, serve
    from p4ctl.p4rt.errors import P4RuntimeError
    from p4ctl.pipeline import PipelineSpecError

    log = logging.getLogger("p4ctl")
    config = _load(config_path)
    if config is None:
        return 2
    metrics = Metrics()
    freezer = GcFreezer()
    try:
        controllers = [DeviceController(config, d, metrics) for d in config.devices]
    except (ConfigError, PipelineSpecError) as exc:
        print(exc, file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = None
    try:
        if config.metrics.address:
            host, port = split_host_port(config.metrics.address)
            try:
                server = await serve(metrics, host, port)
            except OSError as exc:  # the port taken, an address not ours: the config's fault
                print(f"{config_path}: metrics.address {config.metrics.address}: {exc}",
                      file=sys.stderr)
                return 2
        for c in controllers:
            if not await _unless_stopped(c.start(), stop):
                return 0  # stopped while connecting (the switch may never answer)
        freezer.install()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), config.metrics.log_interval)
            for c in controllers:
                log.info("%s", c.status_line())
    except P4RuntimeError as exc:
        log.error("%s", exc)
        return 1
    finally:
        freezer.remove()
        for c in controllers:
            await c.stop()
        if server is not None:
            server.close()
            await server.wait_closed()
    return 0


async def _flows(config_path: Path, device_name: str | None, limit: int) -> int:
    from p4.v1 import p4runtime_pb2

    from p4ctl.controller import credentials_of
    from p4ctl.p4rt.client import P4RuntimeClient
    from p4ctl.p4rt.encoding import EncodingError
    from p4ctl.p4rt.errors import P4RuntimeError
    from p4ctl.p4rt.registers import RegisterError, register_backend
    from p4ctl.pipeline import FlowMapping, PipelineSpec, PipelineSpecError

    config = _load(config_path)
    if config is None:
        return 2
    devices = [d for d in config.devices if device_name in (None, d.name)]
    if not devices:
        print(f"p4ctl flows: no device named {device_name!r}", file=sys.stderr)
        return 2
    device = devices[0]
    try:
        spec = PipelineSpec.load(device.pipeline)
        p4info = spec.load_p4info()
        mapping = FlowMapping(spec, p4info)
    except PipelineSpecError as exc:
        print(f"p4ctl flows: {exc}", file=sys.stderr)
        return 2
    # Election id 0, lower than any controller's (the configuration refuses 0):
    # a backup while a controller runs. Alone on the switch it is primary for
    # the read, and writes nothing.
    client = P4RuntimeClient(device.address, device.device_id, election_id=(0, 0),
                             role=device.role, p4info=p4info,
                             credentials=credentials_of(device))
    registers = register_backend(str(device.registers), client=client,
                                 thrift_address=device.thrift_address, p4info=p4info)
    shown = overflow = 0
    more = False

    def show(flow_id: int, key: object, action: object, packets: int, octets: int) -> None:
        # the action last: its text has no fixed width (a NAT names two endpoints)
        print(f"{flow_id:>7} {packets:>9} {octets:>11}  {key!s:<56} {action}")

    try:
        await client.connect(10)
        print(f"{'flow id':>7} {'packets':>9} {'bytes':>11}  {'key':<56} action")
        wanted = p4runtime_pb2.TableEntry(table_id=mapping.flow_table_id)
        wanted.counter_data.SetInParent()
        entities = client.read_raw([p4runtime_pb2.Entity(table_entry=wanted)])
        async for entity in entities:
            if shown >= limit:
                more = True
                await entities.aclose()  # the read's call ends now, not when collected
                break
            entry = entity.table_entry
            key, flow_id, action = mapping.parse_table_entry(entry)
            counters = entry.counter_data
            show(flow_id, key, action, counters.packet_count, counters.byte_count)
            shown += 1
        if not more:
            # the overflow area: register slots whose valid bit is set (read
            # also when the list is full, to say whether there are more)
            names = mapping.registers
            slots = [i for i, v in enumerate(await registers.read_all(names["overflow_valid"]))
                     if v]
            more = len(slots) > limit - shown
            slots = slots[:limit - shown]
            if slots:
                cells = {names[role]: await registers.read_all(names[role]) for role in (
                    "overflow_key_addrs", "overflow_key_rest", "overflow_action",
                    "overflow_port", "overflow_nat_addrs", "overflow_nat_ports")}
                counts = {c.index: c.data async for c in client.read_counters(
                    spec.role("counters", "overflow"))}
                for slot in slots:
                    key, action = mapping.parse_overflow(
                        {name: values[slot] for name, values in cells.items()})
                    data = counts.get(slot)
                    show(spec.sizes.flow_entries + slot, key, action,
                         data.packet_count if data else 0, data.byte_count if data else 0)
                    overflow += 1
                shown += overflow
    except (P4RuntimeError, RegisterError, PipelineSpecError, EncodingError) as exc:
        print(f"p4ctl flows: {exc}", file=sys.stderr)
        return 1
    finally:
        await registers.close()
        await client.close()
    print(f"({shown} entries shown"
          + (f", {overflow} of them in overflow slots" if overflow else "")
          + ("; there are more: --limit N shows N" if more else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
