"""Sending one message to many connections at once, without waiting.

:func:`broadcast` is exported by every driver module and works on any
driver's connections (anything built on :class:`sansws.contract.DriverConnection`)::

    from sansws.drivers.asyncio import broadcast

    broadcast(server.connections, "the room closes in 5 minutes")

The rules, the same in every driver:

* It never waits: each connection's frame is handed to its transport (what
  the transport does not take at once is buffered, as any send does), and
  ``broadcast`` returns.
* A connection that is not open, or is in the middle of sending a
  fragmented message (its next frame must be the next fragment), is
  skipped.
* A connection with more than ``write_limit`` bytes waiting to be written
  -- a client that does not read fast enough -- is skipped, so that one slow
  client cannot grow the server's memory or hold up the others; with
  ``slow="close"`` it is closed with 1013 (try again later) instead.
* The frame is built once for every server connection that would send the
  same bytes: no compression, a message below permessage-deflate's
  threshold, or permessage-deflate without context takeover on the server's
  side and with the same settings. A connection whose compressor remembers
  earlier messages, and a client connection (which masks each frame with a
  key of its own), build their own.
* What went wrong is in the returned :class:`Broadcast`; with
  ``raise_exceptions=True`` an :class:`ExceptionGroup` of
  :class:`~sansws.errors.BroadcastSkipped` (one per connection not sent
  to) is raised after every other connection was sent to.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .connection import State
from .contract import _NO_LOCK
from .errors import BroadcastSkipped
from .extensions.base import UNCHANGED
from .frames import Opcode

__all__ = ["Broadcast", "broadcast"]

_TEXT, _BINARY = int(Opcode.TEXT), int(Opcode.BINARY)
_OPEN = State.OPEN
_SLOW_CLOSE = (1013, "too slow to receive broadcasts")


@dataclass
class Broadcast:
    """What :func:`broadcast` did.

    Attributes:
        sent: How many connections the message was queued on.
        skipped: The connections it was not sent to, each with why
            (``"closed"``, ``"sending fragments"``, ``"slow"``, or an error
            of the connection's); see :class:`~sansws.errors.BroadcastSkipped`.
        closed: The slow connections closed with 1013 (``slow="close"``).
        encodings: How many frames were built: 1 when every connection
            shared one.
    """

    sent: int = 0
    skipped: list[BroadcastSkipped] = field(default_factory=list)
    closed: list[Any] = field(default_factory=list)
    encodings: int = 0


def broadcast(
    connections: Iterable[Any],
    message: str | bytes | bytearray | memoryview,
    *,
    slow: Literal["skip", "close"] = "skip",
    raise_exceptions: bool = False,
) -> Broadcast:
    """Queue ``message`` (text for ``str``, binary for bytes-like) on every
    connection in ``connections`` that can take it now; see the module's
    documentation for which are skipped.

    Raises:
        TypeError: ``message`` is not ``str`` or bytes-like.
        ValueError: ``slow`` is neither ``"skip"`` nor ``"close"``.
        ExceptionGroup: With ``raise_exceptions``, after sending, if any
            connection was skipped (one ``BroadcastSkipped`` each).
    """
    if isinstance(message, str):
        opcode, payload = _TEXT, message.encode()
    elif isinstance(message, bytes | bytearray | memoryview):
        opcode, payload = _BINARY, bytes(message)
    else:
        raise TypeError(f"broadcast() sends str or bytes-like, not {type(message).__name__}")
    if slow not in ("skip", "close"):
        raise ValueError(f"slow must be 'skip' or 'close', not {slow!r}")
    sender = _Sender(opcode, payload, message, slow)
    result = sender.result
    send = sender.send
    for ws in connections:
        lock = ws._lock
        if lock is _NO_LOCK:  # an event loop's connection: nothing to take
            reason = send(ws)
        else:
            with lock:
                reason = send(ws)
        if reason is not None:
            result.skipped.append(BroadcastSkipped(ws, reason))
    result.encodings += len(sender.frames)
    if raise_exceptions and result.skipped:
        raise ExceptionGroup(f"broadcast skipped {len(result.skipped)} connections", result.skipped)
    return result


class _Sender:
    def __init__(
        self, opcode: int, payload: bytes, message: str | bytes | bytearray | memoryview, slow: str
    ) -> None:
        self.opcode, self.payload, self.message, self.slow = opcode, payload, message, slow
        # The frame built for each shared encoding (see Connection._shared_encoding).
        self.frames: dict[Hashable, bytes] = {}
        self.result = Broadcast()

    def send(self, ws: Any) -> str | None:
        """Queue the message on ``ws`` and write it (lock held); why not,
        if not."""
        # This runs once per connection of a server: the attributes behind
        # the public properties are read directly.
        endpoint = ws._endpoint
        connection = endpoint.connection
        if connection._state is not _OPEN:
            return "closed"
        if endpoint._fragment_kind is not None:
            return "sending fragments"
        if endpoint.write_mark.paused:
            if self.slow == "skip":
                return "slow"
            now = ws._now()
            endpoint.close(*_SLOW_CLOSE, now)
            ws._apply(endpoint.actions(now))
            self.result.closed.append(ws)
            return None
        try:
            if connection._extension is None and connection._mask_keys is None:
                key: Hashable | None = UNCHANGED
            else:
                key = connection._shared_encoding(self.payload)
            if key is None:
                endpoint.send(self.message)
                self.result.encodings += 1
                data = endpoint.data_to_send()
            else:
                frame = self.frames.get(key)
                if frame is None:
                    frame = self.frames[key] = connection._whole_frame(self.opcode, self.payload)
                data = connection._send_frame(frame)
        except Exception as exc:  # reported, not raised: the others still get it
            return f"{type(exc).__name__}: {exc}"
        ws._write(data)
        self.result.sent += 1
        return None
