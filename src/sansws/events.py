"""Events: what ``receive_data`` and ``handle_timeout`` return.

Every event is a small immutable dataclass, so they read well with ``match``::

    for event in conn.receive_data(data):
        match event:
            case Message(data=str() as text):
                print("text", text)
            case Message(data=bytes() as payload):
                print("binary", len(payload))
            case Closed(code=code, reason=reason):
                print("closed", code, reason)

A connection's events end with exactly one *terminal* event: :class:`Closed`,
or for a client whose handshake the server refused, :class:`Rejected`. Ends the
application causes itself (``reject()``, ``close()`` before the handshake) are
not reported back to it as events. After the terminal event the connection is
``CLOSED`` and reports nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import HandshakeError, WebSocketError
from .headers import ExtensionOffer, Headers

__all__ = [
    "Accepted",
    "Closed",
    "Event",
    "Message",
    "MessageChunk",
    "Ping",
    "Pong",
    "Rejected",
    "Request",
]

#: Close codes after which a closed connection counts as closed normally
#: (the same set websockets uses for ``ConnectionClosedOK``).
OK_CLOSE_CODES = frozenset({1000, 1001, 1005})


@dataclass(frozen=True, slots=True)
class Request:
    """A server received an opening handshake request.

    The application answers with :meth:`ServerConnection.accept` or
    :meth:`ServerConnection.reject`.

    Attributes:
        path: The request target (path and query), e.g. ``"/chat?room=1"``.
        headers: All request headers.
        subprotocols: The subprotocols the client offered, in its order of
            preference.
        extensions: The extensions the client offered, parsed.
        error: Why the request is not a valid WebSocket handshake, or ``None``
            if it is. An invalid request can still be answered with
            ``reject()`` (say, a health check), and ``accept()`` answers it
            with the standard error response (400, or 426 for another
            WebSocket version).
    """

    path: str
    headers: Headers
    subprotocols: tuple[str, ...] = ()
    extensions: tuple[ExtensionOffer, ...] = ()
    error: HandshakeError | None = None

    @property
    def origin(self) -> str | None:
        """The Origin header, if the client sent one."""
        return self.headers.get("Origin")


@dataclass(frozen=True, slots=True)
class Accepted:
    """A client's opening handshake succeeded: the connection is ``OPEN``.

    Attributes:
        subprotocol: The subprotocol the server selected, if any.
        extensions: The extensions in use, as negotiated.
        headers: The server's response headers.
    """

    subprotocol: str | None = None
    extensions: tuple[ExtensionOffer, ...] = ()
    headers: Headers = field(default_factory=Headers)


@dataclass(frozen=True, slots=True)
class Rejected:
    """The server answered a client's handshake with a status other than 101.

    A terminal event: the connection is ``CLOSED``.

    Attributes:
        status: The HTTP status code.
        headers: The response headers.
        body: The start of the response body, at most ``max_body_size``
            bytes. Empty for redirects (3xx), which are reported as soon as
            their headers arrive.
        location: The Location header for a redirect, else ``None``.
    """

    status: int
    headers: Headers
    body: bytes = b""
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A complete message: ``data`` is ``str`` for text, ``bytes`` for binary."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class MessageChunk:
    """Part of a message, delivered as it arrives when the connection was
    created with ``stream_messages=True``.

    ``data`` is ``str`` for a text message (decoded so far, never splitting a
    character) and ``bytes`` for binary. ``final`` marks the last chunk of
    the message; only that one may be empty.
    """

    data: str | bytes
    final: bool


@dataclass(frozen=True, slots=True)
class Ping:
    """The peer sent a Ping. The core has already queued the Pong reply."""

    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Pong:
    """The peer sent a Pong: ``data`` echoes the Ping it answers (or is
    unsolicited).

    Attributes:
        data: The payload.
        keepalive_sent_at: For the answer to a keepalive Ping, when that Ping
            was sent: the ``now`` of the ``handle_timeout`` call that sent
            it, so that the round-trip time is the receiver's clock minus
            this. ``None`` for any other Pong.
    """

    data: bytes = b""
    keepalive_sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is ``CLOSED``. A terminal event.

    Attributes:
        code: The close code: the one the peer sent if it sent a Close frame,
            the one sansws sent if it failed the connection, 1005 for a Close
            frame without a code, and 1006 if the connection ended without a
            Close frame.
        reason: The close reason that goes with ``code``.
        clean: Whether the close handshake completed: a Close frame was both
            sent and received.
        error: Why sansws ended the connection, if it did: a
            :class:`~sansws.errors.ProtocolError` when the peer broke the
            protocol, a :class:`~sansws.errors.WebSocketTimeout`, or a
            :class:`~sansws.errors.HandshakeError`. ``None`` when the peer or
            the application closed.
    """

    code: int
    reason: str = ""
    clean: bool = False
    error: WebSocketError | None = None

    @property
    def ok(self) -> bool:
        """Whether the connection closed normally: a complete close handshake
        with 1000, 1001 or no status code."""
        return self.clean and self.code in OK_CLOSE_CODES


Event = Request | Accepted | Rejected | Message | MessageChunk | Ping | Pong | Closed
"""Any event a connection can return."""
