"""Every driver against websockets, the reference implementation, in both
roles: handshake, subprotocol, messages of 0 B to 1 MiB, fragments, ping and
close codes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import anyio
import pytest
from adapters.base import Driver, handler
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as ws_serve

from sansws.errors import ConnectionClosedError

pytestmark = pytest.mark.anyio


def _echo(ws: ServerConnection) -> None:
    try:
        for message in ws:
            if message == "close please":
                ws.close(4001, "as asked")
                return
            ws.send(message)
    except WebsocketsClosed:
        pass


@pytest.fixture
def reference_server() -> Iterator[str]:
    with ws_serve(
        _echo, "127.0.0.1", 0, subprotocols=["chat"], max_size=2**21, compression=None
    ) as server:
        thread = threading.Thread(target=server.serve_forever, name="reference-server")
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
        finally:
            server.shutdown()
            thread.join()


async def test_client_talks_to_a_websockets_server(driver: Driver, reference_server: str) -> None:
    async with driver.connect(
        reference_server, subprotocols=["chat"], max_message_size=2**21
    ) as ws:
        assert ws.subprotocol == "chat"
        for message in ("", "é" * 1000, b"", b"\xff" * 2**20):
            await ws.send(message)
            assert await ws.recv(timeout=10) == message
        await ws.send(["frag", "ments"])
        assert await ws.recv(timeout=5) == "fragments"
        assert await (await ws.ping()).wait(timeout=5) >= 0
        await ws.send("close please")
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv(timeout=5)
    assert (info.value.code, info.value.reason) == (4001, "as asked")


async def test_server_talks_to_a_websockets_client(driver: Driver) -> None:
    async with driver.serve("echo", subprotocols=["chat"], max_message_size=2**21) as server:

        def client() -> tuple[str | None, list[str | bytes], int | None]:
            with ws_connect(
                server.url, subprotocols=["chat"], max_size=2**21, compression=None
            ) as ws:
                received = []
                for message in ("", "é" * 1000, b"\xff" * 2**20):
                    ws.send(message)
                    received.append(ws.recv(timeout=10))
                ws.send(["frag", "ments"])
                received.append(ws.recv(timeout=5))
                ws.ping().wait(5)
                ws.close(4002, "done")
                return ws.subprotocol, received, ws.close_code

        subprotocol, received, code = await anyio.to_thread.run_sync(client)
    assert subprotocol == "chat"
    assert received == ["", "é" * 1000, b"\xff" * 2**20, "fragments"]
    assert code == 4002


async def test_server_close_code_reaches_a_websockets_client(driver: Driver) -> None:
    async with driver.serve(handler("close", code=4003, reason="bye")) as server:

        def client() -> tuple[int | None, str | None]:
            with ws_connect(server.url) as ws:
                with contextlib.suppress(WebsocketsClosed):
                    ws.recv(timeout=5)
                return ws.close_code, ws.close_reason

        assert await anyio.to_thread.run_sync(client) == (4003, "bye")
