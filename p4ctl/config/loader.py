"""Loading a configuration file: YAML text → composed nodes → :class:`Config`.

Parsing stops at nothing short of a YAML syntax error: every other problem is
collected and reported together in one :class:`ConfigError`, so the
controller refuses to start with the full list in front of the operator.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from p4ctl.config.errors import ConfigError, ConfigIssue
from p4ctl.config.model import Config
from p4ctl.config.reader import Reader
from p4ctl.config.schema import build_config

log = logging.getLogger(__name__)

#: How deep lists and mappings may nest. A real file needs less than 10; PyYAML
#: composes recursively and would overflow Python's stack near 300.
MAX_DEPTH = 64


class _TooDeep(Exception):
    """Nesting beyond :data:`MAX_DEPTH`, at ``line`` (1-based) under top-level ``field``."""

    def __init__(self, line: int, field: str) -> None:
        super().__init__(line, field)
        self.line = line
        self.field = field


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to nest deeper than :data:`MAX_DEPTH`."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.top_field = ""  # the top-level key being composed, to name in an error

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.depth >= MAX_DEPTH:
            raise _TooDeep(self.peek_event().start_mark.line + 1, self.top_field)
        if self.depth == 1 and isinstance(index, yaml.ScalarNode):  # a root mapping's value
            self.top_field = index.value
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1


def load_config(path: str | Path) -> Config:
    """Read and validate the configuration file at ``path``.

    Errors name the file as given (so a relative path stays short); relative
    paths inside the file are taken from the file's own directory.
    """
    filename = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigIssue(filename, 0, "", f"cannot read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([ConfigIssue(filename, line, "", "not UTF-8 text")]) from None
    return _parse(text, filename, Path(path).resolve())


def parse_config(text: str, filename: str = "<config>") -> Config:
    """Validate configuration ``text``; ``filename`` is used in messages and for relative paths."""
    return _parse(text, filename, None)


def _parse(text: str, filename: str, source: Path | None) -> Config:
    base_dir = (source or Path(filename).resolve()).parent
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_issue(exc, text, filename)]) from None
    except _TooDeep as exc:
        raise ConfigError([ConfigIssue(filename, exc.line, exc.field, f"lists and mappings nested "
                                       f"more than {MAX_DEPTH} deep (no configuration needs "
                                       "that many)")]) from None
    except RecursionError:  # only if the caller left us less stack than MAX_DEPTH needs
        raise ConfigError([ConfigIssue(filename, 1, "", "lists and mappings nested too deep "
                                       "to read")]) from None
    reader = Reader(filename, base_dir)
    config = build_config(reader, root, source)
    if reader.issues:
        raise ConfigError(reader.issues)
    log.debug("configuration %s: %d device(s), %d VRF policies", filename,
              len(config.devices), len(config.policy.vrfs))
    return config


def _syntax_issue(exc: yaml.YAMLError, text: str, filename: str) -> ConfigIssue:
    """A YAML syntax error as an issue at the line PyYAML points at."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        message = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.problem.startswith("but "):
            message = f"{exc.context}, {exc.problem}"  # "expected X, but found Y"
        elif exc.problem and exc.context:
            started = exc.context_mark.line + 1 if exc.context_mark is not None else None
            message += f" ({exc.context}" + (
                f" started on line {started})" if started and started != line else ")"
            )
        return ConfigIssue(filename, line, "", f"YAML syntax error: {message}")
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text[: exc.position].count("\n") + 1
        return ConfigIssue(filename, line, "", f"YAML syntax error: {exc.reason} "
                           f"(character {exc.character!r})")
    return ConfigIssue(filename, 0, "", f"YAML syntax error: {exc}")
