"""Turning the compiled program into Python functions, once, at load time.

The interpreter compiles each parse state, action, table, conditional,
calculation and the deparser into the source of a small Python function and
executes that source once (``Namespace.build``). The per-packet path then
runs plain Python with field values at fixed list indices: no JSON look-up,
no dictionary of names, no tree walking.

Safety: generated source never contains text taken from the JSON. Every name
in it is made here (``n3``, ``a7``, ``T2``...); every number is produced by
``int()``; every other object (tables, register cells, hash functions) is
bound in the namespace under a generated name (``Namespace.bind``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from p4ctl.switch.state import PipelineError

__all__ = ["Code", "Namespace", "PacketAbort", "ParserError"]

_log = logging.getLogger("p4ctl.switch.interp")


class ParserError(Exception):
    """A parser exception (behavioral-model ``parser_exception_core/arch``)."""

    __slots__ = ("code", "pos")

    def __init__(self, code: int, pos: int) -> None:
        self.code = code
        self.pos = pos


class PacketAbort(Exception):
    """The packet cannot continue (BMv2 would abort or misbehave): it is dropped."""


class Code:
    """Lines of Python source with indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.level = 0

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.level + line)

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self(line)

    def indent(self) -> None:
        self.level += 1

    def dedent(self) -> None:
        self.level -= 1

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class Namespace:
    """The globals of the generated functions, and the code that defines them."""

    def __init__(self, helpers: dict[str, Any]) -> None:
        self.globals: dict[str, Any] = {"__builtins__": __builtins__, "_mono": time.monotonic_ns}
        self.globals.update(helpers)
        self._counter = 0
        self._chunks: list[str] = []
        self._late: list[str] = []

    def bind(self, prefix: str, obj: Any) -> str:
        """Bind ``obj`` under a fresh generated name and return the name."""
        self._counter += 1
        name = f"{prefix}{self._counter}"
        self.globals[name] = obj
        return name

    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def add(self, code: Code | str) -> None:
        self._chunks.append(code.text() if isinstance(code, Code) else code)

    def add_late(self, code: Code | str) -> None:
        """Source that must run after every function of this build is defined."""
        self._late.append(code.text() if isinstance(code, Code) else code)

    def build(self) -> None:
        """Execute all generated source into the namespace."""
        src = "\n".join(self._chunks + self._late)
        self._chunks = []
        self._late = []
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("generated program source:\n%s", src)
        try:
            code = compile(src, "<p4ctl-switch-program>", "exec")
        except SyntaxError as exc:  # a bug in the generator, never in the input
            raise PipelineError(f"internal error compiling the program: {exc}") from exc
        exec(code, self.globals)

    def fn(self, name: str) -> Callable[..., Any]:
        return self.globals[name]
