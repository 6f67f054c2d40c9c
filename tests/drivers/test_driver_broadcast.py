"""broadcast(), exported by every driver: every open connection of a server
gets the message, the frame is built once, a connection in the middle of a
fragmented send is skipped, and a client that does not read is skipped (or
closed with 1013) without holding up the others."""

from __future__ import annotations

import base64
import importlib
import os
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest
from adapters.base import Conn, Driver, Server

from sansws import State
from sansws.broadcasting import broadcast as core_broadcast

pytestmark = pytest.mark.anyio


def module(driver: Driver) -> Any:
    return importlib.import_module(f"sansws.drivers.{driver.name}")


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


async def call(driver: Driver, function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` where the driver expects it: from another thread
    for sync (the connections' threads hold their locks), in the loop else."""
    if driver.name == "sync":
        return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))
    return function(*args, **kwargs)


@asynccontextmanager
async def clients(driver: Driver, server: Server, count: int) -> AsyncIterator[list[Conn]]:
    async with AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(driver.connect(server.url)) for _ in range(count)]
        await wait_for(lambda: len(server.native.connections) == count)
        yield opened


def stalled_client(port: int) -> socket.socket:
    """A client that completes the handshake and then reads nothing, with a
    small receive buffer, so that the server's writes to it pile up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: not a byte past the response
        assert chunk
        head += chunk
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def test_every_driver_exports_the_cores_broadcast(driver: Driver) -> None:
    assert module(driver).broadcast is core_broadcast


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_every_open_connection_gets_the_message_built_once(
    driver: Driver, compression: str | None
) -> None:
    async with (
        driver.serve("hold", compression=compression) as server,
        clients(driver, server, 20) as opened,
    ):
        result = await call(driver, module(driver).broadcast, server.native.connections, "hi")
        assert (result.sent, result.skipped, result.encodings) == (20, [], 1)
        for ws in opened:
            assert await ws.recv(timeout=5) == "hi"
        result = await call(driver, module(driver).broadcast, server.native.connections, b"\x01")
        assert result.sent == 20
        for ws in opened:
            assert await ws.recv(timeout=5) == b"\x01"


async def test_a_client_that_does_not_read_is_skipped_and_the_others_still_get_it(
    driver: Driver,
) -> None:
    big = b"x" * (1 << 20)
    async with (
        driver.serve("hold", write_limit=4096, compression=None) as server,
        clients(driver, server, 1) as (reader,),
    ):
        # In a thread: the asyncio and trio servers answer in this one.
        with await anyio.to_thread.run_sync(stalled_client, server.port) as stalled:
            await wait_for(lambda: len(server.native.connections) == 2)
            port = stalled.getsockname()[1]
            [slow] = [c for c in server.native.connections if c.remote_address[1] == port]
            broadcast = module(driver).broadcast
            # Until the kernel's buffers for the stalled client are full (a
            # few MiB on loopback) and more than write_limit bytes wait in
            # the server for it; the reader takes every copy meanwhile.
            for _ in range(64):
                result = await call(driver, broadcast, server.native.connections, big)
                assert result.sent == 2, result
                assert await reader.recv(timeout=10) == big
                if slow._endpoint.write_mark.paused:
                    break
            assert slow._endpoint.write_mark.paused
            # The reader's copies have left the server; the stalled one's have not.
            await wait_for(
                lambda: all(
                    not c._endpoint.write_mark.paused
                    for c in server.native.connections
                    if c is not slow
                )
            )
            second = await call(driver, broadcast, server.native.connections, "small")
            assert second.sent == 1
            assert [(s.connection, s.reason) for s in second.skipped] == [(slow, "slow")]
            assert await reader.recv(timeout=5) == "small"
            third = await call(driver, broadcast, server.native.connections, "last", slow="close")
            assert (third.sent, third.closed) == (1, [slow])
            assert slow.state is not State.OPEN  # closing with 1013
            assert await reader.recv(timeout=5) == "last"


async def test_a_connection_in_the_middle_of_a_fragmented_send_is_skipped(
    driver: Driver,
) -> None:
    async with (
        driver.serve("hold", compression=None) as server,
        clients(driver, server, 2) as (sending, other),
    ):
        port = sending.local_address[1]
        [busy] = [c for c in server.native.connections if c.remote_address[1] == port]
        between = threading.Event()  # the first fragment is out
        resume = threading.Event()

        def fragments() -> Iterator[str]:
            yield "first half, "
            between.set()
            resume.wait(10)
            yield "second half"

        async def fragments_async() -> AsyncIterator[str]:
            yield "first half, "
            between.set()
            while not resume.is_set():
                await anyio.sleep(0.01)
            yield "second half"

        async with anyio.create_task_group() as tasks:
            if driver.name == "sync":
                tasks.start_soon(anyio.to_thread.run_sync, busy.send, fragments())
            else:
                tasks.start_soon(busy.send, fragments_async())
            await wait_for(between.is_set)
            result = await call(driver, module(driver).broadcast, server.native.connections, "x")
            assert result.sent == 1
            assert [(s.connection, s.reason) for s in result.skipped] == [
                (busy, "sending fragments")
            ]
            resume.set()
        assert await other.recv(timeout=5) == "x"
        # The fragmented message arrived whole, with nothing inside it.
        assert await sending.recv(timeout=5) == "first half, second half"
