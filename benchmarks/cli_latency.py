"""How fast Ctrl+C ends the command-line client, in every phase.

Runs ``python -m sansws`` as a real subprocess against loopback servers that
hold it in one phase -- resolving a host name, connecting, the TLS
handshake, the opening handshake, following a redirect, connected and idle,
closing -- sends it SIGINT once it is there, and measures the time until the
process has exited. The budget is 100 ms. websockets' command-line client
(``python -m websockets``) runs the same cases in the same run, for
reference, cut off after a few seconds.

Usage::

    python benchmarks/cli_latency.py [--runs 5] [--no-reference]

How each phase is held (all on 127.0.0.1):

* resolving: ``socket.getaddrinfo`` is made to block for a minute for the
  host ``slow.invalid`` (a resolver that does not answer);
* connecting: a listening socket whose accept queue is full drops the SYN;
* TLS and the opening handshake: a server that accepts and never answers;
* redirect: a 302 to that silent server;
* connected: an echo server, standard input open and idle;
* closing: standard input ends, and the server answers Pings but never the
  Close frame;
* embedded: ``python -m sansws`` without a URL, connected and idle.

Linux only (it reads /proc/net/tcp to see the connect in progress).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sansws.drivers.asyncio import Connection, serve

BUDGET_MS = 100.0
REFERENCE_CUTOFF = 3.0
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Runs a command-line client with getaddrinfo("slow.invalid") blocking.
WRAPPER = """\
import os, socket, sys, time
real_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host == "slow.invalid":
        os.write(2, b"[resolving]\\n")
        time.sleep(60)
        host = "127.0.0.1"
    return real_getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
tool = sys.argv.pop(1)
if tool == "sansws":
    from sansws.cli import run  # what python -m sansws runs
    run()
from websockets.cli import main  # what python -m websockets runs
main()
"""


# ---------------------------------------------------------------------- servers


class Servers:
    """The loopback servers, on an event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.lock = threading.Lock()
        self.silent_requests = 0  # connections that sent something to the silent server
        self.close_frames = 0  # Close frames the deaf server received
        self.closers: list[asyncio.Server] = []
        self.fillers: list[socket.socket] = []

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self._fill_backlog()

    async def _start(self) -> None:
        silent = await asyncio.start_server(self._silent, "127.0.0.1", 0)
        redirect = await asyncio.start_server(self._redirect, "127.0.0.1", 0)
        deaf = await asyncio.start_server(self._deaf, "127.0.0.1", 0)
        self.closers += [silent, redirect, deaf]
        self.echo_server = await serve(_echo, "127.0.0.1", 0)
        self.silent, self.redirect, self.deaf = (port(s) for s in (silent, redirect, deaf))
        self.echo = self.echo_server.port

    def _fill_backlog(self) -> None:
        """A listener that drops SYNs: listen(0) and a full accept queue."""
        self.blackhole = socket.socket()
        self.blackhole.bind(("127.0.0.1", 0))
        self.blackhole.listen(0)
        self.blocked = self.blackhole.getsockname()[1]
        for _ in range(8):
            filler = socket.socket()
            filler.settimeout(0.3)
            try:
                filler.connect(("127.0.0.1", self.blocked))
            except OSError:
                filler.close()
                return  # this connect hung: the queue is full
            self.fillers.append(filler)
        raise RuntimeError("could not fill the accept queue; the 'connecting' case would not hold")

    def stop(self) -> None:
        for sock in [*self.fillers, self.blackhole]:
            sock.close()

        async def stop() -> None:
            await self.echo_server.aclose()
            for server in self.closers:
                server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _silent(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            first = await reader.read(1)
            if first:
                with self.lock:
                    self.silent_requests += 1
                while await reader.read(65536):
                    pass
        writer.close()

    async def _redirect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                f"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:{self.silent}/\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )
            await writer.drain()
        writer.close()

    async def _deaf(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accepts the handshake, answers Pings, never answers the Close."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(handshake_response(head))
            while True:
                first, second = await reader.readexactly(2)
                length = second & 0x7F
                if length == 126:
                    length = int.from_bytes(await reader.readexactly(2), "big")
                elif length == 127:
                    length = int.from_bytes(await reader.readexactly(8), "big")
                mask = await reader.readexactly(4)
                payload = bytes(
                    b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length))
                )
                opcode = first & 0x0F
                if opcode == 0x9 and length < 126:
                    writer.write(bytes([0x8A, length]) + payload)
                elif opcode == 0x8:
                    with self.lock:
                        self.close_frames += 1
                    while await reader.read(65536):
                        pass
                    break
        writer.close()


async def _echo(ws: Connection) -> None:
    with contextlib.suppress(Exception):
        async for message in ws:
            await ws.send(message)


def port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def handshake_response(head: bytes) -> bytes:
    key = ""
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()


def syn_sent_to(target_port: int) -> bool:
    """Whether a TCP connect to 127.0.0.1:target_port is in progress."""
    wanted = f"0100007F:{target_port:04X}"
    with open("/proc/net/tcp") as table:
        next(table)
        return any(
            fields[2] == wanted and fields[3] == "02" for fields in (line.split() for line in table)
        )


# ---------------------------------------------------------------------- cases


class Client:
    """A command-line client in a subprocess, its output collected."""

    def __init__(self, tool: str, args: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, tool, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.output = bytearray()
        self.readers = [
            threading.Thread(target=self._collect, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self.readers:
            reader.start()

    def _collect(self, stream: object) -> None:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            self.output += chunk

    def says(self, text: str) -> bool:
        return text.encode() in self.output

    def interrupt_and_time(self, cutoff: float) -> tuple[float | None, int | None]:
        """Send SIGINT; return (seconds until the exit, exit status), or
        (None, None) if it had not exited after ``cutoff`` seconds."""
        pidfd = os.pidfd_open(self.process.pid)
        try:
            started = time.perf_counter()
            self.process.send_signal(signal.SIGINT)
            ready, _, _ = select.select([pidfd], [], [], cutoff)
            elapsed = time.perf_counter() - started
        finally:
            os.close(pidfd)
        if not ready:
            return None, None
        return elapsed, self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        for reader in self.readers:
            reader.join(5)


@dataclass
class Case:
    name: str
    args: Callable[[Servers], list[str]]
    ready: Callable[[Servers, Client, int], bool]
    end_input: bool = False
    reference: bool = True


def silent_got_more(servers: Servers, client: Client, before: int) -> bool:
    return servers.silent_requests > before


CASES = [
    Case(
        "resolving (DNS stuck)",
        lambda s: [f"ws://slow.invalid:{s.echo}/"],
        lambda s, c, _: c.says("[resolving]"),
    ),
    Case(
        "connecting (SYN dropped)",
        lambda s: [f"ws://127.0.0.1:{s.blocked}/"],
        lambda s, c, _: syn_sent_to(s.blocked),
    ),
    Case("TLS handshake", lambda s: [f"wss://127.0.0.1:{s.silent}/"], silent_got_more),
    Case("opening handshake", lambda s: [f"ws://127.0.0.1:{s.silent}/"], silent_got_more),
    Case("following a redirect", lambda s: [f"ws://127.0.0.1:{s.redirect}/"], silent_got_more),
    Case(
        "connected, idle",
        lambda s: [f"ws://127.0.0.1:{s.echo}/"],
        lambda s, c, _: c.says("Connected to"),
    ),
    Case(
        "closing (no Close reply)",
        lambda s: [f"ws://127.0.0.1:{s.deaf}/"],
        lambda s, c, before: s.close_frames > before,
        end_input=True,
    ),
    Case(
        "embedded echo server, idle",
        lambda s: [],
        lambda s, c, _: c.says("Connected to"),
        reference=False,
    ),
]


def counter(servers: Servers, case: Case) -> int:
    with servers.lock:
        return servers.close_frames if case.end_input else servers.silent_requests


def measure(
    servers: Servers, case: Case, tool: str, cutoff: float
) -> tuple[float | None, int | None]:
    before = counter(servers, case)
    client = Client(tool, case.args(servers))
    try:
        if case.end_input:
            wait_until(lambda: client.says("Connected to"), client)
            assert client.process.stdin is not None
            client.process.stdin.close()
        wait_until(lambda: case.ready(servers, client, before), client)
        time.sleep(0.05)  # settle into the phase
        return client.interrupt_and_time(cutoff)
    finally:
        client.close()


def wait_until(condition: Callable[[], bool], client: Client, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or client.process.poll() is not None:
            raise RuntimeError(f"the client never got there: {bytes(client.output)!r}")
        time.sleep(0.002)


def summary(results: list[tuple[float | None, int | None]], cutoff: float) -> str:
    times = [t * 1000 for t, _ in results if t is not None]
    statuses = sorted({str(code) for _, code in results if code is not None})
    hung = len(results) - len(times)
    text = (
        f"{min(times):6.1f} {statistics.median(times):6.1f} {max(times):6.1f}"
        if times
        else " " * 20
    )
    if hung:
        text += f"  {hung} > {cutoff * 1000:.0f} (killed)"
    return f"{text}  exit {','.join(statuses) or '-'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    reference = not args.no_reference and importlib.util.find_spec("websockets") is not None
    servers = Servers()
    servers.start()
    worst = 0.0
    try:
        print(f"SIGINT-to-exit latency in ms over {args.runs} runs (min median max); budget 100")
        header = f"{'phase':<28} {'sansws':<32}"
        if reference:
            header += f" websockets {importlib.metadata.version('websockets')} CLI"
        print(header)
        for case in CASES:
            ours = [measure(servers, case, "sansws", 5.0) for _ in range(args.runs)]
            worst = max([worst, *(t for t, _ in ours if t is not None)], default=worst)
            if any(t is None for t, _ in ours):
                worst = float("inf")
            line = f"{case.name:<28} {summary(ours, 5.0):<32}"
            if reference and case.reference:
                theirs = [
                    measure(servers, case, "websockets", REFERENCE_CUTOFF) for _ in range(args.runs)
                ]
                line += f" {summary(theirs, REFERENCE_CUTOFF)}"
            print(line, flush=True)
    finally:
        servers.stop()
    verdict = "within" if worst * 1000 < BUDGET_MS else "OVER"
    print(f"worst sansws case: {worst * 1000:.1f} ms, {verdict} the {BUDGET_MS:.0f} ms budget")


if __name__ == "__main__":
    main()
