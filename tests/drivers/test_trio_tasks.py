"""Structured concurrency: every task the trio driver starts lives in a
nursery owned by an ``async with`` block, and nothing of a connection (task
or socket) is left once its block is over, however it ends (normally, by an
exception, by cancellation, by abort, or by a server's shutdown)."""

from __future__ import annotations

import logging
import ssl

import pytest
import trio
import trio_peers
from sansws.drivers.trio import Connection, ConnectionClosedOK, connect, serve
from trio_peers import raw_server, run, silent_after_handshake

from sansws.connection import State


async def _hold(ws: Connection) -> None:
    async for _ in ws:
        pass


def _names(tasks: set[trio.lowlevel.Task]) -> list[str]:
    return sorted(task.name.rsplit(".", 1)[-1] for task in tasks)


def _sansws_tasks() -> set[trio.lowlevel.Task]:
    return {task for task in trio_peers.tasks() if task.name.startswith("sansws.")}


def test_a_client_runs_a_reader_and_a_writer_only_inside_its_block() -> None:
    async def body() -> None:
        async with raw_server(silent_after_handshake) as port:
            sockets = trio_peers.sockets()
            assert _sansws_tasks() == set()
            async with connect(f"ws://127.0.0.1:{port}/", close_timeout=0.1) as ws:
                await ws.send("x")
                # On a plain socket the reader also runs the timers.
                assert _names(_sansws_tasks()) == ["_read_loop", "_write_loop"]
            # At once, not eventually: the nursery waited for them.
            assert _sansws_tasks() == set()
            # The peer's side is open until it reads the end of the stream.
            assert trio_peers.sockets() == sockets + 1
            assert ws.state is State.CLOSED

    run(body)


def test_over_tls_the_timers_run_in_a_third_task(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    async def body() -> None:
        async with serve(_hold, ssl=tls_server_context) as server:
            before = trio_peers.tasks()
            async with connect(f"wss://127.0.0.1:{server.port}/", ssl=tls_client_context) as ws:
                await ws.send("x")
                with trio.fail_after(5):
                    while not server.connections:
                        await trio.sleep(0.01)
                # Both sides: reader, writer and timer each; and the handler.
                assert _names(trio_peers.tasks() - before) == sorted(
                    ["_handle"] + 2 * ["_read_loop", "_timer_loop", "_write_loop"]
                )
            with trio.fail_after(5):
                while trio_peers.tasks() != before:
                    await trio.sleep(0.01)

    run(body)


@pytest.mark.parametrize("ending", ["return", "exception", "cancel", "abort"])
def test_no_client_task_or_socket_outlives_the_block(ending: str) -> None:
    async def body() -> None:
        async with raw_server(silent_after_handshake) as port:
            sockets = trio_peers.sockets()
            start = trio.current_time()
            with trio.move_on_after(1 if ending == "cancel" else 30):
                try:
                    async with connect(f"ws://127.0.0.1:{port}/", close_timeout=2) as ws:
                        if ending == "exception":
                            raise LookupError("in the block")
                        if ending == "cancel":
                            await trio.sleep_forever()
                        if ending == "abort":
                            await ws.abort()
                except LookupError:
                    pass
            elapsed = trio.current_time() - start
            assert _sansws_tasks() == set()
            # The client's socket is closed (the peer may still hold its own).
            assert trio_peers.sockets() == sockets + 1
            if ending in ("return", "exception"):
                # The silent peer never answers the Close: close_timeout.
                assert elapsed == pytest.approx(2, abs=0.01)
            else:
                # Cancellation and abort do not wait for the peer.
                assert elapsed == pytest.approx(1 if ending == "cancel" else 0, abs=0.01)
            assert ws.close_code == 1006

    run(body, autojump=True)


def test_an_exception_in_the_block_propagates_unwrapped_and_closes_with_1011() -> None:
    async def body() -> None:
        async with serve(_hold) as server:
            with pytest.raises(LookupError):  # not an ExceptionGroup
                async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                    raise LookupError("in the block")
            assert ws.close_code == 1011

    run(body)


def test_connection_closed_from_recv_propagates_unwrapped() -> None:
    async def closer(ws: Connection) -> None:
        await ws.close(1001)

    async def body() -> None:
        async with serve(closer) as server:
            with pytest.raises(ConnectionClosedOK) as caught:
                async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                    await ws.recv()
            assert caught.value.code == 1001

    run(body)


def test_server_tasks_end_with_their_connections_and_at_shutdown() -> None:
    async def body() -> None:
        before = trio_peers.tasks()
        async with serve(_hold) as server:
            listening = trio_peers.tasks() - before
            assert _names(listening) == ["_accept_loop"]
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("x")
                with trio.fail_after(5):
                    while not server.connections:
                        await trio.sleep(0.01)
                # The client's reader and writer; the server's handler task
                # and its reader and writer.
                assert len(trio_peers.tasks() - before - listening) == 2 + 3
            with trio.fail_after(5):
                while trio_peers.tasks() - before != listening:
                    await trio.sleep(0.01)
            server.shutdown()
            await server.serve_forever()
            assert trio_peers.tasks() == before
        assert trio_peers.tasks() == before

    run(body)


def test_leaving_a_server_block_by_cancellation_cancels_handlers_that_never_return() -> None:
    async def forever(ws: Connection) -> None:
        await trio.sleep_forever()

    async def body() -> None:
        before = trio_peers.tasks()
        sockets = trio_peers.sockets()
        with trio.move_on_after(5) as scope:
            async with serve(forever) as server, connect(f"ws://127.0.0.1:{server.port}/"):
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert trio_peers.tasks() == before
        assert trio_peers.sockets() == sockets

    run(body, autojump=True)


def test_shutdown_closes_with_1001_and_serve_forever_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        async with serve(_hold) as server, trio.open_nursery() as nursery:
            nursery.start_soon(server.serve_forever)
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("hello")
                server.shutdown()
                server.shutdown()  # idempotent
                with pytest.raises(ConnectionClosedOK) as caught:
                    await ws.recv()
                assert caught.value.code == 1001
            # serve_forever returned: the nursery is done.
        with pytest.raises(OSError, match="connect"):
            async with connect(f"ws://127.0.0.1:{server.port}/"):
                pass  # pragma: no cover

    with caplog.at_level(logging.ERROR, logger="sansws.server"):
        run(body)
    assert caplog.records == []


def test_shutdown_drops_connections_still_in_their_opening_handshake() -> None:
    async def body() -> None:
        before = trio_peers.tasks()
        async with serve(_hold, open_timeout=60) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                await stream.send_all(b"GET / HTTP/1.1\r\n")  # and nothing more
                with trio.fail_after(5):
                    while len(trio_peers.tasks() - before) < 2:  # accept loop + handshake
                        await trio.sleep(0.01)
                server.shutdown()
                with trio.fail_after(5):  # not open_timeout
                    await server.serve_forever()
                    assert await stream.receive_some(100) == b""
        assert trio_peers.tasks() == before

    run(body)
