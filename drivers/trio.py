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

Every protocol decision is made by the sans-I/O core; this module carries
out the endpoint's :class:`~sansws.endpoint.Actions` and runs the procedures
of :mod:`sansws.ops`. Each connection runs its tasks in a nursery owned by
the block that created it, for as long as the connection lives:

* a *reader* feeding received bytes to the core while the core says to read
  and, on a plain socket, calling the core back at its next deadline by
  interrupting its read, which loses nothing there;
* a *writer* for the bytes that cannot be written at once (application
  calls only ever write with a non-blocking write, which cannot be cancelled
  half-way, so a cancelled call never leaves half a frame on the wire); it
  closes the transport when the core says so;
* over TLS only, a *timer* for the core's deadlines, since interrupting a
  read of a TLS stream could lose bytes the TLS layer owes its peer.

Cancellation: every ``await`` in this module is a checkpoint. A cancelled
``recv()`` loses no message; a cancelled ``send()`` queued the whole message
or nothing (cancelled while waiting for the buffer to drain, the message was
queued), except a message sent in fragments, which fails the connection
with 1011 if it is cancelled after its first fragment. No task outlives the
``async with`` block that created the connection.

Ctrl+C: the driver's tasks run with trio's KeyboardInterrupt protection, so
that ``KeyboardInterrupt`` is raised in the main task, at the wait it is
blocked in, never inside the driver's bookkeeping. Leaving a block by an
interrupt or a cancellation aborts the transports at once, without close
handshakes.
"""

from __future__ import annotations

try:
    import trio
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "sansws.drivers.trio requires trio; install it with: pip install 'sansws[trio]'"
    ) from exc

import contextlib
import math
import os
import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

from sansws import contract, ops
from sansws.contract import AsyncConnection, PingWaiter, run
from sansws.endpoint import READ_SIZE, Actions, Close, Endpoint, Wait
from sansws.ops import OpenTransport
from sansws.serving import ACCEPT_RETRY_DELAY, ServerState, accept_failed
from sansws.session import ClientSession

from . import _common
from ._common import *  # noqa: F403 - the names every driver exports
from ._common import Request, Response, ServerView

if TYPE_CHECKING:
    from typing import Unpack

    from sansws.options import ClientOptions, ServerOptions

__all__ = ["Connection", "Handler", "PingWaiter", "ProcessRequest", "Server", "connect", "serve"]
__all__ += _common.__all__

Data = str | bytes | bytearray | memoryview
#: A server's handler: ``async def handler(ws: Connection) -> None``.
Handler = Callable[["Connection"], Awaitable[None]]
#: A server's ``process_request`` hook: ``async def process_request(ws,
#: request) -> Response | None`` (a plain function works too).
ProcessRequest = Callable[["Connection", Request], "Awaitable[Response | None] | Response | None"]

_INF = math.inf
# What a broken or closed transport raises in trio; an OSError escapes only
# from a stream that is not a trio stream.
_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _at(deadline: float | None) -> float:
    return _INF if deadline is None else deadline


class Connection(AsyncConnection):
    """A WebSocket connection, client or server side: clients get one from
    :func:`connect`; servers pass one to their handler. Every ``await`` is a
    checkpoint."""

    _checkpoints = True

    def __init__(self, stream: trio.abc.Stream, endpoint: Endpoint) -> None:
        self._stream = stream
        self._endpoint = endpoint
        self._now = trio.current_time
        self.local_address, self.remote_address = _addresses(stream)
        # The socket to write to directly, when there is no TLS layer (and
        # on POSIX, where a socket is a file descriptor).
        self._socket = (
            stream.socket if isinstance(stream, trio.SocketStream) and os.name == "posix" else None
        )
        # Outgoing bytes the writer has not written yet, and their size.
        self._out: list[bytes | memoryview] = []
        self._buffered = 0
        # What the last Actions said, until the next ones.
        self._reading = True
        self._deadline = _INF
        self._flushing = False
        self._aborting = False
        self._lots: dict[int, trio.lowlevel.ParkingLot] = {}
        self._reader_wakeup = trio.lowlevel.ParkingLot()
        self._writer_wakeup = trio.lowlevel.ParkingLot()
        self._read_scope: trio.CancelScope | None = None
        self._timer_scope: trio.CancelScope | None = None
        self._write_scope: trio.CancelScope | None = None
        self._transport_closed = trio.Event()

    # ------------------------------------------------------------------ the API

    async def ping(self, data: bytes | None = None) -> PingWaiter:
        """Send a Ping; ``await (await ws.ping()).wait()`` returns the
        latency once the Pong arrives. Without ``data``, a random 4-byte
        payload is used.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            LocalProtocolError: A Ping with the same payload awaits its Pong.
        """
        await trio.lowlevel.checkpoint()
        waiter = PingWaiter(self, self._endpoint.ping(data, trio.current_time()))
        self._write(self._endpoint.data_to_send())
        return waiter

    async def abort(self) -> None:
        """Close the transport at once, without a close handshake (the close
        code is 1006)."""
        self._tell(self._endpoint.abort)
        with trio.CancelScope(shield=True):
            await self._transport_closed.wait()

    async def _checkpoint(self, *, cancellable: bool) -> None:
        if cancellable:
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()

    # ------------------------------------------------------------------ carrying out

    async def _park(self, what: Wait) -> None:
        lot = self._lots.get(int(what))
        if lot is None:
            lot = self._lots[int(what)] = trio.lowlevel.ParkingLot()
        await lot.park()

    async def _within(self, deadline: float | None, awaitable: Awaitable[Any], expired: Any) -> Any:
        with trio.move_on_at(_at(deadline)):
            return await awaitable
        return expired

    async def _tls_handshake(self) -> bool:
        stream = self._stream
        assert isinstance(stream, trio.SSLStream)
        try:
            await stream.do_handshake()
        except _TRANSPORT_ERRORS as exc:
            raise _os_error(exc) from None
        return not self._aborting

    def _apply(self, actions: Actions) -> None:
        """Carry out what the endpoint decided."""
        reading = actions.read
        if reading is not self._reading:
            self._reading = reading
            if reading:
                self._reader_wakeup.unpark_all()
        deadline = _at(actions.deadline)
        if deadline != self._deadline:
            self._deadline = deadline
            if self._timer_scope is not None:
                self._timer_scope.deadline = deadline
        self._write(actions.write)
        if actions.close is Close.FLUSH:
            self._flushing = True
            self._writer_wakeup.unpark_all()
        elif actions.close is Close.ABORT:
            self._aborting = True
            self._out = []
            for scope in (self._write_scope, self._read_scope):
                if scope is not None:
                    scope.cancel()
            self._writer_wakeup.unpark_all()
            self._reader_wakeup.unpark_all()
        wake = actions.wake
        if wake:
            for what, lot in self._lots.items():
                if what & wake:
                    lot.unpark_all()

    def _write(self, data: bytes | memoryview) -> None:
        """Write at once on a plain socket when nothing else is pending (a
        non-blocking write cannot be cancelled half-way, and it saves a task
        switch); give the writer the rest, in order."""
        if not data or self._aborting or self._transport_closed.is_set():
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
        self._writer_wakeup.unpark()
        self._unwritten()

    def _unwritten(self) -> None:
        endpoint = self._endpoint
        endpoint.unwritten(self._buffered)
        if endpoint.dirty:
            self._apply(endpoint.actions(trio.current_time()))

    # ------------------------------------------------------------------ tasks

    def _start(self, nursery: trio.Nursery) -> None:
        """Start the connection's tasks in ``nursery``."""
        nursery.start_soon(self._read_loop)
        nursery.start_soon(self._write_loop)
        if self._socket is None:
            # Over TLS, a read interrupted at a deadline could lose bytes the
            # TLS layer owes its peer: the timers get a task of their own.
            nursery.start_soon(self._timer_loop)
        self._apply(self._endpoint.actions(trio.current_time()))

    @trio.lowlevel.enable_ki_protection
    async def _read_loop(self) -> None:
        """Feed received bytes to the core; on a plain socket also call the
        core back at its deadlines."""
        endpoint = self._endpoint
        timers = self._socket is not None
        receive_some = self._stream.receive_some
        while not self._transport_closed.is_set() and not self._aborting:
            with trio.CancelScope(deadline=self._deadline if timers else _INF) as scope:
                self._read_scope = scope
                if timers:
                    self._timer_scope = scope
                while not self._aborting:
                    if not self._reading:
                        await self._reader_wakeup.park()
                        continue
                    try:
                        data = bytes(await receive_some(READ_SIZE))  # the same object if bytes
                    except _TRANSPORT_ERRORS:
                        endpoint.abort(trio.current_time())
                    else:
                        endpoint.receive_data(data, trio.current_time())
                    self._apply(endpoint.actions(trio.current_time()))
            self._read_scope = self._timer_scope = None
            if scope.cancelled_caught and not self._aborting:
                self._apply(endpoint.actions(trio.current_time()))

    @trio.lowlevel.enable_ki_protection
    async def _timer_loop(self) -> None:
        """Call the core back at its deadlines (over TLS only)."""
        while not self._transport_closed.is_set():
            with trio.CancelScope(deadline=self._deadline) as scope:
                self._timer_scope = scope
                await self._transport_closed.wait()
            self._timer_scope = None
            if scope.cancelled_caught:
                self._apply(self._endpoint.actions(trio.current_time()))

    @trio.lowlevel.enable_ki_protection
    async def _write_loop(self) -> None:
        """Write what could not be written at once, then close the transport
        when the core says so (or at once when told to abort)."""
        send_all = self._stream.send_all
        try:
            while not self._aborting:
                out = self._out
                if not out:
                    if self._flushing:
                        break
                    await self._writer_wakeup.park()
                    continue
                data = out[0] if len(out) == 1 else b"".join(out)
                self._out = []
                with trio.CancelScope() as scope:
                    self._write_scope = scope
                    try:
                        await send_all(data)
                    finally:
                        self._write_scope = None
                if scope.cancelled_caught:
                    break
                self._buffered -= len(data)
                self._unwritten()
        except _TRANSPORT_ERRORS:
            self._aborting = True
        except BaseException:
            self._aborting = True
            raise
        finally:
            await self._close_transport()

    async def _close_transport(self) -> None:
        stream = self._stream
        try:
            if self._aborting:
                await trio.aclose_forcefully(stream)
            else:
                # Graceful for TLS (close_notify), within the time the core
                # gives the last bytes.
                with trio.move_on_at(self._deadline) as scope:
                    await stream.aclose()
                if scope.cancelled_caught:
                    await trio.aclose_forcefully(stream)
        except _TRANSPORT_ERRORS:
            pass
        finally:
            self._transport_closed.set()
            self._endpoint.transport_closed(trio.current_time())
            self._apply(self._endpoint.actions(trio.current_time()))
            for task_scope in (self._read_scope, self._timer_scope):
                if task_scope is not None:
                    task_scope.cancel()
            self._reader_wakeup.unpark_all()


@contextlib.contextmanager
def _ungrouped() -> Iterator[None]:
    """Raise a lone exception out of this module's nurseries as itself
    (Ctrl+C as ``KeyboardInterrupt``): the application never sees the
    driver's tasks."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        raise group.exceptions[0] from None


def _addresses(stream: trio.abc.Stream) -> tuple[Any, Any]:
    sock: Any = getattr(stream, "transport_stream", stream).socket  # type: ignore[union-attr]
    with contextlib.suppress(OSError):  # the peer may have gone already
        return sock.getsockname(), sock.getpeername()
    return sock.getsockname(), None  # pragma: no cover


def _os_error(exc: BaseException) -> OSError:
    """What went wrong in a TLS handshake (``ssl.SSLCertVerificationError``,
    ...), as the ``OSError`` every other transport failure is."""
    if isinstance(exc, OSError):
        return exc
    cause = exc.__cause__
    if isinstance(cause, OSError):
        return cause
    return ConnectionError(str(exc) or type(exc).__name__)


# ---------------------------------------------------------------------- client


async def _open_transport(
    effect: OpenTransport, ssl: object, nursery: trio.Nursery
) -> Connection | None:
    """Connect to the target (TCP or Unix socket, then TLS) before the
    deadline, and start the connection's tasks."""
    target = effect.target
    with trio.move_on_at(_at(effect.deadline)):
        stream: trio.abc.Stream
        if target.unix_path is not None:
            stream = await trio.open_unix_socket(target.unix_path)
        else:
            stream = await trio.open_tcp_stream(target.host, target.port)
        context = _common.client_context(target, ssl)
        if context is not None:
            stream = trio.SSLStream(stream, context, server_hostname=target.server_hostname)
        connection = Connection(stream, effect.endpoint)
        if context is not None:
            try:
                await connection._tls_handshake()
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
        connection._start(nursery)
        return connection
    return None


@contextlib.asynccontextmanager
async def connect(
    url: str, *, ssl: SSLContext | bool | None = None, **options: Unpack[ClientOptions]
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
        ssl: An :class:`ssl.SSLContext` for ``wss://``, or ``True`` for a
            default one (the default for ``wss://`` URLs): certificates are
            verified and SNI comes from the URL's host.
        **options: The options of every driver's ``connect()``
            (docs/options.md): ``open_timeout``, ``subprotocols``,
            ``extra_headers``, ``max_message_size``, ``max_queue``,
            ``write_limit``, ``unix_path``, ``compression``, ...

    Raises:
        InvalidURI: ``url`` is not a WebSocket URL.
        InvalidStatus: The server refused the connection.
        RedirectError: A redirect could not be followed.
        OpenTimeout: The opening did not finish within ``open_timeout``.
        HandshakeError: The server's response was not a WebSocket handshake.
        OSError: DNS, TCP or TLS failed.
        TypeError, ValueError: An option is unknown or invalid (before any
            I/O).
    """
    session = ClientSession.from_options(url, options, tls=_common.tls_choice(ssl))
    # Exceptions are raised outside the nursery, so that they are not
    # wrapped in an exception group.
    error: BaseException | None = None
    with _ungrouped():
        async with trio.open_nursery() as nursery:
            try:
                procedure = ops.open_client(session, trio.current_time)
                ws = await run(procedure, None, lambda step: _open_transport(step, ssl, nursery))
            except BaseException as exc:
                error = exc
            else:
                try:
                    yield ws
                except BaseException as exc:
                    error = exc
                await run(ops.finish(ws._endpoint, error, trio.current_time), ws)
    if error is not None:
        raise error


# ---------------------------------------------------------------------- server


class Server(ServerView[Connection]):
    """A running WebSocket server, as yielded by :func:`serve`."""

    def __init__(
        self,
        state: ServerState[Connection],
        listeners: list[trio.SocketListener],
        ssl: ssl_module.SSLContext | None,
        unix: tuple[str, int] | None,
    ) -> None:
        self._state = state
        self._listeners = listeners
        self._ssl = ssl
        self._unix = unix
        self._port = _common.port(self.sockets, unix)
        self._accept_scopes: list[trio.CancelScope] = []
        self._accepting = 0
        self._done = trio.Event()

    @property
    def sockets(self) -> list[trio.socket.SocketType]:
        """The listening sockets."""
        return [listener.socket for listener in self._listeners]

    async def serve_forever(self) -> None:
        """Wait until :meth:`shutdown` was called and every connection and
        handler finished."""
        await self._done.wait()

    async def wait_closed(self) -> None:
        """The same as :meth:`serve_forever`."""
        await self._done.wait()

    def shutdown(self) -> None:
        """Stop accepting connections, close every connection with 1001
        (going away) -- or drop it, if its handshake was not answered yet --
        and let :meth:`serve_forever` return once every handler finished.
        Returns at once; idempotent."""
        for scope in self._accept_scopes:
            scope.cancel()
        for ws in self._state.shutdown():
            ws._tell(ws._endpoint.shutdown)
        self._check_done()

    def _check_done(self) -> None:
        if self._state.done and not self._accepting:
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
                if self._state.shutting_down:
                    scope.cancel()
                while True:
                    try:
                        stream = await listener.accept()
                    except OSError as exc:  # out of descriptors or memory
                        contract.report(accept_failed(exc))
                        await trio.sleep(ACCEPT_RETRY_DELAY)
                        continue
                    nursery.start_soon(self._handle, stream)
        finally:
            self._accepting -= 1
            self._check_done()

    @trio.lowlevel.enable_ki_protection
    async def _handle(self, transport: trio.SocketStream) -> None:
        endpoint = self._state.endpoint(trio.current_time())
        stream: trio.abc.Stream = transport
        if self._ssl is not None:
            stream = trio.SSLStream(transport, self._ssl, server_side=True)
        ws = Connection(stream, endpoint)
        if not self._state.admit(ws):
            await trio.aclose_forcefully(stream)
            return
        try:
            async with trio.open_nursery() as nursery:
                ws._start(nursery)
                await run(self._state.serve(endpoint, ws, trio.current_time), ws)
        finally:
            self._state.discard(ws)
            self._check_done()


@contextlib.asynccontextmanager
async def serve(
    handler: Handler, host: str | None = "127.0.0.1", port: int = 0, *,
    ssl: SSLContext | None = None, process_request: ProcessRequest | None = None,
    **options: Unpack[ServerOptions],
) -> AsyncIterator[Server]:
    """Serve WebSocket connections for the duration of an ``async with``
    block, on ``host:port`` (every address the name resolves to, on one
    port) or on ``unix_path``::

        async def handler(ws):
            async for message in ws:
                await ws.send(message)

        async with serve(handler, "127.0.0.1", 8765) as server:
            await server.serve_forever()

    The server listens as soon as the block is entered. Each connection runs
    ``await handler(ws)`` in a nursery the server owns. When the handler
    returns, the connection closes with 1000; when it raises, with 1011
    (the exception is logged on the ``sansws.server`` logger). Leaving the
    block calls :meth:`Server.shutdown` and waits for every connection; if
    the block was cancelled or interrupted, the connections are aborted.

    Args:
        handler: A coroutine function taking a :class:`Connection`.
        host: The address to listen on; ``None`` for every interface.
        port: The port; 0 picks a free one (see :attr:`Server.port`).
        ssl: An :class:`ssl.SSLContext` to serve ``wss://``.
        process_request: ``await process_request(ws, request)`` runs before
            the handshake is answered; return a
            :class:`~sansws.endpoint.Response` to refuse it (authentication,
            health checks), ``None`` to go on. An exception answers 500; it
            is cancelled at ``open_timeout``.
        **options: The options of every driver's ``serve()``
            (docs/options.md).

    Raises:
        TypeError, ValueError: An option is unknown or invalid (before
            anything listens).
        OSError: The address cannot be bound.
    """
    state = _common.server_state(options, ssl, handler, process_request)
    addresses = None
    if state.binds:
        addresses = _common.passive_addresses(host, port)
        tcp = trio.socket.SOCK_STREAM
        addresses = addresses or await trio.socket.getaddrinfo(host, port, type=tcp)
    sockets, unix = _common.listen(state, port, addresses)
    listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(s)) for s in sockets]
    server = Server(state, listeners, ssl, unix)
    error: BaseException | None = None
    try:
        with _ungrouped():
            async with trio.open_nursery() as nursery:
                server._start(nursery)
                try:
                    yield server
                except BaseException as exc:
                    error = exc
                    if ops.interrupted(exc):
                        # Cancelled or interrupted: abort the connections
                        # rather than wait for their close handshakes.
                        nursery.cancel_scope.cancel()
                server.shutdown()
    finally:
        for listener in listeners:
            with trio.CancelScope(shield=True):
                await listener.aclose()
        _common.remove_unix(unix)
    if error is not None:
        raise error
