"""WebSocket client and server for blocking code and threads.

::

    from sansws.drivers.sync import connect, serve

    with connect("ws://127.0.0.1:8765/") as ws:
        ws.send("hello")
        print(ws.recv(timeout=10))

    def echo(ws):
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 8765) as server:
        server.serve_forever()

No wait without a way out: every blocking call (connecting, the TLS and
opening handshakes, ``recv``, ``send`` under back-pressure, the close
handshake) waits in ``poll`` on the socket and on a wake-up channel, at most
until the core's next deadline. ``close()`` and ``abort()`` from another
thread wake it, and Ctrl+C in the main thread raises KeyboardInterrupt out of
it at once.

The client starts no thread: keepalive Pings, Pong replies and timers run
inside your calls to ``recv``, ``send``, ``ping`` and ``close``. A
connection you do not use for a while answers nothing meanwhile; pass
``keepalive_thread=True`` to run them in a background thread instead, which
is joined when the connection closes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl as ssl_module
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, cast

from sansws.connection import DEFAULT_USER_AGENT, ServerConnection, State
from sansws.endpoint import READ_SIZE, Endpoint, EndpointAttributes, Progress, Response, is_message
from sansws.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    InvalidStatus,
    OpenTimeout,
    RedirectError,
    WebSocketError,
)
from sansws.events import Request
from sansws.headers import HeadersLike
from sansws.session import Attempt, ClientSession

from ._sync_net import (
    Flag,
    TransportTimeout,
    Wakeup,
    connect_tcp,
    connect_unix,
    remaining,
    tls_handshake,
    wait_fds,
)

__all__ = [
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HandshakeError",
    "InvalidStatus",
    "OpenTimeout",
    "PingWaiter",
    "RedirectError",
    "Response",
    "Server",
    "WebSocketError",
    "connect",
    "serve",
]

_monotonic = time.monotonic
Data = str | bytes | bytearray | memoryview
_WANT = (
    BlockingIOError,
    InterruptedError,
    ssl_module.SSLWantReadError,
    ssl_module.SSLWantWriteError,
)

logger = logging.getLogger("sansws.server")


class PingWaiter:
    """A sent Ping: :meth:`wait` returns the round-trip time once its Pong
    arrived."""

    def __init__(self, connection: Connection, payload: bytes) -> None:
        self._connection = connection
        #: The Ping's payload.
        self.payload = payload

    def wait(self, timeout: float | None = None) -> float:
        """Block until the Pong arrives and return the latency in seconds.

        Raises:
            TimeoutError: No Pong within ``timeout`` seconds.
            ConnectionClosed: The connection closed first.
        """
        conn = self._connection
        answered = conn._pongs
        endpoint = conn._endpoint
        payload = self.payload
        if not conn._wait(lambda: payload in answered or endpoint.closed, timeout):
            raise TimeoutError(f"no pong within {timeout} seconds")
        with conn._lock:
            if payload in answered:
                return answered.pop(payload)
        raise endpoint.connection.closed_error()


class Connection(EndpointAttributes):
    """One WebSocket connection, client or server side.

    Every method may be called from any thread. Several threads may wait at
    once (one receiving, one sending, one waiting for a Pong): whichever is
    waiting moves the bytes for all of them. Returned by :func:`connect`, and
    passed to a server's handler.
    """

    def __init__(
        self,
        sock: socket.socket,
        endpoint: Endpoint,
        *,
        write_limit: int = 32768,
    ) -> None:
        if write_limit < 0:
            raise ValueError(f"write_limit must be >= 0, not {write_limit!r}")
        self._sock = sock
        self._fd = sock.fileno()
        self._tls = isinstance(sock, ssl_module.SSLSocket)
        self._endpoint = endpoint
        self._write_high = write_limit
        self._write_low = write_limit // 4
        self._lock = threading.Lock()
        self._wakeup = Wakeup()
        self._out: deque[bytes] = deque()
        self._out_offset = 0
        self._out_size = 0
        self._eof = False
        self._transport_closed = False
        self._polling = 0
        self._pongs: dict[bytes, float] = {}
        self._request: Request | None = None
        self._keepalive: threading.Thread | None = None
        try:
            self.local_address: Any = sock.getsockname()
            self.remote_address: Any = sock.getpeername()
        except OSError:  # the peer is already gone; the first read says so
            self.local_address = self.remote_address = None

    # ------------------------------------------------------------ attributes

    # ------------------------------------------------------------ receiving

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Raises:
            TimeoutError: No message within ``timeout`` seconds.
            ConnectionClosedOK: The connection closed normally and every
                message received before was returned.
            ConnectionClosedError: The connection closed with an error.
        """
        endpoint = self._endpoint
        message = self._next_message()
        while message is None:
            if not self._wait(lambda: endpoint.queued_messages > 0 or endpoint.closed, timeout):
                raise TimeoutError(f"no message within {timeout} seconds")
            message = self._next_message()
        return message

    def _next_message(self) -> str | bytes | None:
        with self._lock:
            try:
                message = self._endpoint.next_message()
            finally:
                # Asking for more may release input held back because it
                # broke the protocol: the Close frame is then to be written.
                self._flush()
            if message is not None:
                self._after_dequeue()
            return message

    def _after_dequeue(self) -> None:
        # Taking a message may resume reading, which a sleeping waiter that
        # left the socket out of its poll must learn.
        if self._wakeup.sleeping:
            self._wakeup.notify()

    def __iter__(self) -> Iterator[str | bytes]:
        """Yield messages until the connection closes: stops after a normal
        closure, raises :class:`ConnectionClosedError` after an error."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    # ------------------------------------------------------------ sending

    def send(self, message: Data | Iterable[Data]) -> None:
        """Send a message: text for ``str``, binary for bytes-like; an
        iterable of ``str`` or of bytes-like is sent as one fragmented
        message.

        Blocks while another thread sends a fragmented message, and while
        more than ``write_limit`` bytes wait to be written (until the peer
        read most of them).

        Raises:
            ConnectionClosed: The connection is closing or closed.
            TypeError: ``message`` is not a message or an iterable of them.
        """
        endpoint = self._endpoint
        if is_message(message):
            self._wait_not_fragmenting()
            with self._lock:
                endpoint.send(cast(Data, message))
                self._flush()
            self._wait_drained()
            return
        try:
            fragments = iter(cast(Iterable[Data], message))
        except TypeError:
            raise TypeError(
                f"message must be str, bytes-like or an iterable, not {type(message).__name__}"
            ) from None
        fragment = next(fragments, None)
        if fragment is None:
            return  # an empty iterable is no message
        while True:
            self._wait_not_fragmenting()
            with self._lock:
                # Another thread may have started a fragmented message since.
                if not endpoint.sending_fragments:
                    endpoint.send_fragment(fragment)
                    self._flush()
                    break
        try:
            self._wait_drained()
            for fragment in fragments:
                with self._lock:
                    endpoint.send_fragment(fragment)
                    self._flush()
                self._wait_drained()
            with self._lock:
                endpoint.end_fragments()
                self._flush()
        except BaseException:
            with self._lock:
                endpoint.abort_fragments()
                self._flush()
                self._wakeup.notify()
            raise
        self._wait_drained()

    def _wait_not_fragmenting(self) -> None:
        endpoint = self._endpoint
        self._wait(lambda: not endpoint.sending_fragments or endpoint.closed)

    def _wait_drained(self) -> None:
        if self._out_size > self._write_high:
            self._wait(lambda: self._out_size <= self._write_low)

    def ping(self, data: bytes | None = None) -> PingWaiter:
        """Send a Ping (a random 4-byte payload if ``data`` is None) and
        return a :class:`PingWaiter` whose ``wait()`` returns the latency.

        Raises:
            ConnectionClosed: The connection is closing or closed.
        """
        with self._lock:
            payload = self._endpoint.ping(_monotonic(), data)
            self._flush()
        return PingWaiter(self, payload)

    def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (a one-way heartbeat)."""
        with self._lock:
            self._endpoint.pong(data)
            self._flush()

    # ------------------------------------------------------------ closing

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the close handshake and return once the transport is closed
        (at most ``close_timeout`` seconds). Idempotent; safe from any
        thread, where it also ends the waits of other threads once the
        handshake is over."""
        self._start_close(code, reason)
        self._wait(lambda: self._transport_closed)
        self._join_keepalive()

    def _start_close(self, code: int, reason: str) -> None:
        with self._lock:
            endpoint = self._endpoint
            if not self._transport_closed:
                endpoint.close(code, reason)
                # Arm the close timer now: the wait below may not be the one
                # that moves the bytes.
                self._progress(endpoint.handle_timeout(_monotonic()))
                self._flush()
            self._wakeup.notify()

    def abort(self) -> None:
        """Close the transport at once, without a close handshake (code
        1006). Thread-safe: every call blocked in another thread returns or
        raises at once."""
        with self._lock:
            if not self._transport_closed:
                self._progress(self._endpoint.abort(_monotonic()))
                self._close_transport()
        self._join_keepalive()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None or issubclass(exc_type, Exception):
            self.close()
        else:
            # KeyboardInterrupt, SystemExit: leave now, don't wait for a peer.
            self.abort()

    # ------------------------------------------------------------ keepalive

    def _start_keepalive(self) -> None:
        thread = threading.Thread(
            target=self._keepalive_loop, name=f"sansws-keepalive-{self._fd}", daemon=True
        )
        self._keepalive = thread
        thread.start()

    def _keepalive_loop(self) -> None:
        self._wait(lambda: self._transport_closed)

    def _join_keepalive(self) -> None:
        thread = self._keepalive
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # ------------------------------------------------------------ the pump

    def _wait(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Move bytes and run timers until ``done()`` (evaluated with the
        lock held) is true; returns False if ``timeout`` passed first.

        Returns True without waiting once the transport is closed: nothing
        can change any more, and the caller reads the final state.
        """
        deadline = None if timeout is None else _monotonic() + timeout
        endpoint = self._endpoint
        wakeup = self._wakeup
        lock = self._lock
        while True:
            with lock:
                if done() or self._transport_closed:
                    return True
                now = _monotonic()
                core_deadline = endpoint.next_deadline()
                if core_deadline is not None and core_deadline <= now:
                    self._progress(endpoint.handle_timeout(now))
                    self._flush()
                    continue
                if deadline is not None and now >= deadline:
                    return False
                reading = not self._eof and not endpoint.reading_paused
                if reading and self._tls and self._sock.pending():  # type: ignore[attr-defined]
                    self._read(now)
                    continue
                wait = _min(core_deadline, deadline)
                read_fds = [wakeup.fd, self._fd] if reading else [wakeup.fd]
                write_fds = [self._fd] if self._out else []
                token = wakeup.sleep()
                self._polling += 1
            try:
                readable, writable = wait_fds(
                    read_fds, write_fds, None if wait is None else wait - now
                )
            finally:
                with lock:
                    wakeup.woke(token)
                    self._polling -= 1
                    if self._transport_closed and not self._polling:
                        self._release()
            if self._fd in readable or self._fd in writable:
                with lock:
                    if not self._transport_closed:
                        if self._fd in writable:
                            self._flush()
                        if self._fd in readable:
                            self._read(_monotonic())

    def _read(self, now: float) -> None:
        """Read what the socket has (lock held)."""
        sock = self._sock
        endpoint = self._endpoint
        while True:
            try:
                data = sock.recv(READ_SIZE)
            except _WANT:
                break
            except OSError:
                data = b""  # reset, or a TLS error: the transport is gone
            if not data:
                self._eof = True
            self._progress(endpoint.receive_data(data, now))
            if not data or not self._tls or endpoint.reading_paused:
                break
            if not sock.pending():  # type: ignore[attr-defined]
                break
        self._flush()

    def _progress(self, progress: Progress) -> None:
        """Record what the endpoint reported, and wake the waiters (lock held)."""
        if progress.pongs:
            for payload, latency in progress.pongs:
                self._pongs[payload] = latency
        if progress.request is not None:
            self._request = progress.request
        if self._wakeup.sleeping:
            self._wakeup.notify()

    def _flush(self) -> None:
        """Write what can be written now; close the transport if the core
        says so (lock held)."""
        if self._transport_closed:
            return
        endpoint = self._endpoint
        data = endpoint.data_to_send()
        out = self._out
        if data:
            out.append(data)
            self._out_size += len(data)
        sock = self._sock
        try:
            while out:
                chunk = out[0]
                offset = self._out_offset
                sent = sock.send(memoryview(chunk)[offset:] if offset else chunk)
                self._out_size -= sent
                if offset + sent == len(chunk):
                    out.popleft()
                    self._out_offset = 0
                else:
                    self._out_offset = offset + sent
        except _WANT:
            pass
        except OSError:
            # The peer is gone: what was not written never will be.
            self._progress(endpoint.abort(_monotonic()))
            self._close_transport()
            return
        # Every Ping read queues a Pong: while the peer does not read what it
        # is sent, stop reading what it sends, or this buffer grows forever.
        if self._out_size > self._write_high:
            endpoint.writing_paused = True
        elif self._out_size <= self._write_low:
            endpoint.writing_paused = False
        if endpoint.should_close_transport:
            self._close_transport()

    def _close_transport(self) -> None:
        """Close the transport (lock held); the descriptors are released
        once no other thread polls them."""
        if self._transport_closed:
            return
        self._transport_closed = True
        self._out.clear()
        self._out_size = 0
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._wakeup.notify()
        if not self._polling:
            self._release()

    def _release(self) -> None:
        self._sock.close()
        self._wakeup.close()

    # ------------------------------------------------------------ opening

    def _handshake(self, deadline: float | None) -> bool:
        """Client: send the request and wait for the answer; False if
        ``deadline`` passed first."""
        with self._lock:
            self._flush()
        endpoint = self._endpoint
        return self._wait(lambda: not endpoint.handshake_pending, remaining(deadline))


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


# ==================================================================== client


def connect(
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
    keepalive_thread: bool = False,
    **options: Any,
) -> Connection:
    """Open a WebSocket connection and return it once the handshake is done.

    Use it as a context manager, which closes the connection::

        with connect("wss://example.com/chat", open_timeout=5) as ws:
            ws.send("hi")

    Args:
        url: The ``ws://`` or ``wss://`` URL.
        subprotocols: Subprotocols to offer, most preferred first.
        extra_headers: More request headers.
        origin: The Origin header.
        user_agent: The User-Agent header (``None`` for none).
        open_timeout: Seconds for the whole opening: DNS, TCP, TLS, the
            handshake and every redirect (``None``: no limit).
        ping_interval: Seconds between keepalive Pings (``None``: none).
        ping_timeout: Seconds to wait for a keepalive Pong before failing
            the connection with 1011.
        close_timeout: Seconds to wait for the close handshake.
        max_message_size: Largest incoming message in bytes (``None``: no
            limit); a bigger one fails the connection with 1009.
        max_queue: Received messages buffered before reading pauses.
        write_limit: Buffered outgoing bytes above which ``send`` blocks
            until the peer read three quarters of them.
        max_redirects: Redirects followed (0: none).
        ssl: An :class:`ssl.SSLContext`, or ``True`` for a default one; a
            ``wss://`` URL without it uses ``ssl.create_default_context()``.
        unix_path: Connect to this Unix socket instead of the URL's host.
        keepalive_thread: Run keepalive and Pong replies in a background
            thread, even while the application is not calling into the
            connection (joined when it closes).
        **options: Further options of :class:`sansws.ClientConnection`
            (``compression``, ``max_header_line``, ...).

    Raises:
        InvalidStatus: The server refused the handshake.
        RedirectError: A redirect could not be followed.
        OpenTimeout: The opening did not finish within ``open_timeout``.
        HandshakeError: The server's answer was not a valid handshake.
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
        **options,
    )
    session.check_tls_option(ssl is not None and ssl is not False)
    context = ssl if isinstance(ssl, ssl_module.SSLContext) else None
    attempt = session.start(_monotonic())
    while True:
        try:
            sock = _open_transport(attempt, context)
        except TransportTimeout:
            session.check_deadline(_monotonic())
            raise OpenTimeout(f"timed out opening {url}") from None
        conn = Connection(
            sock, Endpoint(attempt.connection, max_queue=max_queue), write_limit=write_limit
        )
        try:
            if not conn._handshake(attempt.deadline):
                session.check_deadline(_monotonic())
            next_attempt = session.outcome(attempt, _monotonic())
        except BaseException:
            conn.abort()
            raise
        if next_attempt is None:
            break
        conn.abort()
        attempt = next_attempt
    if keepalive_thread:
        conn._start_keepalive()
    return conn


def _open_transport(attempt: Attempt, context: ssl_module.SSLContext | None) -> socket.socket:
    target = attempt.target
    deadline = attempt.deadline
    if target.unix_path is not None:
        sock = connect_unix(target.unix_path, deadline)
    else:
        sock = connect_tcp(target.host, target.port, deadline)
    if not target.tls:
        return sock
    if context is None:
        context = ssl_module.create_default_context()
    try:
        tls = context.wrap_socket(
            sock, server_hostname=target.server_hostname, do_handshake_on_connect=False
        )
    except BaseException:
        sock.close()
        raise
    try:
        tls_handshake(tls, deadline)
    except BaseException:
        tls.close()
        raise
    return tls


# ==================================================================== server

Handler = Callable[[Connection], None]
ProcessRequest = Callable[[Connection, Request], "Response | None"]


class Server:
    """A WebSocket server; see :func:`serve`.

    Attributes:
        sockets: The listening sockets.
    """

    def __init__(
        self,
        handler: Handler,
        sockets: list[socket.socket],
        *,
        ssl: ssl_module.SSLContext | None,
        process_request: ProcessRequest | None,
        subprotocols: tuple[str, ...],
        extra_headers: HeadersLike,
        open_timeout: float | None,
        max_queue: int | None,
        write_limit: int,
        keepalive_thread: bool,
        unix_path: str | None,
        connection_options: dict[str, Any],
    ) -> None:
        self.handler = handler
        self.sockets = sockets
        self._ssl = ssl
        self._process_request = process_request
        self._subprotocols = subprotocols
        self._extra_headers = extra_headers
        self._open_timeout = open_timeout
        self._max_queue = max_queue
        self._write_limit = write_limit
        self._keepalive_thread = keepalive_thread
        self._unix_path = unix_path
        self._connection_options = connection_options
        self._lock = threading.Lock()
        self._stop = Flag()  # readable for good once shutdown() was called
        self._stopping = False
        self._threads: set[threading.Thread] = set()
        self._connections: set[Connection] = set()
        self._serving = False
        self._done = threading.Event()
        self._closed = False

    @property
    def port(self) -> int:
        """The port the server listens on (0 for a Unix socket)."""
        if self._unix_path is not None:
            return 0
        return int(self.sockets[0].getsockname()[1])

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`; then close every
        connection with 1001, wait for every handler to return, and return.
        Ctrl+C raises KeyboardInterrupt after the same cleanup."""
        with self._lock:
            if self._serving:
                raise RuntimeError("serve_forever() is already running")
            if self._closed:
                raise RuntimeError("the server was shut down")
            self._serving = True
        try:
            self._accept_loop()
        finally:
            self._finish()

    def shutdown(self) -> None:
        """Stop accepting and close every connection with 1001 (going away).
        Callable from any thread; ``serve_forever()`` returns once every
        handler returned."""
        with self._lock:
            if not self._stopping:
                self._stopping = True
                self._stop.set()

    def _accept_loop(self) -> None:
        listeners = {sock.fileno(): sock for sock in self.sockets}
        stop_fd = self._stop.fd
        while not self._stopping:
            readable, _ = wait_fds([stop_fd, *listeners], [], None)
            for fd in readable:
                if fd == stop_fd:
                    continue
                try:
                    sock, address = listeners[fd].accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:  # e.g. EMFILE: keep serving the others
                    logger.warning("accept() failed: %s", exc)
                    continue
                self._start(sock, address)

    def _start(self, sock: socket.socket, address: Any) -> None:
        thread = threading.Thread(
            target=self._run_connection,
            args=(sock,),
            name=f"sansws-server-{address}",
            daemon=True,
        )
        with self._lock:
            if self._stopping:
                sock.close()
                return
            self._threads.add(thread)
        thread.start()

    def _run_connection(self, sock: socket.socket) -> None:
        conn: Connection | None = None
        try:
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            deadline = None if self._open_timeout is None else _monotonic() + self._open_timeout
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                tls_handshake(sock, deadline, self._stop.fd)
            endpoint = Endpoint(
                ServerConnection(
                    subprotocols=self._subprotocols,
                    open_timeout=self._open_timeout,
                    **self._connection_options,
                ),
                max_queue=self._max_queue,
            )
            conn = Connection(sock, endpoint, write_limit=self._write_limit)
            with self._lock:
                if self._stopping:
                    return
                self._connections.add(conn)
            self._serve_connection(conn)
        except (OSError, TransportTimeout, ssl_module.SSLError) as exc:
            logger.debug("connection failed before the handshake: %s", exc)
        finally:
            if conn is not None:
                conn.abort()
                with self._lock:
                    self._connections.discard(conn)
            else:
                sock.close()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _serve_connection(self, conn: Connection) -> None:
        endpoint = conn._endpoint
        conn._wait(lambda: conn._request is not None or endpoint.closed)
        request = conn._request
        if request is None or endpoint.closed:
            return
        response: Response | None = None
        if self._process_request is not None:
            try:
                response = self._process_request(conn, request)
            except Exception:
                logger.exception("process_request failed")
                response = Response(500, body=b"Internal Server Error\n")
        with conn._lock:
            if endpoint.closed:
                return
            conn._progress(endpoint.answer(response, extra_headers=self._extra_headers))
            conn._flush()
        if endpoint.connection.state is not State.OPEN:
            conn._wait(lambda: conn._transport_closed)
            return
        if self._keepalive_thread:
            conn._start_keepalive()
        try:
            self.handler(conn)
        except Exception as exc:
            error: BaseException | None = exc
        else:
            error = None
        with conn._lock:
            failed = endpoint.finish_handler(error)
            conn._progress(endpoint.handle_timeout(_monotonic()))
            conn._flush()
        if failed:
            logger.error("connection handler failed", exc_info=error)
        conn.close()

    def _finish(self) -> None:
        """Close every connection with 1001 and wait for their handlers."""
        with self._lock:
            self._stopping = True
            self._closed = True
        try:
            for sock in self.sockets:
                sock.close()
            self._unlink()
            with self._lock:
                connections = list(self._connections)
            # Start every close handshake first so that they run in parallel.
            for conn in connections:
                conn._start_close(1001, "")
            for conn in connections:
                conn.close(1001)
        finally:
            with self._lock:
                connections = list(self._connections)
            for conn in connections:
                conn.abort()
            while True:
                with self._lock:
                    threads = list(self._threads)
                if not threads:
                    break
                for thread in threads:
                    thread.join()
            self._stop.close()
            self._done.set()

    def _unlink(self) -> None:
        if self._unix_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._unix_path)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
        with self._lock:
            serving = self._serving
        if serving:
            self._done.wait()
        elif not self._done.is_set():
            self._finish()


def serve(
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
    keepalive_thread: bool = False,
    **options: Any,
) -> Server:
    """Create a WebSocket server listening on ``host``:``port`` (or on
    ``unix_path``) and return it; call :meth:`Server.serve_forever`::

        def handler(ws):
            for message in ws:
                ws.send(message)

        with serve(handler, "127.0.0.1", 8765) as server:
            server.serve_forever()

    Each connection runs ``handler(ws)`` in its own thread, owned by the
    server. When the handler returns the connection closes with 1000; when
    it raises, with 1011 (the exception is logged to the ``sansws.server``
    logger).

    Args:
        handler: Called with each :class:`Connection` once open.
        host: The address to bind.
        port: The port to bind; 0 picks a free one (see
            :attr:`Server.port`).
        subprotocols: Subprotocols supported, most preferred first.
        process_request: ``process_request(ws, request)`` may return a
            :class:`~sansws.endpoint.Response` to refuse the handshake.
        extra_headers: More response headers.
        server_header: The Server header (``None`` for none).
        open_timeout: Seconds for the TLS and opening handshakes.
        ssl: An :class:`ssl.SSLContext` to serve TLS.
        unix_path: Listen on this Unix socket path instead.
        backlog: The listen backlog.
        keepalive_thread: Also run a keepalive thread per connection (see
            :func:`connect`).

    The other options are those of :func:`connect`.
    """
    if unix_path is not None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(unix_path)
        except BaseException:
            listener.close()
            raise
        sockets = [listener]
    else:
        sockets = []
        try:
            for family, kind, proto, _, address in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            ):
                listener = socket.socket(family, kind, proto)
                sockets.append(listener)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                listener.bind(address)
                break
        except BaseException:
            for listener in sockets:
                listener.close()
            raise
    for listener in sockets:
        listener.listen(backlog)
        listener.setblocking(False)
    return Server(
        handler,
        sockets,
        ssl=ssl,
        process_request=process_request,
        subprotocols=tuple(subprotocols),
        extra_headers=extra_headers,
        open_timeout=open_timeout,
        max_queue=max_queue,
        write_limit=write_limit,
        keepalive_thread=keepalive_thread,
        unix_path=unix_path,
        connection_options=dict(
            server_header=server_header,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
            **options,
        ),
    )
