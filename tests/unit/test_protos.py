"""The p4runtime protos must run on the fast (upb) protobuf, not the pure-Python one."""

from __future__ import annotations

import os

from google.protobuf.internal import api_implementation

from p4ctl import protogen


def test_fast_protobuf_in_use() -> None:
    import p4.v1.p4runtime_pb2 as p4runtime_pb2  # noqa: F401  (must import under upb)

    assert os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION") != "python"
    assert api_implementation.Type() == "upb"


def test_regenerated_modules_installed() -> None:
    assert not protogen.needs_regeneration()


def test_grpc_stubs_present() -> None:
    from p4.v1 import p4runtime_pb2_grpc

    assert hasattr(p4runtime_pb2_grpc, "P4RuntimeStub")
    assert hasattr(p4runtime_pb2_grpc, "P4RuntimeServicer")
