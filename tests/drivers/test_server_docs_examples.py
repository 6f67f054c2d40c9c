"""The examples of docs/servers.md run as documented."""

from __future__ import annotations

import asyncio
import contextlib
import runpy
import threading
from pathlib import Path

import pytest
from asyncio_peers import run, until
from sansws.drivers import sync
from sansws.drivers.asyncio import InvalidStatus, connect

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_asyncio_rooms_example_routes_authenticates_and_picks_a_subprotocol(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = runpy.run_path(str(EXAMPLES / "asyncio_rooms.py"))

    async def refused(url: str) -> InvalidStatus:
        with pytest.raises(InvalidStatus) as info:
            await connect(url)
        return info.value

    async def body() -> None:
        serving = asyncio.create_task(example["main"](0))
        lines: list[str] = []

        def started() -> bool:
            lines.extend(capsys.readouterr().out.splitlines())
            return any(line.startswith("serving on port") for line in lines)

        await until(started)
        port = int(lines[-1].rsplit(" ", 1)[1])
        base = f"ws://alice:wonderland@127.0.0.1:{port}"
        async with await connect(
            f"{base}/rooms/lobby", subprotocols=["chat.v1", "chat.v10", "chat.v2", "other"]
        ) as ws:
            assert ws.subprotocol == "chat.v10"
            await ws.send("hi")
            assert await ws.recv() == "alice@lobby: hi"
        async with await connect(f"{base}/stats") as ws:
            assert await ws.recv() == "route /stats, subprotocol None"
        health = await refused(f"ws://127.0.0.1:{port}/healthz")
        assert (health.status, health.body) == (200, b"OK\n")
        assert (await refused(f"ws://127.0.0.1:{port}/rooms/lobby")).status == 401
        assert (await refused(f"ws://bob:wrong@127.0.0.1:{port}/rooms/lobby")).status == 401
        assert (await refused(f"{base}/nowhere")).status == 404
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    run(body)


def test_the_sync_rooms_example_converts_path_parameters() -> None:
    example = runpy.run_path(str(EXAMPLES / "sync_rooms.py"))
    server: sync.Server = example["make_server"](0)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        base = f"ws://alice:wonderland@127.0.0.1:{server.port}"
        with sync.connect(f"{base}/items/41") as ws:
            assert ws.recv(timeout=5) == "item 42"
        with sync.connect(f"{base}/rooms/a%20b") as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "alice@a b: hello"
        with pytest.raises(sync.InvalidStatus) as info:
            sync.connect(f"ws://127.0.0.1:{server.port}/items/1")
        assert info.value.status == 401
    finally:
        server.shutdown()
        thread.join(10)
    assert not thread.is_alive()
