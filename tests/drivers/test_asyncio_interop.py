"""Smoke test of the asyncio driver against another implementation:
websockets' asyncio client and server, in both directions (the full interop
suite lives in tests/interop/)."""

from __future__ import annotations

import asyncio

import pytest
from asyncio_peers import run
from sansws.drivers.asyncio import Connection, ConnectionClosedError, connect, serve
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection as WsServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed as WsConnectionClosed

MESSAGES: list[str | bytes] = ["", "héllo", b"", b"\x00\xff" * 10, "x" * 70_000, b"y" * (1 << 20)]


async def ws_echo(ws: WsServerConnection) -> None:
    async for message in ws:
        if message == "close please":
            await ws.close(4001, "bye")
            return
        await ws.send(message)


def test_sansws_client_talks_to_a_websockets_server() -> None:
    async def body() -> None:
        async with ws_serve(ws_echo, "127.0.0.1", 0, subprotocols=["chat"]) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            url = f"ws://127.0.0.1:{port}/path"
            async with connect(url, subprotocols=["chat"], max_message_size=2**21) as ws:
                assert ws.subprotocol == "chat"
                for message in MESSAGES:
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.send(["frag", "ments"])
                assert await ws.recv() == "fragments"
                latency = await ws.ping()
                assert 0 <= latency < 5
                await ws.send("close please")
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert (info.value.code, info.value.reason) == (4001, "bye")

    run(body)


def test_websockets_client_talks_to_a_sansws_server() -> None:
    async def handler(ws: Connection) -> None:
        async for message in ws:
            if message == "close please":
                await ws.close(4002, "done")
                return
            await ws.send(message)

    async def body() -> None:
        async with serve(
            handler, "127.0.0.1", 0, subprotocols=["chat"], max_message_size=2**21
        ) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with ws_connect(url, subprotocols=["chat"], max_size=2**21) as ws:
                assert ws.subprotocol == "chat"
                for message in MESSAGES:
                    await ws.send(message)
                    assert await ws.recv() == message
                await ws.send([b"frag", b"ments"])
                assert await ws.recv() == b"fragments"
                pong = await ws.ping()
                await asyncio.wait_for(pong, 5)
                await ws.send("close please")
                with pytest.raises(WsConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 4002
                assert ws.close_reason == "done"

    run(body)
