"""Loopback servers and subprocess helpers for the command-line tests.

The servers run on one asyncio event loop in a background thread: a sansws
echo server whose paths answer with redirects, rejections and test messages,
a silent TCP server, a raw WebSocket server that answers late, and a TLS echo
server with a throwaway certificate. The command under test always runs in a
real subprocess (``sys.executable -m sansws``), with standard input from a
pipe, a file or a pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import pty
import select
import signal
import ssl
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pyte
import trustme
from sansws.drivers.asyncio import Connection, Response, Server, serve

from sansws.errors import ConnectionClosed
from sansws.events import Request

T = TypeVar("T")

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BINARY_PAYLOAD = bytes(range(48))
CONTROL_TEXT = "a\x1b[2Jb\nc\x07"


# ---------------------------------------------------------------------- servers


class Servers:
    """The loopback servers, on an event loop running in a thread.

    Attributes:
        echo: Port of the sansws echo server (paths in :meth:`_route`).
        silent: Port of a server that accepts TCP and never answers.
        late: Port of a raw server that sends a message after the client's
            Close frame, then its own Close.
        tls: Port of a sansws TLS echo server (certificate not trusted by
            default).
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cli-test-servers")
        self._lock = threading.Lock()
        self._closes: dict[str, list[int | None]] = {}
        self._silent_requests: list[bytes] = []
        self._servers: list[Server] = []
        self._raw_servers: list[asyncio.Server] = []
        self._raw_tasks: set[asyncio.Task[None]] = set()
        self.echo = self.silent = self.late = self.tls = 0

    def start(self) -> None:
        self._thread.start()
        self.call(self._start())

    def stop(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def call(self, coroutine: Awaitable[T], timeout: float = 10.0) -> T:
        """Run a coroutine on the servers' loop and return its result."""

        async def run() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def url(self, path: str = "/echo") -> str:
        return f"ws://127.0.0.1:{self.echo}{path}"

    # ------------------------------------------------------------------ what was seen

    def close_codes(self, path: str) -> list[int | None]:
        """Close codes of the connections to ``path`` whose handler ended."""
        with self._lock:
            return list(self._closes.get(path, []))

    def wait_close_code(self, path: str, timeout: float = 5.0) -> int | None:
        """The close code of the first connection to ``path`` to end."""
        codes = wait_for(
            lambda: self.close_codes(path), timeout, lambda: f"no connection to {path} ended"
        )
        return codes[0]

    def silent_requests(self) -> list[bytes]:
        with self._lock:
            return list(self._silent_requests)

    # ------------------------------------------------------------------ lifecycle

    async def _start(self) -> None:
        echo = await serve(self._handler, "127.0.0.1", 0, process_request=self._route)
        self._servers.append(echo)
        self.echo = _port(echo)
        silent = await asyncio.start_server(self._silent, "127.0.0.1", 0)
        late = await asyncio.start_server(self._late, "127.0.0.1", 0)
        self._raw_servers += [silent, late]
        self.silent, self.late = _port(silent), _port(late)
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        tls = await serve(self._handler, "127.0.0.1", 0, ssl=context)
        self._servers.append(tls)
        self.tls = _port(tls)

    async def _stop(self) -> None:
        for server in self._servers:
            await server.aclose()
        for raw in self._raw_servers:
            raw.close()
        for task in list(self._raw_tasks):
            task.cancel()
        await asyncio.gather(*self._raw_tasks, return_exceptions=True)
        for raw in self._raw_servers:
            await raw.wait_closed()

    # ------------------------------------------------------------------ the sansws server

    async def _route(self, ws: Connection, request: Request) -> Response | None:
        path = request.path
        if path == "/redirect":
            return Response(302, [("Location", "/echo")])
        if path == "/redirect-twice":
            return Response(301, [("Location", f"ws://localhost:{self.echo}/redirect")])
        if path == "/no-location":
            return Response(302)
        if path == "/missing":
            return Response(404, body=b"no such endpoint here\n")
        if path in ("/loop-a", "/loop-b"):
            return Response(302, [("Location", "/loop-b" if path == "/loop-a" else "/loop-a")])
        if path == "/to-silent":
            return Response(302, [("Location", f"ws://127.0.0.1:{self.silent}/")])
        return None

    async def _handler(self, ws: Connection) -> None:
        assert ws.request is not None
        path = ws.request.path
        try:
            if path == "/binary":
                await ws.send(BINARY_PAYLOAD)
                await ws.send(b"\x00\xff")
            elif path == "/controls":
                await ws.send(CONTROL_TEXT)
            elif path == "/headers":
                await ws.send(json.dumps(dict(ws.request.headers)))
            elif path == "/server-closes":
                await ws.send("bye")
                await ws.close(1000, "done")
            elif path == "/server-fails":
                await ws.close(1011, "oops")
            elif path.startswith("/tick"):
                await asyncio.sleep(0.5)
                await ws.send("tick")
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._closes.setdefault(path, []).append(ws.close_code)

    # ------------------------------------------------------------------ raw servers

    def _track(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._raw_tasks.add(task)
        task.add_done_callback(self._raw_tasks.discard)

    async def _silent(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept, read the request (or TLS ClientHello), never answer; hang
        up when the client does."""
        self._track()
        try:
            data = await reader.read(65536)
            if data:
                with self._lock:
                    self._silent_requests.append(data)
            while await reader.read(65536):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _late(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Complete the handshake, answer Pings, and once the client's Close
        arrives, wait, send one more message, then the Close reply, and hang
        up."""
        self._track()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(handshake_response(head))
            while True:
                opcode, payload = await read_client_frame(reader)
                if opcode == 0x9:
                    writer.write(server_frame(0xA, payload))
                elif opcode == 0x8:
                    break
            await asyncio.sleep(0.2)
            writer.write(server_frame(0x1, b"late reply"))
            writer.write(server_frame(0x8, struct.pack("!H", 1000)))
            await writer.drain()  # then the server closes the TCP connection first
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def _port(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


def handshake_response(head: bytes) -> bytes:
    """A 101 response to a client's opening handshake."""
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


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One masked client frame (payloads under 126 bytes only)."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    assert second & 0x80, "client frames are masked"
    assert length < 126
    mask = await reader.readexactly(4)
    payload = await reader.readexactly(length)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame (payloads under 126 bytes only)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


# ---------------------------------------------------------------------- subprocesses


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sansws", *args]


@dataclass
class Result:
    """A finished command: exit status, output, and how long it ran."""

    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def status_lines(self) -> list[str]:
        return self.stderr.splitlines()


def run_cli(*args: str, stdin: bytes | None = b"", timeout: float = 20.0) -> Result:
    """Run the command to completion with ``stdin`` piped in (``None``: no
    standard input at all)."""
    started = time.monotonic()
    completed = subprocess.run(
        cli_command(*args),
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return Result(
        completed.returncode,
        completed.stdout.decode(),
        completed.stderr.decode(),
        time.monotonic() - started,
    )


class Running:
    """A command running in the background with pipes on its standard
    streams; its output is collected by threads as it arrives."""

    def __init__(
        self, *args: str, stdin: Any = subprocess.PIPE, command: list[str] | None = None
    ) -> None:
        self.process = subprocess.Popen(
            command or cli_command(*args),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._stdout = bytearray()
        self._stderr = bytearray()
        self._readers = [
            threading.Thread(target=_collect, args=(self.process.stdout, self._stdout)),
            threading.Thread(target=_collect, args=(self.process.stderr, self._stderr)),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def stderr(self) -> str:
        return bytes(self._stderr).decode()

    def wait_for_stderr(self, text: str, timeout: float = 10.0) -> None:
        wait_for(lambda: text in self.stderr, timeout, lambda: f"{text!r} not in {self.stderr!r}")

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def wait(self, timeout: float = 10.0) -> Result:
        """Wait for the exit; ``elapsed`` is measured from this call."""
        started = time.monotonic()
        try:
            self.process.wait(timeout)
            elapsed = time.monotonic() - started
        finally:
            self.kill()
        return Result(self.process.returncode, bytes(self._stdout).decode(), self.stderr, elapsed)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdin is not None:
            self.process.stdin.close()
        for reader in self._readers:
            reader.join(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _collect(stream: Any, into: bytearray) -> None:
    while chunk := stream.read1(65536):
        into += chunk


# Starts the command as the session leader of a pseudo-terminal, so that
# Ctrl+C typed on it sends SIGINT as a real terminal would.
_LOGIN_TTY = (
    "import os, sys; os.login_tty(os.open(os.ttyname(0), os.O_RDWR)); "
    "os.execv(sys.executable, [sys.executable, '-m', 'sansws', *sys.argv[1:]])"
)


class Terminal:
    """The command running on a pseudo-terminal (standard input, output and
    error), 100 columns by 30 rows, typed into and read like a user would."""

    columns = 100
    rows = 30

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()
        with contextlib.suppress(OSError):
            fcntl.ioctl(
                slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.columns, 0, 0)
            )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _LOGIN_TTY, *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                close_fds=True,
            )
        finally:
            os.close(slave)
        self.output = bytearray()

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def read_until(self, text: str, timeout: float = 10.0) -> None:
        """Read the terminal's output until ``text`` appears in it."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                raise AssertionError(f"{text!r} not in {bytes(self.output)!r}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the command exited and the terminal closed
            return False
        self.output += chunk
        return bool(chunk)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the exit, reading what remains of the output."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        while self._read(0.05):
            pass
        try:
            return self.process.wait(max(deadline - time.monotonic(), 0.1))
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)

    def screen(self) -> list[str]:
        """The screen as a VT100 terminal shows the output, line by line."""
        screen = pyte.Screen(self.columns, self.rows)
        stream = pyte.ByteStream(screen)
        stream.feed(bytes(self.output))
        return [line.rstrip() for line in screen.display]


# ---------------------------------------------------------------------- waiting


def wait_for(
    condition: Callable[[], T],
    timeout: float = 5.0,
    message: Callable[[], str] = lambda: "condition not met",
) -> T:
    """Poll ``condition`` every 10 ms until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.01)


@contextlib.contextmanager
def running(
    *args: str, stdin: Any = subprocess.PIPE, command: list[str] | None = None
) -> Iterator[Running]:
    """``python -m sansws *args`` (or ``command``) in the background."""
    process = Running(*args, stdin=stdin, command=command)
    try:
        yield process
    finally:
        process.kill()
