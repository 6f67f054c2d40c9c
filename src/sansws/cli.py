"""The ``sansws`` command: an interactive WebSocket client and an echo server.

::

    python -m sansws ws://HOST:PORT/PATH    talk to a WebSocket server
    python -m sansws serve                  run an echo server on 127.0.0.1:8765
    python -m sansws                        both: an echo server in this process,
                                            and a client talking to it

The client runs on the asyncio driver, and everything it waits for is waited
for by the event loop in the main thread:

* standard input is read by the loop: :meth:`asyncio.loop.connect_read_pipe`
  for terminals, pipes and sockets (a terminal through a file description of
  its own, so that the non-blocking mode the loop needs does not leak to
  standard output or to the shell afterwards); a regular file or
  ``/dev/null``, which the loop cannot watch but which never makes a read
  wait, is read directly, a chunk per loop iteration; only where neither
  works (Windows consoles and pipes) does a daemon thread read it;
* Ctrl+C reaches the loop through :meth:`asyncio.loop.add_signal_handler`;
* host names are resolved in daemon threads, because ``getaddrinfo`` cannot
  be interrupted: the exit never waits for a lookup stuck in the resolver.

So Ctrl+C takes effect at once in every phase -- resolving, connecting, TLS,
the opening handshake, following a redirect, connected, closing -- and no
thread is ever joined. The first Ctrl+C cancels the command: a connected
client closes with 1001 (going away), waits at most :data:`INTERRUPT_GRACE`
for the server's answer, and exits with :data:`EXIT_INTERRUPTED`; a second
Ctrl+C aborts the connection at once.

Received messages go to standard output, one per line; status lines
(``Connected to ...``, ``Connection closed: ...``) and errors go to standard
error. When standard input and output are a terminal, each line is inserted
above the line being typed, which stays intact.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import logging
import math
import os
import re
import selectors
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, Protocol, TextIO

from ._version import __version__
from .errors import ConnectionClosed, InvalidStatus, RedirectError, WebSocketError
from .events import Request
from .frames import close_code_name
from .session import ClientSession
from .uri import parse_uri

if TYPE_CHECKING:
    # mypy checks the drivers as the top-level package ``drivers`` (pyproject
    # installs that directory as ``sansws.drivers``).
    from drivers import asyncio as asyncio_driver
    from drivers import sync as sync_driver
else:
    from .drivers import asyncio as asyncio_driver
    from .drivers import sync as sync_driver

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "HEX_PREVIEW_BYTES",
    "INTERRUPT_GRACE",
    "REPLY_QUIET",
    "REPLY_WAIT",
    "Console",
    "describe_binary",
    "describe_close",
    "escape_controls",
    "format_message",
    "insert_above_input",
    "main",
    "parse_input_line",
    "run",
]

#: Exit status: the connection closed normally (1000, 1001 or no status), or
#: the server stopped after Ctrl+C.
EXIT_OK = 0
#: Exit status: the connection could not be opened, or closed with an error.
EXIT_FAILURE = 1
#: Exit status: invalid command-line arguments.
EXIT_USAGE = 2
#: Exit status after Ctrl+C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

#: Seconds the client waits for the server to answer its 1001 Close frame
#: after Ctrl+C before aborting the connection, so that the command exits
#: within 100 ms of Ctrl+C in every case.
INTERRUPT_GRACE = 0.05

#: At the end of input, the client waits for the Pong showing that the
#: server received every message, then until no message arrived for
#: :data:`REPLY_QUIET` seconds, at most :data:`REPLY_WAIT` seconds in all,
#: before closing (see :func:`_let_replies_arrive`).
REPLY_WAIT = 2.0
REPLY_QUIET = 0.1

#: Bytes of a binary message shown in hexadecimal before ``...``.
HEX_PREVIEW_BYTES = 32

PROMPT = "> "

_CLEAN_CLOSE_CODES = frozenset({1000, 1001, 1005})

# Received lines buffered before reading a pipe pauses, and resumes.
_INPUT_HIGH_WATER = 64
_INPUT_LOW_WATER = 16
_READ_SIZE = 65536

_EXAMPLES = """\
examples:
  %(prog)s                                  talk to an echo server started in this process
  %(prog)s ws://127.0.0.1:8765/             type lines to send them; Ctrl+D closes
  echo hello | %(prog)s ws://127.0.0.1:8765/
                                            send one message, print the reply, close
  %(prog)s --header 'Authorization: Bearer abc' --subprotocol chat wss://example.com/chat
  printf '00ff10\\n' | %(prog)s --binary ws://127.0.0.1:8765/
                                            send the bytes 00 ff 10 as a binary message
  %(prog)s --json -q ws://127.0.0.1:8765/ < script.txt > replies.jsonl
  %(prog)s serve --port 9000 --driver trio  an echo server on 127.0.0.1:9000

output:
  Received text is printed as "< text", with control characters escaped
  (\\n, \\x1b, ...); binary as "< (binary, N bytes) 68 65 6c ..." (the first
  32 bytes). With --json, one object per message on standard output:
  {"type": "text", "data": "..."} or {"type": "binary", "data": "<hex>"}.
  Status lines and errors go to standard error.

exit status:
  0    the connection closed normally (1000, 1001 or no status code)
  1    the connection could not be opened, or it closed with an error
  2    invalid arguments
  130  interrupted by Ctrl+C (a connected client first closes with 1001;
       a second Ctrl+C aborts at once)
"""


# ---------------------------------------------------------------------- formatting


_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    r"""Escape terminal control characters (C0, DEL and C1) in ``text``, so that
    a message cannot move the cursor, change colours or rewrite the screen:
    ``"a\x1b[2Jb"`` becomes ``"a\\x1b[2Jb"``, a newline ``\\n``."""
    return _CONTROL_CHARACTERS.sub(_escape_control, text)


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED_ESCAPES.get(char) or f"\\x{ord(char):02x}"


def describe_binary(data: bytes) -> str:
    """``(binary, N bytes)`` followed by the first :data:`HEX_PREVIEW_BYTES`
    bytes in hexadecimal, and ``...`` if there are more."""
    size = f"{len(data)} byte" if len(data) == 1 else f"{len(data)} bytes"
    preview = data[:HEX_PREVIEW_BYTES].hex(" ")
    if len(data) > HEX_PREVIEW_BYTES:
        preview += " ..."
    return f"(binary, {size}) {preview}".rstrip()


def format_message(message: str | bytes, *, as_json: bool = False) -> str:
    """The line printed for a received message: ``< text`` or
    ``< (binary, ...)``; with ``as_json``, a JSON object with ``type``
    (``"text"`` or ``"binary"``) and ``data`` (the text, or all the bytes in
    hexadecimal)."""
    if as_json:
        if isinstance(message, str):
            return json.dumps({"type": "text", "data": message})
        return json.dumps({"type": "binary", "data": message.hex()})
    if isinstance(message, str):
        return f"< {escape_controls(message)}"
    return f"< {describe_binary(message)}"


def describe_close(code: int | None, reason: str | None) -> str:
    """``Connection closed: CODE (NAME) reason.``, the client's last line."""
    if code is None:
        return "Connection closed."
    return f"Connection closed: {_close_status(code, reason)}."


def _close_status(code: int, reason: str | None) -> str:
    text = f"{code} ({close_code_name(code)})"
    return f"{text} {escape_controls(reason)}" if reason else text


def parse_input_line(line: bytes, *, binary: bool = False) -> str | bytes:
    """The message to send for a line of input (without its line ending):
    the line as text (invalid UTF-8 replaced by U+FFFD), or with ``binary``
    the bytes its hexadecimal digits spell (whitespace between them is
    allowed).

    Raises:
        ValueError: With ``binary``, the line is not hexadecimal.
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    if binary:
        return bytes.fromhex(line.decode("ascii"))
    return line.decode("utf-8", "replace")


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: 2 for wide East Asian characters, 0
    for combining marks, 1 for the rest."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def insert_above_input(line: str, columns: int) -> str:
    """Terminal output that prints ``line`` above the line the user is
    typing, leaving that line and the cursor as they were.

    The cursor is saved, enough lines are made room for below it (scrolling
    the screen if the input line is at the bottom), blank lines are inserted
    at the input line, pushing it down, ``line`` is written into them, and
    the cursor is restored and moved down with the input line. Every step is
    a VT100 sequence: DECSC/DECRC (``ESC 7``/``ESC 8``), CUU, CUD and IL.
    """
    rows = max(1, -(-display_width(line) // max(columns, 1)))
    return (
        "\x1b7"
        + "\n" * rows
        + f"\x1b[{rows}A"
        + f"\x1b[{rows}L"
        + "\r"
        + line
        + "\x1b8"
        + f"\x1b[{rows}B"
    )


# ---------------------------------------------------------------------- output


class Console:
    """Where the command's lines go: received messages to ``out``, status
    lines and errors to ``err``.

    With ``prompt`` (standard input and output are a terminal), the client
    shows a ``> `` prompt while it reads input, and every line written to a
    terminal meanwhile is inserted above the line being typed. If ``out`` is
    a pipe whose reader went away, output stops and :attr:`output_closed`
    turns true.

    Args:
        out: Received messages.
        err: Status lines and errors.
        quiet: Drop status lines (errors are still written).
        prompt: Show a prompt and keep the typed line intact.
    """

    def __init__(
        self, out: TextIO, err: TextIO, *, quiet: bool = False, prompt: bool = False
    ) -> None:
        self._out = out
        self._err = err
        self._quiet = quiet
        self._prompt = prompt
        self._prompting = False
        self._terminals = {id(stream) for stream in (out, err) if _isatty(stream)}
        self._broken: set[int] = set()
        # The sync server's handlers write from their own threads.
        self._lock = threading.Lock()
        #: Put before every status line and error (a worker's "[worker 2] ").
        self.prefix = ""

    @classmethod
    def for_stdio(cls, *, quiet: bool = False) -> Console:
        """A console on ``sys.stdout`` and ``sys.stderr``, prompting if
        standard input and output are both terminals."""
        prompt = _isatty(sys.stdin) and _isatty(sys.stdout)
        return cls(sys.stdout, sys.stderr, quiet=quiet, prompt=prompt)

    @property
    def interactive(self) -> bool:
        """Whether the user types at a terminal (the console prompts)."""
        return self._prompt

    @property
    def output_closed(self) -> bool:
        """Whether standard output's reader went away (a closed pipe)."""
        return id(self._out) in self._broken

    def message(self, line: str) -> None:
        """Write a received message's line."""
        self._write(self._out, line)

    def status(self, line: str) -> None:
        """Write a status line, unless quiet."""
        if not self._quiet:
            self._write(self._err, self.prefix + line)

    def error(self, line: str) -> None:
        """Write an error or warning."""
        self._write(self._err, self.prefix + line)

    def prompt(self) -> None:
        """Show the prompt, when prompting, before reading a line."""
        if not self._prompt:
            return
        with self._lock:
            self._prompting = True
            self._raw_write(self._out, PROMPT)

    def end_prompt(self) -> None:
        """Erase the prompt line: input is over."""
        with self._lock:
            if self._prompting:
                self._prompting = False
                self._raw_write(self._out, "\r\x1b[K")

    def _write(self, stream: TextIO, line: str) -> None:
        with self._lock:
            if self._prompting and id(stream) in self._terminals:
                self._raw_write(stream, insert_above_input(line, _columns(stream)))
            else:
                self._raw_write(stream, line + "\n")

    def _raw_write(self, stream: TextIO, text: str) -> None:
        if id(stream) in self._broken:
            return
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            self._broken.add(id(stream))
            _silence(stream)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError):
        return 80


def _silence(stream: TextIO) -> None:
    """Point a stream whose reader went away at /dev/null, so that what is
    still buffered (and Python's final flush) goes nowhere quietly."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


# ---------------------------------------------------------------------- input


class LineSource(Protocol):
    """Lines of standard input, read without blocking the event loop."""

    async def readline(self) -> bytes | None:
        """The next line without its ``\\n``, or ``None`` at the end of input."""

    def close(self) -> None:
        """Stop reading and put standard input back as it was."""


class _Lines:
    """Chunks of input split into lines, and a wait for the next one."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._partial = bytearray()
        self._lines: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.eof = False

    @property
    def backlog(self) -> int:
        """Complete lines not read yet."""
        return len(self._lines)

    def feed(self, data: bytes) -> None:
        self._partial += data
        if b"\n" in data:
            *lines, rest = self._partial.split(b"\n")
            self._lines.extend(bytes(line) for line in lines)
            self._partial = rest
            self._wake()

    def feed_eof(self) -> None:
        self.eof = True
        self._wake()

    async def readline(self) -> bytes | None:
        while not self._lines and not self.eof:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._lines:
            return self._lines.popleft()
        if self._partial:  # a last line without a line ending
            line, self._partial = bytes(self._partial), bytearray()
            return line
        return None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _PipeInput(asyncio.Protocol):
    """Standard input through the loop's read-pipe transport (terminals,
    pipes, FIFOs, sockets), pausing the transport while lines pile up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, was_blocking: bool) -> None:
        self._lines = _Lines(loop)
        self._fd = fd
        self._was_blocking = was_blocking
        self._transport: asyncio.ReadTransport | None = None
        self._paused = False

    @classmethod
    async def open(cls, loop: asyncio.AbstractEventLoop, fd: int) -> _PipeInput:
        """Start reading ``fd``; raises if the loop cannot watch it."""
        was_blocking = os.get_blocking(fd)
        pipe = _private_reader(fd)
        try:
            _, protocol = await loop.connect_read_pipe(lambda: cls(loop, fd, was_blocking), pipe)
        except BaseException:
            pipe.close()
            os.set_blocking(fd, was_blocking)
            raise
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._lines.feed(data)
        if self._lines.backlog > _INPUT_HIGH_WATER and not self._paused:
            assert self._transport is not None
            self._transport.pause_reading()
            self._paused = True

    def eof_received(self) -> None:
        self._lines.feed_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lines.feed_eof()

    async def readline(self) -> bytes | None:
        line = await self._lines.readline()
        if self._paused and self._lines.backlog <= _INPUT_LOW_WATER:
            assert self._transport is not None
            self._paused = False
            self._transport.resume_reading()
        return line

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        with contextlib.suppress(OSError):
            os.set_blocking(self._fd, self._was_blocking)


def _private_reader(fd: int) -> BinaryIO:
    """A file object reading ``fd``: for a terminal, through a new open file
    description of the same terminal, since standard input, output and error
    usually share one and asyncio makes the reader non-blocking; otherwise a
    duplicate of ``fd`` (whose blocking mode :meth:`_PipeInput.close`
    restores), so that closing the transport leaves ``fd`` open."""
    if os.isatty(fd) and hasattr(os, "ttyname"):
        with contextlib.suppress(OSError):
            return open(os.open(os.ttyname(fd), os.O_RDONLY | os.O_NOCTTY), "rb", buffering=0)
    return open(os.dup(fd), "rb", buffering=0)


class _FileInput:
    """Standard input that is always ready (a regular file, ``/dev/null``),
    read directly, one chunk per loop iteration so that Ctrl+C and received
    messages are handled between chunks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int | None) -> None:
        self._lines = _Lines(loop)
        self._fd = fd
        if fd is None:
            self._lines.feed_eof()

    async def readline(self) -> bytes | None:
        while not self._lines.backlog and not self._lines.eof:
            assert self._fd is not None
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except OSError:
                chunk = b""
            if chunk:
                self._lines.feed(chunk)
            else:
                self._lines.feed_eof()
            await asyncio.sleep(0)
        return await self._lines.readline()

    def close(self) -> None:
        pass


class _ThreadInput:
    """The fallback where the event loop cannot read standard input without
    blocking (Windows consoles and pipes): a daemon thread reads it and hands
    the chunks to the loop. Ctrl+C is still handled by the loop in the main
    thread, and the exit never waits for this thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._lines = _Lines(loop)
        self._loop = loop
        self._fd = fd
        thread = threading.Thread(target=self._run, name="sansws-cli-stdin", daemon=True)
        thread.start()

    def _run(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except OSError:
                chunk = b""
            try:
                if chunk:
                    self._loop.call_soon_threadsafe(self._lines.feed, chunk)
                else:
                    self._loop.call_soon_threadsafe(self._lines.feed_eof)
            except RuntimeError:  # the loop is closed: nobody reads any more
                return
            if not chunk:
                return

    async def readline(self) -> bytes | None:
        return await self._lines.readline()

    def close(self) -> None:
        pass


def _stdin_fd() -> int | None:
    try:
        return sys.stdin.fileno() if sys.stdin is not None else None
    except (OSError, ValueError):  # closed, or not backed by a file descriptor
        return None


def _pollable(fd: int) -> bool:
    """Whether the event loop's selector can watch ``fd``: epoll refuses
    regular files and ``/dev/null``, which are always ready anyway."""
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
    except (OSError, ValueError):
        return False
    return True


async def open_input() -> LineSource:
    """Standard input as a :class:`LineSource`, read the best way the
    platform allows (see the module's docstring)."""
    loop = asyncio.get_running_loop()
    fd = _stdin_fd()
    if fd is None or not _pollable(fd):
        return _FileInput(loop, fd)
    try:
        return await _PipeInput.open(loop, fd)
    except (OSError, ValueError, NotImplementedError):
        return _ThreadInput(loop, fd)


# ---------------------------------------------------------------------- event loop


class Interrupts:
    """Ctrl+C for a command running on the event loop in the main thread.

    Each Ctrl+C cancels the command's task and counts: the command catches
    the first cancellation (:meth:`take`) to finish politely and quickly; a
    second Ctrl+C cancels that too.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._task: asyncio.Task[Any] | None = None
        #: How many times Ctrl+C was pressed.
        self.count = 0

    def watch(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` on Ctrl+C."""
        self._task = task

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT in the loop while the block runs."""
        uninstall = self._install()
        try:
            yield
        finally:
            uninstall()

    def _install(self) -> Callable[[], object]:
        loop = self._loop
        try:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):
            # Windows has no add_signal_handler: a plain handler runs in the
            # main thread between bytecodes and hands over to the loop.
            previous = signal.signal(
                signal.SIGINT, lambda signum, frame: loop.call_soon_threadsafe(self._on_sigint)
            )
            return lambda: signal.signal(signal.SIGINT, previous)
        return lambda: loop.remove_signal_handler(signal.SIGINT)

    def take(self) -> bool:
        """Call when catching :class:`asyncio.CancelledError`: if Ctrl+C
        caused it, un-cancel the current task (so that it can still wait
        for a polite close) and return ``True``; otherwise return ``False``
        (re-raise it)."""
        if not self.count:
            return False
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            task.uncancel()
        return True

    def _on_sigint(self) -> None:
        self.count += 1
        if self._task is not None:
            self._task.cancel()


def _new_event_loop() -> asyncio.AbstractEventLoop:
    # The asyncio driver resolves names in daemon threads: a stuck resolver
    # holds up neither Ctrl+C nor the exit.
    return asyncio.new_event_loop()


def run_async(command: Callable[[Interrupts], Coroutine[Any, Any, int]]) -> int:
    """Run ``command(interrupts)`` on a new event loop with Ctrl+C handled
    by the loop, and return its exit status (:data:`EXIT_INTERRUPTED` if
    Ctrl+C cancelled it)."""
    loop = _new_event_loop()
    interrupts = Interrupts(loop)
    try:
        task = loop.create_task(command(interrupts))
        interrupts.watch(task)
        with interrupts.installed():
            try:
                return loop.run_until_complete(task)
            except asyncio.CancelledError:
                if interrupts.count:
                    return EXIT_INTERRUPTED
                raise
    finally:
        _close_loop(loop)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


# ---------------------------------------------------------------------- client


@dataclass(frozen=True)
class ClientOptions:
    """The client's command-line options."""

    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()
    origin: str | None = None
    max_redirects: int = 10
    open_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    insecure: bool = False
    binary: bool = False
    json: bool = False


def _connect_options(url: str, options: ClientOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "extra_headers": options.headers,
        "subprotocols": options.subprotocols,
        "origin": options.origin,
        "max_redirects": options.max_redirects,
        "open_timeout": options.open_timeout,
        "ping_interval": options.ping_interval,
    }
    if options.insecure and parse_uri(url).secure:
        kwargs["ssl"] = _unverified_context()
    return kwargs


def failure_summary(error: BaseException) -> str:
    """One line describing why opening a connection failed, for command-line
    tools and logs: the status and Location of a refused redirect, the status
    and the start of the body of a rejection, or the error itself, with DNS,
    TCP and TLS errors in words (``Connection refused (...)``,
    ``TLS certificate verification failed: ...``) rather than errno numbers."""
    if isinstance(error, RedirectError):
        return str(error)
    if isinstance(error, InvalidStatus):
        snippet = error.body[:200].decode("utf-8", "replace").strip()
        snippet = " ".join(snippet.split())
        return f"server rejected the connection: HTTP {error.status}" + (
            f": {snippet}" if snippet else ""
        )
    if isinstance(error, OSError) and not isinstance(error, WebSocketError):
        return _transport_failure(error)
    return " ".join(str(error).split()) or type(error).__name__


def _transport_failure(error: OSError) -> str:
    text = " ".join(str(error.strerror or error).split()) or type(error).__name__
    # Duck-typed so that the core need not import ssl (which imports socket).
    if any(cls.__module__ == "ssl" for cls in type(error).__mro__):
        verify_message = getattr(error, "verify_message", None)
        if verify_message:
            return f"TLS certificate verification failed: {verify_message}"
        return f"TLS failed: {text}"
    if isinstance(error.errno, int) and error.errno > 0:
        # asyncio reports "Connect call failed (address)" with only the errno
        # saying why.
        name = os.strerror(error.errno)
        if name.lower() not in text.lower():
            return f"{name} ({text})"
    return text


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def run_client(
    url: str, options: ClientOptions, console: Console, interrupts: Interrupts
) -> int:
    """Connect to ``url``, send each line of standard input, print each
    message received, and close at the end of input; return the exit status.

    Ctrl+C before the connection is open propagates as cancellation (nothing
    to close); once open, the client closes with 1001 (see :func:`_leave`).
    """
    ws = await _open(url, options, console)
    if ws is None:
        return EXIT_FAILURE
    lines: LineSource | None = None
    try:
        lines = await open_input()
        await _converse(ws, lines, console, options)
    except asyncio.CancelledError:
        if not interrupts.take():
            raise
        console.end_prompt()
        await _leave(ws, interrupts)
        console.status(describe_close(ws.close_code, ws.close_reason))
        return EXIT_INTERRUPTED
    finally:
        ws.abort()  # only if something unexpected escaped: else it is closed
        if lines is not None:
            lines.close()
    console.status(describe_close(ws.close_code, ws.close_reason))
    return EXIT_OK if ws.close_code in _CLEAN_CLOSE_CODES else EXIT_FAILURE


async def _open(
    url: str, options: ClientOptions, console: Console
) -> asyncio_driver.Connection | None:
    """Open the connection, printing each redirect followed and the final
    URL; print one line and return ``None`` if it fails."""
    final_url = str(parse_uri(url))

    def on_redirect(status: int, location: str) -> None:
        nonlocal final_url
        final_url = location
        console.status(f"Redirected to {location} ({status}).")

    try:
        ws = await asyncio_driver.connect(
            url, on_redirect=on_redirect, **_connect_options(url, options)
        )
    except (WebSocketError, OSError) as exc:
        summary = failure_summary(exc).rstrip(".")
        console.error(f"Failed to connect to {parse_uri(url)}: {escape_controls(summary)}.")
        return None
    console.status(f"Connected to {final_url}.")
    if ws.subprotocol is not None:
        console.status(f"Subprotocol: {escape_controls(ws.subprotocol)}.")
    return ws


async def _converse(
    ws: asyncio_driver.Connection, lines: LineSource, console: Console, options: ClientOptions
) -> None:
    """Send lines and print messages until the connection closes: at the end
    of input (or of output) the client starts the close handshake and keeps
    printing what arrives until it completes."""
    arrivals = _Arrivals()
    receiving = asyncio.create_task(_print_messages(ws, console, arrivals, as_json=options.json))
    sending = asyncio.create_task(_send_lines(ws, lines, console, binary=options.binary))
    try:
        await asyncio.wait((receiving, sending), return_when=asyncio.FIRST_COMPLETED)
        console.end_prompt()
        if sending.done():
            sending.result()  # an unexpected error surfaces here
            await _let_replies_arrive(ws, arrivals)
        await ws.close()
        await receiving
    finally:
        for task in (receiving, sending):
            task.cancel()
        await asyncio.wait((receiving, sending))


async def _let_replies_arrive(ws: asyncio_driver.Connection, arrivals: _Arrivals) -> None:
    """Before closing at the end of input, send a Ping and wait for its Pong,
    then until no message arrived for :data:`REPLY_QUIET` seconds; at most
    :data:`REPLY_WAIT` seconds in all.

    A server answers a Close at once, after which its application may not
    send anything: closing right after the last message would often cut off
    the reply to it (``echo hello | sansws URL`` would print nothing). Frames
    are processed in order, so once the Pong is back the server has received
    every message; the quiet period gives its application time to answer.
    """
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(REPLY_WAIT):
            await ws.ping()
            ponged = loop.time()
            while (wait := max(ponged, arrivals.last) + REPLY_QUIET - loop.time()) > 0:
                await asyncio.sleep(wait)


class _Arrivals:
    """When the last message arrived (event loop time)."""

    def __init__(self) -> None:
        self.last = -math.inf

    def note(self) -> None:
        self.last = asyncio.get_running_loop().time()


async def _print_messages(
    ws: asyncio_driver.Connection, console: Console, arrivals: _Arrivals, *, as_json: bool
) -> None:
    while not console.output_closed:
        try:
            message = await ws.recv()
        except ConnectionClosed:
            return
        arrivals.note()
        console.message(format_message(message, as_json=as_json))


async def _send_lines(
    ws: asyncio_driver.Connection, lines: LineSource, console: Console, *, binary: bool
) -> None:
    while True:
        console.prompt()
        line = await lines.readline()
        if line is None:
            return
        try:
            message = parse_input_line(line, binary=binary)
        except ValueError:
            shown = escape_controls(line.decode("utf-8", "replace"))
            console.error(f"Not sent: {shown!r} is not hexadecimal (--binary wants e.g. 48 69).")
            continue
        try:
            await ws.send(message)
        except ConnectionClosed:
            return


async def _leave(ws: asyncio_driver.Connection, interrupts: Interrupts) -> None:
    """After the first Ctrl+C: close with 1001, waiting at most
    :data:`INTERRUPT_GRACE` for the server's answer; at the end of the grace
    or on a second Ctrl+C, the connection is aborted."""
    try:
        async with asyncio.timeout(INTERRUPT_GRACE):
            await ws.close(1001)  # a cancelled close() aborts the transport
    except TimeoutError:
        pass
    except asyncio.CancelledError:
        if not interrupts.take():
            raise
    ws.abort()


async def run_demo(options: ClientOptions, console: Console, interrupts: Interrupts) -> int:
    """Start an echo server on a free loopback port and run the client
    against it: what ``python -m sansws`` does without a URL."""
    server = await asyncio_driver.serve(_echo, "127.0.0.1", 0)
    try:
        url = f"ws://127.0.0.1:{server.port}/"
        console.status(f"No URL given: started an echo server at {url} in this process.")
        if console.interactive:
            console.status("Type a message and press Enter to send it; Ctrl+D closes.")
        return await run_client(url, options, console, interrupts)
    finally:
        await _stop(server)


async def _stop(server: asyncio_driver.Server) -> None:
    # The client's connection is closed by now, so this is immediate; the
    # bound covers a client aborted mid-handshake.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(INTERRUPT_GRACE):
            await server.aclose()


# ---------------------------------------------------------------------- server


class _AsyncConnection(Protocol):
    """What the echo handler uses of an asyncio or trio connection."""

    def __aiter__(self) -> Any: ...

    async def send(self, message: str | bytes, /) -> None: ...


class _SyncConnection(Protocol):
    """What the echo handler uses of a sync connection."""

    def __iter__(self) -> Iterator[str | bytes]: ...

    def send(self, message: str | bytes, /) -> None: ...


class _Peer(Protocol):
    """What the server prints about a connection."""

    @property
    def remote_address(self) -> Any: ...

    @property
    def request(self) -> Request | None: ...

    @property
    def close_code(self) -> int | None: ...

    @property
    def close_reason(self) -> str | None: ...


async def _echo(ws: _AsyncConnection) -> None:
    """Send every message back (asyncio and trio)."""
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


def _echo_sync(ws: _SyncConnection) -> None:
    """Send every message back (sync)."""
    with contextlib.suppress(ConnectionClosed):
        for message in ws:
            ws.send(message)


class _ServerLog:
    """The echo server's lines: one per connection opened and closed."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def opened(self, ws: _Peer) -> str:
        peer = _format_address(ws.remote_address)
        path = ws.request.path if ws.request is not None else "?"
        self._console.status(f"{peer} connected to {escape_controls(path)}.")
        return peer

    def closed(self, peer: str, ws: _Peer) -> None:
        code = ws.close_code
        if code is None:
            self._console.status(f"{peer} aborted.")
        else:
            self._console.status(f"{peer} closed: {_close_status(code, ws.close_reason)}.")

    async def echo(self, ws: Any) -> None:
        """The asyncio and trio handler."""
        peer = self.opened(ws)
        try:
            await _echo(ws)
        finally:
            self.closed(peer, ws)

    def echo_sync(self, ws: Any) -> None:
        """The sync handler."""
        peer = self.opened(ws)
        try:
            _echo_sync(ws)
        finally:
            self.closed(peer, ws)


def _format_address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address or "?")


@dataclass(frozen=True)
class _Listen:
    """How a ``serve`` process listens: on its own socket (sharing the port
    with ``reuse_port``), or on one its parent bound (``fd``)."""

    reuse_port: bool = False
    fd: int | None = None

    def options(self) -> dict[str, Any]:
        if self.fd is not None:
            return {"sock": socket.socket(fileno=self.fd)}
        return {"reuse_port": True} if self.reuse_port else {}


def _listening(host: str, port: int | None, driver: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"Listening on ws://{shown}:{port}/ ({driver} driver); Ctrl+C to stop."


async def _serve_asyncio(
    host: str, port: int, console: Console, interrupts: Interrupts, listen: _Listen
) -> int:
    log = _ServerLog(console)
    server: asyncio_driver.Server | None = None
    terminated = False

    def on_sigterm() -> None:  # 1001 to every client, as a first Ctrl+C
        nonlocal terminated
        terminated = True
        if server is not None:
            server.shutdown()

    with _on_sigterm(on_sigterm, asyncio.get_running_loop()):
        try:
            server = await asyncio_driver.serve(log.echo, host, port, **listen.options())
        except (OSError, ValueError) as exc:
            console.error(f"Cannot listen on {host}:{port}: {failure_summary(exc)}.")
            return EXIT_FAILURE
        console.status(_listening(host, server.port, "asyncio"))
        if terminated:  # while it was starting
            server.shutdown()
        try:
            await server.serve_forever()
        except asyncio.CancelledError:
            if not interrupts.take():
                raise
            try:
                await server.aclose()  # 1001 to every client; cancelled: aborts them
            except asyncio.CancelledError:
                if not interrupts.take():
                    raise
                return EXIT_INTERRUPTED
    console.status("Server stopped.")
    return EXIT_OK


@contextlib.contextmanager
def _on_sigterm(
    shutdown: Callable[[], object], loop: asyncio.AbstractEventLoop | None = None
) -> Iterator[None]:
    """Shut the server down gracefully on SIGTERM (what process managers
    and ``--workers`` send), as on a first Ctrl+C; more SIGTERMs change
    nothing. Handled by ``loop`` if given, else by a signal handler."""
    undo: Callable[[], object]
    if loop is None:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: shutdown())
        undo = functools.partial(signal.signal, signal.SIGTERM, previous)
    else:
        try:
            loop.add_signal_handler(signal.SIGTERM, shutdown)
        except (NotImplementedError, RuntimeError):
            undo = lambda: None  # noqa: E731 - no signals there (Windows): the default applies
        else:
            undo = functools.partial(loop.remove_signal_handler, signal.SIGTERM)
    try:
        yield
    finally:
        undo()


def _serve_trio(host: str, port: int, console: Console, listen: _Listen) -> int:
    try:  # trio is optional: imported only when asked for
        import trio  # noqa: PLC0415

        if TYPE_CHECKING:
            from drivers import trio as trio_driver  # noqa: PLC0415
        else:
            from .drivers import trio as trio_driver  # noqa: PLC0415
    except ImportError as exc:
        console.error(str(exc))
        return EXIT_FAILURE
    log = _ServerLog(console)

    async def serve() -> int:
        receiver = trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
        with trio.CancelScope() as abort, receiver as signals:
            try:
                async with trio_driver.serve(log.echo, host, port, **listen.options()) as server:
                    console.status(_listening(host, server.port, "trio"))
                    async with trio.open_nursery() as nursery:

                        async def on_signal() -> None:
                            presses = 0
                            async for signum in signals:
                                # SIGTERM shuts down as the first Ctrl+C does;
                                # only a second Ctrl+C aborts.
                                presses += signum == signal.SIGINT
                                if presses <= 1:
                                    server.shutdown()  # 1001 to every client
                                else:
                                    abort.cancel()

                        nursery.start_soon(on_signal)
                        await server.serve_forever()
                        nursery.cancel_scope.cancel()
            except (OSError, ValueError) as exc:
                console.error(f"Cannot listen on {host}:{port}: {failure_summary(exc)}.")
                return EXIT_FAILURE
        if abort.cancelled_caught:
            return EXIT_INTERRUPTED
        console.status("Server stopped.")
        return EXIT_OK

    return trio.run(serve)


def _serve_sync(host: str, port: int, console: Console, listen: _Listen) -> int:
    log = _ServerLog(console)
    presses = 0

    server: sync_driver.Server | None = None

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses == 1 and server is not None:
            # 1001 to every client, then serve_forever() returns. A thread:
            # shutdown() takes locks this thread may hold right now.
            threading.Thread(target=server.shutdown, name="sansws-cli-shutdown").start()
            return
        # A second Ctrl+C: serve_forever() aborts every connection.
        raise KeyboardInterrupt

    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        if server is not None:
            threading.Thread(target=server.shutdown, name="sansws-cli-shutdown").start()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with (
            _on_sigterm(on_sigterm),
            sync_driver.serve(log.echo_sync, host, port, **listen.options()) as server,
        ):
            console.status(_listening(host, server.port, "sync"))
            if terminated:  # while it was starting
                on_sigterm()
            server.serve_forever()
    except (OSError, ValueError) as exc:
        console.error(f"Cannot listen on {host}:{port}: {failure_summary(exc)}.")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    console.status("Server stopped.")
    return EXIT_OK


# ---------------------------------------------------------------------- --workers
#
# ``serve --workers N``: the parent starts N workers (each ``serve`` with the
# same host, port and driver, plus ``--reuse-port`` where the system has
# SO_REUSEPORT, else ``--fd`` for one socket the parent binds and they
# inherit) and serves nothing itself. The workers run in sessions of their
# own, so a terminal's Ctrl+C reaches them once, through the parent, which
# forwards Ctrl+C and SIGTERM; a worker whose parent is gone stops by itself;
# if one fails, the others are stopped.

# How often a worker looks whether its parent is still there.
_PARENT_POLL = 0.2


def _worker_count(value: str) -> int:
    """The ``--workers`` argument: an int >= 1."""
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes >= 1, not {value!r}")
    return workers


def _watch_parent(parent: int | None) -> None:
    """In a worker: shut down gracefully (SIGTERM to itself) once the
    process ``parent`` is no longer its parent."""
    if parent is None:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="sansws-watch-parent", daemon=True).start()


def _worker_bind(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    # The host's first address: with SO_REUSEPORT this socket only holds a
    # port 0 picked, which the workers bind on every address; without, the
    # workers share it, so they serve that one address (see docs/cli.md).
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _supervise_workers(args: Any, console: Console) -> int:
    """Start ``args.workers`` workers, forward signals, and return the exit
    status once every one has exited."""
    if os.name != "posix":
        console.error("--workers needs a POSIX system; start one server per port instead.")
        return EXIT_FAILURE
    host, port, driver = args.host, args.port, args.driver
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    try:
        # With SO_REUSEPORT the parent's socket only holds the port (it does
        # not listen, so it gets no connection); without, it is the one
        # every worker accepts on.
        held = _worker_bind(host, port, reuse_port=reuse_port)
    except OSError as exc:
        console.error(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.")
        return EXIT_FAILURE
    with held:
        port = held.getsockname()[1]
        command = [sys.executable, "-m", "sansws", "serve", "--host", host, "--port", str(port)]
        command += ["--driver", driver, "--parent", str(os.getpid())]
        if reuse_port:
            command.append("--reuse-port")
            fds: tuple[int, ...] = ()
        else:
            held.listen(100)
            command += ["--fd", str(held.fileno())]
            fds = (held.fileno(),)
        notice = _workers_shown(host, port, driver, args.workers)
        return _run_workers(command, args.workers, fds, console, notice)


def _workers_shown(host: str, port: int, driver: str, workers: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"Starting {workers} workers on ws://{shown}:{port}/ ({driver} driver); Ctrl+C to stop."


def _run_workers(
    command: list[str], workers: int, fds: tuple[int, ...], console: Console, notice: str
) -> int:
    processes: dict[int, subprocess.Popen[bytes]] = {}
    codes: dict[int, int] = {}
    presses = 0
    stopping: int | None = None  # the signal the workers were sent

    def stop(signum: int) -> None:
        nonlocal stopping
        stopping = signum
        for pid, process in processes.items():
            if pid not in codes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def on_signal(signum: int, frame: object) -> None:
        nonlocal presses
        presses += signum == signal.SIGINT
        stop(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        console.status(notice)
        for number in range(1, workers + 1):
            if stopping is not None:
                break
            process = subprocess.Popen(
                [*command, "--worker", str(number)], pass_fds=fds, start_new_session=True
            )
            processes[process.pid] = process
        if stopping is not None:
            # A signal while a worker was being started reached the others
            # only: this one gets it too (twice is no harm for SIGTERM, and
            # a second SIGINT is what a second Ctrl+C means).
            stop(stopping)
        while len(codes) < len(processes):
            # Interrupted by a signal, waitpid() runs the handler and goes on.
            pid, status = os.waitpid(-1, 0)
            if pid not in processes:
                continue
            code = codes[pid] = os.waitstatus_to_exitcode(status)
            processes[pid].returncode = code
            if code == -signal.SIGTERM and stopping == signal.SIGTERM:
                # Stopped before it could handle SIGTERM (still starting): it
                # had no connection to close.
                codes[pid] = EXIT_OK
            elif code != EXIT_OK and stopping is None:
                stop(signal.SIGTERM)  # one failed: the others go too
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    failures = [code for code in codes.values() if code != EXIT_OK]
    if presses > 1:
        return EXIT_INTERRUPTED
    if failures:
        return EXIT_FAILURE if any(code < 0 for code in failures) else max(failures)
    console.status("Server stopped.")
    return EXIT_OK


# ---------------------------------------------------------------------- arguments


def _header(value: str) -> tuple[str, str]:
    name, colon, content = value.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(
            f"expected NAME:VALUE, e.g. 'Authorization: Bearer abc', not {value!r}"
        )
    return name.strip(), content.strip()


def _websocket_url(value: str) -> str:
    try:
        parse_uri(value)
    except WebSocketError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {value!r}")
    return seconds


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {value!r}")
    return count


def _port(value: str) -> int:
    port = _count(value)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number, not {value!r}")
    return port


def client_parser(prog: str) -> argparse.ArgumentParser:
    """The arguments of the client (and of the embedded echo server)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=(
            "%(prog)s [options] [URL]\n"
            "       %(prog)s serve [--host HOST] [--port PORT] [--driver {asyncio,trio,sync}]"
        ),
        description=(
            "An interactive WebSocket client: each line typed is sent as a text message and "
            "each message received is printed. End of input (Ctrl+D) closes the connection; "
            "Ctrl+C closes it with 1001 and exits at once. Without a URL, an echo server is "
            "started in this process and the client talks to it. '%(prog)s serve --help' "
            "describes the echo server."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "url",
        nargs="?",
        type=_websocket_url,
        metavar="URL",
        help="the ws:// or wss:// URL to connect to (default: a local echo server)",
    )
    parser.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="NAME:VALUE",
        dest="headers",
        help="add a request header (repeatable); Authorization and Cookie are not sent "
        "to another origin after a redirect",
    )
    parser.add_argument(
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        dest="subprotocols",
        help="offer a subprotocol (repeatable, most preferred first)",
    )
    parser.add_argument("--origin", metavar="ORIGIN", help="send an Origin header")
    parser.add_argument(
        "--max-redirects",
        type=_count,
        default=10,
        metavar="N",
        help="follow at most N HTTP redirects (default: 10; 0 follows none)",
    )
    parser.add_argument(
        "--open-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="time allowed for DNS, TCP, TLS, the opening handshake and every redirect, "
        "together (default: 10; 0 for no limit)",
    )
    parser.add_argument(
        "--ping-interval",
        type=_seconds,
        default=20.0,
        metavar="SECONDS",
        help="send a keepalive ping this often (default: 20; 0 for none)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's TLS certificate (wss:// URLs; prints a warning)",
    )
    parser.add_argument(
        "--binary",
        action="store_true",
        help="send each line as a binary message, written in hexadecimal (e.g. 48 69)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each received message as a JSON object on one line, for scripts",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print received messages and errors only, no status lines",
    )
    parser.add_argument("--version", action="version", version=f"sansws {__version__}")
    return parser


def serve_parser(prog: str) -> argparse.ArgumentParser:
    """The arguments of ``serve``."""
    return _add_serve_arguments(
        argparse.ArgumentParser(
            prog=f"{prog} serve",
            description=(
                "An echo server for trying WebSocket clients: it sends every message back and "
                "prints each connection and close. Ctrl+C or SIGTERM closes every connection "
                "with 1001 and stops it (exit status 0); a second Ctrl+C stops it at once (130)."
            ),
            epilog=(
                "examples:\n"
                f"  {prog} serve                      ws://127.0.0.1:8765/\n"
                f"  {prog} serve --port 0             a free port, printed at start\n"
                f"  {prog} serve --driver sync --host ::1 --port 9000\n"
                f"  {prog} serve --workers 4          four processes on port 8765"
            ),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def _add_serve_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=_port, default=8765, help="the port (default: 8765; 0 picks a free one)"
    )
    parser.add_argument(
        "--driver",
        choices=("asyncio", "trio", "sync"),
        default="asyncio",
        help="the sansws driver to serve with (default: asyncio; trio needs sansws[trio])",
    )
    parser.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        metavar="N",
        help=(
            "start N server processes sharing the port (SO_REUSEPORT where the system has "
            "it, else one inherited socket); Ctrl+C or SIGTERM stops them all (default: 1)"
        ),
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="set SO_REUSEPORT, so that other processes can listen on the same port",
    )
    # How --workers starts each worker; not for users.
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    return parser


def _client_options(args: argparse.Namespace) -> ClientOptions:
    return ClientOptions(
        headers=tuple(args.headers),
        subprotocols=tuple(args.subprotocols),
        origin=args.origin,
        max_redirects=args.max_redirects,
        open_timeout=args.open_timeout or None,
        ping_interval=args.ping_interval or None,
        insecure=args.insecure,
        binary=args.binary,
        json=args.json,
    )


def _check_client_options(url: str | None, options: ClientOptions) -> None:
    """Let the core refuse invalid headers, subprotocols or origin before
    any I/O.

    Raises:
        ValueError: An option is invalid.
    """
    try:
        ClientSession.from_options(
            url or "ws://127.0.0.1/",
            {
                "extra_headers": options.headers,
                "subprotocols": options.subprotocols,
                "origin": options.origin,
            },
            caller="sansws",
        )
    except (WebSocketError, TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None


def _prog() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m sansws" if name in ("", "__main__.py", "-c") else name


def _configure_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # A message in a script the terminal cannot show is escaped, not fatal.
            stream.reconfigure(errors="backslashreplace")


def run() -> NoReturn:
    """The ``sansws`` command (``python -m sansws``): run :func:`main` and
    exit with its status.

    Once the command is done, everything it opened is closed and its output
    flushed; the process then exits at once (:func:`os._exit`) instead of
    running the interpreter's final teardown of every module and object,
    which does nothing this command needs and takes tens of milliseconds
    on a busy machine, a large part of the 100 ms that Ctrl+C may take.
    """
    try:
        status = main()
    except KeyboardInterrupt:
        status = EXIT_INTERRUPTED
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``) and return
    its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    prog = _prog()
    _configure_streams()
    try:
        if args[:1] == ["serve"]:
            return _serve_main(prog, args[1:])
        return _client_main(prog, args)
    except KeyboardInterrupt:
        # Ctrl+C before or after the event loop ran.
        return EXIT_INTERRUPTED


def _client_main(prog: str, argv: list[str]) -> int:
    parser = client_parser(prog)
    args = parser.parse_args(argv)
    options = _client_options(args)
    try:
        _check_client_options(args.url, options)
    except ValueError as exc:
        parser.error(str(exc))
    console = Console.for_stdio(quiet=args.quiet)
    if args.insecure:
        console.error(
            "Warning: --insecure: the server's TLS certificate is not verified; anyone "
            "between you and the server can read and change this connection."
        )
    url: str | None = args.url
    if url is None:
        return run_async(lambda interrupts: run_demo(options, console, interrupts))
    return run_async(lambda interrupts: run_client(url, options, console, interrupts))


def _serve_main(prog: str, argv: list[str]) -> int:
    parser = serve_parser(prog)
    args = parser.parse_args(argv)
    console = Console.for_stdio()
    host: str = args.host
    port: int = args.port
    if args.workers > 1:
        if args.worker is not None or args.fd is not None:
            parser.error("--workers starts the workers: not with --worker or --fd")
        return _supervise_workers(args, console)
    if args.worker is not None:
        console.prefix = f"[worker {args.worker}] "
        _watch_parent(args.parent)
    listen = _Listen(reuse_port=args.reuse_port, fd=args.fd)
    if args.driver == "trio":
        return _serve_trio(host, port, console, listen)
    if args.driver == "sync":
        return _serve_sync(host, port, console, listen)
    return run_async(lambda interrupts: _serve_asyncio(host, port, console, interrupts, listen))
