"""``p4_device_config`` builders: the target-specific half of a forwarding pipeline.

``SetForwardingPipelineConfig`` carries the P4Info (the same for every target)
and an opaque ``p4_device_config`` whose format the target's P4Runtime server
defines:

- BMv2 ``simple_switch_grpc`` (and the project's software switch): the bytes
  of the BMv2 JSON that p4c produced (PI's bmv2 target hands them to
  ``bm::SwitchWContexts::load_new_config``).
- Tofino through PI (``bf_switchd`` with the PI P4Runtime server): the program
  name, ``tofino.bin`` and ``context.json``, each preceded by its length as a
  little-endian signed 32-bit integer, in that order (p4runtime-shell
  ``config_builders/tofino.py``, which writes exactly this).
- Stratum's bfrt target wants a ``BfPipelineConfig`` protobuf instead; this
  client does not build it (see docs/p4rt-client.md).

:class:`PipelineConfig` bundles a P4Info with its device config and an
optional cookie (an identifier the server stores and returns, so a client can
tell cheaply whether the device runs the pipeline it expects).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from p4.v1 import p4runtime_pb2

from p4ctl.p4rt.p4info import P4Info

__all__ = [
    "PipelineConfig",
    "bmv2_device_config",
    "parse_tofino_device_config",
    "tofino_device_config",
]

_LEN = struct.Struct("<i")


def bmv2_device_config(json_config: bytes | str | Path) -> bytes:
    """Device config for BMv2: the JSON bytes (a path is read)."""
    if isinstance(json_config, Path):
        return json_config.read_bytes()
    if isinstance(json_config, str):
        return json_config.encode()
    return bytes(json_config)


def tofino_device_config(program_name: str, tofino_bin: bytes, context_json: bytes) -> bytes:
    """Device config for Tofino through PI: three length-prefixed blobs."""
    name = program_name.encode()
    if not name:
        raise ValueError("the Tofino device config needs a program name")
    parts = (name, bytes(tofino_bin), bytes(context_json))
    for part in parts:
        if len(part) > 0x7FFFFFFF:
            raise ValueError("a Tofino device config part exceeds 2 GiB")
    return b"".join(_LEN.pack(len(p)) + p for p in parts)


def parse_tofino_device_config(data: bytes) -> tuple[str, bytes, bytes]:
    """``(program_name, tofino_bin, context_json)`` of a PI Tofino device config."""
    parts: list[bytes] = []
    offset = 0
    for what in ("program name", "tofino.bin", "context.json"):
        if offset + 4 > len(data):
            raise ValueError(f"Tofino device config truncated before the {what} length")
        (length,) = _LEN.unpack_from(data, offset)
        offset += 4
        if length < 0 or offset + length > len(data):
            raise ValueError(f"Tofino device config: bad {what} length {length}")
        parts.append(data[offset : offset + length])
        offset += length
    if offset != len(data):
        raise ValueError(f"Tofino device config has {len(data) - offset} trailing bytes")
    return parts[0].decode(), parts[1], parts[2]


def _cookie_of(p4info: P4Info, device_config: bytes) -> int:
    digest = hashlib.sha256(p4info.proto.SerializeToString(deterministic=True))
    digest.update(device_config)
    return int.from_bytes(digest.digest()[:8], "big")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """A P4Info, its target's device config, and a cookie identifying the pair.

    The cookie defaults to a hash of both, so "does the switch run this
    pipeline?" is one ``GetForwardingPipelineConfig(COOKIE_ONLY)``.
    """

    p4info: P4Info
    device_config: bytes
    cookie: int

    @classmethod
    def create(
        cls, p4info: P4Info, device_config: bytes, cookie: int | None = None
    ) -> PipelineConfig:
        if cookie is None:
            cookie = _cookie_of(p4info, device_config)
        return cls(p4info, device_config, cookie)

    @classmethod
    def bmv2(cls, p4info: P4Info | str | Path, json_config: bytes | str | Path) -> PipelineConfig:
        """BMv2 pipeline from a P4Info (index or file) and the BMv2 JSON (bytes or file)."""
        info = p4info if isinstance(p4info, P4Info) else P4Info.load(p4info)
        if isinstance(json_config, str) and not json_config.lstrip().startswith("{"):
            json_config = Path(json_config)
        return cls.create(info, bmv2_device_config(json_config))

    @classmethod
    def tofino(
        cls,
        p4info: P4Info | str | Path,
        program_name: str,
        tofino_bin: bytes | Path,
        context_json: bytes | Path,
    ) -> PipelineConfig:
        """Tofino (PI) pipeline from a P4Info and p4c's ``tofino.bin`` and ``context.json``."""
        info = p4info if isinstance(p4info, P4Info) else P4Info.load(p4info)
        binary = tofino_bin.read_bytes() if isinstance(tofino_bin, Path) else tofino_bin
        context = context_json.read_bytes() if isinstance(context_json, Path) else context_json
        return cls.create(info, tofino_device_config(program_name, binary, context))

    def to_proto(self) -> p4runtime_pb2.ForwardingPipelineConfig:
        msg = p4runtime_pb2.ForwardingPipelineConfig(p4_device_config=self.device_config)
        msg.p4info.CopyFrom(self.p4info.proto)
        msg.cookie.cookie = self.cookie
        return msg
