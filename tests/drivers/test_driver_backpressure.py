"""Flow control: a full receive queue stops reading, a full write buffer
blocks ``send``, for every driver."""

from __future__ import annotations

import socket

import anyio
import peers
import pytest
from adapters.base import Driver

from sansws.errors import ConnectionClosed

pytestmark = pytest.mark.anyio

MESSAGE = 65536
TOTAL = 64 * 2**20


async def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    assert callable(predicate)
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.02)


async def test_a_full_receive_queue_stops_reading_until_messages_are_taken(
    driver: Driver,
) -> None:
    with peers.raw_server(peers.handshake_then(peers.flood(MESSAGE, TOTAL))) as server:
        async with driver.connect(server.url, max_queue=4, close_timeout=1) as ws:
            # Receive once so that a driver that reads only inside calls
            # (sync without a keepalive thread) has read the first batch.
            assert len(await ws.recv(timeout=5)) == MESSAGE
            await _wait_for(lambda: server.state.get("stalled"))
            written = server.state["written"]
            # The peer is blocked far before the 64 MiB it wants to send:
            # only the queue and the kernel buffers hold data.
            assert written < TOTAL // 4
            for _ in range(20):
                assert len(await ws.recv(timeout=5)) == MESSAGE
            await _wait_for(lambda: server.state["written"] > written + 10 * MESSAGE)


async def test_close_completes_while_the_receive_queue_is_full(driver: Driver) -> None:
    def flood_then_close(sock: socket.socket, server: peers.RawServer) -> None:
        sock.settimeout(5)
        message = peers.frame(0x1, b"x" * 100)
        sock.sendall(message * 50)
        head = b""
        while not head:  # wait for the client's Close frame
            head = sock.recv(2)
        sock.sendall(peers.close_frame(1000))
        sock.shutdown(socket.SHUT_WR)  # a server closes the TCP connection first
        peers.drain_until_eof(sock, server)

    with peers.raw_server(peers.handshake_then(flood_then_close)) as server:
        async with driver.connect(server.url, max_queue=2, close_timeout=5) as ws:
            assert await ws.recv(timeout=5) == "x" * 100
            await anyio.sleep(0.2)  # the queue fills up
            with anyio.fail_after(3):
                await ws.close()
            assert ws.close_code == 1000


async def test_send_blocks_while_the_peer_does_not_read(driver: Driver) -> None:
    def not_reading(sock: socket.socket, server: peers.RawServer) -> None:
        server.stopped(20)

    with peers.raw_server(peers.handshake_then(not_reading), rcvbuf=65536) as server:
        async with driver.connect(server.url, write_limit=65536, close_timeout=0.5) as ws:
            sent = 0
            errors: list[BaseException] = []

            async def sender() -> None:
                nonlocal sent
                try:
                    for _ in range(TOTAL // MESSAGE):
                        await ws.send(b"\x00" * MESSAGE)
                        sent += 1
                except ConnectionClosed as exc:
                    errors.append(exc)

            async with anyio.create_task_group() as group:
                group.start_soon(sender)
                await anyio.sleep(1.0)
                # Blocked: far from everything was sent, and nothing grows.
                assert sent < (TOTAL // MESSAGE) // 4
                before = sent
                await anyio.sleep(0.3)
                assert sent == before
                await ws.abort()
    assert len(errors) == 1


async def test_a_peer_that_sends_pings_but_never_reads_is_not_read_either(
    driver: Driver,
) -> None:
    # Every Ping queues a Pong. A peer that floods Pings and reads nothing
    # would grow the unwritten Pongs without bound; instead reading pauses
    # once they pass write_limit, and the peer's own writes stall.
    flood = peers.ping_flood(TOTAL)
    with peers.raw_server(peers.handshake_then(flood), rcvbuf=65536) as server:
        async with driver.connect(server.url, write_limit=65536, close_timeout=0.5) as ws:
            with anyio.fail_after(20):
                while not server.state.get("stalled"):
                    # A sync connection without a keepalive thread reads only
                    # inside calls: wait inside one.
                    with pytest.raises(TimeoutError):
                        await ws.recv(timeout=0.2)
            assert server.state["written"] < TOTAL // 4
            await ws.abort()
