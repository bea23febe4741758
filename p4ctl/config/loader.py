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
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([_syntax_issue(exc, text, filename)]) from None
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
