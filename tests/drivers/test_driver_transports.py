"""TLS and Unix sockets, for every driver."""

from __future__ import annotations

import pathlib
import ssl

import pytest
import trustme
from adapters.base import Driver

pytestmark = pytest.mark.anyio


async def test_tls_with_a_trusted_certificate_carries_messages(
    driver: Driver, tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    async with (
        driver.serve("echo", ssl=tls_server_context) as server,
        driver.connect(server.url, ssl=tls_client_context) as ws,
    ):
        assert server.url.startswith("wss://")
        for message in ("secure", b"\x00" * 300_000):
            await ws.send(message)
            assert await ws.recv(timeout=10) == message


async def test_tls_verification_is_on_by_default(
    driver: Driver, tls_server_context: ssl.SSLContext
) -> None:
    async with driver.serve("echo", ssl=tls_server_context) as server:
        # The default context does not trust the throwaway CA.
        with pytest.raises(ssl.SSLCertVerificationError):
            async with driver.connect(server.url, open_timeout=5):
                pass  # pragma: no cover


async def test_tls_checks_the_host_name(
    driver: Driver, tls_ca: trustme.CA, tls_client_context: ssl.SSLContext
) -> None:
    # A certificate from a trusted CA, for another name.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("other.example").configure_cert(context)
    async with driver.serve("echo", ssl=context) as server:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            async with driver.connect(server.url, ssl=tls_client_context, open_timeout=5):
                pass  # pragma: no cover


async def test_unix_sockets_carry_the_handshake_and_messages(
    driver: Driver, tmp_path: pathlib.Path
) -> None:
    path = str(tmp_path / "ws.sock")
    async with (
        driver.serve("report", unix_path=path) as server,
        driver.connect("ws://localhost/over/unix", unix_path=path) as ws,
    ):
        report = await ws.recv(timeout=5)
        assert '"path": "/over/unix"' in str(report)
        await ws.send("bye")
    assert server is not None
