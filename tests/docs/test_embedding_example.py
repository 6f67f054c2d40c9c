"""The driver written in the embedding guide (docs/examples/anyio_driver.py)
works on asyncio and on trio: echo, ping, redirects, rejections, closing."""

from __future__ import annotations

import runpy
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sansws.drivers.sync import Connection as SyncConnection
from sansws.drivers.sync import serve

from sansws.endpoint import Response
from sansws.errors import ConnectionClosedOK, InvalidStatus, OpenTimeout
from sansws.events import Request

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "anyio_driver.py"
driver: dict[str, Any] = runpy.run_path(str(EXAMPLE))
connect = driver["connect"]

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


def test_the_example_driver_is_under_150_lines() -> None:
    assert len(EXAMPLE.read_text().splitlines()) < 150


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
        assert ws.endpoint.connection.request.path == "/echo"
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
