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

Every decision is the core's: this module carries out the endpoint's
:class:`~sansws.endpoint.Actions` and runs the procedures of
:mod:`sansws.ops` with blocking waits.
"""

from __future__ import annotations

import contextlib
import socket
import ssl as ssl_module
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

from sansws import contract, ops
from sansws.endpoint import READ_SIZE, Actions, Close, Endpoint, Wait, decoded
from sansws.serving import ACCEPT_RETRY_DELAY, ServerState, accept_failed
from sansws.session import ClientSession

from . import _common
from ._common import *  # noqa: F403 - the names every driver exports
from ._common import ConnectionClosedOK, Request, Response
from ._sync_net import WANT as _WANT
from ._sync_net import Flag, TransportTimeout, Wakeup, start_tls, wait_fds

from . import _sync_net  # isort: skip

if TYPE_CHECKING:
    from typing import Unpack

    from sansws.options import ClientOptions, ServerOptions

__all__ = ["Connection", "Handler", "PingWaiter", "ProcessRequest", "Server", "connect", "serve"]
__all__ += _common.__all__

_monotonic = time.monotonic
_INF = float("inf")
Data = str | bytes | bytearray | memoryview


class PingWaiter(contract.PingRecord):
    """A sent Ping: :meth:`wait` returns the round-trip time once its Pong
    arrived."""

    _connection: Connection

    def wait(self, timeout: float | None = None) -> float:
        """Block until the Pong arrives and return the latency in seconds.

        Raises:
            TimeoutError: No Pong within ``timeout`` seconds.
            ConnectionClosed: The connection closed first.
        """
        deadline = None if timeout is None else _monotonic() + timeout
        if not self._connection._wait(self._ping.done, deadline):
            raise TimeoutError(f"no pong within {timeout} seconds")
        return self._ping.result()


class Connection(contract.DriverConnection):
    """One WebSocket connection, client or server side.

    Every method may be called from any thread. Several threads may wait at
    once (one receiving, one sending, one waiting for a Pong): whichever is
    waiting moves the bytes for all of them. Returned by :func:`connect`, and
    passed to a server's handler.
    """

    def __init__(self, sock: socket.socket, endpoint: Endpoint) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._endpoint = endpoint
        self._now = _monotonic
        self._lock = threading.Lock()
        self._wakeup = Wakeup()
        self._out: deque[bytes] = deque()
        self._out_offset = self._out_size = self._polling = 0
        # What the last Actions said, until the next ones.
        self._reading = True
        self._deadline: float | None = None
        self._flushing = self._transport_closed = False
        self._keepalive: threading.Thread | None = None
        self._tls_context: ssl_module.SSLContext | None = None  # a server's, until TLS is up
        try:
            self.local_address: Any = sock.getsockname()
            self.remote_address: Any = sock.getpeername()
        except OSError:  # the peer is already gone; the first read says so
            self.local_address = self.remote_address = None

    # ------------------------------------------------------------ the API

    def recv(self, timeout: float | None = None, decode: bool | None = None) -> str | bytes:
        """The next message: ``str`` for text, ``bytes`` for binary; with
        ``decode=True`` always ``str``, with ``decode=False`` always ``bytes``.

        Raises:
            TimeoutError: No message within ``timeout`` seconds.
            UnicodeDecodeError: ``decode=True`` and a binary message is not
                UTF-8.
            ConnectionClosedOK: The connection closed normally and every
                message received before was returned.
            ConnectionClosedError: The connection closed with an error.
        """
        deadline = None if timeout is None else _monotonic() + timeout
        while True:
            with self._lock:
                message = self._take()
            if message is not None:
                return message if decode is None else decoded(message, decode)
            if not self._wait(lambda: self._endpoint.ready(Wait.MESSAGE), deadline):
                raise TimeoutError(f"no message within {timeout} seconds")

    def __iter__(self) -> Iterator[str | bytes]:
        """Yield messages until the connection closes: stops after a normal
        closure, raises :class:`ConnectionClosedError` after an error."""
        with contextlib.suppress(ConnectionClosedOK):
            while True:
                yield self.recv()

    def send(self, message: Data | Iterable[Data], text: bool | None = None) -> None:
        """Send a message: text for ``str``, binary for bytes-like; an
        iterable of ``str`` or of bytes-like is sent as one fragmented
        message. ``text=True`` sends bytes-like as text (they must be UTF-8),
        ``text=False`` sends ``str`` as binary.

        Blocks while another thread sends a fragmented message, and while
        more than ``write_limit`` bytes wait to be written (until a quarter
        of them are left).

        Raises:
            ConnectionClosed: The connection is closing or closed.
            TypeError: ``message`` is not a message or an iterable of them.
        """
        endpoint = self._endpoint
        procedure = None
        if isinstance(message, str | bytes | bytearray | memoryview):
            with self._lock:
                if endpoint.ready(Wait.SENDABLE):
                    endpoint.send(message, text=text)
                    self._write(endpoint.data_to_send())
                    if endpoint.ready(Wait.DRAINED):
                        return
                    procedure = ops.drain(endpoint)
        sending = ops.send(endpoint, message, _monotonic, asynchronous=False, text=text)
        _run(procedure or sending, self)

    def ping(self, data: bytes | None = None) -> PingWaiter:
        """Send a Ping (a random 4-byte payload if ``data`` is None) and
        return a :class:`PingWaiter` whose ``wait()`` returns the latency.

        Raises:
            ConnectionClosed: The connection is closing or closed.
        """
        with self._lock:
            waiter = PingWaiter(self, self._endpoint.ping(data, _monotonic()))
            self._write(self._endpoint.data_to_send())
        return waiter

    def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (a one-way heartbeat)."""
        with self._lock:
            self._endpoint.pong(data)
            self._write(self._endpoint.data_to_send())

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the close handshake and return once the transport is closed
        (at most ``close_timeout`` seconds). Idempotent; safe from any
        thread, where it also ends the waits of other threads once the
        handshake is over. Interrupted (Ctrl+C), it aborts the transport."""
        _run(ops.close(self._endpoint, code, reason, _monotonic), self)
        self._join_keepalive()

    def abort(self) -> None:
        """Close the transport at once, without a close handshake (code
        1006). Thread-safe: every call blocked in another thread returns or
        raises at once."""
        self._tell(self._endpoint.abort)
        self._join_keepalive()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        _run(ops.finish(self._endpoint, exc, _monotonic), self)
        self._join_keepalive()

    # ------------------------------------------------------------ keepalive

    def _start_keepalive(self) -> None:
        name, until = f"sansws-keepalive-{self._fd}", (lambda: self._transport_closed,)
        self._keepalive = threading.Thread(target=self._wait, args=until, name=name, daemon=True)
        self._keepalive.start()

    def _join_keepalive(self) -> None:
        thread = self._keepalive
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # ------------------------------------------------------------ the pump

    def _wait(self, done: Callable[[], bool], deadline: float | None = None) -> bool:
        """Move bytes and run timers until ``done()`` (evaluated with the
        lock held) is true; False if ``deadline`` passed first. Returns True
        without waiting once the transport is closed: nothing can change any
        more, and the caller reads the final state."""
        endpoint, wakeup, lock, fd = self._endpoint, self._wakeup, self._lock, self._fd
        while True:
            with lock:
                if done() or self._transport_closed:
                    return True
                now = _monotonic()
                if self._deadline is not None and self._deadline <= now:
                    self._apply(endpoint.actions(now))
                    continue
                if deadline is not None and now >= deadline:
                    return False
                reading = self._reading
                if reading and self._tls_pending():
                    self._read(now)
                    continue
                wait = deadline if self._deadline is None else min(self._deadline, deadline or _INF)
                read_fds = [wakeup.fd, fd] if reading else [wakeup.fd]
                token = wakeup.sleep()
                self._polling += 1
            try:
                timeout = None if wait is None else wait - now
                readable, writable = wait_fds(read_fds, [fd] if self._out else [], timeout)
            finally:
                with lock:
                    wakeup.woke(token)
                    self._unpoll()
            if fd in readable or fd in writable:
                with lock:
                    if not self._transport_closed:
                        self._write(b"")
                        if fd in readable:
                            self._read(_monotonic())

    def _read(self, now: float) -> None:
        """Read what the socket has (lock held)."""
        sock, endpoint = self._sock, self._endpoint
        while self._reading and not self._transport_closed:
            try:
                data = sock.recv(READ_SIZE)
            except _WANT:
                return
            except OSError:  # reset, or a TLS error: the transport is gone
                endpoint.abort(now)
            else:
                endpoint.receive_data(data, now)
            self._apply(endpoint.actions(now))
            if not self._tls_pending():
                return

    def _tls_pending(self) -> bool:
        # A TLS socket may hold decrypted bytes that poll cannot see.
        return isinstance(self._sock, ssl_module.SSLSocket) and self._sock.pending() > 0

    def _apply(self, actions: Actions) -> None:
        """Carry out what the endpoint decided (lock held)."""
        self._reading = actions.read
        self._deadline = actions.deadline
        if actions.wake and self._wakeup.sleeping:
            # A waiter may wait for what just happened, or have left the
            # socket out of its poll while reading was paused.
            self._wakeup.notify()
        self._flushing = self._flushing or actions.close is Close.FLUSH
        self._write(actions.write)
        if actions.close is Close.ABORT:
            self._close_transport()

    def _write(self, data: bytes) -> None:
        """Write what the socket takes now, buffer the rest (lock held)."""
        if self._transport_closed:
            return
        out, endpoint = self._out, self._endpoint
        if data:
            if not out and self._polling:
                # A thread in poll left the socket's writability out: it must
                # poll again to write what the socket does not take now.
                self._wakeup.notify()
            out.append(data)
            self._out_size += len(data)
        try:
            while out:
                chunk, offset = out[0], self._out_offset
                sent = self._sock.send(memoryview(chunk)[offset:] if offset else chunk)
                self._out_size -= sent
                self._out_offset = 0 if offset + sent == len(chunk) else offset + sent
                if not self._out_offset:
                    out.popleft()
        except _WANT:
            pass
        except OSError:  # the peer is gone: what was not written never will be
            endpoint.abort(_monotonic())
            self._close_transport()
            return
        endpoint.unwritten(self._out_size)
        if endpoint.dirty:
            self._apply(endpoint.actions(_monotonic()))
        elif self._flushing and not out:
            self._close_transport()

    def _close_transport(self) -> None:
        """Close the transport (lock held); the descriptors are released
        once no other thread polls them."""
        if self._transport_closed:
            return
        self._transport_closed = True
        self._out.clear()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._wakeup.notify()
        if not self._polling:
            self._release()
        self._endpoint.transport_closed(_monotonic())
        self._apply(self._endpoint.actions(_monotonic()))

    def _unpoll(self) -> None:
        """A thread stopped polling the descriptors (lock held): the last one
        releases them once the transport is closed."""
        self._polling -= 1
        if self._transport_closed and not self._polling:
            self._release()

    def _release(self) -> None:
        self._sock.close()
        self._wakeup.close()

    # ------------------------------------------------------------ effects

    # The effects of run(): each blocks, none awaits.

    async def _wait_until(self, what: Wait, deadline: float | None) -> bool:
        return self._wait(lambda: self._endpoint.ready(what), deadline)

    async def _within(self, deadline: float | None, awaitable: Any, expired: Any) -> Any:
        getattr(awaitable, "close", lambda: None)()  # no "never awaited" warning
        raise TypeError(f"the sync driver cannot await {awaitable!r}: pass a plain function")

    async def _start_tls(self, deadline: float | None) -> bool:
        assert self._tls_context is not None
        with self._lock:
            if self._transport_closed:
                return False
            self._polling += 1  # an abort meanwhile must not close what it polls
        tls = None
        try:
            tls = start_tls(self._sock, self._tls_context, deadline, wake_fd=self._wakeup.fd)
        except TransportTimeout:
            pass
        finally:
            with self._lock:
                self._sock = tls or self._sock
                self._unpoll()
        return tls is not None and not self._transport_closed


def _run(procedure: ops.Procedure[Any], connection: Connection | None, ssl: object = None) -> Any:
    """Run a core procedure with :func:`sansws.contract.run`, whose coroutine never
    suspends here: every effect blocks in this thread instead."""

    async def open_transport(effect: ops.OpenTransport) -> Connection | None:
        return _open_transport(effect, ssl)

    coroutine = contract.run(procedure, connection, open_transport)
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("a blocking effect suspended")  # pragma: no cover


# ==================================================================== client


def connect(
    url: str, *, ssl: SSLContext | bool | None = None, keepalive_thread: bool = False,
    **options: Unpack[ClientOptions],
) -> Connection:
    """Open a WebSocket connection and return it once the handshake is done.

    Use it as a context manager, which closes the connection (1000; 1011 if
    the block raised; aborted at once if it was interrupted)::

        with connect("wss://example.com/chat", open_timeout=5) as ws:
            ws.send("hi")

    Args:
        url: The ``ws://`` or ``wss://`` URL.
        ssl: An :class:`ssl.SSLContext`, or ``True`` for a default one; a
            ``wss://`` URL without it uses a default context. Only valid
            with ``wss://``.
        keepalive_thread: Run keepalive and Pong replies in a background
            thread, even while the application is not calling into the
            connection (joined when it closes).
        **options: The options of every driver's ``connect()``
            (docs/options.md): ``open_timeout``, ``subprotocols``,
            ``extra_headers``, ``max_message_size``, ``max_queue``,
            ``write_limit``, ``unix_path``, ``compression``, ...

    Raises:
        InvalidStatus: The server refused the handshake.
        RedirectError: A redirect could not be followed.
        OpenTimeout: The opening did not finish within ``open_timeout``.
        HandshakeError: The server's answer was not a valid handshake.
        OSError: DNS, TCP or TLS failed.
        TypeError, ValueError: An option is unknown or invalid.
    """
    session = ClientSession.from_options(url, options, tls=_common.tls_choice(ssl))
    connection: Connection = _run(ops.open_client(session, _monotonic), None, ssl)
    if keepalive_thread:
        connection._start_keepalive()
    return connection


def _open_transport(effect: ops.OpenTransport, ssl: object) -> Connection | None:
    target, deadline = effect.target, effect.deadline
    context = _common.client_context(target, ssl)
    try:
        sock = _sync_net.connect(target.host, target.port, target.unix_path, deadline)
        if context is not None:
            sock = start_tls(sock, context, deadline, server_hostname=target.server_hostname)
    except TransportTimeout:
        return None  # the deadline passed
    return Connection(sock, effect.endpoint)


# ==================================================================== server

Handler = Callable[[Connection], None]
ProcessRequest = Callable[[Connection, Request], "Response | None"]


class Server(_common.ServerView[Connection]):
    """A WebSocket server; see :func:`serve`.

    Attributes:
        sockets: The listening sockets.
    """

    def __init__(
        self, state: ServerState[Connection], ssl: Any, sockets: list[socket.socket], unix: Any
    ) -> None:
        self.sockets = sockets
        self._state, self._ssl, self._unix = state, ssl, unix
        self._port = _common.port(sockets, unix)
        self._lock = threading.Lock()
        self._stop = Flag()  # readable for good once shutdown() was called
        self._threads: dict[threading.Thread, Connection] = {}
        self._serving = False
        self._done = threading.Event()
        self._released = threading.Event()

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown`, then wait until every
        connection closed and every handler returned. Interrupted (Ctrl+C),
        it aborts every connection, waits for the handlers, and raises."""
        with self._lock:
            if self._serving:
                raise RuntimeError("serve_forever() is already running")
            self._serving = True
        try:
            self._accept_loop()
            self._stop_serving(None)
        except BaseException as exc:  # also when interrupted while connections close
            self._stop_serving(exc)
            raise

    def shutdown(self) -> None:
        """Stop accepting and close every connection with 1001 (going away)
        -- or drop it, if its handshake was not answered yet. Returns at
        once; callable from any thread."""
        self._shutdown(abort=False)

    def _shutdown(self, abort: bool) -> None:
        with self._lock:
            connections = self._state.shutdown()
            if abort:
                connections = list(self._threads.values())
            self._stop.set()
            if self._state.done:
                self._done.set()
        for connection in connections:
            connection._tell(connection._endpoint.abort if abort else connection._endpoint.shutdown)

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the server was shut down and every connection closed
        and every handler returned; False if ``timeout`` passed first."""
        return self._done.wait(timeout)

    def _stop_serving(self, error: BaseException | None) -> None:
        """Shut down -- aborting every connection if ``error`` is an
        interruption -- wait for every thread, and release the listeners."""
        self._shutdown(abort=ops.interrupted(error))
        for connection in list(self._threads.values()):
            # A handler that does not use its connection does not pump it:
            # this thread runs the close handshakes (each bounded by its
            # close_timeout).
            connection._wait(lambda c=connection: c._transport_closed)  # type: ignore[misc]
        self._done.wait()
        for thread in list(self._threads):
            thread.join()
        with self._lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            sock.close()
        if sockets:
            _common.remove_unix(self._unix)
            self._stop.close()
        self._released.set()

    def _accept_loop(self) -> None:
        listeners = {sock.fileno(): sock for sock in self.sockets}
        while not self._stop.is_set:
            for fd in wait_fds([self._stop.fd, *listeners], [], None)[0] - {self._stop.fd}:
                try:
                    sock, address = listeners[fd].accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:  # e.g. EMFILE: keep serving the others
                    contract.report(accept_failed(exc))
                    wait_fds([self._stop.fd], [], ACCEPT_RETRY_DELAY)
                    continue
                self._start(sock, address)

    def _start(self, sock: socket.socket, address: Any) -> None:
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(sock, self._state.endpoint(_monotonic()))
        connection._tls_context = self._ssl
        name = f"sansws-server-{address}"
        thread = threading.Thread(target=self._run, args=(connection,), name=name, daemon=True)
        with self._lock:
            admitted = self._state.admit(connection)
            if admitted:
                self._threads[thread] = connection
        if admitted:
            thread.start()
        else:
            connection.abort()

    def _run(self, connection: Connection) -> None:
        try:
            _run(self._state.serve(connection._endpoint, connection, _monotonic), connection)
        finally:
            connection.abort()
            with self._lock:
                self._threads.pop(threading.current_thread(), None)
                if self._state.discard(connection):
                    self._done.set()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if not self._serving:
            self._stop_serving(exc)
            return
        # serve_forever() (in this thread, done by now, or another one)
        # releases the server: only tell it to stop.
        self._shutdown(abort=ops.interrupted(exc))
        self._released.wait()


def serve(
    handler: Handler, host: str | None = "127.0.0.1", port: int = 0, *,
    ssl: SSLContext | None = None, process_request: ProcessRequest | None = None,
    keepalive_thread: bool = False,
    **options: Unpack[ServerOptions],
) -> Server:
    """Create a WebSocket server listening on ``host``:``port`` (every
    address the name resolves to, on one port) or on ``unix_path``, and
    return it; call :meth:`Server.serve_forever`::

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
        host: The address to bind (``None``: every interface).
        port: The port to bind; 0 picks a free one (see :attr:`Server.port`).
        ssl: An :class:`ssl.SSLContext` to serve TLS.
        process_request: ``process_request(ws, request)`` may return a
            :class:`~sansws.endpoint.Response` to refuse the handshake; an
            exception answers 500. Bounded by ``open_timeout``: an answer
            given later is not used and the connection is dropped.
        keepalive_thread: Also run a keepalive thread per connection (see
            :func:`connect`).
        **options: The options of every driver's ``serve()``
            (docs/options.md).

    Raises:
        TypeError, ValueError: An option is unknown or invalid (before
            anything listens).
        OSError: The address cannot be bound.
    """

    def run_handler(connection: Connection) -> None:
        if keepalive_thread:
            connection._start_keepalive()
        handler(connection)

    state = _common.server_state(options, ssl, handler, process_request, run_handler)
    addresses = None
    if state.binds:
        addresses = _common.passive_addresses(host, port)
        addresses = addresses or _sync_net.resolve(host, port, None)  # type: ignore[arg-type]
    return Server(state, ssl, *_common.listen(state, port, addresses))
