"""The sync driver's guarantee: no wait without a way out.

``close()`` or ``abort()`` from another thread ends a blocked call, and Ctrl+C
(a real SIGINT, in a subprocess) raises KeyboardInterrupt out of every
blocking point; afterwards the socket is closed and no sansws thread is
left. Timings are generous upper bounds: the budget (50 ms) is measured by
benchmarks, not asserted here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import peers
import pytest
from sansws.drivers.sync import ConnectionClosedError, ConnectionClosedOK, connect, serve

from sansws import State

BOUND = 1.0  # seconds; the promise is 50 ms


def _hold_server() -> peers.RawServer:
    return peers.RawServer(peers.handshake_then(peers.drain_until_eof))


def _in_thread(func: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(func())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name="test-blocked-call")
    thread.start()
    return thread, outcome


def _ended_within(thread: threading.Thread, started: float, bound: float) -> float:
    thread.join(bound + 5)
    assert not thread.is_alive()
    elapsed = time.monotonic() - started
    assert elapsed < bound
    return elapsed


def test_abort_from_another_thread_ends_a_blocked_recv() -> None:
    with _hold_server() as server, connect(server.url) as ws:
        thread, outcome = _in_thread(ws.recv)
        time.sleep(0.2)
        started = time.monotonic()
        ws.abort()
        _ended_within(thread, started, BOUND)
    assert isinstance(outcome[0], ConnectionClosedError)
    assert outcome[0].code == 1006


def test_close_from_another_thread_ends_a_blocked_recv_with_the_close() -> None:
    def echo(ws: object) -> None:
        for message in ws:  # type: ignore[attr-defined]
            ws.send(message)  # type: ignore[attr-defined]

    with serve(echo) as server:
        runner = threading.Thread(target=server.serve_forever, name="test-server")
        runner.start()
        with connect(f"ws://127.0.0.1:{server.port}/") as ws:
            thread, outcome = _in_thread(ws.recv)
            time.sleep(0.2)
            started = time.monotonic()
            ws.close(1000, "from another thread")
            _ended_within(thread, started, BOUND)
        server.shutdown()
        runner.join()
    assert isinstance(outcome[0], ConnectionClosedOK)
    assert ws.close_code == 1000


def test_abort_from_another_thread_ends_a_send_blocked_by_back_pressure() -> None:
    def not_reading(sock: socket.socket, server: peers.RawServer) -> None:
        server.stopped(20)

    with (
        peers.RawServer(peers.handshake_then(not_reading), rcvbuf=65536) as server,
        connect(server.url, write_limit=65536) as ws,
    ):

        def flood() -> None:
            for _ in range(1000):
                ws.send(b"\x00" * 65536)

        thread, outcome = _in_thread(flood)
        time.sleep(0.5)
        assert thread.is_alive()
        started = time.monotonic()
        ws.abort()
        _ended_within(thread, started, BOUND)
    assert isinstance(outcome[0], ConnectionClosedError)


def test_what_one_thread_leaves_unwritten_is_written_while_another_waits_in_recv() -> None:
    # The receiving thread polls with nothing to write; the sending thread's
    # last message does not fit in the socket at once. Without a wake-up it
    # would stay unwritten until a read or a timer (none: no keepalive).
    arrived = threading.Event()

    def handler(ws: Any) -> None:
        arrived.wait(10)  # the client's socket buffers fill up meanwhile
        for message in ws:
            if message == "END":
                ws.send("done")
                return

    with serve(handler, ping_interval=None, max_message_size=None) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with connect(f"ws://127.0.0.1:{server.port}/", ping_interval=None) as ws:
            ws._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            receiver, outcome = _in_thread(lambda: ws.recv(timeout=10))
            time.sleep(0.2)  # the receiver is in poll, with nothing to write
            for _ in range(5000):  # until the socket does not take a message
                ws.send(b"x" * 1024)
                if ws._out_size:
                    break
            ws.send("END")
            assert ws._out_size, "the socket took everything: nothing to prove"
            arrived.set()
            receiver.join(15)
            assert outcome == ["done"]
        server.shutdown()


def test_abort_from_another_thread_ends_a_ping_wait() -> None:
    with _hold_server() as server, connect(server.url) as ws:
        waiter = ws.ping()
        thread, outcome = _in_thread(waiter.wait)
        time.sleep(0.2)
        started = time.monotonic()
        ws.abort()
        _ended_within(thread, started, BOUND)
    assert isinstance(outcome[0], ConnectionClosedError)


def test_the_client_starts_no_thread_by_default() -> None:
    with _hold_server() as server, connect(server.url, close_timeout=0.5) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.1)
        ws.ping()
        assert not [t for t in threading.enumerate() if t.name.startswith("sansws")]


def test_keepalive_thread_answers_pings_while_the_application_is_busy() -> None:
    def ping_and_wait(sock: socket.socket, server: peers.RawServer) -> None:
        sock.sendall(peers.frame(0x9, b"are you there"))
        server.state["answer"] = sock.recv(64)
        peers.drain_until_eof(sock, server)

    with peers.RawServer(peers.handshake_then(ping_and_wait)) as server:
        with connect(server.url, keepalive_thread=True, close_timeout=0.5) as ws:
            deadline = time.monotonic() + 5
            while "answer" not in server.state and time.monotonic() < deadline:
                time.sleep(0.01)  # the application does not call into ws
            assert [t.name for t in threading.enumerate() if t.name.startswith("sansws")]
        assert ws.state is State.CLOSED
        # Pong (0xA), unfragmented, masked by the client, same payload length.
        assert server.state["answer"][:2] == bytes([0x8A, 0x80 | len(b"are you there")])
    assert not [t for t in threading.enumerate() if t.name.startswith("sansws")]


# ---------------------------------------------------------------- Ctrl+C

CHILD = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from sansws.drivers.sync import connect

    def sockets():
        fds = os.listdir("/proc/self/fd")
        return sum(os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
                   for fd in fds if os.path.exists(f"/proc/self/fd/{fd}"))

    scenario, url, catch = sys.argv[1], sys.argv[2], sys.argv[3] == "catch"
    options = dict(open_timeout=60, close_timeout=60, ping_interval=None,
                   write_limit=65536, keepalive_thread=scenario == "keepalive")
    before = sockets()
    try:
        if scenario == "connect":
            print("READY", flush=True)
            connect(url, **options)
        else:
            with connect(url, **options) as ws:
                print("READY", flush=True)
                if scenario in ("recv", "keepalive"):
                    ws.recv()
                elif scenario == "send":
                    for _ in range(10000):
                        ws.send(b"x" * 65536)
                elif scenario == "close":
                    ws.close()
                elif scenario == "ping":
                    ws.ping().wait()
        print("NOT INTERRUPTED", flush=True)
    except KeyboardInterrupt:
        if not catch:
            raise
        threads = [t.name for t in threading.enumerate() if t.name.startswith("sansws")]
        print(json.dumps({"threads": threads, "leaked": sockets() - before}), flush=True)
        sys.exit(42)
    """
)


def _interrupt(scenario: str, url: str, *, catch: bool = True) -> tuple[float, int, str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, scenario, url, "catch" if catch else "raise"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        time.sleep(0.5)  # well inside the blocking call
        assert child.poll() is None
        started = time.monotonic()
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return elapsed, child.returncode, out + err


def _silent_close(sock: socket.socket, server: peers.RawServer) -> None:
    peers.drain_until_eof(sock, server)


SCENARIOS = {
    # A server that accepts TCP and never answers the handshake.
    "connect": peers.silent,
    # An open connection on which nothing arrives.
    "recv": peers.handshake_then(peers.drain_until_eof),
    "keepalive": peers.handshake_then(peers.drain_until_eof),
    # A peer that never reads: send blocks under back-pressure.
    "send": peers.handshake_then(lambda sock, server: server.stopped(20)),
    # A peer that never answers the Close frame.
    "close": peers.handshake_then(_silent_close),
    # A peer that never answers the Ping.
    "ping": peers.handshake_then(_silent_close),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_ctrl_c_ends_every_blocking_call_at_once_and_leaves_nothing_behind(
    scenario: str,
) -> None:
    with peers.RawServer(SCENARIOS[scenario], rcvbuf=65536) as server:
        elapsed, status, output = _interrupt(scenario, server.url)
    assert status == 42, output
    report = json.loads(output.strip().splitlines()[-1])
    assert report == {"threads": [], "leaked": 0}
    # The child also has to start up its exit path; the wait itself ends in
    # well under 50 ms.
    assert elapsed < 2 * BOUND, output


def test_an_uncaught_ctrl_c_exits_with_the_sigint_status() -> None:
    with peers.RawServer(SCENARIOS["recv"]) as server:
        elapsed, status, output = _interrupt("recv", server.url, catch=False)
    assert status == -signal.SIGINT, output
    assert "KeyboardInterrupt" in output
    assert elapsed < 2 * BOUND
