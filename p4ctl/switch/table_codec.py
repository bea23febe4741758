"""Table entries: P4Runtime ``TableEntry`` messages <-> the interpreter's keys and actions.

The checks and their messages are PI's (p4lang/PI
``proto/frontend/src/device_mgr.cpp``: ``construct_match_key``,
``set_*_match``; ``action_helpers.cpp``: ``construct_action_data``;
``match_key_helpers.cpp``: ``parse_match_key``), so a client sees the same
``INVALID_ARGUMENT`` for the same mistake on the software switch and on
``simple_switch_grpc``. In particular, as in PI:

* a "don't care" match (ternary mask 0, LPM prefix 0, full range) must be
  omitted, and an omitted field reads back omitted;
* an omitted exact field is an error; an omitted optional field is a wildcard;
* tables with a ternary, range or optional field need a priority > 0, the
  others must not have one;
* values may be padded with leading zero bytes; reads answer canonical bytes.

Optional fields are held as BMv2 holds them, as a ternary (value, mask)
pair: BMv2 has no optional match kind and p4c writes optional keys as
"ternary" in the JSON (see ``p4info_map``). The conversion is PI's, and lives
only here:

* write: a given value is the value with an all-ones mask of the field's
  width, an omitted field is value 0 with mask 0 (p4lang/PI
  ``proto/frontend/src/device_mgr.cpp`` ``set_optional_match`` and the
  missing-field case of ``construct_match_key``;
  ``src/frontends/generic/pi.c`` ``pi_match_key_optional_set`` writes mask
  bytes 0xff, the first byte cut to the width, or 0x00 for a wildcard; the
  BMv2 target sends it on as a TERNARY parameter,
  p4lang/behavioral-model ``PI/src/pi_tables_imp.cpp``);
* read: the field is omitted when the first byte of the mask is zero (a
  wildcard), otherwise it is an ``optional`` value (``pi_match_key_optional_get``,
  ``proto/frontend/src/match_key_helpers.cpp`` ``parse_match_key``), so a
  client reads back the form it wrote, and p4c's const entries (value with
  an all-ones mask, ``_`` with mask 0) read as optional values and omissions.
"""

from __future__ import annotations

from collections.abc import Iterable

from p4.v1 import p4runtime_pb2

from p4ctl.switch.codec import Code, P4RuntimeError, bytes_to_int, int_to_bytes
from p4ctl.switch.p4info_map import ActionMap, P4InfoMap, TableMap

__all__ = [
    "action_to_proto",
    "build_action_args",
    "build_key",
    "key_to_proto",
]


def _bad(message: str) -> P4RuntimeError:
    return P4RuntimeError(Code.INVALID_ARGUMENT, message)


def build_key(tm: TableMap, te: p4runtime_pb2.TableEntry) -> tuple[tuple, int]:
    """The interpreter key tuple and priority for ``te`` (PI's ``construct_match_key``)."""
    if te.is_default_action:
        if len(te.match):
            raise _bad("Non-empty key for default entry")
        if te.priority != 0:
            raise _bad("Non-zero priority for default entry")
        return (), 0
    exact = tm.exact_fields
    if exact is not None and len(te.match) == len(exact):
        fast = _exact_key(exact, te)
        if fast is not None:
            return fast
    fields = tm.match_fields
    if len(te.match) > len(fields):
        raise _bad("Too many fields in match key")
    given: dict[int, p4runtime_pb2.FieldMatch] = {}
    for fm in te.match:
        given.setdefault(fm.field_id, fm)
    key: list = [None] * len(fields)
    matched = 0
    for mf in fields:
        fm = given.get(mf.id)
        w = mf.bitwidth
        t = mf.match_type
        if fm is None:
            if t == "lpm" or t == "ternary" or t == "optional":
                key[mf.index] = (0, 0)
            elif t == "range":
                key[mf.index] = (0, (1 << w) - 1)
            else:
                raise _bad("Missing non-ternary field in match key")
            continue
        matched += 1
        kind = fm.WhichOneof("field_match_type")
        if t in ("exact", "valid"):
            if kind != "exact":
                raise _bad("Invalid match type")
            v = bytes_to_int(fm.exact.value, w)
            key[mf.index] = int(v != 0) if t == "valid" else v
        elif t == "lpm":
            if kind != "lpm":
                raise _bad("Invalid match type")
            v = bytes_to_int(fm.lpm.value, w)
            plen = fm.lpm.prefix_len
            if plen < 0:
                raise _bad("Prefix length cannot be < 0")
            if plen > w:
                raise _bad("Prefix length cannot be > bitwidth")
            if plen == 0:
                raise _bad(
                    "Invalid representation of 'don't care' LPM match, "
                    "omit match field instead of using a prefix length of 0"
                )
            if v & ((1 << (w - plen)) - 1):
                raise _bad("Invalid LPM value, incorrect number of trailing zeros")
            key[mf.index] = (v, plen)
        elif t == "ternary":
            if kind != "ternary":
                raise _bad("Invalid match type")
            v = bytes_to_int(fm.ternary.value, w)
            m = bytes_to_int(fm.ternary.mask, w)
            if m == 0:
                raise _bad(
                    "Invalid representation of 'don't care' ternary match, "
                    "omit match field instead of using 0 mask"
                )
            if v & ~m:
                raise _bad("Invalid ternary value, make sure value & mask == value")
            key[mf.index] = (v, m)
        elif t == "range":
            if kind != "range":
                raise _bad("Invalid match type")
            lo = bytes_to_int(fm.range.low, w)
            hi = bytes_to_int(fm.range.high, w)
            if lo == 0 and hi == (1 << w) - 1:
                raise _bad(
                    "Invalid representation of 'don't care' range match, "
                    "omit match field instead of using low=0 and high=2**bitwidth-1"
                )
            if lo > hi:
                raise _bad("Invalid range value, make sure low <= high")
            key[mf.index] = (lo, hi)
        elif t == "optional":
            if kind != "optional":
                raise _bad("Invalid match type")
            key[mf.index] = (bytes_to_int(fm.optional.value, w), (1 << w) - 1)
        else:  # pragma: no cover - refused when the map is built
            raise _bad("Invalid match type")
    if matched != len(te.match):
        raise _bad("Unknown field in match key")
    priority = te.priority
    if not tm.requires_priority:
        if priority > 0:
            raise _bad("Non-zero priority for non-ternary match")
        priority = 0
    elif priority == 0:
        raise _bad("Zero priority for ternary match")
    elif priority < 0:
        raise _bad("Priority must be positive")
    return tuple(key), priority


def _exact_key(
    exact: tuple[tuple[int, int], ...], te: p4runtime_pb2.TableEntry
) -> tuple[tuple, int] | None:
    """All-exact tables, fields given in order: the key without the general checks.

    Returns None whenever anything is unusual (other order, another match
    kind, a value too wide, a priority), so the general path gives the
    error PI would.
    """
    if te.priority:
        return None
    match = te.match
    key = []
    for (fid, width), fm in zip(exact, match, strict=True):
        if fm.field_id != fid or not fm.HasField("exact"):
            return None
        value = int.from_bytes(fm.exact.value, "big")
        if value >> width:
            return None
        key.append(value)
    return tuple(key), 0


def key_to_proto(tm: TableMap, key: tuple, priority: int, out: p4runtime_pb2.TableEntry) -> None:
    """Fill ``out.match`` / ``out.priority`` from an interpreter key (``parse_match_key``)."""
    if priority > 0:
        out.priority = priority
    for mf in tm.match_fields:
        el = key[mf.index]
        t = mf.match_type
        if t == "exact":
            fm = out.match.add(field_id=mf.id)
            fm.exact.value = int_to_bytes(el)
        elif t == "valid":
            fm = out.match.add(field_id=mf.id)
            fm.exact.value = b"\x01" if el else b"\x00"
        elif t == "lpm":
            if el[1] == 0:
                continue
            fm = out.match.add(field_id=mf.id)
            fm.lpm.value = int_to_bytes(el[0])
            fm.lpm.prefix_len = el[1]
        elif t == "ternary":
            if el[1] == 0:
                continue
            fm = out.match.add(field_id=mf.id)
            fm.ternary.value = int_to_bytes(el[0])
            fm.ternary.mask = int_to_bytes(el[1])
        elif t == "range":
            if el[0] == 0 and el[1] == (1 << mf.bitwidth) - 1:
                continue
            fm = out.match.add(field_id=mf.id)
            fm.range.low = int_to_bytes(el[0])
            fm.range.high = int_to_bytes(el[1])
        elif t == "optional":
            # PI's is_wildcard: the mask's first byte (of the field's whole bytes) is 0.
            if not el[1] >> ((mf.bitwidth - 1) & ~7):
                continue
            fm = out.match.add(field_id=mf.id)
            fm.optional.value = int_to_bytes(el[0])


def build_action_args(am: ActionMap, action: p4runtime_pb2.Action) -> tuple[int, ...]:
    """The interpreter's argument tuple (PI's ``construct_action_data``).

    Parameters given in P4Info order (as clients send them) are read in one
    pass; any other order goes through the general checks.
    """
    params = action.params
    if len(params) != len(am.param_order):
        raise _bad("Unexpected number of action parameters")
    args = []
    for (pid, width), p in zip(am.param_order, params, strict=True):
        if p.param_id != pid:
            return _action_args_any_order(am, params)
        args.append(bytes_to_int(p.value, width))
    return tuple(args)


def _action_args_any_order(am: ActionMap, params: Iterable[p4runtime_pb2.Action.Param]
                           ) -> tuple[int, ...]:
    args = [0] * len(am.param_order)
    seen: set[int] = set()
    for p in params:
        where = am.params.get(p.param_id)
        if where is None:
            raise _bad("Unknown action parameter")
        if p.param_id in seen:
            raise _bad("Duplicate action parameter")
        seen.add(p.param_id)
        index, width, _name = where
        args[index] = bytes_to_int(p.value, width)
    return tuple(args)


def action_to_proto(
    pmap: P4InfoMap, name: str, args: tuple[int, ...], out: p4runtime_pb2.Action
) -> bool:
    """Fill ``out`` with a JSON action call; False if the action is not in the P4Info."""
    am = pmap.actions_by_name.get(name)
    if am is None:
        return False
    out.action_id = am.id
    for (param_id, _w), value in zip(am.param_order, args, strict=False):
        out.params.add(param_id=param_id, value=int_to_bytes(value))
    return True
