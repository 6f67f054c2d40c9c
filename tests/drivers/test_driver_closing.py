"""The closing handshake, shutdown and failures, through every driver."""

from __future__ import annotations

import logging
import socket

import anyio
import peers
import pytest
from adapters.base import Conn, Driver, handler

from sansws import ClientConnection, State
from sansws.errors import ConnectionClosedError, ConnectionClosedOK

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (1001, "bye"), (4321, "é" * 20)])
async def test_client_close_code_and_reason_reach_the_server(
    driver: Driver, code: int, reason: str
) -> None:
    async with driver.serve("hold") as server:
        async with driver.connect(server.url) as ws:
            await ws.send("last")
            await ws.close(code, reason)
            assert ws.state is State.CLOSED
            assert ws.close_code == code
        records = await server.wait_records()
    assert records[0].messages == ["last"]
    assert (records[0].close_code, records[0].close_reason) == (code, reason)


@pytest.mark.parametrize(("code", "reason"), [(1000, "done"), (4000, "custom")])
async def test_server_close_code_and_reason_reach_the_client(
    driver: Driver, code: int, reason: str
) -> None:
    async with (
        driver.serve(handler("close", code=code, reason=reason)) as server,
        driver.connect(server.url) as ws,
    ):
        expected = ConnectionClosedOK if code == 1000 else ConnectionClosedError
        with pytest.raises(expected) as info:
            await ws.recv(timeout=5)
        assert (info.value.code, info.value.reason) == (code, reason)
        assert (ws.close_code, ws.close_reason) == (code, reason)


async def test_close_is_idempotent_and_sends_fail_afterwards(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        await ws.close()
        await ws.close(4000)
        assert ws.close_code == 1000
        with pytest.raises(ConnectionClosedOK):
            await ws.send("too late")
        with pytest.raises(ConnectionClosedOK):
            await ws.recv(timeout=1)
        with pytest.raises(ConnectionClosedOK):
            await ws.ping()


async def test_a_handler_exception_closes_with_1011(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    async with driver.serve("raise") as server, driver.connect(server.url) as ws:
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv(timeout=5)
    assert info.value.code == 1011
    assert any(
        record.name == "sansws.server" and record.exc_info is not None for record in caplog.records
    )


async def test_a_handler_ended_by_its_peer_breaking_the_protocol_is_not_an_error(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    # The echo handler's loop raises the ConnectionClosedError of its own
    # connection: the peer ended it, which is no failure of the handler.
    def misbehave(port: int) -> bytes:
        client = ClientConnection(f"ws://127.0.0.1:{port}/", compression=None)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(client.data_to_send())
            while client.state is State.CONNECTING:
                client.receive_data(sock.recv(65536))
            sock.sendall(peers.frame(0x1, b"unmasked"))  # clients must mask: 1002
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        return reply

    async with driver.serve("echo") as server:
        reply = await anyio.to_thread.run_sync(misbehave, server.port)
        assert (reply[0], reply[2:4]) == (0x88, (1002).to_bytes(2, "big"))
        await anyio.sleep(0.3)  # the handler ends
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_server_shutdown_closes_every_client_with_1001(driver: Driver) -> None:
    async with (
        driver.serve("echo") as server,
        driver.connect(server.url) as first,
        driver.connect(server.url) as second,
    ):
        await first.send("a")
        assert await first.recv(timeout=5) == "a"
        codes: list[int] = []

        async def receive(ws: Conn) -> None:
            # Clients that are reading answer the Close at once (a sync
            # client without keepalive_thread only reads inside its calls).
            with pytest.raises(ConnectionClosedOK) as info:
                await ws.recv(timeout=5)
            codes.append(info.value.code)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(receive, first)
                group.start_soon(receive, second)
                await anyio.sleep(0.1)
                await server.shutdown()
        assert codes == [1001, 1001]


async def test_server_shutdown_does_not_wait_for_a_handler_that_does_not_read(
    driver: Driver,
) -> None:
    async with driver.serve("stall", close_timeout=1) as server, driver.connect(server.url) as ws:
        with anyio.fail_after(10):
            await server.shutdown()
        with pytest.raises(ConnectionClosedOK):
            await ws.recv(timeout=5)


async def test_abort_closes_at_once_with_1006(driver: Driver) -> None:
    async with driver.serve("hold") as server:
        async with driver.connect(server.url) as ws:
            await ws.abort()
            assert ws.state is State.CLOSED
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv(timeout=1)
            assert info.value.code == 1006
        records = await server.wait_records()
    assert records[0].close_code == 1006


async def test_a_close_from_a_peer_that_then_vanishes_ends_within_close_timeout(
    driver: Driver,
) -> None:
    def close_and_stay(sock: socket.socket, server: peers.RawServer) -> None:
        sock.sendall(peers.close_frame(1000, "bye"))
        server.stopped(20)  # never closes the TCP connection

    with peers.raw_server(peers.handshake_then(close_and_stay)) as server:
        async with driver.connect(server.url, close_timeout=0.5) as ws:
            with anyio.fail_after(5):
                with pytest.raises(ConnectionClosedOK):
                    await ws.recv(timeout=5)
                await ws.close()
            assert ws.close_code == 1000


async def test_close_waits_at_most_close_timeout_for_a_silent_peer(driver: Driver) -> None:
    with peers.raw_server(peers.handshake_then(peers.drain_until_eof)) as server:
        async with driver.connect(server.url, close_timeout=0.5) as ws:
            with anyio.fail_after(5):
                await ws.close()
            assert ws.state is State.CLOSED
            assert ws.close_code == 1006
