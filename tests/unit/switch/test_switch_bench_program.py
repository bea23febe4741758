"""The benchmark's flow-cache-shaped program does what its figures claim."""

from __future__ import annotations

import zlib

from p4ctl.switch import Pipeline, TableEntry
from p4ctl.switch.interp.bench import _fill_last_ways, _packet, flowcache_like


def test_miss_overflow_hit_and_main_hit() -> None:
    pipe = Pipeline.from_json(flowcache_like(ways=8, overflow=1024))
    pkt = _packet(5)
    src = int.from_bytes(pkt[26:30], "big")
    key = (((((0 << 32 | src) << 32 | (10 << 24 | 2)) << 8 | 6) << 16 | 1234) << 16) | 80
    h = zlib.crc32(key.to_bytes(15, "big"))
    res = pipe.process(pkt, 1)
    assert res.outputs == []
    assert res.digests == [("new_flow_digest_t", (0, src, 10 << 24 | 2, 6, 1234, 80, 1, h))]
    _fill_last_ways(pipe, [pkt], 8, 1024)
    slot = (h % 128) * 8 + 7
    res = pipe.process(pkt, 1, now_us=42)
    assert res.outputs == [(3, pkt)] and res.digests == []
    assert pipe.counters["FlowIngress.overflow_counter"].read(slot) == (1, len(pkt))
    assert pipe.registers["FlowIngress.flow_last_seen"].read(4096 + slot) == 42
    assert pipe.registers["FlowIngress.flow_tcp_state"].read(4096 + slot) == 0x10  # ACK
    table = pipe.tables["FlowIngress.flow_table"]
    table.insert(TableEntry((0, src, 10 << 24 | 2, 6, 1234, 80), 0, "FlowIngress.flow_forward",
                            (11, 4)))  # fmt: skip
    assert pipe.process(pkt, 1).outputs == [(4, pkt)]
    assert pipe.counters["FlowIngress.overflow_counter"].read(slot) == (1, len(pkt))
