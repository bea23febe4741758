"""Runtime state of the software switch: tables, registers, counters.

This is the state a control plane reads and writes (through the P4Runtime and
Thrift servers) and that the packet pipeline consults and updates. It knows
nothing about JSON or packets: the pipeline (``pipeline.py``) builds these
objects from the BMv2 JSON and calls the lookup functions compiled here.

Semantics follow BMv2 (p4lang/behavioral-model):

* ``src/bm_sim/match_units.cpp`` / ``lookup_structures.cpp``: exact keys live in a
  hash map; LPM picks the longest prefix; ternary/range pick the entry with the
  best priority, the earliest entry winning ties.
* Priorities here are P4Runtime priorities (a higher value wins). PI converts
  them for BMv2 as ``INT32_MAX - priority`` (p4lang/PI
  ``targets/bmv2/pi_tables_imp.cpp``, ``PriorityInverter``), where a lower value
  wins; const entries from the JSON carry BMv2 priorities and are stored here
  converted the same way, so a read shows what PI would show.
* Tables whose key has a ternary, range or optional field need a priority
  (PI's ``requires_priority``); the others take priority 0.
* An optional field's key element is BMv2's ternary pair (value, mask) with
  the mask all ones or 0: BMv2 has no optional kind (p4c writes optional
  keys as "ternary" in the JSON, and PI sends an optional match to BMv2 as a
  ternary one, p4lang/PI ``src/frontends/generic/pi.c``
  ``pi_match_key_optional_set``). The loader refuses a JSON that says
  "optional", as BMv2 does; the P4Runtime side converts in one place
  (``table_codec``).
* ``src/bm_sim/match_tables.cpp`` ``set_default_action``: a const default entry
  cannot change at all; a const default action can change only its arguments.
* ``src/bm_sim/context.cpp`` ``register_write_range``: ``[start, end)``,
  ``end <= size``.
* ``include/bm/bm_sim/counters.h``: a counter hit adds one packet and the
  packet's ingress length in bytes.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = [
    "BM_MAX_PRIORITY",
    "ActionInfo",
    "CounterArray",
    "DigestInfo",
    "DuplicateEntryError",
    "InvalidEntryError",
    "MatchFieldInfo",
    "NotFoundError",
    "PipelineError",
    "RegisterArray",
    "StateError",
    "Table",
    "TableEntry",
    "TableFullError",
]

#: PI's pivot for converting P4Runtime priorities to BMv2's (INT32_MAX).
BM_MAX_PRIORITY = 2**31 - 1

MATCH_TYPES = ("exact", "lpm", "ternary", "range", "valid", "optional")


class PipelineError(Exception):
    """The BMv2 JSON is malformed or uses a construct the interpreter does not support.

    Raised at load time only; the message names the construct (and where it is).
    """


class StateError(Exception):
    """Base of the errors a control-plane operation on the switch state can raise."""


class TableFullError(StateError):
    """The table already holds ``size`` entries."""


class DuplicateEntryError(StateError):
    """An entry with the same key and priority exists."""


class NotFoundError(StateError):
    """No entry with that key and priority."""


class InvalidEntryError(StateError):
    """The key, priority, action or arguments do not fit the table."""


@dataclass(slots=True, frozen=True)
class MatchFieldInfo:
    name: str
    match_type: str  # "exact" | "lpm" | "ternary" | "range" | "valid" | "optional"
    bitwidth: int


@dataclass(slots=True, frozen=True)
class ActionInfo:
    name: str
    id: int
    params: list[tuple[str, int]]  # (name, bitwidth), in runtime_data order


@dataclass(slots=True, frozen=True)
class DigestInfo:
    name: str
    id: int
    fields: list[tuple[str, int]]  # (name, bitwidth), in learn-list order


@dataclass(slots=True)
class TableEntry:
    """One match entry.

    ``key`` has one element per match field, in JSON order: exact/valid -> int;
    lpm -> (value, prefix_len); ternary -> (value, mask); range -> (low, high);
    optional -> (value, mask) as ternary, the mask all ones (a value) or 0
    (a wildcard, value 0).
    """

    key: tuple
    priority: int
    action: str
    args: tuple[int, ...]
    ttl_ns: int = 0
    last_hit_ns: int = 0
    packets: int = 0
    bytes: int = 0
    metadata: bytes = b""
    controller_metadata: int = 0


def _mask(width: int) -> int:
    return (1 << width) - 1


def _check_uint(what: str, value: object, width: int) -> int:
    if not isinstance(value, int) or (isinstance(value, bool) and width != 1):
        raise InvalidEntryError(f"{what}: expected an integer, got {value!r}")
    v = int(value)
    if v < 0 or v >> width:
        raise InvalidEntryError(f"{what}: value {v:#x} does not fit in {width} bits")
    return v


class Table:
    """A match-action table with its entries, default action and lookup.

    ``lookup`` is chosen once, from the match kinds, so the packet path does a
    single dict probe for exact tables, one probe per prefix length for LPM
    tables and a priority-ordered scan for ternary/range/optional tables.

    Not thread-safe: control-plane calls and packet processing must run in one
    thread (the switch's event loop) or under one lock.
    """

    def __init__(
        self,
        name: str,
        id: int,
        match_fields: list[MatchFieldInfo],
        size: int,
        action_names: list[str],
        actions: dict[str, ActionInfo],
        default_action: tuple[str, tuple[int, ...]],
        *,
        support_timeout: bool = False,
        direct_counter: str | None = None,
        const_default: bool = False,
        const_default_entry: bool = False,
        has_const_entries: bool = False,
    ) -> None:
        self.name = name
        self.id = id
        self.match_fields = list(match_fields)
        self.size = size
        self.action_names = list(action_names)
        self.support_timeout = support_timeout
        self.direct_counter = direct_counter
        self.const_default = const_default
        self.const_default_entry = const_default_entry
        self.has_const_entries = has_const_entries
        self._actions = actions
        self._initial_default = default_action
        self.default_action: tuple[str, tuple[int, ...]] = default_action
        kinds = {f.match_type for f in match_fields}
        self.requires_priority = bool(kinds & {"ternary", "range", "optional"})
        self._widths = [f.bitwidth for f in match_fields]
        self._exact_limits: tuple[int, ...] | None = None
        if all(f.match_type == "exact" for f in match_fields):
            self._exact_limits = tuple(_mask(f.bitwidth) for f in match_fields)
        self._kinds = [f.match_type for f in match_fields]
        # (key, priority) -> entry, in insertion order (modify keeps the place).
        self._entries: dict[tuple, TableEntry] = {}
        #: called with an entry inserted, or modified with a TTL (the idle monitor's)
        self.on_timer: Callable[[TableEntry], None] | None = None
        self._const: set[tuple] = set()
        self._seq = 0
        self._order: dict[tuple, int] = {}
        if not self.requires_priority and "lpm" not in kinds:
            self._mode = "exact"
            self._exact: dict[tuple, TableEntry] = {}
            self.lookup: Callable[[tuple], TableEntry | None] = self._exact.get
        elif not self.requires_priority:
            self._mode = "lpm"
            lpm_pos = [i for i, k in enumerate(self._kinds) if k == "lpm"]
            if len(lpm_pos) != 1:
                raise PipelineError(f"table {name}: more than one lpm match field")
            self._lpm_pos = lpm_pos[0]
            self._lpm_width = self._widths[self._lpm_pos]
            # prefix_len -> {masked key tuple -> entry}
            self._lpm: dict[int, dict[tuple, TableEntry]] = {}
            self._lpm_order: list[tuple[int, int, dict[tuple, TableEntry]]] = []
            self.lookup = self._lookup_lpm
        else:
            self._mode = "scan"
            # (entry, [(mask, value) or (lo, hi, None)...]) sorted by priority
            self._scan: list[tuple[TableEntry, tuple]] = []
            self._scan_order: list[tuple[int, int]] = []  # (-priority, seq), sorted like _scan
            self.lookup = self._lookup_scan

    # ----- validation ---------------------------------------------------

    def _check_key(self, key: object) -> tuple:
        if not isinstance(key, tuple) or len(key) != len(self.match_fields):
            raise InvalidEntryError(
                f"table {self.name}: key must be a tuple of {len(self.match_fields)} elements"
            )
        if self._exact_limits is not None:
            # Fast path for exact keys (the flow table): plain ints within their widths.
            for el, limit in zip(key, self._exact_limits, strict=True):
                if type(el) is not int or el < 0 or el > limit:
                    break
            else:
                return key
        out = []
        for mf, el in zip(self.match_fields, key, strict=True):
            w, what = mf.bitwidth, f"table {self.name} field {mf.name}"
            t = mf.match_type
            if t in ("exact", "valid"):
                out.append(_check_uint(what, el, w))
                continue
            if not isinstance(el, tuple) or len(el) != 2:
                raise InvalidEntryError(f"{what}: {t} key element must be a pair, got {el!r}")
            a, b = el
            if t == "lpm":
                v = _check_uint(what, a, w)
                if not isinstance(b, int) or not 0 <= b <= w:
                    raise InvalidEntryError(f"{what}: prefix length {b!r} not in 0..{w}")
                if v & ~(_mask(w) ^ _mask(w - b)) & _mask(w):
                    raise InvalidEntryError(f"{what}: value has bits set beyond the prefix")
                out.append((v, int(b)))
            elif t == "ternary" or t == "optional":
                v, m = _check_uint(what, a, w), _check_uint(what + " mask", b, w)
                if v & ~m:
                    raise InvalidEntryError(f"{what}: value has bits set outside the mask")
                if t == "optional" and m and m != _mask(w):
                    raise InvalidEntryError(f"{what}: an optional mask is all ones or 0")
                out.append((v, m))
            elif t == "range":
                lo, hi = _check_uint(what, a, w), _check_uint(what, b, w)
                if lo > hi:
                    raise InvalidEntryError(f"{what}: range low {lo} > high {hi}")
                out.append((lo, hi))
            else:  # pragma: no cover - excluded at load
                raise InvalidEntryError(f"{what}: unsupported match type {t}")
        return tuple(out)

    def _check_priority(self, priority: object) -> int:
        if not isinstance(priority, int):
            raise InvalidEntryError(f"table {self.name}: priority must be an integer")
        if self.requires_priority:
            if not 0 < priority <= BM_MAX_PRIORITY:
                raise InvalidEntryError(
                    f"table {self.name}: priority must be in 1..{BM_MAX_PRIORITY}"
                )
        elif priority != 0:
            raise InvalidEntryError(f"table {self.name}: no priority allowed (exact/lpm key)")
        return priority

    def check_action(self, action: str, args: tuple[int, ...]) -> tuple[int, ...]:
        """Validate an action call for this table; return the args as a tuple of ints."""
        if action not in self.action_names:
            raise InvalidEntryError(f"table {self.name}: action {action!r} not in the table")
        info = self._actions[action]
        args = tuple(args)
        if len(args) != len(info.params):
            raise InvalidEntryError(
                f"action {action}: expected {len(info.params)} arguments, got {len(args)}"
            )
        for (pname, pw), a in zip(info.params, args, strict=True):
            _check_uint(f"action {action} parameter {pname}", a, pw)
        return tuple(int(a) for a in args)

    # ----- control-plane operations ----------------------------------

    def _check_mutable(self) -> None:
        # BMv2 (match_tables.cpp): a table with entries in the JSON is immutable.
        if self.has_const_entries:
            raise InvalidEntryError(f"table {self.name} has const entries and cannot be changed")

    def insert(self, entry: TableEntry, *, const: bool = False, checked: bool = False) -> None:
        """Add an entry (``const``: a JSON entry, only while loading).

        ``checked``: the caller already validated the key's and the
        arguments' widths and the action (the P4Runtime server decodes them
        with PI's checks), so they are not checked twice on the write path.
        """
        if not const:
            self._check_mutable()
        if checked:
            key = entry.key
            prio = entry.priority
            if entry.action not in self._actions:
                raise InvalidEntryError(
                    f"table {self.name}: action {entry.action!r} not in the table"
                )
        else:
            key = self._check_key(entry.key)
            prio = self._check_priority(entry.priority)
            entry.args = self.check_action(entry.action, entry.args)
        entry.key = key
        ident = (key, prio)
        if ident in self._entries:
            raise DuplicateEntryError(f"table {self.name}: entry already exists")
        if len(self._entries) >= self.size:
            raise TableFullError(f"table {self.name}: full ({self.size} entries)")
        if not entry.last_hit_ns:
            entry.last_hit_ns = time.monotonic_ns()
        self._entries[ident] = entry
        self._seq += 1
        self._order[ident] = self._seq
        if const:
            self._const.add(ident)
        self._index_add(key, prio, entry)
        if entry.ttl_ns and self.on_timer is not None:
            self.on_timer(entry)

    def add_exact(self, entry: TableEntry) -> bool:
        """Add a checked entry at priority 0 to a mutable exact table; False if it cannot be.

        For the write fast path, which has checked the key, the action and
        its arguments against this table and declines what it cannot apply
        (the general path then gives the error): False, and nothing changed,
        when the key is taken or the table is full.
        """
        ident = (entry.key, 0)
        entries = self._entries
        if ident in entries or len(entries) >= self.size:
            return False
        entries[ident] = entry
        self._seq += 1
        self._order[ident] = self._seq
        self._exact[entry.key] = entry
        if entry.ttl_ns and self.on_timer is not None:
            self.on_timer(entry)
        return True

    def modify(
        self,
        key: tuple,
        priority: int,
        action: str,
        args: tuple[int, ...],
        ttl_ns: int | None = None,
    ) -> TableEntry:
        self._check_mutable()
        entry = self._find(key, priority)
        entry.args = self.check_action(action, args)
        entry.action = action
        if ttl_ns is not None:
            entry.ttl_ns = ttl_ns
            if ttl_ns and self.on_timer is not None:
                self.on_timer(entry)
        return entry

    def delete(self, key: tuple, priority: int) -> TableEntry:
        self._check_mutable()
        return self._remove(self._find(key, priority))

    def pop(self, key: tuple, priority: int) -> TableEntry | None:
        """Remove and return the control plane's entry at ``(key, priority)``, if any.

        For callers that decoded the key with the table's checks already;
        None (and nothing changed) when there is no such entry or it is const.
        """
        ident = (key, priority)
        entry = self._entries.get(ident)
        if entry is None or ident in self._const:
            return None
        return self._remove(entry)

    def _remove(self, entry: TableEntry) -> TableEntry:
        ident = (entry.key, entry.priority)
        self._index_remove(entry)
        del self._entries[ident]
        del self._order[ident]
        self._const.discard(ident)
        return entry

    def get(self, key: tuple, priority: int) -> TableEntry | None:
        try:
            return self._find(key, priority)
        except (NotFoundError, InvalidEntryError):
            return None

    def _find(self, key: tuple, priority: int) -> TableEntry:
        ident = (self._check_key(key), self._check_priority(priority))
        entry = self._entries.get(ident)
        if entry is None:
            raise NotFoundError(f"table {self.name}: no such entry")
        return entry

    def entries(self) -> Iterator[TableEntry]:
        return iter(list(self._entries.values()))

    def in_order(self) -> Iterator[TableEntry]:
        """The entries in table order without a copy: the table must not change meanwhile."""
        return iter(self._entries.values())

    @property
    def is_exact(self) -> bool:
        """Looked up by the whole key in one dict (no lpm field, no priorities)."""
        return self._mode == "exact"

    def holds(self, entry: TableEntry) -> bool:
        """Whether ``entry`` itself (not an equal one) is in the table now."""
        return self._entries.get((entry.key, entry.priority)) is entry

    def rank(self, entry: TableEntry) -> int:
        """The entry's place in insertion order (for reporting in table order)."""
        return self._order[(entry.key, entry.priority)]

    def is_const_entry(self, entry: TableEntry) -> bool:
        return (entry.key, entry.priority) in self._const

    def __len__(self) -> int:
        return len(self._entries)

    def set_default(self, action: str, args: tuple[int, ...]) -> None:
        args = self.check_action(action, args)
        if self.const_default_entry:
            raise InvalidEntryError(f"table {self.name}: the default entry is const")
        if self.const_default and action != self.default_action[0]:
            raise InvalidEntryError(f"table {self.name}: the default action is const")
        self.default_action = (action, args)

    def reset_default(self) -> None:
        self.default_action = self._initial_default

    def clear(self) -> None:
        """Remove every entry the control plane added (const entries stay)."""
        for ident in [i for i in self._entries if i not in self._const]:
            self._remove(self._entries[ident])

    # ----- indexes and lookup -----------------------------------------

    def _index_add(self, key: tuple, prio: int, entry: TableEntry) -> None:
        if self._mode == "exact":
            self._exact[key] = entry
        elif self._mode == "lpm":
            pl = key[self._lpm_pos][1]
            bucket = self._lpm.get(pl)
            if bucket is None:
                bucket = self._lpm[pl] = {}
                self._rebuild_lpm_order()
            bucket[self._lpm_ident(key)] = entry
        else:
            # Highest P4Runtime priority first; the earlier entry wins a tie (BMv2).
            rank = (-prio, self._order[(key, prio)])
            i = bisect.bisect(self._scan_order, rank)
            self._scan_order.insert(i, rank)
            self._scan.insert(i, (entry, self._compile_scan_key(key)))

    def _index_remove(self, entry: TableEntry) -> None:
        key = entry.key
        if self._mode == "exact":
            del self._exact[key]
        elif self._mode == "lpm":
            pl = key[self._lpm_pos][1]
            bucket = self._lpm[pl]
            del bucket[self._lpm_ident(key)]
            if not bucket:
                del self._lpm[pl]
                self._rebuild_lpm_order()
        else:
            rank = (-entry.priority, self._order[(key, entry.priority)])
            i = bisect.bisect_left(self._scan_order, rank)
            del self._scan[i]
            del self._scan_order[i]

    def _lpm_ident(self, key: tuple) -> tuple:
        p = self._lpm_pos
        return (*key[:p], key[p][0], *key[p + 1 :])

    def _rebuild_lpm_order(self) -> None:
        w = self._lpm_width
        self._lpm_order = [
            (pl, _mask(w) ^ _mask(w - pl), self._lpm[pl]) for pl in sorted(self._lpm, reverse=True)
        ]

    def _lookup_lpm(self, values: tuple) -> TableEntry | None:
        p = self._lpm_pos
        head, v, tail = values[:p], values[p], values[p + 1 :]
        for _pl, mask, bucket in self._lpm_order:
            e = bucket.get((*head, v & mask, *tail))
            if e is not None:
                return e
        return None

    def _compile_scan_key(self, key: tuple) -> tuple:
        out = []
        for kind, w, el in zip(self._kinds, self._widths, key, strict=True):
            if kind in ("exact", "valid"):
                out.append((False, _mask(w), el))
            elif kind == "lpm":
                m = _mask(w) ^ _mask(w - el[1])
                out.append((False, m, el[0] & m))
            elif kind == "ternary" or kind == "optional":
                out.append((False, el[1], el[0] & el[1]))
            else:  # range
                out.append((True, el[0], el[1]))
        return tuple(out)

    def _lookup_scan(self, values: tuple) -> TableEntry | None:
        for entry, matchers in self._scan:
            for (is_range, a, b), v in zip(matchers, values, strict=False):
                if is_range:
                    if v < a or v > b:
                        break
                elif v & a != b:
                    break
            else:
                return entry
        return None


class RegisterArray:
    """A P4 register array: ``size`` cells of ``bitwidth`` bits, all 0 at start."""

    __slots__ = ("_mask", "bitwidth", "cells", "id", "name", "size")

    def __init__(self, name: str, id: int, bitwidth: int, size: int) -> None:
        self.name = name
        self.id = id
        self.bitwidth = bitwidth
        self.size = size
        self._mask = _mask(bitwidth)
        #: The cells themselves; the pipeline indexes this list directly.
        self.cells: list[int] = [0] * size

    def _index(self, i: int) -> int:
        if not isinstance(i, int) or not 0 <= i < self.size:
            raise IndexError(f"register {self.name}: index {i!r} out of range 0..{self.size - 1}")
        return i

    def _value(self, v: int) -> int:
        if not isinstance(v, int) or v < 0 or v > self._mask:
            raise ValueError(f"register {self.name}: value {v!r} does not fit {self.bitwidth} bits")
        return int(v)

    def read(self, i: int) -> int:
        return self.cells[self._index(i)]

    def write(self, i: int, v: int) -> None:
        self.cells[self._index(i)] = self._value(v)

    def write_range(self, lo: int, hi: int, v: int) -> None:
        """Write ``v`` to cells ``lo`` up to, not including, ``hi`` (BMv2's range)."""
        v = self._value(v)
        if not (isinstance(lo, int) and isinstance(hi, int)) or not 0 <= lo <= hi <= self.size:
            raise IndexError(f"register {self.name}: range [{lo}, {hi}) out of 0..{self.size}")
        self.cells[lo:hi] = [v] * (hi - lo)

    def reset(self) -> None:
        self.cells[:] = [0] * self.size

    def values(self) -> list[int]:
        return list(self.cells)


@dataclass(slots=True)
class CounterArray:
    """An indexed counter array; BMv2 always counts packets and bytes."""

    name: str
    id: int
    size: int
    kind: str = "packets_and_bytes"
    packets: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.packets:
            self.packets = [0] * self.size
            self.bytes = [0] * self.size

    def _index(self, i: int) -> int:
        if not isinstance(i, int) or not 0 <= i < self.size:
            raise IndexError(f"counter {self.name}: index {i!r} out of range 0..{self.size - 1}")
        return i

    def read(self, i: int) -> tuple[int, int]:
        i = self._index(i)
        return self.packets[i], self.bytes[i]

    def write(self, i: int, packets: int, bytes: int) -> None:
        i = self._index(i)
        if packets < 0 or bytes < 0:
            raise ValueError(f"counter {self.name}: negative value")
        self.packets[i] = packets
        self.bytes[i] = bytes

    def reset(self) -> None:
        self.packets[:] = [0] * self.size
        self.bytes[:] = [0] * self.size
