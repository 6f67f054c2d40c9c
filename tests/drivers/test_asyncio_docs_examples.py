"""The asyncio examples of docs/drivers/asyncio.md run as documented."""

from __future__ import annotations

import asyncio
import runpy
import signal
from pathlib import Path

import pytest
from asyncio_peers import run, until
from sansws.drivers.asyncio import InvalidStatus, connect

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_asyncio_server_and_client_examples_talk_and_shut_down_on_sigterm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = runpy.run_path(str(EXAMPLES / "asyncio_server.py"))
    client = runpy.run_path(str(EXAMPLES / "asyncio_client.py"))

    async def body() -> None:
        serving = asyncio.create_task(server["main"](0))
        lines: list[str] = []

        def started() -> bool:
            lines.extend(capsys.readouterr().out.splitlines())
            return any(line.startswith("serving on port") for line in lines)

        await until(started)
        port = int(lines[-1].rsplit(" ", 1)[1])
        await client["hello"](f"ws://127.0.0.1:{port}/")
        with pytest.raises(InvalidStatus) as info:
            await connect(f"ws://127.0.0.1:{port}/healthz")
        assert (info.value.status, info.value.body) == (200, b"OK\n")
        signal.raise_signal(signal.SIGTERM)  # the example's handler shuts down
        async with asyncio.timeout(10):
            await serving

    run(body)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "received: Hello!"
    assert out[1].startswith("ping: ")
    assert out[2] == "closed with 1000"
