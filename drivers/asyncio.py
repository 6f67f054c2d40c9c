"""The asyncio driver: sansws connections over asyncio transports.

Client::

    from sansws.drivers.asyncio import connect

    async with connect("wss://example.com/chat") as ws:
        await ws.send("hello")
        print(await ws.recv())

Server::

    from sansws.drivers.asyncio import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 8765) as server:
        await server.serve_forever()

How it works: each connection is an :class:`asyncio.Protocol` whose
``data_received`` feeds the bytes straight into the core's
:class:`~sansws.endpoint.Endpoint`; there is no reader task. After every call
into the endpoint the driver writes what it has to send, pauses or resumes
reading as the received-message queue fills and drains, closes the transport
when the core says so, and re-arms one ``loop.call_at`` timer at the core's
next deadline (keepalive, ping timeout, close timeout, handshake timeout).
Application calls wait on futures that the protocol callbacks resolve, so
every ``await`` is a cancellation point that leaves the connection
consistent:

* a cancelled :meth:`Connection.recv` loses no message: messages are taken
  from the queue only after the wait ended without cancellation;
* a cancelled :meth:`Connection.send` either handed the whole message to the
  transport or, for a message sent in fragments, fails the connection with
  1011 (the peer cannot be told to discard half a message);
* a cancelled :meth:`Connection.close` aborts the transport;
* a cancelled :func:`connect` closes whatever transport it had opened.

No task is started for a client connection. A server runs one task per
connection (``process_request`` and the handler), owned by the
:class:`Server` and finished before :meth:`Server.serve_forever` returns.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import ssl as ssl_module
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Generic, TypeVar

from sansws.connection import DEFAULT_USER_AGENT, State
from sansws.connection import ServerConnection as _ServerConnection
from sansws.endpoint import Endpoint, EndpointAttributes, Progress, Response, is_message
from sansws.errors import (
    CloseTimeout,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    LocalProtocolError,
    OpenTimeout,
    PayloadTooBig,
    PingTimeout,
    ProtocolError,
    RedirectError,
    WebSocketError,
    WebSocketTimeout,
)
from sansws.events import Request
from sansws.headers import Headers, HeadersLike
from sansws.session import Attempt, ClientSession, Target

__all__ = [
    "CloseTimeout",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Connection",
    "HandshakeError",
    "Handler",
    "InvalidState",
    "InvalidStatus",
    "InvalidURI",
    "LocalProtocolError",
    "OpenTimeout",
    "PayloadTooBig",
    "PingTimeout",
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

logger = logging.getLogger("sansws.server")

_T = TypeVar("_T")

Data = str | bytes
"""A received message: ``str`` for text, ``bytes`` for binary."""

Sendable = (
    str
    | bytes
    | bytearray
    | memoryview
    | Iterable[str]
    | Iterable[bytes | bytearray | memoryview]
    | AsyncIterable[str]
    | AsyncIterable[bytes | bytearray | memoryview]
)
"""What :meth:`Connection.send` accepts: a message, or its fragments."""

Handler = Callable[["Connection"], Awaitable[None]]
"""A server's connection handler: ``async def handler(ws): ...``."""

ProcessRequest = Callable[["Connection", Request], Awaitable[Response | None]]
"""A server's ``process_request`` hook: ``async def process_request(ws,
request) -> Response | None``."""

_Waiters = list["asyncio.Future[None]"]


def _wake(waiters: _Waiters) -> None:
    for future in waiters:
        if not future.done():
            future.set_result(None)
    waiters.clear()


async def _wait(loop: asyncio.AbstractEventLoop, waiters: _Waiters) -> None:
    # One future per waiter: cancelling one wait must not cancel the others.
    future: asyncio.Future[None] = loop.create_future()
    waiters.append(future)
    try:
        await future
    except asyncio.CancelledError:
        if future in waiters:
            waiters.remove(future)
        raise


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A ping nobody awaits any more must not be reported as "exception never
    # retrieved" when the connection closes.
    if not future.cancelled():
        future.exception()


class _Protocol(asyncio.Protocol):
    """The asyncio side of a :class:`Connection`: transport callbacks only."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._connection._connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._connection._receive(data)

    def eof_received(self) -> None:
        self._connection._receive(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._connection_lost()

    def pause_writing(self) -> None:
        self._connection._pause_writing()

    def resume_writing(self) -> None:
        self._connection._resume_writing()


class Connection(EndpointAttributes):
    """A WebSocket connection, client or server side.

    Obtained from :func:`connect` or passed to a :func:`serve` handler; not
    created directly. Use it as an async iterator to receive messages until
    the connection closes normally, and as an async context manager to close
    it on leaving the block.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        loop: asyncio.AbstractEventLoop,
        *,
        write_limit: int,
        server: Server | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._connection = endpoint.connection
        self._loop = loop
        self._write_limit = write_limit
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._recv_waiters: _Waiters = []
        self._drain_waiters: _Waiters = []
        self._fragment_waiters: _Waiters = []
        self._handshake_waiters: _Waiters = []
        self._lost_waiters: _Waiters = []
        self._pings: dict[bytes, asyncio.Future[float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._abort_timer: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._closed_seen = False
        self._closing_transport = False
        self._lost = False
        self._local_address: Any = None
        self._remote_address: Any = None

    def __repr__(self) -> str:
        role = "client" if self._server is None else "server"
        return f"<sansws.drivers.asyncio.Connection {role} {self.state.name}>"

    # ------------------------------------------------------------------ attributes

    @property
    def local_address(self) -> Any:
        """The local socket address (``(host, port)`` for TCP)."""
        return self._local_address

    @property
    def remote_address(self) -> Any:
        """The peer's socket address (``(host, port)`` for TCP)."""
        return self._remote_address

    # ------------------------------------------------------------------ receiving

    async def recv(self) -> Data:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Cancelling it (directly or with :func:`asyncio.timeout`) loses no
        message: one that arrives meanwhile stays queued for the next call.

        Raises:
            ConnectionClosedOK: The connection closed normally and every
                message received before the close was returned.
            ConnectionClosedError: The connection closed with an error (the
                exception's ``__cause__`` says why, when sansws ended it).
        """
        endpoint = self._endpoint
        while True:
            try:
                message = endpoint.next_message()
            except ConnectionClosed:
                # Asking for more may have released input held back after
                # the messages already returned, and failed the connection.
                self._process(None)
                raise
            if message is not None:
                if self._reading_paused and not endpoint.reading_paused:
                    self._sync_reading()
                return message
            self._process(None)
            await self._wait(self._recv_waiters)

    async def __aiter__(self) -> AsyncIterator[Data]:
        """Yield messages until the connection closes; stop quietly after a
        normal closure, raise :class:`ConnectionClosedError` otherwise."""
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    # ------------------------------------------------------------------ sending

    async def send(self, message: Sendable) -> None:
        """Send a message: ``str`` as text, bytes-like as binary; an iterable
        or async iterable of ``str`` (or of bytes-like) as one fragmented
        message, one frame per item.

        Waits while another task is sending a fragmented message, and while
        the transport's write buffer is above ``write_limit``.

        Cancellation: a whole message is handed to the transport at once, so
        cancelling the wait for the buffer to drain does not cut it; a
        fragmented message interrupted by cancellation (or by an exception
        from its iterable) fails the connection with 1011.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            TypeError: ``message`` is of an unsupported type.
        """
        endpoint = self._endpoint
        cls = type(message)
        if cls is str or cls is bytes or is_message(message):
            while endpoint.sending_fragments:
                await self._wait(self._fragment_waiters)
            endpoint.send(message)  # type: ignore[arg-type]
            self._write_out()
            if self._endpoint.writing_paused:
                await self._drain()
        elif isinstance(message, Mapping):
            endpoint.send(message)  # type: ignore[arg-type]  # raises TypeError
        elif isinstance(message, AsyncIterable):
            await self._send_async_fragments(message)
        elif isinstance(message, Iterable):
            await self._send_fragments(message)
        else:
            endpoint.send(message)  # raises TypeError

    async def _send_fragments(self, fragments: Iterable[Any]) -> None:
        endpoint = self._endpoint
        iterator = iter(fragments)
        try:
            first = next(iterator)
        except StopIteration:
            return
        while endpoint.sending_fragments:
            await self._wait(self._fragment_waiters)
        try:
            endpoint.send_fragment(first)
            self._write_out()
            for fragment in iterator:
                if self._endpoint.writing_paused:
                    await self._drain()
                endpoint.send_fragment(fragment)
                self._write_out()
            endpoint.end_fragments()
            self._write_out()
        except BaseException:
            self._abort_fragments()
            raise
        finally:
            _wake(self._fragment_waiters)
        if self._endpoint.writing_paused:
            await self._drain()

    async def _send_async_fragments(self, fragments: AsyncIterable[Any]) -> None:
        endpoint = self._endpoint
        iterator = aiter(fragments)
        try:
            first = await anext(iterator)
        except StopAsyncIteration:
            return
        # Checked after the first fragment arrived and acted on without an
        # await in between, so no other send can slip into this message.
        while endpoint.sending_fragments:
            await self._wait(self._fragment_waiters)
        try:
            endpoint.send_fragment(first)
            self._write_out()
            async for fragment in iterator:
                endpoint.send_fragment(fragment)
                self._write_out()
                if self._endpoint.writing_paused:
                    await self._drain()
            endpoint.end_fragments()
            self._write_out()
        except BaseException:
            self._abort_fragments()
            raise
        finally:
            _wake(self._fragment_waiters)
        if self._endpoint.writing_paused:
            await self._drain()

    def _abort_fragments(self) -> None:
        self._endpoint.abort_fragments()
        self._process(None)

    async def _drain(self) -> None:
        await self._wait(self._drain_waiters)
        if self._lost and self._endpoint.writing_paused:
            raise self._connection.closed_error()

    def ping(self, data: bytes | None = None) -> asyncio.Future[float]:
        """Send a Ping; return a future resolving to the round-trip time in
        seconds once the matching Pong arrives.

        ``latency = await ws.ping()`` waits for it; keep the future to wait
        later, or drop it. Without ``data`` a random 4-byte payload is used.
        A Pong also answers every Ping sent before it. If the connection
        closes first, the future raises :class:`ConnectionClosed`.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            LocalProtocolError: A Ping with the same payload awaits its Pong,
                or ``data`` is longer than 125 bytes.
        """
        payload = self._endpoint.ping(self._loop.time(), data)
        future: asyncio.Future[float] = self._loop.create_future()
        future.add_done_callback(_retrieve)
        self._pings[payload] = future
        self._write_out()
        return future

    async def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (a one-way heartbeat); waits while the
        write buffer is above ``write_limit``.

        Raises:
            ConnectionClosed: The connection is closing or closed.
        """
        self._endpoint.pong(data)
        self._write_out()
        if self._endpoint.writing_paused:
            await self._drain()

    # ------------------------------------------------------------------ closing

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: send a Close frame with ``code`` and
        ``reason``, and return once the transport is closed, at most about
        ``close_timeout`` later. Idempotent: once closing or closed, just
        waits for the transport to close.

        Cancelling it aborts the transport (close code 1006).

        Raises:
            LocalProtocolError: ``code`` may not be sent, or ``reason`` is too
                long.
        """
        self._endpoint.close(code, reason)
        self._process(None)
        try:
            await self.wait_closed()
        except asyncio.CancelledError:
            self.abort()
            raise

    def abort(self) -> None:
        """Close the transport at once, without a close handshake; the
        connection ends with 1006 (unless it had already closed)."""
        if self._lost:
            return
        if not self._endpoint.closed:
            self._process(self._endpoint.abort(self._loop.time()))
        if self._transport is not None and not self._lost:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the transport is closed."""
        if not self._lost:
            await self._wait(self._lost_waiters)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ driving the endpoint

    async def _wait(self, waiters: _Waiters) -> None:
        await _wait(self._loop, waiters)

    def _connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        transport.set_write_buffer_limits(high=self._write_limit)
        self._local_address = transport.get_extra_info("sockname")
        self._remote_address = transport.get_extra_info("peername")
        if self._server is not None and not self._server._accepting(self):
            transport.abort()
            return
        self._process(None)  # writes a client's request, arms the open timer

    def _receive(self, data: bytes) -> None:
        self._process(self._endpoint.receive_data(data, self._loop.time()))

    def _write_out(self) -> None:
        # Sending whole messages, fragments, pings and pongs never closes the
        # connection, so writing is all there is to do after them.
        data = self._endpoint.data_to_send()
        if data and not self._lost:
            assert self._transport is not None
            self._transport.write(data)

    def _process(self, progress: Progress | None) -> None:
        """Act on the endpoint after a call into it: write, wake waiters,
        close the transport or pause reading, re-arm the timer."""
        transport = self._transport
        if transport is None:
            return  # not connected yet: connection_made comes back here
        endpoint = self._endpoint
        data = endpoint.data_to_send()
        if self._lost:
            return  # nowhere to write, and connection_lost woke every waiter
        if data:
            transport.write(data)
        if progress is not None:
            if progress.messages and self._recv_waiters:
                _wake(self._recv_waiters)
            if progress.pongs:
                self._resolve_pings(progress.pongs)
            if progress.handshake:
                _wake(self._handshake_waiters)
            if progress.request is not None and self._server is not None:
                self._server._request_received(self, progress.request)
        if not self._closed_seen and endpoint.closed:
            self._closed_seen = True
            self._on_closed()
        if endpoint.should_close_transport:
            self._close_transport()
        elif endpoint.reading_paused is not self._reading_paused:
            self._sync_reading()
        self._schedule()

    def _schedule(self) -> None:
        if self._lost:
            return
        endpoint = self._endpoint
        deadline = endpoint.next_deadline()
        if deadline == -math.inf:
            # A timer was started: arming it takes a handle_timeout call.
            self._process(endpoint.handle_timeout(self._loop.time()))
            return
        timer = self._timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
        elif timer is None or deadline != self._timer_when:
            if timer is not None:
                timer.cancel()
            self._timer_when = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        # The loop may run a timer up to its clock resolution early.
        now = max(self._loop.time(), self._timer_when)
        self._process(self._endpoint.handle_timeout(now))

    def _sync_reading(self) -> None:
        paused = self._endpoint.reading_paused
        if paused is self._reading_paused or self._closing_transport or self._lost:
            return
        assert self._transport is not None
        self._reading_paused = paused
        if paused:
            self._transport.pause_reading()
        else:
            self._transport.resume_reading()

    def _pause_writing(self) -> None:
        # The transport's buffer passed write_limit: the endpoint stops
        # reading too, or a peer that never reads could grow it forever.
        self._endpoint.writing_paused = True
        self._sync_reading()

    def _resume_writing(self) -> None:
        self._endpoint.writing_paused = False
        self._sync_reading()
        _wake(self._drain_waiters)

    def _resolve_pings(self, pongs: list[tuple[bytes, float]]) -> None:
        for payload, latency in pongs:
            future = self._pings.pop(payload, None)
            if future is not None and not future.done():
                future.set_result(latency)

    def _on_closed(self) -> None:
        _wake(self._recv_waiters)
        _wake(self._fragment_waiters)
        _wake(self._handshake_waiters)
        pings, self._pings = self._pings, {}
        for future in pings.values():
            if not future.done():
                future.set_exception(self._connection.closed_error())

    def _close_transport(self) -> None:
        if self._closing_transport:
            return
        self._closing_transport = True
        transport = self._transport
        assert transport is not None
        if isinstance(self._connection.close_error, WebSocketTimeout):
            # The peer stopped answering: flushing to it could take forever.
            transport.abort()
            return
        buffered = transport.get_write_buffer_size()
        transport.close()
        timeout = self._connection.close_timeout
        if buffered and timeout is not None:
            # A peer that stopped reading must not keep the transport open.
            self._abort_timer = self._loop.call_later(timeout, transport.abort)

    def _connection_lost(self) -> None:
        self._lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        endpoint = self._endpoint
        if not endpoint.closed:
            endpoint.abort(self._loop.time())
        endpoint.data_to_send()  # nowhere to write it any more
        if not self._closed_seen:
            self._closed_seen = True
            self._on_closed()
        _wake(self._drain_waiters)
        _wake(self._handshake_waiters)
        _wake(self._lost_waiters)
        if self._server is not None:
            self._server._connection_lost(self)

    # ------------------------------------------------------------------ server side

    def _answer(self, response: Response | None, extra_headers: HeadersLike) -> None:
        self._process(self._endpoint.answer(response, extra_headers=extra_headers))

    def _shutdown(self) -> None:
        self._endpoint.close(1001)
        self._process(None)


# ---------------------------------------------------------------------- client


class _Opening(Generic[_T]):
    """What :func:`connect` and :func:`serve` return: await it for the
    connection or server, or use it as an async context manager that closes
    it on leaving the block."""

    def __init__(
        self,
        open: Callable[[], Coroutine[Any, Any, _T]],
        close: Callable[[_T], Awaitable[None]],
    ) -> None:
        self._open = open
        self._close = close
        self._value: _T | None = None

    def __await__(self) -> Generator[Any, None, _T]:
        return self._open().__await__()

    async def __aenter__(self) -> _T:
        self._value = await self._open()
        return self._value

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._value is not None
        await self._close(self._value)


async def _open(
    url: str,
    ssl: ssl_module.SSLContext | bool | None,
    max_queue: int | None,
    write_limit: int,
    options: dict[str, Any],
) -> Connection:
    loop = asyncio.get_running_loop()
    session = ClientSession(url, **options)
    session.check_tls_option(ssl not in (None, False))
    contexts: dict[bool, ssl_module.SSLContext] = {}

    def context_for(target: Target) -> ssl_module.SSLContext | None:
        if not target.tls:
            return None
        if isinstance(ssl, ssl_module.SSLContext):
            return ssl
        if True not in contexts:
            contexts[True] = ssl_module.create_default_context()
        return contexts[True]

    attempt = session.start(loop.time())
    while True:
        ws = Connection(
            Endpoint(attempt.connection, max_queue=max_queue), loop, write_limit=write_limit
        )
        await _connect_transport(loop, session, attempt, ws, context_for(attempt.target))
        try:
            while ws._endpoint.handshake_pending:
                await ws._wait(ws._handshake_waiters)
            next_attempt = session.outcome(attempt, loop.time())
        except BaseException:
            ws.abort()
            raise
        if next_attempt is None:
            return ws
        ws.abort()  # the redirect's transport; the core already closed its side
        attempt = next_attempt


async def _connect_transport(
    loop: asyncio.AbstractEventLoop,
    session: ClientSession,
    attempt: Attempt,
    ws: Connection,
    context: ssl_module.SSLContext | None,
) -> None:
    target = attempt.target
    server_hostname = target.server_hostname if context is not None else None
    timeout = asyncio.timeout_at(attempt.deadline)
    try:
        async with timeout:
            if target.unix_path is not None:
                await loop.create_unix_connection(
                    lambda: _Protocol(ws),
                    target.unix_path,
                    ssl=context,
                    server_hostname=server_hostname,
                )
            else:
                await loop.create_connection(
                    lambda: _Protocol(ws),
                    target.host,
                    target.port,
                    ssl=context,
                    server_hostname=server_hostname,
                )
    except TimeoutError:
        if timeout.expired() and attempt.deadline is not None:
            try:
                session.check_deadline(max(loop.time(), attempt.deadline))
            except OpenTimeout as exc:
                raise exc from None
        raise


def connect(
    url: str,
    *,
    subprotocols: Sequence[str] = (),
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
    **options: Any,
) -> _Opening[Connection]:
    """Open a WebSocket connection to ``url``.

    Use ``async with connect(url) as ws:`` (the connection closes on leaving
    the block) or ``ws = await connect(url)`` (close it yourself).

    Args:
        url: A ``ws://`` or ``wss://`` URL.
        subprotocols: Subprotocols to offer, most preferred first.
        extra_headers: More request headers (``Authorization`` and
            ``Cookie`` are not sent to another origin after a redirect).
        origin: The Origin header, if any.
        user_agent: The User-Agent header (``None`` sends none).
        open_timeout: Seconds for the whole opening: DNS, TCP, TLS, the
            handshake and every redirect (``None``: no limit).
        ping_interval: Seconds between keepalive Pings (``None``: none).
        ping_timeout: Seconds to wait for a keepalive Pong before failing
            the connection with 1011 (``None``: forever).
        close_timeout: Seconds to wait for the close handshake and for the
            transport to close (``None``: forever).
        max_message_size: Largest incoming message in bytes (``None``: no
            limit); a larger one fails the connection with 1009.
        max_queue: Received messages buffered before the driver stops
            reading from the socket (``None``: no limit).
        write_limit: Bytes buffered for writing above which :meth:`~Connection.send`
            waits (it resumes when the buffer drains to a quarter of it).
        max_redirects: Most HTTP redirects followed (0: none).
        ssl: An :class:`ssl.SSLContext`, or ``True`` for a default one; a
            ``wss://`` URL without it uses :func:`ssl.create_default_context`.
            Only valid with ``wss://``.
        unix_path: Connect to this Unix socket; ``url`` still gives the Host
            header and the path.
        options: Other options of :class:`sansws.ClientConnection`
            (``compression``, ``max_header_line``, ``max_headers``, ``max_body_size``,
            ...).

    Raises:
        InvalidURI: ``url`` is not a WebSocket URL.
        InvalidStatus: The server answered with a non-redirect status.
        RedirectError: A redirect could not be followed.
        OpenTimeout: The opening did not finish within ``open_timeout``.
        HandshakeError: The server's response is not a valid handshake.
        OSError: DNS resolution, the TCP connection or TLS failed.
        ValueError: ``ssl`` with a ``ws://`` URL, or an invalid option.
    """
    options.update(
        subprotocols=subprotocols,
        extra_headers=extra_headers,
        origin=origin,
        user_agent=user_agent,
        open_timeout=open_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        max_message_size=max_message_size,
        max_redirects=max_redirects,
        unix_path=unix_path,
    )
    return _Opening(
        functools.partial(_open, url, ssl, max_queue, write_limit, options), Connection.close
    )


# ---------------------------------------------------------------------- server


class Server:
    """A running WebSocket server, returned by :func:`serve`.

    Each accepted connection runs in a task owned by the server: the
    ``process_request`` hook, then the handler. The handler's return closes
    the connection with 1000; an exception closes it with 1011 and is logged
    to the ``sansws.server`` logger.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        process_request: ProcessRequest | None,
        extra_headers: HeadersLike,
        max_queue: int | None,
        write_limit: int,
        connection_options: dict[str, Any],
    ) -> None:
        # Build one connection now, so that invalid options fail in serve().
        Endpoint(_ServerConnection(**connection_options), max_queue=max_queue)
        self._handler = handler
        self._process_request = process_request
        self._extra_headers = Headers(extra_headers)
        self._max_queue = max_queue
        self._write_limit = write_limit
        self._connection_options = connection_options
        self._loop = asyncio.get_running_loop()
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._shutting_down = False
        self._done = False
        self._done_waiters: _Waiters = []

    def __repr__(self) -> str:
        return f"<sansws.drivers.asyncio.Server sockets={self.sockets!r}>"

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets (empty once shut down)."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    @property
    def port(self) -> int | None:
        """The TCP port the server listens on (``None`` for a Unix socket)."""
        for sock in self.sockets:
            name = sock.getsockname()
            if isinstance(name, tuple):
                return int(name[1])
        return None

    def shutdown(self) -> None:
        """Stop accepting connections and close every connection with 1001
        (going away); :meth:`serve_forever` and :meth:`wait_closed` return
        once every connection is closed and every handler has returned.
        Returns at once; calling it again does nothing."""
        if self._shutting_down:
            return
        self._shutting_down = True
        if self._server is not None:
            self._server.close()
        for ws in list(self._connections):
            ws._shutdown()
        self._check_done()

    async def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` completes."""
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the server was shut down and every connection and
        handler has finished."""
        if not self._done:
            await _wait(self._loop, self._done_waiters)
        if self._server is not None:
            await self._server.wait_closed()

    async def aclose(self) -> None:
        """Shut down and wait until it is done. If the wait is cancelled,
        handlers are cancelled and transports aborted before returning."""
        self.shutdown()
        try:
            await self.wait_closed()
        except asyncio.CancelledError:
            await self._terminate()
            raise

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _start(self, host: str | None, port: int, unix_path: str | None, **kw: Any) -> None:
        if unix_path is not None:
            self._server = await self._loop.create_unix_server(self._protocol, unix_path, **kw)
        else:
            self._server = await self._loop.create_server(self._protocol, host, port, **kw)

    async def _terminate(self) -> None:
        for ws in list(self._connections):
            ws.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _protocol(self) -> _Protocol:
        connection = _ServerConnection(**self._connection_options)
        endpoint = Endpoint(connection, max_queue=self._max_queue)
        return _Protocol(
            Connection(endpoint, self._loop, write_limit=self._write_limit, server=self)
        )

    def _accepting(self, ws: Connection) -> bool:
        self._connections.add(ws)
        return not self._shutting_down

    def _connection_lost(self, ws: Connection) -> None:
        self._connections.discard(ws)
        self._check_done()

    def _request_received(self, ws: Connection, request: Request) -> None:
        task = self._loop.create_task(self._run(ws, request))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._check_done()

    def _check_done(self) -> None:
        if self._shutting_down and not self._connections and not self._tasks and not self._done:
            self._done = True
            _wake(self._done_waiters)

    async def _run(self, ws: Connection, request: Request) -> None:
        endpoint = ws._endpoint
        try:
            response = None
            if self._process_request is not None:
                try:
                    response = await self._process_request(ws, request)
                except Exception:
                    logger.error("process_request failed", exc_info=True)
                    response = Response(500, body=b"Failed to open a WebSocket connection.\n")
            if not endpoint.handshake_pending:
                return  # closed meanwhile: shutdown, open timeout, or the client left
            ws._answer(response, self._extra_headers)
            if ws.state is not State.OPEN:
                return
            error: BaseException | None = None
            try:
                await self._handler(ws)
            except Exception as exc:
                error = exc
            if endpoint.finish_handler(error):
                logger.error("connection handler failed", exc_info=error)
            ws._process(None)
        except Exception:
            logger.error("connection failed", exc_info=True)
            ws.abort()
        except BaseException:
            ws.abort()
            raise


def serve(
    handler: Handler,
    host: str | None = "127.0.0.1",
    port: int = 0,
    *,
    subprotocols: Sequence[str] = (),
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
    **options: Any,
) -> _Opening[Server]:
    """Serve WebSocket connections on ``host:port`` (or ``unix_path``).

    Use ``async with serve(handler, host, port) as server:`` and ``await
    server.serve_forever()``; leaving the block shuts the server down (every
    connection closed with 1001) and waits for the handlers. ``server =
    await serve(...)`` also works; then call :meth:`Server.aclose`.

    Args:
        handler: ``async def handler(ws)``, run in a task per connection
            once the handshake is accepted.
        host: The address to bind (``None``: all interfaces).
        port: The TCP port; 0 picks a free one (see :attr:`Server.port`).
        subprotocols: Supported subprotocols, most preferred first.
        process_request: ``async def process_request(ws, request)``
            returning a :class:`Response` to refuse the handshake (for
            authentication, origin checks, health checks), or ``None`` to
            accept it. An exception answers 500.
        extra_headers: Headers added to every accepting response.
        server_header: The Server header (``None`` sends none).
        open_timeout: Seconds for the TLS and opening handshakes
            (``None``: no limit).
        ping_interval, ping_timeout, close_timeout, max_message_size,
        max_queue, write_limit: As for :func:`connect`.
        ssl: An :class:`ssl.SSLContext` to serve ``wss://``.
        unix_path: Listen on this Unix socket instead of ``host:port``.
        backlog: The listen backlog.
        options: Other options of :class:`sansws.ServerConnection`
            (``compression``, ``max_header_line``, ``max_headers``, ``max_body_size``,
            ...).
    """
    connection_options = dict(
        subprotocols=subprotocols,
        server_header=server_header,
        open_timeout=open_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        max_message_size=max_message_size,
        **options,
    )
    listen: dict[str, Any] = {"ssl": ssl, "backlog": backlog}
    if ssl is not None and open_timeout is not None:
        listen["ssl_handshake_timeout"] = open_timeout

    async def make() -> Server:
        server = Server(
            handler,
            process_request=process_request,
            extra_headers=extra_headers,
            max_queue=max_queue,
            write_limit=write_limit,
            connection_options=connection_options,
        )
        await server._start(host, port, unix_path, **listen)
        return server

    return _Opening(make, Server.aclose)
