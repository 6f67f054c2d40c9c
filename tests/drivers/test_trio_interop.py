"""The trio driver against websockets' asyncio implementation, run in a
thread with its own event loop: a smoke test of both roles (the shared suite
covers the rest against websockets' other APIs)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest
import trio
import websockets
from sansws.drivers.trio import Connection, ConnectionClosedOK, connect, serve
from trio_peers import run
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection as WsConnection
from websockets.asyncio.server import serve as ws_serve

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


class AsyncioThread:
    """An asyncio event loop in a thread, for websockets' asyncio API."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="peer-asyncio")

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> AsyncioThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def websockets_server(
    handler: Callable[[WsConnection], Awaitable[None]],
) -> Iterator[int]:
    async def start() -> Any:
        return await ws_serve(handler, "127.0.0.1", 0, max_size=2 << 20)

    with AsyncioThread() as peer:
        server = peer.call(start())
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()
            peer.call(server.wait_closed())


def test_a_trio_client_talks_to_a_websockets_asyncio_server() -> None:
    closes: list[tuple[int | None, str | None]] = []

    async def echo(ws: WsConnection) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            closes.append((ws.close_code, ws.close_reason))

    async def body(port: int) -> None:
        async with connect(
            f"ws://127.0.0.1:{port}/", max_message_size=2 << 20, subprotocols=[]
        ) as ws:
            for size in SIZES:
                await ws.send("é" * (size // 2))
                assert await ws.recv() == "é" * (size // 2)
                await ws.send(b"\x01" * size)
                assert await ws.recv() == b"\x01" * size
            await ws.send(["frag", "ment", "ed"])
            assert await ws.recv() == "fragmented"
            assert 0 <= await (await ws.ping(b"abc")).wait() < 5
            await ws.close(4001, "done here")
        assert ws.close_code == 4001

    with websockets_server(echo) as port:
        run(lambda: body(port))
    assert closes == [(4001, "done here")]


def test_a_websockets_asyncio_client_talks_to_a_trio_server() -> None:
    async def handler(ws: Connection) -> None:
        async for message in ws:
            await ws.send(message)
        # A clean close from the client ends the iteration.

    async def client(port: int) -> tuple[list[str | bytes], int | None]:
        received: list[str | bytes] = []
        async with ws_connect(f"ws://127.0.0.1:{port}/", max_size=2 << 20) as ws:
            for size in SIZES:
                await ws.send(b"\x02" * size)
                received.append(await ws.recv())
            await ws.send(["a", "b"])
            received.append(await ws.recv())
            await ws.ping()
            await ws.close(1000, "bye")
        return received, ws.close_code

    async def body() -> None:
        async with serve(handler, max_message_size=2 << 20) as server:
            with AsyncioThread() as peer:
                received, code = await trio.to_thread.run_sync(peer.call, client(server.port))
        assert received == [b"\x02" * size for size in SIZES] + ["ab"]
        assert code == 1000

    run(body)


def test_a_trio_server_close_reaches_a_websockets_client_with_its_code() -> None:
    async def handler(ws: Connection) -> None:
        await ws.send("bye")
        await ws.close(4002, "server done")

    async def client(port: int) -> tuple[str | bytes, websockets.ConnectionClosed]:
        async with ws_connect(f"ws://127.0.0.1:{port}/") as ws:
            message = await ws.recv()
            with pytest.raises(websockets.ConnectionClosed) as caught:
                await ws.recv()
        return message, caught.value

    async def body() -> None:
        async with serve(handler) as server:
            with AsyncioThread() as peer:
                message, closed = await trio.to_thread.run_sync(peer.call, client(server.port))
        assert message == "bye"
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (4002, "server done")

    run(body)


def test_a_websockets_server_close_reaches_a_trio_client() -> None:
    async def closer(ws: WsConnection) -> None:
        await ws.close(1001, "going")

    async def body(port: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            with pytest.raises(ConnectionClosedOK) as caught:
                await ws.recv()
        assert (caught.value.code, caught.value.reason) == (1001, "going")

    with websockets_server(closer) as port:
        run(lambda: body(port))
