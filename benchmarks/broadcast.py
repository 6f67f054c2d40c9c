#!/usr/bin/env python3
"""One message to many idle asyncio connections: sansws' ``broadcast()``
beside websockets' ``broadcast()``, in one run.

For each library a server process holds N idle connections (compression
off) opened by a client process, which reads everything. The server is
told to broadcast one 64 B binary message; the figures, for N = 1,000 and
10,000 by default:

* **until the last has it**: from the ``broadcast()`` call in the server to
  the moment the client process has received the whole frame on every one
  of the N sockets (both processes read the same system-wide monotonic
  clock), in milliseconds;
* **in broadcast()**: how long the call itself takes, in milliseconds;
* **server CPU per recipient**: the server's CPU time (user and system)
  from just before the call until every client had the message, divided
  by N, in microseconds.

The client is the same raw-socket client for both servers (a selector over
N sockets, no WebSocket library), so it costs both the same. Each figure
is the best of ``--repeat`` broadcasts. The last rows give sansws' ratio
to websockets (above 1.0x: sansws is faster).

Run ``python benchmarks/broadcast.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import IO, Any

LIBRARIES = ("sansws", "websockets")
MESSAGE = b"\x2a" * 64
FRAME_SIZE = 2 + len(MESSAGE)  # a server's frame: no mask, 7-bit length
FIGURES = ("until the last has it", "in broadcast()", "server CPU per recipient")
UNITS = {"until the last has it": "ms", "in broadcast()": "ms", "server CPU per recipient": "us"}
TIMEOUT = 120.0


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# ======================================================== the server


async def _serve(library: str) -> None:
    """A server that prints its port, then obeys commands on stdin:
    ``count`` (open connections), ``go`` (broadcast; prints when it was
    called, how long it took and the CPU time before), ``cpu`` (the CPU
    time now)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    if library == "sansws":
        from sansws.drivers.asyncio import broadcast, serve  # noqa: PLC0415

        async def hold(ws: Any) -> None:
            async for _ in ws:
                pass

        server: Any = await serve(hold, "127.0.0.1", 0, compression=None, backlog=4096)
        port = server.port

        def connections() -> Any:
            return server.connections

        def send() -> None:
            broadcast(server.connections, MESSAGE)
    else:
        from websockets.asyncio.server import broadcast as ws_broadcast  # noqa: PLC0415
        from websockets.asyncio.server import serve as ws_serve  # noqa: PLC0415

        async def ws_hold(ws: Any) -> None:
            await ws.wait_closed()

        server = await ws_serve(ws_hold, "127.0.0.1", 0, compression=None, backlog=4096)
        port = server.sockets[0].getsockname()[1]

        def connections() -> Any:
            return server.connections

        def send() -> None:
            ws_broadcast(server.connections, MESSAGE)

    print(json.dumps({"port": port}), flush=True)
    while line := (await reader.readline()).decode().strip():
        if line == "count":
            answer: dict[str, Any] = {"count": len(connections())}
        elif line == "go":
            cpu = time.process_time()
            started = time.monotonic()
            send()
            answer = {"started": started, "took": time.monotonic() - started, "cpu": cpu}
        else:
            answer = {"cpu": time.process_time()}
        print(json.dumps(answer), flush=True)


# ======================================================== the client


def _client(port: int, count: int) -> None:
    """Open ``count`` connections, print ``opened``; then, for each line on
    stdin, wait until every socket received one more frame and print when
    the last one had it."""
    selector = selectors.DefaultSelector()
    sockets = [_handshake(port) for _ in range(count)]
    received = dict.fromkeys(sockets, 0)
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    print(json.dumps({"opened": count}), flush=True)
    expected = 0
    for _ in sys.stdin:
        expected += FRAME_SIZE
        waiting = {sock for sock in sockets if received[sock] < expected}
        last = 0.0
        deadline = time.monotonic() + TIMEOUT
        while waiting and time.monotonic() < deadline:
            for key, _ in selector.select(1.0):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                sock = ready
                received[sock] += len(sock.recv(65536))
                if sock in waiting and received[sock] >= expected:
                    waiting.discard(sock)
                    last = time.monotonic()
        print(json.dumps({"last": last, "missing": len(waiting)}), flush=True)


def _handshake(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # not a byte past the response
        if not chunk:
            raise ConnectionError("the server closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.decode("latin-1").splitlines()[0])
    return sock


# ======================================================== running it


class _Process:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, line: str | None = None) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        if line is not None:
            stdin.write(line + "\n")
            stdin.flush()
        answer = stdout.readline()
        if not answer:
            raise RuntimeError(f"{self.process.args!r} exited with {self.process.wait()}")
        result: dict[str, Any] = json.loads(answer)
        return result

    def close(self) -> None:
        stdin: IO[str] | None = self.process.stdin
        if stdin is not None:
            stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def measure(library: str, count: int, repeat: int) -> dict[str, float]:
    """The best figures of ``repeat`` broadcasts to ``count`` connections."""
    server = _Process("--serve", library)
    client = None
    try:
        port = server.ask()["port"]
        client = _Process("--client", str(port), str(count))
        client.ask()  # opened
        deadline = time.monotonic() + TIMEOUT
        while server.ask("count")["count"] < count:  # accepted, handshakes done
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not accept every connection")
            time.sleep(0.05)
        best = dict.fromkeys(FIGURES, float("inf"))
        for _ in range(repeat):
            sent = server.ask("go")
            assert client.process.stdin is not None
            arrived = client.ask("wait")
            cpu = server.ask("cpu")["cpu"] - sent["cpu"]
            if arrived["missing"]:
                raise RuntimeError(f"{arrived['missing']} connections never got the message")
            figures = {
                "until the last has it": (arrived["last"] - sent["started"]) * 1e3,
                "in broadcast()": sent["took"] * 1e3,
                "server CPU per recipient": cpu / count * 1e6,
            }
            best = {name: min(best[name], figures[name]) for name in FIGURES}
            time.sleep(0.2)  # the next broadcast starts from idle
        return best
    finally:
        if client is not None:
            client.close()
        server.close()


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = print) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--counts", default="1000,10000", help="connections, comma-separated (default: 1000,10000)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="broadcasts; the best counts")
    parser.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _raise_file_limit()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    if args.client:
        _client(*args.client)
        return 0
    counts = [20] if args.quick else [int(n) for n in args.counts.split(",")]
    repeat = 1 if args.quick else args.repeat
    versions = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
    out(f"{platform.python_implementation()} {platform.python_version()}, {versions}")
    out(f"one {len(MESSAGE)} B binary message, compression off; best of {repeat} broadcasts")
    out("")
    results = {(lib, n): measure(lib, n, repeat) for n in counts for lib in LIBRARIES}
    header = f"{'':<22}" + "".join(f" | {f} ({UNITS[f]})" for f in FIGURES)
    out(header)
    out("-" * len(header))
    for n in counts:
        for library in LIBRARIES:
            cells = "".join(
                f" | {results[library, n][f]:>{len(f) + len(UNITS[f]) + 3}.3f}" for f in FIGURES
            )
            out(f"{library + f' x {n:,}':<22}{cells}")
        speed_ups = [results["websockets", n][f] / results["sansws", n][f] for f in FIGURES]
        ratios = "".join(
            f" | {ratio:>{len(f) + len(UNITS[f]) + 2}.2f}x"
            for f, ratio in zip(FIGURES, speed_ups, strict=True)
        )
        out(f"{f'sansws speed-up x {n:,}':<22}{ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
