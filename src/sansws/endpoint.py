"""What every driver needs on top of a connection, decided once.

A :class:`~sansws.Connection` speaks the protocol. An application also wants
a queue of received messages that stops the driver from reading when it is
full, ``ping()`` calls that wait for their own Pong and report the latency,
fragmented sends that cannot interleave or be left half-sent, a close
sequence, and a server that answers a request and closes when its handler
returns. :class:`Endpoint` holds all of that as plain data, so that the sync,
asyncio and trio drivers only differ in how they block:

* feed it with :meth:`Endpoint.receive_data` and :meth:`Endpoint.handle_timeout`
  (both take the driver's clock reading, and tick the connection's timers
  after every batch, as the connection requires);
* after each call, write :meth:`Endpoint.data_to_send`, close the transport
  when :attr:`Endpoint.should_close_transport`, stop or resume reading by
  :attr:`Endpoint.reading_paused`, wait at most until
  :meth:`Endpoint.next_deadline`, and wake the waiters the returned
  :class:`Progress` names.

Nothing here blocks, sleeps or reads a clock.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from .connection import Connection, ServerConnection, State
from .errors import ConnectionClosed, InvalidState, LocalProtocolError
from .events import Accepted, Closed, Event, Message, Pong, Rejected, Request
from .headers import Headers, HeadersLike

__all__ = ["Endpoint", "EndpointAttributes", "Progress", "Response"]

#: Bytes a driver asks for per read: large enough for 64 KiB frames in one
#: call, small enough to keep per-connection memory modest.
READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response refusing a handshake, as returned by a server's
    ``process_request`` hook (for authentication, origin checks, health
    checks): ``Response(401, body=b"unauthorized\\n")``."""

    status: int
    headers: HeadersLike = ()
    body: bytes = b""


@dataclass(slots=True)
class Progress:
    """What a call to the endpoint changed, for the driver to wake waiters.

    Attributes:
        messages: Messages were added to the queue.
        pongs: Pings answered: ``(payload, latency in seconds)``.
        handshake: The client's opening handshake ended (accepted, rejected
            or failed), or a server's request was answered.
        request: A server received this handshake request; answer it with
            :meth:`Endpoint.answer`.
        closed: The connection became ``CLOSED``. Pings still awaiting a
            Pong will never get one: fail their waiters.
    """

    messages: bool = False
    pongs: list[tuple[bytes, float]] = field(default_factory=list)
    handshake: bool = False
    request: Request | None = None
    closed: bool = False


class Endpoint:
    """A connection plus the application-facing state drivers share.

    Args:
        connection: A :class:`~sansws.ClientConnection` or
            :class:`~sansws.ServerConnection` (not in ``stream_messages``
            mode).
        max_queue: High-water mark of received messages waiting for the
            application (default 16): reading pauses when the queue reaches
            it and resumes when it drains to a quarter of it. ``None`` never
            pauses.
    """

    def __init__(self, connection: Connection, *, max_queue: int | None = 16) -> None:
        if connection.stream_messages:
            raise ValueError("drivers deliver whole messages: stream_messages must be False")
        if max_queue is not None and max_queue < 1:
            raise ValueError(f"max_queue must be >= 1 or None, not {max_queue!r}")
        self.connection = connection
        # The application answers messages after taking them from the queue:
        # a Close or a protocol violation right after them waits for those
        # answers.
        connection.hold_after_messages = True
        self.max_queue = max_queue
        self._resume_at = 0 if max_queue is None else max_queue // 4
        self._messages: deque[str | bytes] = deque()
        self._paused = False
        self._pings: OrderedDict[bytes, float] = OrderedDict()
        self._fragment_kind: type | None = None
        # The application took a message and has not asked for the next one.
        self._answering = False
        self._keepalive_latency = 0.0
        #: Set by the driver while the bytes it has not written yet are above
        #: its high-water mark (``write_limit``). Reading pauses too: every
        #: Ping read queues a Pong, so a peer that sends but never reads
        #: would otherwise grow that buffer without bound.
        self.writing_paused = False
        #: Round-trip time of the last answered Ping (the application's or a
        #: keepalive one), in seconds; 0 until one was answered.
        self.latency = 0.0

    # ------------------------------------------------------------------ feeding

    def receive_data(self, data: bytes, now: float) -> Progress:
        """Feed bytes read from the transport (``b""`` at end of stream)."""
        connecting = self.connection.state is State.CONNECTING
        progress = Progress()
        self.connection.messages_unanswered = self._answering or bool(self._messages)
        self._dispatch(self.connection.receive_data(data), now, progress)
        self._dispatch(self.connection.handle_timeout(now), now, progress)
        progress.handshake = connecting and self.connection.state is not State.CONNECTING
        return progress

    def handle_timeout(self, now: float) -> Progress:
        """Run the connection's timers; call when :meth:`next_deadline` passes."""
        connecting = self.connection.state is State.CONNECTING
        progress = Progress()
        self._dispatch(self.connection.handle_timeout(now), now, progress)
        progress.handshake = connecting and self.connection.state is not State.CONNECTING
        return progress

    def _dispatch(self, events: list[Event], now: float, progress: Progress) -> None:
        for event in events:
            kind = type(event)
            if kind is Message:
                assert isinstance(event, Message)
                self._messages.append(event.data)
                progress.messages = True
            elif kind is Pong:
                assert isinstance(event, Pong)
                self._acknowledge(event.data, now, progress)
            elif kind is Request:
                assert isinstance(event, Request)
                progress.request = event
            elif kind is Closed:
                progress.closed = True
                self._pings.clear()
        if self.max_queue is not None and len(self._messages) >= self.max_queue:
            self._paused = True
        keepalive = self.connection.latency
        if keepalive != self._keepalive_latency:
            self._keepalive_latency = keepalive
            self.latency = keepalive

    def _acknowledge(self, payload: bytes, now: float, progress: Progress) -> None:
        if payload not in self._pings:
            return  # unsolicited, or the answer to a keepalive Ping
        # A Pong answers its Ping and every Ping sent before it: peers may
        # answer only the most recent one (RFC 6455 section 5.5.3).
        while self._pings:
            sent_payload, sent_at = self._pings.popitem(last=False)
            latency = max(0.0, now - sent_at)
            progress.pongs.append((sent_payload, latency))
            if sent_payload == payload:
                self.latency = latency
                break

    # ------------------------------------------------------------------ driver state

    def data_to_send(self) -> bytes:
        """The bytes to write to the transport."""
        return self.connection.data_to_send()

    def next_deadline(self) -> float | None:
        """When to call :meth:`handle_timeout` (see
        :meth:`~sansws.Connection.next_deadline`)."""
        return self.connection.next_deadline()

    @property
    def should_close_transport(self) -> bool:
        """Whether to write out the remaining bytes and close the transport."""
        return self.connection.should_close_transport

    @property
    def reading_paused(self) -> bool:
        """Whether the driver should stop reading from the transport: the
        application is not keeping up (see ``max_queue``), the peer is not
        reading what it is sent (:attr:`writing_paused`), or input is held
        while the application answers earlier messages (see
        :meth:`next_message`). Never once the connection is closing: the
        peer's Close frame must be read, or the close handshake could only
        end at ``close_timeout``."""
        paused = self._paused or self.writing_paused or self.connection.holding
        return paused and self.connection.state is State.OPEN

    @property
    def handshake_pending(self) -> bool:
        """Whether the opening handshake is still in progress."""
        return self.connection.state is State.CONNECTING

    @property
    def closed(self) -> bool:
        """Whether the connection is ``CLOSED``."""
        return self.connection.state is State.CLOSED

    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent: other sends must wait
        until it ends, or they would be mixed into it."""
        return self._fragment_kind is not None

    # ------------------------------------------------------------------ receiving

    def next_message(self) -> str | bytes | None:
        """The oldest received message, or ``None`` if none has arrived yet.

        When the queue is empty, this may fail the connection: a frame that
        broke the protocol right after messages the application had not
        answered yet is held until the application asks for more (see
        :meth:`~sansws.Connection.release_held_input`), so that its answers
        go out before the Close frame. Write :meth:`data_to_send` after it,
        as after any call.

        Raises:
            ConnectionClosed: The connection is closed and every message
                received before the close was already returned.
        """
        if self._messages:
            message = self._messages.popleft()
            if self._paused and len(self._messages) <= self._resume_at:
                self._paused = False
            self._answering = True
            return message
        # The application answered every message it took: a frame held back
        # because it breaks the protocol now fails the connection.
        self._answering = False
        if self.connection.holding:
            self._dispatch(self.connection.release_held_input(), 0.0, Progress())
        if self.connection.state is State.CLOSED:
            raise self.connection.closed_error()
        return None

    @property
    def queued_messages(self) -> int:
        """How many received messages wait for the application."""
        return len(self._messages)

    # ------------------------------------------------------------------ sending

    def send(self, message: str | bytes | bytearray | memoryview) -> None:
        """Queue a whole message: text for ``str``, binary for bytes-like.

        Raises:
            TypeError: ``message`` is neither.
            ConnectionClosed: The connection is closing or closed.
            LocalProtocolError: A fragmented message is being sent (wait
                until :attr:`sending_fragments` is false).
        """
        if self._fragment_kind is not None:
            raise LocalProtocolError("a fragmented message is being sent")
        self._check_open()
        if isinstance(message, str):
            self.connection.send_text(message)
        elif isinstance(message, bytes | bytearray | memoryview):
            self.connection.send_binary(message)
        else:
            raise TypeError(f"message must be str or bytes-like, not {type(message).__name__}")

    def send_fragment(self, fragment: str | bytes | bytearray | memoryview) -> None:
        """Queue the next fragment of a message sent in pieces; the first
        fragment's type (``str`` or bytes-like) decides the message's type.

        Raises:
            TypeError: The fragment's type differs from the first one's (the
                connection is then failed with 1011, as the message cannot be
                completed), or is neither ``str`` nor bytes-like.
            ConnectionClosed: The connection is closing or closed.
        """
        self._check_open()
        kind: type = str if isinstance(fragment, str) else bytes
        if not isinstance(fragment, str | bytes | bytearray | memoryview):
            self.abort_fragments()
            raise TypeError(f"fragments must be str or bytes-like, not {type(fragment).__name__}")
        if self._fragment_kind is None:
            self._fragment_kind = kind
        elif self._fragment_kind is not kind:
            self.abort_fragments()
            raise TypeError("all fragments of a message must be str, or all bytes-like")
        if isinstance(fragment, str):
            self.connection.send_text(fragment, final=False)
        else:
            self.connection.send_binary(fragment, final=False)

    def end_fragments(self) -> None:
        """End the message started by :meth:`send_fragment` (with an empty
        final frame); does nothing if no fragment was sent."""
        kind, self._fragment_kind = self._fragment_kind, None
        if kind is None or self.connection.state is not State.OPEN:
            return
        if kind is str:
            self.connection.send_text("", final=True)
        else:
            self.connection.send_binary(b"", final=True)

    def abort_fragments(self) -> None:
        """Give up on a message being sent in fragments (its source failed, or
        the send was cancelled): the peer cannot be told to discard a partial
        message, so the connection fails with 1011."""
        if self._fragment_kind is not None:
            self._fragment_kind = None
            self.connection.fail(1011, "incomplete fragmented message")
            self._pings.clear()

    def ping(self, now: float, data: bytes | None = None) -> bytes:
        """Send a Ping and return the payload whose Pong the driver waits for.

        Without ``data``, a random 4-byte payload is used.

        Raises:
            LocalProtocolError: A Ping with the same payload awaits its Pong.
            ConnectionClosed: The connection is closing or closed.
        """
        self._check_open()
        if data is None:
            data = secrets.token_bytes(4)
            while data in self._pings:  # pragma: no cover - 2**-32 per pending ping
                data = secrets.token_bytes(4)
        data = bytes(data)
        if data in self._pings:
            raise LocalProtocolError("a ping with this payload is already waiting for its pong")
        self.connection.send_ping(data)
        self._pings[data] = now
        return data

    def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (a one-way heartbeat).

        Raises:
            ConnectionClosed: The connection is closing or closed.
        """
        self._check_open()
        self.connection.send_pong(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake (or end a handshake still in progress);
        the driver then waits until :attr:`should_close_transport`.
        Does nothing if the connection is already closing or closed.

        Raises:
            LocalProtocolError: Invalid code or reason (see
                :meth:`~sansws.Connection.close`).
        """
        self._fragment_kind = None
        self.connection.close(code, reason)

    def abort(self, now: float) -> Progress:
        """Record that the transport was closed without a close handshake
        (the application aborted, or the transport broke): the connection
        ends with 1006."""
        return self.receive_data(b"", now)

    def _check_open(self) -> None:
        state = self.connection.state
        if state is State.OPEN:
            return
        if state is State.CONNECTING:
            raise InvalidState("the opening handshake is not complete", state)
        raise self.connection.closed_error()

    # ------------------------------------------------------------------ server side

    def answer(
        self,
        response: Response | None,
        *,
        subprotocol: str | None = None,
        extra_headers: HeadersLike = (),
    ) -> Progress:
        """Answer a server connection's handshake request: reject it with
        ``response``, or accept it when ``response`` is ``None`` (an invalid
        request then gets the standard 400 or 426 answer).

        Returns what the bytes that followed the request produced.
        """
        connection = self.connection
        if not isinstance(connection, ServerConnection):
            raise TypeError("only a server connection answers a handshake")
        progress = Progress(handshake=True)
        if response is not None:
            connection.reject(response.status, response.headers, response.body)
        else:
            # No clock is needed: the bytes that followed the request are
            # frames, and a Pong among them answers no Ping of ours yet.
            self._dispatch(connection.accept(subprotocol, extra_headers), 0.0, progress)
        return progress

    def finish_handler(self, error: BaseException | None) -> bool:
        """Close after a server's handler returned or raised ``error``, and
        say whether ``error`` is a failure the driver should report (log).

        A handler that returns closes with 1000. One that raises closes with
        1011 and has failed, except when it lets out the
        :class:`~sansws.errors.ConnectionClosed` that using this connection
        after it closed raises: the peer ended the connection, which is no
        failure of the handler.
        """
        failed = error is not None and not (
            isinstance(error, ConnectionClosed) and self.connection.state is not State.OPEN
        )
        if failed:
            self.close(1011, "internal error")
        else:
            self.close(1000)
        return failed


class EndpointAttributes:
    """The attributes every driver's connection object offers, read from its
    :class:`Endpoint` (``self._endpoint``): drivers inherit them rather than
    each repeating them."""

    _endpoint: Endpoint

    @property
    def state(self) -> State:
        """The connection's :class:`~sansws.State`."""
        return self._endpoint.connection.state

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, if any."""
        return self._endpoint.connection.subprotocol

    @property
    def request(self) -> Request | None:
        """The opening handshake's request (path and headers)."""
        return self._endpoint.connection.request

    @property
    def response(self) -> Accepted | Rejected | None:
        """The opening handshake's response (subprotocol, extensions,
        headers)."""
        return self._endpoint.connection.response

    @property
    def request_headers(self) -> Headers | None:
        """The opening handshake's request headers."""
        return self._endpoint.connection.request_headers

    @property
    def response_headers(self) -> Headers | None:
        """The opening handshake's response headers."""
        return self._endpoint.connection.response_headers

    @property
    def close_code(self) -> int | None:
        """The close code once the connection is closed, else ``None``."""
        return self._endpoint.connection.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason once the connection is closed, else ``None``."""
        return self._endpoint.connection.close_reason

    @property
    def latency(self) -> float:
        """Round-trip time of the last answered Ping (keepalive or the
        application's), in seconds; 0 until one was answered."""
        return self._endpoint.latency


def is_message(value: object) -> bool:
    """Whether drivers' ``send`` sends ``value`` as one message (``str`` or
    bytes-like) rather than iterating it as fragments."""
    return isinstance(value, str | bytes | bytearray | memoryview)
