"""``p4ctl switch``: run the software switch from the command line.

Wiring (done in ``p4ctl/cli.py``)::

    from p4ctl.switch import main as switch_main
    switch_main.add_arguments(sub.add_parser("switch", help=...))
    ...
    return asyncio.run(switch_main.run(args))

Options follow ``simple_switch_grpc`` where it has them (``-i PORT@IFNAME``,
``--device-id``, ``--grpc-server-addr`` as ``--grpc-address``,
``--cpu-port``, ``--thrift-port`` as ``--thrift-address``), but every
address defaults to loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from p4ctl.gc_freeze import GcFreezer
from p4ctl.switch.device import SoftwareSwitch

log = logging.getLogger(__name__)

__all__ = ["add_arguments", "run", "whole_number"]


def whole_number(text: str) -> int:
    """An argparse type: a whole number, 0 or more, in plain decimal (argparse names the option).

    ``int()`` alone would take ``1_000`` and other scripts' digits.
    """
    digits = text.strip()
    if digits.startswith("-") and digits[1:].isascii() and digits[1:].isdigit():
        raise argparse.ArgumentTypeError(f"{digits} is less than 0")
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(digits)


#: v1model's ``standard_metadata.ingress_port`` and ``egress_spec`` width
PORT_BITS = 9


def _interface(text: str) -> tuple[int, str]:
    port, sep, ifname = text.partition("@")
    if not sep or not ifname:
        raise argparse.ArgumentTypeError(f"expected PORT@IFNAME, got {text!r}")
    try:
        number = whole_number(port)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"port in {text!r}: {exc}") from None
    if number >= 1 << PORT_BITS:
        raise argparse.ArgumentTypeError(
            f"port in {text!r}: v1model ports have {PORT_BITS} bits (0 to {(1 << PORT_BITS) - 1})")
    return number, ifname


def _cpu_port(text: str) -> int | None:
    if text.lower() in ("none", "off", "0"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a port number or 'none', got {text!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``p4ctl switch`` options."""
    parser.add_argument("--device-id", type=int, default=1, help="P4Runtime device id (default 1)")
    parser.add_argument(
        "--grpc-address",
        default="127.0.0.1:9559",
        help="P4Runtime listen address (default 127.0.0.1:9559)",
    )
    parser.add_argument(
        "--thrift-address",
        default="127.0.0.1:9090",
        help="BMv2 Thrift runtime listen address for register calls (default 127.0.0.1:9090)",
    )
    parser.add_argument(
        "--no-thrift",
        action="store_true",
        help="do not serve BMv2's Thrift runtime API",
    )
    parser.add_argument(
        "--cpu-port",
        type=_cpu_port,
        default=255,
        help="port number for packet-in/packet-out, or 'none' (default 255)",
    )
    parser.add_argument(
        "-i",
        "--interface",
        type=_interface,
        action="append",
        default=[],
        metavar="PORT@IFNAME",
        help="attach a switch port to a Linux interface (repeatable)",
    )
    parser.add_argument(
        "--pipeline",
        type=Path,
        metavar="DIR",
        help="preload DIR/p4info.txtpb and DIR/bmv2.json (e.g. pipelines/flowcache)",
    )
    parser.add_argument("--p4info", type=Path, help="preload this P4Info (with --json)")
    parser.add_argument("--json", type=Path, help="preload this BMv2 JSON (with --p4info)")
    parser.add_argument(
        "--bmv2-registers",
        action="store_true",
        help="answer UNIMPLEMENTED to P4Runtime RegisterEntry, as simple_switch_grpc does",
    )


def _pipeline_files(args: argparse.Namespace) -> tuple[Path, Path] | None:
    if args.pipeline is not None:
        if args.p4info or args.json:
            raise ValueError("give either --pipeline or --p4info/--json, not both")
        return args.pipeline / "p4info.txtpb", args.pipeline / "bmv2.json"
    if args.p4info or args.json:
        if not (args.p4info and args.json):
            raise ValueError("--p4info and --json go together")
        return args.p4info, args.json
    return None


async def run(args: argparse.Namespace) -> int:
    """Run the switch until SIGINT or SIGTERM; the process exit code."""
    ports: dict[int, str] = {}
    for port, ifname in args.interface:
        if port in ports:
            log.error("port %d given twice", port)
            return 2
        ports[port] = ifname
    try:
        files = _pipeline_files(args)
    except ValueError as e:
        log.error("%s", e)
        return 2
    try:
        switch = SoftwareSwitch(
            device_id=args.device_id,
            grpc_address=args.grpc_address,
            thrift_address=None if args.no_thrift else args.thrift_address,
            cpu_port=args.cpu_port,
            ports=ports,
            registers_via_p4runtime=not args.bmv2_registers,
        )
        if files is not None:
            for f in files:
                if not f.is_file():
                    log.error("pipeline file %s not found", f)
                    return 2
            switch.preload(*files)
            log.info("preloading pipeline %s + %s", *files)
    except ValueError as e:
        log.error("%s", e)
        return 2

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await switch.start()
        except (OSError, ValueError) as e:
            log.error("cannot start the switch: %s", e)
            return 1
        freezer = GcFreezer()
        freezer.install()
        switch.on_pipeline = freezer.settle
        for port, ifname in sorted(ports.items()):
            log.info("port %d <-> %s", port, ifname)
        log.info(
            "P4Runtime on %s, device id %d; stop with Ctrl-C",
            switch.grpc_target,
            args.device_id,
        )
        await stop.wait()
        log.info("stopping")
        freezer.remove()
        await switch.stop()
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
