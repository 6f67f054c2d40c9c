"""The trio driver's own API details: option validation before any I/O,
abort() as a coroutine that works in a cancelled scope, the ping waiter."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from sansws.drivers.trio import Connection, ConnectionClosedError, connect, serve
from trio_peers import raw_server, run, silent_after_handshake

from sansws.connection import State


async def _hold(ws: Connection) -> None:
    async for _ in ws:
        pass


@pytest.mark.parametrize(
    "options",
    [{"max_queue": 0}, {"write_limit": -1}, {"ping_interval": 0}, {"max_redirects": -1}],
)
def test_invalid_client_options_fail_before_any_io(options: dict[str, Any]) -> None:
    async def body() -> None:
        # Port 1 on loopback: connecting would fail with OSError.
        with pytest.raises(ValueError):  # noqa: PT011 - each option's own message
            async with connect("ws://127.0.0.1:1/", **options):
                pass  # pragma: no cover

    run(body)


@pytest.mark.parametrize("options", [{"max_queue": 0}, {"write_limit": -1}, {"close_timeout": 0}])
def test_invalid_server_options_fail_before_listening(options: dict[str, Any]) -> None:
    async def body() -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - each option's own message
            async with serve(_hold, **options):
                pass  # pragma: no cover

    run(body)


def test_abort_closes_at_once_even_in_a_cancelled_scope() -> None:
    async def body() -> None:
        async with (
            raw_server(silent_after_handshake) as port,
            connect(f"ws://127.0.0.1:{port}/", close_timeout=30) as ws,
        ):
            start = trio.current_time()
            with trio.CancelScope() as scope:
                scope.cancel()
                await ws.abort()
            assert trio.current_time() - start < 0.001
            assert ws.state is State.CLOSED
            assert ws.close_code == 1006
            with pytest.raises(ConnectionClosedError):
                await ws.send("late")

    run(body, autojump=True)


def test_the_ping_waiter_reports_its_payload_and_when_it_is_done() -> None:
    async def body() -> None:
        async with serve(_hold) as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
            waiter = await ws.ping(b"42")
            assert waiter.payload == b"42"
            latency = await waiter.wait()
            assert waiter.done()
            assert await waiter.wait() == latency  # waiting again returns the same
            (handler_ws,) = server.connections
            assert handler_ws.remote_address == ws.local_address

    run(body)
