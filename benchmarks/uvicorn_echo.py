#!/usr/bin/env python3
"""An ASGI echo under uvicorn with each of its WebSocket protocols (wsproto,
websockets' sans-I/O layer, sansws), in one run.

uvicorn serves a minimal ASGI application that echoes every message; the
same client (sansws's asyncio driver) measures, for each protocol:

* round trips per second for 64 B binary messages, one at a time;
* MB/s for 1 MiB binary messages, echoed the same way (1 MB = 10^6 bytes of
  message, counted once per round trip);
* handshakes per second: connect, opening handshake, close handshake, on a
  new TCP connection each time;
* the server's CPU time (user and system, from /proc/<pid>/stat) per 64 B
  round trip and per handshake, in microseconds: what the protocol costs,
  whatever the scheduling of two processes on a shared machine does to the
  rates.

Server and client run in separate processes. Compression is off, the message
size limit is 2 MiB, uvicorn's HTTP protocol is its default ("auto") and
every other option is uvicorn's default. Each figure is the best of
``--repeat`` rounds (the lowest, for CPU time); within a round the protocols
take turns. The last row gives sansws's ratio to the better of the other two
on each figure (above 1.0x: sansws does better; for CPU time, their
microseconds over sansws's).

Run ``python benchmarks/uvicorn_echo.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import version
from typing import Any

from sansws.drivers.asyncio import connect

import uvicorn

PROTOCOLS = {
    "wsproto": "uvicorn.protocols.websockets.wsproto_impl:WSProtocol",
    "websockets-sansio": (
        "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol"
    ),
    "sansws": "sansws.drivers.uvicorn:WebSocketProtocol",
}
OURS = "sansws"
MESSAGES = {"64 B": 64, "1 MiB": 1 << 20}
FIGURES = ("64 B", "1 MiB", "handshakes", "64 B CPU", "handshake CPU")
UNITS = {
    "64 B": "round trips/s",
    "1 MiB": "MB/s",
    "handshakes": "/s",
    "64 B CPU": "us",
    "handshake CPU": "us",
}
LOWER_IS_BETTER = {"64 B CPU", "handshake CPU"}
MAX_SIZE = 2 << 20
STARTUP_TIMEOUT = 20.0

Results = dict[str, float]


# ======================================================== the server


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo every message of a WebSocket connection."""
    if scope["type"] != "websocket":
        return
    while True:
        event = await receive()
        kind = event["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            await send({**event, "type": "websocket.send"})
        else:
            return


def run_server(protocol: str) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        echo_app,
        ws=PROTOCOLS[protocol],
        lifespan="off",
        log_level="warning",
        ws_per_message_deflate=False,
        ws_max_size=MAX_SIZE,
    )
    server = uvicorn.Server(config)
    print(sock.getsockname()[1], flush=True)
    asyncio.run(server.serve(sockets=[sock]))


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        # The fields after the command name, which may hold spaces.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server_process(protocol: str) -> Iterator[tuple[int, int]]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", protocol],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the {protocol} server did not start: {process.communicate()[1]}")
        yield int(line), process.pid
    finally:
        process.kill()
        process.communicate()


# ======================================================== the client


async def echo(ws: Any, message: bytes, duration: float) -> tuple[int, float]:
    """Round trips of ``message`` for at least ``duration`` seconds."""
    count = 0
    start = time.perf_counter()
    while True:
        await ws.send(message)
        reply = await ws.recv()
        count += 1
        now = time.perf_counter()
        if now - start >= duration:
            if reply != message:
                raise AssertionError(f"the echo differs from the {len(message)} B message sent")
            return count, now - start


async def client(port: int, pid: int, duration: float) -> Results:
    url = f"ws://127.0.0.1:{port}/"
    options: dict[str, Any] = {"compression": None, "max_message_size": MAX_SIZE}
    results: Results = {}
    async with connect(url, **options) as ws:
        for name, size in MESSAGES.items():
            message = os.urandom(size)
            await echo(ws, message, duration / 10)  # warm-up
            cpu = cpu_seconds(pid)
            count, elapsed = await echo(ws, message, duration)
            rate = count / elapsed
            results[name] = rate * size / 1e6 if size >= 1 << 20 else rate
            results[f"{name} CPU"] = (cpu_seconds(pid) - cpu) / count * 1e6
    count = 0
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < duration or count == 0:
        async with connect(url, **options):
            count += 1
    results["handshakes"] = count / elapsed
    results["handshake CPU"] = (cpu_seconds(pid) - cpu) / count * 1e6
    return results


def measure(port: int, pid: int, duration: float) -> Results:
    command = [sys.executable, __file__, "--client", "--port", str(port), "--pid", str(pid)]
    command += ["--duration", str(duration)]
    timeout = STARTUP_TIMEOUT + 20 * duration
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"the client failed:\n{done.stderr}")
    results: Results = json.loads(done.stdout.splitlines()[-1])
    return results


# ======================================================== the report


def versions() -> str:
    names = ("sansws", "uvicorn", "wsproto", "websockets")
    packages = ", ".join(f"{name} {version(name)}" for name in names)
    return f"Python {platform.python_version()}, {packages}"


def table(results: dict[str, Results]) -> list[str]:
    """A protocol per row, then sansws's ratio to the faster of the others."""
    columns = [f"{figure} ({UNITS[figure]})" for figure in FIGURES]
    width = max(len(name) for name in (*results, "sansws / best other"))
    widths = [max(len(column), 10) for column in columns]
    header = " | ".join([" " * width, *(c.rjust(w) for c, w in zip(columns, widths, strict=True))])
    lines = [header, "-" * len(header)]
    for name, figures in results.items():
        cells = [f"{figures[f]:,.0f}".rjust(w) for f, w in zip(FIGURES, widths, strict=True)]
        lines.append(" | ".join([name.ljust(width), *cells]))
    lines.append("-" * len(header))
    others = [name for name in results if name != OURS]
    if OURS not in results or not others:
        return lines
    short = []
    cells = []
    for figure, column_width in zip(FIGURES, widths, strict=True):
        if figure in LOWER_IS_BETTER:
            best = min(others, key=lambda name: results[name][figure])
            ratio = results[best][figure] / max(results[OURS][figure], 1e-9)
        else:
            best = max(others, key=lambda name: results[name][figure])
            ratio = results[OURS][figure] / results[best][figure]
        mark = "!" if ratio < 1.0 else " "
        cells.append(f"{ratio:.2f}x{mark}".rjust(column_width))
        if ratio < 1.0:
            short.append(f"sansws below {best} on {figure}: {ratio:.2f}x")
    lines.append(" | ".join(["sansws / best other".ljust(width), *cells]))
    lines.append("")
    if short:
        lines.append("targets missed (! above):")
        lines.extend(f"  {line}" for line in short)
    else:
        lines.append("targets: sansws at least matches the faster of the others on every figure")
    return lines


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--protocols",
        default=",".join(PROTOCOLS),
        help=f"comma-separated, from {', '.join(PROTOCOLS)} (default: all)",
    )
    parser.add_argument(
        "--duration", type=float, default=1.0, help="seconds per figure and round (default 1)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best counts (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="tiny runs that check the script, not the speed"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        run_server(args.serve)
        return 0
    if args.client:
        print(json.dumps(asyncio.run(client(args.port, args.pid, args.duration))))
        return 0
    protocols = [name for name in args.protocols.split(",") if name]
    for name in protocols:
        if name not in PROTOCOLS:
            parser.error(f"unknown protocol {name!r}")
    duration, repeat = (0.02, 1) if args.quick else (args.duration, args.repeat)
    out(versions())
    if args.quick:
        out("--quick: figures are not meaningful")
    else:
        out(f"best of {repeat} rounds of {duration:g} s per figure; binary, no compression")
    results: dict[str, Results] = {name: {} for name in protocols}
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(server_process(name)) for name in protocols}
        for _ in range(repeat):
            for name in protocols:
                for figure, value in measure(*servers[name], duration).items():
                    best = min if figure in LOWER_IS_BETTER else max
                    results[name][figure] = best(value, results[name].get(figure, value))
    out("")
    for line in table(results):
        out(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
