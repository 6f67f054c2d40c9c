"""The WebSocket connection state machine, for both roles.

Theory of operation
===================

A connection turns bytes into events and method calls into bytes. It never
touches a socket or a clock:

* ``receive_data(data)`` parses what the peer sent and returns the events it
  completes (``b""`` means the peer closed its side of the transport);
* ``send_text``, ``send_binary``, ``send_ping``, ``send_pong`` and ``close``
  queue frames; ``data_to_send()`` hands over the queued bytes;
* time enters only through ``handle_timeout(now)``; ``next_deadline()`` says
  when the driver should call it next. A timer started by another call (the
  handshake completing starts keepalive, ``close()`` starts the close timer)
  is *armed* by the next ``handle_timeout`` call: until then
  ``next_deadline()`` returns ``-inf``, "call me now". A driver that calls
  ``handle_timeout(now)`` after each batch of work and whenever the deadline
  passes gets every timer right;
* ``should_close_transport`` turns true when the driver should write out
  ``data_to_send()`` and close the transport.

States::

    CONNECTING --handshake ok--> OPEN --close() sent--> CLOSING --Close rcvd--> CLOSED
        |                         |  \\--Close rcvd, reply sent------------------> CLOSED
        |                         \\--peer error / EOF / timeout----------------> CLOSED
        \\--rejected, invalid, timeout, EOF---------------------------------------> CLOSED

The state only ever moves right. Everything that depends on the role (who
masks, who closes the transport first, the handshake) is decided by
:class:`ClientConnection` and :class:`ServerConnection`; the frame layer in
:class:`Connection` is role-blind apart from the masking direction.

Closing the transport (RFC 6455 section 7.1.1): the server closes it as soon
as the connection is ``CLOSED``; after a clean close handshake the client
waits for the server to close it, up to ``close_timeout``; after a failure
both close at once.

Receiving
---------

Data frames are processed as their bytes arrive, not once complete: each
piece of payload is unmasked, decompressed when an extension is in use,
UTF-8 validated for text, and either buffered into the message or, with
``stream_messages=True``, returned as a :class:`~sansws.events.MessageChunk`.
Invalid UTF-8 is therefore refused as soon as the offending byte arrives, and
the message size limit is checked against each frame's header before its
payload is buffered. Control frames (at most 125 bytes) are handled once
complete.
"""

from __future__ import annotations

import enum
import math
import secrets
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .errors import (
    CloseTimeout,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    InvalidMessage,
    InvalidState,
    InvalidStatus,
    LocalProtocolError,
    NegotiationError,
    OpenTimeout,
    PayloadTooBig,
    PingTimeout,
    ProtocolError,
    TooManyFragments,
    WebSocketError,
)
from .events import (
    OK_CLOSE_CODES,
    Accepted,
    Closed,
    Event,
    Message,
    MessageChunk,
    Ping,
    Pong,
    Rejected,
    Request,
)
from .extensions.base import UNCHANGED, Extension
from .extensions.permessage_deflate import (
    client_extension_factories,
    server_extension_factories,
)
from .frames import (
    MAX_CONTROL_PAYLOAD,
    MaskKeySource,
    apply_mask,
    build_frame,
    decode_text,
    is_valid_close_code,
    parse_close_payload,
    serialize_close_payload,
)
from .handshake import (
    ClientHandshake,
    ClientResult,
    HandshakeLimits,
    ServerHandshake,
    accept_extensions,
    extension_offers,
    negotiate_extensions,
)
from .headers import (
    ExtensionOffer,
    Headers,
    HeadersLike,
    build_extension_list,
    parse_extension_list,
)
from .options import (
    CLIENT_CONNECTION,
    DEFAULT_USER_AGENT,
    SERVER_CONNECTION,
    settle,
)
from .uri import WebSocketURI, parse_uri

if TYPE_CHECKING:
    from typing import Unpack

    from .options import ClientConnectionOptions, ServerConnectionOptions

__all__ = ["DEFAULT_USER_AGENT", "ClientConnection", "Connection", "ServerConnection", "State"]

# Payloads at least this long are unmasked from a memoryview of the received
# bytes instead of a copy of them; below it, a copy is cheaper than the view.
_VIEW_MIN = 2048

_CONTINUATION, _TEXT, _BINARY = 0x0, 0x1, 0x2
_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA

# RFC 6455 section 5.2: "the minimal number of bytes MUST be used to encode
# the length".
_NOT_SHORTEST = "frame length not in its shortest encoding"

# Bytes a server buffers between the request and accept(): a client may send
# frames without waiting for the response, but not without bound.
_MAX_EARLY_DATA = 1 << 20

# Pieces of an incoming message shorter than this are merged as they arrive.
_MERGE_BELOW = 512


class State(enum.Enum):
    """Where a connection is in its life (RFC 6455 section 4 and 7)."""

    CONNECTING = 0
    """The opening handshake is in progress."""
    OPEN = 1
    """Messages flow in both directions."""
    CLOSING = 2
    """A Close frame was sent; the peer's is awaited. Messages still arrive."""
    CLOSED = 3
    """The connection is over. ``close_code`` and ``close_reason`` say how."""


CONNECTING: Final = State.CONNECTING
OPEN: Final = State.OPEN
CLOSING: Final = State.CLOSING
CLOSED: Final = State.CLOSED

# Timer names, in the order handle_timeout checks them.
_OPEN_TIMER, _CLOSE_TIMER, _PONG_TIMER, _KEEPALIVE_TIMER = "open", "close", "pong", "keepalive"
_TIMER_ORDER = (_OPEN_TIMER, _CLOSE_TIMER, _PONG_TIMER, _KEEPALIVE_TIMER)
_PENDING = -math.inf


class Connection:
    """The role-blind part of a WebSocket connection: frames, messages,
    the close handshake and timers.

    Use :class:`ClientConnection` or :class:`ServerConnection`. Their options
    are described once, in :mod:`sansws.options` (docs/options.md); these
    attributes hold the values in use.

    Attributes:
        max_message_size: Largest incoming message, in bytes after
            decompression; ``None`` for no limit.
        ping_interval: Seconds between keepalive Pings, or ``None``.
        ping_timeout: Seconds to wait for a keepalive Pong, or ``None``.
        close_timeout: Seconds to wait for the close handshake, or ``None``.
        open_timeout: Seconds the opening handshake may take, counted from
            the first ``handle_timeout`` call, or ``None``.
        stream_messages: Whether messages arrive as
            :class:`~sansws.events.MessageChunk` events.
    """

    _client: bool

    def __init__(self, settings: Mapping[str, Any]) -> None:
        # Called by the subclasses with settled options (sansws.options).
        self.max_message_size: int | None = settings["max_message_size"]
        self.max_fragments: int | None = settings["max_fragments"]
        self.ping_interval: float | None = settings["ping_interval"]
        self.ping_timeout: float | None = settings["ping_timeout"]
        self.close_timeout: float | None = settings["close_timeout"]
        self.open_timeout: float | None = settings["open_timeout"]
        self.stream_messages: bool = settings["stream_messages"]

        self._state = CONNECTING
        self._out: list[bytes] = []
        self._close_transport = False

        #: The subprotocol in use, once the handshake has completed.
        self.subprotocol: str | None = None
        #: The extensions in use, as negotiated, once the handshake has completed.
        self.extensions: tuple[ExtensionOffer, ...] = ()
        #: The opening handshake's request: the one a client sent (from
        #: construction on) or a server received (once it arrived).
        self.request: Request | None = None
        #: The opening handshake's response: :class:`~sansws.events.Accepted`
        #: once the connection opened, :class:`~sansws.events.Rejected` if a
        #: client's handshake was refused.
        self.response: Accepted | Rejected | None = None
        self._extension: Extension | None = None
        self._rsv_allowed = 0

        # Close handshake.
        self._close_sent: tuple[int | None, str] | None = None
        self._close_received: tuple[int, str] | None = None
        #: The close code once ``CLOSED`` (see :class:`~sansws.events.Closed`).
        self.close_code: int | None = None
        #: The close reason once ``CLOSED``.
        self.close_reason: str | None = None
        #: Why sansws ended the connection, if it did.
        self.close_error: WebSocketError | None = None

        # Incoming frames: unparsed bytes, and the data frame whose payload
        # is still arriving.
        self._buf = b""
        self._frame_remaining = 0
        self._frame_mask: bytes | None = None
        self._frame_offset = 0
        self._frame_fin = False
        # Incoming message being assembled: opcode 0 means none.
        self._msg_opcode = 0
        self._msg_rsv = 0
        self._msg_size = 0
        # Frames of the message so far; reset when a message ends, so that
        # whole messages (the fast path) never touch it.
        self._msg_frames = 1
        self._msg_parts: list[Any] = []
        # The start of a UTF-8 character cut at the end of the last piece
        # of a text message.
        self._msg_tail = b""

        # Holding a Close frame or a violation while messages before it may
        # still be answered (see receive_data's defer_terminal).
        self._defer: bool | None = None
        self._held = False

        # Outgoing fragmented message: opcode 0 means none.
        self._send_opcode = 0
        self._mask_keys = MaskKeySource() if self._client else None

        # Timers: name -> absolute deadline, or _PENDING until armed.
        self._timers: dict[str, float] = {}
        self._keepalive_payload: bytes | None = None
        self._keepalive_sent_at = 0.0
        if self.open_timeout is not None:
            self._timers[_OPEN_TIMER] = _PENDING

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        """The connection's :class:`State`."""
        return self._state

    @property
    def request_headers(self) -> Headers | None:
        """The opening handshake's request headers (sent by a client,
        received by a server)."""
        return None if self.request is None else self.request.headers

    @property
    def response_headers(self) -> Headers | None:
        """The opening handshake's response headers."""
        return None if self.response is None else self.response.headers

    @property
    def should_close_transport(self) -> bool:
        """Whether the driver should now write ``data_to_send()`` and close the
        transport. Once true, it stays true."""
        return self._close_transport

    def closed_error(self) -> ConnectionClosed:
        """The exception a driver raises when the application uses this
        connection after it closed: :class:`~sansws.errors.ConnectionClosedOK`
        after a normal closure, else
        :class:`~sansws.errors.ConnectionClosedError`.

        Before ``CLOSED`` (while ``CLOSING``), describes the close sent so far.
        Its ``__cause__`` is :attr:`close_error`: why sansws ended the
        connection, if it did.
        """
        code = self.close_code
        reason = self.close_reason or ""
        if code is None:
            code, reason = 1006, ""
            if self._close_sent is not None and self._close_sent[0] is not None:
                code, reason = self._close_sent[0], self._close_sent[1]
        clean = self._close_sent is not None and self._close_received is not None
        cls = ConnectionClosedOK if clean and code in OK_CLOSE_CODES else ConnectionClosedError
        error = cls(code, reason, clean)
        error.__cause__ = self.close_error
        return error

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> bytes:
        """The bytes to write to the transport, in order; each byte is
        returned once."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """When ``handle_timeout`` should next be called: an absolute time on
        the clock the driver passes to it, ``-inf`` if a timer waits to be
        armed (call it now), or ``None`` if no timer runs."""
        timers = self._timers
        return min(timers.values()) if timers else None

    def handle_timeout(self, now: float) -> list[Event]:
        """Arm the timers started since the last call and fire those whose
        deadline is at or before ``now``.

        ``now`` comes from a monotonic clock, the same one on every call.
        Calling this early or often is harmless.
        """
        timers = self._timers
        events: list[Event] = []
        if self._held and any(_PENDING < deadline <= now for deadline in timers.values()):
            # Held input goes first: a timer must not end a connection whose
            # peer already asked to close it.
            events = self.release_held_input()
        for name, deadline in list(timers.items()):
            if deadline == _PENDING:
                timers[name] = now + self._timer_delay(name)
        for name in _TIMER_ORDER:
            if name not in timers or timers[name] > now:
                continue
            del timers[name]
            if name == _OPEN_TIMER:
                if self._state is CONNECTING:
                    self._end(1006, "", OpenTimeout("opening handshake timed out"), events)
            elif name == _CLOSE_TIMER:
                if self._state is CLOSING:
                    self._end(1006, "", CloseTimeout("close handshake timed out"), events)
                self._close_transport = True
            elif name == _PONG_TIMER:
                if self._state is OPEN:
                    self._fail(
                        1011,
                        "keepalive ping timeout",
                        PingTimeout(f"no pong within {self.ping_timeout} seconds"),
                        events,
                    )
            elif self._state is OPEN:  # keepalive
                self._send_keepalive(now)
        return events

    def _timer_delay(self, name: str) -> float:
        delay = {
            _OPEN_TIMER: self.open_timeout,
            _CLOSE_TIMER: self.close_timeout,
            _KEEPALIVE_TIMER: self.ping_interval,
            _PONG_TIMER: self.ping_timeout,
        }[name]
        assert delay is not None
        return delay

    def _send_keepalive(self, now: float) -> None:
        assert self.ping_interval is not None
        if self._keepalive_payload is None:
            # Four random bytes tell this Ping's Pong apart from the answers
            # to the application's own Pings.
            self._keepalive_payload = secrets.token_bytes(4)
            self._keepalive_sent_at = now
            self._write_frame(True, 0, _PING, self._keepalive_payload)
            if self.ping_timeout is not None:
                self._timers[_PONG_TIMER] = now + self.ping_timeout
        self._timers[_KEEPALIVE_TIMER] = now + self.ping_interval

    # ------------------------------------------------------------------ sending

    def send_text(self, data: str, *, final: bool = True) -> None:
        """Queue a text message, or with ``final=False`` the first or a middle
        fragment of one (the next ``send_text`` call continues it).

        Raises:
            InvalidState: The connection is not ``OPEN``.
            LocalProtocolError: A fragmented binary message is in progress.
        """
        # Encoded to UTF-8 only where needed: build_frame copies ASCII text
        # straight from the string.
        self._send_data(_TEXT, data, final)

    def send_binary(self, data: bytes | bytearray | memoryview, *, final: bool = True) -> None:
        """Queue a binary message, or a fragment of one (see :meth:`send_text`).

        Raises:
            InvalidState: The connection is not ``OPEN``.
            LocalProtocolError: A fragmented text message is in progress.
        """
        self._send_data(_BINARY, bytes(data) if not isinstance(data, bytes) else data, final)

    def _send_data(self, opcode: int, payload: bytes | str, final: bool) -> None:
        if self._state is not OPEN:
            raise InvalidState(
                f"cannot send a message: connection is {self._state.name}", self._state
            )
        first = self._send_opcode == 0
        if not first and self._send_opcode != opcode:
            kind = "text" if self._send_opcode == _TEXT else "binary"
            raise LocalProtocolError(f"a fragmented {kind} message is in progress")
        rsv = 0
        if self._extension is not None:
            if isinstance(payload, str):
                payload = payload.encode()
            rsv, payload = self._extension.encode(payload, first, final)
            if not first:
                rsv = 0
        # Written first: text that cannot be encoded raises before the state
        # changes.
        self._write_frame(final, rsv, opcode if first else _CONTINUATION, payload)
        self._send_opcode = 0 if final else opcode

    def _shared_encoding(self, payload: bytes) -> Hashable | None:
        """For a broadcast: a key that connections whose frame for this
        whole message is the same bytes share (see
        :meth:`Extension.shared_encoding`), or ``None`` if this one must
        build its own (a client masks each frame with a key of its own)."""
        if self._mask_keys is not None:
            return None
        if self._extension is None:
            return UNCHANGED
        return self._extension.shared_encoding(payload)

    def _whole_frame(self, opcode: int, payload: bytes) -> bytes:
        """The frame of a whole message, as :meth:`_send_data` would queue
        it, for connections sharing its :meth:`_shared_encoding`."""
        rsv = 0
        if self._extension is not None:
            rsv, payload = self._extension.encode(payload, True, True)
        return build_frame(0x80 | rsv | opcode, payload, None)

    def _send_frame(self, frame: bytes) -> bytes:
        """Send a frame built by :meth:`_whole_frame`, whose
        :meth:`_shared_encoding` this connection shares: return what
        :meth:`data_to_send` would, this frame after anything queued before."""
        if self._state is not OPEN:
            state = self._state
            raise InvalidState(f"cannot send a message: connection is {state.name}", state)
        if self._send_opcode:
            raise LocalProtocolError("a fragmented message is in progress")
        if not self._out:
            return frame  # nothing before it: no list, no join
        self._out.append(frame)
        return self.data_to_send()

    def send_ping(self, data: bytes = b"") -> None:
        """Queue a Ping carrying ``data`` (at most 125 bytes).

        Raises:
            InvalidState: The connection is not ``OPEN``.
            LocalProtocolError: ``data`` is longer than 125 bytes.
        """
        self._send_control(_PING, bytes(data))

    def send_pong(self, data: bytes = b"") -> None:
        """Queue an unsolicited Pong carrying ``data`` (at most 125 bytes).
        Pings are answered automatically; this is for heartbeats.

        Raises:
            InvalidState: The connection is not ``OPEN``.
            LocalProtocolError: ``data`` is longer than 125 bytes.
        """
        self._send_control(_PONG, bytes(data))

    def _send_control(self, opcode: int, payload: bytes) -> None:
        if self._state is not OPEN:
            kind = "ping" if opcode == _PING else "pong"
            raise InvalidState(
                f"cannot send a {kind}: connection is {self._state.name}", self._state
            )
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError(f"control frame payload of {len(payload)} bytes > 125")
        self._write_frame(True, 0, opcode, payload)

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Start the close handshake with ``code`` and ``reason``.

        ``code=None`` sends a Close frame without a code (the peer sees 1005),
        in which case ``reason`` must be empty. Before the handshake
        completes, closes without a Close frame (the driver should close the
        transport). Once the connection is ``CLOSING`` or ``CLOSED``, does
        nothing.

        Raises:
            LocalProtocolError: The code may not be sent (only 1000-1003,
                1007-1014 and 3000-4999 may), or the reason is longer than 123
                bytes in UTF-8.
        """
        payload = self._close_payload(code, reason)
        if self._state is CONNECTING:
            self._abort_handshake()
            return
        if self._state is not OPEN:
            return
        self._write_frame(True, 0, _CLOSE, payload)
        self._close_sent = (code, reason)
        self._state = CLOSING
        self._timers.pop(_KEEPALIVE_TIMER, None)
        self._timers.pop(_PONG_TIMER, None)
        if self.close_timeout is not None:
            self._timers[_CLOSE_TIMER] = _PENDING

    def fail(self, code: int = 1011, reason: str = "") -> None:
        """Fail the connection from this side (RFC 6455 section 7.1.7): send
        a Close frame with ``code`` and ``reason`` unless one was sent, and
        end at once without waiting for the peer's. The driver closes the
        transport. For when the application cannot go on, e.g. a message
        half sent in fragments whose source failed. Does nothing once
        ``CLOSED``.

        Raises:
            LocalProtocolError: Invalid code or reason (see :meth:`close`).
        """
        payload = self._close_payload(code, reason)
        if self._state is CONNECTING:
            self._abort_handshake()
            return
        if self._state is CLOSED:
            return
        if self._close_sent is None:
            self._write_frame(True, 0, _CLOSE, payload)
            self._close_sent = (code, reason)
        self._state = CLOSED
        self.close_code, self.close_reason = code, reason
        self._timers.clear()
        self._close_transport = True

    @staticmethod
    def _close_payload(code: int | None, reason: str) -> bytes:
        if code is None:
            if reason:
                raise LocalProtocolError("a close reason requires a close code")
            return b""
        if not is_valid_close_code(code):
            raise LocalProtocolError(f"close code {code} may not be sent")
        payload = serialize_close_payload(code, reason)
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError("close reason longer than 123 bytes in UTF-8")
        return payload

    def _abort_handshake(self) -> None:
        self._state = CLOSED
        self.close_code, self.close_reason = 1006, ""
        self._timers.clear()
        self._close_transport = True

    def _write_frame(self, fin: bool, rsv: int, opcode: int, payload: bytes | str) -> None:
        # One bytes object per frame: data_to_send() then hands a lone frame
        # over without joining (copying) it again.
        mask = self._mask_keys.next_key() if self._mask_keys is not None else None
        self._out.append(build_frame((0x80 if fin else 0) | rsv | opcode, payload, mask))

    # ------------------------------------------------------------------ receiving

    def receive_data(
        self, data: bytes | bytearray | memoryview, *, defer_terminal: bool | None = None
    ) -> list[Event]:
        """Process bytes received from the peer; ``b""`` means the peer closed
        its side of the transport.

        Returns the events the bytes complete, in order. Never raises for
        anything the peer sends: a violation fails the connection, queues
        the right Close frame and ends the list with a
        :class:`~sansws.events.Closed` event whose ``error`` says why.

        Args:
            data: The bytes read.
            defer_terminal: For a layer that queues messages for an
                application (the :class:`~sansws.endpoint.Endpoint`): with
                ``False``, a Close frame, or a frame that breaks the
                protocol, that follows a message completed by this same call
                is held, unprocessed, so that the application can still
                answer that message before the connection ends; with
                ``True``, such a frame is held in any case (the application
                still owes answers to earlier messages). See
                :meth:`release_held_input`. ``None`` (the default) acts on
                every frame at once.
        """
        self._defer = defer_terminal
        if self._held:
            released = self.release_held_input()
            released.extend(self.receive_data(data, defer_terminal=defer_terminal))
            return released
        state = self._state
        if not data:
            return self._receive_eof()
        if state is CLOSED:
            return []  # nothing the peer sends after the end is processed
        data = bytes(data)
        if state is CONNECTING:
            return self._receive_handshake(data)
        events: list[Event] = []
        self._receive_frames(data, events)
        return events

    def _receive_handshake(self, data: bytes) -> list[Event]:
        raise NotImplementedError

    def _receive_eof(self) -> list[Event]:
        events: list[Event] = []
        if self._state is CLOSED:
            self._close_transport = True
            self._timers.clear()  # the close timer waited for this EOF
        elif self._state is CONNECTING:
            self._receive_handshake_eof(events)
        else:
            self._end(1006, "", None, events)
        return events

    def _receive_handshake_eof(self, events: list[Event]) -> None:
        raise NotImplementedError

    @property
    def holding(self) -> bool:
        """Whether received input is held back (see :meth:`release_held_input`);
        reading more is pointless until it is released."""
        return self._held

    def release_held_input(self) -> list[Event]:
        """Process the input held back while the application answered the
        messages before it: a Close frame (answered now) or a frame that
        breaks the protocol (which fails the connection now).

        Either frame ends the connection, but the messages that came before
        it are valid and the application may still answer them; RFC 6455
        section 5.5.1 lets an endpoint finish sending before it answers a
        Close. When :meth:`receive_data` was told so (``defer_terminal``),
        the frame and everything after it are held, unprocessed, and the
        connection stays open. They are processed, after whatever the
        application sent meanwhile, by this method, by the next
        :meth:`receive_data` call, or by :meth:`handle_timeout` once a timer
        is due. The layer that asked for the hold bounds it in time (the
        Endpoint releases it after at most one second).
        """
        if not self._held:
            return []
        self._held = False
        data, self._buf = self._buf, b""
        events: list[Event] = []
        defer, self._defer = self._defer, None
        try:
            self._receive_frames(data, events)
        finally:
            self._defer = defer
        return events

    def _reject_frame(
        self, data: bytes, pos: int, code: int, reason: str, events: list[Event]
    ) -> None:
        """The frame starting at ``data[pos]`` breaks the protocol: fail, or
        hold it while earlier messages may still be answered."""
        if not self._hold(data, pos, events):
            self._fail(code, reason, None, events)

    def _hold(self, data: bytes, pos: int, events: list[Event]) -> bool:
        """Hold the input from ``data[pos]`` on if messages before it may
        still be answered (see :meth:`release_held_input`)."""
        defer = self._defer
        if (
            defer is not None
            and self._state is OPEN  # after our own Close, no answer can follow
            and (defer or any(type(event) is Message for event in events))
        ):
            self._buf = data[pos:]
            self._held = True
            return True
        return False

    def _receive_frames(self, data: bytes, events: list[Event]) -> None:
        if self._buf:
            data = self._buf + data
            self._buf = b""
        end = len(data)
        pos = 0
        expect_mask = not self._client
        max_size = self.max_message_size
        while pos < end:
            if self._frame_remaining:
                pos = self._receive_partial_payload(data, pos, events)
                if self._state is CLOSED:
                    return
                continue
            # Frame header (RFC 6455 section 5.2).
            if end - pos < 2:
                break
            first = data[pos]
            second = data[pos + 1]
            length = second & 0x7F
            header = 2
            if length >= 126:
                if length == 126:
                    if end - pos < 4:
                        break
                    length = (data[pos + 2] << 8) | data[pos + 3]
                    header = 4
                    if length < 126:
                        self._fail(1002, _NOT_SHORTEST, None, events)
                        return
                else:
                    if end - pos < 10:
                        break
                    length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                    header = 10
                    if length >> 63:
                        self._reject_frame(
                            data, pos, 1002, "frame length has its most significant bit set", events
                        )
                        return
                    if length < 65536:
                        self._fail(1002, _NOT_SHORTEST, None, events)
                        return
            if second & 0x80:
                if not expect_mask:
                    self._reject_frame(data, pos, 1002, "masked frame from server", events)
                    return
                if end - pos < header + 4:
                    break
                mask: bytes | None = data[pos + header : pos + header + 4]
                header += 4
            else:
                if expect_mask:
                    self._reject_frame(data, pos, 1002, "unmasked frame from client", events)
                    return
                mask = None
            opcode = first & 0x0F
            fin = first & 0x80
            rsv = first & 0x70

            if opcode >= 8:
                # Control frame: small, never fragmented, handled once whole.
                if not fin or length > MAX_CONTROL_PAYLOAD or rsv or opcode > _PONG:
                    reason = self._control_error(opcode, fin, length, rsv)
                    self._reject_frame(data, pos, 1002, reason, events)
                    return
                if end - pos < header + length:
                    break
                if opcode == _CLOSE and self._hold(data, pos, events):
                    return
                start = pos + header
                pos = start + length
                payload = data[start:pos]
                if mask is not None and length:
                    payload = apply_mask(payload, mask)
                self._receive_control(opcode, payload, events)
                if self._state is CLOSED:
                    return
                continue

            if opcode == _CONTINUATION:
                if not self._msg_opcode:
                    self._reject_frame(
                        data, pos, 1002, "continuation frame without a message to continue", events
                    )
                    return
                if rsv:
                    self._reject_frame(
                        data, pos, 1002, "reserved bits set on a continuation frame", events
                    )
                    return
                self._msg_frames += 1
                if self.max_fragments is not None and self._msg_frames > self.max_fragments:
                    error = TooManyFragments(self._msg_frames, self.max_fragments)
                    self._fail(1009, error.reason, error, events)
                    return
            elif opcode in (_TEXT, _BINARY):
                if self._msg_opcode:
                    self._reject_frame(
                        data, pos, 1002, "new data frame inside a fragmented message", events
                    )
                    return
                if rsv & ~self._rsv_allowed:
                    reason = f"reserved bits 0x{rsv:02x} set without an extension"
                    self._reject_frame(data, pos, 1002, reason, events)
                    return
                self._msg_opcode = opcode
                self._msg_rsv = rsv
            else:
                self._reject_frame(data, pos, 1002, f"reserved opcode {opcode}", events)
                return

            if max_size is not None and not self._msg_rsv and self._msg_size + length > max_size:
                self._fail(
                    1009,
                    f"message too big: more than {max_size} bytes",
                    PayloadTooBig(self._msg_size + length, max_size),
                    events,
                )
                return

            start = pos + header
            available = end - start
            if available >= length:
                pos = start + length
                # A view spares copying a large payload before it is unmasked
                # or decoded.
                piece = data[start:pos] if length < _VIEW_MIN else memoryview(data)[start:pos]
                if fin and opcode != _CONTINUATION and not rsv and not self.stream_messages:
                    # Fast path: a whole, unfragmented, uncompressed message.
                    self._msg_opcode = 0
                    if opcode == _TEXT:
                        try:
                            events.append(Message(decode_text(piece, mask, True)[0]))
                        except UnicodeDecodeError:
                            self._fail(1007, "invalid UTF-8 in text message", None, events)
                            return
                    elif mask is not None:
                        events.append(Message(apply_mask(piece, mask)))
                    else:
                        events.append(Message(bytes(piece)))
                    continue
                self._receive_piece(piece, mask, bool(fin), events)
            else:
                # The payload is still arriving: process what is here.
                pos = end
                self._frame_remaining = length - available
                self._frame_mask = mask
                self._frame_offset = available
                self._frame_fin = bool(fin)
                piece = data[start:end] if available < _VIEW_MIN else memoryview(data)[start:end]
                self._receive_piece(piece, mask, False, events)
            if self._state is CLOSED:
                return
        if pos < end:
            self._buf = data[pos:]

    def _receive_partial_payload(self, data: bytes, pos: int, events: list[Event]) -> int:
        take = min(self._frame_remaining, len(data) - pos)
        piece = data[pos : pos + take] if take < _VIEW_MIN else memoryview(data)[pos : pos + take]
        mask = self._frame_mask
        if mask is not None:
            offset = self._frame_offset & 3
            if offset:
                mask = mask[offset:] + mask[:offset]
        self._frame_offset += take
        self._frame_remaining -= take
        final = self._frame_fin and not self._frame_remaining
        self._receive_piece(piece, mask, final, events)
        return pos + take

    @staticmethod
    def _control_error(opcode: int, fin: int, length: int, rsv: int) -> str:
        if opcode > _PONG:
            return f"reserved opcode {opcode}"
        if not fin:
            return "fragmented control frame"
        if length > MAX_CONTROL_PAYLOAD:
            return f"control frame payload of {length} bytes > 125"
        return f"reserved bits 0x{rsv:02x} set on a control frame"

    def _receive_payload(self, payload: bytes, final: bool, events: list[Event]) -> None:
        """Add a piece of a data message; ``final`` marks its last piece."""
        if self._msg_rsv:
            assert self._extension is not None
            limit = None
            if self.max_message_size is not None:
                limit = self.max_message_size - self._msg_size
            try:
                payload = self._extension.decode(payload, self._msg_rsv, final, limit)
            except PayloadTooBig as exc:
                max_size = self.max_message_size
                assert max_size is not None
                error = PayloadTooBig(self._msg_size + exc.size, max_size)
                self._fail(1009, f"message too big: more than {max_size} bytes", error, events)
                return
            except ProtocolError as exc:
                self._fail(exc.code, exc.reason, exc, events)
                return
        self._msg_size += len(payload)
        data: str | bytes
        if self._msg_opcode == _TEXT:
            # Each piece is validated as it arrives; a character cut at its
            # end waits for the next piece.
            if self._msg_tail:
                payload = self._msg_tail + payload
            try:
                data, self._msg_tail = decode_text(payload, None, final)
            except UnicodeDecodeError:
                self._fail(1007, "invalid UTF-8 in text message", None, events)
                return
        else:
            data = payload
        self._deliver(data, final, events)

    def _receive_piece(
        self, piece: bytes | memoryview, mask: bytes | None, final: bool, events: list[Event]
    ) -> None:
        """Add a piece of a data message as it was received: still masked
        with ``mask`` unless that is ``None``, possibly a view of the received
        bytes."""
        if self._msg_opcode == _TEXT and not self._msg_rsv and not self._msg_tail:
            # Unmasked, validated and decoded in one pass.
            try:
                text, self._msg_tail = decode_text(piece, mask, final)
            except UnicodeDecodeError:
                self._fail(1007, "invalid UTF-8 in text message", None, events)
                return
            self._msg_size += len(piece)
            self._deliver(text, final, events)
        elif mask is not None:
            self._receive_payload(apply_mask(piece, mask), final, events)
        else:
            self._receive_payload(bytes(piece), final, events)

    def _deliver(self, data: str | bytes, final: bool, events: list[Event]) -> None:
        """Hand over a decoded piece of a data message, or buffer it until
        the message is complete."""
        if self.stream_messages:
            # An empty chunk says something only when it ends the message
            # (a frame header alone, or half a character, carries no data).
            if data or final:
                events.append(MessageChunk(data, final))
        else:
            parts = self._msg_parts
            if data:
                # A peer sending tiny fragments must not make each byte cost
                # a list slot and an object: small pieces are merged, which
                # keeps the overhead within a few percent of the payload.
                if parts and len(data) < _MERGE_BELOW and len(parts[-1]) < _MERGE_BELOW:
                    parts[-1] += data
                else:
                    parts.append(data)
            if final:
                joined: str | bytes
                if len(parts) == 1:
                    joined = parts[0]
                elif not parts:
                    joined = "" if self._msg_opcode == _TEXT else b""
                elif self._msg_opcode == _TEXT:
                    joined = "".join(parts)
                else:
                    joined = b"".join(parts)
                events.append(Message(joined))
        if final:
            self._msg_opcode = 0
            self._msg_rsv = 0
            self._msg_size = 0
            self._msg_frames = 1
            self._msg_parts = []
            self._msg_tail = b""

    def _receive_control(self, opcode: int, payload: bytes, events: list[Event]) -> None:
        if opcode == _PING:
            # RFC 6455 section 5.5.2: answer "unless it already received a
            # Close frame", which ends all processing: so also while CLOSING.
            self._write_frame(True, 0, _PONG, payload)
            events.append(Ping(payload))
        elif opcode == _PONG:
            if payload == self._keepalive_payload and self._keepalive_payload is not None:
                self._keepalive_payload = None
                self._timers.pop(_PONG_TIMER, None)
                events.append(Pong(payload, self._keepalive_sent_at))
            else:
                events.append(Pong(payload))
        else:
            self._receive_close(payload, events)

    def _receive_close(self, payload: bytes, events: list[Event]) -> None:
        try:
            code, reason = parse_close_payload(payload)
        except UnicodeDecodeError:
            self._fail(1007, "invalid UTF-8 in close reason", None, events)
            return
        except ValueError as exc:
            self._fail(1002, str(exc), None, events)
            return
        self._close_received = (code, reason)
        if self._state is OPEN:
            # Echo the code and the reason (RFC 6455 section 5.5.1 suggests
            # the code; browsers show the reason of the frame they receive).
            # A Close without a code is answered by a Close without a code.
            if code == 1005:
                self._write_frame(True, 0, _CLOSE, b"")
                self._close_sent = (None, "")
            else:
                self._write_frame(True, 0, _CLOSE, serialize_close_payload(code, reason))
                self._close_sent = (code, reason)
        self._timers.pop(_CLOSE_TIMER, None)
        self._state = CLOSED
        self._finish(code, reason, None, events, clean=True)

    # ------------------------------------------------------------------ ending

    def _fail(
        self, code: int, reason: str, error: WebSocketError | None, events: list[Event]
    ) -> None:
        """Fail the WebSocket connection (RFC 6455 section 7.1.7): send a
        Close frame with ``code`` unless one was sent, stop processing input,
        and close the transport."""
        if error is None:
            error = ProtocolError(code, reason)
        if self._close_sent is None and self._state is OPEN:
            # A Close payload holds at most 123 bytes of reason: cut it on a
            # character boundary so that it stays valid UTF-8.
            short = reason.encode()[:123].decode(errors="ignore")
            self._write_frame(True, 0, _CLOSE, serialize_close_payload(code, short))
            self._close_sent = (code, reason)
        self._end(code, reason, error, events)

    def _end(
        self, code: int, reason: str, error: WebSocketError | None, events: list[Event]
    ) -> None:
        """Move to CLOSED without a complete close handshake, and close the
        transport at once."""
        self._state = CLOSED
        self._finish(code, reason, error, events, clean=False)
        self._close_transport = True

    def _finish(
        self,
        code: int,
        reason: str,
        error: WebSocketError | None,
        events: list[Event],
        *,
        clean: bool,
    ) -> None:
        self.close_code = code
        self.close_reason = reason
        self.close_error = error
        self._buf = b""
        self._msg_parts = []
        self._frame_remaining = 0
        self._timers.clear()
        self._keepalive_payload = None
        if clean:
            if not self._client or self.close_timeout is None:
                self._close_transport = not self._client
            else:
                # The client lets the server close the transport first.
                self._timers[_CLOSE_TIMER] = _PENDING
        events.append(Closed(code, reason, clean, error))

    def _opened(self, subprotocol: str | None, extension: Extension | None) -> None:
        self._state = OPEN
        self.subprotocol = subprotocol
        self._extension = extension
        if extension is not None:
            self._rsv_allowed = extension.rsv_mask
            self.extensions = (extension.negotiated(),)
        self._timers.pop(_OPEN_TIMER, None)
        if self.ping_interval is not None:
            self._timers[_KEEPALIVE_TIMER] = _PENDING

    def _start_open(
        self, settings: Mapping[str, Any], subprotocol: str | None, extension: Extension | None
    ) -> None:
        # For opened(): the state a completed handshake leaves, without one.
        Connection.__init__(self, settings)
        self._opened(subprotocol, extension)

    @property
    def extensions_header(self) -> str | None:
        """The ``Sec-WebSocket-Extensions`` value stating the extensions in
        use, or ``None`` if there are none: what a server opened with
        :meth:`ServerConnection.opened` puts in its own answer."""
        return build_extension_list(self.extensions) if self.extensions else None


class ClientConnection(Connection):
    """The client side of a WebSocket connection.

    The opening handshake request is queued by the constructor: call
    ``data_to_send()`` and write it once the transport is connected. The
    handshake ends with an :class:`~sansws.events.Accepted` event (the
    connection is ``OPEN``), a :class:`~sansws.events.Rejected` event (the
    server answered with another status) or a
    :class:`~sansws.events.Closed` event whose ``error`` says what was wrong
    with the response.

    Args:
        url: The ``ws://`` or ``wss://`` URL, or a parsed
            :class:`~sansws.uri.WebSocketURI`. It sets the request target
            and the Host header; credentials in it become a Basic
            Authorization header. The transport is the driver's business.
        **options: The options of
            :class:`~sansws.options.ClientConnectionOptions`
            (docs/options.md): ``subprotocols``, ``extra_headers`` (a
            User-Agent, Origin or Authorization given there replaces the
            default one), ``origin``, ``user_agent``, ``compression``, the
            limits and the timers.

    Raises:
        InvalidURI: ``url`` is not a valid WebSocket URI.
        UnsafeHeader: A header name or value would be unsafe to send.
        TypeError: An option is unknown or of the wrong type.
        ValueError: An option is out of range.
    """

    _client = True

    def __init__(
        self, url: str | WebSocketURI, **options: Unpack[ClientConnectionOptions]
    ) -> None:
        self._setup(url, settle(options, CLIENT_CONNECTION, "ClientConnection()"))

    @classmethod
    def _settled(cls, url: str | WebSocketURI, settings: Mapping[str, Any]) -> ClientConnection:
        # For callers that settled the options already (sessions, drivers).
        connection = cls.__new__(cls)
        connection._setup(url, settings)
        return connection

    @classmethod
    def opened(
        cls,
        *,
        subprotocol: str | None = None,
        accepted_extensions: Sequence[str] = (),
        **options: Unpack[ClientConnectionOptions],
    ) -> ClientConnection:
        """A client connection that starts ``OPEN``, for a client that did
        the opening handshake itself (an HTTP/2 or HTTP/3 extended CONNECT,
        RFC 8441 and RFC 9220, or an HTTP library's own upgrade): every
        frame, close, timer and limit rule is the same as after
        :meth:`receive_data` accepted a 101.

        Args:
            subprotocol: The subprotocol the server selected, if any.
            accepted_extensions: The server's ``Sec-WebSocket-Extensions`` values:
                the extension they accept is built as after a 101, among
                those the ``compression`` (or ``extensions``) option offers.
            **options: As for the constructor; those of the handshake
                (``subprotocols``, ``extra_headers``, ``origin``,
                ``user_agent``, the header limits) play no part.

        Raises:
            NegotiationError: ``accepted_extensions`` are malformed or accept one
                that was not offered.
            TypeError: An option is unknown or of the wrong type.
            ValueError: An option is out of range.

        The connection has no :attr:`request`, :attr:`response` or ``uri``.
        """
        settings = settle(options, CLIENT_CONNECTION, "ClientConnection.opened()")
        factories = client_extension_factories(settings["extensions"], settings["compression"])
        extension, _ = accept_extensions(factories, list(accepted_extensions))
        connection = cls.__new__(cls)
        connection._start_open(settings, subprotocol, extension)
        return connection

    def _setup(self, url: str | WebSocketURI, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self.uri = url if isinstance(url, WebSocketURI) else parse_uri(url)
        extensions = settings["extensions"]
        self._handshake = ClientHandshake(
            self.uri,
            subprotocols=settings["subprotocols"],
            extra_headers=settings["extra_headers"],
            origin=settings["origin"],
            extensions=client_extension_factories(extensions, settings["compression"]),
            user_agent=settings["user_agent"],
            limits=_limits(settings),
        )
        self.request = Request(
            path=self.uri.resource_name,
            headers=self._handshake.request_headers,
            subprotocols=tuple(settings["subprotocols"]),
            extensions=tuple(extension_offers(extensions)),
        )
        self._out.append(self._handshake.request_bytes)

    def _receive_handshake(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        self._handle_handshake_result(self._handshake.receive_data(data), events)
        return events

    def _receive_handshake_eof(self, events: list[Event]) -> None:
        result = self._handshake.receive_data(b"")
        if result is None:  # pragma: no cover - h11 always concludes at EOF
            result_error: HandshakeError = InvalidMessage("connection closed during handshake")
            self._end(1006, "", result_error, events)
            return
        self._handle_handshake_result(result, events)

    def _handle_handshake_result(self, result: ClientResult | None, events: list[Event]) -> None:
        if result is None:
            return
        if result.accepted is not None:
            accepted = result.accepted
            self.response = accepted
            self._opened(accepted.subprotocol, result.extension)
            events.append(accepted)
            if result.trailing:
                self._receive_frames(result.trailing, events)
        elif result.rejected is not None:
            rejected = result.rejected
            self.response = rejected
            self._abort_handshake()
            self.close_error = InvalidStatus(rejected.status, rejected.headers, rejected.body)
            events.append(rejected)
        else:
            assert result.error is not None
            self._end(1006, "", result.error, events)


class ServerConnection(Connection):
    """The server side of a WebSocket connection.

    When the request has arrived, ``receive_data`` returns a
    :class:`~sansws.events.Request`; answer it with :meth:`accept` or
    :meth:`reject`. Bytes that are not an HTTP request at all are answered
    with 400 by the core, and end in a :class:`~sansws.events.Closed` event.

    Args:
        **options: The options of
            :class:`~sansws.options.ServerConnectionOptions`
            (docs/options.md): ``subprotocols`` (:meth:`accept` picks the
            first one the client offered unless told otherwise),
            ``compression``, ``server_header``, the limits and the timers.

    Raises:
        UnsafeHeader: ``server_header`` would be unsafe to send.
        TypeError: An option is unknown or of the wrong type.
        ValueError: An option is out of range.
    """

    _client = False

    def __init__(self, **options: Unpack[ServerConnectionOptions]) -> None:
        self._setup(settle(options, SERVER_CONNECTION, "ServerConnection()"))

    @classmethod
    def _settled(cls, settings: Mapping[str, Any]) -> ServerConnection:
        # For callers that settled the options already (servers).
        connection = cls.__new__(cls)
        connection._setup(settings)
        return connection

    @classmethod
    def opened(
        cls,
        *,
        subprotocol: str | None = None,
        offered_extensions: Sequence[str] = (),
        **options: Unpack[ServerConnectionOptions],
    ) -> ServerConnection:
        """A server connection that starts ``OPEN``, for a server that did
        the opening handshake itself (an HTTP/2 or HTTP/3 extended CONNECT,
        RFC 8441 and RFC 9220, or a framework that parsed the request):
        every frame, close, timer and limit rule is the same as after
        :meth:`accept`.

        Args:
            subprotocol: The subprotocol the server selected, if any.
            offered_extensions: The client's ``Sec-WebSocket-Extensions`` values:
                an extension is negotiated from them as :meth:`accept`
                would, by the ``compression`` (or ``extensions``) option;
                answer with :attr:`extensions_header`.
            **options: As for the constructor; ``subprotocols``,
                ``server_header`` and the header limits play no part.

        Raises:
            NegotiationError: An offer is malformed.
            TypeError: An option is unknown or of the wrong type.
            ValueError: An option is out of range.

        The connection has no :attr:`request` or :attr:`response`.
        """
        settings = settle(options, SERVER_CONNECTION, "ServerConnection.opened()")
        factories = server_extension_factories(settings["extensions"], settings["compression"])
        try:
            offered = parse_extension_list(offered_extensions)
        except ValueError as exc:
            value = ", ".join(offered_extensions)
            raise NegotiationError("Sec-WebSocket-Extensions", value, str(exc)) from None
        extension, _ = negotiate_extensions(factories, offered)
        connection = cls.__new__(cls)
        connection._early_data = bytearray()
        connection.refused = False
        connection._start_open(settings, subprotocol, extension)
        return connection

    def _setup(self, settings: Mapping[str, Any]) -> None:
        super().__init__(settings)
        self._handshake = ServerHandshake(
            subprotocols=settings["subprotocols"],
            extensions=server_extension_factories(settings["extensions"], settings["compression"]),
            server_header=settings["server_header"],
            limits=_limits(settings),
        )
        # A bytearray: a peer trickling bytes must not make each one cost a
        # copy of everything before it.
        self._early_data = bytearray()
        #: Whether the opening handshake ended with an HTTP answer other
        #: than 101: :meth:`reject`, or the standard error response to an
        #: invalid request.
        self.refused = False

    def _receive_handshake(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self.request is not None:
            # Frames sent before the response: kept for after accept().
            self._early_data += data
            self._check_early_data(events)
            return events
        result = self._handshake.receive_data(data)
        if result is None:
            return events
        if result.request is None:
            assert result.error is not None
            self._out.append(result.response)
            self.refused = True
            self._end(1006, "", result.error, events)
            return events
        self.request = result.request
        self._early_data += result.trailing
        self._check_early_data(events)
        if self._state is CONNECTING:
            events.append(result.request)
        return events

    def _check_early_data(self, events: list[Event]) -> None:
        if len(self._early_data) > _MAX_EARLY_DATA:
            error = InvalidMessage("too much data before the handshake was answered")
            self._out.append(self._handshake.error_response(error))
            self.refused = True
            self._end(1006, "", error, events)

    def _receive_handshake_eof(self, events: list[Event]) -> None:
        error = None
        if self.request is None:
            error = InvalidMessage("connection closed during the opening handshake")
        self._end(1006, "", error, events)

    def _check_answerable(self) -> Request:
        if self._state is not CONNECTING or self.request is None:
            raise InvalidState("no handshake request awaits an answer", self._state)
        return self.request

    def planned_answer(
        self,
        subprotocol: str | None = None,
        extra_headers: HeadersLike = (),
        *,
        select: bool = True,
    ) -> tuple[int, Headers, bytes]:
        """What :meth:`accept` with these arguments would send now, as
        ``(status, headers, body)``, without sending it: the 101 and its
        headers, or for an invalid request the standard error answer (whose
        ``Content-Length``, ``Connection`` and ``Content-Type`` are added
        when it is sent). For a ``process_response`` hook to see and change.

        Raises:
            InvalidState: No request awaits an answer.
            LocalProtocolError: ``subprotocol`` was not offered, or a header
                is unsafe.
        """
        request = self._check_answerable()
        error = request.error
        if error is None:
            if subprotocol is None and select:
                subprotocol = self._handshake.select_subprotocol(request.subprotocols)
            try:
                _, _, headers = self._handshake.accept(request, subprotocol, extra_headers)
            except HandshakeError as exc:
                error = exc
            else:
                return 101, headers, b""
        status, items, body = self._handshake.error_answer(error)
        return status, Headers(items), body

    def accept(
        self,
        subprotocol: str | None = None,
        extra_headers: HeadersLike = (),
        *,
        select: bool = True,
        headers: HeadersLike | None = None,
    ) -> list[Event]:
        """Accept the handshake: queue the 101 response and open the
        connection.

        ``subprotocol`` defaults to the first subprotocol the client offered
        that this server supports; with ``select=False``, ``None`` means no
        subprotocol (the application chose). Extensions are negotiated with
        the factories given to the constructor. ``headers``, if given, are
        every header of the 101 instead of the usual ones and
        ``extra_headers`` (a :meth:`planned_answer`'s, changed): the
        handshake's own headers must be there unchanged.

        If the request is not a valid WebSocket handshake
        (``request.error``), answers it with the standard error response
        instead (400, or 426 for an unsupported version) and closes.

        Returns:
            The events carried by bytes that arrived after the request (a
            client may send frames without waiting for the response);
            usually empty.

        Raises:
            InvalidState: No request awaits an answer.
            LocalProtocolError: ``subprotocol`` was not offered, or a header
                is unsafe.
        """
        request = self._check_answerable()
        if request.error is not None:
            if headers is not None:
                raise LocalProtocolError(f"cannot answer 101 to this request: {request.error}")
            self._out.append(self._handshake.error_response(request.error))
            self._refused(request.error)
            return []
        if subprotocol is None and select:
            subprotocol = self._handshake.select_subprotocol(request.subprotocols)
        try:
            response, extension, sent = self._handshake.accept(
                request, subprotocol, extra_headers, replace=headers
            )
        except HandshakeError as exc:
            self._out.append(self._handshake.error_response(exc))
            self._refused(exc)
            return []
        self._out.append(response)
        # Only a connection still CONNECTING uses the handshake: its HTTP
        # parser and the raw request would otherwise stay in memory as long
        # as the connection, which a server holding many cannot afford.
        del self._handshake
        self._opened(subprotocol, extension)
        self.response = Accepted(subprotocol, self.extensions, sent)
        events: list[Event] = []
        early = bytes(self._early_data)
        self._early_data = bytearray()
        if early:
            self._receive_frames(early, events)
        return events

    def reject(self, status: int, headers: HeadersLike = (), body: bytes = b"") -> None:
        """Refuse the handshake with an HTTP response and close.

        ``Content-Length`` (except for 204 and 304) and ``Connection:
        close`` are added, and a plain text ``Content-Type`` if the body is
        not empty and none is given.

        Raises:
            InvalidState: No request awaits an answer.
            LocalProtocolError: ``status`` is not in 200-599, a 204 or 304
                would carry a body, or a header is unsafe.
        """
        self._check_answerable()
        self._out.append(self._handshake.reject(status, headers, body))
        self._refused(None)

    def _refused(self, error: WebSocketError | None) -> None:
        self.refused = True
        self._abort_handshake()
        self.close_error = error


def _limits(settings: Mapping[str, Any]) -> HandshakeLimits:
    return HandshakeLimits(
        settings["max_header_line"], settings["max_headers"], settings["max_body_size"]
    )
