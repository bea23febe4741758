"""Metrics render in the Prometheus text format and are served over HTTP."""

from __future__ import annotations

import asyncio

from p4ctl.metrics import Metrics, serve


def test_render_counters_gauges_and_labels() -> None:
    m = Metrics()
    flows = m.counter("flows_installed_total", "Flows installed")
    flows.inc()
    flows.inc(2)
    drops = m.counter("digests_dropped_total", "Digests dropped")
    drops.inc(reason='rate "limit"')
    m.gauge("flows_active", "Active flows", collect=lambda: [((("state", "ADDED"),), 5)])
    text = m.render()
    assert "# TYPE p4ctl_flows_installed_total counter\np4ctl_flows_installed_total 3\n" in text
    assert 'p4ctl_digests_dropped_total{reason="rate \\"limit\\""} 1' in text
    assert 'p4ctl_flows_active{state="ADDED"} 5' in text


async def test_served_over_http() -> None:
    m = Metrics()
    m.counter("x_total", "x").inc(7)
    server = await serve(m, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        response = (await reader.read()).decode()
        writer.close()
        assert response.startswith("HTTP/1.0 200 OK")
        assert "p4ctl_x_total 7" in response
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /nope HTTP/1.0\r\n\r\n")
        assert (await reader.read()).startswith(b"HTTP/1.0 404")
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
