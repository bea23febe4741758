"""Reading a BMv2 JSON document: parsing, version check, small value helpers.

The format is p4lang/behavioral-model ``docs/JSON_format.md`` (version 2.x), as
p4c-bm2-ss writes it. Everything that looks at raw JSON values goes through
the helpers here so a malformed document gives a ``PipelineError`` naming the
place, never a ``KeyError`` from deep inside the compiler.
"""

from __future__ import annotations

import json
from typing import Any

from p4ctl.switch.state import PipelineError

__all__ = ["hexstr", "load_document", "need", "obj_name"]

SUPPORTED_MAJOR = 2


def load_document(doc: dict | str | bytes) -> dict[str, Any]:
    """Return the JSON document as a dict; check it is a BMv2 2.x JSON."""
    if isinstance(doc, bytes | bytearray | memoryview):
        try:
            doc = bytes(doc).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PipelineError(f"BMv2 JSON is not UTF-8: {exc}") from None
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"BMv2 JSON does not parse: {exc}") from None
    if not isinstance(doc, dict):
        raise PipelineError("BMv2 JSON: the document must be a JSON object")
    meta = doc.get("__meta__")
    if meta is not None:
        version = meta.get("version") if isinstance(meta, dict) else None
        if (
            not isinstance(version, list)
            or not version
            or not isinstance(version[0], int)
            or version[0] != SUPPORTED_MAJOR
        ):
            raise PipelineError(f"BMv2 JSON: unsupported __meta__.version {version!r} (need 2.x)")
    return doc


def need(obj: Any, key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """``obj[key]``, or a PipelineError that says which object lacks it."""
    if not isinstance(obj, dict) or key not in obj:
        raise PipelineError(f"{where}: missing attribute {key!r}")
    value = obj[key]
    if kind is not None and not isinstance(value, kind):
        raise PipelineError(f"{where}: attribute {key!r} has the wrong type ({value!r})")
    return value


def obj_name(obj: Any, what: str) -> str:
    name = obj.get("name") if isinstance(obj, dict) else None
    if not isinstance(name, str):
        raise PipelineError(f"{what}: object without a name: {str(obj)[:80]}")
    return name


def hexstr(value: Any, where: str) -> int:
    """Parse a BMv2 hexstring (big endian, optional '-' sign) to a Python int.

    behavioral-model ``src/bm_sim/bytecontainer.cpp``/``P4Objects.cpp`` accept
    ``0x``-prefixed hexadecimal; a few p4c outputs carry plain integers for
    hexstr values (e.g. learn-list receiver), so ints pass through.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise PipelineError(f"{where}: expected a hexstring, got {value!r}")
    s = value.strip()
    neg = s.startswith("-")
    if neg:
        s = s[1:]
    try:
        v = int(s, 16) if s[:2].lower() == "0x" else int(s, 16 if s else 10)
    except ValueError:
        raise PipelineError(f"{where}: bad hexstring {value!r}") from None
    return -v if neg else v
