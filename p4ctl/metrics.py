"""Counters and gauges for operators, in the Prometheus text format.

A :class:`Metrics` registry is created once per controller and handed to the
pieces that count (no module-level state). ``render()`` gives the text
exposition format (version 0.0.4); :func:`serve` exposes it over HTTP at
``/metrics`` with nothing but asyncio, so the controller needs no extra
dependency to be scraped.

A metric's samples are its own values plus what each of its collectors
yields: several devices register the same metric, each collector giving
its device's series (labelled with the device), and all are rendered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]
#: yields (labels, value) samples when the registry is rendered
Collector = Callable[[], Iterable[tuple[Labels, float]]]


def _escape(value: str) -> str:
    return _escape_help(value).replace('"', '\\"')


def _escape_help(text: str) -> str:
    """HELP text: backslash and line feed escaped (a quote stays as it is)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


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
    collectors: list[Collector] = field(default_factory=list)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0 and self.kind == "counter":
            raise ValueError(f"counter {self.name} cannot go down ({amount})")
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

    def counter(self, name: str, help: str, collect: Collector | None = None) -> Metric:
        """A counter (its name should end in ``_total``); ``collect`` adds samples of counts
        kept elsewhere, which must only grow."""
        return self._with(self._get(name, help, "counter"), collect)

    def gauge(self, name: str, help: str, collect: Collector | None = None) -> Metric:
        return self._with(self._get(name, help, "gauge"), collect)

    @staticmethod
    def _with(metric: Metric, collect: Collector | None) -> Metric:
        if collect is not None:
            metric.collectors.append(collect)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            values = dict(metric.values)
            for collect in metric.collectors:
                values.update(collect())
            if not values and not metric.collectors:
                # a plain counter not yet counted; collected series (labelled,
                # say, by device) come when there is something to say
                values = {(): 0.0}
            for labels, value in sorted(values.items()):
                number = int(value) if float(value).is_integer() else value
                lines.append(f"{metric.name}{_labels(labels)} {number}")
        return "\n".join(lines) + "\n"


#: how long a client may take to send its request, and to take the answer
REQUEST_TIMEOUT_S = 5.0


async def serve(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Serve ``GET`` (and ``HEAD``) ``/metrics`` until the server is closed.

    Another path is answered 404, another method on it 405 (and 400 what is
    not a request line), and
    a client gets :data:`REQUEST_TIMEOUT_S` for its whole request: a slow
    client, or one whose line is longer than the stream's 64 KiB limit, is
    cut off, never a reason to log an error.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request = await reader.readline()
                while await reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                parts = request.decode("latin-1").split()
                extra = ""
                if len(parts) < 2:
                    status, head, body = "400 Bad Request", "text/plain", b"bad request\n"
                elif parts[1].split("?")[0] != "/metrics":
                    status, head, body = "404 Not Found", "text/plain", b"not found\n"
                elif parts[0] in ("GET", "HEAD"):
                    status, head = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
                    body = metrics.render().encode()
                else:
                    status, head, body = "405 Method Not Allowed", "text/plain", b"GET or HEAD\n"
                    extra = "Allow: GET, HEAD\r\n"
                writer.write(f"HTTP/1.0 {status}\r\nContent-Type: {head}\r\n{extra}"
                             f"Content-Length: {len(body)}\r\n\r\n".encode())
                if parts[:1] != ["HEAD"]:
                    writer.write(body)
                await writer.drain()
        except (TimeoutError, ConnectionError, ValueError) as exc:
            # ValueError: a line longer than the stream's limit
            log.debug("metrics request failed: %s", exc)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    log.info("metrics at http://%s:%d/metrics", host, server.sockets[0].getsockname()[1])
    return server
