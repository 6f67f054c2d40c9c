"""``python -m sansws serve``: an echo server on each driver that prints each
connection and close, and shuts down cleanly on Ctrl+C (1001 to every
client), or at once on a second Ctrl+C. Its clients here are websockets'
sync client and a raw socket, not sansws."""

from __future__ import annotations

import base64
import os
import re
import socket

import pytest
from cli_harness import Running, running, wait_for
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

DRIVERS = ["asyncio", "trio", "sync"]
LISTENING = re.compile(r"Listening on ws://127\.0\.0\.1:(\d+)/ \((\w+) driver\); Ctrl\+C to stop\.")
PEER = r"127\.0\.0\.1:\d+"


def start(server: Running) -> int:
    """Wait for the server to listen; return its port."""
    server.wait_for_stderr("Ctrl+C to stop.")
    match = LISTENING.match(server.stderr)
    assert match is not None, server.stderr
    return int(match.group(1))


@pytest.mark.parametrize("driver", DRIVERS)
def test_serve_echoes_and_ctrl_c_closes_every_client_with_1001(driver: str) -> None:
    with running("serve", "--port", "0", "--driver", driver) as server:
        port = start(server)
        with connect(f"ws://127.0.0.1:{port}/first", open_timeout=5) as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
            ws.send(b"\x00\x01")
            assert ws.recv(timeout=5) == b"\x00\x01"
        server.wait_for_stderr("closed: 1000 (normal closure).")
        with connect(f"ws://127.0.0.1:{port}/second", open_timeout=5) as ws:
            server.wait_for_stderr("connected to /second.")
            server.interrupt()
            with pytest.raises(ConnectionClosedOK) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1001
        result = server.wait()
    assert result.returncode == 0
    assert result.elapsed < 5
    lines = result.stderr.splitlines()
    assert LISTENING.fullmatch(lines[0])
    assert LISTENING.fullmatch(lines[0]).group(2) == driver  # type: ignore[union-attr]
    patterns = [
        rf"{PEER} connected to /first\.",
        rf"{PEER} closed: 1000 \(normal closure\)\.",
        rf"{PEER} connected to /second\.",
        rf"{PEER} closed: 1001 \(going away\)\.",
        r"Server stopped\.",
    ]
    assert len(lines) == 6, lines
    for line, pattern in zip(lines[1:], patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)


def unresponsive_client(port: int) -> socket.socket:
    """A client that completes the opening handshake and then reads nothing,
    so the server's close handshake cannot complete."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101")
    return sock


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_second_ctrl_c_stops_the_server_at_once(driver: str) -> None:
    with running("serve", "--port", "0", "--driver", driver) as server:
        port = start(server)
        with unresponsive_client(port):
            server.wait_for_stderr("connected to /.")
            server.interrupt()
            # The first Ctrl+C waits for the client's close handshake (for up
            # to the close timeout, 10 s).
            with pytest.raises(AssertionError):
                wait_for(lambda: server.process.poll() is not None, 0.3)
            server.interrupt()
            result = server.wait()
    assert result.returncode == 130
    assert result.elapsed < 5
    assert "Traceback" not in result.stderr


def test_serve_reports_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with running("serve", "--port", str(port)) as server:
            result = server.wait()
    assert result.returncode == 1
    assert result.stderr.startswith(f"Cannot listen on 127.0.0.1:{port}: ")


def test_serve_help_documents_its_options() -> None:
    with running("serve", "--help") as command:
        result = command.wait()
    assert result.returncode == 0
    for option in ("--host", "--port", "--driver", "asyncio", "trio", "sync", "1001"):
        assert option in result.stdout
