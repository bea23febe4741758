"""Flow store memory and allocation speed at full size (512k entries).

Prints bytes per flow entry (tracemalloc: everything the store allocates,
indexes included) and entries/s for allocate + ADDED, next to the baseline of
a plain dict of key tuples in the same run, so the figure can be judged.
Run: ``python benchmarks/bench_store.py [--entries N]``.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from p4ctl.flows.entry import ActionKind, FlowAction
from p4ctl.flows.key import FlowKey, pack_key
from p4ctl.flows.state import FlowState
from p4ctl.flows.store import FlowStore, StoreSizes


def keys(n: int) -> list[FlowKey]:
    out = []
    for i in range(n // 2):
        k = FlowKey(i & 7, 0x0A000000 + i, 0xC0A80000 + (i * 7919) % 65536, 6, 1024 + i % 60000, 80)
        out.append(k)
        out.append(k.reverse())
    return out


def fill(all_keys: list[FlowKey], sizes: StoreSizes) -> FlowStore:
    """The store as the agent fills it: each key packed from its fields here.

    The agent makes each packed key from a digest's fields; a key packed
    before the measurement would be memory the store never pays for.
    """
    store = FlowStore(sizes)
    fwd = FlowAction(ActionKind.FORWARD, 2)
    rev = FlowAction(ActionKind.FORWARD, 1)
    for i in range(0, len(all_keys), 2):
        a = store.allocate(pack_key(all_keys[i].values()), fwd, in_port=1)
        b = store.allocate(pack_key(all_keys[i + 1].values()), rev, in_port=2, forward=False)
        if a is None or b is None:
            continue
        store.pair(a, b)
        store.move(a, FlowState.ADDED)
        store.move(b, FlowState.ADDED)
    return store


def measure_store(all_keys: list[FlowKey], sizes: StoreSizes) -> tuple[float, float, int]:
    gc.collect()
    t0 = time.perf_counter()
    rate = len(fill(all_keys, sizes)) / (time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    store = fill(all_keys, sizes)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / len(store), rate, len(store)


def measure_baseline(all_keys: list[FlowKey]) -> float:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    table = {k.values(): (i, 2) for i, k in enumerate(all_keys)}
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used / len(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=512_000, help="flow entries to store")
    parser.add_argument("--table", type=int, default=0,
                        help="main table slots (default: twice --entries, so hash collisions "
                             "do not stop the store short of --entries)")
    args = parser.parse_args()
    table = args.table or 2 * args.entries
    sizes = StoreSizes(flow_entries=table - table % 4, overflow_entries=65536, bucket_ways=4)
    all_keys = keys(args.entries)
    per_entry, rate, stored = measure_store(all_keys, sizes)
    baseline = measure_baseline(all_keys)
    print(f"flow store: {stored} entries in {sizes.slots} slots, {per_entry:.0f} bytes/entry, "
          f"{rate:,.0f} entries/s (allocate + pair + ADDED)")
    print(f"baseline dict of key tuples -> (slot, port): {baseline:.0f} bytes/entry")


if __name__ == "__main__":
    main()
