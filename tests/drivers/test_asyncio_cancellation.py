"""Every await of the asyncio driver is a cancellation point that leaves the
connection consistent (DRIVERS-SPEC, guarantees): a cancelled recv loses no
message; a cancelled send either handed over the whole message or fails the
connection with 1011; a cancelled close aborts; a cancelled connect leaves no
socket; asyncio.timeout around any call works; no task outlives the
connection.

Each test runs on its own event loop through :func:`asyncio_peers.run`,
which fails if a task is left over or the loop reported an error; the
autouse ``no_leaks`` fixture fails if a socket is left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections.abc import AsyncIterator

import pytest
from asyncio_peers import (
    Scenario,
    handshake,
    raw_server,
    read_events,
    run,
    stall_forever,
    ticks,
    until,
)
from sansws.drivers.asyncio import (
    Connection,
    ConnectionClosed,
    ConnectionClosedError,
    Handler,
    OpenTimeout,
    Response,
    connect,
    serve,
)

from sansws.connection import State
from sansws.events import Closed, Message, Request

# ---------------------------------------------------------------- helpers


def outbox_handler(outbox: asyncio.Queue[str | bytes | None]) -> Handler:
    """A server handler that sends what the test puts in ``outbox`` (None
    ends the handler)."""

    async def handler(ws: Connection) -> None:
        while (message := await outbox.get()) is not None:
            await ws.send(message)

    return handler


def blocking_peer(
    release: asyncio.Event, received: list[str | bytes], closes: list[Closed]
) -> Scenario:
    """A peer that completes the handshake, reads nothing until ``release``
    is set, then records every message and the close."""

    async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn, _ = await handshake(reader, writer)
        await release.wait()
        while True:
            data = await reader.read(65536)
            for event in conn.receive_data(data):
                if isinstance(event, Message):
                    received.append(event.data)
                elif isinstance(event, Closed):
                    closes.append(event)
            writer.write(conn.data_to_send())
            if not data or conn.should_close_transport:
                writer.close()
                return

    return scenario


async def fill_write_buffer(ws: Connection, sent: list[bytes], size: int = 1 << 18) -> None:
    """Send distinct messages of ``size`` bytes until a send is still
    waiting for the buffer to drain after 0.3 s (the peer must not read)."""
    for index in range(64):
        message = bytes([index]) * size
        sent.append(message)
        try:
            async with asyncio.timeout(0.3):
                await ws.send(message)
        except TimeoutError:
            return
    raise AssertionError("the write buffer never filled up")


# ---------------------------------------------------------------- recv


def test_recv_cancelled_while_waiting_keeps_the_next_message() -> None:
    async def body() -> None:
        outbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        async with (
            serve(outbox_handler(outbox), "127.0.0.1", 0) as server,
            connect(f"ws://127.0.0.1:{server.port}/") as ws,
        ):
            task = asyncio.create_task(ws.recv())
            await ticks(3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await outbox.put("after")
            assert await ws.recv() == "after"
            await outbox.put(None)

    run(body)


def test_recv_cancelled_at_every_moment_loses_no_message_and_keeps_order() -> None:
    # Cancel recv() after a random number of loop iterations while the
    # server streams messages: cancellations land before, while and right
    # after each message arrives; every message is still received once, in
    # order.
    count = 300
    rng = random.Random(6455)

    async def body() -> None:
        outbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        async with (
            serve(outbox_handler(outbox), "127.0.0.1", 0) as server,
            connect(f"ws://127.0.0.1:{server.port}/", max_queue=4) as ws,
        ):

            async def produce() -> None:
                for index in range(count):
                    await outbox.put(str(index))
                    await ticks(rng.randrange(3))
                await outbox.put(None)

            producer = asyncio.create_task(produce())
            received: list[str | bytes] = []
            cancelled = 0
            for _ in range(count * 50):
                if len(received) == count:
                    break
                task = asyncio.create_task(ws.recv())
                await ticks(rng.randrange(4))
                task.cancel()
                try:
                    received.append(await task)
                except asyncio.CancelledError:
                    cancelled += 1
            await producer
            assert received == [str(index) for index in range(count)]
            assert cancelled > 0

    run(body)


def test_recv_under_asyncio_timeout_raises_timeout_and_stays_usable() -> None:
    async def body() -> None:
        outbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        async with (
            serve(outbox_handler(outbox), "127.0.0.1", 0) as server,
            connect(f"ws://127.0.0.1:{server.port}/") as ws,
        ):
            for _ in range(20):
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.001):
                        await ws.recv()
            await outbox.put(b"still here")
            assert await ws.recv() == b"still here"
            await outbox.put(None)

    run(body)


# ---------------------------------------------------------------- send


def test_send_cancelled_under_back_pressure_still_delivers_the_whole_message() -> None:
    async def body() -> None:
        release = asyncio.Event()
        received: list[str | bytes] = []
        closes: list[Closed] = []
        async with (
            raw_server(blocking_peer(release, received, closes), rcvbuf=4096) as url,
            connect(url, write_limit=16384, ping_interval=None, compression=None) as ws,
        ):
            sent: list[bytes] = []
            await fill_write_buffer(ws, sent)
            assert ws.state is State.OPEN
            release.set()
            await ws.send("end")
            sent_all: list[str | bytes] = [*sent, "end"]
        assert ws.close_code == 1000
        assert received == sent_all
        assert [close.code for close in closes] == [1000]

    run(body)


def test_send_waits_under_back_pressure_and_resumes_when_the_peer_reads() -> None:
    async def body() -> None:
        release = asyncio.Event()
        received: list[str | bytes] = []
        async with (
            raw_server(blocking_peer(release, received, []), rcvbuf=4096) as url,
            connect(url, write_limit=16384, ping_interval=None, compression=None) as ws,
        ):
            await fill_write_buffer(ws, [])
            blocked = asyncio.create_task(ws.send(b"blocked"))
            await asyncio.sleep(0.1)
            assert not blocked.done()
            release.set()
            async with asyncio.timeout(10):
                await blocked
        assert received[-1] == b"blocked"

    run(body)


async def endless_fragments(started: asyncio.Event) -> AsyncIterator[str]:
    yield "first "
    started.set()
    await asyncio.sleep(3600)
    yield "never"  # pragma: no cover


def test_send_cancelled_between_fragments_fails_the_connection_with_1011() -> None:
    async def body() -> None:
        release = asyncio.Event()
        release.set()
        received: list[str | bytes] = []
        closes: list[Closed] = []
        async with raw_server(blocking_peer(release, received, closes)) as url:
            ws = await connect(url)
            started = asyncio.Event()
            task = asyncio.create_task(ws.send(endless_fragments(started)))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert ws.state is State.CLOSED
            assert ws.close_code == 1011
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1011
            with pytest.raises(ConnectionClosed):
                await ws.send("too late")
            async with asyncio.timeout(5):
                await ws.wait_closed()
            await until(lambda: closes)
        assert received == []
        assert [close.code for close in closes] == [1011]

    run(body)


def test_send_cancelled_while_a_fragment_drains_fails_the_connection_with_1011() -> None:
    async def body() -> None:
        release = asyncio.Event()
        closes: list[Closed] = []
        async with raw_server(blocking_peer(release, [], closes), rcvbuf=4096) as url:
            ws = await connect(url, write_limit=16384, ping_interval=None, compression=None)
            fragments = (bytes([index]) * (1 << 18) for index in range(64))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await ws.send(fragments)
            assert ws.state is State.CLOSED
            assert ws.close_code == 1011
            release.set()
            async with asyncio.timeout(15):
                await ws.wait_closed()

    run(body)


def test_fragment_source_failing_fails_the_connection_and_propagates() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"part"
        raise ValueError("source broke")

    async def body() -> None:
        release = asyncio.Event()
        release.set()
        closes: list[Closed] = []
        async with raw_server(blocking_peer(release, [], closes)) as url:
            ws = await connect(url)
            with pytest.raises(ValueError, match="source broke"):
                await ws.send(failing())
            assert ws.close_code == 1011
            await ws.wait_closed()
            await until(lambda: closes)
        assert [close.code for close in closes] == [1011]

    run(body)


def test_whole_message_sent_during_a_fragmented_one_waits_for_its_end() -> None:
    async def body() -> None:
        release = asyncio.Event()
        release.set()
        received: list[str | bytes] = []
        gate = asyncio.Event()

        async def fragments() -> AsyncIterator[str]:
            yield "a"
            await gate.wait()
            yield "b"

        async with (
            raw_server(blocking_peer(release, received, [])) as url,
            connect(url) as ws,
        ):
            first = asyncio.create_task(ws.send(fragments()))
            await ticks(3)
            second = asyncio.create_task(ws.send("whole"))
            third = asyncio.create_task(ws.send(iter(["c", "d"])))
            await ticks(3)
            assert not second.done()
            assert not third.done()
            gate.set()
            await asyncio.gather(first, second, third)
        assert sorted(received[1:]) == ["cd", "whole"]
        assert received[0] == "ab"

    run(body)


def test_send_waiting_for_a_fragmented_message_can_be_cancelled_without_effect() -> None:
    async def body() -> None:
        release = asyncio.Event()
        release.set()
        received: list[str | bytes] = []
        gate = asyncio.Event()

        async def fragments() -> AsyncIterator[str]:
            yield "x"
            await gate.wait()
            yield "y"

        async with (
            raw_server(blocking_peer(release, received, [])) as url,
            connect(url) as ws,
        ):
            first = asyncio.create_task(ws.send(fragments()))
            await ticks(3)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await ws.send("dropped before it was sent")
            gate.set()
            await first
            await ws.send("after")
            assert ws.state is State.OPEN
        assert received == ["xy", "after"]

    run(body)


# ---------------------------------------------------------------- ping


def test_ping_waiter_fails_with_connection_closed_when_the_connection_ends() -> None:
    async def body() -> None:
        async with raw_server(blocking_peer(asyncio.Event(), [], [])) as url:
            ws = await connect(url)
            waiter = ws.ping()
            forgotten = ws.ping(b"nobody awaits this one")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await asyncio.shield(waiter)
            ws.abort()
            with pytest.raises(ConnectionClosedError):
                await waiter
            assert forgotten.done()

    run(body)


# ---------------------------------------------------------------- close


def test_close_cancelled_aborts_the_transport() -> None:
    async def body() -> None:
        async with raw_server(blocking_peer(asyncio.Event(), [], [])) as url:
            ws = await connect(url, close_timeout=30)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await ws.close()
            assert ws.state is State.CLOSED
            assert ws.close_code == 1006
            async with asyncio.timeout(1):
                await ws.wait_closed()

    run(body)


def test_close_returns_within_close_timeout_when_the_peer_never_answers() -> None:
    async def body() -> None:
        async with raw_server(blocking_peer(asyncio.Event(), [], [])) as url:
            ws = await connect(url, close_timeout=0.2)
            start = time.monotonic()
            await ws.close()
            assert time.monotonic() - start < 3.0
            assert ws.state is State.CLOSED
            assert ws.close_code == 1006

    run(body)


def test_close_is_idempotent_and_concurrent_closes_all_return() -> None:
    async def body() -> None:
        outbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        async with serve(outbox_handler(outbox), "127.0.0.1", 0) as server:
            ws = await connect(f"ws://127.0.0.1:{server.port}/")
            await asyncio.gather(ws.close(), ws.close(4000, "ignored"), ws.close())
            await ws.close()
            assert ws.close_code == 1000
            await outbox.put(None)

    run(body)


# ---------------------------------------------------------------- connect


async def cancel_connect_at_every_step(url: str, **options: object) -> int:
    """Start connect() and cancel it after n loop iterations, for n = 0, 1,
    2... until it completes; return how many cancellations landed."""

    async def opening() -> Connection:
        return await connect(url, **options)

    cancelled = 0
    for delay in range(400):
        task = asyncio.create_task(opening())
        await ticks(delay)
        if task.done():
            ws = task.result()
            assert ws.state is State.OPEN
            await ws.close()
            return cancelled
        task.cancel()
        try:
            ws = await task
        except asyncio.CancelledError:
            cancelled += 1
        else:  # finished in the same iteration as the cancel
            await ws.close()
            return cancelled
    raise AssertionError("connect never completed")


async def echo(ws: Connection) -> None:
    async for message in ws:
        await ws.send(message)


def test_connect_cancelled_at_every_step_leaves_no_socket_or_task() -> None:
    async def body() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            cancelled = await cancel_connect_at_every_step(f"ws://127.0.0.1:{server.port}/")
            assert cancelled >= 3  # TCP connect, handshake request, response

    run(body)


def test_connect_over_tls_cancelled_at_every_step_leaves_no_socket_or_task(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    async def body() -> None:
        async with serve(echo, "127.0.0.1", 0, ssl=tls_server_context) as server:
            cancelled = await cancel_connect_at_every_step(
                f"wss://127.0.0.1:{server.port}/", ssl=tls_client_context
            )
            assert cancelled >= 4  # TCP, TLS, handshake request, response

    run(body)


def test_connect_cancelled_at_every_step_of_a_redirect_leaves_no_socket_or_task() -> None:
    async def body() -> None:
        async with serve(echo, "127.0.0.1", 0) as target:
            location = f"ws://127.0.0.1:{target.port}/there"

            async def redirect(ws: Connection, request: Request) -> Response | None:
                return Response(302, [("Location", location)])

            async with serve(echo, "127.0.0.1", 0, process_request=redirect) as server:
                cancelled = await cancel_connect_at_every_step(f"ws://127.0.0.1:{server.port}/")
                assert cancelled >= 6  # both hops

    run(body)


def test_connect_to_a_silent_server_ends_at_asyncio_timeout() -> None:
    async def body() -> None:
        async with raw_server(stall_forever) as url:
            start = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                async with asyncio.timeout(0.2):
                    await connect(url, open_timeout=30)
            assert not isinstance(info.value, OpenTimeout)
            assert time.monotonic() - start < 3.0

    run(body)


def test_connect_to_a_silent_server_ends_with_open_timeout() -> None:
    async def body() -> None:
        async with raw_server(stall_forever) as url:
            start = time.monotonic()
            with pytest.raises(OpenTimeout):
                await connect(url, open_timeout=0.2)
            assert 0.15 < time.monotonic() - start < 3.0

    run(body)


def test_open_timeout_is_one_budget_across_redirect_hops() -> None:
    # Every hop answers slowly; the budget, not each hop, ends the wait.
    async def body() -> None:
        hops: list[str] = []

        async def slow_redirect(ws: Connection, request: Request) -> Response | None:
            hops.append(request.path)
            await asyncio.sleep(0.15)
            return Response(302, [("Location", f"/hop{len(hops)}")])

        async with serve(echo, "127.0.0.1", 0, process_request=slow_redirect) as server:
            start = time.monotonic()
            with pytest.raises(OpenTimeout):
                await connect(f"ws://127.0.0.1:{server.port}/", open_timeout=0.5)
            elapsed = time.monotonic() - start
            assert 0.45 < elapsed < 3.0
            assert 2 <= len(hops) <= 5

    run(body)


# ---------------------------------------------------------------- tasks


def test_a_client_connection_runs_no_task_of_its_own() -> None:
    async def body() -> None:
        peer_tasks: set[asyncio.Task[object]] = set()

        async def scenario(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            peer_tasks.add(task)
            conn, _ = await handshake(reader, writer)
            while not conn.should_close_transport:  # answers pings until closed
                await read_events(reader, conn, 1)
                writer.write(conn.data_to_send())
            writer.close()

        async with raw_server(scenario) as url, connect(url, ping_interval=0.01) as ws:
            await asyncio.sleep(0.05)  # keepalive pings run meanwhile
            mine = asyncio.all_tasks() - peer_tasks - {asyncio.current_task()}
            assert mine == set()
            assert ws.latency > 0

    run(body)


def test_server_tasks_end_with_their_connections_and_at_shutdown() -> None:
    async def body() -> None:
        started = asyncio.Event()

        async def handler(ws: Connection) -> None:
            started.set()
            async for message in ws:
                await ws.send(message)

        server = await serve(handler, "127.0.0.1", 0)
        before = asyncio.all_tasks()
        clients = [await connect(f"ws://127.0.0.1:{server.port}/") for _ in range(3)]
        await started.wait()
        assert len(asyncio.all_tasks() - before) == 3
        await clients[0].close()
        for _ in range(100):
            if len(asyncio.all_tasks() - before) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(asyncio.all_tasks() - before) == 2
        await server.aclose()
        assert asyncio.all_tasks() - before == set()
        for ws in clients[1:]:
            assert ws.close_code == 1001
            await ws.wait_closed()

    run(body)


def test_server_exit_cancelled_cancels_handlers_that_ignore_shutdown() -> None:
    async def body() -> None:
        entered = asyncio.Event()

        async def stubborn(ws: Connection) -> None:
            entered.set()
            await asyncio.sleep(3600)

        server = await serve(stubborn, "127.0.0.1", 0)
        ws = await connect(f"ws://127.0.0.1:{server.port}/")
        await entered.wait()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await server.aclose()
        await ws.wait_closed()

    run(body)


def test_send_cancelled_at_every_moment_sends_the_whole_message_or_fails_with_1011() -> None:
    # A fragmented send cancelled after n loop iterations, for every n until
    # it completes: the peer sees either the whole message or none of it, and
    # a connection that saw part of it fails with 1011.
    parts = ["one ", "two ", "three"]

    async def fragments() -> AsyncIterator[str]:
        for part in parts:
            await ticks(1)
            yield part

    async def body() -> None:
        async with serve(echo, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            outcomes = {"whole": 0, "nothing": 0, "failed": 0}
            for delay in range(40):
                ws = await connect(url)
                task = asyncio.create_task(ws.send(fragments()))
                await ticks(delay)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                if ws.state is State.OPEN:
                    await ws.send("marker")
                    before_marker = []
                    while (echoed := await ws.recv()) != "marker":
                        before_marker.append(echoed)
                        assert len(before_marker) == 1
                    assert before_marker in ([], ["".join(parts)])
                    outcomes["whole" if before_marker else "nothing"] += 1
                    await ws.close()
                else:
                    assert task.cancelled()
                    assert ws.close_code == 1011
                    await ws.wait_closed()
                    outcomes["failed"] += 1
            assert all(outcomes.values()), outcomes

    run(body)
