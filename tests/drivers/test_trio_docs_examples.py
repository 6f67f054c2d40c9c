"""The trio examples of docs/drivers/trio.md run as documented."""

from __future__ import annotations

import runpy
import signal
from pathlib import Path

import pytest
import trio
from sansws.drivers.trio import InvalidStatus, connect
from trio_peers import run

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_trio_server_and_client_examples_talk_and_shut_down_on_sigterm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = runpy.run_path(str(EXAMPLES / "trio_server.py"))
    client = runpy.run_path(str(EXAMPLES / "trio_client.py"))

    async def body() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server["main"], 0)
            lines: list[str] = []
            with trio.fail_after(10):
                while not any(line.startswith("serving on port") for line in lines):
                    await trio.sleep(0.01)
                    lines.extend(capsys.readouterr().out.splitlines())
            port = int(lines[-1].rsplit(" ", 1)[1])
            await client["hello"](f"ws://127.0.0.1:{port}/")
            with pytest.raises(InvalidStatus) as info:
                async with connect(f"ws://127.0.0.1:{port}/healthz"):
                    pass  # pragma: no cover
            assert (info.value.status, info.value.body) == (200, b"OK\n")
            signal.raise_signal(signal.SIGTERM)  # the example's receiver shuts down
        # The nursery ended: main() returned.

    run(body)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "received: Hello!"
    assert out[1].startswith("ping: ")
    assert out[2] == "closed with 1000"
