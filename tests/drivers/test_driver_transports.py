"""TLS, Unix sockets, a given socket and SO_REUSEPORT, for every driver."""

from __future__ import annotations

import pathlib
import socket
import ssl

import peers
import pytest
import trustme
from adapters.base import Driver, handler

from sansws.errors import InvalidMessage

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


# ---------------------------------------------------------------- sock= and reuse_port=


async def test_a_given_tcp_socket_is_served_and_closed_with_the_server(driver: Driver) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with driver.serve("echo", sock=sock) as server:
        assert server.native.port == port
        async with driver.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("through a given socket")
            assert await ws.recv(timeout=5) == "through a given socket"
    assert sock.fileno() == -1  # the server owned it


async def test_a_given_unix_socket_is_served(driver: Driver, tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "given.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    async with driver.serve("echo", sock=sock) as server:
        assert server.native.port is None
        async with driver.connect("ws://localhost/", unix_path=path) as ws:
            await ws.send("unix")
            assert await ws.recv(timeout=5) == "unix"
    assert sock.fileno() == -1


async def test_reuse_port_lets_two_servers_share_a_port_and_both_serve(driver: Driver) -> None:
    async with driver.serve(handler("send", messages=["first"]), reuse_port=True) as first:
        port = first.native.port
        second_handler = handler("send", messages=["second"])
        async with driver.serve(second_handler, port=port, reuse_port=True):
            served: set[str] = set()
            for _ in range(64):  # the kernel hashes each connection to one
                async with driver.connect(f"ws://127.0.0.1:{port}/") as ws:
                    served.add(str(await ws.recv(timeout=5)))
                if len(served) == 2:
                    break
    assert served == {"first", "second"}


async def test_without_reuse_port_a_second_server_cannot_bind_the_port(driver: Driver) -> None:
    async with driver.serve("echo") as first:
        with pytest.raises(OSError, match="ddress already in use"):
            async with driver.serve("echo", port=first.native.port):
                pass  # pragma: no cover


# ---------------------------------------------------------------- ws:// to a TLS port


async def test_ws_to_a_tls_port_says_to_use_wss(
    driver: Driver, tls_server_context: ssl.SSLContext
) -> None:
    async with driver.serve("echo", ssl=tls_server_context) as server:
        plain = server.url.replace("wss://", "ws://")
        with pytest.raises(InvalidMessage, match=r"without an answer \(if this port serves TLS"):
            async with driver.connect(plain, open_timeout=5):
                pass  # pragma: no cover


async def test_a_tls_alert_in_answer_to_plain_http_says_to_use_wss(driver: Driver) -> None:
    alert = b"\x15\x03\x03\x00\x02\x02\x46"  # what many TLS servers send to plain HTTP
    with (
        peers.raw_server(peers.respond(alert)) as server,
        pytest.raises(InvalidMessage, match="answered with TLS: use wss://"),
    ):
        async with driver.connect(server.url, open_timeout=5):
            pass  # pragma: no cover
