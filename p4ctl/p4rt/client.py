"""The P4Runtime client: one connection to one device, for one controller.

:class:`P4RuntimeClient` is everything the controller says to a switch:

- **Connection and arbitration.** ``await client.connect()`` opens the gRPC
  channel, opens the ``StreamChannel`` and sends a ``MasterArbitrationUpdate``
  with the device id, election id and role. The server answers on the stream
  (status OK: we are primary; otherwise a backup, told the primary's election
  id) and again whenever the primary changes. :attr:`is_primary` follows it,
  and handlers registered with :meth:`on_mastership` hear every change.
- **Resilience.** A background task owns the session. When the stream or the
  channel drops it marks the client disconnected (not primary: writes stop),
  tells the mastership handlers, and reconnects with exponential backoff and
  jitter; after re-arbitration the handlers get an event with
  ``reconnected=True`` so the controller can audit and replay its table. With
  a :class:`PipelineConfig` given, the client first checks the device's
  pipeline cookie and pushes the pipeline if the device lost or changed it.
- **Writes** (:meth:`write`): any number of updates, split into WriteRequests
  under the gRPC message limit and an optional count limit, sent in order;
  the result lists every update's status (``p4.v1.Error`` details decoded).
- **Reads** (:meth:`read` and friends): async iterators over the entities as
  they arrive, never a list of everything.
- **The stream**: digest lists, idle-timeout notifications, packet-in and
  stream errors go through bounded queues to registered handlers (a burst
  cannot grow memory without bound: overflow is dropped and counted in
  :attr:`stats`); digest lists are acknowledged after their handlers return.
- :meth:`close` cancels and awaits every task the client started.

Handlers may be plain functions or coroutine functions; an exception in a
handler is logged and never stops the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc

from p4ctl.log_throttle import LogThrottle
from p4ctl.p4rt.channel import DEFAULT_MAX_MESSAGE_BYTES, Credentials, open_channel
from p4ctl.p4rt.device_config import PipelineConfig
from p4ctl.p4rt.encoding import EncodingError
from p4ctl.p4rt.entities import (
    CounterEntry,
    DigestEntry,
    DirectCounterEntry,
    Entity,
    RegisterEntry,
    TableEntry,
    Update,
    UpdateType,
    decode_entity,
)
from p4ctl.p4rt.errors import (
    OK,
    ClientClosedError,
    ErrorKind,
    NotPrimaryError,
    P4RuntimeError,
    UpdateStatus,
    WriteResult,
    decode_write_error,
)
from p4ctl.p4rt.idle import IdleRepeatFilter
from p4ctl.p4rt.messages import (
    DigestList,
    IdleTimeoutNotification,
    PacketIn,
    PacketOut,
    StreamError,
)
from p4ctl.p4rt.p4info import P4Info
from p4ctl.p4rt.wire import LEN, field_number, tag, varint, varint_field, varint_len

__all__ = [
    "ClientOptions",
    "ClientStats",
    "DevicePipeline",
    "MastershipEvent",
    "P4RuntimeClient",
]

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[Any] | Any]
H = TypeVar("H", bound=Handler)

ElectionId = tuple[int, int]

# RPC-wide codes after which the remaining requests of a write are not sent:
# the connection, the role or the pipeline is wrong, not one update.
_STOP_CODES = frozenset(
    {
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
# Codes for which the first connection attempt gives up at once (retrying cannot help).
_FATAL_CONNECT_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


@dataclass(slots=True)
class ClientOptions:
    """Tunables of a :class:`P4RuntimeClient`; the defaults suit BMv2 and the software switch."""

    #: the largest WriteRequest sent (the server's receive limit, gRPC's 4 MiB by default)
    max_request_bytes: int = DEFAULT_MAX_MESSAGE_BYTES - 64 * 1024
    #: at most this many updates per WriteRequest (None: only the size limit)
    max_updates_per_request: int | None = None
    #: seconds to wait for the first arbitration answer of a session
    arbitration_timeout: float = 10.0
    #: seconds for unary RPCs (Write, pipeline, capabilities); None: no limit
    rpc_timeout: float | None = 120.0
    #: seconds for a whole Read, every response of it (a switch that stops
    #: answering would hold a read for ever); None: no limit
    read_timeout: float | None = 600.0
    #: reconnection backoff: first delay, multiplier, ceiling (seconds), jitter fraction
    backoff_initial: float = 0.1
    backoff_multiplier: float = 2.0
    backoff_max: float = 10.0
    backoff_jitter: float = 0.2
    #: reconnect when the stream or channel drops (False: stay disconnected)
    reconnect: bool = True
    #: capacity of each handler queue (packet-in, digests, idle timeouts, errors)
    queue_size: int = 4096
    #: digest lists handled concurrently (their acks still follow their handlers)
    digest_concurrency: int = 1
    #: fold repeated idle notifications of an entry into one per TTL (see idle.py)
    idle_repeat_filter: bool = True
    #: gRPC keepalive pings (ms) to notice a dead peer without traffic; None: off
    keepalive_ms: int | None = None


@dataclass(slots=True)
class ClientStats:
    """Counters of what the client saw and what it had to drop."""

    sessions: int = 0
    disconnects: int = 0
    packets_in: int = 0
    packets_in_dropped: int = 0
    digest_lists: int = 0
    digest_lists_dropped: int = 0
    digest_acks: int = 0
    #: acks not sent: their list came on an earlier session
    digest_acks_stale: int = 0
    idle_notifications: int = 0
    #: not handed to the handlers: their queue was full
    idle_notifications_dropped: int = 0
    idle_repeats_suppressed: int = 0
    stream_errors: int = 0
    stream_errors_dropped: int = 0
    decode_errors: int = 0
    handler_errors: int = 0


@dataclass(frozen=True, slots=True)
class MastershipEvent:
    """A change of this client's role: primary or not, connected or not.

    ``reconnected`` is True for the first event of a session that follows a
    lost one: the device may have lost state or another controller may have
    written, so a primary should audit and replay. ``pipeline_pushed`` says
    whether the client (re)installed its pipeline before this event (the
    device then has empty tables).
    """

    is_primary: bool
    connected: bool
    primary_election_id: ElectionId | None = None
    reconnected: bool = False
    pipeline_pushed: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class DevicePipeline:
    """What GetForwardingPipelineConfig returned (fields absent per response type are None)."""

    p4info: P4Info | None
    device_config: bytes | None
    cookie: int | None


@dataclass(slots=True, eq=False)
class _Session:
    number: int
    channel: grpc.aio.Channel
    stub: p4runtime_pb2_grpc.P4RuntimeStub
    call: Any = None  # grpc.aio.StreamStreamCall
    #: the Write RPC taking a serialized WriteRequest (see P4RuntimeClient.write)
    write: Any = None
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    arbitrated: bool = False


def _election(value: ElectionId | int) -> ElectionId:
    if isinstance(value, int):
        if not 0 <= value < 1 << 128:
            raise ValueError(f"an election id must be a 128-bit unsigned integer: {value!r}")
        return (value >> 64, value & ((1 << 64) - 1))
    high, low = value
    if not (0 <= high < 1 << 64 and 0 <= low < 1 << 64):
        raise ValueError(f"election id halves must be 64-bit unsigned: {value!r}")
    return high, low


async def _call_handler(handler: Handler, item: Any) -> None:
    result = handler(item)
    if inspect.isawaitable(result):
        await result


_STATUS_TASK = "_AioCall._handle_status_once_received"


#: what a call gets when the end of its session closed the channel under it
SESSION_ENDED = "the session ended during the call"


_E = TypeVar("_E")


def _of_kind(entity: Any, kind: type[_E], name: str) -> _E:
    """``entity`` if the switch answered the kind asked for; EncodingError if not."""
    if not isinstance(entity, kind):
        raise EncodingError(f"{name}: the switch answered a {type(entity).__name__} "
                            f"to a read of {kind.__name__}s")
    return entity


def _asked_to_cancel() -> bool:
    """Whether the running task itself is being cancelled (see :func:`_session_may_end`)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


@contextlib.contextmanager
def _session_may_end(rpc: str) -> Iterator[None]:
    """Around a call: the end of its session is a :class:`P4RuntimeError`, UNAVAILABLE.

    Closing a channel (a session ends: the stream broke, the switch
    restarted) cancels the calls on it, and grpc.aio then raises
    ``CancelledError`` in their callers, which nobody cancelled: passed on,
    it would end the task, and so the worker of a handler whose write was in
    flight. A task that is itself being cancelled still gets it.
    """
    try:
        yield
    except asyncio.CancelledError:
        if _asked_to_cancel():
            raise
        raise P4RuntimeError(grpc.StatusCode.UNAVAILABLE, SESSION_ENDED, rpc=rpc) from None


def _status_tasks() -> set[asyncio.Task[Any]]:
    """gRPC's pending per-call status tasks on this loop."""
    return {
        t for t in asyncio.all_tasks()
        if not t.done() and getattr(t.get_coro(), "__qualname__", "") == _STATUS_TASK
    }


async def _finish_call(call: Any, status_tasks: set[asyncio.Task[Any]] | None = None) -> None:
    """Wait (briefly) until gRPC has wound up a cancelled call.

    gRPC answers a cancelled call's status at once, but finishes the call in
    a task of its own (``_AioCall._handle_status_once_received``) once the core
    confirms; ``status_tasks`` are those of this call (taken by the caller
    around the call's start), awaited for up to a second so that nothing of
    the client outlives :meth:`P4RuntimeClient.close` or an abandoned read.
    """
    with contextlib.suppress(Exception):
        await call.code()
    if status_tasks:
        await asyncio.wait(status_tasks, timeout=1.0)
    await asyncio.sleep(0)


_UPDATES_TAG = tag(field_number(p4runtime_pb2.WriteRequest.DESCRIPTOR, "updates"), LEN)
# a serialized INSERT update starts with its type field (fields go in number order)
_INSERT_HEAD = varint_field(field_number(p4runtime_pb2.Update.DESCRIPTOR, "type"),
                            p4runtime_pb2.Update.INSERT)


class P4RuntimeClient:
    """Client of one P4Runtime device.

    ``address`` is ``host:port``; ``election_id`` a ``(high, low)`` pair or an
    int; ``role`` the role name (None: the default, full-access role) with an
    optional ``role_config`` message sent in ``Role.config``; ``credentials``
    None for plaintext or a :class:`Credentials` for TLS / mutual TLS;
    ``p4info`` the index used to encode and decode named entities (set
    automatically by :meth:`set_pipeline`); ``pipeline`` a configuration the
    client keeps installed on the device (checked by cookie whenever it
    becomes primary).
    """

    def __init__(
        self,
        address: str,
        device_id: int,
        *,
        election_id: ElectionId | int = (0, 1),
        role: str | None = None,
        role_config: Message | None = None,
        credentials: Credentials | None = None,
        p4info: P4Info | None = None,
        pipeline: PipelineConfig | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        self.address = address
        self.device_id = device_id
        self.election_id = _election(election_id)
        self.role = role or ""
        self.role_config = role_config
        self.credentials = credentials
        self.pipeline = pipeline
        self.p4info: P4Info | None = p4info or (pipeline.p4info if pipeline else None)
        self._throttles: dict[str, LogThrottle] = {}
        #: why the last push of ``pipeline`` failed (None: it did not); a
        #: :meth:`connect` that meets one raises it
        self.pipeline_error: P4RuntimeError | None = None
        self.options = options or ClientOptions()
        self.stats = ClientStats()

        self._session: _Session | None = None
        self._open_sessions: set[_Session] = set()  # channels not yet closed
        self._session_count = 0
        self._primary = False
        self._primary_election_id: ElectionId | None = None
        self._had_session = False
        self._pending_reconnected = False
        self._closing = False
        self._started = False
        self._ready = asyncio.Event()
        self._connect_error: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._run_task: asyncio.Task[Any] | None = None
        self._mastership_handlers: list[Handler] = []
        self._digest_handlers: dict[str | None, list[tuple[Handler, bool]]] = {}
        self._idle_handlers: list[Handler] = []
        self._packet_handlers: list[Handler] = []
        self._error_handlers: list[Handler] = []
        size = self.options.queue_size
        self._events: asyncio.Queue[MastershipEvent] = asyncio.Queue()
        self._digests: asyncio.Queue[DigestList] = asyncio.Queue(size)
        self._idle: asyncio.Queue[IdleTimeoutNotification] = asyncio.Queue(size)
        self._packets: asyncio.Queue[PacketIn] = asyncio.Queue(size)
        self._errors: asyncio.Queue[StreamError] = asyncio.Queue(size)
        self._idle_filter = IdleRepeatFilter() if self.options.idle_repeat_filter else None

    # -- state -------------------------------------------------------------

    @property
    def is_primary(self) -> bool:
        """True while this client is the primary controller of its role on the device."""
        return self._primary and self._session is not None and self._session.arbitrated

    @property
    def is_connected(self) -> bool:
        return self._session is not None and self._session.arbitrated

    @property
    def primary_election_id(self) -> ElectionId | None:
        """The election id of the current primary, as the server last told us."""
        return self._primary_election_id

    def _require_p4info(self) -> P4Info:
        if self.p4info is None:
            raise EncodingError("no P4Info: pass p4info= or set a pipeline first")
        return self.p4info

    # -- handlers ------------------------------------------------------------

    def on_mastership(self, handler: H) -> H:
        """Call ``handler(MastershipEvent)`` on every change of role or connection."""
        self._mastership_handlers.append(handler)
        return handler

    def on_digest(self, handler: H, digest: str | None = None, *, auto_ack: bool = True) -> H:
        """Call ``handler(DigestList)`` for lists of ``digest`` (None: every digest).

        With ``auto_ack`` the list is acknowledged once every handler for it
        returned without raising; otherwise call :meth:`ack_digest` yourself.
        """
        if digest is not None and self.p4info is not None:
            digest = self.p4info.digests[digest].name
        self._digest_handlers.setdefault(digest, []).append((handler, auto_ack))
        return handler

    def on_idle_timeout(self, handler: H) -> H:
        """Call ``handler(IdleTimeoutNotification)`` for entries that went idle."""
        self._idle_handlers.append(handler)
        return handler

    def on_packet_in(self, handler: H) -> H:
        """Call ``handler(PacketIn)`` for every packet the switch sends to the controller."""
        self._packet_handlers.append(handler)
        return handler

    def on_stream_error(self, handler: H) -> H:
        """Call ``handler(StreamError)`` when the switch refuses a packet-out or an ack."""
        self._error_handlers.append(handler)
        return handler

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> P4RuntimeClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, timeout: float | None = 30.0) -> None:
        """Connect and arbitrate; returns once the server answered the arbitration.

        Retries with backoff while the server is unreachable, up to
        ``timeout`` seconds; an answer that retrying cannot change (a bad
        device id, an election id already in use) raises at once, as does a
        primary's failed push of its ``pipeline`` (the switch refused the
        program or the device id). After this returns the client stays
        connected by itself until :meth:`close`.
        """
        if self._closing:
            raise ClientClosedError()
        if not self._started:
            self._started = True
            self._run_task = self._spawn(self._run(), "session")
            self._spawn(self._event_worker(), "mastership events")
            for i in range(max(1, self.options.digest_concurrency)):
                self._spawn(self._digest_worker(), f"digests {i}")
            self._spawn(self._queue_worker(self._idle, self._idle_handlers), "idle timeouts")
            self._spawn(self._queue_worker(self._packets, self._packet_handlers), "packet-in")
            self._spawn(self._queue_worker(self._errors, self._error_handlers), "stream errors")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            error = self._connect_error
            await self.close()
            raise P4RuntimeError(
                grpc.StatusCode.UNAVAILABLE,
                f"could not connect to {self.address} within {timeout} s"
                + (f" (last error: {error})" if error else ""),
                rpc="connect",
            ) from None
        if self._connect_error is not None and not self.is_connected:
            error = self._connect_error
            await self.close()
            raise error
        if self.pipeline_error is not None and self.is_primary:
            error = self.pipeline_error
            await self.close()
            raise P4RuntimeError(error.code, f"could not install the pipeline: {error.message}",
                                 rpc=error.rpc)

    async def close(self) -> None:
        """Stop everything: the session, the workers, the channel. Idempotent.

        The stream is ended gracefully first (half-close, and the server ends
        it): a cancelled gRPC call is wound up by gRPC in a task of its own
        some time later, which would outlive this method.
        """
        self._closing = True
        self._primary = False
        self._ready.set()
        session, run_task = self._session, self._run_task
        if session is not None and session.call is not None and not session.call.done():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0), session.write_lock:
                    await session.call.done_writing()
            if run_task is not None and run_task is not asyncio.current_task():
                await asyncio.wait({run_task}, timeout=2.0)
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._session = None
        for session in list(self._open_sessions):
            await self._close_session(session)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"p4rt {self.address} {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- the session loop ------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            session: _Session | None = None
            try:
                session = await self._open_session()
                attempt = 0
                await self._read_stream(session)
                if not self._closing:
                    log.warning("%s: stream closed by the server", self.address)
            except asyncio.CancelledError:
                raise
            except (grpc.aio.AioRpcError, P4RuntimeError) as exc:
                error = (
                    exc if isinstance(exc, P4RuntimeError)
                    else P4RuntimeError.from_rpc_error(exc, "StreamChannel")
                )
                self._connect_error = error
                log.warning("%s: stream failed: %s", self.address, error)
                # an answer retrying cannot change, before any session was
                # arbitrated (a bad device id...): connect() raises it. One
                # that ends an arbitrated session is a switch's to give, and
                # reconnecting is how the controller finds out what it has.
                arbitrated = session is not None and session.arbitrated
                if (not self._had_session and not arbitrated
                        and error.code in _FATAL_CONNECT_CODES):
                    self._ready.set()
                    return
            except (OSError, TimeoutError, grpc.RpcError) as exc:
                self._connect_error = exc
                log.warning("%s: connection failed: %s", self.address, exc)
            except Exception as exc:  # a surprise (or a bug): logged, and the next try follows
                self._connect_error = exc
                log.exception("%s: session failed", self.address)
            finally:
                if session is not None:
                    await self._end_session(session)
            if self._closing or not self.options.reconnect:
                if not self._had_session:
                    self._ready.set()
                return
            delay = min(
                self.options.backoff_max,
                self.options.backoff_initial * self.options.backoff_multiplier ** attempt,
            )
            delay *= 1 + self.options.backoff_jitter * (2 * random.random() - 1)
            attempt += 1
            log.info("%s: reconnecting in %.2f s (attempt %d)", self.address, delay, attempt)
            await asyncio.sleep(delay)

    async def _open_session(self) -> _Session:
        self._session_count += 1
        channel = open_channel(
            self.address,
            self.credentials,
            max_send_bytes=max(self.options.max_request_bytes + 64 * 1024, 1 << 20),
            keepalive_ms=self.options.keepalive_ms,
        )
        session = _Session(self._session_count, channel, p4runtime_pb2_grpc.P4RuntimeStub(channel))
        session.write = channel.unary_unary(
            "/p4.v1.P4Runtime/Write",
            request_serializer=None,  # the request is serialized already
            response_deserializer=p4runtime_pb2.WriteResponse.FromString,
        )
        self._open_sessions.add(session)
        self._session = session
        session.call = session.stub.StreamChannel()
        await session.call.write(self._arbitration_request())
        first = await asyncio.wait_for(session.call.read(), self.options.arbitration_timeout)
        if first is grpc.aio.EOF:
            status = await session.call.code()
            details = await session.call.details()
            raise P4RuntimeError(status, details or "stream ended before arbitration",
                                 rpc="StreamChannel")
        self.stats.sessions += 1
        self._pending_reconnected = self._had_session
        await self._handle_response(session, first)
        if not session.arbitrated:
            raise P4RuntimeError(
                grpc.StatusCode.UNKNOWN,
                f"first stream message was not an arbitration: {first.WhichOneof('update')}",
                rpc="StreamChannel",
            )
        return session

    def _arbitration_request(self) -> p4runtime_pb2.StreamMessageRequest:
        req = p4runtime_pb2.StreamMessageRequest()
        arb = req.arbitration
        arb.device_id = self.device_id
        arb.election_id.high, arb.election_id.low = self.election_id
        if self.role or self.role_config is not None:
            arb.role.name = self.role
            if self.role_config is not None:
                if isinstance(self.role_config, any_pb2.Any):
                    arb.role.config.CopyFrom(self.role_config)
                else:
                    arb.role.config.Pack(self.role_config)
        return req

    async def _read_stream(self, session: _Session) -> None:
        while True:
            msg = await session.call.read()
            if msg is grpc.aio.EOF:
                code = await session.call.code()
                if code is not grpc.StatusCode.OK:
                    details = await session.call.details()
                    raise P4RuntimeError(code, details or "", rpc="StreamChannel")
                return
            await self._handle_response(session, msg)

    async def _end_session(self, session: _Session) -> None:
        was_connected = session.arbitrated
        was_primary = self._primary
        session.arbitrated = False
        if self._session is session:
            self._session = None
        self._primary = False
        await self._close_session(session)
        if was_connected:
            self._had_session = True
            if self._idle_filter is not None:
                self._idle_filter.clear()
            if self._closing:
                log.info("%s: closed", self.address)
                return
            self.stats.disconnects += 1
            log.warning(
                "%s: disconnected%s", self.address, " (was primary)" if was_primary else ""
            )
            self._events.put_nowait(
                MastershipEvent(
                    is_primary=False,
                    connected=False,
                    primary_election_id=self._primary_election_id,
                    message="connection lost",
                )
            )

    async def _close_session(self, session: _Session) -> None:
        call = session.call
        if call is not None and not call.done():
            call.cancel()
            await _finish_call(call)
        with contextlib.suppress(Exception):
            await session.channel.close(grace=None)
        self._open_sessions.discard(session)

    # -- incoming stream messages ------------------------------------------------

    async def _handle_response(
        self, session: _Session, msg: p4runtime_pb2.StreamMessageResponse
    ) -> None:
        kind = msg.WhichOneof("update")
        if kind == "arbitration":
            await self._on_arbitration(session, msg.arbitration)
        elif kind == "digest":
            self._on_digest_list(session, msg.digest)
        elif kind == "packet":
            self._on_packet_in(msg.packet)
        elif kind == "idle_timeout_notification":
            self._on_idle_timeout(msg.idle_timeout_notification)
        elif kind == "error":
            self._on_stream_error(msg.error)
        else:
            log.debug("%s: ignoring stream message %s", self.address, kind)

    async def _on_arbitration(
        self, session: _Session, arb: p4runtime_pb2.MasterArbitrationUpdate
    ) -> None:
        primary = arb.status.code == grpc.StatusCode.OK.value[0]
        election = (arb.election_id.high, arb.election_id.low)
        first = not session.arbitrated
        known = election if arb.HasField("election_id") else None
        changed = first or primary != self._primary or known != self._primary_election_id
        self._primary_election_id = known
        session.arbitrated = True
        pushed = False
        if primary and changed and self.pipeline is not None:
            self._primary = True  # ensure_pipeline writes as primary
            try:
                pushed = await self.ensure_pipeline(self.pipeline)
                self.pipeline_error = None
            except P4RuntimeError as exc:
                self.pipeline_error = exc
                log.error("%s: could not install the pipeline: %s", self.address, exc)
        self._primary = primary
        if first:
            self._ready.set()
            self._connect_error = None
        if changed:
            reconnected = first and self._pending_reconnected
            log.info(
                "%s: %s (primary election id %s)%s",
                self.address,
                "primary" if primary else "backup",
                election,
                ", after reconnecting" if reconnected else "",
            )
            self._events.put_nowait(
                MastershipEvent(
                    is_primary=primary,
                    connected=True,
                    primary_election_id=self._primary_election_id,
                    reconnected=reconnected,
                    pipeline_pushed=pushed,
                    message=arb.status.message,
                )
            )

    def _on_digest_list(self, session: _Session, msg: p4runtime_pb2.DigestList) -> None:
        self.stats.digest_lists += 1
        if self.p4info is None:
            self.stats.decode_errors += 1
            log.warning("%s: digest list without a P4Info to decode it", self.address)
            return
        try:
            digest = DigestList.from_proto(msg, self.p4info)
        except EncodingError as exc:
            self.stats.decode_errors += 1
            self._warn("undecodable digest list: %s", exc)
            return
        if not self._digest_handlers_for(digest.digest):
            self.stats.digest_lists_dropped += 1
            log.debug("%s: no handler for digest %s", self.address, digest.digest)
            return
        digest.session = session.number
        try:
            self._digests.put_nowait(digest)
        except asyncio.QueueFull:
            self.stats.digest_lists_dropped += 1
            self._warn("digest queue full, list %d dropped", digest.list_id)

    def _warn(self, text: str, *args: Any) -> None:
        """A warning the switch can cause at any rate: one per kind per 10 s."""
        throttle = self._throttles.get(text)
        if throttle is None:
            throttle = self._throttles[text] = LogThrottle()
        more = throttle.allow()
        if more is not None:
            log.warning("%s: " + text + "%s", self.address, *args, more)

    def _on_packet_in(self, msg: p4runtime_pb2.PacketIn) -> None:
        self.stats.packets_in += 1
        if not self._packet_handlers:
            self.stats.packets_in_dropped += 1
            return
        try:
            packet = PacketIn.from_proto(msg, self._require_p4info())
        except EncodingError as exc:
            self.stats.decode_errors += 1
            self._warn("undecodable packet-in: %s", exc)
            return
        try:
            self._packets.put_nowait(packet)
        except asyncio.QueueFull:
            self.stats.packets_in_dropped += 1

    def _on_idle_timeout(self, msg: p4runtime_pb2.IdleTimeoutNotification) -> None:
        self.stats.idle_notifications += 1
        if not self._idle_handlers:
            return  # nobody to tell, nothing to remember
        entries = list(msg.table_entry)
        if self._idle_filter is not None:
            before = len(entries)
            entries = self._idle_filter.filter(msg)
            self.stats.idle_repeats_suppressed += before - len(entries)
        if not entries:
            return
        try:
            note = IdleTimeoutNotification.from_entries(entries, msg.timestamp,
                                                        self._require_p4info())
        except EncodingError as exc:
            self.stats.decode_errors += 1
            self._warn("undecodable idle-timeout notification: %s", exc)
            return
        try:
            self._idle.put_nowait(note)
        except asyncio.QueueFull:
            self.stats.idle_notifications_dropped += 1
            self._warn("idle-timeout queue full, notification dropped")

    def _on_stream_error(self, msg: p4runtime_pb2.StreamError) -> None:
        self.stats.stream_errors += 1
        error = StreamError.from_proto(msg, self.p4info)
        log.warning(
            "%s: stream error (code %d) about %s: %s",
            self.address, error.canonical_code, error.kind or "?", error.message,
        )
        try:
            self._errors.put_nowait(error)
        except asyncio.QueueFull:
            self.stats.stream_errors_dropped += 1

    # -- workers ------------------------------------------------------------

    async def _run_handlers(self, handlers: Sequence[Handler], item: Any) -> bool:
        ok = True
        for handler in list(handlers):
            try:
                await _call_handler(handler, item)
            except asyncio.CancelledError:
                if _asked_to_cancel():
                    raise
                ok = False  # not this worker's: it goes on with the next item
                self.stats.handler_errors += 1
                log.warning("%s: handler %r was cancelled", self.address, handler)
            except Exception:
                ok = False
                self.stats.handler_errors += 1
                log.exception("%s: handler %r failed", self.address, handler)
        return ok

    async def _event_worker(self) -> None:
        while True:
            event = await self._events.get()
            await self._run_handlers(self._mastership_handlers, event)

    async def _queue_worker(self, queue: asyncio.Queue[Any], handlers: list[Handler]) -> None:
        while True:
            item = await queue.get()
            await self._run_handlers(handlers, item)

    def _digest_handlers_for(self, name: str) -> list[tuple[Handler, bool]]:
        found: list[tuple[Handler, bool]] = []
        for key, handlers in self._digest_handlers.items():
            if key is None or key == name:
                found += handlers
            elif self.p4info is not None:
                info = self.p4info.digests.get(key)
                if info is not None and info.name == name:
                    found += handlers
        return found

    async def _digest_worker(self) -> None:
        while True:
            digest = await self._digests.get()
            handlers = self._digest_handlers_for(digest.digest)
            ok = await self._run_handlers([h for h, _ in handlers], digest)
            if ok and any(auto for _, auto in handlers):
                try:
                    await self.ack_digest(digest)
                except P4RuntimeError as exc:
                    log.warning("%s: could not ack digest list: %s", self.address, exc)

    # -- outgoing stream messages -------------------------------------------------

    async def _stream_send(self, req: p4runtime_pb2.StreamMessageRequest) -> None:
        session = self._session
        if session is None or session.call is None or not session.arbitrated:
            raise P4RuntimeError(grpc.StatusCode.UNAVAILABLE, "not connected", rpc="StreamChannel")
        try:
            async with session.write_lock:
                await session.call.write(req)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            raise P4RuntimeError(
                grpc.StatusCode.UNAVAILABLE, f"stream write failed: {exc}", rpc="StreamChannel"
            ) from exc

    async def ack_digest(self, digest: DigestList) -> None:
        """Acknowledge a digest list, so the switch may report the same data again.

        A list that came on an earlier session is not acknowledged (counted in
        ``stats.digest_acks_stale``): list ids start again when the switch
        restarts, so its ack could release another list, not yet handled.
        """
        session = self._session
        if digest.session and (session is None or session.number != digest.session):
            self.stats.digest_acks_stale += 1
            log.debug("%s: digest list %d of an earlier session: not acknowledged",
                      self.address, digest.list_id)
            return
        req = p4runtime_pb2.StreamMessageRequest()
        req.digest_ack.digest_id = digest.digest_id
        req.digest_ack.list_id = digest.list_id
        await self._stream_send(req)
        self.stats.digest_acks += 1

    async def send_packet_out(self, packet: PacketOut | bytes, **metadata: Any) -> None:
        """Send a packet through the switch (``packet_out`` metadata by name)."""
        if not self.is_primary:
            raise NotPrimaryError(rpc="PacketOut")
        if isinstance(packet, bytes):
            packet = PacketOut(packet, metadata)
        req = p4runtime_pb2.StreamMessageRequest()
        req.packet.CopyFrom(packet.to_proto(self._require_p4info()))
        await self._stream_send(req)

    # -- unary RPCs -------------------------------------------------------------

    def _live_session(self, rpc: str) -> _Session:
        if self._closing:
            raise ClientClosedError(rpc=rpc)
        session = self._session
        if session is None:
            raise P4RuntimeError(grpc.StatusCode.UNAVAILABLE, "not connected", rpc=rpc)
        return session

    def _stub(self, rpc: str) -> p4runtime_pb2_grpc.P4RuntimeStub:
        return self._live_session(rpc).stub

    def _fill_election(self, msg: Any) -> None:
        msg.election_id.high, msg.election_id.low = self.election_id
        if self.role:
            msg.role = self.role

    async def capabilities(self) -> str:
        """The server's P4Runtime API version (``Capabilities`` RPC)."""
        stub = self._stub("Capabilities")
        try:
            with _session_may_end("Capabilities"):
                reply = await stub.Capabilities(
                    p4runtime_pb2.CapabilitiesRequest(), timeout=self.options.rpc_timeout
                )
        except grpc.aio.AioRpcError as exc:
            raise P4RuntimeError.from_rpc_error(exc, "Capabilities") from None
        return str(reply.p4runtime_api_version)

    async def set_pipeline(
        self,
        config: PipelineConfig,
        action: int = p4runtime_pb2.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT,
    ) -> None:
        """SetForwardingPipelineConfig with ``action`` (VERIFY_AND_COMMIT by default).

        ``RECONCILE_AND_COMMIT`` asks the server to keep forwarding state
        across the change where it can. On success the client encodes with
        the P4Info that reads and writes now refer to: the new one after
        ``VERIFY_AND_SAVE`` (which only the data plane does not run until
        ``COMMIT``) and the ``..._COMMIT`` actions; a ``VERIFY`` changes
        nothing, and a ``COMMIT`` realises the config saved before.
        """
        if not self.is_primary:
            raise NotPrimaryError(rpc="SetForwardingPipelineConfig")
        stub = self._stub("SetForwardingPipelineConfig")
        req = p4runtime_pb2.SetForwardingPipelineConfigRequest(
            device_id=self.device_id, action=action, config=config.to_proto()
        )
        self._fill_election(req)
        try:
            with _session_may_end("SetForwardingPipelineConfig"):
                await stub.SetForwardingPipelineConfig(req, timeout=self.options.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise P4RuntimeError.from_rpc_error(exc, "SetForwardingPipelineConfig") from None
        actions = p4runtime_pb2.SetForwardingPipelineConfigRequest
        if action in (actions.VERIFY, actions.COMMIT):
            return  # the config reads and writes refer to is unchanged
        self.p4info = config.p4info
        if self._idle_filter is not None:
            self._idle_filter.clear()

    async def get_pipeline(
        self,
        response_type: int = p4runtime_pb2.GetForwardingPipelineConfigRequest.ALL,
    ) -> DevicePipeline | None:
        """GetForwardingPipelineConfig; None when the device has no pipeline yet.

        PI answers FAILED_PRECONDITION before any pipeline, and an empty
        config where a device exists without one; both are None. (With
        COOKIE_ONLY, a pipeline committed without a cookie also reads as None:
        :meth:`ensure_pipeline` then installs its own, which it cannot verify.)
        """
        stub = self._stub("GetForwardingPipelineConfig")
        req = p4runtime_pb2.GetForwardingPipelineConfigRequest(
            device_id=self.device_id, response_type=response_type
        )
        try:
            with _session_may_end("GetForwardingPipelineConfig"):
                reply = await stub.GetForwardingPipelineConfig(
                    req, timeout=self.options.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.FAILED_PRECONDITION:
                return None
            raise P4RuntimeError.from_rpc_error(exc, "GetForwardingPipelineConfig") from None
        config = reply.config
        if not (config.HasField("p4info") or config.p4_device_config
                or config.HasField("cookie")):
            return None  # PI answers an empty config when none was ever committed
        p4info = P4Info(config.p4info) if config.HasField("p4info") else None
        return DevicePipeline(
            p4info,
            config.p4_device_config or None,
            config.cookie.cookie if config.HasField("cookie") else None,
        )

    async def ensure_pipeline(self, config: PipelineConfig) -> bool:
        """Install ``config`` unless the device already runs it (same cookie); True if pushed."""
        current = await self.get_pipeline(
            p4runtime_pb2.GetForwardingPipelineConfigRequest.COOKIE_ONLY
        )
        if current is not None and current.cookie == config.cookie:
            self.p4info = config.p4info
            return False
        log.info("%s: installing pipeline (cookie %#x)", self.address, config.cookie)
        await self.set_pipeline(config)
        return True

    # -- writes -----------------------------------------------------------------

    async def write(
        self,
        updates: Iterable[Update | p4runtime_pb2.Update | bytes],
        *,
        max_updates_per_request: int | None = None,
        atomicity: int = p4runtime_pb2.WriteRequest.CONTINUE_ON_ERROR,
    ) -> WriteResult:
        """Send ``updates`` in as few WriteRequests as the limits allow, in order.

        An update is a named :class:`Update`, a ``p4.v1.Update`` message or
        one already serialized (``bytes``, as the flow hot path makes them).

        Returns a :class:`WriteResult` with one status per update. An update
        that cannot be encoded is not sent and gets INVALID_ARGUMENT (space
        ``"client"``); after an RPC-wide failure that concerns the connection,
        the role or the pipeline, the remaining requests are not sent and
        their updates get CANCELLED ("not sent"). Raises
        :class:`NotPrimaryError` when called while not primary.

        With another ``atomicity`` than CONTINUE_ON_ERROR the updates go as
        one request whatever the limits (atomicity is a request's), and none
        is sent if one cannot be encoded.
        """
        updates = list(updates)
        if not self.is_primary:
            raise NotPrimaryError(rpc="Write")
        limit = max_updates_per_request or self.options.max_updates_per_request or len(updates)
        max_bytes = self.options.max_request_bytes
        statuses: list[UpdateStatus | None] = [None] * len(updates)
        encoded: list[tuple[int, bytes]] = []
        p4info = self.p4info
        # an empty filter has nothing to forget: skip the per-update check
        idle_filter = self._idle_filter
        if idle_filter is not None and not len(idle_filter):
            idle_filter = None
        for i, update in enumerate(updates):
            if update.__class__ is bytes:
                wire: bytes = update  # type: ignore[assignment]
                if idle_filter is not None and not wire.startswith(_INSERT_HEAD):
                    self._forget_idle(idle_filter, p4runtime_pb2.Update.FromString(wire))
                encoded.append((i, wire))
                continue
            if isinstance(update, p4runtime_pb2.Update):
                proto = update
            else:
                try:
                    if p4info is None and not isinstance(update.entity, p4runtime_pb2.Entity):
                        raise EncodingError("no P4Info to encode named entities")
                    proto = update.to_proto(p4info)  # type: ignore[union-attr,arg-type]
                except (EncodingError, LookupError) as exc:
                    statuses[i] = UpdateStatus(
                        grpc.StatusCode.INVALID_ARGUMENT, str(exc), "client", 0, ErrorKind.INVALID
                    )
                    continue
            if idle_filter is not None:
                self._forget_idle(idle_filter, proto)
            encoded.append((i, proto.SerializeToString()))

        requests = 0
        errors: list[P4RuntimeError] = []
        stopped: P4RuntimeError | None = None
        head = p4runtime_pb2.WriteRequest(device_id=self.device_id, atomicity=atomicity)
        self._fill_election(head)
        request_head = head.SerializeToString()
        if atomicity == p4runtime_pb2.WriteRequest.CONTINUE_ON_ERROR:
            chunks = self._chunks(encoded, limit, max_bytes)
        elif len(encoded) < len(updates):  # all or nothing: nothing
            chunks = []
            for i, _ in encoded:
                statuses[i] = UpdateStatus(
                    grpc.StatusCode.CANCELLED, "not sent: another update of this atomic "
                    "write could not be encoded", "client", 0, ErrorKind.NOT_SENT)
        else:  # the request is the unit of atomicity: one, whatever its size
            chunks = [encoded] if encoded else []
        for chunk in chunks:
            if stopped is None and not self.is_primary:
                stopped = NotPrimaryError("lost primary during the write", rpc="Write")
            if stopped is not None:
                not_sent = UpdateStatus(
                    grpc.StatusCode.CANCELLED, f"not sent: {stopped}", "client", 0,
                    ErrorKind.NOT_SENT,
                )
                for i, _ in chunk:
                    statuses[i] = not_sent
                continue
            # a request's header and its updates, serialized apart, concatenate
            # into the serialized request (protobuf merges fields in sequence)
            parts = [request_head]
            for _, wire in chunk:
                parts.append(_UPDATES_TAG)
                parts.append(varint(len(wire)))
                parts.append(wire)
            requests += 1
            try:
                write = self._live_session("Write").write
                with _session_may_end("Write"):
                    await write(b"".join(parts), timeout=self.options.rpc_timeout)
            except grpc.aio.AioRpcError as exc:
                per_update, detailed = decode_write_error(exc, len(chunk))
                for (i, _), status in zip(chunk, per_update, strict=True):
                    statuses[i] = status
                if not detailed:
                    error = P4RuntimeError.from_rpc_error(exc, "Write")
                    errors.append(error)
                    if exc.code() in _STOP_CODES:
                        stopped = error
                continue
            except P4RuntimeError as exc:  # not connected / closed
                errors.append(exc)
                stopped = exc
                for i, _ in chunk:
                    statuses[i] = UpdateStatus.of(exc.code, exc.message)
                continue
            for i, _ in chunk:
                statuses[i] = OK
        final = [s if s is not None else OK for s in statuses]
        return WriteResult(updates, final, requests, errors)

    @staticmethod
    def _forget_idle(idle_filter: IdleRepeatFilter, update: p4runtime_pb2.Update) -> None:
        """A modified or deleted entry's next idle notification is a new one."""
        if update.type != UpdateType.INSERT and update.entity.HasField("table_entry"):
            idle_filter.forget(update.entity.table_entry)

    @staticmethod
    def _chunks(
        encoded: list[tuple[int, bytes]], limit: int, max_bytes: int
    ) -> Iterable[list[tuple[int, bytes]]]:
        chunk: list[tuple[int, bytes]] = []
        size = 64  # device id, election id, role, atomicity
        for item in encoded:
            n = len(item[1])
            cost = 1 + varint_len(n) + n
            if chunk and (len(chunk) >= limit or size + cost > max_bytes):
                yield chunk
                chunk, size = [], 64
            chunk.append(item)
            size += cost
        if chunk:
            yield chunk

    async def insert(self, entities: Iterable[Entity]) -> WriteResult:
        return await self.write([Update(UpdateType.INSERT, e) for e in entities])

    async def modify(self, entities: Iterable[Entity]) -> WriteResult:
        return await self.write([Update(UpdateType.MODIFY, e) for e in entities])

    async def delete(self, entities: Iterable[Entity]) -> WriteResult:
        return await self.write([Update(UpdateType.DELETE, e) for e in entities])

    async def configure_digest(
        self,
        digest: str,
        *,
        max_timeout_ns: int = 0,
        max_list_size: int = 1,
        ack_timeout_ns: int = 0,
    ) -> None:
        """Enable a digest (INSERT) or change its configuration (MODIFY if already enabled)."""
        entry = DigestEntry(digest, max_timeout_ns, max_list_size, ack_timeout_ns)
        result = await self.write([Update(UpdateType.INSERT, entry)])
        if result.statuses[0].kind is ErrorKind.ALREADY_EXISTS:
            result = await self.write([Update(UpdateType.MODIFY, entry)])
        result.raise_on_error()

    # -- reads ------------------------------------------------------------------

    async def read_raw(
        self, entities: Iterable[Entity | p4runtime_pb2.Entity]
    ) -> AsyncIterator[p4runtime_pb2.Entity]:
        """Read entities, yielding ``p4.v1.Entity`` messages as they arrive."""
        req = p4runtime_pb2.ReadRequest(device_id=self.device_id)
        if self.role:
            req.role = self.role
        for entity in entities:
            if isinstance(entity, p4runtime_pb2.Entity):
                req.entities.append(entity)
            else:
                req.entities.append(entity.to_proto(self._require_p4info()))
        stub = self._stub("Read")
        before = _status_tasks()
        call = stub.Read(req, timeout=self.options.read_timeout)
        mine: set[asyncio.Task[Any]] = set()
        try:
            with _session_may_end("Read"):
                async for reply in call:
                    if not mine:
                        mine = _status_tasks() - before
                    for entity in reply.entities:
                        yield entity
        except grpc.aio.AioRpcError as exc:
            raise P4RuntimeError.from_rpc_error(exc, "Read") from None
        finally:
            if not call.done():
                call.cancel()
                await _finish_call(call, mine or (_status_tasks() - before))

    async def read(
        self, entities: Entity | p4runtime_pb2.Entity | Iterable[Entity | p4runtime_pb2.Entity]
    ) -> AsyncIterator[Entity]:
        """Read entities (filters: a set field narrows, an unset one is a wildcard)."""
        if isinstance(entities, Entity | p4runtime_pb2.Entity):
            entities = [entities]
        p4info = self._require_p4info()
        async for entity in self.read_raw(entities):
            yield decode_entity(entity, p4info)

    async def read_table_entries(
        self,
        table: str | None = None,
        *,
        match: dict[str, Any] | None = None,
        priority: int = 0,
        counter_data: bool = False,
        time_since_last_hit: bool = False,
        default_entry: bool = False,
    ) -> AsyncIterator[TableEntry]:
        """Entries of ``table`` (None: every table), optionally one entry by ``match``.

        ``counter_data`` adds each entry's direct counter; ``time_since_last_hit``
        its idle time (tables with idle timeout only). A wildcard read does not
        include the default entry (P4Runtime-Spec, "Default entry"): read it
        with ``default_entry=True``.
        """
        if table is None:
            msg = p4runtime_pb2.TableEntry()
        else:
            msg = TableEntry(
                table, match or {}, priority=priority, is_default_action=default_entry
            ).to_table_entry(self._require_p4info())
        if counter_data:
            msg.counter_data.SetInParent()
        if time_since_last_hit:
            msg.time_since_last_hit.SetInParent()
        p4info = self._require_p4info()
        async for entity in self.read_raw([p4runtime_pb2.Entity(table_entry=msg)]):
            yield TableEntry.from_table_entry(entity.table_entry, p4info)

    async def read_registers(
        self, register: str, index: int | None = None
    ) -> AsyncIterator[RegisterEntry]:
        """Cells of a register array (one with ``index``, else all)."""
        async for entry in self.read(RegisterEntry(register, index)):
            yield _of_kind(entry, RegisterEntry, register)

    async def read_counters(
        self, counter: str, index: int | None = None
    ) -> AsyncIterator[CounterEntry]:
        """Cells of an indexed counter array (one with ``index``, else all)."""
        async for entry in self.read(CounterEntry(counter, index)):
            yield _of_kind(entry, CounterEntry, counter)

    async def read_direct_counters(
        self, table: str, match: dict[str, Any] | None = None, priority: int = 0
    ) -> AsyncIterator[DirectCounterEntry]:
        """Direct counters of a table's entries (one entry with ``match``)."""
        filt = DirectCounterEntry(TableEntry(table, match or {}, priority=priority))
        async for entry in self.read(filt):
            yield _of_kind(entry, DirectCounterEntry, table)

    async def read_digest_config(self, digest: str) -> DigestEntry | None:
        """The digest's configuration, or None if it is not enabled."""
        try:
            async with contextlib.aclosing(self.read(DigestEntry(digest, has_config=False))) as rd:
                async for entry in rd:
                    if isinstance(entry, DigestEntry) and entry.has_config:
                        return entry
        except P4RuntimeError as exc:
            if exc.code is grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return None

