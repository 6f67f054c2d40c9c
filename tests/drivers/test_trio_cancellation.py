"""Every await of the trio driver is a checkpoint that leaves the connection
consistent (DRIVERS-SPEC, guarantees): a cancelled recv loses no message; a
cancelled send queued the whole message or nothing, and a fragmented send
cancelled half-way fails the connection with 1011; a cancelled close lets the
close handshake finish; a cancelled connect leaves no socket or task;
``trio.move_on_after`` around any call works.

Each test runs in its own ``trio.run`` (:func:`trio_peers.run`); the autouse
``no_leaks`` fixture fails if a socket is left open.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator

import pytest
import trio
import trio_peers
from sansws.drivers.trio import (
    Connection,
    ConnectionClosedError,
    OpenTimeout,
    connect,
    serve,
)
from trio_peers import handshake, raw_server, read_events, run, silent, silent_after_handshake

from sansws.connection import ClientConnection, State
from sansws.events import Closed, Message, Ping

# ---------------------------------------------------------------- recv


def test_recv_cancelled_while_waiting_keeps_the_next_message() -> None:
    async def body() -> None:
        send_channel, receive_channel = trio.open_memory_channel[str](1)

        async def handler(ws: Connection) -> None:
            async for message in receive_channel:
                await ws.send(message)

        async with serve(handler) as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
            with trio.move_on_after(0.05) as scope:
                await ws.recv()
            assert scope.cancelled_caught
            await send_channel.send("after")
            assert await ws.recv() == "after"
            await send_channel.aclose()

    run(body)


def test_recv_cancelled_at_every_moment_loses_no_message_and_keeps_order() -> None:
    count = 300
    expected = [f"m{i}" for i in range(count)]

    async def handler(ws: Connection) -> None:
        for i, message in enumerate(expected):
            await ws.send(message)
            if i % 7 == 0:
                await trio.sleep(0.0005)
        await ws.recv()  # until the client closes

    async def body() -> None:
        rng = random.Random(6455)
        received: list[str | bytes] = []
        cancelled = 0
        async with serve(handler) as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
            while len(received) < count:
                # A deadline already passed, at once, or while waiting.
                timeout = rng.choice([-1.0, 0.0, 0.0001, 0.001, 1.0])
                with trio.move_on_at(trio.current_time() + timeout) as scope:
                    received.append(await ws.recv())
                cancelled += scope.cancelled_caught
        assert received == expected
        assert cancelled > 0

    run(body)


def test_recv_blocked_is_cancelled_by_an_outer_nursery() -> None:
    async def body() -> None:
        async with serve(_hold) as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.recv)
                await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
            assert ws.state is State.OPEN
            await ws.send("still usable")

    run(body)


async def _hold(ws: Connection) -> None:
    async for _ in ws:
        pass


async def _echo(ws: Connection) -> None:
    async for message in ws:
        await ws.send(message)


# ---------------------------------------------------------------- send


def blocking_peer(
    release: trio.Event, received: list[str | bytes], closes: list[Closed]
) -> trio_peers.Scenario:
    """A peer that completes the handshake, reads nothing until ``release``
    is set, then records every message and the close."""

    async def scenario(stream: trio.SocketStream) -> None:
        conn, _ = await handshake(stream)
        await release.wait()
        for event in await read_events(stream, conn):
            if isinstance(event, Message):
                received.append(event.data)
            elif isinstance(event, Closed):
                closes.append(event)

    return scenario


def test_send_cancelled_under_back_pressure_still_delivers_the_whole_message() -> None:
    # One back-pressure rule in every driver: send() queues the whole message,
    # then waits for the buffer to drain; cancelling that wait leaves the
    # message queued.
    async def body() -> None:
        release = trio.Event()
        received: list[str | bytes] = []
        closes: list[Closed] = []
        queued: list[bytes] = []
        async with raw_server(blocking_peer(release, received, closes)) as port:
            async with connect(f"ws://127.0.0.1:{port}/", write_limit=4096, compression=None) as ws:
                cancelled = 0
                for i in range(200):
                    message = bytes([i]) * 65536
                    with trio.move_on_after(0.05) as scope:
                        queued.append(message)
                        await ws.send(message)
                    if scope.cancelled_caught:
                        cancelled += 1
                        if cancelled == 3:
                            break
                assert cancelled == 3
                assert ws.state is State.OPEN
                release.set()
                await ws.send(b"last")
                queued.append(b"last")
            with trio.fail_after(5):
                while not closes:
                    await trio.sleep(0.01)
        # Every send that started, cancelled or not, whole and in order.
        assert received == queued
        assert closes[0].code == 1000

    run(body)


def test_a_send_waiting_for_a_fragmented_message_can_be_cancelled_without_effect() -> None:
    async def body() -> None:
        gate = trio.Event()

        async def fragments() -> AsyncIterator[str]:
            yield "a"
            await gate.wait()
            yield "b"

        async with serve(_echo) as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.send, fragments())
                await trio.sleep(0.05)
                with trio.move_on_after(0.05) as scope:
                    await ws.send("whole")  # waits for the fragmented message
                assert scope.cancelled_caught
                gate.set()
            await ws.send("next")
            assert await ws.recv() == "ab"
            assert await ws.recv() == "next"  # the cancelled send sent nothing

    run(body)


def test_a_whole_message_sent_during_a_fragmented_one_waits_for_its_end() -> None:
    async def body() -> None:
        gate = trio.Event()

        async def fragments() -> AsyncIterator[bytes]:
            yield b"1"
            await gate.wait()
            yield b"2"

        async with serve(_echo) as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.send, fragments())
                await trio.sleep(0.02)
                nursery.start_soon(ws.send, b"whole")
                await trio.sleep(0.02)
                gate.set()
            assert await ws.recv() == b"12"
            assert await ws.recv() == b"whole"

    run(body)


@pytest.mark.parametrize("source", ["async", "sync"])
def test_send_cancelled_between_fragments_fails_the_connection_with_1011(source: str) -> None:
    async def body() -> None:
        release = trio.Event()
        received: list[str | bytes] = []
        closes: list[Closed] = []

        async def async_fragments() -> AsyncIterator[str]:
            yield "first"
            await trio.sleep_forever()
            yield "never"  # pragma: no cover

        class Fragments:
            """A sync iterable whose second fragment never comes in time:
            the send waits on back-pressure after the first one."""

            def __iter__(self) -> Fragments:
                return self

            def __next__(self) -> bytes:
                return b"x" * 1_000_000

        async with raw_server(blocking_peer(release, received, closes)) as port:
            async with connect(f"ws://127.0.0.1:{port}/", write_limit=1024, compression=None) as ws:
                with trio.move_on_after(0.2) as scope:
                    await ws.send(async_fragments() if source == "async" else Fragments())
                assert scope.cancelled_caught
                assert ws.state is State.CLOSED
                release.set()
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
                assert caught.value.code == 1011
            with trio.fail_after(5):
                while not closes:
                    await trio.sleep(0.01)
        assert received == []  # the peer never saw a complete message
        # The sync source blocked a write of its 1 MB fragment: a peer that
        # does not read gets no Close frame, only the end of the stream.
        assert closes[0].code == (1011 if source == "async" else 1006)

    run(body)


def test_a_failing_fragment_source_fails_the_connection_and_propagates() -> None:
    async def body() -> None:
        async def fragments() -> AsyncIterator[str]:
            yield "a"
            raise LookupError("source failed")

        async with serve(_hold) as server, connect(f"ws://127.0.0.1:{server.port}/") as ws:
            with pytest.raises(LookupError):
                await ws.send(fragments())
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.code == 1011

    run(body)


# ---------------------------------------------------------------- ping and close


def test_a_cancelled_ping_wait_can_be_retried() -> None:
    async def delayed_pong(stream: trio.SocketStream) -> None:
        conn, _ = await handshake(stream, ping_interval=None)
        while True:
            data = await stream.receive_some(65536)
            events = conn.receive_data(data)
            if any(isinstance(event, Ping) for event in events):
                await trio.sleep(0.2)  # then the core's automatic Pong goes out
            await stream.send_all(conn.data_to_send())
            if not data or conn.should_close_transport:
                return

    async def body() -> None:
        async with raw_server(delayed_pong) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
            waiter = await ws.ping()
            with trio.move_on_after(0.02) as scope:
                await waiter.wait()
            assert scope.cancelled_caught
            assert not waiter.done()
            latency = await waiter.wait()
            assert 0.15 < latency < 5
            assert ws.latency == latency

    run(body)


def test_a_cancelled_close_aborts_the_transport() -> None:
    # One rule in every driver: a close() whose wait is cancelled aborts.
    async def slow_close(stream: trio.SocketStream) -> None:
        conn, _ = await handshake(stream)
        data = await stream.receive_some(65536)
        assert isinstance(conn.receive_data(data)[-1], Closed)
        await trio.sleep(0.3)
        await stream.send_all(conn.data_to_send())  # the Close reply, too late

    async def body() -> None:
        async with raw_server(slow_close) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
            with trio.move_on_after(0.05) as scope:
                await ws.close(4000, "bye")
            assert scope.cancelled_caught
            assert ws.state is State.CLOSED
            with trio.fail_after(1):
                await ws.wait_closed()
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv()
            assert not caught.value.clean
            assert caught.value.code == 1006  # aborted before the peer answered

    run(body)


def test_close_returns_at_close_timeout_when_the_peer_never_answers() -> None:
    async def body() -> None:
        start = trio.current_time()
        async with raw_server(silent_after_handshake) as port:
            async with connect(f"ws://127.0.0.1:{port}/", close_timeout=3) as ws:
                pass
            assert trio.current_time() - start == pytest.approx(3, abs=0.01)
        assert ws.close_code == 1006

    run(body, autojump=True)


# ---------------------------------------------------------------- connect


async def answer_redirect_to(target_port: int, stream: trio.SocketStream) -> None:
    await stream.receive_some(65536)
    await stream.send_all(
        f"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:{target_port}/\r\n"
        "Content-Length: 0\r\n\r\n".encode()
    )
    await trio.sleep_forever()


@pytest.mark.parametrize("step", ["tcp", "tls", "http", "redirect"])
def test_connect_cancelled_at_each_step_leaves_no_socket_or_task(
    step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if step == "tcp":
        # Loopback connects at once: stand in for DNS or a SYN that gets no
        # answer with an open_tcp_stream that never returns.
        async def unanswered(host: str, port: int) -> trio.SocketStream:
            await trio.sleep_forever()
            raise AssertionError("unreachable")  # pragma: no cover

        monkeypatch.setattr(trio, "open_tcp_stream", unanswered)

    async def body() -> None:
        before_tasks = trio_peers.tasks()
        before_sockets = trio_peers.sockets()
        async with raw_server(silent) as silent_port:

            async def redirect(stream: trio.SocketStream) -> None:
                await answer_redirect_to(silent_port, stream)

            async with raw_server(redirect) as redirect_port:
                url = {
                    "tcp": f"ws://127.0.0.1:{silent_port}/",
                    "tls": f"wss://127.0.0.1:{silent_port}/",  # the server never speaks TLS
                    "http": f"ws://127.0.0.1:{silent_port}/",  # nor HTTP
                    "redirect": f"ws://127.0.0.1:{redirect_port}/",  # to the silent one
                }[step]
                started = time.monotonic()
                with trio.move_on_after(0.2) as scope:
                    async with connect(url, open_timeout=30):
                        raise AssertionError("connected")  # pragma: no cover
                assert scope.cancelled_caught
                assert time.monotonic() - started < 2
        # Nothing of the client is left: only the raw servers had tasks.
        assert trio_peers.tasks() == before_tasks
        assert trio_peers.sockets() == before_sockets

    run(body)


def test_connect_to_a_silent_server_ends_with_open_timeout_at_the_deadline() -> None:
    async def body() -> None:
        async with raw_server(silent) as port:
            start = trio.current_time()
            with pytest.raises(OpenTimeout):
                async with connect(f"ws://127.0.0.1:{port}/", open_timeout=7):
                    pass  # pragma: no cover
            assert trio.current_time() - start == pytest.approx(7, abs=0.01)

    run(body, autojump=True)


def test_the_open_timeout_is_one_budget_across_redirects() -> None:
    async def body() -> None:
        async with raw_server(silent) as silent_port:

            async def slow_redirect(stream: trio.SocketStream) -> None:
                await trio.sleep(4)
                await answer_redirect_to(silent_port, stream)

            async with raw_server(slow_redirect) as port:
                start = trio.current_time()
                with pytest.raises(OpenTimeout):
                    async with connect(f"ws://127.0.0.1:{port}/", open_timeout=10):
                        pass  # pragma: no cover
                assert trio.current_time() - start == pytest.approx(10, abs=0.01)

    run(body, autojump=True)


# ---------------------------------------------------------------- timers


def test_a_peer_that_never_answers_pings_is_failed_with_1011_at_ping_timeout() -> None:
    async def no_pongs(stream: trio.SocketStream) -> None:
        await handshake(stream)
        while await stream.receive_some(65536):  # read, never answer
            pass

    async def body() -> None:
        async with raw_server(no_pongs) as port:
            start = trio.current_time()
            async with connect(f"ws://127.0.0.1:{port}/", ping_interval=5, ping_timeout=3) as ws:
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.recv()
                assert trio.current_time() - start == pytest.approx(8, abs=0.01)
            assert caught.value.code == 1011

    run(body, autojump=True)


def test_keepalive_pings_measure_the_latency() -> None:
    async def body() -> None:
        async with (
            serve(_hold, ping_interval=None) as server,
            connect(f"ws://127.0.0.1:{server.port}/", ping_interval=0.05) as ws,
        ):
            with trio.fail_after(5):
                while ws.latency == 0:
                    await trio.sleep(0.01)
            assert 0 < ws.latency < 1

    run(body)


# ---------------------------------------------------------------- concurrency


def test_concurrent_recv_calls_each_take_one_of_the_messages_that_arrive_together() -> None:
    async def two_at_once(stream: trio.SocketStream) -> None:
        conn, _ = await handshake(stream)
        conn.send_text("a")
        conn.send_text("b")
        await stream.send_all(conn.data_to_send())  # in one write
        await read_events(stream, conn)

    async def body() -> None:
        received: list[str | bytes] = []

        async def receive(ws: Connection) -> None:
            received.append(await ws.recv())

        async with raw_server(two_at_once) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
            with trio.fail_after(5):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(receive, ws)
                    nursery.start_soon(receive, ws)
        assert sorted(received) == ["a", "b"]

    run(body)


def test_a_clean_close_lets_a_large_write_in_progress_finish() -> None:
    # The client sends its Close while the server is still writing a large
    # message the client reads slowly: the server's Close reply comes after
    # the message, and the close is clean on both sides.
    size = 8 << 20

    async def handler(ws: Connection) -> None:
        await ws.send(b"\x07" * size)
        await _hold(ws)

    async def body() -> None:
        async with serve(handler, close_timeout=30) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                conn = ClientConnection(f"ws://127.0.0.1:{server.port}/", max_message_size=None)
                await stream.send_all(conn.data_to_send())
                events = conn.receive_data(await stream.receive_some(65536))
                conn.close(1000)
                await stream.send_all(conn.data_to_send())
                await trio.sleep(0.3)  # the server's write is blocked meanwhile
                while True:
                    data = await stream.receive_some(65536)
                    events.extend(conn.receive_data(data))
                    if not data:
                        break
        messages = [event.data for event in events if isinstance(event, Message)]
        closed = events[-1]
        assert isinstance(closed, Closed)
        assert (closed.code, closed.clean) == (1000, True)
        assert messages == [b"\x07" * size]

    run(body)


def test_a_fragmented_send_cancelled_at_any_moment_sends_all_nothing_or_fails_with_1011() -> None:
    rng = random.Random(7692)
    outcomes: set[str] = set()

    async def fragments() -> AsyncIterator[str]:
        for piece in ("frag", "ment", "ed"):
            await trio.sleep(0.002)
            yield piece

    async def body() -> None:
        async with serve(_echo) as server:
            for _ in range(30):
                async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                    with trio.move_on_after(rng.uniform(0, 0.01)) as scope:
                        await ws.send(fragments())
                    if not scope.cancelled_caught:
                        outcomes.add("sent")
                        assert await ws.recv() == "fragmented"
                    elif ws.state is State.OPEN:
                        outcomes.add("nothing")  # cancelled before the first fragment
                        await ws.send("probe")
                        assert await ws.recv() == "probe"
                    else:
                        outcomes.add("failed")
                        with pytest.raises(ConnectionClosedError) as caught:
                            await ws.recv()
                        assert caught.value.code == 1011
        # The random timings reached at least two of the three outcomes.
        assert len(outcomes) >= 2

    run(body)
