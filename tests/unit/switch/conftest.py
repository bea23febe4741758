"""Fixtures of the interpreter tests (helpers: ``switch_probe``)."""

from __future__ import annotations

from typing import Any

import bmv2json as J
import pytest


@pytest.fixture
def doc() -> dict[str, Any]:
    return J.base()
