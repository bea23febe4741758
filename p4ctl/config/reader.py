"""Walking composed YAML nodes while remembering where every value came from.

``yaml.compose`` (with the safe loader's resolver) gives nodes that keep their
line numbers; plain ``yaml.safe_load`` loses them. The :class:`Reader` turns
nodes into values through the converters of :mod:`p4ctl.config.values`,
records a :class:`~p4ctl.config.errors.ConfigIssue` for every problem and
carries on, so one pass reports every mistake in the file. Nothing here knows
the schema: :mod:`p4ctl.config.schema` says which keys exist.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import yaml

from p4ctl.config.errors import ConfigIssue
from p4ctl.config.values import show

T = TypeVar("T")

NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Marks a field that has no default: leaving it out is an error.
REQUIRED: Any = _Required()


def line_of(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG)


def kind_of(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a value"


def join(path: str, key: object) -> str:
    """``policy`` + ``vrfs`` → ``policy.vrfs``; list indexes are added as ``[i]`` by callers."""
    return f"{path}.{key}" if path else str(key)


class Reader:
    """Converts nodes to values for one file and collects the issues found."""

    def __init__(self, filename: str, base_dir: Path) -> None:
        self.filename = filename
        self.base_dir = base_dir
        self.issues: list[ConfigIssue] = []
        self.lines: dict[str, int] = {}  # field path -> line, for checks after loading
        self._constructor = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node | None, field: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.filename, line_of(node), field, message))

    def python(self, node: yaml.Node, field: str) -> tuple[bool, Any]:
        """The value PyYAML's safe constructor builds for ``node`` (False if it cannot)."""
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.error(node, field, str(getattr(exc, "problem", None) or exc))
            return False, None
        return True, value

    def convert(self, node: yaml.Node, field: str, converter: Callable[[Any], T]) -> tuple[bool, T]:
        """Run ``converter`` on a scalar node's value; report a failure at the node's line."""
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, field, f"expected a single value, got {kind_of(node)}")
            return False, None  # type: ignore[return-value]
        ok, value = self.python(node, field)
        if not ok:
            return False, None  # type: ignore[return-value]
        try:
            return True, converter(value)
        except ValueError as exc:
            self.error(node, field, str(exc))
            return False, None  # type: ignore[return-value]

    def pairs(self, node: yaml.Node, field: str) -> list[tuple[yaml.Node, yaml.Node]] | None:
        """The key/value node pairs of a mapping, merge keys (``<<``) applied.

        A key written twice is an error (PyYAML would silently keep the last);
        a key that overrides one brought in by ``<<`` is what merging is for.
        """
        if not isinstance(node, yaml.MappingNode):
            self.error(node, field, f"expected a mapping, got {kind_of(node)}")
            return None
        seen: dict[object, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            ok, key = self.python(key_node, field)
            if not ok:
                continue
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: a mapping or list used as a key
                self.error(key_node, field, f"{show(key)} cannot be a key")
                continue
            if first is not key_node:
                self.error(key_node, join(field, key),
                           f"duplicate key (first given on line {line_of(first)})")
        try:
            self._constructor.flatten_mapping(node)
        except yaml.YAMLError as exc:
            self.error(node, field, str(getattr(exc, "problem", None) or exc))
            return None
        return list(node.value)

    def items(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        """The item nodes of a list (an error and no items if ``node`` is not one)."""
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, field, f"expected a list, got {kind_of(node)}")
            return []
        return list(node.value)

    def section(self, node: yaml.Node | None, field: str, keys: Collection[str]) -> Section:
        """A mapping with string keys from ``keys``; unknown keys are errors.

        A missing or null section is an empty one (every field takes its
        default). A section that is not a mapping is reported and comes back
        *broken*, so its required fields are not reported a second time.
        """
        if is_null(node):
            return Section(self, node, field, {})
        assert node is not None
        self.lines.setdefault(field, line_of(node))
        pairs = self.pairs(node, field)
        if pairs is None:
            return Section(self, node, field, {}, broken=True)
        values: dict[str, yaml.Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in pairs:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in keys:
                values[key] = value_node
                key_lines[key] = line_of(key_node)
                continue
            shown = key if isinstance(key, str) else show(key)
            close = difflib.get_close_matches(str(key), list(keys), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.error(key_node, join(field, shown),
                       f"unknown key{hint}; expected one of: {', '.join(keys)}")
        return Section(self, node, field, values, key_lines=key_lines)


class Section:
    """The fields of one mapping, read one by one with converters and defaults."""

    def __init__(
        self,
        reader: Reader,
        node: yaml.Node | None,
        field: str,
        values: dict[str, yaml.Node],
        broken: bool = False,
        key_lines: dict[str, int] | None = None,
    ) -> None:
        self.reader = reader
        self.node = node  # the mapping itself: where "missing field" errors point
        self.field = field
        self.values = values
        self.broken = broken
        self.bad: set[str] = set()  # fields present but invalid
        self.key_lines = key_lines or {}  # where each key is written

    def path(self, key: str) -> str:
        return join(self.field, key)

    def given(self, key: str) -> bool:
        """Present with a non-null value (valid or not)."""
        return not is_null(self.values.get(key))

    def ok(self, key: str) -> bool:
        """Present, non-null and valid."""
        return self.given(key) and key not in self.bad

    def child(self, key: str) -> yaml.Node | None:
        """The raw node of a field (None when absent or null)."""
        node = self.values.get(key)
        if is_null(node):
            return None
        self.reader.lines[self.path(key)] = self.key_lines.get(key) or line_of(node)
        return node

    def get(self, key: str, converter: Callable[[Any], T], default: T = REQUIRED) -> T:
        """The converted value of ``key``; ``default`` when absent, null or invalid."""
        node = self.child(key)
        if node is None:
            if default is REQUIRED:
                self.missing(key)
                return None  # type: ignore[return-value]
            return default
        ok, value = self.reader.convert(node, self.path(key), converter)
        if not ok:
            self.bad.add(key)
            return None if default is REQUIRED else default  # type: ignore[return-value]
        return value

    def missing(self, key: str, why: str = "") -> None:
        if not self.broken:
            self.reader.error(self.node, self.path(key), f"required field is missing{why}")
            self.bad.add(key)

    def error(self, key: str, message: str) -> None:
        """An error about a field that is present (reported at its line)."""
        self.reader.error(self.values.get(key, self.node), self.path(key), message)
        self.bad.add(key)
