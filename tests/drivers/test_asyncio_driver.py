"""Behaviour of the asyncio driver that the shared suite does not pin down:
answers that must precede a Close, server task ownership, logging, options.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time

import peers
import pytest
from asyncio_peers import handshake, raw_server, read_events, run, until
from sansws.drivers.asyncio import (
    Connection,
    ConnectionClosedError,
    InvalidStatus,
    ProtocolError,
    Response,
    connect,
    serve,
)

from sansws import ClientConnection
from sansws.events import Accepted, Closed, Event, Message, Request

RESERVED_OPCODE = 0x3


async def echo(ws: Connection) -> None:
    async for message in ws:
        await ws.send(message)


def test_a_client_answers_a_message_before_the_close_caused_by_the_next_frame() -> None:
    # RFC 6455 section 7.1.7 fails the connection at the bad frame; the
    # message before it is valid and its answer goes out first (Autobahn 5.15).
    seen: list[Event] = []

    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn, _ = await handshake(reader, writer)
        writer.write(peers.frame(0x1, b"first") + peers.frame(RESERVED_OPCODE))
        seen.extend(await read_events(reader, conn, 2))
        writer.close()

    async def body() -> None:
        async with raw_server(scenario) as url:
            ws = await connect(url)
            with pytest.raises(ConnectionClosedError) as info:
                await echo(ws)
            assert info.value.code == 1002
            await until(lambda: len(seen) >= 2)
            await ws.wait_closed()

    run(body)
    assert isinstance(seen[0], Message)
    assert seen[0].data == "first"
    assert isinstance(seen[1], Closed)
    assert seen[1].code == 1002


def test_a_server_answers_a_message_before_the_close_caused_by_the_next_frame() -> None:
    async def body() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            conn = ClientConnection(f"ws://127.0.0.1:{server.port}/")
            writer.write(conn.data_to_send())
            events = await read_events(reader, conn, 1)
            assert isinstance(events[0], Accepted)
            writer.write(
                peers.frame(0x2, b"first", mask=True) + peers.frame(RESERVED_OPCODE, mask=True)
            )
            events = await read_events(reader, conn, 2)
            writer.close()
            await writer.wait_closed()
        assert isinstance(events[0], Message)
        assert events[0].data == b"first"
        assert isinstance(events[1], Closed)
        assert events[1].code == 1002

    run(body)


def test_a_failing_handler_is_logged_under_sansws_server_and_closes_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing(ws: Connection) -> None:
        raise RuntimeError("handler failed")

    async def body() -> None:
        async with serve(failing, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1011
            await ws.wait_closed()

    with caplog.at_level(logging.ERROR, logger="sansws.server"):
        run(body)
    [record] = caplog.records
    assert record.name == "sansws.server"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "handler failed"


def test_a_handler_letting_connection_closed_escape_after_the_close_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def strict_reader(ws: Connection) -> None:
        while True:
            await ws.recv()

    async def body() -> None:
        async with serve(strict_reader, "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            await ws.close()

    with caplog.at_level(logging.DEBUG, logger="sansws.server"):
        run(body)
    assert caplog.records == []


def test_a_failing_process_request_answers_500_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(ws: Connection, request: Request) -> Response | None:
        raise ValueError("no database")

    async def body() -> None:
        async with serve(echo, "127.0.0.1", 0, process_request=broken) as server:
            with pytest.raises(InvalidStatus) as info:
                await connect(f"ws://127.0.0.1:{server.port}/")
            assert info.value.status == 500

    with caplog.at_level(logging.ERROR, logger="sansws.server"):
        run(body)
    assert [record.name for record in caplog.records] == ["sansws.server"]


def test_process_request_sees_the_request_and_the_connection_before_the_answer() -> None:
    async def body() -> None:
        seen: list[tuple[str, object]] = []

        async def check(ws: Connection, request: Request) -> Response | None:
            seen.append((request.path, ws.state.name))
            if request.headers.get("Authorization") != "Bearer good":
                return Response(401, body=b"who are you?\n")
            return None

        async with serve(echo, "127.0.0.1", 0, process_request=check) as server:
            url = f"ws://127.0.0.1:{server.port}/private"
            async with connect(url, extra_headers={"Authorization": "Bearer good"}) as ws:
                await ws.send("in")
                assert await ws.recv() == "in"
            with pytest.raises(InvalidStatus) as info:
                await connect(url)
            assert (info.value.status, info.value.body) == (401, b"who are you?\n")
        assert seen == [("/private", "CONNECTING"), ("/private", "CONNECTING")]

    run(body)


def test_await_serve_and_aclose_work_without_a_block() -> None:
    async def body() -> None:
        server = await serve(echo, "127.0.0.1", 0)
        ws = await connect(f"ws://127.0.0.1:{server.port}/")
        await ws.send(b"ok")
        assert await ws.recv() == b"ok"
        await server.aclose()
        assert server.sockets == ()
        assert ws.close_code == 1001
        await ws.wait_closed()

    run(body)


def test_invalid_options_fail_in_serve_and_connect_before_any_io() -> None:
    async def body() -> None:
        with pytest.raises(ValueError, match="max_queue"):
            await serve(echo, "127.0.0.1", 0, max_queue=0)
        with pytest.raises(ValueError, match="ping_interval"):
            await connect("ws://127.0.0.1:1/", ping_interval=-1)

    run(body)


def test_addresses_are_the_socket_addresses_of_both_ends() -> None:
    async def body() -> None:
        remote: list[object] = []

        async def record(ws: Connection) -> None:
            remote.append(ws.remote_address)
            await echo(ws)

        async with (
            serve(record, "127.0.0.1", 0) as server,
            connect(f"ws://127.0.0.1:{server.port}/") as ws,
        ):
            await ws.send("x")
            await ws.recv()
            assert ws.remote_address == ("127.0.0.1", server.port)
            assert remote == [ws.local_address]

    run(body)


def test_connection_closed_error_says_why_in_its_cause() -> None:
    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer)
        writer.write(peers.frame(0x1, b"\xc3\x28"))  # invalid UTF-8
        await reader.read()
        writer.close()

    async def body() -> None:
        async with raw_server(scenario) as url:
            ws = await connect(url)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1007
            assert isinstance(info.value.__cause__, ProtocolError)
            await ws.wait_closed()

    run(body)


STUCK_RESOLVER = """
import asyncio, socket, sys, threading

real = socket.getaddrinfo

def getaddrinfo(host, *args, **kwargs):
    if host == "stuck.test":
        print("resolving", flush=True)
        threading.Event().wait()  # a resolver that never answers
    return real(host, *args, **kwargs)

socket.getaddrinfo = getaddrinfo
from sansws.drivers.asyncio import OpenTimeout, connect

async def main():
    try:
        await connect("ws://stuck.test/", open_timeout=float(sys.argv[1]))
    except OpenTimeout:
        print("open timeout", flush=True)

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize(
    ("open_timeout", "interrupt", "printed"),
    [("0.3", False, "open timeout"), ("60", True, "interrupted")],
)
def test_a_stuck_resolver_delays_neither_the_open_timeout_nor_ctrl_c_nor_the_exit(
    open_timeout: str, interrupt: bool, printed: str
) -> None:
    # asyncio's own getaddrinfo runs in the default executor, whose threads
    # asyncio.run() and the interpreter join on the way out.
    command = [sys.executable, "-c", STUCK_RESOLVER, open_timeout]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        try:
            assert child.stdout.readline() == "resolving\n"
            started = time.monotonic()
            if interrupt:
                child.send_signal(signal.SIGINT)
            assert child.wait(timeout=5) == 0
        finally:
            child.kill()
        assert time.monotonic() - started < 3
        assert child.stdout.read().strip() == printed
