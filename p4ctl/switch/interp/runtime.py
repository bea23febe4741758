"""Per-packet state and the small helpers generated code calls.

``Pkt`` is one packet in flight: its PHV (flat lists, see ``headers``) and
the per-packet registers simple_switch keeps in ``Packet``
(targets/simple_switch/register_access.h: packet length, clone session and
field list, learn list id, resubmit and recirculate flags) plus the exit flag
and truncation length of ``include/bm/bm_sim/packet.h``.

The helpers implement ``include/bm/bm_sim/data.h`` operations that are not a
plain Python operator (two_comp_mod, saturating casts, guarded shift,
division), signed wrap (``fields.h`` ``Field::export_bytes``) and header
comparison (``headers.cpp`` ``Header::cmp``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from p4ctl.switch.interp.codegen import PacketAbort

__all__ = ["HELPERS", "Pkt", "ProcessResult"]

_log = logging.getLogger("p4ctl.switch.interp")

#: Shifts wider than this produce 0 (the result is truncated to a field anyway).
MAX_SHIFT = 1 << 16


@dataclass(slots=True)
class ProcessResult:
    """What one input packet produced."""

    #: (egress_port, packet bytes) in emission order, clones included.
    outputs: list[tuple[int, bytes]] = field(default_factory=list)
    #: (learn list name, field values in learn-list order).
    digests: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)


class Pkt:
    """One packet instance going through the switch."""

    __slots__ = (
        "clone_fl",
        "clone_sid",
        "exit",
        "f",
        "ilen",
        "lf",
        "payload",
        "plen",
        "recirc",
        "resubmit",
        "st",
        "trunc",
        "v",
        "vlw",
    )

    def __init__(self, f: list[int], v: list[bool], st: list[int]) -> None:
        self.f = f
        self.v = v
        self.st = st
        self.vlw: dict[int, int] | None = None  # VL field slot -> current width in bits
        self.exit = False
        self.payload = b""
        self.plen = 0  # packet length register (add/remove_header update it)
        self.ilen = 0  # ingress length (counters count it)
        self.clone_sid = 0  # mirror session id | 0x8000 when a clone was asked for
        self.clone_fl = 0
        self.lf = 0  # learn list id of generate_digest
        self.resubmit = 0
        self.recirc = 0
        self.trunc: int | None = None


def _sw(value: int, width: int) -> int:
    """Wrap into a signed field of ``width`` bits (two's complement)."""
    half = 1 << (width - 1)
    return ((value + half) & ((1 << width) - 1)) - half


def _tcm(value: int, width: int) -> int:
    """``Data::two_comp_mod``."""
    w = width & 0xFFFFFFFF
    if w == 0:
        raise PacketAbort("two_comp_mod with width 0")
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    if value < lo or value > hi:
        value &= (1 << w) - 1
        if value > hi:
            value -= 1 << w
    return value


def _usat(value: int, width: int) -> int:
    """``Data::usat_cast``."""
    hi = (1 << (width & 0xFFFFFFFF)) - 1
    return hi if value > hi else 0 if value < 0 else value


def _sat(value: int, width: int) -> int:
    """``Data::sat_cast``."""
    w = width & 0xFFFFFFFF
    if w == 0:
        raise PacketAbort("sat_cast with width 0")
    hi, lo = (1 << (w - 1)) - 1, -(1 << (w - 1))
    return hi if value > hi else lo if value < lo else value


def _shl(value: int, amount: int) -> int:
    if amount < 0:
        raise PacketAbort("negative shift amount")
    return value << amount if amount < MAX_SHIFT else 0


def _shr(value: int, amount: int) -> int:
    if amount < 0:
        raise PacketAbort("negative shift amount")
    return value >> amount


def _div(a: int, b: int) -> int:
    # data.h asserts src1 >= 0 and src2 > 0; BMv2 would abort.
    if a < 0 or b <= 0:
        raise PacketAbort(f"division {a} / {b} outside BMv2's domain")
    return a // b


def _mod(a: int, b: int) -> int:
    if a < 0 or b <= 0:
        raise PacketAbort(f"modulo {a} % {b} outside BMv2's domain")
    return a % b


def _deref(headers: tuple[int, ...], index: int) -> int:
    """Header index of ``stack[index]`` (``HeaderStack::at`` throws out of range)."""
    if 0 <= index < len(headers):
        return headers[index]
    raise PacketAbort(f"header stack index {index} out of range")


def _last(p: Pkt, stack: int, headers: tuple[int, ...]) -> int:
    """The last valid header of a stack (``HeaderStack::get_last``)."""
    n = p.st[stack]
    if n <= 0:
        raise PacketAbort("access to the last element of an empty header stack")
    return headers[n - 1]


def _oob(what: str, index: int) -> None:
    _log.error("%s: index %d out of bounds, ignored (as BMv2 does)", what, index)


def _log_msg(fmt: str, values: tuple[int, ...]) -> None:
    """``core::log_msg``: substitute ``{}`` with the values, left to right."""
    out, i, k = [], 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c == "\\" and i + 1 < len(fmt) and fmt[i + 1] in "{}":
            out.append(fmt[i + 1])
            i += 2
            continue
        if c == "{":
            j = fmt.find("}", i)
            if j < 0:
                break
            out.append(str(values[k]) if k < len(values) else "")
            k += 1
            i = j + 1
            continue
        out.append(c)
        i += 1
    _log.info("%s", "".join(out))


def _assert(cond: bool, what: str) -> None:
    if not cond:
        # BMv2 logs and calls std::abort(); the software switch drops the packet.
        raise PacketAbort(f"{what} failed")


HELPERS: dict[str, Any] = {
    "_sw": _sw,
    "_tcm": _tcm,
    "_usat": _usat,
    "_sat": _sat,
    "_shl": _shl,
    "_shr": _shr,
    "_div": _div,
    "_mod": _mod,
    "_deref": _deref,
    "_last": _last,
    "_oob": _oob,
    "_log_msg": _log_msg,
    "_assert": _assert,
    "PacketAbort": PacketAbort,
}
