"""sansws.drivers.uvicorn under a real uvicorn server on loopback, with
real clients (sansws' asyncio driver, websockets) and the Starlette and
FastAPI examples of docs/embedding.md. uvicorn's own test suite runs too,
through conformance/uvicorn_suite.sh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import runpy
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from asyncio_peers import run
from sansws.drivers.asyncio import ConnectionClosedError, ConnectionClosedOK, connect
from sansws.drivers.uvicorn import WebSocketProtocol

import uvicorn
from sansws.errors import InvalidStatus

DOCS = Path(__file__).resolve().parents[2] / "docs"
App = Callable[..., Any]


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` is true (TimeoutError after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(app: App, **options: Any) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    """A uvicorn server with sansws' protocol on 127.0.0.1, for a block."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    options.setdefault("lifespan", "off")
    config = uvicorn.Config(app, ws=WebSocketProtocol, log_config=None, **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started)
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def test_the_starlette_example_echoes_with_path_parameters_and_a_subprotocol() -> None:
    app = runpy.run_path(str(DOCS / "examples" / "uvicorn_starlette.py"))["app"]

    async def body() -> None:
        async with (
            running(app) as (url, _),
            connect(f"{url}/rooms/lobby", subprotocols=["chat"]) as ws,
        ):
            assert ws.subprotocol == "chat"
            for text in ["hi", "é" * 70_000]:
                await ws.send(text)
                assert await ws.recv() == f"lobby: {text}"

    run(body)


def test_the_fastapi_example_refuses_without_a_token_and_echoes_json() -> None:
    app = runpy.run_path(str(DOCS / "examples" / "uvicorn_fastapi.py"))["app"]

    async def body() -> None:
        async with running(app) as (url, _):
            with pytest.raises(InvalidStatus) as refused:
                await connect(f"{url}/items/7")
            assert refused.value.status == 403
            async with connect(f"{url}/items/7?token=secret") as ws:
                await ws.send('{"a": 1}')
                assert await ws.recv() == '{"item":7,"got":{"a":1}}'

    run(body)


def test_the_application_sees_the_close_code_and_reason_of_the_client() -> None:
    events: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        events.append(await receive())
        await send({"type": "websocket.accept"})
        while (event := await receive())["type"] != "websocket.disconnect":
            events.append(event)
        events.append(event)

    async def body() -> None:
        async with running(app) as (url, _):
            async with connect(url) as ws:
                await ws.send("text")
                await ws.send(b"bytes")
                await ws.close(4000, "bye")
            await until(lambda: len(events) >= 4)

    run(body)
    assert events == [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "text"},
        {"type": "websocket.receive", "bytes": b"bytes"},
        {"type": "websocket.disconnect", "code": 4000, "reason": "bye"},
    ]


def test_a_response_in_several_parts_goes_out_with_its_exact_length() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        headers = [(b"content-type", b"text/plain"), (b"x-why", b"closed")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": b"go ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"away"})
        assert await receive() == {"type": "websocket.disconnect", "code": 1006}

    async def body() -> None:
        async with running(app) as (url, _):
            with pytest.raises(InvalidStatus) as refused:
                await connect(url)
            assert refused.value.status == 401
            assert refused.value.body == b"go away"
            assert refused.value.headers.get_all("Content-Length") == ["7"]
            assert refused.value.headers["X-Why"] == "closed"

    run(body)


def test_an_application_that_fails_before_answering_gives_a_500_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("the database is down")

    async def body() -> None:
        async with running(app) as (url, _):
            with pytest.raises(InvalidStatus) as refused:
                await connect(url)
            assert refused.value.status == 500
            assert refused.value.body == b"Internal Server Error"

    with caplog.at_level(logging.ERROR, "uvicorn.error"):
        run(body)
    [record] = [r for r in caplog.records if r.name == "uvicorn.error"]
    assert record.getMessage().startswith("Exception in ASGI application")
    assert record.exc_info is not None
    assert "the database is down" in str(record.exc_info[1])


def test_what_an_application_sent_before_returning_without_a_close_arrives() -> None:
    big = b"x" * (1 << 20)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": big})
        await send({"type": "websocket.send", "text": "last"})

    async def body() -> None:
        async with running(app) as (url, _), connect(url, max_message_size=None) as ws:
            assert await ws.recv() == big
            assert await ws.recv() == "last"
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.recv()
            assert closed.value.code == 1006

    run(body)


def test_a_message_above_ws_max_size_fails_the_connection_with_1009() -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async def body() -> None:
        async with running(app, ws_max_size=1000) as (url, _):
            async with connect(url, compression=None) as ws:
                await ws.send(b"y" * 1001)
                with pytest.raises(ConnectionClosedError) as closed:
                    await ws.recv()
                assert closed.value.code == 1009
            await until(lambda: disconnects)

    run(body)
    assert disconnects[0]["code"] == 1009


def test_a_server_shutdown_closes_with_1012_and_tells_the_application() -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async def body() -> None:
        async with running(app) as (url, server):
            ws = await connect(url)
            await server.shutdown()
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.recv()
            assert closed.value.code == 1012
            await ws.close()

    run(body)
    assert disconnects == [{"type": "websocket.disconnect", "code": 1012}]


def test_sending_after_the_client_left_raises_an_oserror() -> None:
    outcome: list[BaseException] = []
    left = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["code"] == 1000
        await left.wait()
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except OSError as exc:
            outcome.append(exc)

    async def body() -> None:
        async with running(app) as (url, _):
            async with connect(url) as ws:
                pass
            assert isinstance(ws.close_code, int)
            left.set()
            await until(lambda: outcome)

    run(body)
    assert isinstance(outcome[0].__cause__, ConnectionClosedOK)


def test_without_uvicorn_the_import_error_names_the_extra() -> None:
    code = "import sys; sys.modules['uvicorn'] = None; import sansws.drivers.uvicorn"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "pip install 'sansws[uvicorn]'" in result.stderr


def test_uvicorns_proxy_headers_and_root_path_reach_the_scope() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept"})

    async def body() -> None:
        options = {"proxy_headers": True, "forwarded_allow_ips": "127.0.0.1", "root_path": "/api"}
        async with running(app, **options) as (url, _):
            headers = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")]
            async with connect(f"{url}/chat%20room?x=1", extra_headers=headers) as ws:
                await ws.close()

    run(body)
    [scope] = scopes
    assert scope["client"][0] == "203.0.113.7"
    assert scope["scheme"] == "wss"
    assert (scope["root_path"], scope["path"]) == ("/api", "/api/chat room")
    assert (scope["raw_path"], scope["query_string"]) == (b"/api/chat%20room", b"x=1")


class FewFragments(WebSocketProtocol):
    # sansws sends ["a", "b"] as "a", "b" and an empty final frame.
    options: Mapping[str, Any] = {"max_fragments": 3}


def test_a_subclass_gives_the_sansws_options_uvicorn_has_no_setting_for() -> None:
    disconnects: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert await receive() == {"type": "websocket.receive", "text": "ab"}
        disconnects.append(await receive())

    async def body() -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, ws=FewFragments, log_config=None, lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await until(lambda: server.started)
            async with connect(f"ws://127.0.0.1:{sock.getsockname()[1]}") as ws:
                await ws.send(["a", "b"])
                await ws.send(["a", "b", "c"])
                with pytest.raises(ConnectionClosedError) as closed:
                    await ws.recv()
                assert closed.value.code == 1009
            await until(lambda: disconnects)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)
            sock.close()

    run(body)
    assert disconnects[0]["code"] == 1009


def test_a_misspelt_option_of_a_subclass_is_refused_by_name() -> None:
    class Misspelt(WebSocketProtocol):
        options: Mapping[str, Any] = {"max_fragment": None}

    async def body() -> None:
        config = uvicorn.Config(lambda: None, ws=Misspelt)
        config.load()
        with pytest.raises(TypeError, match=r"Misspelt\.options"):
            Misspelt(config, uvicorn.server.ServerState(), {})

    run(body)
