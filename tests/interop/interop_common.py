"""What every interop server and client shares: the test protocol that the
servers speak, the payloads, the server-side records, and event loops run in
background threads.

The test protocol
=================

Every server in tests/interop/ (websockets, aiohttp, and the three sansws
drivers) runs the same handler: it echoes each message unchanged, text as
text and binary as binary, except a text message made by :func:`command`,
which asks it to act:

* ``describe``: answer one text message, the JSON of the request path, the
  negotiated subprotocol and the ``X-Interop`` request header;
* ``fragments KIND``: send :data:`FRAGMENTS` ``[KIND]`` as one fragmented
  message (servers that cannot fragment never receive it);
* ``ping HEX``: send a Ping with that payload, wait for its Pong, then answer
  ``"pong HEX"``;
* ``close CODE REASON``: start the close handshake with them.

When a connection ends, the server appends a :class:`Record` of it to its
:class:`Recorder`, keyed by the request path, which tests make unique.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

T = TypeVar("T")

Message = str | bytes

#: The subprotocols every server supports, most preferred first.
SERVER_SUBPROTOCOLS = ("chat", "superchat")

#: Bound of any single wait in these tests: far above what a passing one takes.
WAIT = 10.0

#: Size limit given to both sides, above the largest message sent (1 MiB).
MAX_SIZE = 2**21

_COMMAND = "\x00interop "

#: Messages each server sends as one fragmented message: an empty fragment,
#: non-ASCII text, and a fragment longer than 65535 bytes (64-bit length).
FRAGMENTS: dict[str, list[str] | list[bytes]] = {
    "text": ["frag", "", "mén", "ts" * 40_000],
    "binary": [b"\x00\x01", b"", b"\xff" * 70_000, b"end"],
}


def joined(kind: str) -> Message:
    """The message :data:`FRAGMENTS` ``[kind]`` makes once reassembled."""
    parts = FRAGMENTS[kind]
    if kind == "text":
        return "".join(part for part in parts if isinstance(part, str))
    return b"".join(part for part in parts if isinstance(part, bytes))


def command(*words: str | int) -> str:
    """A test-protocol command, as the text message that carries it."""
    return _COMMAND + json.dumps(words)


def parse_command(message: Message) -> list[Any] | None:
    """The words of a command message; ``None`` for a message to echo."""
    if isinstance(message, str) and message.startswith(_COMMAND):
        words: list[Any] = json.loads(message[len(_COMMAND) :])
        return words
    return None


def describe(path: str, subprotocol: str | None, header: str | None) -> str:
    """The answer to ``describe``."""
    return json.dumps({"path": path, "subprotocol": subprotocol, "header": header})


def payload(kind: str, size: int) -> Message:
    """A message of ``size`` bytes on the wire: text mixes 1-, 2- and 3-byte
    UTF-8 characters; binary covers every byte value."""
    if kind == "binary":
        return bytes(itertools.islice(itertools.cycle(range(256)), size))
    unit = "aé€"  # 1 + 2 + 3 bytes
    text = unit * (size // 6) + "a" * (size % 6)
    assert len(text.encode()) == size
    return text


_paths = itertools.count()


def unique_path(label: str = "t") -> str:
    """A request path no other connection in this run uses."""
    return f"/{label}/{next(_paths)}"


async def answer_commands(
    messages: AsyncIterable[Message],
    *,
    send: Callable[[Any], Awaitable[None]],
    ping: Callable[[bytes], Awaitable[object]],
    close: Callable[[int, str], Awaitable[None]],
    described: str,
) -> None:
    """The test protocol on an async connection: ``send`` sends a message or
    a list of fragments, ``ping`` returns once the Pong arrived, ``close``
    starts the close handshake; ``described`` answers ``describe``."""
    async for message in messages:
        words = parse_command(message)
        if words is None:
            await send(message)
        elif words[0] == "describe":
            await send(described)
        elif words[0] == "fragments":
            await send(FRAGMENTS[words[1]])
        elif words[0] == "ping":
            await ping(bytes.fromhex(words[1]))
            await send(f"pong {words[1]}")
        elif words[0] == "close":
            await close(words[1], words[2])


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class Record:
    """What a server saw of one connection, once it ended."""

    path: str
    subprotocol: str | None
    close_code: int | None
    close_reason: str | None


class Recorder:
    """Records appended by server threads or tasks, read by tests."""

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._changed = threading.Condition()

    def add(self, record: Record) -> None:
        with self._changed:
            self._records[record.path] = record
            self._changed.notify_all()

    def wait(self, path: str, timeout: float = WAIT) -> Record:
        """The record of the connection to ``path``, once it ended."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while path not in self._records:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the server recorded no connection to {path}")
                self._changed.wait(left)
            return self._records[path]


# ------------------------------------------------------- background loops


class LoopThread:
    """An asyncio event loop running in a thread, for peers whose API is
    asyncio (websockets, aiohttp) and for the sansws asyncio server."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        """Run ``coroutine`` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        async def cancel_leftovers() -> None:
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.call(cancel_leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the event loop thread did not stop"
        self.loop.close()


class TrioThread:
    """``trio.run(main)`` in a thread, where ``main(started)`` calls
    ``started(value)`` once ready and then runs until cancelled by
    :meth:`stop`."""

    def __init__(self, main: Callable[[Callable[[Any], None]], Awaitable[None]], name: str) -> None:
        self._main = main
        self._ready = threading.Event()
        self._value: Any = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        async def root() -> None:
            self._token = trio.lowlevel.current_trio_token()
            with trio.CancelScope() as self._scope:
                await self._main(self._started)

        try:
            trio.run(root)
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def _started(self, value: Any) -> None:
        self._value = value
        self._ready.set()

    def start(self) -> Any:
        """Start the thread; return the value ``main`` is ready with."""
        self._thread.start()
        if not self._ready.wait(WAIT):
            raise TimeoutError("the trio thread did not start")
        if self._error is not None:
            raise self._error
        return self._value

    def run(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run ``await function()`` in the trio thread, for at most
        :data:`WAIT` seconds."""

        async def bounded() -> T:
            with trio.fail_after(WAIT):
                return await function()

        return trio.from_thread.run(bounded, trio_token=self._token)

    def stop(self, shutdown: Callable[[], None] | None = None) -> None:
        """End ``main``: by calling ``shutdown`` in the trio thread, or by
        cancelling it; then wait for the thread to end."""
        if self._thread.is_alive():
            scope = self._scope
            assert scope is not None
            trio.from_thread.run_sync(shutdown or scope.cancel, trio_token=self._token)
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the trio thread did not stop"
        if self._error is not None:
            raise self._error
