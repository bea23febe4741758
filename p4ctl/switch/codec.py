"""P4Runtime byte strings and error values, as PI's frontend handles them.

Every value a client sends (match fields, action parameters, packet
metadata, register data) arrives as a big-endian byte string. The server
turns it into an ``int`` once, at the edge, and turns ``int`` back into the
canonical form (the shortest string, at least one byte) when it answers, so
reads are symmetric with writes whatever padding the client used.

PI's rules (p4lang/PI ``proto/frontend/src/common.cpp``,
``bytestring_p4rt_to_pi`` / ``bytestring_pi_to_p4rt``), which the switch
follows, differ from the P4Runtime specification ("Bytestrings") in two ways
that ``docs/software-switch.md`` lists:

* a value wider than the P4Info bit width is refused with ``INVALID_ARGUMENT``
  ("Bytestring provided does not fit within N bits"), where the specification
  says ``OUT_OF_RANGE``;
* an empty string is accepted as 0, where the specification rejects it.

Both agree that leading zero bytes (a longer, non-canonical string) are
accepted as long as the value fits.
"""

from __future__ import annotations

from google.rpc import code_pb2

from p4ctl.p4rt.encoding import canonical_bytes

__all__ = [
    "Code",
    "P4RuntimeError",
    "bytes_to_int",
    "fixed_bytes",
    "int_to_bytes",
]


class Code:
    """google.rpc canonical codes (the integers of ``google/rpc/code.proto``)."""

    OK = code_pb2.OK
    CANCELLED = code_pb2.CANCELLED
    UNKNOWN = code_pb2.UNKNOWN
    INVALID_ARGUMENT = code_pb2.INVALID_ARGUMENT
    DEADLINE_EXCEEDED = code_pb2.DEADLINE_EXCEEDED
    NOT_FOUND = code_pb2.NOT_FOUND
    ALREADY_EXISTS = code_pb2.ALREADY_EXISTS
    PERMISSION_DENIED = code_pb2.PERMISSION_DENIED
    RESOURCE_EXHAUSTED = code_pb2.RESOURCE_EXHAUSTED
    FAILED_PRECONDITION = code_pb2.FAILED_PRECONDITION
    ABORTED = code_pb2.ABORTED
    OUT_OF_RANGE = code_pb2.OUT_OF_RANGE
    UNIMPLEMENTED = code_pb2.UNIMPLEMENTED
    INTERNAL = code_pb2.INTERNAL
    UNAVAILABLE = code_pb2.UNAVAILABLE


class P4RuntimeError(Exception):
    """A refusal with a canonical code, for one update, one entity or a whole RPC.

    Raised anywhere below the gRPC layer; the server turns it into a
    ``p4.v1.Error`` (per update) or into the RPC's status.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{code_pb2.Code.Name(self.code)}: {self.message}"


def bytes_to_int(data: bytes, bitwidth: int) -> int:
    """Decode a client byte string for a ``bit<bitwidth>`` value (PI's rules).

    Shorter strings are zero-extended (the empty string is 0); longer strings
    are accepted when the extra leading bits are zero.
    """
    value = int.from_bytes(data, "big")
    if value >> bitwidth:
        raise P4RuntimeError(
            Code.INVALID_ARGUMENT, f"Bytestring provided does not fit within {bitwidth} bits"
        )
    return value


#: canonical byte string: the shortest big-endian form, ``b"\\x00"`` for 0 (the
#: client's own function: one definition of canonical for both sides)
int_to_bytes = canonical_bytes


def fixed_bytes(value: int, bitwidth: int) -> bytes:
    """The value in exactly ``(bitwidth + 7) // 8`` bytes, as BMv2 stores a field."""
    return value.to_bytes((bitwidth + 7) // 8, "big")
