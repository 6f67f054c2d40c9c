"""Fixtures for the driver suite: one ``driver`` parameter per I/O model, the
anyio backend that follows it, and the leak check every test gets."""

from __future__ import annotations

import importlib
import os
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from adapters.base import Driver

DRIVERS = ("sync", "asyncio", "trio")


def load_driver(name: str) -> Driver:
    module = importlib.import_module(f"adapters.{name}")
    driver: Driver = module.make_driver()
    return driver


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> Driver:
    """The driver under test, through its adapter (tests/drivers/adapters/)."""
    return load_driver(request.param)


@pytest.fixture
def anyio_backend(driver: Driver) -> str:
    """trio tests run on trio; sync and asyncio tests on asyncio (the sync
    driver's blocking calls run in worker threads)."""
    return driver.anyio_backend


# ---------------------------------------------------------------- leak checks


def sansws_threads() -> list[threading.Thread]:
    """Threads started by sansws (the drivers name theirs ``sansws-...``)."""
    return [t for t in threading.enumerate() if t.name.startswith("sansws")]


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def fd_target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def _sockets(fds: set[int]) -> set[int]:
    return {fd for fd in fds if fd_target(fd).startswith("socket:")}


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every driver test ends with no sansws thread alive and no more open
    sockets than it started with (polled for up to 5 s, since a server's
    threads and a client's close finish just after the test body)."""
    before = _sockets(open_fds())
    yield
    deadline = time.monotonic() + 5.0
    while True:
        threads = sansws_threads()
        leaked = _sockets(open_fds()) - before
        if (not threads and not leaked) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert threads == [], f"threads left running: {threads}"
    assert leaked == set(), f"sockets left open: {sorted(leaked)}"


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_server_context(tls_ca: Any) -> ssl.SSLContext:
    """A server context with a throwaway certificate for 127.0.0.1 and
    localhost."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def tls_client_context(tls_ca: Any) -> ssl.SSLContext:
    """A client context that trusts :func:`tls_server_context`'s CA only."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context
