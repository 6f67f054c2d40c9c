"""Opening a connection: redirects, refusals, silent and unreachable servers.

Every failure is a typed error; only a silent server makes the client wait,
and then only until ``open_timeout``.
"""

from __future__ import annotations

import socket
import ssl
import time

import peers
import pytest
from adapters.base import Driver

from sansws.errors import HandshakeError, InvalidStatus, OpenTimeout, RedirectError

pytestmark = pytest.mark.anyio


async def test_a_302_to_a_working_endpoint_is_followed(driver: Driver) -> None:
    async with driver.serve("report") as target:
        location = target.url + "landing"
        redirect = peers.respond(peers.http_response(302, {"Location": location}))
        with peers.raw_server(redirect) as server:
            async with driver.connect(server.url + "start") as ws:
                report = await ws.recv(timeout=5)
    assert '"path": "/landing"' in str(report)


async def test_a_relative_redirect_resolves_against_the_request_url(driver: Driver) -> None:
    def behaviour(sock: socket.socket, server: peers.RawServer) -> None:
        head = peers.read_head(sock)
        if head.startswith(b"GET /old "):
            sock.sendall(peers.http_response(301, {"Location": "/new"}))
        else:
            server.state["second"] = head.split(b"\r\n")[0]
            sock.sendall(peers.accept_response(head))
        sock.settimeout(5)
        while sock.recv(4096):
            pass

    with peers.raw_server(behaviour) as server:
        async with driver.connect(server.url + "old", close_timeout=0.5):
            pass
    assert server.state["second"] == b"GET /new HTTP/1.1"


async def _fails_at_once(driver: Driver, url: str, error: type[Exception]) -> Exception:
    start = time.monotonic()
    with pytest.raises(error) as info:
        async with driver.connect(url, open_timeout=30):
            pass  # pragma: no cover
    # "At once": far below the open timeout (a generous bound for slow CI).
    assert time.monotonic() - start < 10
    return info.value


async def test_a_302_without_location_fails_at_once_with_redirect_error(driver: Driver) -> None:
    with peers.raw_server(peers.respond(peers.http_response(302))) as server:
        error = await _fails_at_once(driver, server.url, RedirectError)
    assert isinstance(error, RedirectError)
    assert error.status == 302
    assert error.location is None


async def test_a_404_fails_at_once_with_invalid_status(driver: Driver) -> None:
    response = peers.http_response(404, body=b"no such endpoint")
    with peers.raw_server(peers.respond(response)) as server:
        error = await _fails_at_once(driver, server.url, InvalidStatus)
    assert isinstance(error, InvalidStatus)
    assert error.status == 404
    assert error.body == b"no such endpoint"


async def test_a_redirect_loop_fails_at_once_with_redirect_error(driver: Driver) -> None:
    def behaviour(sock: socket.socket, server: peers.RawServer) -> None:
        head = peers.read_head(sock)
        target = "/b" if head.startswith(b"GET /a ") else "/a"
        sock.sendall(peers.http_response(302, {"Location": target}))

    with peers.raw_server(behaviour) as server:
        error = await _fails_at_once(driver, server.url + "a", RedirectError)
    assert "loop" in str(error)


async def test_too_many_redirects_fail_with_redirect_error(driver: Driver) -> None:
    def behaviour(sock: socket.socket, server: peers.RawServer) -> None:
        head = peers.read_head(sock)
        hop = int(head.split(b" ")[1].strip(b"/") or b"0")
        sock.sendall(peers.http_response(302, {"Location": f"/{hop + 1}"}))

    with peers.raw_server(behaviour) as server, pytest.raises(RedirectError) as info:
        async with driver.connect(server.url + "0", max_redirects=3):
            pass  # pragma: no cover
    assert "too many redirects" in str(info.value)
    assert server.accepted == 4


async def test_a_silent_server_fails_with_open_timeout_at_the_open_timeout(
    driver: Driver,
) -> None:
    with peers.raw_server(peers.silent) as server:
        start = time.monotonic()
        with pytest.raises(OpenTimeout):
            async with driver.connect(server.url, open_timeout=0.5):
                pass  # pragma: no cover
        elapsed = time.monotonic() - start
    assert 0.4 < elapsed < 5


async def test_the_open_timeout_is_one_budget_across_redirects(driver: Driver) -> None:
    # A redirect to a silent server: the whole opening still ends at the
    # open timeout.
    with peers.raw_server(peers.silent) as silent_server:
        response = peers.http_response(302, {"Location": silent_server.url})
        with peers.raw_server(peers.respond(response)) as server:
            start = time.monotonic()
            with pytest.raises(OpenTimeout):
                async with driver.connect(server.url, open_timeout=0.5):
                    pass  # pragma: no cover
            assert time.monotonic() - start < 5


async def test_an_unreachable_port_fails_with_oserror(driver: Driver) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: refused
        with pytest.raises(OSError):  # noqa: PT011 - the spec promises OSError only
            async with driver.connect(f"ws://127.0.0.1:{port}/", open_timeout=5):
                pass  # pragma: no cover


async def test_a_server_that_closes_before_answering_fails_with_a_handshake_error(
    driver: Driver,
) -> None:
    def hang_up(sock: socket.socket, server: peers.RawServer) -> None:
        peers.read_head(sock)

    with peers.raw_server(hang_up) as server, pytest.raises(HandshakeError):
        async with driver.connect(server.url, open_timeout=5):
            pass  # pragma: no cover


async def test_ssl_with_a_ws_url_is_a_value_error(driver: Driver) -> None:
    with pytest.raises(ValueError, match="ws://"):
        async with driver.connect("ws://127.0.0.1:9/", ssl=ssl.create_default_context()):
            pass  # pragma: no cover
