"""The ``p4ctl`` command line: the one place that wires the pieces together."""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p4ctl", description="Flow-cache control plane for P4")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("hash", help="print the bucket hash of a flow key").add_argument(
        "key", help="vrf,src,dst,proto,sport,dport"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "hash":
        from p4ctl.flows.key import FlowKey

        key = FlowKey.parse(args.key)
        print(f"{key.bucket_hash():#010x}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
