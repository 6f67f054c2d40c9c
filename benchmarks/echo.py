#!/usr/bin/env python3
"""Echo over loopback: each sansws driver next to websockets and aiohttp, in
one run, with server and client in separate processes.

For every implementation (a client and a server of the same library and I/O
model), the figures are:

* round trips per second for 64 B and 4 KiB binary messages: the client
  sends one message and waits for its echo, one at a time;
* MB/s for 1 MiB binary messages, echoed the same way (1 MB = 10^6 bytes
  of message, counted once per round trip);
* handshakes per second: connect, opening handshake, close handshake, on a
  new TCP connection each time;
* the server's memory per idle connection: its resident set size (VmRSS in
  /proc/<pid>/status) before and after a neutral client opened
  ``--idle`` WebSocket connections (1,000 by default) and left them idle.

Compression is off everywhere (permessage-deflate is not negotiated), the
message size limits are 2 MiB, and every other option is the library's
default. Each figure is the best of ``--repeat`` rounds; within a round the
implementations take turns, so a burst of load elsewhere hits them alike.

Run ``python benchmarks/echo.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Protocol

import aiohttp
import trio
import websockets.asyncio.client
import websockets.asyncio.server
import websockets.sync.client
import websockets.sync.server
import websockets.trio.client
import websockets.trio.server
from aiohttp import WSMsgType, web
from sansws.drivers import asyncio as sansws_asyncio
from sansws.drivers import sync as sansws_sync
from sansws.drivers import trio as sansws_trio

IMPLEMENTATIONS = (
    "sansws-sync",
    "websockets-sync",
    "sansws-asyncio",
    "websockets-asyncio",
    "sansws-trio",
    "websockets-trio",
    "aiohttp",
)
#: Each sansws driver and the websockets implementation it is held against.
PAIRS = (
    ("sansws-sync", "websockets-sync"),
    ("sansws-asyncio", "websockets-asyncio"),
    ("sansws-trio", "websockets-trio"),
)
#: Shown too, without a target: trio next to the most used asyncio library.
REFERENCE_PAIRS = (("sansws-trio", "websockets-asyncio"),)
MESSAGES = {"64 B": 64, "4 KiB": 4096, "1 MiB": 1 << 20}
FIGURES = ("64 B", "4 KiB", "1 MiB", "handshakes", "idle memory")
UNITS = {
    "64 B": "round trips/s",
    "4 KiB": "round trips/s",
    "1 MiB": "MB/s",
    "handshakes": "handshakes/s",
    "idle memory": "KiB/conn",
}
LOWER_IS_BETTER = frozenset({"idle memory"})
MAX_SIZE = 1 << 21
#: sansws' options: permessage-deflate off, as for the other libraries.
SANSWS_OPTIONS: dict[str, Any] = {"max_message_size": MAX_SIZE, "compression": None}
#: How long a process gets to start, and a neutral client's handshake.
STARTUP_TIMEOUT = 30.0

Results = dict[str, float]


@dataclass(frozen=True)
class Settings:
    implementations: tuple[str, ...]
    duration: float  # seconds each figure is measured for, per round
    repeat: int  # rounds; the best one counts
    idle: int  # idle connections for the memory figure
    settle: float  # seconds a server gets to settle before its memory is read
    quick: bool


# ======================================================== timing loops


class SyncSocket(Protocol):
    def send(self, message: bytes) -> None: ...
    def recv(self) -> Any: ...


class AsyncSocket(Protocol):
    async def send(self, message: bytes) -> None: ...
    async def recv(self) -> Any: ...


def _rate(name: str, count: int, elapsed: float) -> float:
    if name in MESSAGES and MESSAGES[name] >= 1 << 20:
        return count * MESSAGES[name] / elapsed / 1e6
    return count / elapsed


def _check(reply: object, message: bytes) -> None:
    if reply != message:
        raise AssertionError(f"the echo differs from the {len(message)} B message sent")


def sync_echo(ws: SyncSocket, message: bytes, duration: float) -> tuple[int, float]:
    """Round trips of ``message`` for at least ``duration`` seconds."""
    count = 0
    start = time.perf_counter()
    deadline = start + duration
    while True:
        ws.send(message)
        reply = ws.recv()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            _check(reply, message)
            return count, now - start


async def async_echo(ws: AsyncSocket, message: bytes, duration: float) -> tuple[int, float]:
    """:func:`sync_echo` for asyncio and trio connections alike."""
    count = 0
    start = time.perf_counter()
    deadline = start + duration
    while True:
        await ws.send(message)
        reply = await ws.recv()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            _check(reply, message)
            return count, now - start


def sync_client(
    connect: Callable[[str], AbstractContextManager[Any]], url: str, duration: float
) -> Results:
    results: Results = {}
    with connect(url) as ws:
        for name, size in MESSAGES.items():
            message = os.urandom(size)
            sync_echo(ws, message, duration / 10)  # warm-up
            count, elapsed = sync_echo(ws, message, duration)
            results[name] = _rate(name, count, elapsed)
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < duration or count == 0:
        with connect(url):
            count += 1
    results["handshakes"] = count / elapsed
    return results


async def async_client(
    connect: Callable[[str], AbstractAsyncContextManager[Any]], url: str, duration: float
) -> Results:
    results: Results = {}
    async with connect(url) as ws:
        for name, size in MESSAGES.items():
            message = os.urandom(size)
            await async_echo(ws, message, duration / 10)  # warm-up
            count, elapsed = await async_echo(ws, message, duration)
            results[name] = _rate(name, count, elapsed)
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < duration or count == 0:
        async with connect(url):
            count += 1
    results["handshakes"] = count / elapsed
    return results


# ======================================================== the libraries


def sansws_sync_connect(url: str) -> AbstractContextManager[Any]:
    return sansws_sync.connect(url, **SANSWS_OPTIONS)


def websockets_sync_connect(url: str) -> AbstractContextManager[Any]:
    return websockets.sync.client.connect(url, compression=None, max_size=MAX_SIZE)


def sansws_asyncio_connect(url: str) -> AbstractAsyncContextManager[Any]:
    return sansws_asyncio.connect(url, **SANSWS_OPTIONS)


def websockets_asyncio_connect(url: str) -> AbstractAsyncContextManager[Any]:
    return websockets.asyncio.client.connect(url, compression=None, max_size=MAX_SIZE)


def sansws_trio_connect(url: str) -> AbstractAsyncContextManager[Any]:
    return sansws_trio.connect(url, **SANSWS_OPTIONS)


def websockets_trio_connect(url: str) -> AbstractAsyncContextManager[Any]:
    return websockets.trio.client.connect(url, compression=None, max_size=MAX_SIZE)


async def aiohttp_client(url: str, duration: float) -> Results:
    results: Results = {}
    async with aiohttp.ClientSession() as session:

        async def echo(
            ws: aiohttp.ClientWebSocketResponse, message: bytes, duration: float
        ) -> tuple[int, float]:
            count = 0
            start = time.perf_counter()
            deadline = start + duration
            while True:
                await ws.send_bytes(message)
                reply = await ws.receive_bytes()
                count += 1
                now = time.perf_counter()
                if now >= deadline:
                    _check(reply, message)
                    return count, now - start

        async with session.ws_connect(url, max_msg_size=MAX_SIZE) as ws:
            for name, size in MESSAGES.items():
                message = os.urandom(size)
                await echo(ws, message, duration / 10)  # warm-up
                count, elapsed = await echo(ws, message, duration)
                results[name] = _rate(name, count, elapsed)
        count = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < duration or count == 0:
            async with session.ws_connect(url, max_msg_size=MAX_SIZE):
                count += 1
        results["handshakes"] = count / elapsed
    return results


def run_client(implementation: str, port: int, duration: float) -> Results:
    """Measure the message and handshake figures against a server of the
    same implementation listening on ``port``."""
    url = f"ws://127.0.0.1:{port}/"
    if implementation == "sansws-sync":
        return sync_client(sansws_sync_connect, url, duration)
    if implementation == "websockets-sync":
        return sync_client(websockets_sync_connect, url, duration)
    if implementation == "sansws-asyncio":
        return asyncio.run(async_client(sansws_asyncio_connect, url, duration))
    if implementation == "websockets-asyncio":
        return asyncio.run(async_client(websockets_asyncio_connect, url, duration))
    if implementation == "aiohttp":
        return asyncio.run(aiohttp_client(url, duration))
    if implementation == "sansws-trio":
        return trio.run(async_client, sansws_trio_connect, url, duration)
    if implementation == "websockets-trio":
        return trio.run(async_client, websockets_trio_connect, url, duration)
    raise ValueError(implementation)


def _announce(port: int | None) -> None:
    assert port is not None  # a TCP server's
    print(port, flush=True)


def run_server(implementation: str) -> None:
    """Serve echo on a free loopback port, print the port, run until killed."""
    if implementation == "sansws-sync":

        def sansws_sync_echo(ws: sansws_sync.Connection) -> None:
            for message in ws:
                ws.send(message)

        with sansws_sync.serve(sansws_sync_echo, **SANSWS_OPTIONS) as server:
            _announce(server.port)
            server.serve_forever()
    elif implementation == "websockets-sync":

        def websockets_sync_echo(ws: websockets.sync.server.ServerConnection) -> None:
            for message in ws:
                ws.send(message)

        with websockets.sync.server.serve(
            websockets_sync_echo, "127.0.0.1", 0, compression=None, max_size=MAX_SIZE
        ) as ws_server:
            _announce(ws_server.socket.getsockname()[1])
            ws_server.serve_forever()
    elif implementation in ("sansws-asyncio", "websockets-asyncio", "aiohttp"):
        asyncio.run(_asyncio_server(implementation))
    else:
        trio.run(_trio_server, implementation)


async def _echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def _asyncio_server(implementation: str) -> None:
    if implementation == "sansws-asyncio":
        async with sansws_asyncio.serve(_echo, **SANSWS_OPTIONS) as server:
            assert server.port is not None
            _announce(server.port)
            await server.serve_forever()
    elif implementation == "websockets-asyncio":
        async with websockets.asyncio.server.serve(
            _echo, "127.0.0.1", 0, compression=None, max_size=MAX_SIZE
        ) as ws_server:
            _announce(next(iter(ws_server.sockets)).getsockname()[1])
            await ws_server.serve_forever()
    else:

        async def handler(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(max_msg_size=MAX_SIZE)
            await ws.prepare(request)
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    await ws.send_str(msg.data)
            return ws

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, backlog=1024).start()
        _announce(sock.getsockname()[1])
        await asyncio.Event().wait()


async def _trio_server(implementation: str) -> None:
    if implementation == "sansws-trio":
        async with sansws_trio.serve(_echo, **SANSWS_OPTIONS) as server:
            _announce(server.port)
            await server.serve_forever()
    else:
        async with trio.open_nursery() as nursery:
            ws_server: websockets.trio.server.Server = await nursery.start(
                lambda task_status: websockets.trio.server.serve(
                    _echo,
                    0,
                    host="127.0.0.1",
                    compression=None,
                    max_size=MAX_SIZE,
                    task_status=task_status,
                )
            )
            _announce(ws_server.listeners[0].socket.getsockname()[1])
            await trio.sleep_forever()


# ======================================================== processes


def raise_fd_limit(needed: int) -> None:
    """Let this process, and the processes it starts, hold ``needed``
    descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"--idle needs {needed} file descriptors; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class ServerProcess:
    """A server of one implementation in its own process."""

    def __init__(self, implementation: str) -> None:
        self.implementation = implementation
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", implementation],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"{implementation} server did not start: {self.errors()}")
        self.port = int(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        """The server's resident set size, in KiB."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def errors(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def server_process(implementation: str) -> Iterator[ServerProcess]:
    server = ServerProcess(implementation)
    try:
        yield server
    finally:
        server.stop()


def measure_client(implementation: str, port: int, duration: float) -> Results:
    """Run the client of ``implementation`` in its own process."""
    command = [
        sys.executable,
        __file__,
        "--client",
        implementation,
        "--port",
        str(port),
        "--duration",
        str(duration),
    ]
    done = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT + 20 * duration,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{implementation} client failed:\n{done.stderr}")
    results: Results = json.loads(done.stdout.splitlines()[-1])
    return results


# ======================================================== idle connections

_REQUEST = (
    "GET / HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n"
)


@contextlib.asynccontextmanager
async def idle_connections(port: int, count: int) -> AsyncIterator[None]:
    """Hold ``count`` WebSocket connections to ``port`` open and idle for
    the duration of the block: a plain HTTP upgrade on asyncio streams, the
    same for every server, that then neither reads nor writes."""
    request = _REQUEST.format(port=port).encode()
    writers: list[asyncio.StreamWriter] = []
    # A bounded number of handshakes at once stays within every backlog.
    gate = asyncio.Semaphore(50)

    async def open_one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"handshake refused: {head!r}")

    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            await asyncio.gather(*(open_one() for _ in range(count)))
        yield
    finally:
        for writer in writers:
            writer.transport.abort()


def measure_idle_memory(implementation: str, count: int, settle: float) -> float:
    """KiB of server memory per idle connection, in a fresh server process."""

    async def measure(server: ServerProcess) -> float:
        # A first connection loads whatever the server imports lazily.
        async with idle_connections(server.port, 1):
            pass
        await asyncio.sleep(settle)
        before = server.rss_kib()
        async with idle_connections(server.port, count):
            # Let the server finish starting every handler.
            await asyncio.sleep(settle)
            after = server.rss_kib()
        return (after - before) / count

    with server_process(implementation) as server:
        return asyncio.run(measure(server))


# ======================================================== report


def versions() -> str:
    names = ("sansws", "websockets", "aiohttp", "trio")
    packages = ", ".join(f"{name} {version(name)}" for name in names)
    return f"Python {platform.python_version()}, {packages}"


def _format(figure: str, value: float) -> str:
    if figure == "idle memory":
        return f"{value:,.1f}"
    if figure == "1 MiB":
        return f"{value:,.0f}"
    return f"{value:,.0f}"


def table(results: dict[str, Results], implementations: Sequence[str]) -> list[str]:
    """The figures, an implementation per row, and each sansws driver's
    ratio to its websockets counterpart (above 1.0: sansws does better)."""
    columns = [f"{figure} ({UNITS[figure]})" for figure in FIGURES]
    width = len("sansws-asyncio / websockets-asyncio (ref.)")
    widths = [max(len(column), 10) for column in columns]
    lines = [" | ".join([" " * width, *(c.rjust(w) for c, w in zip(columns, widths, strict=True))])]
    lines.append("-" * len(lines[0]))
    for name in implementations:
        cells = [
            _format(f, results[name][f]).rjust(w) for f, w in zip(FIGURES, widths, strict=True)
        ]
        lines.append(" | ".join([name.ljust(width), *cells]))
    lines.append("-" * len(lines[0]))
    short: list[str] = []
    for ours, theirs in (*PAIRS, *REFERENCE_PAIRS):
        if ours not in results or theirs not in results:
            continue
        target = (ours, theirs) in PAIRS
        cells = []
        for figure, column_width in zip(FIGURES, widths, strict=True):
            ratio = ratio_of(figure, results[ours][figure], results[theirs][figure])
            mark = "!" if target and ratio < 1.0 else " "
            cells.append(f"{ratio:.2f}x{mark}".rjust(column_width))
            if mark == "!":
                short.append(f"{ours} below {theirs} on {figure}: {ratio:.2f}x")
        label = f"{ours} / {theirs}" + ("" if target else " (ref.)")
        lines.append(" | ".join([label.ljust(width), *cells]))
    lines.append("")
    lines.append(
        "ratios: above 1.0x, sansws does better (for memory: websockets' KiB over sansws')"
    )
    if short:
        lines.append("targets missed (! above):")
        lines.extend(f"  {line}" for line in short)
    else:
        lines.append("targets: every sansws driver at least matches websockets on every figure")
    return lines


def ratio_of(figure: str, ours: float, theirs: float) -> float:
    """Above 1.0 when ours is better: higher rates, lower memory."""
    if figure in LOWER_IS_BETTER:
        ours, theirs = theirs, ours
    if theirs <= 0:
        return float("inf")
    return ours / theirs


# ======================================================== entry points


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(
        description="Echo over loopback: sansws' drivers next to websockets and aiohttp."
    )
    parser.add_argument(
        "--implementations",
        default=",".join(IMPLEMENTATIONS),
        help=f"comma-separated, from {', '.join(IMPLEMENTATIONS)} (default: all)",
    )
    parser.add_argument(
        "--duration", type=float, default=1.0, help="seconds per figure and round (default 1)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best counts (default 3)")
    parser.add_argument(
        "--idle", type=int, default=1000, help="idle connections for the memory figure"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny runs that check the script, not the speed"
    )
    # The processes the benchmark starts.
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    implementations = tuple(name for name in args.implementations.split(",") if name)
    for name in implementations:
        if name not in IMPLEMENTATIONS:
            parser.error(f"unknown implementation {name!r}")
    if args.quick:
        settings = Settings(implementations, 0.02, 1, 20, 0.02, True)
    else:
        settings = Settings(implementations, args.duration, args.repeat, args.idle, 0.5, False)
    return args, settings


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    args, settings = parse_args(argv)
    if args.serve:
        run_server(args.serve)
        return 0
    if args.client:
        print(json.dumps(run_client(args.client, args.port, args.duration)))
        return 0
    raise_fd_limit(settings.idle + 256)
    out(versions())
    if settings.quick:
        out("--quick: figures are not meaningful")
    else:
        out(
            f"best of {settings.repeat} rounds of {settings.duration:g} s per figure; "
            f"memory with {settings.idle} idle connections; binary messages, no compression"
        )
    results: dict[str, Results] = {name: {} for name in settings.implementations}
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(server_process(name)) for name in settings.implementations
        }
        for _ in range(settings.repeat):
            for name in settings.implementations:
                figures = measure_client(name, servers[name].port, settings.duration)
                for figure, value in figures.items():
                    results[name][figure] = max(value, results[name].get(figure, 0.0))
    for name in settings.implementations:
        results[name]["idle memory"] = measure_idle_memory(name, settings.idle, settings.settle)
    out("")
    for line in table(results, settings.implementations):
        out(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
