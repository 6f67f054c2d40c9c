"""What a driver reacts to, decided once: the driver contract.

A :class:`~sansws.Connection` speaks the protocol. An application also wants
a queue of received messages that stops the driver from reading when it is
full, ``ping()`` calls that wait for their own Pong, fragmented sends that
cannot interleave, write back-pressure, and a rule for how the transport is
closed. :class:`Endpoint` holds all of that as plain data, so that a driver
only carries out what it is told:

* **inputs**: :meth:`Endpoint.receive_data` (``b""`` at the end of the
  stream), :meth:`Endpoint.unwritten` (how many bytes the driver holds
  unwritten), :meth:`Endpoint.transport_closed`, and the application's calls
  (:meth:`~Endpoint.send`, :meth:`~Endpoint.next_message`,
  :meth:`~Endpoint.close`, :meth:`~Endpoint.abort`, ...). Each takes the
  driver's clock reading where time matters;
* **one output**: after any input, :meth:`Endpoint.actions` returns an
  :class:`Actions` value: the bytes to write, whether to read, the next
  deadline (call ``actions(now)`` again then), whether to flush and close or
  to abort the transport, and which waiters to wake. A driver carries it out
  in one short function and decides nothing itself.

Two shortcuts keep the hot paths short: after :meth:`~Endpoint.send`,
:meth:`~Endpoint.ping` and :meth:`~Endpoint.pong`, which only queue bytes, a
driver may write :meth:`~Endpoint.data_to_send` instead of asking for the
actions; after :meth:`~Endpoint.next_message` it asks for them only if
:attr:`~Endpoint.dirty`.

Waiting: a driver's waits are for one :class:`Wait` condition each, checked
with :meth:`Endpoint.ready`; :attr:`Actions.wake` names the conditions that
may have become true. Sequences with waits in the middle (opening, sending
fragments, closing, serving a connection) are written once in
:mod:`sansws.ops`.

Nothing here blocks, sleeps or reads a clock.
"""

from __future__ import annotations

import codecs
import enum
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from .connection import Connection, ServerConnection, State
from .errors import ConnectionClosed, InvalidState, LocalProtocolError, WebSocketTimeout
from .events import Accepted, Event, Message, Pong, Rejected, Request
from .frames import Opcode
from .headers import Headers, HeadersLike

__all__ = [
    "READ_SIZE",
    "Actions",
    "Close",
    "ConnectionView",
    "Endpoint",
    "Ping",
    "Response",
    "Wait",
    "WaterMark",
    "decoded",
    "is_message",
]

#: Bytes a driver asks for per read: large enough for 64 KiB frames in one
#: call, small enough to keep per-connection memory modest.
READ_SIZE = 65536

# Longest time a Close frame or a violation is held while the application
# answers the messages before it (see Connection.receive_data): long enough
# for a handler to answer, short next to the peer's close timeout.
_MAX_HOLD = 1.0

_OPEN, _CLOSED, _CONNECTING = State.OPEN, State.CLOSED, State.CONNECTING
_TEXT, _BINARY = int(Opcode.TEXT), int(Opcode.BINARY)
_UTF8 = codecs.getincrementaldecoder("utf-8")


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP response refusing a handshake, as returned by a server's
    ``process_request`` hook (for authentication, origin checks, health
    checks): ``Response(401, body=b"unauthorized\\n")``; or, with status
    101, the answer accepting it, as a ``process_response`` hook sees and
    changes it."""

    status: int
    headers: HeadersLike = ()
    body: bytes = b""

    def __post_init__(self) -> None:
        # Checked here, where the mistake is made, rather than when the
        # answer is written: a str body or headers is the usual one.
        if not isinstance(self.status, int) or isinstance(self.status, bool):
            raise TypeError(f"Response status must be an int, not {self.status!r}")
        if isinstance(self.headers, str | bytes):
            raise TypeError(
                "Response headers are (name, value) pairs or a mapping, not "
                f"{self.headers!r} (the body is the third argument: body=...)"
            )
        if not isinstance(self.body, bytes | bytearray | memoryview):
            raise TypeError(
                f"Response body must be bytes, not {type(self.body).__name__} (encode it)"
            )

class Wait(enum.IntFlag):
    """Conditions a driver waits for; :meth:`Endpoint.ready` says whether one
    holds, :attr:`Actions.wake` which may have become true."""

    MESSAGE = 1
    """A message is queued, or the connection is closed."""
    SENDABLE = 2
    """No fragmented message is being sent, or the connection is not open."""
    DRAINED = 4
    """The unwritten bytes fell to the low-water mark, or the transport
    closed."""
    REQUEST = 8
    """A server's handshake request arrived, or the handshake ended."""
    HANDSHAKE = 16
    """The opening handshake ended (open, refused or failed)."""
    PONG = 32
    """A :class:`Ping` was answered, or will never be (see
    :meth:`Ping.done`)."""
    CLOSED = 64
    """The connection is ``CLOSED``."""
    TRANSPORT_CLOSED = 128
    """The driver reported the transport closed."""


# The conditions as plain ints: IntFlag arithmetic builds a new member each
# time, which the hot paths cannot afford.
_MESSAGE, _SENDABLE, _DRAINED, _REQUEST = 1, 2, 4, 8
_HANDSHAKE, _PONG, _CLOSED_WAIT = 16, 32, 64
_ON_CLOSED = _MESSAGE | _SENDABLE | _REQUEST | _HANDSHAKE | _CLOSED_WAIT
_EVERYONE = 255


class Close(enum.Enum):
    """What to do with the transport, in :attr:`Actions.close`."""

    KEEP = 0
    """Keep it open."""
    FLUSH = 1
    """Write what is buffered, then close it; abort it if that is not done
    by the next deadline (the endpoint then says :attr:`ABORT`)."""
    ABORT = 2
    """Write what the transport takes at once (this :attr:`Actions.write`
    included), then close it, dropping the rest."""


@dataclass(slots=True)
class Actions:
    """What a driver does after a call into its :class:`Endpoint`, in this
    order.

    Attributes:
        write: Bytes to write (or buffer), after those written before.
        read: Whether to read from the transport (``False``: pause).
        deadline: When to call :meth:`Endpoint.actions` again, on the
            driver's clock; ``None`` for never. Never in the past by more
            than the time the call took.
        close: :attr:`Close.FLUSH` or :attr:`Close.ABORT` once, when the
            transport must close; :attr:`Close.KEEP` otherwise.
        wake: The :class:`Wait` conditions that may have become true, as
            an ``int`` of their flags (``wake & Wait.MESSAGE``), to spare
            the hot paths building enum members.
    """

    write: bytes
    read: bool
    deadline: float | None
    close: Close
    wake: int


class Ping:
    """A Ping sent by :meth:`Endpoint.ping`, settled by the endpoint: answered
    when its Pong arrives, failed when the connection closes first. A
    driver's ping waiter waits for :attr:`Wait.PONG` until :meth:`done`."""

    __slots__ = ("_error", "_latency", "payload")

    def __init__(self, payload: bytes) -> None:
        #: The Ping's payload, which its Pong echoes.
        self.payload = payload
        self._latency: float | None = None
        self._error: ConnectionClosed | None = None

    def done(self) -> bool:
        """Whether the Pong arrived or the connection closed."""
        return self._latency is not None or self._error is not None

    def result(self) -> float:
        """The round-trip time in seconds, once :meth:`done`.

        Raises:
            ConnectionClosed: The connection closed before the Pong arrived.
            InvalidState: The Ping is not settled yet.
        """
        if self._error is not None:
            raise self._error
        if self._latency is None:
            raise InvalidState("no pong yet", self.payload)
        return self._latency


class WaterMark:
    """Hysteresis between a high and a low mark: :attr:`paused` turns true
    when a level goes above ``high`` and false again only once it is at or
    below ``low`` (a quarter of ``high`` unless given), so that a level
    hovering around one mark does not flip the state on every change."""

    __slots__ = ("high", "low", "paused")

    def __init__(self, high: int, low: int | None = None) -> None:
        self.high = high
        self.low = high // 4 if low is None else low
        self.paused = False

    def update(self, level: int) -> bool:
        """Record ``level``; return whether :attr:`paused` changed."""
        paused = level > self.low if self.paused else level > self.high
        changed = paused is not self.paused
        self.paused = paused
        return changed


class Endpoint:
    """A connection plus the application-facing state every driver shares.

    Args:
        connection: A :class:`~sansws.ClientConnection` or
            :class:`~sansws.ServerConnection` (not in ``stream_messages``
            mode).
        now: The driver's clock now: the connection's timers are armed from
            it (a server's open timeout runs from the accept).
        max_queue: Received messages waiting for the application above
            which reading pauses (default 16); it resumes at a quarter of
            it. A message that arrives while the application waits for one
            (its last :meth:`next_message` found none) does not count.
            ``None`` never pauses.
        write_limit: Unwritten bytes above which sending waits and reading
            pauses (default 32 KiB); both resume at a quarter of it.
    """

    def __init__(
        self,
        connection: Connection,
        now: float,
        *,
        max_queue: int | None = 16,
        write_limit: int = 32768,
    ) -> None:
        if connection.stream_messages:
            raise ValueError("drivers deliver whole messages: stream_messages must be False")
        if max_queue is not None and max_queue < 1:
            raise ValueError(f"max_queue must be >= 1 or None, not {max_queue!r}")
        if write_limit < 0:
            raise ValueError(f"write_limit must be >= 0, not {write_limit!r}")
        self.connection = connection
        self._queue_mark = None if max_queue is None else WaterMark(max_queue - 1, max_queue // 4)
        #: Unwritten bytes above which sending waits (high) and at which it
        #: resumes (low); an asyncio transport takes them as its limits.
        self.write_mark = WaterMark(write_limit)
        self._messages: deque[str | bytes] = deque()
        self._pings: OrderedDict[bytes, tuple[float, Ping]] = OrderedDict()
        self._fragment_kind: type | None = None
        # Whether the fragmented message is text, and for bytes sent as
        # text, the decoder that checks they form UTF-8.
        self._fragment_text = False
        self._fragment_utf8: codecs.IncrementalDecoder | None = None
        # The application took a message and has not asked for the next one.
        self._answering = False
        # The application asked for a message and found none: it waits, and
        # the next message to arrive is as good as taken, so it does not
        # count against max_queue (reading pausing and resuming for every
        # message of a request-response exchange costs two system calls).
        self._awaited = False
        self._hold_deadline: float | None = None
        self._state = connection.state
        self._wake = 0
        self._close = Close.KEEP
        self._linger_until: float | None = None
        self._abort = False
        self._leave = False
        self._eof = False
        self._transport_closed = False
        #: Whether :meth:`actions` has something to report (set by every
        #: input; hot paths check it to skip the call).
        self.dirty = True
        #: Round-trip time of the last answered Ping (the application's or a
        #: keepalive one), in seconds; 0 until one was answered.
        self.latency = 0.0
        #: A server's: the pattern of the :class:`~sansws.routing.Router`
        #: route the request matched, its converted parameters, and the
        #: user a ``process_request`` hook authenticated (``basic_auth``).
        self.route: str | None = None
        self.path_params: dict[str, Any] = {}
        self.username: str | None = None
        #: When the opening handshake times out, on the driver's clock: what
        #: a server's TLS handshake and ``process_request`` are bounded by.
        self.open_deadline = None if connection.open_timeout is None else (
            now + connection.open_timeout
        )
        self._dispatch(connection.handle_timeout(now), now)

    # ------------------------------------------------------------------ inputs

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the transport (``b""`` at the end of the
        stream)."""
        if self._transport_closed:
            return
        if not data:
            self._eof = True
        connection = self.connection
        unanswered = self._answering or bool(self._messages)
        events = connection.receive_data(data, defer_terminal=unanswered)
        if events:
            self._dispatch(events, now)
        if connection.holding and self._hold_deadline is None:
            close_timeout = connection.close_timeout
            hold = min(_MAX_HOLD, close_timeout / 2) if close_timeout else _MAX_HOLD
            self._hold_deadline = now + hold
        self.dirty = True

    def unwritten(self, size: int) -> None:
        """Report how many bytes the driver holds that the transport has not
        taken yet: above ``write_limit`` sending waits and reading pauses
        (a peer that sends Pings but never reads would otherwise grow the
        buffer of Pongs without bound); both resume at a quarter of it."""
        if self.write_mark.update(size):
            if not self.write_mark.paused:
                self._wake |= _DRAINED
            self.dirty = True

    def transport_closed(self, now: float) -> None:
        """Report that the transport is closed (by the driver, as told, or
        because it broke). The connection ends with 1006 if it had not
        ended; nothing more is written."""
        if self._transport_closed:
            return
        self._end_abnormally(now)
        self._transport_closed = True
        self._wake |= _EVERYONE
        self.dirty = True

    def abort(self, now: float) -> None:
        """Close the transport at once, without a close handshake: the
        application aborted, the send of a message was interrupted, or the
        transport broke. The connection ends with 1006 unless it had
        ended."""
        self._end_abnormally(now)
        self._abort = True
        self.dirty = True

    def leave(self, now: float) -> None:
        """End the connection without a close handshake, but unlike
        :meth:`abort` write what is buffered first (for at most
        ``close_timeout``), then close the transport. For an application
        that is done with a connection it did not close: an ASGI
        application that returned without sending ``websocket.close``. The
        connection ends with 1006 unless it had ended."""
        self._end_abnormally(now)
        self._leave = True
        self.dirty = True

    def _end_abnormally(self, now: float) -> None:
        # The end of the stream, as the connection sees it: 1006.
        if self.connection.state is not _CLOSED:
            self._dispatch(self.connection.receive_data(b""), now)

    def wake(self, what: Wait) -> None:
        """Wake the waiters for ``what`` with the next :meth:`actions`: for
        a layer above the endpoint whose own state changed what they wait
        for (:class:`sansws.asgi.ASGIWebSocket`, when the application's
        ``receive()`` must now return a disconnect)."""
        self._wake |= int(what)
        self.dirty = True

    def timer(self, now: float) -> None:
        """Run what is due at ``now``: the connection's timers, the end of a
        hold, the end of the time given to flush. :meth:`actions` calls it
        when its deadline has passed."""
        connection = self.connection
        linger = self._linger_until
        if self._close is Close.FLUSH and linger is not None and now >= linger:
            self._abort = True
        if self._hold_deadline is not None and now >= self._hold_deadline:
            self._dispatch(connection.release_held_input(), now)
        self._dispatch(connection.handle_timeout(now), now)
        self.dirty = True

    # ------------------------------------------------------------------ output

    def actions(self, now: float) -> Actions:
        """What to do now; see :class:`Actions`."""
        self.dirty = False
        deadline = self._deadline()
        if deadline is not None and deadline <= now:
            self.timer(now)
            self.dirty = False
            deadline = self._deadline()
        connection = self.connection
        write = connection.data_to_send()
        state = connection.state
        if state is not self._state:
            self._changed_state(state)
        close = Close.KEEP
        if not self._transport_closed:
            if self._abort and self._close is not Close.ABORT:
                close = self._close = Close.ABORT
                self._linger_until = None
                deadline = self._deadline()
            elif self._close is Close.KEEP and connection.should_close_transport:
                close = self._decide_close(now)
                deadline = self._deadline()
        else:
            write, deadline = b"", None
        wake, self._wake = self._wake, 0
        return Actions(write, self._reading(), deadline, close, wake)

    def data_to_send(self) -> bytes:
        """The bytes queued by :meth:`send`, :meth:`ping` or :meth:`pong`:
        after those calls, which change nothing else, writing these is all
        there is to do."""
        return self.connection.data_to_send()

    def _decide_close(self, now: float) -> Close:
        # One rule for every driver. The connection ended as the protocol
        # means it to (a completed close handshake, or a server's HTTP answer
        # to a handshake it did not accept): what is buffered is written, for
        # at most close_timeout. It failed (the peer broke the protocol, went
        # silent or away, the application aborted): what the transport does
        # not take at once is dropped, as the peer may not be reading.
        connection = self.connection
        answered = isinstance(connection, ServerConnection) and connection.refused
        ended_well = connection.closed_error().clean or answered or self._leave
        if not ended_well or isinstance(connection.close_error, WebSocketTimeout):
            self._close = Close.ABORT
            return Close.ABORT
        timeout = connection.close_timeout
        self._linger_until = None if timeout is None else now + timeout
        self._close = Close.FLUSH
        return Close.FLUSH

    def _changed_state(self, state: State) -> None:
        previous, self._state = self._state, state
        wake = _SENDABLE
        if previous is _CONNECTING:
            wake |= _HANDSHAKE | _REQUEST
        if state is _CLOSED:
            wake |= _ON_CLOSED
            if self._pings:
                wake |= _PONG
                error = self.connection.closed_error()
                for _, ping in self._pings.values():
                    ping._error = error
                self._pings.clear()
        self._wake |= wake

    def _reading(self) -> bool:
        if self._eof or self._transport_closed or self._close is not Close.KEEP:
            return False
        if self.connection.state is not _OPEN:
            # While closing the peer's Close frame must be read, or the close
            # handshake could only end at close_timeout.
            return True
        queue = self._queue_mark
        return not (
            (queue is not None and queue.paused)
            or self.write_mark.paused
            or self.connection.holding
        )

    def _deadline(self) -> float | None:
        if self._transport_closed:
            return None
        deadline = self.connection.next_deadline()
        for extra in (self._hold_deadline, self._linger_until):
            if extra is not None and (deadline is None or extra < deadline):
                deadline = extra
        return deadline

    def ready(self, what: Wait) -> bool:
        """Whether the condition ``what`` (one :class:`Wait` member) holds."""
        state = self.connection.state
        if what is Wait.MESSAGE:
            return bool(self._messages) or state is _CLOSED
        if what is Wait.SENDABLE:
            return self._fragment_kind is None or state is not _OPEN
        if what is Wait.DRAINED:
            return not self.write_mark.paused or self._transport_closed
        if what is Wait.REQUEST:
            return self.connection.request is not None or state is not _CONNECTING
        if what is Wait.HANDSHAKE:
            return state is not _CONNECTING
        if what is Wait.CLOSED:
            return state is _CLOSED
        if what is Wait.TRANSPORT_CLOSED:
            return self._transport_closed
        raise ValueError(f"cannot wait for {what!r}")

    # ------------------------------------------------------------------ events

    def _dispatch(self, events: list[Event], now: float) -> None:
        for event in events:
            kind = type(event)
            if kind is Message:
                assert isinstance(event, Message)
                self._messages.append(event.data)
                self._wake |= _MESSAGE
            elif kind is Pong:
                assert isinstance(event, Pong)
                self._acknowledge(event, now)
            elif kind is Request:
                self._wake |= _REQUEST
        queue = self._queue_mark
        if queue is not None:
            queue.update(len(self._messages) - self._awaited)
        if not self.connection.holding:
            self._hold_deadline = None

    def _acknowledge(self, pong: Pong, now: float) -> None:
        if pong.keepalive_sent_at is not None:
            self.latency = max(0.0, now - pong.keepalive_sent_at)
            return
        if pong.data not in self._pings:
            return  # unsolicited
        # A Pong answers its Ping and every Ping sent before it: peers may
        # answer only the most recent one (RFC 6455 section 5.5.3).
        while self._pings:
            payload, (sent_at, ping) = self._pings.popitem(last=False)
            ping._latency = latency = max(0.0, now - sent_at)
            if payload == pong.data:
                self.latency = latency
                break
        self._wake |= _PONG

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        """The connection's :class:`~sansws.State`."""
        return self.connection.state

    @property
    def request(self) -> Request | None:
        """The opening handshake's request (a server's once it arrived)."""
        return self.connection.request

    @property
    def queued_messages(self) -> int:
        """How many received messages wait for the application."""
        return len(self._messages)

    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent: other sends wait
        until it ends (:attr:`Wait.SENDABLE`)."""
        return self._fragment_kind is not None

    def closed_error(self) -> ConnectionClosed:
        """The exception for using the connection after it closed (see
        :meth:`~sansws.Connection.closed_error`)."""
        return self.connection.closed_error()

    # ------------------------------------------------------------------ receiving

    def next_message(self, now: float) -> str | bytes | None:
        """The oldest received message, or ``None`` if none has arrived yet
        (wait for :attr:`Wait.MESSAGE`); ask for the :meth:`actions` after
        it if :attr:`dirty`.

        When the queue is empty, this may end the connection: a Close frame
        or a frame that broke the protocol right after messages the
        application had not answered yet is held until the application asks
        for more, so that its answers go out first.

        Raises:
            ConnectionClosed: The connection is closed and every message
                received before the close was already returned.
        """
        messages = self._messages
        if messages:
            message = messages.popleft()
            self._awaited = False
            queue = self._queue_mark
            if queue is not None and queue.paused and queue.update(len(messages)):
                self.dirty = True
            self._answering = True
            return message
        # The application answered every message it took: held input is
        # acted on now.
        self._answering = False
        self._awaited = True
        connection = self.connection
        if connection.holding:
            self._dispatch(connection.release_held_input(), now)
            self.dirty = True
        if connection.state is _CLOSED:
            raise connection.closed_error()
        return None

    # ------------------------------------------------------------------ sending

    def send(
        self, message: str | bytes | bytearray | memoryview, *, text: bool | None = None
    ) -> None:
        """Queue a whole message: text for ``str``, binary for bytes-like;
        ``text=True`` sends bytes-like as text (they must be UTF-8),
        ``text=False`` sends ``str`` as binary (encoded to UTF-8).

        Raises:
            TypeError: ``message`` is neither.
            UnicodeDecodeError: ``text=True`` and the bytes are not UTF-8
                (nothing is sent).
            InvalidState: The opening handshake is not complete.
            ConnectionClosed: The connection is closing or closed.
            LocalProtocolError: A fragmented message is being sent (wait
                for :attr:`Wait.SENDABLE`).
        """
        if self._fragment_kind is not None:
            raise LocalProtocolError("a fragmented message is being sent")
        self._check_open()
        if isinstance(message, str):
            if text is False:
                self.connection.send_binary(message.encode())
            else:
                self.connection.send_text(message)
        elif isinstance(message, bytes | bytearray | memoryview):
            if text:
                payload = bytes(message)
                payload.decode()  # a text frame carries UTF-8, or the peer fails with 1007
                self.connection._send_data(_TEXT, payload, True)
            else:
                self.connection.send_binary(message)
        else:
            raise TypeError(f"message must be str or bytes-like, not {type(message).__name__}")

    def send_fragment(
        self,
        fragment: str | bytes | bytearray | memoryview,
        now: float,
        *,
        text: bool | None = None,
    ) -> None:
        """Queue the next fragment of a message sent in pieces; the first
        fragment's type (``str`` or bytes-like) decides the message's type,
        and ``text`` as for :meth:`send` converts each fragment (bytes sent
        as text must form UTF-8 across the whole message).

        Raises:
            TypeError: The fragment's type differs from the first one's (the
                connection then fails with 1011, as the message cannot be
                completed), or is neither ``str`` nor bytes-like.
            UnicodeDecodeError: Bytes sent as text are not UTF-8 (the
                connection then fails with 1011).
            ConnectionClosed: The connection is closing or closed.
        """
        self._check_open()
        if not isinstance(fragment, str | bytes | bytearray | memoryview):
            self.abort_fragments(now)
            raise TypeError(f"fragments must be str or bytes-like, not {type(fragment).__name__}")
        kind: type = str if isinstance(fragment, str) else bytes
        if self._fragment_kind is None:
            self._fragment_kind = kind
            self._fragment_text = kind is str if text is None else text
            self._fragment_utf8 = _UTF8() if self._fragment_text and kind is bytes else None
        elif self._fragment_kind is not kind:
            self.abort_fragments(now)
            raise TypeError("all fragments of a message must be str, or all bytes-like")
        payload: str | bytes
        if isinstance(fragment, str):
            payload = fragment if self._fragment_text else fragment.encode()
        else:
            payload = bytes(fragment)
            if self._fragment_utf8 is not None:
                try:
                    self._fragment_utf8.decode(payload)
                except UnicodeDecodeError:
                    self.abort_fragments(now)
                    raise
        self.connection._send_data(_TEXT if self._fragment_text else _BINARY, payload, False)
        self.dirty = True

    def end_fragments(self) -> None:
        """End the message started by :meth:`send_fragment` (with an empty
        final frame); does nothing if no fragment was sent."""
        kind, self._fragment_kind = self._fragment_kind, None
        if kind is None:
            return
        self._wake |= _SENDABLE
        self.dirty = True
        if self.connection.state is not _OPEN:
            return
        utf8, self._fragment_utf8 = self._fragment_utf8, None
        if utf8 is not None:
            try:
                utf8.decode(b"", True)  # a character cut off at the end
            except UnicodeDecodeError:
                self.connection.fail(1011, "incomplete fragmented message")
                raise
        self.connection._send_data(_TEXT if self._fragment_text else _BINARY, b"", True)

    def abort_fragments(self, now: float) -> None:
        """Give up on a message being sent in fragments (its source failed, or
        the send was interrupted): the peer cannot be told to discard a
        partial message, so the connection fails with 1011."""
        if self._fragment_kind is not None:
            self._fragment_kind = None
            self.connection.fail(1011, "incomplete fragmented message")
            self._wake |= _SENDABLE
            self.dirty = True

    def ping(self, data: bytes | None, now: float) -> Ping:
        """Send a Ping and return it, to wait until it is settled. Without
        ``data``, a random 4-byte payload.

        Raises:
            LocalProtocolError: A Ping with the same payload awaits its Pong,
                or ``data`` is longer than 125 bytes.
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
        ping = self._pings[data] = (now, Ping(data))
        return ping[1]

    def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (a one-way heartbeat).

        Raises:
            ConnectionClosed: The connection is closing or closed.
        """
        self._check_open()
        self.connection.send_pong(data)

    def close(self, code: int, reason: str, now: float) -> None:
        """Start the close handshake (or end a handshake still in progress).
        Does nothing if the connection is already closing or closed.

        Raises:
            LocalProtocolError: Invalid code or reason (see
                :meth:`~sansws.Connection.close`).
        """
        connection = self.connection
        connection.close(code, reason)
        if connection.holding:
            # Closing is the application's last answer: nothing it could
            # still send may wait for the input held back for it.
            self._answering = False
            self._dispatch(connection.release_held_input(), now)
        if self._fragment_kind is not None:
            self._fragment_kind = None
            self._wake |= _SENDABLE
        self.dirty = True

    def shutdown(self, now: float) -> None:
        """The server is going away: close an open connection with 1001, and
        drop one whose opening handshake has not been answered yet (nothing
        was promised to it)."""
        state = self.connection.state
        if state is _CONNECTING:
            self.abort(now)
        elif state is _OPEN:
            self.close(1001, "", now)

    def _check_open(self) -> None:
        state = self.connection.state
        if state is _OPEN:
            return
        if state is _CONNECTING:
            raise InvalidState("the opening handshake is not complete", state)
        raise self.connection.closed_error()

    # ------------------------------------------------------------------ server side

    def answer(
        self,
        response: Response | None,
        now: float,
        *,
        subprotocol: str | None = None,
        extra_headers: HeadersLike = (),
        select: bool = True,
    ) -> None:
        """Answer a server connection's handshake request: refuse it with
        ``response``, or accept it when ``response`` is ``None`` (an invalid
        request then gets the standard 400 or 426 answer) or a 101 (whose
        headers are then every header of the 101: see
        :meth:`ServerConnection.accept <sansws.ServerConnection.accept>`);
        ``subprotocol`` and ``select`` as for that method."""
        connection = self.connection
        if not isinstance(connection, ServerConnection):
            raise TypeError("only a server connection answers a handshake")
        if response is not None and response.status != 101:
            connection.reject(response.status, response.headers, response.body)
        else:
            # A 101 is a process_response hook's answer: its headers replace
            # the usual ones.
            headers = None if response is None else response.headers
            events = connection.accept(subprotocol, extra_headers, select=select, headers=headers)
            self._dispatch(events, now)
        self.dirty = True


class ConnectionView:
    """The read-only attributes every driver's connection offers, read from
    its :class:`Endpoint` (``self._endpoint``)."""

    _endpoint: Endpoint

    @property
    def state(self) -> State:
        """The connection's :class:`~sansws.State`."""
        # Read for every connection of a server by its connections set.
        return self._endpoint.connection._state

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

    @property
    def route(self) -> str | None:
        """A server connection's: the pattern of the
        :class:`~sansws.Router` route its request matched, else ``None``."""
        return self._endpoint.route

    @property
    def path_params(self) -> dict[str, Any]:
        """A server connection's: the parameters of its route, converted
        (``{"id": 42}`` for ``/items/{id:int}``); empty without a router."""
        return self._endpoint.path_params

    @property
    def username(self) -> str | None:
        """A server connection's: the user :func:`~sansws.basic_auth`
        authenticated (or a ``process_request`` hook of yours set), else
        ``None``."""
        return self._endpoint.username

    @username.setter
    def username(self, value: str | None) -> None:
        self._endpoint.username = value


def decoded(message: str | bytes, decode: bool | None) -> str | bytes:
    """A received message as ``recv(decode=...)`` returns it: ``None`` as it
    came (``str`` for text, ``bytes`` for binary), ``True`` always ``str``
    (binary decoded from UTF-8), ``False`` always ``bytes`` (text encoded to
    UTF-8, as it was on the wire).

    Raises:
        UnicodeDecodeError: ``decode=True`` and a binary message is not
            UTF-8.
    """
    if decode is None:
        return message
    if decode:
        return message if isinstance(message, str) else message.decode()
    return message.encode() if isinstance(message, str) else message


def is_message(value: object) -> bool:
    """Whether ``value`` is sent as one message (``str`` or bytes-like)
    rather than iterated as fragments."""
    return isinstance(value, str | bytes | bytearray | memoryview)
