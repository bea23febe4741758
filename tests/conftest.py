"""Test tiers: each test directory is a tier and gets its marker.

``pytest -m unit`` runs one tier; a plain ``pytest`` runs every tier, and
tiers whose tools are missing skip with a reason (shown by ``-ra``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = ("unit", "integration", "ptf", "mininet", "bmv2")
ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests")
        tier = rel.parts[0] if rel.parts else ""
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
