"""P4Runtime errors: RPC-wide failures, and per-update results of a batched write.

A ``Write`` with several updates that fails in part answers gRPC ``UNKNOWN``
and packs one ``p4.v1.Error`` per update, in order, into the
``google.rpc.Status`` carried in the ``grpc-status-details-bin`` trailer
(P4Runtime-Spec.adoc, "Error Reporting"; PI ``pi_server.cpp``
``SetErrorDetails``). :func:`decode_write_error` turns that into one
:class:`UpdateStatus` per update, so one rejected entry never hides which
others succeeded. Any other status code is RPC-wide and applies to every
update of the request.

:func:`classify` maps a code and message to an :class:`ErrorKind`, folding
the targets' different spellings of one condition into one kind. A full table
is ``RESOURCE_EXHAUSTED`` in the specification but ``UNKNOWN`` "Error when
adding match entry to target" on BMv2 (PI ``device_mgr.cpp``: any failure of
the target's ``entry_add`` after PI's own checks, which on BMv2 is the table
being full): both are :attr:`ErrorKind.TABLE_FULL`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from p4.v1 import p4runtime_pb2

if TYPE_CHECKING:
    from p4ctl.p4rt.entities import Update

__all__ = [
    "ClientClosedError",
    "ErrorKind",
    "NotPrimaryError",
    "P4RuntimeError",
    "UpdateStatus",
    "WriteResult",
    "classify",
    "decode_write_error",
    "status_code",
]

_CODES: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}

#: BMv2's message for a full table (PI ``device_mgr.cpp``, ``table_insert``).
BMV2_TABLE_FULL_MESSAGE = "Error when adding match entry to target"


def status_code(number: int) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` of a numeric canonical code (UNKNOWN if out of range)."""
    return _CODES.get(number, grpc.StatusCode.UNKNOWN)


class ErrorKind(enum.Enum):
    """What went wrong, independent of how a given target spells it."""

    OK = "ok"
    TABLE_FULL = "table full"
    ALREADY_EXISTS = "already exists"
    NOT_FOUND = "not found"
    INVALID = "invalid argument"
    NOT_PRIMARY = "not primary"
    NOT_PERMITTED = "not permitted"
    NO_PIPELINE = "no pipeline"
    UNAVAILABLE = "unavailable"
    UNIMPLEMENTED = "unimplemented"
    NOT_SENT = "not sent"
    OTHER = "other"


_KIND_BY_CODE = {
    grpc.StatusCode.OK: ErrorKind.OK,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorKind.TABLE_FULL,
    grpc.StatusCode.ALREADY_EXISTS: ErrorKind.ALREADY_EXISTS,
    grpc.StatusCode.NOT_FOUND: ErrorKind.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: ErrorKind.INVALID,
    grpc.StatusCode.OUT_OF_RANGE: ErrorKind.INVALID,
    grpc.StatusCode.PERMISSION_DENIED: ErrorKind.NOT_PRIMARY,
    grpc.StatusCode.FAILED_PRECONDITION: ErrorKind.NO_PIPELINE,
    grpc.StatusCode.UNAVAILABLE: ErrorKind.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: ErrorKind.UNAVAILABLE,
    grpc.StatusCode.UNIMPLEMENTED: ErrorKind.UNIMPLEMENTED,
    grpc.StatusCode.CANCELLED: ErrorKind.NOT_SENT,
}


def classify(code: grpc.StatusCode, message: str = "", *, per_update: bool = False) -> ErrorKind:
    """The :class:`ErrorKind` of a status; BMv2's full-table UNKNOWN is TABLE_FULL.

    PERMISSION_DENIED for a whole RPC means "not primary"; for one update of a
    batch it means the entry itself is not allowed (PI: a ``@defaultonly``
    action in an entry, a change of a ``const`` default action).
    """
    if code is grpc.StatusCode.UNKNOWN:
        return ErrorKind.TABLE_FULL if BMV2_TABLE_FULL_MESSAGE in message else ErrorKind.OTHER
    if per_update and code is grpc.StatusCode.PERMISSION_DENIED:
        return ErrorKind.NOT_PERMITTED
    return _KIND_BY_CODE.get(code, ErrorKind.OTHER)


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """Outcome of one update: the canonical code, the server's message, the kind."""

    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""
    space: str = ""
    target_code: int = 0
    kind: ErrorKind = ErrorKind.OK

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK

    @property
    def table_full(self) -> bool:
        return self.kind is ErrorKind.TABLE_FULL

    @classmethod
    def of(
        cls,
        code: grpc.StatusCode,
        message: str = "",
        space: str = "",
        target_code: int = 0,
        *,
        per_update: bool = False,
    ) -> UpdateStatus:
        if code is grpc.StatusCode.OK:
            return OK
        kind = classify(code, message, per_update=per_update)
        return cls(code, message, space, target_code, kind)

    def __str__(self) -> str:
        if self.ok:
            return "OK"
        return f"{self.code.name}: {self.message}" if self.message else self.code.name


OK = UpdateStatus()


class P4RuntimeError(Exception):
    """An RPC the switch refused as a whole (or that could not be sent)."""

    def __init__(self, code: grpc.StatusCode, message: str, *, rpc: str = "") -> None:
        self.code = code
        self.message = message
        self.rpc = rpc
        self.kind = classify(code, message)
        where = f"{rpc}: " if rpc else ""
        super().__init__(f"{where}{code.name}: {message}")

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, rpc: str = "") -> P4RuntimeError:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        if code is grpc.StatusCode.PERMISSION_DENIED:
            return NotPrimaryError(details or "not primary", rpc=rpc)
        return cls(code, details or "", rpc=rpc)


class NotPrimaryError(P4RuntimeError):
    """This client is not the primary controller: it must not write."""

    def __init__(self, message: str = "not the primary controller", *, rpc: str = "") -> None:
        super().__init__(grpc.StatusCode.PERMISSION_DENIED, message, rpc=rpc)


class ClientClosedError(P4RuntimeError):
    """The client was closed (or never connected)."""

    def __init__(self, message: str = "client is closed", *, rpc: str = "") -> None:
        super().__init__(grpc.StatusCode.CANCELLED, message, rpc=rpc)


def _status_details(error: grpc.RpcError) -> status_pb2.Status | None:
    trailers: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except DecodeError:
                return None
            return status
    return None


def decode_write_error(error: grpc.RpcError, count: int) -> tuple[list[UpdateStatus], bool]:
    """Per-update statuses of a failed ``Write`` of ``count`` updates, and whether
    they came from per-update details.

    With ``p4.v1.Error`` details (one per update) each update gets its own
    status. Without them, or with a count that does not match (a server bug:
    we cannot tell which update a detail belongs to), every update gets the
    RPC's status: the second value is then False (an RPC-wide failure).
    """
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else "") or ""
    status = _status_details(error)
    if status is not None and len(status.details) == count and count > 0:
        out: list[UpdateStatus] = []
        p4error = p4runtime_pb2.Error()
        for detail in status.details:
            try:
                if not detail.Unpack(p4error):
                    break
            except DecodeError:  # a p4.v1.Error that does not parse: RPC-wide, as none
                break
            out.append(
                UpdateStatus.of(
                    status_code(p4error.canonical_code),
                    p4error.message,
                    p4error.space,
                    p4error.code,
                    per_update=True,
                )
            )
        else:
            return out, True
    shared = UpdateStatus.of(code, message)
    return [shared] * count, False


@dataclass(slots=True)
class WriteResult:
    """The outcome of :meth:`P4RuntimeClient.write`: one status per update, in order."""

    updates: Sequence[Update]
    statuses: list[UpdateStatus]
    requests: int = 0
    errors: list[P4RuntimeError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.statuses)

    def __iter__(self) -> Iterator[tuple[Update, UpdateStatus]]:
        return iter(zip(self.updates, self.statuses, strict=True))

    def __len__(self) -> int:
        return len(self.statuses)

    def succeeded(self) -> list[Update]:
        return [u for u, s in zip(self.updates, self.statuses, strict=True) if s.ok]

    def failed(self) -> list[tuple[int, Update, UpdateStatus]]:
        """``(position, update, status)`` of every update that did not succeed."""
        return [
            (i, u, s)
            for i, (u, s) in enumerate(zip(self.updates, self.statuses, strict=True))
            if not s.ok
        ]

    def raise_on_error(self) -> WriteResult:
        """Raise :class:`P4RuntimeError` describing the first failures, if any."""
        failed = self.failed()
        if failed:
            first = failed[0][2]
            summary = "; ".join(f"#{i}: {s}" for i, _, s in failed[:5])
            more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
            raise P4RuntimeError(
                first.code, f"{len(failed)} of {len(self)} updates failed: {summary}{more}",
                rpc="Write",
            )
        return self
