"""Tables, registers and counters as the control plane sees them (state.py)."""

from __future__ import annotations

import pytest

from p4ctl.switch.state import (
    BM_MAX_PRIORITY,
    ActionInfo,
    CounterArray,
    DuplicateEntryError,
    InvalidEntryError,
    MatchFieldInfo,
    NotFoundError,
    RegisterArray,
    Table,
    TableEntry,
    TableFullError,
)

ACTIONS = {
    "fwd": ActionInfo("fwd", 1, [("port", 9)]),
    "drop": ActionInfo("drop", 2, []),
}


def table(fields: list[tuple[str, int]], size: int = 8, **kw) -> Table:
    mfs = [MatchFieldInfo(f"k{i}", t, w) for i, (t, w) in enumerate(fields)]
    return Table("t", 7, mfs, size, ["fwd", "drop"], ACTIONS, ("drop", ()), **kw)


def test_exact_insert_lookup_modify_delete() -> None:
    t = table([("exact", 32), ("exact", 16)])
    t.insert(TableEntry((5, 80), 0, "fwd", (3,)))
    assert t.lookup((5, 80)).args == (3,)
    assert t.lookup((5, 81)) is None
    e = t.modify((5, 80), 0, "fwd", (4,), ttl_ns=10)
    assert (e.args, e.ttl_ns) == ((4,), 10)
    assert t.lookup((5, 80)).args == (4,)
    assert t.get((5, 80), 0) is e
    assert t.delete((5, 80), 0) is e
    assert t.lookup((5, 80)) is None and len(t) == 0
    with pytest.raises(NotFoundError):
        t.delete((5, 80), 0)
    with pytest.raises(NotFoundError):
        t.modify((5, 80), 0, "drop", ())


def test_duplicate_full_and_insertion_order() -> None:
    t = table([("exact", 8)], size=2)
    t.insert(TableEntry((1,), 0, "drop", ()))
    with pytest.raises(DuplicateEntryError):
        t.insert(TableEntry((1,), 0, "fwd", (2,)))
    t.insert(TableEntry((2,), 0, "drop", ()))
    with pytest.raises(TableFullError):
        t.insert(TableEntry((3,), 0, "drop", ()))
    t.modify((1,), 0, "fwd", (9,))
    assert [e.key for e in t.entries()] == [(1,), (2,)]


@pytest.mark.parametrize(
    ("key", "prio", "action", "args", "why"),
    [
        ((256,), 0, "drop", (), "does not fit"),
        ((-1,), 0, "drop", (), "does not fit"),
        ((1, 2), 0, "drop", (), "tuple of 1"),
        ((1,), 5, "drop", (), "no priority"),
        ((1,), 0, "nope", (), "not in the table"),
        ((1,), 0, "fwd", (), "expected 1 arguments"),
        ((1,), 0, "fwd", (512,), "does not fit"),
        (("1",), 0, "drop", (), "integer"),
    ],
)
def test_invalid_entries(key, prio, action, args, why) -> None:
    t = table([("exact", 8)])
    with pytest.raises(InvalidEntryError, match=why):
        t.insert(TableEntry(key, prio, action, args))
    assert len(t) == 0


def test_lpm_longest_prefix_wins_and_canonical_values() -> None:
    t = table([("lpm", 32)])
    t.insert(TableEntry(((0x0A000000, 8),), 0, "fwd", (1,)))
    t.insert(TableEntry(((0x0A010000, 16),), 0, "fwd", (2,)))
    t.insert(TableEntry(((0, 0),), 0, "fwd", (3,)))
    assert t.lookup((0x0A010203,)).args == (2,)
    assert t.lookup((0x0A020203,)).args == (1,)
    assert t.lookup((0x0B000000,)).args == (3,)
    with pytest.raises(InvalidEntryError, match="beyond the prefix"):
        t.insert(TableEntry(((0x0A010001, 16),), 0, "fwd", (1,)))
    with pytest.raises(InvalidEntryError, match="prefix length"):
        t.insert(TableEntry(((0, 33),), 0, "fwd", (1,)))
    t.delete(((0x0A010000, 16),), 0)
    assert t.lookup((0x0A010203,)).args == (1,)


def test_lpm_with_exact_field() -> None:
    t = table([("exact", 16), ("lpm", 32)])
    t.insert(TableEntry((1, (0x0A000000, 8)), 0, "fwd", (1,)))
    t.insert(TableEntry((2, (0x0A000000, 24)), 0, "fwd", (2,)))
    assert t.lookup((1, 0x0A000001)).args == (1,)
    assert t.lookup((2, 0x0A000001)).args == (2,)
    assert t.lookup((2, 0x0A000101)) is None


def test_ternary_range_priorities() -> None:
    t = table([("ternary", 16), ("range", 8)])
    t.insert(TableEntry(((0x10, 0xF0), (0, 255)), 10, "fwd", (1,)))
    t.insert(TableEntry(((0x12, 0xFF), (5, 6)), 20, "fwd", (2,)))
    t.insert(TableEntry(((0x12, 0xFF), (5, 6)), 5, "fwd", (3,)))  # same key, other priority
    assert t.lookup((0x12, 5)).args == (2,)  # higher P4Runtime priority wins
    assert t.lookup((0x12, 7)).args == (1,)
    assert t.lookup((0x22, 7)) is None
    t.delete(((0x12, 0xFF), (5, 6)), 20)
    assert t.lookup((0x12, 5)).args == (1,)
    with pytest.raises(InvalidEntryError, match="outside the mask"):
        t.insert(TableEntry(((0x13, 0xF0), (0, 1)), 1, "fwd", (1,)))
    with pytest.raises(InvalidEntryError, match="range low"):
        t.insert(TableEntry(((0, 0), (9, 1)), 1, "fwd", (1,)))
    with pytest.raises(InvalidEntryError, match="priority"):
        t.insert(TableEntry(((0, 0), (0, 1)), 0, "fwd", (1,)))


def test_equal_priorities_first_entry_wins() -> None:
    t = table([("ternary", 8)])
    t.insert(TableEntry(((0, 0),), 7, "fwd", (1,)))
    t.insert(TableEntry(((1, 1),), 7, "fwd", (2,)))
    assert t.lookup((1,)).args == (1,)


def test_optional_keys_are_ternary_pairs_with_full_or_empty_masks() -> None:
    """An optional element is BMv2's ternary pair: a value with an all-ones mask, or mask 0.

    The second field is "ternary", as p4c writes an optional field in the JSON.
    """
    t = table([("optional", 9), ("ternary", 8)])
    t.insert(TableEntry(((5, 0x1FF), (7, 0xFF)), 1, "fwd", (1,)))
    t.insert(TableEntry(((0, 0), (0, 0)), 1, "fwd", (2,)))
    assert t.lookup((5, 7)).args == (1,)
    assert t.lookup((5, 8)).args == (2,)
    assert t.lookup((6, 7)).args == (2,)
    assert t.get(((5, 0x1FF), (7, 0xFF)), 1) is not None
    with pytest.raises(InvalidEntryError, match="all ones or 0"):
        t.insert(TableEntry(((4, 0x0F), (0, 0)), 3, "fwd", (1,)))
    with pytest.raises(InvalidEntryError, match="outside the mask"):
        t.insert(TableEntry(((1, 0), (0, 0)), 3, "fwd", (1,)))
    with pytest.raises(InvalidEntryError, match="integer"):  # the old (value, is_wildcard) form
        t.insert(TableEntry(((0, True), (0, 0)), 3, "fwd", (1,)))


def test_default_action_rules() -> None:
    t = table([("exact", 8)])
    t.set_default("fwd", (3,))
    assert t.default_action == ("fwd", (3,))
    t.reset_default()
    assert t.default_action == ("drop", ())
    c = table([("exact", 8)], const_default=True)
    with pytest.raises(InvalidEntryError, match="const"):
        c.set_default("fwd", (1,))
    c.set_default("drop", ())  # a const default action may keep its action (BMv2)
    ce = table([("exact", 8)], const_default=True, const_default_entry=True)
    with pytest.raises(InvalidEntryError, match="const"):
        ce.set_default("drop", ())


def test_clear() -> None:
    t = table([("exact", 8)])
    t.insert(TableEntry((1,), 0, "drop", ()))
    t.insert(TableEntry((2,), 0, "drop", ()))
    t.clear()
    assert len(t) == 0 and t.lookup((1,)) is None


def test_tables_with_json_entries_are_immutable() -> None:
    t = table([("exact", 8)], has_const_entries=True)
    t.insert(TableEntry((1,), 0, "drop", ()), const=True)
    for op in (
        lambda: t.insert(TableEntry((2,), 0, "drop", ())),
        lambda: t.modify((1,), 0, "fwd", (1,)),
        lambda: t.delete((1,), 0),
    ):
        with pytest.raises(InvalidEntryError, match="const entries"):
            op()
    t.clear()
    assert [e.key for e in t.entries()] == [(1,)]
    assert t.is_const_entry(t.get((1,), 0))


def test_priority_bounds() -> None:
    t = table([("ternary", 8)])
    t.insert(TableEntry(((0, 0),), BM_MAX_PRIORITY, "drop", ()))
    with pytest.raises(InvalidEntryError):
        t.insert(TableEntry(((0, 0),), BM_MAX_PRIORITY + 1, "drop", ()))


def test_register_array() -> None:
    r = RegisterArray("r", 1, 8, 4)
    r.write(1, 255)
    assert r.read(1) == 255 and r.values() == [0, 255, 0, 0]
    with pytest.raises(ValueError):
        r.write(0, 256)
    with pytest.raises(IndexError):
        r.read(4)
    r.write_range(1, 3, 7)  # [1, 3): BMv2's register_write_range
    assert r.values() == [0, 7, 7, 0]
    with pytest.raises(IndexError):
        r.write_range(2, 5, 1)
    r.reset()
    assert r.values() == [0, 0, 0, 0]


def test_counter_array() -> None:
    c = CounterArray("c", 1, 2)
    c.write(1, 3, 300)
    assert c.read(1) == (3, 300) and c.read(0) == (0, 0)
    with pytest.raises(IndexError):
        c.read(2)
    c.reset()
    assert c.read(1) == (0, 0)
