"""Per-update errors decoded from google.rpc.Status details; one "table full" for both forms."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import status_pb2
from p4.v1 import p4runtime_pb2

from p4ctl.p4rt.entities import RegisterEntry, insert
from p4ctl.p4rt.errors import (
    ErrorKind,
    NotPrimaryError,
    P4RuntimeError,
    UpdateStatus,
    WriteResult,
    classify,
    decode_write_error,
)


def rpc_error(code: grpc.StatusCode, message: str, details: list[p4runtime_pb2.Error] | None,
              ) -> grpc.aio.AioRpcError:
    """The exception grpc.aio raises, with the trailer a P4Runtime server sends."""
    trailers = grpc.aio.Metadata()
    if details is not None:
        status = status_pb2.Status(code=code.value[0], message=message)
        for d in details:
            packed = any_pb2.Any()
            packed.Pack(d)
            status.details.append(packed)
        trailers.add("grpc-status-details-bin", status.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, message)


def test_per_update_errors_in_order() -> None:
    details = [
        p4runtime_pb2.Error(canonical_code=8, message="Table is full.", space="x", code=500),
        p4runtime_pb2.Error(canonical_code=0),
        p4runtime_pb2.Error(canonical_code=6, message="Entity already exists."),
    ]
    statuses, detailed = decode_write_error(rpc_error(grpc.StatusCode.UNKNOWN, "Write failure.",
                                                      details), 3)
    assert detailed
    assert [s.code for s in statuses] == [
        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS,
    ]
    assert statuses[0].table_full and statuses[0].target_code == 500 and statuses[0].space == "x"
    assert statuses[1].ok and statuses[1].kind is ErrorKind.OK
    assert statuses[2].kind is ErrorKind.ALREADY_EXISTS
    assert str(statuses[2]) == "ALREADY_EXISTS: Entity already exists."


def test_bmv2_full_table_is_table_full() -> None:
    details = [p4runtime_pb2.Error(canonical_code=2,
                                   message="Error when adding match entry to target")]
    statuses, _ = decode_write_error(rpc_error(grpc.StatusCode.UNKNOWN, "", details), 1)
    assert statuses[0].code is grpc.StatusCode.UNKNOWN
    assert statuses[0].kind is ErrorKind.TABLE_FULL and statuses[0].table_full
    assert classify(grpc.StatusCode.RESOURCE_EXHAUSTED) is ErrorKind.TABLE_FULL
    assert classify(grpc.StatusCode.UNKNOWN, "something else") is ErrorKind.OTHER


def test_permission_denied_for_one_update_is_not_permitted() -> None:
    details = [p4runtime_pb2.Error(canonical_code=7, message="default-only action"),
               p4runtime_pb2.Error(canonical_code=0)]
    statuses, _ = decode_write_error(rpc_error(grpc.StatusCode.UNKNOWN, "", details), 2)
    assert statuses[0].kind is ErrorKind.NOT_PERMITTED and statuses[1].ok


def test_rpc_wide_errors_apply_to_every_update() -> None:
    statuses, detailed = decode_write_error(
        rpc_error(grpc.StatusCode.PERMISSION_DENIED, "Not primary", None), 2
    )
    assert not detailed
    assert all(s.kind is ErrorKind.NOT_PRIMARY for s in statuses) and len(statuses) == 2
    # details whose count does not match the updates cannot be attributed
    mismatch = rpc_error(grpc.StatusCode.UNKNOWN, "x", [p4runtime_pb2.Error(canonical_code=5)])
    statuses, detailed = decode_write_error(mismatch, 2)
    assert not detailed and all(s.code is grpc.StatusCode.UNKNOWN for s in statuses)
    # garbage in the trailer is not a crash
    trailers = grpc.aio.Metadata(("grpc-status-details-bin", b"\xff\xff\xff"))
    garbage = grpc.aio.AioRpcError(grpc.StatusCode.UNKNOWN, grpc.aio.Metadata(), trailers, "x")
    statuses, detailed = decode_write_error(garbage, 1)
    assert not detailed and statuses[0].code is grpc.StatusCode.UNKNOWN
    # a detail of p4.v1.Error's type whose value does not parse
    status = status_pb2.Status(code=2, details=[any_pb2.Any(
        type_url="type.googleapis.com/p4.v1.Error", value=b"\xff\xff\xff")])
    trailers = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    corrupt = grpc.aio.AioRpcError(grpc.StatusCode.UNKNOWN, grpc.aio.Metadata(), trailers, "x")
    statuses, detailed = decode_write_error(corrupt, 1)
    assert not detailed and statuses[0].code is grpc.StatusCode.UNKNOWN


def test_exceptions() -> None:
    error = P4RuntimeError.from_rpc_error(
        rpc_error(grpc.StatusCode.PERMISSION_DENIED, "Not primary", None), "Write"
    )
    assert isinstance(error, NotPrimaryError)
    assert "Write: PERMISSION_DENIED: Not primary" in str(error)
    missing = P4RuntimeError.from_rpc_error(
        rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "No forwarding pipeline config", None)
    )
    assert missing.kind is ErrorKind.NO_PIPELINE


def test_write_result() -> None:
    updates = [insert(RegisterEntry("r", i, 0)) for i in range(3)]
    failed = UpdateStatus.of(grpc.StatusCode.NOT_FOUND, "gone")
    result = WriteResult(updates, [UpdateStatus(), failed, UpdateStatus()], requests=1)
    assert not result.ok and len(result) == 3
    assert result.succeeded() == [updates[0], updates[2]]
    assert result.failed() == [(1, updates[1], failed)]
    assert [s.ok for _, s in result] == [True, False, True]
    with pytest.raises(P4RuntimeError, match=r"1 of 3 updates failed: #1: NOT_FOUND: gone"):
        result.raise_on_error()
    assert WriteResult(updates[:1], [UpdateStatus()]).raise_on_error().ok
