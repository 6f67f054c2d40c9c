"""Fixtures for the interop suite: the sansws drivers (through the driver
suite's adapters), a throwaway certificate authority, and the leak check
every test gets."""

from __future__ import annotations

import importlib
import os
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

# The drivers' test-facing adapters live with the driver suite.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "drivers"))

from adapters.base import Driver

DRIVERS = ("sync", "asyncio", "trio")


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> Driver:
    """A sansws driver, through its adapter (tests/drivers/adapters/)."""
    module = importlib.import_module(f"adapters.{request.param}")
    loaded: Driver = module.make_driver()
    return loaded


@pytest.fixture
def anyio_backend(driver: Driver) -> str:
    """trio runs on trio; sync (in worker threads) and asyncio on asyncio."""
    backend: str = driver.anyio_backend
    return backend


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server_context(tls_ca: Any) -> ssl.SSLContext:
    """A server context with a throwaway certificate for 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls_client_context(tls_ca: Any) -> ssl.SSLContext:
    """A verifying client context that trusts only the throwaway CA."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


def _sockets() -> set[int]:
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                found.add(int(name))
        except OSError:
            pass  # closed meanwhile
    return found


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every connection a test opened is closed, and every thread sansws
    started for it ended, within 5 s of the test's end (servers shared by a
    module were started before and are left out)."""
    sockets = _sockets()
    threads = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = _sockets() - sockets
        alive = [
            thread
            for thread in set(threading.enumerate()) - threads
            if thread.name.startswith("sansws")
        ]
        if (not leaked and not alive) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert alive == [], f"threads left running: {alive}"
    assert leaked == set(), f"sockets left open: {sorted(leaked)}"
