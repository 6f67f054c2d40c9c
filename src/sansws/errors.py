"""The exceptions sansws raises or reports, in one hierarchy.

Every exception derives from :class:`WebSocketError`. They fall into a few
families, by whose fault it is and when it happened:

* :class:`LocalProtocolError` -- the application asked for something the
  protocol forbids (sending before the handshake, an invalid close code, a
  header value with a line break). Raised by the method that was called; the
  connection is unchanged.
* :class:`HandshakeError` -- the opening handshake failed: the peer's HTTP
  request or response is not a valid WebSocket handshake
  (:class:`InvalidMessage`, :class:`InvalidHeader`, :class:`NegotiationError`),
  the server answered with another status (:class:`InvalidStatus`), or a
  redirect could not be followed (:class:`RedirectError`).
* :class:`ProtocolError` -- the peer broke RFC 6455 after the handshake. The
  core has already sent a Close frame with :attr:`ProtocolError.code`.
* :class:`WebSocketTimeout` -- a timer the core runs expired (opening
  handshake, keepalive pong, close handshake).
* :class:`ConnectionClosed` -- raised by drivers when the application uses a
  connection that has closed; carries the close code and reason.

The sans-I/O core never raises for a peer's mistake from ``receive_data``:
it reports the error in the :class:`~sansws.events.Closed` event (``error``)
and on the connection (``close_error``). Drivers raise it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .frames import close_code_name

if TYPE_CHECKING:
    from .headers import Headers

__all__ = [
    "BroadcastSkipped",
    "CloseTimeout",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "InvalidHeader",
    "InvalidMessage",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "LocalProtocolError",
    "NegotiationError",
    "OpenTimeout",
    "PayloadTooBig",
    "PingTimeout",
    "ProtocolError",
    "RedirectError",
    "TooManyFragments",
    "UnsafeHeader",
    "WebSocketError",
    "WebSocketTimeout",
]


class WebSocketError(Exception):
    """Base class of every exception sansws raises."""


class InvalidURI(WebSocketError, ValueError):
    """The URI is not a valid ``ws://`` or ``wss://`` URI.

    Attributes:
        uri: The URI as given.
        msg: Why it was refused.
    """

    def __init__(self, uri: str, msg: str) -> None:
        super().__init__(uri, msg)
        self.uri = uri
        self.msg = msg

    def __str__(self) -> str:
        return f"{self.uri!r} isn't a valid WebSocket URI: {self.msg}"


class LocalProtocolError(WebSocketError):
    """The application used the API in a way the protocol forbids.

    Nothing was queued for sending: the connection is as it was before the
    call.
    """


class InvalidState(LocalProtocolError):
    """The call is not allowed in the connection's current state.

    For example: sending a message before the opening handshake completed, or
    after a Close frame was sent or received.

    Attributes:
        state: The connection's :class:`~sansws.State` when the call was made.
    """

    def __init__(self, msg: str, state: object) -> None:
        super().__init__(msg)
        self.state = state


class UnsafeHeader(LocalProtocolError, ValueError):
    """A header the application supplied is not allowed on the wire: its name
    is not an HTTP token, or its name or value contains CR, LF or NUL (which
    would let a value inject headers or end the request early).

    Raised before anything is queued for sending.

    Attributes:
        name: The header's name, as given.
        value: The header's value, as given.
    """

    def __init__(self, name: str, value: str, msg: str) -> None:
        super().__init__(name, value, msg)
        self.name = name
        self.value = value
        self.msg = msg

    def __str__(self) -> str:
        return f"refused header {self.name!r}: {self.msg}"


class HandshakeError(WebSocketError):
    """The opening handshake failed."""


class InvalidMessage(HandshakeError):
    """The peer's handshake is not a well-formed HTTP/1.1 message, or exceeds
    a size limit (header line, header count, body)."""


class InvalidHeader(HandshakeError):
    """A header in the peer's handshake is missing or has an invalid value.

    Headers the application supplies are checked separately and refused
    with :class:`UnsafeHeader`.

    Attributes:
        name: The header's name, as the RFC spells it.
        value: The value received, or ``None`` if the header was missing.
    """

    def __init__(self, name: str, value: str | None = None, msg: str | None = None) -> None:
        super().__init__(name, value, msg)
        self.name = name
        self.value = value
        self.msg = msg

    def __str__(self) -> str:
        if self.value is None:
            text = f"missing {self.name} header"
        elif self.value == "":
            text = f"empty {self.name} header"
        else:
            text = f"invalid {self.name} header: {self.value!r}"
        return f"{text} ({self.msg})" if self.msg else text


class NegotiationError(InvalidHeader):
    """The subprotocol or extension negotiation failed.

    ``name`` is ``Sec-WebSocket-Protocol`` or ``Sec-WebSocket-Extensions``.
    """


class InvalidStatus(HandshakeError):
    """The server answered the opening handshake with a status other than 101.

    Attributes:
        status: The HTTP status code.
        headers: The response headers.
        body: The start of the response body (bounded by ``max_body_size``).
    """

    def __init__(self, status: int, headers: Headers, body: bytes = b"") -> None:
        super().__init__(status, headers, body)
        self.status = status
        self.headers = headers
        self.body = body

    def __str__(self) -> str:
        return f"server rejected WebSocket connection: HTTP {self.status}"


class RedirectError(HandshakeError):
    """A redirect could not be followed: no usable Location, too many hops, a
    loop, or a downgrade from ``wss://`` to ``ws://``.

    Attributes:
        status: The redirect's HTTP status code.
        location: The Location header, or ``None`` if it was missing.
    """

    def __init__(self, msg: str, status: int, location: str | None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.location = location

    def __str__(self) -> str:
        return self.msg


class ProtocolError(WebSocketError):
    """The peer violated RFC 6455 after the opening handshake.

    The core has already queued a Close frame carrying :attr:`code` and
    :attr:`reason` and moved the connection to ``CLOSED``.

    Attributes:
        code: The close code sent to the peer (1002, 1007, 1009, ...).
        reason: The close reason sent to the peer.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason} (sent close code {self.code})"


class PayloadTooBig(ProtocolError):
    """An incoming message exceeded ``max_message_size`` (close code 1009).

    Attributes:
        size: How many bytes the message had reached, at least, when it was
            refused.
        max_size: The limit in force.
    """

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__(1009, f"message too big: {size} > {max_size} bytes")
        self.size = size
        self.max_size = max_size


class TooManyFragments(ProtocolError):
    """An incoming message came in more frames than ``max_fragments`` (close
    code 1009). Empty frames count: a peer cannot make a message cost memory
    and time per frame without being bounded.

    Attributes:
        fragments: How many frames the message had reached when it was
            refused.
        max_fragments: The limit in force.
    """

    def __init__(self, fragments: int, max_fragments: int) -> None:
        super().__init__(1009, f"message in more than {max_fragments} fragments")
        self.fragments = fragments
        self.max_fragments = max_fragments


class BroadcastSkipped(WebSocketError):
    """:func:`~sansws.broadcasting.broadcast` did not send its message to a
    connection.

    Attributes:
        connection: The connection.
        reason: ``"closed"`` (not open), ``"sending fragments"`` (in the
            middle of a fragmented message), ``"slow"`` (more than
            ``write_limit`` bytes wait to be written), or the error that
            sending raised.
    """

    def __init__(self, connection: Any, reason: str) -> None:
        super().__init__(connection, reason)
        self.connection = connection
        self.reason = reason

    def __str__(self) -> str:
        return f"not sent to {self.connection!r}: {self.reason}"


class WebSocketTimeout(WebSocketError, TimeoutError):
    """A timer run by the core expired."""


class OpenTimeout(WebSocketTimeout):
    """The opening handshake did not complete within ``open_timeout``."""


class PingTimeout(WebSocketTimeout):
    """No Pong answered a keepalive Ping within ``ping_timeout``.

    The core closed the connection with code 1011.
    """


class CloseTimeout(WebSocketTimeout):
    """The peer did not complete the close handshake within ``close_timeout``."""


class ConnectionClosed(WebSocketError):
    """The connection is closed; raised by drivers when it is used anyway.

    Attributes:
        code: The close code (1006 if no Close frame was received).
        reason: The close reason.
        clean: Whether the close handshake completed.
    """

    def __init__(self, code: int, reason: str, clean: bool) -> None:
        super().__init__(code, reason, clean)
        self.code = code
        self.reason = reason
        self.clean = clean

    def __str__(self) -> str:
        text = f"connection closed: {self.code} ({close_code_name(self.code)})"
        return f"{text} {self.reason}" if self.reason else text


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed cleanly with 1000 (normal closure), 1001 (going
    away) or no status code."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a complete close
    handshake."""
