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
from p4ctl.config.values import plain_decimal, show

T = TypeVar("T")

YAML_TAG = "tag:yaml.org,2002:"
NULL_TAG = YAML_TAG + "null"
MERGE_TAG = YAML_TAG + "merge"
INT_TAG = YAML_TAG + "int"
FLOAT_TAG = YAML_TAG + "float"
BOOL_TAG = YAML_TAG + "bool"
#: The tag an untagged mapping or list gets: the only one accepted on them.
PLAIN_TAGS = {yaml.MappingNode: YAML_TAG + "map", yaml.SequenceNode: YAML_TAG + "seq"}
#: What a scalar of each standard tag should have been, for when PyYAML cannot build it.
TAG_MEANING = {"int": "an integer", "float": "a number", "bool": "true or false",
               "timestamp": "a date or time"}


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


def short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:python/name:x`` as it is written: ``!!python/name:x``."""
    return "!!" + tag[len(YAML_TAG):] if tag.startswith(YAML_TAG) else tag


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
        self._resolver = yaml.resolver.Resolver()
        # Nodes are keyed by identity: an alias makes the same node appear in
        # several places, and each of these is only worked out (and reported) once.
        self._keys: dict[yaml.Node, tuple[bool, Any]] = {}  # key node -> (ok, value)
        self._checked: set[yaml.Node] = set()  # mappings whose keys were checked
        self._merging: set[yaml.Node] = set()  # mappings being checked, to catch a cycle
        self._flattened: dict[yaml.Node, bool] = {}  # mapping -> merge keys applied?

    def error(self, node: yaml.Node | None, field: str, message: str) -> None:
        self.issues.append(ConfigIssue(self.filename, line_of(node), field, message))

    def python(self, node: yaml.Node, field: str) -> tuple[bool, Any]:
        """The value PyYAML's safe constructor builds for ``node`` (False if it cannot)."""
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            message = str(getattr(exc, "problem", None) or exc)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as exc:
            # PyYAML's own converters fail like this on text its resolver let
            # through (2024-02-30, 0x_, !!bool maybe): the file is wrong, not us.
            message = self._unbuildable(node, exc)
        else:
            return True, value
        # A failed build leaves the node marked "being built" in the constructor,
        # so building it again (through an alias) would claim a recursive node.
        self._constructor = yaml.constructor.SafeConstructor()
        self.error(node, field, message)
        return False, None

    def _unbuildable(self, node: yaml.Node, exc: Exception) -> str:
        """Why PyYAML could not build a scalar, in the file's terms."""
        if not isinstance(node, yaml.ScalarNode):
            return f"{kind_of(node)} that YAML cannot read"
        name = node.tag[len(YAML_TAG):] if node.tag.startswith(YAML_TAG) else node.tag
        message = f"{node.value!r} is not {TAG_MEANING.get(name, 'valid ' + short_tag(node.tag))}"
        if name == "timestamp" and isinstance(exc, ValueError):
            message += f" ({exc})"  # "day is out of range for month"
        implicit = self._resolver.resolve(yaml.ScalarNode, node.value, (True, False))
        if node.style is None and implicit == node.tag:  # typed by its looks, not by a tag
            message += "; quote it if it is text"
        return message

    def convert(
        self, node: yaml.Node, field: str, converter: Callable[[Any], T], decimal: bool = False
    ) -> tuple[bool, T]:
        """Run ``converter`` on a scalar node's value; report a failure at the node's line.

        With ``decimal``, an int or float must be written in plain decimal:
        for ports and durations, YAML 1.1's other forms (``20:21`` is 1221,
        ``010`` is 8) are surely not what the author meant.
        """
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, field, f"expected a single value, got {kind_of(node)}")
            return False, None  # type: ignore[return-value]
        ok, value = self.python(node, field)
        if not ok:
            return False, None  # type: ignore[return-value]
        if decimal and node.tag in (INT_TAG, FLOAT_TAG) and not plain_decimal(
                node.value, node.tag == FLOAT_TAG):
            self.error(node, field, f"{node.value!r} is not a plain decimal number "
                       f"(YAML 1.1 reads it as {show(value)})")
            return False, None  # type: ignore[return-value]
        if node.tag == BOOL_TAG and node.value.lower() not in ("true", "false"):
            # yes/no/on/off: YAML 1.1's booleans, which YAML 1.2 reads as text
            self.error(node, field, f"{node.value!r} is YAML 1.1 for {show(value)}: "
                       "write true or false (or quote it if it is text)")
            return False, None  # type: ignore[return-value]
        try:
            return True, converter(value)
        except (ValueError, OverflowError) as exc:
            self.error(node, field, str(exc))
            return False, None  # type: ignore[return-value]

    def plain(self, node: yaml.Node, field: str) -> bool:
        """False (and an error) for a mapping or list with a tag of its own.

        The constructor refuses odd tags on single values, but mappings and
        lists are read node by node here, so a ``!!python/object/apply`` tag
        on them would otherwise pass unnoticed; what was meant is unknowable.
        """
        want = PLAIN_TAGS.get(type(node))
        if want is None or node.tag == want:
            return True
        what = "mapping" if isinstance(node, yaml.MappingNode) else "list"
        self.error(node, field, f"expected a {what}, got one tagged {short_tag(node.tag)} "
                   "(tags are refused on mappings and lists)")
        return False

    def pairs(self, node: yaml.Node, field: str) -> list[tuple[yaml.Node, yaml.Node]] | None:
        """The key/value node pairs of a mapping, merge keys (``<<``) applied.

        A key written twice is an error (PyYAML would silently keep the last);
        a key that overrides one brought in by ``<<`` is what merging is for.
        Keys that are not single values are reported and left out.
        """
        if not isinstance(node, yaml.MappingNode):
            self.error(node, field, f"expected a mapping, got {kind_of(node)}")
            return None
        if not self.plain(node, field) or not self._flatten(node, field):
            return None
        return [(key, value) for key, value in node.value if self._key(key, field)[0]]

    def _flatten(self, node: yaml.MappingNode, field: str) -> bool:
        """Apply ``node``'s merge keys, once: PyYAML does it in place, keys checked first."""
        done = self._flattened.get(node)
        if done is not None:
            return done
        ok = self._check_keys(node, field)
        if ok:
            try:
                self._constructor.flatten_mapping(node)
            except yaml.YAMLError as exc:
                self.error(node, field, str(getattr(exc, "problem", None) or exc))
                ok = False
        self._flattened[node] = ok
        return ok

    def _check_keys(self, node: yaml.MappingNode, field: str) -> bool:
        """Report keys written twice in ``node`` and in the mappings it merges.

        This must happen before any merging: flattening a mapping adds the
        merged keys to it for good, and a mapping merged into another is
        flattened along with it. False when a merged mapping is refused.
        """
        if node in self._merging:  # &m {<<: *m}: PyYAML would quietly merge nothing
            self.error(node, field, "a mapping cannot merge itself")
            return False
        if node in self._checked:
            return True
        self._checked.add(node)
        self._merging.add(node)
        ok = True
        seen: dict[object, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                ok = self._check_merged(value_node, field) and ok
                continue
            good, key = self._key(key_node, field)
            if not good:
                continue
            first = seen.setdefault(key, key_node)
            if first is not key_node:
                self.error(key_node, join(field, key),
                           f"duplicate key (first given on line {line_of(first)})")
        self._merging.discard(node)
        return ok

    def _check_merged(self, node: yaml.Node, field: str) -> bool:
        """Check the mapping (or list of mappings) a ``<<`` brings in."""
        if isinstance(node, yaml.SequenceNode):
            if not self.plain(node, field):
                return False
            sources = list(node.value)
        else:
            sources = [node]
        ok = True
        for source in sources:  # anything but a mapping is PyYAML's to report
            if isinstance(source, yaml.MappingNode):
                ok = self.plain(source, field) and self._check_keys(source, field) and ok
        return ok

    def _key(self, node: yaml.Node, field: str) -> tuple[bool, Any]:
        """A mapping key's value; one that cannot be a key is reported once per node."""
        known = self._keys.get(node)
        if known is not None:
            return known
        if isinstance(node, yaml.ScalarNode):  # PyYAML builds only hashable scalars
            result = self.python(node, field)
        else:
            self.error(node, field, f"{kind_of(node)} cannot be a key")
            result = (False, None)
        self._keys[node] = result
        return result

    def items(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        """The item nodes of a list (an error and no items if ``node`` is not one)."""
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, field, f"expected a list, got {kind_of(node)}")
            return []
        if not self.plain(node, field):
            return []
        return list(node.value)

    def section(self, node: yaml.Node | None, field: str, keys: Collection[str],
                extensions: bool = False) -> Section:
        """A mapping with string keys from ``keys``; unknown keys are errors.

        With ``extensions``, keys starting with ``x-`` are left alone: a place
        for YAML anchors that several devices or rules share (as in Compose
        files).

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
            if extensions and isinstance(key, str) and key.startswith("x-"):
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

    def get(
        self, key: str, converter: Callable[[Any], T], default: T = REQUIRED,
        decimal: bool = False,
    ) -> T:
        """The converted value of ``key``; ``default`` when absent, null or invalid.

        ``decimal``: see :meth:`Reader.convert`.
        """
        node = self.child(key)
        if node is None:
            if default is REQUIRED:
                self.missing(key)
                return None  # type: ignore[return-value]
            return default
        ok, value = self.reader.convert(node, self.path(key), converter, decimal)
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
