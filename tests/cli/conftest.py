"""Fixtures for the command-line tests: the loopback servers, shared by
every test of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_harness import Servers


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """The loopback servers (see cli_harness.Servers)."""
    running = Servers()
    running.start()
    try:
        yield running
    finally:
        running.stop()
