"""WebSocket clients and servers on trio.

::

    from sansws.drivers.trio import connect, serve

    async with connect("ws://example.com/chat") as ws:
        await ws.send("hello")
        reply = await ws.recv()

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 8765) as server:
        await server.serve_forever()

Every protocol decision (framing, handshakes, redirects, keepalive, every
timeout and limit) is made by the sans-I/O core; this module only moves
bytes and decides how to wait. Each connection runs its tasks in a nursery
owned by the block that created it, for as long as the connection lives:

* a *reader* feeding received bytes to the core (it stops reading while the
  application's queue is full) and, on a plain socket, calling the core
  back at its next deadline (keepalive, ping timeout, close timeout) by
  interrupting its read, which loses nothing there;
* a *writer* for the bytes that cannot be written at once (application
  calls only ever write with a non-blocking write, which cannot be cancelled
  half-way, so a cancelled call never leaves half a frame on the wire);
* over TLS only, a *timer* for the core's deadlines, since interrupting a
  read of a TLS stream could lose bytes the TLS layer owes its peer.

Cancellation: every ``await`` in this module is a checkpoint. A cancelled
``recv()`` loses no message; a cancelled ``send()`` queued either the whole
message or nothing, except a message sent in fragments, which fails the
connection with 1011 if it is cancelled after its first fragment. No task
outlives the ``async with`` block that created the connection.

Ctrl+C: the driver's tasks, and server handlers, run with trio's
KeyboardInterrupt protection, so that ``KeyboardInterrupt`` is raised in the
main task, at the wait it is blocked in, never inside the driver's
bookkeeping. Leaving a block by an interrupt or a cancellation closes the
transports at once, without close handshakes.
"""

from __future__ import annotations

try:
    import trio
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "sansws.drivers.trio requires trio; install it with: pip install 'sansws[trio]'"
    ) from exc

import contextlib
import logging
import math
import os
import ssl as ssl_module
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, cast

from sansws.connection import DEFAULT_USER_AGENT, ClientConnection, ServerConnection, State
from sansws.endpoint import READ_SIZE, Endpoint, EndpointAttributes, Progress, Response, is_message
from sansws.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    OpenTimeout,
    PayloadTooBig,
    ProtocolError,
    RedirectError,
    WebSocketError,
)
from sansws.events import Request
from sansws.headers import HeadersLike
from sansws.session import Attempt, ClientSession

__all__ = [
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "Handler",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "OpenTimeout",
    "PayloadTooBig",
    "PingWaiter",
    "ProcessRequest",
    "ProtocolError",
    "RedirectError",
    "Request",
    "Response",
    "Server",
    "WebSocketError",
    "connect",
    "serve",
]

server_logger = logging.getLogger("sansws.server")

Message = str | bytes
Data = str | bytes | bytearray | memoryview
#: A server's handler: ``async def handler(ws: Connection) -> None``.
Handler = Callable[["Connection"], Awaitable[None]]
#: A server's ``process_request`` hook: ``async def process_request(ws,
#: request) -> Response | None``.
ProcessRequest = Callable[["Connection", Request], Awaitable[Response | None]]

_INF = math.inf
# What a broken or closed transport raises in trio; an OSError escapes only
# from a stream that is not a trio stream.
_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _deadline(value: float | None) -> float:
    return _INF if value is None else value


class PingWaiter:
    """A Ping that was sent; ``await waiter.wait()`` returns its latency.

    Returned by :meth:`Connection.ping`. Waiting can be cancelled and
    retried: the waiter stays valid until the Pong arrives or the
    connection closes.
    """

    def __init__(self, payload: bytes) -> None:
        #: The Ping's payload, which its Pong echoes.
        self.payload = payload
        self._event = trio.Event()
        self._latency = 0.0
        self._error: ConnectionClosed | None = None

    def done(self) -> bool:
        """Whether the Pong arrived or the connection closed."""
        return self._event.is_set()

    async def wait(self) -> float:
        """Wait for the Pong and return the round-trip time in seconds.

        Raises:
            ConnectionClosed: The connection closed before the Pong arrived.
        """
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._latency

    def _resolve(self, latency: float) -> None:
        self._latency = latency
        self._event.set()

    def _fail(self, error: ConnectionClosed) -> None:
        self._error = error
        self._event.set()


class Connection(EndpointAttributes):
    """A WebSocket connection, client or server side.

    Clients get one from :func:`connect`; servers pass one to their handler.
    Every method is safe to call from several tasks at once: messages are
    never interleaved and each received message goes to exactly one
    :meth:`recv` call.
    """

    def __init__(self, stream: trio.abc.Stream, endpoint: Endpoint, *, write_limit: int) -> None:
        self._stream = stream
        self._endpoint = endpoint
        self._write_limit = write_limit
        self.local_address, self.remote_address = _addresses(stream)
        # Outgoing bytes the writer has not finished writing, and their size.
        self._out: list[bytes | memoryview] = []
        # The socket to write to directly, when there is no TLS layer (and
        # on POSIX, where a socket is a file descriptor).
        self._socket = (
            stream.socket if isinstance(stream, trio.SocketStream) and os.name == "posix" else None
        )
        self._buffered = 0
        self._write_scope: trio.CancelScope | None = None
        # The core asked to close the transport; the writer then has until
        # _close_deadline to write what is left.
        self._closing = False
        self._close_deadline = _INF
        self._force_close = False
        self._seen_closed = False
        self._fragmenting = False
        self._stopped = False
        self._timer_scope: trio.CancelScope | None = None
        self._timer_deadline = _INF
        self._pings: dict[bytes, PingWaiter] = {}
        # Tasks wait here: recv() for messages, send() for room in the write
        # buffer, the writer for bytes, the reader for room in the queue.
        self._message_waiters = trio.lowlevel.ParkingLot()
        self._send_waiters = trio.lowlevel.ParkingLot()
        self._writer_wakeup = trio.lowlevel.ParkingLot()
        self._reader_wakeup = trio.lowlevel.ParkingLot()
        self._transport_closed = trio.Event()

    # ------------------------------------------------------------------ receiving

    async def recv(self) -> Message:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Cancellation-safe: a cancelled call takes no message off the queue.

        Raises:
            ConnectionClosedOK: The connection closed normally and every
                message received before was returned.
            ConnectionClosedError: The connection closed with an error, after
                every message received before was returned.
        """
        endpoint = self._endpoint
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            try:
                message = endpoint.next_message()
            except ConnectionClosed:
                if not self._seen_closed:  # it failed the connection just now
                    self._after(None)
                raise
            if message is not None:
                if not endpoint.reading_paused:
                    self._reader_wakeup.unpark()
                if not waited:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return message
            # Nothing was taken: cancelling here loses nothing.
            await self._message_waiters.park()
            waited = True

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> Message:
        """The next message; the iteration stops after a normal closure and
        raises :class:`ConnectionClosedError` after an abnormal one."""
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # ------------------------------------------------------------------ sending

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data]) -> None:
        """Send a message: ``str`` as text, bytes-like as binary; an iterable
        or async iterable of ``str`` (or of bytes-like) as one message in
        fragments.

        Waits while the write buffer holds more than ``write_limit`` bytes
        and while another task sends a fragmented message. When this returns
        the whole message is queued; if it is cancelled, nothing was, except
        for a fragmented message already started: the connection then fails
        with 1011, since the peer cannot be told to drop half a message.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            TypeError: ``message`` is none of the above.
        """
        if is_message(message):
            await self._wait_sendable()
            self._endpoint.send(message)  # type: ignore[arg-type]
            self._flush()
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(message.__aiter__(), None)
        elif isinstance(message, Iterable):
            await self._send_fragments(None, iter(cast("Iterable[Data]", message)))
        else:
            raise TypeError(f"cannot send {type(message).__name__}")

    async def _wait_sendable(self) -> None:
        await trio.lowlevel.checkpoint()
        connection = self._endpoint.connection
        while connection.state is State.OPEN and (
            self._fragmenting or self._buffered > self._write_limit
        ):
            await self._send_waiters.park()

    async def _wait_buffer(self) -> None:
        await trio.lowlevel.checkpoint()
        connection = self._endpoint.connection
        while connection.state is State.OPEN and self._buffered > self._write_limit:
            await self._send_waiters.park()

    async def _send_fragments(
        self, async_fragments: AsyncIterator[Data] | None, fragments: Iterator[Data] | None
    ) -> None:
        endpoint = self._endpoint
        await self._wait_sendable()
        if endpoint.connection.state is not State.OPEN:
            endpoint.send(b"")  # raises the ConnectionClosed that explains why
        self._fragmenting = True
        try:
            while True:
                if async_fragments is not None:
                    try:
                        fragment = await async_fragments.__anext__()
                    except StopAsyncIteration:
                        break
                else:
                    assert fragments is not None
                    try:
                        fragment = next(fragments)
                    except StopIteration:
                        break
                endpoint.send_fragment(fragment)
                self._flush()
                await self._wait_buffer()
            endpoint.end_fragments()
            self._flush()
        except BaseException:
            # Cancelled, or the fragments' source failed: a message cannot
            # be left half-sent, so the connection fails (1011).
            endpoint.abort_fragments()
            self._after(None)
            aclose = getattr(async_fragments, "aclose", None)
            if aclose is not None:
                # Finish the source now rather than when it is collected;
                # what it raises on the way out matters less than why.
                with contextlib.suppress(Exception, trio.Cancelled):
                    await aclose()
            raise
        finally:
            self._fragmenting = False
            self._send_waiters.unpark_all()

    async def ping(self, data: bytes | None = None) -> PingWaiter:
        """Send a Ping; ``await (await ws.ping()).wait()`` returns the
        latency once the Pong arrives.

        Without ``data``, a random 4-byte payload is used.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            LocalProtocolError: A Ping with the same payload awaits its Pong.
        """
        await trio.lowlevel.checkpoint()
        payload = self._endpoint.ping(trio.current_time(), data)
        waiter = self._pings[payload] = PingWaiter(payload)
        self._flush()
        return waiter

    async def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (a one-way heartbeat).

        Raises:
            ConnectionClosed: The connection is closing or closed.
        """
        await trio.lowlevel.checkpoint()
        self._endpoint.pong(data)
        self._flush()

    # ------------------------------------------------------------------ closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the close handshake and return once the transport is closed,
        at most ``close_timeout`` later. Does nothing more once closing.

        If cancelled, the close handshake goes on in the background.

        Raises:
            LocalProtocolError: ``code`` may not be sent, or ``reason`` is
                longer than 123 bytes in UTF-8.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._close_nowait(code, reason)
        await self._transport_closed.wait()

    def _close_nowait(self, code: int, reason: str) -> None:
        self._endpoint.close(code, reason)
        self._after(None)
        self._send_waiters.unpark_all()

    async def abort(self) -> None:
        """Close the transport at once, without a close handshake (the close
        code is 1006)."""
        self._abort_nowait()
        with trio.CancelScope(shield=True):
            await self._transport_closed.wait()

    def _abort_nowait(self) -> None:
        self._force_close = True
        if not self._endpoint.closed:
            self._after(self._endpoint.abort(trio.current_time()))
        self._stop_tasks()

    async def _finish(self, error: BaseException | None) -> bool:
        """End the connection after its user is done: close with 1000, or
        1011 after an exception; abort after a cancellation or an
        interrupt, which must not wait for the peer. Returns whether
        ``error`` is a failure to report (see ``Endpoint.finish_handler``)."""
        if error is not None and not isinstance(error, Exception):
            self._abort_nowait()
            return False
        was_closed = self._endpoint.closed
        failed = self._endpoint.finish_handler(error)
        if not was_closed:
            self._after(None)
            self._send_waiters.unpark_all()
        await self._transport_closed.wait()
        return failed

    # ------------------------------------------------------------------ the core

    def _flush(self) -> None:
        """Write what the core queued, or hand it to the writer task.

        On a plain socket, bytes are written at once when nothing else is
        pending: a non-blocking write is synchronous, so it cannot be
        cancelled half-way, and it saves a task switch per message. What the
        kernel does not take, and everything while the writer is busy, goes
        to the writer, in order.
        """
        data: bytes | memoryview = self._endpoint.data_to_send()
        if not data or self._transport_closed.is_set():
            return
        if self._socket is not None and not self._out and self._write_scope is None:
            try:
                sent = os.write(self._socket.fileno(), data)
            except OSError:
                sent = 0  # would block, or broken: the writer finds out which
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
        self._out.append(data)
        self._buffered += len(data)
        if self._buffered > self._write_limit:
            # Every Ping read queues a Pong: a peer that never reads must not
            # grow this buffer without bound, so reading pauses too.
            self._endpoint.writing_paused = True
        self._writer_wakeup.unpark()

    def _after(self, progress: Progress | None) -> None:
        """Act on what a call into the endpoint changed: arm the timers it
        started, write what it queued, wake the tasks it concerns, and start
        closing the transport when the core says so."""
        endpoint = self._endpoint
        deadline = endpoint.next_deadline()
        if deadline == -_INF:
            self._wake(endpoint.handle_timeout(trio.current_time()))
            deadline = endpoint.next_deadline()
        self._flush()
        if progress is not None:
            self._wake(progress)
        if not self._seen_closed and endpoint.closed:
            self._seen_closed = True
            error = endpoint.connection.closed_error()
            for waiter in self._pings.values():
                waiter._fail(error)
            self._pings.clear()
            self._message_waiters.unpark_all()
            self._send_waiters.unpark_all()
        timer_deadline = _deadline(deadline)
        if timer_deadline != self._timer_deadline:
            self._timer_deadline = timer_deadline
            if self._timer_scope is not None:
                self._timer_scope.deadline = timer_deadline
        if self._reader_wakeup and not endpoint.reading_paused:
            self._reader_wakeup.unpark()
        if endpoint.should_close_transport and not self._closing:
            self._begin_closing()

    def _wake(self, progress: Progress) -> None:
        if progress.messages:
            self._message_waiters.unpark(count=self._endpoint.queued_messages)
        for payload, latency in progress.pongs:
            waiter = self._pings.pop(payload, None)
            if waiter is not None:
                waiter._resolve(latency)

    def _begin_closing(self) -> None:
        self._closing = True
        close_timeout = self._endpoint.connection.close_timeout
        if close_timeout is not None:
            self._close_deadline = trio.current_time() + close_timeout
        if self._write_scope is not None:
            if self._endpoint.connection.closed_error().clean:
                # The peer took part in the close handshake: let it read the
                # rest (our Close frame is last), until close_timeout.
                self._write_scope.deadline = self._close_deadline
            else:
                # The connection failed while a write is blocked: a peer
                # that does not read will not read the rest either.
                self._write_scope.cancel()
        self._writer_wakeup.unpark_all()
        self._reader_wakeup.unpark_all()

    # ------------------------------------------------------------------ tasks

    def _start(self, nursery: trio.Nursery) -> None:
        """Start the connection's tasks in ``nursery``."""
        nursery.start_soon(self._read_loop)
        nursery.start_soon(self._write_loop)
        if self._socket is None:
            # Over TLS, a read interrupted at a deadline could lose bytes the
            # TLS layer owes its peer: the timers get a task of their own.
            nursery.start_soon(self._timer_loop)
        self._after(None)

    def _stop_tasks(self) -> None:
        """Make the connection's tasks return."""
        self._stopped = True
        for scope in (self._timer_scope, self._write_scope):
            if scope is not None:
                scope.cancel()
        self._reader_wakeup.unpark_all()
        self._writer_wakeup.unpark_all()

    @trio.lowlevel.enable_ki_protection
    async def _read_loop(self) -> None:
        """Feed received bytes to the core; on a plain socket, where a read
        interrupted at a deadline loses nothing, also call the core back at
        its deadlines (keepalive, ping and close timeouts)."""
        endpoint = self._endpoint
        timers = self._socket is not None
        while not (self._closing or self._stopped):
            end_of_stream = False
            with trio.CancelScope(deadline=self._timer_deadline if timers else _INF) as scope:
                if timers:
                    self._timer_scope = scope
                end_of_stream = await self._read()
            if timers:
                self._timer_scope = None
            if end_of_stream:
                return
            if scope.cancelled_caught and not self._stopped:
                self._after(endpoint.handle_timeout(trio.current_time()))

    async def _read(self) -> bool:
        """Read until the connection closes (``True`` at the end of the
        stream) or a deadline cancels the read."""
        endpoint = self._endpoint
        receive_some = self._stream.receive_some
        while not (self._closing or self._stopped):
            if endpoint.reading_paused:
                await self._reader_wakeup.park()
                continue
            try:
                data = bytes(await receive_some(READ_SIZE))  # the same object if bytes
            except _TRANSPORT_ERRORS:
                data = b""
            self._after(endpoint.receive_data(data, trio.current_time()))
            if not data:
                return True
        return False

    @trio.lowlevel.enable_ki_protection
    async def _timer_loop(self) -> None:
        """Call the core back at its deadlines (over TLS only)."""
        endpoint = self._endpoint
        while not self._stopped:
            with trio.CancelScope(deadline=self._timer_deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            if not self._stopped:
                self._after(endpoint.handle_timeout(trio.current_time()))

    @trio.lowlevel.enable_ki_protection
    async def _write_loop(self) -> None:
        """Write what could not be written at once, then close the transport
        when the core says so (or at once when the connection is aborted)."""
        endpoint = self._endpoint
        send_all = self._stream.send_all
        try:
            while not self._stopped:
                out = self._out
                if not out:
                    if self._closing:
                        break
                    await self._writer_wakeup.park()
                    continue
                data = out[0] if len(out) == 1 else b"".join(out)
                self._out = []
                with trio.CancelScope(deadline=self._close_deadline) as scope:
                    self._write_scope = scope
                    try:
                        await send_all(data)
                    finally:
                        self._write_scope = None
                if scope.cancelled_caught:
                    self._force_close = True
                    break
                self._buffered -= len(data)
                if self._buffered <= self._write_limit:
                    endpoint.writing_paused = False
                    if not endpoint.reading_paused:
                        self._reader_wakeup.unpark()
                    self._send_waiters.unpark_all()
        except _TRANSPORT_ERRORS:
            self._force_close = True
        finally:
            try:
                await self._close_transport()
            finally:
                self._transport_closed.set()
                if not endpoint.closed:
                    # Torn down from outside (cancelled): say so to anyone
                    # still holding the connection.
                    self._after(endpoint.abort(trio.current_time()))
                self._stop_tasks()
                self._message_waiters.unpark_all()
                self._send_waiters.unpark_all()

    async def _close_transport(self) -> None:
        self._stop_tasks()
        self._out = []
        self._buffered = 0
        stream = self._stream
        try:
            if self._force_close:
                await trio.aclose_forcefully(stream)
            else:
                # Graceful for TLS (close_notify), bounded like the last writes.
                with trio.CancelScope(deadline=self._close_deadline):
                    await stream.aclose()
        except _TRANSPORT_ERRORS:
            pass


def _check_limits(
    connection: ClientConnection | ServerConnection, max_queue: int | None, write_limit: int
) -> None:
    """Refuse invalid limits before any I/O, as the core would later."""
    Endpoint(connection, max_queue=max_queue)
    if write_limit < 0:
        raise ValueError(f"write_limit must be >= 0, not {write_limit!r}")


def _addresses(stream: trio.abc.Stream) -> tuple[Any, Any]:
    transport = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    if not isinstance(transport, trio.SocketStream):  # pragma: no cover - our streams only
        return None, None
    sock = transport.socket
    try:
        return sock.getsockname(), sock.getpeername()
    except OSError:  # pragma: no cover - the peer already went away
        return sock.getsockname(), None


# ---------------------------------------------------------------------- handshake


async def _handshake(stream: trio.abc.Stream, endpoint: Endpoint) -> Request | None:
    """Move the opening handshake's bytes until a server received the
    request or a client's handshake ended, bounded by the core's open timer.

    Returns the request (server side), else ``None``. A transport error ends
    the handshake as an end of stream would, and the core reports it. Bytes
    the core queues last (a server's error response) are left for the
    caller to write.
    """
    while True:
        now = trio.current_time()
        deadline = endpoint.next_deadline()
        if deadline is not None and deadline <= now:
            endpoint.handle_timeout(now)  # arms the open timer, or fires it
            deadline = endpoint.next_deadline()
        if not endpoint.handshake_pending or endpoint.should_close_transport:
            return None
        data = endpoint.data_to_send()
        with trio.move_on_at(_deadline(deadline)):
            try:
                if data:
                    await stream.send_all(data)
                received = bytes(await stream.receive_some(READ_SIZE))
            except _TRANSPORT_ERRORS:
                received = b""
            progress = endpoint.receive_data(received, trio.current_time())
            if progress.request is not None:
                return progress.request


# ---------------------------------------------------------------------- client


def _client_tls_context(
    session: ClientSession, ssl: ssl_module.SSLContext | bool | None
) -> ssl_module.SSLContext | None:
    session.check_tls_option(ssl is not None and ssl is not False)
    if isinstance(ssl, ssl_module.SSLContext):
        return ssl
    return ssl_module.create_default_context() if ssl else None


async def _open_transport(
    session: ClientSession, attempt: Attempt, context: ssl_module.SSLContext | None
) -> trio.abc.Stream:
    """Connect to ``attempt.target`` (TCP or Unix socket, then TLS), all
    within the open-timeout budget."""
    target = attempt.target
    with trio.move_on_at(_deadline(attempt.deadline)):
        stream: trio.abc.Stream
        if target.unix_path is not None:
            stream = await trio.open_unix_socket(target.unix_path)
        else:
            stream = await trio.open_tcp_stream(target.host, target.port)
        if not target.tls:
            return stream
        if context is None:
            context = ssl_module.create_default_context()
        tls = trio.SSLStream(stream, context, server_hostname=target.server_hostname)
        try:
            await tls.do_handshake()
        except BaseException as exc:
            await trio.aclose_forcefully(tls)
            if isinstance(exc, trio.BrokenResourceError):
                # Raise what went wrong (ssl.SSLCertVerificationError, ...), an
                # OSError like every other transport failure.
                cause = exc.__cause__
                if isinstance(cause, OSError):
                    raise cause from None
                raise ConnectionError("TLS handshake failed") from exc
            raise
        return tls
    session.check_deadline(trio.current_time())
    raise AssertionError("the open deadline passed but the session disagrees")  # pragma: no cover


async def _open(
    session: ClientSession,
    context: ssl_module.SSLContext | None,
    max_queue: int | None,
    write_limit: int,
) -> Connection:
    attempt = session.start(trio.current_time())
    while True:
        stream = await _open_transport(session, attempt, context)
        try:
            endpoint = Endpoint(attempt.connection, max_queue=max_queue)
            await _handshake(stream, endpoint)
            next_attempt = session.outcome(attempt, trio.current_time())
            if next_attempt is None:
                return Connection(stream, endpoint, write_limit=write_limit)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        await trio.aclose_forcefully(stream)
        attempt = next_attempt


@contextlib.asynccontextmanager
async def connect(
    url: str,
    *,
    subprotocols: Iterable[str] = (),
    extra_headers: HeadersLike = (),
    origin: str | None = None,
    user_agent: str | None = DEFAULT_USER_AGENT,
    open_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float | None = 10.0,
    max_message_size: int | None = 2**20,
    max_queue: int | None = 16,
    write_limit: int = 32768,
    max_redirects: int = 10,
    ssl: ssl_module.SSLContext | bool | None = None,
    unix_path: str | None = None,
    **connection_options: Any,
) -> AsyncIterator[Connection]:
    """Open a WebSocket connection to ``url``, for the duration of an
    ``async with`` block::

        async with connect("wss://example.com/") as ws:
            await ws.send("hello")

    The connection's tasks run in a nursery owned by the block. Leaving the
    block closes the connection: with 1000 normally, 1011 if the block
    raised an exception, and at once, without a close handshake, if it was
    cancelled or interrupted.

    Args:
        url: A ``ws://`` or ``wss://`` URL.
        subprotocols: Subprotocols to offer, most preferred first.
        extra_headers: More request headers; ``Authorization`` and
            ``Cookie`` are not sent to another origin after a redirect.
        origin: The Origin header, if any.
        user_agent: The User-Agent header (``None`` to send none).
        open_timeout: Seconds for the whole opening, across DNS, TCP, TLS,
            the handshake and every redirect (``None``: no limit).
        ping_interval: Seconds between keepalive Pings (``None``: none).
        ping_timeout: Seconds to wait for a keepalive Pong before failing
            the connection with 1011 (``None``: forever).
        close_timeout: Seconds to wait for the close handshake, and for the
            last bytes to be written (``None``: forever).
        max_message_size: Largest incoming message in bytes (``None``: no
            limit); a larger one fails the connection with 1009.
        max_queue: Received messages held for :meth:`Connection.recv`;
            reading from the network pauses when this many wait
            (``None``: no limit).
        write_limit: Bytes buffered for writing above which :meth:`Connection.send`
            waits.
        max_redirects: Most redirects followed (0: none).
        ssl: An :class:`ssl.SSLContext` for ``wss://``, or ``True`` for a
            default one (the default for ``wss://`` URLs): certificates are
            verified and SNI comes from the URL's host.
        unix_path: Connect to this Unix socket; the URL still gives the Host
            header and the path.
        connection_options: More options of :class:`sansws.ClientConnection`
            (``compression``, ``max_header_line``, ``max_headers``,
            ``max_body_size``).

    Raises:
        InvalidURI: ``url`` is not a WebSocket URL.
        ValueError: ``ssl`` with a ``ws://`` URL, or an invalid option.
        InvalidStatus: The server refused the connection.
        RedirectError: A redirect could not be followed.
        OpenTimeout: The opening did not finish within ``open_timeout``.
        HandshakeError: The server's response was not a WebSocket handshake.
        OSError: DNS, TCP or TLS failed.
    """
    session = ClientSession(
        url,
        open_timeout=open_timeout,
        max_redirects=max_redirects,
        unix_path=unix_path,
        extra_headers=extra_headers,
        subprotocols=tuple(subprotocols),
        origin=origin,
        user_agent=user_agent,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        max_message_size=max_message_size,
        **connection_options,
    )
    context = _client_tls_context(session, ssl)
    _check_limits(ClientConnection(session.uri), max_queue, write_limit)
    ws = await _open(session, context, max_queue, write_limit)
    async with _running(ws) as error:
        try:
            yield ws
        except BaseException as exc:
            error.append(exc)
    if error:
        raise error[0]


@contextlib.asynccontextmanager
async def _running(ws: Connection) -> AsyncIterator[list[BaseException]]:
    """Run ``ws``'s tasks for the duration of the block, which records in
    the list the exception its body raised, if any; finish the connection
    accordingly afterwards. The body's exception is re-raised by the caller,
    outside the nursery, so that it is not wrapped in an exception group."""
    error: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        ws._start(nursery)
        yield error
        await ws._finish(error[0] if error else None)


# ---------------------------------------------------------------------- server


class Server:
    """A running WebSocket server, as yielded by :func:`serve`."""

    def __init__(
        self,
        listeners: list[trio.SocketListener],
        handler: Handler,
        *,
        connection_options: dict[str, Any],
        process_request: ProcessRequest | None,
        extra_headers: HeadersLike,
        max_queue: int | None,
        write_limit: int,
        ssl: ssl_module.SSLContext | None,
    ) -> None:
        self._listeners = listeners
        name = listeners[0].socket.getsockname()
        self._port = int(name[1]) if isinstance(name, tuple) else 0
        self._handler = handler
        self._connection_options = connection_options
        self._process_request = process_request
        self._extra_headers = extra_headers
        self._max_queue = max_queue
        self._write_limit = write_limit
        self._ssl = ssl
        self._accept_scopes: list[trio.CancelScope] = []
        self._accepting = 0
        self._handshakes: set[trio.CancelScope] = set()
        self._connections: set[Connection] = set()
        self._active = 0
        self._shutting_down = False
        self._done = trio.Event()

    @property
    def sockets(self) -> list[trio.socket.SocketType]:
        """The listening sockets."""
        return [listener.socket for listener in self._listeners]

    @property
    def port(self) -> int:
        """The port the (first) listening socket is bound to; 0 for a Unix
        socket."""
        return self._port

    @property
    def connections(self) -> set[Connection]:
        """The open connections whose handler is running."""
        return set(self._connections)

    async def serve_forever(self) -> None:
        """Wait until :meth:`shutdown` was called and every connection and
        handler finished."""
        await self._done.wait()

    def shutdown(self) -> None:
        """Stop accepting connections, close every connection with 1001
        (going away), and let :meth:`serve_forever` return once every
        handler finished. Returns at once; idempotent."""
        if self._shutting_down:
            return
        self._shutting_down = True
        for scope in self._accept_scopes:
            scope.cancel()
        for scope in self._handshakes:
            scope.cancel()
        for ws in self._connections:
            ws._close_nowait(1001, "")
        self._check_done()

    def _check_done(self) -> None:
        if self._shutting_down and not self._active and not self._accepting:
            self._done.set()

    def _start(self, nursery: trio.Nursery) -> None:
        for listener in self._listeners:
            self._accepting += 1
            nursery.start_soon(self._accept_loop, listener, nursery)

    @trio.lowlevel.enable_ki_protection
    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        try:
            with trio.CancelScope() as scope:
                self._accept_scopes.append(scope)
                if self._shutting_down:
                    scope.cancel()
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as exc:
                        # Out of descriptors or memory: retry after others
                        # had a chance to free some, as trio.serve_listeners.
                        server_logger.error("accept failed: %s", exc)
                        await trio.sleep(0.1)
                        continue
                    self._active += 1
                    nursery.start_soon(self._handle, stream)
        finally:
            with trio.CancelScope(shield=True):
                await listener.aclose()
            self._accepting -= 1
            self._check_done()

    @trio.lowlevel.enable_ki_protection
    async def _handle(self, transport: trio.SocketStream) -> None:
        try:
            endpoint = Endpoint(
                ServerConnection(**self._connection_options), max_queue=self._max_queue
            )
            ws = await self._open(transport, endpoint)
            if ws is None:
                return
            async with trio.open_nursery() as nursery:
                ws._start(nursery)
                if ws.state is State.OPEN:
                    await self._run_handler(ws)
                else:  # refused: the response is written, then the transport closed
                    await ws._transport_closed.wait()
        finally:
            self._active -= 1
            self._check_done()

    async def _open(self, transport: trio.SocketStream, endpoint: Endpoint) -> Connection | None:
        """Run TLS and the opening handshake until the request is answered
        (or refused); ``None`` if the transport broke or the server shut
        down first."""
        stream: trio.abc.Stream = transport
        try:
            with trio.CancelScope() as scope:
                self._handshakes.add(scope)
                if self._shutting_down:
                    scope.cancel()
                endpoint.handle_timeout(trio.current_time())  # starts the open timer
                if self._ssl is not None:
                    stream = trio.SSLStream(transport, self._ssl, server_side=True)
                    with trio.move_on_at(_deadline(endpoint.next_deadline())) as tls:
                        await stream.do_handshake()
                    if tls.cancelled_caught:
                        await trio.aclose_forcefully(stream)
                        return None
                request = await _handshake(stream, endpoint)
                ws = Connection(stream, endpoint, write_limit=self._write_limit)
                if request is None:
                    return ws  # writes the core's error response, if any, and closes
                response = None
                if self._process_request is not None:
                    deadline = _deadline(endpoint.next_deadline())
                    with trio.move_on_at(deadline) as timer:
                        response = await self._call_process_request(ws, request)
                    if timer.cancelled_caught:
                        endpoint.handle_timeout(trio.current_time())  # the open timeout
                        return ws
                ws._after(endpoint.answer(response, extra_headers=self._extra_headers))
                return ws
            await trio.aclose_forcefully(stream)  # shut down during the handshake
            return None
        except _TRANSPORT_ERRORS:
            await trio.aclose_forcefully(stream)
            return None
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        finally:
            self._handshakes.discard(scope)

    async def _call_process_request(self, ws: Connection, request: Request) -> Response | None:
        assert self._process_request is not None
        try:
            return await self._process_request(ws, request)
        except Exception:
            server_logger.error("process_request failed", exc_info=True)
            return Response(500, body=b"Internal server error\n")

    async def _run_handler(self, ws: Connection) -> None:
        self._connections.add(ws)
        if self._shutting_down:
            ws._close_nowait(1001, "")
        error: BaseException | None = None
        try:
            await self._handler(ws)
        except Exception as exc:
            error = exc
        except BaseException:
            ws._abort_nowait()
            raise
        finally:
            self._connections.discard(ws)
        if await ws._finish(error):
            server_logger.error("connection handler failed", exc_info=error)


async def _open_listeners(
    host: str | None, port: int, unix_path: str | None, backlog: int
) -> list[trio.SocketListener]:
    if unix_path is None:
        return await trio.open_tcp_listeners(port, host=host, backlog=backlog)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(unix_path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return [trio.SocketListener(sock)]


@contextlib.asynccontextmanager
async def serve(
    handler: Handler,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    subprotocols: Iterable[str] = (),
    process_request: ProcessRequest | None = None,
    extra_headers: HeadersLike = (),
    server_header: str | None = DEFAULT_USER_AGENT,
    open_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float | None = 10.0,
    max_message_size: int | None = 2**20,
    max_queue: int | None = 16,
    write_limit: int = 32768,
    ssl: ssl_module.SSLContext | None = None,
    unix_path: str | None = None,
    backlog: int = 100,
    **connection_options: Any,
) -> AsyncIterator[Server]:
    """Serve WebSocket connections for the duration of an ``async with``
    block::

        async def handler(ws):
            async for message in ws:
                await ws.send(message)

        async with serve(handler, "127.0.0.1", 8765) as server:
            await server.serve_forever()

    The server listens as soon as the block is entered. Each connection runs
    ``await handler(ws)`` in a nursery the server owns. When the handler
    returns, the connection closes with 1000; when it raises, with 1011
    (the exception is logged on the ``sansws.server`` logger). Leaving the
    block calls :meth:`Server.shutdown` and waits for every connection.

    Args:
        handler: A coroutine function taking a :class:`Connection`.
        host: The address to listen on; ``None`` for every interface.
        port: The port; 0 picks a free one (see :attr:`Server.port`).
        subprotocols: Supported subprotocols; the first one the client
            offers is selected.
        process_request: ``await process_request(ws, request)`` runs before
            the handshake is answered; return a
            :class:`~sansws.endpoint.Response` to refuse it (authentication,
            health checks), ``None`` to go on. An exception answers 500.
        extra_headers: Headers added to the 101 response.
        server_header: The Server header (``None`` to send none).
        open_timeout: Seconds for TLS, the handshake and ``process_request``.
        ssl: An :class:`ssl.SSLContext` to serve ``wss://``.
        unix_path: Listen on this Unix socket instead of ``host:port``.
        backlog: The listen backlog.

    The other options are those of :func:`connect`; ``connection_options``
    go to :class:`sansws.ServerConnection` (``max_header_line``, ...).
    """
    connection_options = dict(
        subprotocols=tuple(subprotocols),
        server_header=server_header,
        open_timeout=open_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        max_message_size=max_message_size,
        **connection_options,
    )
    # Invalid options fail here rather than in every connection.
    _check_limits(ServerConnection(**connection_options), max_queue, write_limit)
    listeners = await _open_listeners(host, port, unix_path, backlog)
    server = Server(
        listeners,
        handler,
        connection_options=connection_options,
        process_request=process_request,
        extra_headers=extra_headers,
        max_queue=max_queue,
        write_limit=write_limit,
        ssl=ssl,
    )
    error: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            server._start(nursery)
            try:
                yield server
            except BaseException as exc:
                error.append(exc)
                if not isinstance(exc, Exception):
                    # Cancelled or interrupted: abort the connections rather
                    # than wait for their close handshakes.
                    nursery.cancel_scope.cancel()
            server.shutdown()
    finally:
        for listener in listeners:
            with trio.CancelScope(shield=True):
                await listener.aclose()
    if error:
        raise error[0]
