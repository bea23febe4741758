"""Counters and gauges for operators, in the Prometheus text format.

A :class:`Metrics` registry is created once per controller and handed to the
pieces that count (no module-level state). ``render()`` gives the text
exposition format (version 0.0.4); :func:`serve` exposes it over HTTP at
``/metrics`` with nothing but asyncio, so the controller needs no extra
dependency to be scraped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


@dataclass(slots=True)
class Metric:
    name: str
    help: str
    kind: str  # "counter" | "gauge"
    values: dict[Labels, float] = field(default_factory=dict)
    collect: Callable[[], Iterable[tuple[Labels, float]]] | None = None

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + amount

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = value

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def total(self) -> float:
        return sum(self.values.values())


class Metrics:
    """A registry of named metrics."""

    def __init__(self, prefix: str = "p4ctl_") -> None:
        self.prefix = prefix
        self._metrics: dict[str, Metric] = {}

    def _get(self, name: str, help: str, kind: str) -> Metric:
        full = self.prefix + name
        metric = self._metrics.get(full)
        if metric is None:
            metric = self._metrics[full] = Metric(full, help, kind)
        elif metric.kind != kind:
            raise ValueError(f"metric {full} is a {metric.kind}, not a {kind}")
        return metric

    def counter(self, name: str, help: str) -> Metric:
        return self._get(name, help, "counter")

    def gauge(self, name: str, help: str,
              collect: Callable[[], Iterable[tuple[Labels, float]]] | None = None) -> Metric:
        metric = self._get(name, help, "gauge")
        if collect is not None:
            metric.collect = collect
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.append(f"# HELP {metric.name} {metric.help}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            values = dict(metric.values)
            if metric.collect is not None:
                values.update(metric.collect())
            if not values:
                values = {(): 0.0}
            for labels, value in sorted(values.items()):
                number = int(value) if float(value).is_integer() else value
                lines.append(f"{metric.name}{_labels(labels)} {number}")
        return "\n".join(lines) + "\n"


async def serve(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` (anything else: 404) until the server is closed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                body = metrics.render().encode()
                head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            else:
                body = b"not found\n"
                head = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError) as exc:
            log.debug("metrics request failed: %s", exc)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    log.info("metrics at http://%s:%d/metrics", host, server.sockets[0].getsockname()[1])
    return server
