"""The opening handshake, through every driver."""

from __future__ import annotations

import json
import socket

import anyio
import peers
import pytest
from adapters.base import Driver, handler

from sansws import State
from sansws.endpoint import Response
from sansws.errors import InvalidStatus, NegotiationError

pytestmark = pytest.mark.anyio


async def test_client_and_server_complete_the_handshake_and_exchange_a_message(
    driver: Driver,
) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        assert ws.state is State.OPEN
        await ws.send("hello")
        assert await ws.recv(timeout=5) == "hello"
        assert ws.local_address[0] == "127.0.0.1"
        assert ws.remote_address == ("127.0.0.1", server.port)


async def test_request_path_and_query_reach_the_server(driver: Driver) -> None:
    async with (
        driver.serve("report") as server,
        driver.connect(server.url + "chat/room?id=7") as ws,
    ):
        report = json.loads(await ws.recv(timeout=5))
    assert report["path"] == "/chat/room?id=7"


async def test_extra_headers_origin_and_user_agent_are_sent(driver: Driver) -> None:
    async with (
        driver.serve("report") as server,
        driver.connect(
            server.url,
            extra_headers=[("X-Token", "abc")],
            origin="https://example.com",
            user_agent="tester/1",
        ) as ws,
    ):
        report = json.loads(await ws.recv(timeout=5))
    headers = {name.lower(): value for name, value in report["headers"]}
    assert headers["x-token"] == "abc"
    assert headers["origin"] == "https://example.com"
    assert headers["user-agent"] == "tester/1"
    assert ws.request.headers["X-Token"] == "abc"


async def test_server_picks_the_first_offered_subprotocol_it_supports(driver: Driver) -> None:
    async with (
        driver.serve("report", subprotocols=["chat", "superchat"]) as server,
        driver.connect(server.url, subprotocols=["superchat", "chat"]) as ws,
    ):
        report = json.loads(await ws.recv(timeout=5))
        assert ws.subprotocol == "superchat"
        assert ws.response.subprotocol == "superchat"
    assert report["subprotocol"] == "superchat"


async def test_no_subprotocol_when_none_is_shared(driver: Driver) -> None:
    async with (
        driver.serve("report", subprotocols=["chat"]) as server,
        driver.connect(server.url, subprotocols=["other"]) as ws,
    ):
        report = json.loads(await ws.recv(timeout=5))
        assert ws.subprotocol is None
    assert report["subprotocol"] is None


async def test_response_headers_carry_extra_and_server_headers(driver: Driver) -> None:
    async with (
        driver.serve(
            "echo", extra_headers=[("X-Served-By", "test")], server_header="srv/2"
        ) as server,
        driver.connect(server.url) as ws,
    ):
        assert ws.response.headers["X-Served-By"] == "test"
        assert ws.response.headers["Server"] == "srv/2"


async def test_process_request_refuses_a_handshake_with_its_status_and_body(
    driver: Driver,
) -> None:
    def process_request(request: object) -> Response | None:
        path = getattr(request, "path", "")
        if path == "/private":
            return Response(403, [("X-Why", "private")], b"go away\n")
        return None

    async with driver.serve("echo", process_request=process_request) as server:
        with pytest.raises(InvalidStatus) as info:
            async with driver.connect(server.url + "private"):
                pass  # pragma: no cover
        assert info.value.status == 403
        assert info.value.headers["X-Why"] == "private"
        assert info.value.body == b"go away\n"
        # Other paths still open.
        async with driver.connect(server.url + "public") as ws:
            await ws.send("ok")
            assert await ws.recv(timeout=5) == "ok"


async def test_process_request_may_answer_a_plain_http_health_check(driver: Driver) -> None:
    def process_request(request: object) -> Response | None:
        return Response(200, body=b"healthy\n")

    async with driver.serve("echo", process_request=process_request) as server:

        def get() -> bytes:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
                return data

        answer = await anyio.to_thread.run_sync(get)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"healthy\n")


async def test_a_server_that_requires_a_subprotocol_can_refuse_clients_without_one(
    driver: Driver,
) -> None:
    def process_request(request: object) -> Response | None:
        if not getattr(request, "subprotocols", ()):
            return Response(400, body=b"subprotocol required")
        return None

    async with driver.serve(
        handler("send", messages=["in"]), process_request=process_request, subprotocols=["v1"]
    ) as server:
        with pytest.raises(InvalidStatus):
            async with driver.connect(server.url):
                pass  # pragma: no cover
        async with driver.connect(server.url, subprotocols=["v1"]) as ws:
            assert await ws.recv(timeout=5) == "in"


async def test_client_refuses_a_subprotocol_it_did_not_offer(driver: Driver) -> None:
    def answer(sock: socket.socket, server: peers.RawServer) -> None:
        head = peers.read_head(sock)
        response = peers.accept_response(head).replace(
            b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: unoffered\r\n\r\n"
        )
        sock.sendall(response)
        sock.settimeout(5)
        while sock.recv(4096):
            pass

    with peers.raw_server(answer) as server, pytest.raises(NegotiationError):
        async with driver.connect(server.url, subprotocols=["offered"]):
            pass  # pragma: no cover
