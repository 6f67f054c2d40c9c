"""Scripted loopback peers and a strict runner for the asyncio driver tests.

:func:`raw_server` accepts TCP connections on 127.0.0.1 and runs a scenario
coroutine per connection on asyncio streams; :func:`handshake` completes the
server side of the opening handshake with the sans-I/O core, after which the
scenario decides what the peer does (stop reading, never answer a Close,
reset, send garbage...). :func:`run` runs a test body on a fresh event loop
and fails the test if a task outlives it or the loop reported an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from sansws import ServerConnection
from sansws.events import Event, Request

Scenario = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: Upper bound of any test body: far above what a passing test takes.
TEST_TIMEOUT = 20.0


def run(body: Callable[[], Coroutine[Any, Any, None]], timeout: float = TEST_TIMEOUT) -> None:
    """Run ``body()`` on a new event loop, bounded by ``timeout``; then check
    that no task is left and that the loop's exception handler was silent
    (no "exception never retrieved", no "task destroyed but pending")."""
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        async with asyncio.timeout(timeout):
            await body()
        # Callbacks scheduled by the last close (connection_lost) run first.
        for _ in range(3):
            await asyncio.sleep(0)
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        assert leftover == set(), f"tasks outlived the test: {leftover}"

    asyncio.run(main())
    assert errors == [], f"the event loop reported errors: {errors}"


async def handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, **options: Any
) -> tuple[ServerConnection, list[Event]]:
    """Accept the opening handshake as a server; return the core connection
    and the events that arrived with the request."""
    conn = ServerConnection(**options)
    while True:
        data = await reader.read(65536)
        events = conn.receive_data(data)
        if any(isinstance(event, Request) for event in events):
            break
        assert data, "the client left during the handshake"
    early = conn.accept()
    writer.write(conn.data_to_send())
    await writer.drain()
    return conn, early


async def read_events(
    reader: asyncio.StreamReader, conn: ServerConnection, count: int = 1
) -> list[Event]:
    """Read until the connection returned at least ``count`` events (or EOF)."""
    events: list[Event] = []
    while len(events) < count:
        data = await reader.read(65536)
        events.extend(conn.receive_data(data))
        if not data:
            break
    return events


@contextlib.asynccontextmanager
async def raw_server(scenario: Scenario, *, rcvbuf: int | None = None) -> AsyncIterator[str]:
    """Serve ``scenario`` on 127.0.0.1; yield the ``ws://`` URL. On exit,
    every connection is closed and every scenario task is finished.

    ``rcvbuf`` shrinks the accepted sockets' receive buffer, so that a
    scenario that stops reading makes the client's writes back up soon."""
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)  # type: ignore[arg-type]
        writers.append(writer)
        # Cancelled at exit: end quietly, or asyncio's stream server reports
        # the cancellation as an error.
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError
        ):
            await scenario(reader, writer)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await asyncio.start_server(on_connect, sock=sock)
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()
        for task in list(tasks):
            task.cancel()
        for writer in writers:
            writer.transport.abort()
        if tasks:
            await asyncio.wait(tasks)
        await asyncio.sleep(0)  # let the aborted transports' connection_lost run


async def stall_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept the TCP connection and never answer."""
    await asyncio.sleep(TEST_TIMEOUT)


async def ticks(count: int) -> None:
    """Let the event loop run ``count`` iterations."""
    for _ in range(count):
        await asyncio.sleep(0)


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``condition`` every 10 ms until it is true (TimeoutError after
    ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
