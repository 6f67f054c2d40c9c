"""Scripted loopback peers and a strict runner for the trio driver tests.

:func:`raw_server` accepts TCP connections on 127.0.0.1 and runs a scenario
per connection on trio streams; :func:`handshake` completes the server side
of the opening handshake with the sans-I/O core, after which the scenario
decides what the peer does (stop reading, delay its answers, never answer a
Close...). :func:`run` runs a test body in ``trio.run``, bounded in time.
:func:`tasks` lists every task alive, to prove none outlives a connection.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio
import trio.testing

from sansws import ServerConnection
from sansws.events import Event, Request

Scenario = Callable[[trio.SocketStream], Awaitable[None]]

#: Upper bound of any test body: far above what a passing test takes.
TEST_TIMEOUT = 20.0


def run(
    body: Callable[[], Awaitable[None]], *, timeout: float = TEST_TIMEOUT, autojump: bool = False
) -> None:
    """Run ``body()`` in ``trio.run``, failing after ``timeout`` seconds.

    With ``autojump``, the clock is a :class:`trio.testing.MockClock` that
    jumps to the next deadline whenever every task waits: timeouts then
    take no real time and fire at exact virtual times.
    """

    async def main() -> None:
        with trio.fail_after(timeout):
            await body()

    clock = trio.testing.MockClock(autojump_threshold=0) if autojump else None
    trio.run(main, clock=clock)


def tasks() -> set[trio.lowlevel.Task]:
    """Every task alive under the root task, except the caller."""
    found: set[trio.lowlevel.Task] = set()
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is None:  # pragma: no cover - outside trio.run
            continue
        found.add(task)
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    found.discard(trio.lowlevel.current_task())
    return found


def sockets() -> int:
    """How many sockets this process has open."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
    return count


@contextlib.asynccontextmanager
async def raw_server(scenario: Scenario) -> AsyncIterator[int]:
    """Serve ``scenario`` on 127.0.0.1; yields the port. Leaving the block
    cancels the scenarios still running and closes their streams."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def run_scenario(stream: trio.SocketStream) -> None:
        async with stream:
            # The client closing or resetting is expected in these tests.
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await scenario(stream)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, run_scenario, listeners)
        yield port
        nursery.cancel_scope.cancel()


async def handshake(
    stream: trio.SocketStream, **options: Any
) -> tuple[ServerConnection, list[Event]]:
    """Accept the opening handshake as a server; return the core connection
    and the events that arrived with the request."""
    conn = ServerConnection(**options)
    while True:
        data = await stream.receive_some(65536)
        events = conn.receive_data(data)
        if any(isinstance(event, Request) for event in events):
            break
        assert data, "the client left during the handshake"
    events = conn.accept()
    await stream.send_all(conn.data_to_send())
    return conn, events


async def read_events(stream: trio.SocketStream, conn: ServerConnection) -> list[Event]:
    """Feed what arrives to ``conn`` and write its answers, until the client
    closes the transport; return every event."""
    events: list[Event] = []
    while True:
        data = await stream.receive_some(65536)
        events.extend(conn.receive_data(data))
        out = conn.data_to_send()
        if out:
            await stream.send_all(out)
        if not data or conn.should_close_transport:
            return events


async def silent(stream: trio.SocketStream) -> None:
    """Accept the TCP connection and never answer."""
    await trio.sleep_forever()


async def silent_after_handshake(stream: trio.SocketStream) -> None:
    """Complete the handshake, then neither read nor write."""
    await handshake(stream)
    await trio.sleep_forever()
