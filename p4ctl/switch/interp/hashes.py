"""Hash algorithms and named calculations, bit-exact with behavioral-model.

``src/bm_sim/calculations.cpp``:

* the input buffer (``BufBuilder``) packs the listed fields bit-contiguously,
  most significant bit first, without per-field padding, skipping fields of
  invalid headers; constants are packed with their declared ``bitwidth``;
  whole headers are appended when valid; the buffer is zero-padded at the end
  to whole bytes; ``payload`` appends the packet payload after that;
* ``crc32``: reflected CRC-32, init and xor-out 0xFFFFFFFF = ``zlib.crc32``;
* ``crc16``: reflected CRC-16, polynomial 0x8005, init 0, xor-out 0 (CRC-16/ARC);
* ``crcCCITT``: non-reflected, polynomial 0x1021, init 0xFFFF (CRC-16/CCITT-FALSE);
* ``crc{8,16,32,64}_custom``: the generic ``crc_custom`` with the default
  configurations of ``crc_custom_init`` (crc8: 0x07/0/0 not reflected; crc16:
  as crc16; crc32: as crc32; crc64: 0x1b/0/0 reflected);
* ``csum16`` / ``cksum16``: the Internet checksum (RFC 1071), an odd last byte
  padded with zero, result big-endian;
* ``identity``: the first (up to) 8 bytes of the buffer as a big-endian integer;
* ``xor16`` / ``xor32``: XOR of big-endian words, a short tail left-aligned;
* ``round_robin``, ``round_robin_consistent``: counters, per calculation.

Not supported (refused at load): ``xxh64`` (needs xxHash), ``toeplitz``,
``random`` (not a BMv2 hash: BMv2 refuses it too).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from p4ctl.switch.state import PipelineError

__all__ = ["CrcConfig", "crc_custom", "hash_function", "internet_checksum"]


def _reflect(value: int, nbits: int) -> int:
    out = 0
    for _ in range(nbits):
        out = (out << 1) | (value & 1)
        value >>= 1
    return out


@dataclass(slots=True, frozen=True)
class CrcConfig:
    """``crc_config_t``: polynomial, initial remainder, final xor, reflections."""

    width: int
    polynomial: int
    initial: int
    final_xor: int
    data_reflected: bool
    remainder_reflected: bool


def _table(cfg: CrcConfig) -> list[int]:
    w, top, mask = cfg.width, 1 << (cfg.width - 1), (1 << cfg.width) - 1
    table = []
    for dividend in range(256):
        rem = (dividend << (w - 8)) & mask
        for _ in range(8):
            rem = ((rem << 1) ^ cfg.polynomial) & mask if rem & top else (rem << 1) & mask
        table.append(rem)
    return table


def crc_custom(cfg: CrcConfig) -> Callable[[bytes], int]:
    """The generic table-driven CRC of calculations.cpp ``crc_custom<T>``."""
    table = _table(cfg)
    w, mask = cfg.width, (1 << cfg.width) - 1
    refl8 = [_reflect(b, 8) for b in range(256)]

    def crc(buf: bytes) -> int:
        rem = cfg.initial
        shift = w - 8
        for byte in buf:
            data = (refl8[byte] if cfg.data_reflected else byte) ^ (rem >> shift)
            rem = (table[data & 0xFF] ^ (rem << 8)) & mask
        if cfg.remainder_reflected:
            rem = _reflect(rem, w)
        return rem ^ cfg.final_xor

    return crc


CRC16 = CrcConfig(16, 0x8005, 0x0000, 0x0000, True, True)
CRC_CCITT = CrcConfig(16, 0x1021, 0xFFFF, 0x0000, False, False)
CUSTOM_DEFAULTS = {
    "crc8_custom": CrcConfig(8, 0x07, 0x00, 0x00, False, False),
    "crc16_custom": CRC16,
    "crc32_custom": CrcConfig(32, 0x04C11DB7, 0xFFFFFFFF, 0xFFFFFFFF, True, True),
    "crc64_custom": CrcConfig(64, 0x1B, 0, 0, True, True),
}


def _crc16_arc() -> Callable[[bytes], int]:
    """Reflected form of CRC-16/ARC (same values as BMv2's crc16, byte-table speed)."""
    table = []
    for b in range(256):
        crc = b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)

    def crc16(buf: bytes) -> int:
        crc = 0
        for byte in buf:
            crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
        return crc

    return crc16


def internet_checksum(buf: bytes) -> int:
    """calculations.cpp ``cksum16``: ones' complement of the ones' complement sum."""
    if len(buf) & 1:
        buf = buf + b"\x00"
    total = sum(memoryview(buf).cast("H")) if buf else 0
    # The sum above is over native (little-endian here) words; fold, then swap.
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    total = ~total & 0xFFFF
    if _LITTLE:
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


_LITTLE = memoryview(b"\x01\x00").cast("H")[0] == 1


def _identity(buf: bytes) -> int:
    return int.from_bytes(buf[:8], "big")


def _xor(nbytes: int) -> Callable[[bytes], int]:
    def xor_hash(buf: bytes) -> int:
        out = 0
        for i in range(0, len(buf), nbytes):
            chunk = buf[i : i + nbytes]
            out ^= int.from_bytes(chunk, "big") << (8 * (nbytes - len(chunk)))
        return out

    return xor_hash


def _round_robin() -> Callable[[bytes], int]:
    state = [0]

    def rr(_buf: bytes) -> int:
        v = state[0]
        state[0] = (v + 1) & 0xFFFFFFFFFFFFFFFF
        return v

    return rr


def _round_robin_consistent() -> Callable[[bytes], int]:
    seen: dict[bytes, int] = {}

    def rrc(buf: bytes) -> int:
        v = seen.get(buf)
        if v is None:
            v = seen[buf] = len(seen)
        return v

    return rrc


def hash_function(algo: str, where: str) -> Callable[[bytes], int]:
    """A fresh instance of BMv2's hash ``algo`` (stateful ones get their own state)."""
    if algo == "crc32":
        return zlib.crc32
    if algo == "crc16":
        return _crc16_arc()
    if algo == "crcCCITT":
        return crc_custom(CRC_CCITT)
    if algo in CUSTOM_DEFAULTS:
        cfg = CUSTOM_DEFAULTS[algo]
        if algo == "crc32_custom":
            return zlib.crc32
        if algo == "crc16_custom":
            return _crc16_arc()
        return crc_custom(cfg)
    if algo in ("csum16", "cksum16"):
        return internet_checksum
    if algo == "identity":
        return _identity
    if algo == "xor16":
        return _xor(2)
    if algo == "xor32":
        return _xor(4)
    if algo == "round_robin":
        return _round_robin()
    if algo == "round_robin_consistent":
        return _round_robin_consistent()
    raise PipelineError(f"{where}: hash algorithm {algo!r} is not supported")
