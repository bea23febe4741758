"""Metrics render in the Prometheus text format and are served over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from p4ctl import metrics as metrics_module
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
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /metrics HTTP/1.0\r\n\r\n")
        refused = await reader.read()
        writer.close()
        assert refused.startswith(b"HTTP/1.0 405 Method Not Allowed\r\n")
        assert b"\r\nAllow: GET, HEAD\r\n" in refused
    finally:
        server.close()
        await server.wait_closed()


def test_help_text_is_escaped_and_counters_only_grow() -> None:
    m = Metrics()
    counter = m.counter("x_total", "first line\nsecond C:\\path")
    counter.inc(5)
    assert "# HELP p4ctl_x_total first line\\nsecond C:\\\\path\n" in m.render()
    with pytest.raises(ValueError):
        counter.inc(-3)
    assert counter.get() == 5


def test_collectors_of_several_devices_are_all_rendered() -> None:
    m = Metrics()
    for device, count in (("s1", 5), ("s2", 7)):
        m.counter("events_total", "Events", collect=lambda d=device, n=count: [
            ((("device", d), ("event", "installed")), n)])
    m.counter("failures_total", "Failures", collect=lambda: [])
    text = m.render()
    assert text.endswith("# TYPE p4ctl_failures_total counter\n")  # no unlabelled 0
    assert text.count("# TYPE p4ctl_events_total counter") == 1
    assert 'p4ctl_events_total{device="s1",event="installed"} 5' in text
    assert 'p4ctl_events_total{device="s2",event="installed"} 7' in text


async def request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    m = Metrics()
    m.counter("x_total", "x").inc(7)
    server = await serve(m, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_get_names_the_charset_and_head_has_no_body(port: int) -> None:
    head, _, body = (await request(port, b"GET /metrics HTTP/1.1\r\n\r\n")).partition(b"\r\n\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n" in head
    assert b"p4ctl_x_total 7" in body
    head, _, body = (await request(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK") and body == b""
    assert (await request(port, b"nonsense\r\n\r\n")).startswith(b"HTTP/1.0 400")


async def test_odd_clients_are_cut_off_without_an_error(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line past the stream's limit, and a client that trickles headers forever."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        assert await request(port, b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n") == b""
        monkeypatch.setattr(metrics_module, "REQUEST_TIMEOUT_S", 0.5)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\n")
        closed = False
        for _ in range(100):  # a header every 0.1 s: each line in time, the request never
            try:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                closed = await asyncio.wait_for(reader.read(1), 0.1) == b""
            except TimeoutError:
                continue
            except ConnectionError:
                closed = True
            if closed:
                break
        writer.close()
        assert closed
    finally:
        loop.set_exception_handler(None)
    assert errors == []
