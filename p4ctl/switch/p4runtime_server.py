"""The P4Runtime gRPC service (grpc.aio) of the software switch.

The RPC-level rules are PI's server (p4lang/PI ``proto/server/pi_server.cpp``):

* ``Write`` and ``SetForwardingPipelineConfig``: while no stream is open on
  the device, a request *without* election id is accepted (PI keeps this for
  debugging tools) and one with an election id is ``PERMISSION_DENIED`` "Not
  primary"; once streams are open, only the primary of the request's role
  (same election id) may write, everyone else gets ``PERMISSION_DENIED`` for
  the whole RPC. A Write before any pipeline: ``FAILED_PRECONDITION`` "No
  forwarding pipeline config set for this device".
* A Write with failed updates answers gRPC ``UNKNOWN`` whose
  ``grpc-status-details-bin`` trailer is a ``google.rpc.Status`` holding one
  ``p4.v1.Error`` per update, in order (``OK`` for those that succeeded), as
  PI's ``P4ErrorReporter`` builds it.
* ``Read`` needs no arbitration. It stops at the first failing entity and
  answers that entity's code after the entities read so far. Departure: PI
  sends one ``ReadResponse``; this server streams them in chunks of
  ``read_chunk`` entities so a 512k-entry read needs no huge message.
* ``Capabilities`` answers PI's API version, "1.3.0".
* On the stream, packet-out and digest acks from anyone but the primary, or
  before a pipeline, are ignored; a malformed packet-out is dropped, and
  reported with a ``StreamError`` only if ``stream_error_reporting`` is on
  (PI's server config; off by default there too).

Departure in favour of the specification: a request naming another device
id is ``NOT_FOUND`` (PI creates a device for any id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.protobuf.message_factory import GetMessageClass
from google.rpc import status_pb2
from p4.v1 import p4runtime_pb2, p4runtime_pb2_grpc

from p4ctl.switch.arbitration import Arbiter, Connection, _Close, role_key, uint128
from p4ctl.switch.codec import Code, P4RuntimeError
from p4ctl.switch.device_mgr import DeviceMgr
from p4ctl.switch.write_request import ReceivedWrite

log = logging.getLogger(__name__)

__all__ = ["P4RuntimeServer", "grpc_code"]

P4RUNTIME_API_VERSION = "1.3.0"
#: PI's server accepts messages up to 256 MB.
MAX_RECEIVE_MESSAGE = 256 * 1024 * 1024
READ_CHUNK = 2000
ERROR_SPACE = "ALL-sswitch-p4org"

_GRPC_CODES = {sc.value[0]: sc for sc in grpc.StatusCode}

#: Called before each RPC; may sleep (delays) and return an error to answer instead.
BeforeRpc = Callable[[str], Awaitable[P4RuntimeError | None]]
Inject = Callable[[bytes], None]


def grpc_code(code: int) -> grpc.StatusCode:
    return _GRPC_CODES.get(code, grpc.StatusCode.UNKNOWN)


def _write_error_status(results: list[P4RuntimeError | None]) -> status_pb2.Status:
    """PI's ``P4ErrorReporter::get_status``: UNKNOWN with one p4.v1.Error per update."""
    failed = sum(1 for r in results if r is not None)
    status = status_pb2.Status(
        code=Code.UNKNOWN, message=f"{failed} of {len(results)} updates failed"
    )
    for r in results:
        err = p4runtime_pb2.Error()
        if r is None:
            err.code = Code.OK
        else:
            err.canonical_code = r.code
            err.message = r.message
            err.space = ERROR_SPACE
        packed = any_pb2.Any()
        packed.Pack(err)
        status.details.append(packed)
    return status


#: the gRPC handler for each kind of method: (client streams, server streams) -> maker
_HANDLER_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _add_servicer(servicer: _Servicer, server: grpc.aio.Server) -> None:
    """Serve P4Runtime's methods from ``servicer``, as the generated code would,
    except that each unary request is parsed here (:func:`_parsed`), not by
    gRPC, and Write's handler gets the request's bytes: the write fast path
    reads plain updates from them without parsing them (:class:`ReceivedWrite`).
    """
    service = p4runtime_pb2.DESCRIPTOR.services_by_name["P4Runtime"]
    handlers = {}
    for method in service.methods:
        make = _HANDLER_KINDS[method.client_streaming, method.server_streaming]
        handler = getattr(servicer, method.name)
        parse = GetMessageClass(method.input_type).FromString
        if method.name == "Write":
            parse = None
        elif not method.client_streaming:
            handler, parse = _parsed(handler, parse, method.input_type.name,
                                     method.server_streaming), None
        handlers[method.name] = make(handler, parse,
                                     GetMessageClass(method.output_type).SerializeToString)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))


def _parsed(handler: Callable[..., Any], parse: Callable[[bytes], Any], name: str,
            streaming: bool) -> Callable[..., Any]:
    """``handler`` called with the request parsed from its bytes.

    A request that does not parse is answered INVALID_ARGUMENT, as Write
    answers one. Left to gRPC, the parser's error escaped as UNKNOWN
    "Unexpected <class DecodeError>", logged as an error of the server.
    """

    async def parsed(data: bytes, context: grpc.aio.ServicerContext) -> Any:
        try:
            return parse(data)
        except DecodeError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot parse the {name}: {e}")

    if streaming:
        async def stream(data: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for item in handler(await parsed(data, context), context):
                yield item

        return stream

    async def unary(data: bytes, context: grpc.aio.ServicerContext) -> Any:
        return await handler(await parsed(data, context), context)

    return unary


class _Servicer(p4runtime_pb2_grpc.P4RuntimeServicer):
    def __init__(self, server: P4RuntimeServer) -> None:
        self._s = server

    # ----- helpers ---------------------------------------------------------

    async def _prologue(self, name: str, context: grpc.aio.ServicerContext) -> None:
        error = await self._s.before_rpc(name)
        if error is not None:
            await context.abort(grpc_code(error.code), error.message)

    async def _configured_device(self, context):
        """The device, or FAILED_PRECONDITION when no pipeline is set (PI's answer)."""
        device = self._s.device
        if not device.has_config:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "No forwarding pipeline config set for this device",
            )
        return device

    async def _check_device(self, device_id: int, context: grpc.aio.ServicerContext) -> None:
        if device_id != self._s.device.device_id:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Unknown device id {device_id}")

    async def _check_primary(self, request, context: grpc.aio.ServicerContext) -> None:
        arbiter = self._s.arbiter
        role = role_key(request.role, request.role_id)
        if arbiter.count() == 0:
            if request.HasField("election_id"):
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "Not primary")
            return
        if not arbiter.is_primary(role, uint128(request.election_id)):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "Not primary")

    # ----- unary RPCs ------------------------------------------------------

    async def Write(self, data: bytes, context):
        try:
            received = ReceivedWrite(data)
        except DecodeError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"cannot parse the WriteRequest: {e}")
        request = received.header
        await self._prologue("Write", context)
        await self._check_device(request.device_id, context)
        await self._check_primary(request, context)
        device = await self._configured_device(context)
        try:
            results = device.write(received)
        except P4RuntimeError as e:
            await context.abort(grpc_code(e.code), e.message)
        lost = self._s.after_write()
        if lost is not None:  # applied, but the answer is lost (fault injection)
            await context.abort(grpc_code(lost.code), lost.message)
        if any(r is not None for r in results):
            status = _write_error_status(results)
            await context.abort(
                grpc.StatusCode.UNKNOWN,
                status.message,
                trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
            )
        return p4runtime_pb2.WriteResponse()

    async def Read(self, request, context):
        await self._prologue("Read", context)
        await self._check_device(request.device_id, context)
        device = await self._configured_device(context)
        chunk = self._s.read_chunk
        batch = p4runtime_pb2.ReadResponse()
        sent = 0
        try:
            for entity in device.read(request.entities):
                batch.entities.append(entity)
                if len(batch.entities) >= chunk:
                    yield batch
                    sent += 1
                    batch = p4runtime_pb2.ReadResponse()
        except P4RuntimeError as e:
            if len(batch.entities):
                yield batch
            await context.abort(grpc_code(e.code), e.message)
        except Exception as e:  # a bug must still give the client a clear answer
            log.exception("Read failed unexpectedly")
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {e!r}")
        if len(batch.entities) or sent == 0:
            yield batch

    async def SetForwardingPipelineConfig(self, request, context):
        await self._prologue("SetForwardingPipelineConfig", context)
        await self._check_device(request.device_id, context)
        await self._check_primary(request, context)
        try:
            changed = self._s.device.set_pipeline(request.action, request.config)
        except P4RuntimeError as e:
            await context.abort(grpc_code(e.code), e.message)
        if changed and self._s.after_pipeline is not None:
            self._s.after_pipeline()
        log.info(
            "SetForwardingPipelineConfig %s accepted",
            p4runtime_pb2.SetForwardingPipelineConfigRequest.Action.Name(request.action),
        )
        return p4runtime_pb2.SetForwardingPipelineConfigResponse()

    async def GetForwardingPipelineConfig(self, request, context):
        await self._prologue("GetForwardingPipelineConfig", context)
        await self._check_device(request.device_id, context)
        device = await self._configured_device(context)
        try:
            config = device.get_pipeline(request.response_type)
        except P4RuntimeError as e:
            await context.abort(grpc_code(e.code), e.message)
        return p4runtime_pb2.GetForwardingPipelineConfigResponse(config=config)

    async def Capabilities(self, request, context):
        await self._prologue("Capabilities", context)
        return p4runtime_pb2.CapabilitiesResponse(p4runtime_api_version=P4RUNTIME_API_VERSION)

    # ----- the stream ------------------------------------------------------

    async def StreamChannel(self, request_iterator, context):
        conn = Connection(peer=context.peer())
        s = self._s
        s.streams.add(conn)
        reader = asyncio.create_task(self._read_stream(conn, context))
        try:
            while True:
                item = await conn.outbox.get()
                if isinstance(item, _Close):
                    if item.code is None:
                        return
                    await context.abort(grpc_code(item.code), item.message)
                await context.write(item)
        finally:
            reader.cancel()
            s.arbiter.remove(conn)
            s.streams.discard(conn)

    async def _read_stream(self, conn: Connection, context) -> None:
        s = self._s
        try:
            while True:
                request = await context.read()
                if request is grpc.aio.EOF:
                    conn.close(None)
                    return
                kind = request.WhichOneof("update")
                if kind == "arbitration":
                    try:
                        s.arbiter.arbitrate(conn, request.arbitration)
                    except P4RuntimeError as e:
                        log.info("stream %s refused: %s", conn.conn_id, e)
                        conn.close(e.code, e.message)
                        return
                elif kind == "packet":
                    if self._accepts(conn):
                        s.packet_out(conn, request.packet)
                elif kind == "digest_ack" and self._accepts(conn):
                    s.device.digest_ack(request.digest_ack)
        except asyncio.CancelledError:
            raise
        except DecodeError as e:  # the client's fault: it learns why its stream ended
            log.info("stream %s sent what does not parse: %s", conn.conn_id, e)
            conn.close(Code.INVALID_ARGUMENT, f"cannot parse the StreamMessageRequest: {e}")
        except Exception as e:  # the peer went away mid-read, or worse
            log.debug("stream %s reader ended: %r", conn.conn_id, e)
            conn.close(None)

    def _accepts(self, conn: Connection) -> bool:
        s = self._s
        return s.arbiter.is_primary_connection(conn) and s.device.has_config


class P4RuntimeServer:
    """A grpc.aio server exposing one :class:`DeviceMgr` over P4Runtime."""

    def __init__(
        self,
        device: DeviceMgr,
        arbiter: Arbiter,
        *,
        address: str = "127.0.0.1:0",
        inject: Inject | None = None,
        before_rpc: BeforeRpc | None = None,
        after_write: Callable[[], P4RuntimeError | None] | None = None,
        after_pipeline: Callable[[], None] | None = None,
        read_chunk: int = READ_CHUNK,
        stream_error_reporting: bool = False,
    ) -> None:
        self.device = device
        #: called once a SetForwardingPipelineConfig has changed the device,
        #: before the answer goes out
        self.after_pipeline = after_pipeline
        self.arbiter = arbiter
        self.address = address
        self.read_chunk = read_chunk
        self.stream_error_reporting = stream_error_reporting
        self.streams: set[Connection] = set()
        self._inject = inject
        self._before_rpc = before_rpc
        self._after_write = after_write
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def before_rpc(self, name: str) -> P4RuntimeError | None:
        if self._before_rpc is None:
            return None
        return await self._before_rpc(name)

    def after_write(self) -> P4RuntimeError | None:
        """An error to answer a Write that was applied with (None: its own answer)."""
        return None if self._after_write is None else self._after_write()

    def packet_out(self, conn: Connection, msg: p4runtime_pb2.PacketOut) -> None:
        try:
            packet = self.device.packet_out(msg)
        except P4RuntimeError as e:
            log.info("packet-out dropped: %s", e)
            if self.stream_error_reporting:
                out = p4runtime_pb2.StreamMessageResponse()
                out.error.canonical_code = e.code
                out.error.message = e.message
                out.error.space = ERROR_SPACE
                out.error.packet_out.packet_out.CopyFrom(msg)
                conn.send(out)
            return
        if self._inject is not None:
            self._inject(packet)

    async def start(self) -> int:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE),
                ("grpc.max_send_message_length", -1),
                # gRPC sets SO_REUSEPORT by default: a second switch on a
                # busy address would share it, and clients would reach
                # either switch at random
                ("grpc.so_reuseport", 0),
            ]
        )
        _add_servicer(_Servicer(self), server)
        try:
            port = server.add_insecure_port(self.address)
        except RuntimeError as exc:  # newer grpcio: "Failed to bind to address ..."
            raise OSError(f"cannot listen on {self.address}: {exc}") from None
        if port == 0:
            raise OSError(f"cannot listen on {self.address}")
        await server.start()
        self._server = server
        self.port = port
        log.info("P4Runtime server listening on %s (port %d)", self.address, port)
        return port

    async def stop(self, grace: float | None = 0.5) -> None:
        if self._server is None:
            return
        self.arbiter.close_all(None, "")
        await self._server.stop(grace)
        self._server = None
        log.info("P4Runtime server stopped")
