"""Write throughput of the P4Runtime client: batched writes against a loop of single writes.

Prints entries/s for INSERTs of flow-table entries sent by ``P4RuntimeClient.write``
in requests of 1, 10, 100 and 1000 updates, next to the baseline of the same
run: a loop that awaits one ``write()`` (one WriteRequest) per entry, as a
naive controller would. The client's encoding cost alone (entities to
protobuf) is printed too, so the share of the client in each figure is
visible. Each measurement starts from an empty table; entries are deleted
(untimed) between them.

By default the software switch runs in a child process (as in deployment:
the client does not share its CPU time with the switch's event loop); with
``--address HOST:PORT`` any P4Runtime server is measured instead, for example
``simple_switch_grpc`` (the client pushes the pipeline itself).

Run: ``python benchmarks/bench_writes.py [--entries N] [--single-entries N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Iterator
from pathlib import Path

from p4ctl.p4rt import ClientOptions, P4RuntimeClient, PipelineConfig, TableEntry, insert

PIPELINE = Path(__file__).resolve().parent.parent / "pipelines" / "flowcache"
BATCH_SIZES = (1, 10, 100, 1000)


def flows(n: int, offset: int = 0) -> list[TableEntry]:
    out = []
    for i in range(offset, offset + n):
        out.append(
            TableEntry(
                "flow_table",
                {"vrf": i & 0xFF, "src_addr": 0x0A000000 + i, "dst_addr": 0xC0A80001,
                 "proto": 6, "src_port": 1024 + i % 60000, "dst_port": 80},
                "flow_forward",
                {"flow_id": i, "port": 1 + i % 4},
                idle_timeout_ns=180 * 10**9,
            )
        )
    return out


def _run_switch(conn: multiprocessing.connection.Connection, preload: bool) -> None:
    """Child process: the software switch alone on its loop until the parent says stop."""
    from p4ctl.switch.device import SoftwareSwitch

    async def main() -> None:
        switch = SoftwareSwitch(device_id=1, grpc_address="127.0.0.1:0", thrift_address=None)
        if preload:  # the bundled pipeline, so no client has to push it
            switch.preload(PIPELINE / "p4info.txtpb", PIPELINE / "bmv2.json")
        await switch.start()
        conn.send(switch.grpc_target)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # until the parent says stop
        await switch.stop()

    asyncio.run(main())


@contextlib.contextmanager
def switch_process(preload: bool = False) -> Iterator[str]:
    """A software switch in a process of its own, as a deployment runs it; yields its address."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_run_switch, args=(child, preload), daemon=True)
    proc.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        proc.join(30)


async def clear(client: P4RuntimeClient, entries: list[TableEntry]) -> None:
    (await client.delete(entries)).raise_on_error()


async def measure(args: argparse.Namespace, address: str) -> None:
    pipeline = PipelineConfig.bmv2(PIPELINE / "p4info.txtpb", PIPELINE / "bmv2.json")
    client = P4RuntimeClient(address, args.device_id, election_id=(0, 1), pipeline=pipeline,
                             options=ClientOptions())
    await client.connect()
    try:
        rows: list[tuple[str, int, int, float]] = []

        # warm-up (untimed): first RPCs on a channel and first table inserts cost extra
        warm = flows(1000, offset=10**6)
        (await client.insert(warm)).raise_on_error()
        for e in warm[:100]:
            (await client.delete([e])).raise_on_error()
        await clear(client, warm[100:])

        many = flows(args.entries)
        start = time.perf_counter()
        for e in many:
            insert(e).to_proto(client.p4info)  # type: ignore[arg-type]
        encode_s = time.perf_counter() - start
        rows.append(("client encoding alone (no I/O)", len(many), 0, encode_s))

        for size in BATCH_SIZES:
            entries = many if size >= 10 else many[: args.single_entries]
            start = time.perf_counter()
            result = await client.write([insert(e) for e in entries], max_updates_per_request=size)
            elapsed = time.perf_counter() - start
            result.raise_on_error()
            rows.append((f"write(), {size} per request", len(entries), result.requests, elapsed))
            await clear(client, entries)

        single = many[: args.single_entries]
        start = time.perf_counter()
        for e in single:
            (await client.write([insert(e)])).raise_on_error()
        elapsed = time.perf_counter() - start
        rows.append(("baseline: loop, one write() per entry", len(single), len(single), elapsed))
        await clear(client, single)
    finally:
        await client.close()

    print(f"P4Runtime write throughput, flow_table INSERT, target {args.target_name} ({address})")
    print(f"{'mode':40} {'entries':>8} {'requests':>9} {'seconds':>8} {'entries/s':>10}")
    for name, n, requests, seconds in rows:
        print(f"{name:40} {n:8d} {requests:9d} {seconds:8.3f} {n / seconds:10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20000,
                        help="entries per batched measurement (default 20000)")
    parser.add_argument("--single-entries", type=int, default=2000,
                        help="entries for 1-per-request and the loop baseline (default 2000)")
    parser.add_argument("--address", help="measure this P4Runtime server instead (host:port)")
    parser.add_argument("--device-id", type=int, default=1)
    args = parser.parse_args()
    if args.address:
        args.target_name = "external"
        asyncio.run(measure(args, args.address))
        return
    args.target_name = "software switch, own process"
    with switch_process() as address:
        asyncio.run(measure(args, address))


if __name__ == "__main__":
    main()
