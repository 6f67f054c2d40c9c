"""Fixtures for the core's unit tests."""

from __future__ import annotations

import pytest
from core_harness import open_client, open_server

from sansws import ClientConnection, ServerConnection


@pytest.fixture(params=["client", "server"])
def conn(request: pytest.FixtureRequest) -> ClientConnection | ServerConnection:
    """An ``OPEN`` connection in either role, timers off, output drained."""
    return open_client() if request.param == "client" else open_server()
