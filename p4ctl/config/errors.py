"""Configuration errors that point at the file, line and field at fault.

An operator fixing a configuration wants every mistake at once, each with a
place to go to, not one exception per attempt. So the loader collects
:class:`ConfigIssue` records while it walks the whole file and raises a single
:class:`ConfigError` at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class ConfigIssue(NamedTuple):
    """One problem: ``file:line: field: message``.

    ``line`` is 1-based (0 when no line applies, e.g. an unreadable file);
    ``field`` is a path such as ``devices[0].election_id`` or
    ``policy.vrfs.0.rules[2].dst_ports`` ("" for the file as a whole).
    """

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.field:
            return f"{where}: {self.field}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(ValueError):
    """An invalid configuration file; ``errors`` lists every problem found, in line order."""

    def __init__(self, errors: Iterable[ConfigIssue]) -> None:
        self.errors: list[ConfigIssue] = sorted(errors, key=lambda issue: issue.line)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{count} configuration error{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {issue}" for issue in self.errors)])
