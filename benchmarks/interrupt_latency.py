"""How fast the sync driver's blocking calls end when interrupted.

The sync driver promises that no wait lacks a way out: ``close()`` or
``abort()`` from another thread wakes a call blocked in another thread, and
Ctrl+C (SIGINT) in the main thread surfaces from any blocking point, each
within 50 ms. The tests assert generous upper bounds only; this script
measures the latencies and prints them against the budget.

Usage::

    python benchmarks/interrupt_latency.py [--runs 5] [--quick]

Two kinds of case, all on 127.0.0.1:

* **from another thread**, in this process: a call blocks in one thread and
  another thread calls ``close()`` or ``abort()``; measured from that call to
  the blocked call returning or raising.
* **SIGINT**, in a subprocess blocked in the main thread: the parent sends
  SIGINT and the child writes the time at which KeyboardInterrupt reached its
  ``except`` clause. Both read ``time.monotonic()``, which on Linux is one
  clock for every process, so the figure excludes the interpreter's start
  and exit.

The peers hold the client at each blocking point: a server that accepts and
never answers (connect), a sansws echo server (recv, close), a server that
completes the handshake and then neither reads nor writes (send under
back-pressure, an unanswered ping, a close never answered).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO

from sansws.drivers.sync import Connection, ConnectionClosed, connect, serve

BUDGET_MS = 50.0
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# ------------------------------------------------------------------ peers


@contextlib.contextmanager
def raw_server(after_handshake: bool) -> Iterator[int]:
    """A server that accepts and never answers (``after_handshake`` False),
    or completes the handshake and then never reads nor writes."""
    listener = socket.create_server(("127.0.0.1", 0))
    # A small receive buffer, so that a client's sends block soon.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stop = threading.Event()
    held: list[socket.socket] = []

    def run() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(sock)
            if after_handshake:
                sock.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += sock.recv(4096)
                key = next(
                    line.split(b":", 1)[1].strip()
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")
                )
                accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
                sock.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for sock in held:
            sock.close()


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    def echo(ws: Connection) -> None:
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        assert server.port is not None  # a TCP server's
        try:
            yield server.port
        finally:
            server.shutdown()
            thread.join(10)


# ------------------------------------------------------------------ from another thread


def blocked_call(name: str, ws: Connection) -> Callable[[], object]:
    if name == "recv":
        return ws.recv
    if name == "send":
        chunk = b"\x00" * 65536

        def flood() -> None:
            while True:
                ws.send(chunk)

        return flood
    if name == "ping":
        return lambda: ws.ping().wait()
    raise ValueError(name)


def thread_case(call: str, action: str, peer: str) -> float:
    """Block ``call`` in a thread, then ``action`` from this one; ms."""
    server = echo_server() if peer == "echo" else raw_server(after_handshake=True)
    with (
        server as port,
        connect(
            f"ws://127.0.0.1:{port}/", compression=None, ping_interval=None, close_timeout=5.0
        ) as ws,
    ):
        ended = threading.Event()
        ended_at = [0.0]

        def run() -> None:
            with contextlib.suppress(ConnectionClosed):
                blocked_call(call, ws)()
            ended_at[0] = time.monotonic()
            ended.set()

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(0.3)  # blocked by now (send: the buffers are full)
        assert not ended.is_set(), f"{call} did not block"
        started = time.monotonic()
        getattr(ws, action)()
        if not ended.wait(10):
            raise RuntimeError(f"{call} still blocked 10 s after {action}()")
        worker.join()
        return (ended_at[0] - started) * 1000


THREAD_CASES = [
    ("close() from another thread, recv() blocked", "recv", "close", "echo"),
    ("abort() from another thread, recv() blocked", "recv", "abort", "echo"),
    ("abort() from another thread, send() under back-pressure", "send", "abort", "mute"),
    ("abort() from another thread, ping().wait() unanswered", "ping", "abort", "mute"),
]

# ------------------------------------------------------------------ SIGINT

CHILD = """
import sys, time
from sansws.drivers.sync import connect

scenario, url = sys.argv[1], sys.argv[2]
options = dict(compression=None, ping_interval=None, close_timeout=30, open_timeout=60)

def ready():
    print("READY", flush=True)

try:
    if scenario == "connect":
        ready()
        connect(url, **options)
    else:
        ws = connect(url, **options)
        ready()
        if scenario == "recv":
            ws.recv()
        elif scenario == "send":
            while True:
                ws.send(b"\\0" * 65536)
        elif scenario == "ping":
            ws.ping().wait()
        elif scenario == "close":
            ws.close()
except KeyboardInterrupt:
    print("INTERRUPTED", time.monotonic(), flush=True)
"""

SIGNAL_CASES = [
    ("SIGINT in connect(), server silent", "connect", "silent"),
    ("SIGINT in recv(), connection idle", "recv", "echo"),
    ("SIGINT in send() under back-pressure", "send", "mute"),
    ("SIGINT in ping().wait(), unanswered", "ping", "mute"),
    ("SIGINT in close(), Close never answered", "close", "mute"),
]


def read_line(stream: IO[str], deadline: float) -> str:
    while time.monotonic() < deadline:
        line = stream.readline()
        if line:
            return line.strip()
    raise RuntimeError("the child said nothing")


def signal_case(scenario: str, peer: str) -> float:
    """SIGINT to a child blocked in ``scenario``; ms to its except clause."""
    server = echo_server() if peer == "echo" else raw_server(after_handshake=peer == "mute")
    with (
        server as port,
        subprocess.Popen(
            [sys.executable, "-c", CHILD, scenario, f"ws://127.0.0.1:{port}/"],
            stdout=subprocess.PIPE,
            text=True,
        ) as child,
    ):
        assert child.stdout is not None
        try:
            deadline = time.monotonic() + 20
            assert read_line(child.stdout, deadline) == "READY"
            time.sleep(0.3)  # blocked by now
            sent = time.monotonic()
            os.kill(child.pid, signal.SIGINT)
            word, at = read_line(child.stdout, deadline).split()
            assert word == "INTERRUPTED"
            child.wait(20)
            return (float(at) - sent) * 1000
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


# ------------------------------------------------------------------ report


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per case (default 5)")
    parser.add_argument("--quick", action="store_true", help="one run, a few cases")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else args.runs
    thread_cases = THREAD_CASES[1:2] if args.quick else THREAD_CASES
    signal_cases = SIGNAL_CASES[1:2] if args.quick else SIGNAL_CASES

    out(f"sync driver: latency in ms over {runs} run(s) (min median max); budget {BUDGET_MS:g}")
    worst = 0.0
    rows: list[tuple[str, list[float]]] = []
    for label, call, action, peer in thread_cases:
        rows.append((label, [thread_case(call, action, peer) for _ in range(runs)]))
    for label, scenario, peer in signal_cases:
        rows.append((label, [signal_case(scenario, peer) for _ in range(runs)]))
    width = max(len(label) for label, _ in rows)
    for label, values in rows:
        worst = max(worst, *values)
        out(
            f"{label:<{width}}  {min(values):7.2f} {statistics.median(values):7.2f} "
            f"{max(values):7.2f}"
        )
    verdict = "within" if worst <= BUDGET_MS else "OVER"
    out(f"worst case: {worst:.2f} ms, {verdict} the {BUDGET_MS:g} ms budget")
    return 0 if worst <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
