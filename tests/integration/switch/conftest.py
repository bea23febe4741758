"""Fixtures of the software switch's integration tests (helpers: ``switch_helpers``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from switch_helpers import Client


@pytest.fixture
async def c(loaded_switch) -> AsyncIterator[Client]:
    """The primary client (election id 1) of a switch running the test program."""
    async with Client.of(loaded_switch) as client:
        await client.primary(1)
        yield client
