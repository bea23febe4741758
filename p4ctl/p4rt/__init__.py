"""P4Runtime client layer: everything the controller says to a switch.

Modules, each readable alone:

- :mod:`~p4ctl.p4rt.encoding`: canonical byte strings for P4 integers.
- :mod:`~p4ctl.p4rt.p4info`: the P4Info index (names <-> ids).
- :mod:`~p4ctl.p4rt.p4data`: typed ``P4Data`` values (registers, digests).
- :mod:`~p4ctl.p4rt.entities`: table/register/counter/digest entries as plain classes.
- :mod:`~p4ctl.p4rt.messages`: packet-in/out, digest lists, idle timeouts, stream errors.
- :mod:`~p4ctl.p4rt.errors`: RPC errors and per-update write results.
- :mod:`~p4ctl.p4rt.device_config`: per-target ``p4_device_config`` and pipelines.
- :mod:`~p4ctl.p4rt.channel`: gRPC channels (insecure, TLS, mutual TLS).
- :mod:`~p4ctl.p4rt.idle`: idle-timeout notifications in the specification's rhythm.
- :mod:`~p4ctl.p4rt.client`: :class:`P4RuntimeClient`.
- :mod:`~p4ctl.p4rt.registers`: one register interface over P4Runtime or BMv2 Thrift.
"""

from p4ctl.p4rt.channel import Credentials
from p4ctl.p4rt.client import (
    ClientOptions,
    ClientStats,
    DevicePipeline,
    MastershipEvent,
    P4RuntimeClient,
)
from p4ctl.p4rt.device_config import (
    PipelineConfig,
    bmv2_device_config,
    parse_tofino_device_config,
    tofino_device_config,
)
from p4ctl.p4rt.encoding import EncodingError
from p4ctl.p4rt.entities import (
    LPM,
    CounterData,
    CounterEntry,
    DigestEntry,
    DirectCounterEntry,
    Exact,
    OptionalMatch,
    Range,
    RegisterEntry,
    TableEntry,
    Ternary,
    Update,
    UpdateType,
    delete,
    insert,
    modify,
)
from p4ctl.p4rt.errors import (
    ClientClosedError,
    ErrorKind,
    NotPrimaryError,
    P4RuntimeError,
    UpdateStatus,
    WriteResult,
)
from p4ctl.p4rt.messages import (
    DigestList,
    IdleTimeoutNotification,
    PacketIn,
    PacketOut,
    StreamError,
)
from p4ctl.p4rt.p4info import P4Info, P4InfoError
from p4ctl.p4rt.registers import (
    P4RuntimeRegisters,
    RegisterBackend,
    RegisterError,
    ThriftRegisters,
    register_backend,
)

__all__ = [
    "LPM",
    "ClientClosedError",
    "ClientOptions",
    "ClientStats",
    "CounterData",
    "CounterEntry",
    "Credentials",
    "DevicePipeline",
    "DigestEntry",
    "DigestList",
    "DirectCounterEntry",
    "EncodingError",
    "ErrorKind",
    "Exact",
    "IdleTimeoutNotification",
    "MastershipEvent",
    "NotPrimaryError",
    "OptionalMatch",
    "P4Info",
    "P4InfoError",
    "P4RuntimeClient",
    "P4RuntimeError",
    "P4RuntimeRegisters",
    "PacketIn",
    "PacketOut",
    "PipelineConfig",
    "Range",
    "RegisterBackend",
    "RegisterEntry",
    "RegisterError",
    "StreamError",
    "TableEntry",
    "Ternary",
    "ThriftRegisters",
    "Update",
    "UpdateStatus",
    "UpdateType",
    "WriteResult",
    "bmv2_device_config",
    "delete",
    "insert",
    "modify",
    "parse_tofino_device_config",
    "register_backend",
    "tofino_device_config",
]
