"""The examples in docs/ run as documented."""

from __future__ import annotations

import runpy
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def echo_server() -> Iterator[int]:
    def echo(websocket: ServerConnection) -> None:
        for message in websocket:
            websocket.send(message)

    with serve(echo, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield server.socket.getsockname()[1]
        finally:
            server.shutdown()
            thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_plain_socket_client_example_talks_to_a_real_server(
    echo_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    source = DOCS / "examples" / "socket_client.py"
    assert len(source.read_text().splitlines()) < 40
    namespace = runpy.run_path(str(source))
    namespace["say_hello"](f"ws://127.0.0.1:{echo_server}/", "127.0.0.1", echo_server)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "received: Hello!",
        "ended: Closed(code=1000, reason='', clean=True, error=None)",
    ]
