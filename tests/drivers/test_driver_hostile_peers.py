"""Peers that reset, stop or talk nonsense never hang a driver or leak a
socket, thread or task (the leak check in conftest.py runs after each)."""

from __future__ import annotations

import socket
import time

import anyio
import peers
import pytest
from adapters.base import Driver

from sansws.errors import ConnectionClosedError, HandshakeError

pytestmark = pytest.mark.anyio


async def test_a_reset_in_the_middle_of_a_frame_ends_the_connection_with_1006(
    driver: Driver,
) -> None:
    def reset_mid_frame(sock: socket.socket, server: peers.RawServer) -> None:
        sock.sendall(peers.frame(0x2, b"x" * 1000)[:500])
        time.sleep(0.1)
        peers.reset(sock)

    with peers.raw_server(peers.handshake_then(reset_mid_frame)) as server:
        async with driver.connect(server.url) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv(timeout=5)
            assert info.value.code == 1006


async def test_a_reset_during_the_handshake_fails_with_an_error(driver: Driver) -> None:
    def reset_early(sock: socket.socket, server: peers.RawServer) -> None:
        peers.read_head(sock)
        sock.sendall(b"HTTP/1.1 101 Switching")
        peers.reset(sock)

    with peers.raw_server(reset_early) as server, pytest.raises((HandshakeError, OSError)):
        async with driver.connect(server.url, open_timeout=5):
            pass  # pragma: no cover


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff" * 64,  # reserved opcode, bits everywhere
        peers.frame(0x1, b"\xc3\x28"),  # invalid UTF-8
        peers.frame(0x2, b"x", mask=True),  # masked frame from a server
        peers.frame(0x9, b"x" * 126),  # control frame too long
    ],
    ids=["noise", "bad-utf8", "masked", "long-ping"],
)
async def test_garbage_from_a_server_fails_the_connection_with_a_protocol_code(
    driver: Driver, garbage: bytes
) -> None:
    def send_garbage(sock: socket.socket, server: peers.RawServer) -> None:
        sock.sendall(garbage)
        peers.drain_until_eof(sock, server)

    with peers.raw_server(peers.handshake_then(send_garbage)) as server:
        async with driver.connect(server.url) as ws:
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv(timeout=5)
            assert info.value.code in (1002, 1007)


async def test_garbage_instead_of_a_handshake_response_fails_at_once(driver: Driver) -> None:
    garbage = peers.respond(b"\x00\x01garbage\r\n\r\n")
    with peers.raw_server(garbage) as server, pytest.raises(HandshakeError):
        async with driver.connect(server.url, open_timeout=10):
            pass  # pragma: no cover


async def test_a_server_answers_garbage_with_400_and_keeps_serving(driver: Driver) -> None:
    async with driver.serve("echo") as server:

        def send_garbage() -> bytes:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
                return data

        answer = await anyio.to_thread.run_sync(send_garbage)
        assert answer.startswith(b"HTTP/1.1 400")
        async with driver.connect(server.url) as ws:
            await ws.send("still serving")
            assert await ws.recv(timeout=5) == "still serving"


async def test_a_client_that_resets_mid_frame_ends_its_handler(driver: Driver) -> None:
    async with driver.serve("hold") as server:

        def reset_mid_frame() -> None:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            assert peers.read_head(sock).startswith(b"HTTP/1.1 101")
            sock.sendall(peers.frame(0x2, b"y" * 1000, mask=True)[:300])
            time.sleep(0.1)
            peers.reset(sock)

        await anyio.to_thread.run_sync(reset_mid_frame)
        records = await server.wait_records()
    assert records[0].close_code == 1006


async def test_a_client_that_connects_and_says_nothing_is_dropped_at_open_timeout(
    driver: Driver,
) -> None:
    async with driver.serve("echo", open_timeout=0.5) as server:

        def idle() -> bytes:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                return sock.recv(4096)

        start = time.monotonic()
        assert await anyio.to_thread.run_sync(idle) == b""
        assert time.monotonic() - start < 5
