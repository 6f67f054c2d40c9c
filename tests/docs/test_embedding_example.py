"""The driver written in the embedding guide (docs/examples/anyio_driver.py)
works on asyncio and on trio: as a client (echo, ping, redirects, rejections,
closing, the open timeout) against the sync driver's server, and as a server
(echo, close codes, a failing handler, shutdown) for the sync driver's
client."""

from __future__ import annotations

import runpy
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sansws.drivers.sync import Connection as SyncConnection
from sansws.drivers.sync import connect as sync_connect
from sansws.drivers.sync import serve

from sansws.endpoint import Response
from sansws.errors import ConnectionClosedOK, InvalidStatus, OpenTimeout
from sansws.events import Request

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "anyio_driver.py"
driver: dict[str, Any] = runpy.run_path(str(EXAMPLE))
connect = driver["connect"]
example_serve = driver["serve"]

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def echo(ws: SyncConnection) -> None:
    for message in ws:
        if message == "bye":
            ws.close(1000, "see you")
            return
        ws.send(message)


def route(ws: SyncConnection, request: Request) -> Response | None:
    if request.path == "/old":
        return Response(302, [("Location", "/echo")])
    if request.path == "/missing":
        return Response(404, body=b"no such endpoint\n")
    return None


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(echo, "127.0.0.1", 0, process_request=route) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.port}"
        finally:
            server.shutdown()
            thread.join(timeout=10)


def test_the_example_driver_is_small() -> None:
    # A client and a server in a couple of hundred lines: the core decides
    # everything else (docs/embedding.md reports the code lines).
    assert len(EXAMPLE.read_text().splitlines()) < 260


async def test_messages_round_trip_and_a_ping_measures_latency(base_url: str) -> None:
    async with connect(f"{base_url}/echo") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"
        latency = await ws.ping()
        assert 0 <= latency < 5


async def test_a_redirect_is_followed(base_url: str) -> None:
    async with connect(f"{base_url}/old") as ws:
        assert ws.request.path == "/echo"
        await ws.send("after redirect")
        assert await ws.recv() == "after redirect"


async def test_a_rejection_is_a_typed_error(base_url: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{base_url}/missing"):
            pass  # pragma: no cover - never reached
    assert info.value.status == 404
    assert info.value.body == b"no such endpoint\n"


async def test_the_server_closing_ends_recv_with_its_code(base_url: str) -> None:
    async with connect(f"{base_url}/echo") as ws:
        await ws.send("bye")
        with pytest.raises(ConnectionClosedOK) as info:
            await ws.recv()
        assert (info.value.code, info.value.reason) == (1000, "see you")


async def test_a_silent_server_fails_at_the_open_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts, never answers
        port = listener.getsockname()[1]
        with pytest.raises(OpenTimeout):
            async with connect(f"ws://127.0.0.1:{port}/", open_timeout=0.3):
                pass  # pragma: no cover - never reached


# ---------------------------------------------------------------- the server


async def _echo(ws: Any) -> None:
    while True:
        message = await ws.recv()
        if message == "fail":
            raise RuntimeError("the handler failed")
        if message == "bye":
            await ws.close(4000, "bye")
            return
        await ws.send(message)


def _talk(port: int, *messages: str) -> tuple[list[str | bytes], int | None, str | None]:
    replies: list[str | bytes] = []
    with sync_connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
        for message in messages:
            ws.send(message)
            try:
                replies.append(ws.recv(timeout=5))
            except ConnectionClosedOK:
                break
            except Exception:
                break
    return replies, ws.close_code, ws.close_reason


async def test_the_example_server_echoes_and_closes_as_the_handler_says() -> None:
    async with example_serve(_echo) as port:
        replies, code, reason = await anyio.to_thread.run_sync(_talk, port, "one", "two", "bye")
    assert replies == ["one", "two"]
    assert (code, reason) == (4000, "bye")


async def test_a_failing_handler_closes_with_1011() -> None:
    async with example_serve(_echo) as port:
        replies, code, reason = await anyio.to_thread.run_sync(_talk, port, "one", "fail")
    assert replies == ["one"]
    assert (code, reason) == (1011, "internal error")


async def test_leaving_the_server_block_closes_every_connection_with_1001() -> None:
    closes: list[int] = []

    def wait_for_the_close(ws: SyncConnection) -> None:
        with ws, pytest.raises(ConnectionClosedOK) as info:
            ws.recv(timeout=5)
        closes.append(info.value.code)

    async with anyio.create_task_group() as tasks, example_serve(_echo) as port:
        ws = await anyio.to_thread.run_sync(sync_connect, f"ws://127.0.0.1:{port}/")
        tasks.start_soon(anyio.to_thread.run_sync, wait_for_the_close, ws)
    assert closes == [1001]
