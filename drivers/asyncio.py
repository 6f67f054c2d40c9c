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
:class:`~sansws.endpoint.Endpoint`; there is no reader task. After every
call into the endpoint the driver carries out its
:class:`~sansws.endpoint.Actions` (write, pause or resume reading, re-arm one
``loop.call_at`` timer, close or abort the transport, wake waiters).
Application calls wait on futures that those actions resolve, so every
``await`` is a cancellation point that leaves the connection consistent:

* a cancelled :meth:`Connection.recv` loses no message: messages are taken
  from the queue only after the wait ended without cancellation;
* a cancelled :meth:`Connection.send` either handed the whole message to the
  transport or, for a message sent in fragments, fails the connection with
  1011 (the peer cannot be told to discard half a message);
* a cancelled :meth:`Connection.close`, or a block left by a cancellation,
  aborts the transport;
* a cancelled :func:`connect` closes whatever transport it had opened.

Host names are resolved in daemon threads, never in asyncio's default
executor, whose threads the interpreter joins at exit: a stuck resolver
delays neither Ctrl+C nor the exit.

No task is started for a client connection. A server runs one task per
connection (the procedure :func:`sansws.ops.serve`: TLS, request,
``process_request``, handler), owned by the :class:`Server` and finished
before :meth:`Server.serve_forever` returns.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Coroutine, Generator
from ssl import SSLContext
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sansws import ops
from sansws.contract import AsyncConnection, run
from sansws.endpoint import Actions, Close, Endpoint, Ping, Wait
from sansws.ops import OpenTransport
from sansws.serving import ServerState
from sansws.session import ClientSession

from . import _common
from ._common import *  # noqa: F403 - the names every driver exports
from ._common import ConnectionClosed, Request, Response, ServerView

if TYPE_CHECKING:
    from typing import Unpack

    from sansws.options import ClientOptions, ServerOptions

__all__ = ["Connection", "Handler", "PingWaiter", "ProcessRequest", "Server", "connect", "serve"]
__all__ += _common.__all__

_T = TypeVar("_T")

Data = str | bytes
"""A received message: ``str`` for text, ``bytes`` for binary."""

Handler = Callable[["Connection"], Awaitable[None]]
"""A server's connection handler: ``async def handler(ws): ...``."""

ProcessRequest = Callable[["Connection", Request], "Awaitable[Response | None] | Response | None"]
"""A server's ``process_request`` hook: ``async def process_request(ws,
request) -> Response | None`` (a plain function works too)."""

_Futures = list["asyncio.Future[None]"]
_PONG = int(Wait.PONG)
# asyncio has no unbounded TLS handshake; this stands for "none but the open
# timeout", which the core's StartTLS deadline applies.
_NO_TLS_LIMIT = 2.0**31


def _wake(futures: _Futures) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


async def _within(deadline: float | None, awaitable: Awaitable[Any], expired: Any) -> Any:
    """Await ``awaitable``; at ``deadline``, cancel it and return
    ``expired``."""
    if deadline is None:
        return await awaitable
    try:
        async with asyncio.timeout_at(deadline) as timeout:
            return await awaitable
    except TimeoutError:
        if timeout.expired():
            return expired
        raise


class PingWaiter(asyncio.Future[float]):
    """A sent Ping, as a future: ``await waiter`` (or ``await waiter.wait()``)
    returns the round-trip time in seconds once its Pong arrived; it raises
    :class:`ConnectionClosed` if the connection closed first. Nobody needs to
    await it."""

    def __init__(self, ping: Ping, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._ping = ping
        #: The Ping's payload, which its Pong echoes.
        self.payload = ping.payload
        # A ping nobody awaits must not be reported as "exception never
        # retrieved" when the connection closes.
        self.add_done_callback(lambda future: future.cancelled() or future.exception())

    async def wait(self) -> float:
        """Wait for the Pong and return the latency in seconds."""
        return await self

    def _settle(self) -> bool:
        if self._ping.done() and not self.done():
            try:
                self.set_result(self._ping.result())
            except ConnectionClosed as exc:
                self.set_exception(exc)
        return self.done()


class Connection(AsyncConnection, asyncio.Protocol):
    """A WebSocket connection, client or server side: obtained from
    :func:`connect` or passed to a :func:`serve` handler; not created
    directly. It is the transport's :class:`asyncio.Protocol`: received bytes
    go straight into the core, with no reader task."""

    def __init__(
        self, endpoint: Endpoint, loop: asyncio.AbstractEventLoop, server: Server | None = None
    ) -> None:
        self._endpoint = endpoint
        self._loop = loop
        self._now = loop.time
        self._server = server
        self._transport: asyncio.Transport | None = None
        # Futures of the tasks waiting, by the condition they wait for.
        self._waiting: dict[int, _Futures] = {}
        self._pings: list[PingWaiter] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None
        self._reading = True
        self._lost = False
        self.local_address: Any = None
        self.remote_address: Any = None

    def __repr__(self) -> str:
        role = "client" if self._server is None else "server"
        return f"<sansws.drivers.asyncio.Connection {role} {self.state.name}>"

    # ------------------------------------------------------------------ the API

    def ping(self, data: bytes | None = None) -> PingWaiter:
        """Send a Ping; return a :class:`PingWaiter` to await for the
        round-trip time once the matching Pong arrives
        (``latency = await ws.ping()``). Without ``data`` a random 4-byte
        payload is used. A Pong also answers every Ping sent before it.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            LocalProtocolError: A Ping with the same payload awaits its Pong,
                or ``data`` is longer than 125 bytes.
        """
        waiter = PingWaiter(self._endpoint.ping(data, self._loop.time()), self._loop)
        self._pings.append(waiter)
        self._write(self._endpoint.data_to_send())
        return waiter

    def abort(self) -> None:
        """Close the transport at once, without a close handshake; the
        connection ends with 1006 (unless it had already closed)."""
        self._tell(self._endpoint.abort)

    # ------------------------------------------------------------------ carrying out

    def _apply(self, actions: Actions) -> None:
        """Carry out what the endpoint decided."""
        transport = self._transport
        if transport is None:
            return  # connection_made comes back here
        deadline = actions.deadline
        if deadline != self._timer_when:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_when = deadline
            self._timer = None if deadline is None else self._loop.call_at(deadline, self._on_timer)
        if not self._lost:
            if actions.read is not self._reading:
                self._reading = actions.read
                (transport.resume_reading if actions.read else transport.pause_reading)()
            if actions.write:
                transport.write(actions.write)  # may call pause_writing: levels are set
            if actions.close is Close.FLUSH:
                transport.close()
            elif actions.close is Close.ABORT:
                self._abort_transport(transport)
        wake = actions.wake
        if wake & _PONG:
            self._pings = [waiter for waiter in self._pings if not waiter._settle()]
        if wake and self._waiting:
            for what in [what for what in self._waiting if what & wake]:
                _wake(self._waiting.pop(what))

    @staticmethod
    def _abort_transport(transport: asyncio.Transport) -> None:
        transport.abort()

    def _write(self, data: bytes) -> None:
        # After send(), ping() and pong(), which only queue bytes.
        if data and not self._lost and self._transport is not None:
            self._transport.write(data)

    async def _park(self, what: Wait) -> None:
        # One future per waiter: cancelling one wait must not cancel others.
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiting.setdefault(int(what), []).append(future)
        await future

    _within = staticmethod(_within)

    def _on_timer(self) -> None:
        when, self._timer, self._timer_when = self._timer_when, None, None
        # The loop may run a timer up to its clock resolution early.
        now = max(self._loop.time(), when or 0.0)
        self._apply(self._endpoint.actions(now))

    # ------------------------------------------------------------------ the transport's calls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The transport is connected (an :class:`asyncio.Protocol` method)."""
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self._set_transport(transport)
        server = self._server
        if server is not None and not server._admit(self):
            transport.abort()
            return
        if server is not None and server._ssl is not None:
            # Not a byte is read before start_tls() takes the transport over.
            transport.pause_reading()
        self._apply(self._endpoint.actions(self._loop.time()))

    def _set_transport(self, transport: asyncio.Transport) -> None:
        mark = self._endpoint.write_mark
        transport.set_write_buffer_limits(high=mark.high, low=mark.low)
        self.local_address = transport.get_extra_info("sockname")
        self.remote_address = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        """Bytes arrived (an :class:`asyncio.Protocol` method)."""
        now = self._loop.time()
        self._endpoint.receive_data(data, now)
        self._apply(self._endpoint.actions(now))

    def eof_received(self) -> None:
        """The peer closed its side (an :class:`asyncio.Protocol` method)."""
        self.data_received(b"")

    def _writing_changed(self) -> None:
        """The write buffer passed ``write_limit``, or drained to a quarter
        of it (the :class:`asyncio.Protocol` methods ``pause_writing`` and
        ``resume_writing``)."""
        assert self._transport is not None
        self._endpoint.unwritten(self._transport.get_write_buffer_size())
        if self._endpoint.dirty:
            self._apply(self._endpoint.actions(self._loop.time()))

    pause_writing = resume_writing = _writing_changed

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is closed (an :class:`asyncio.Protocol` method)."""
        self._lost = True  # only the timer and the waiters are left to settle
        self._tell(self._endpoint.transport_closed)

    async def _tls_handshake(self) -> bool:
        assert self._server is not None
        assert self._transport is not None
        transport = await self._loop.start_tls(
            self._transport,
            self,
            self._server._ssl,  # type: ignore[arg-type]
            server_side=True,
            ssl_handshake_timeout=_NO_TLS_LIMIT,
        )
        if self._lost or transport is None:
            return False
        self._transport = transport
        self._set_transport(transport)
        return True


# ---------------------------------------------------------------------- client


class _Opening(Generic[_T]):
    """What :func:`connect` and :func:`serve` return: await it for the
    connection or server, or use it as an async context manager that closes
    it on leaving the block."""

    def __init__(
        self,
        open: Callable[[], Coroutine[Any, Any, _T]],
        close: Callable[[_T, BaseException | None], Awaitable[None]],
    ) -> None:
        self._open = open
        self._close = close
        self._value: _T | None = None

    def __await__(self) -> Generator[Any, None, _T]:
        return self._open().__await__()

    async def __aenter__(self) -> _T:
        self._value = await self._open()
        return self._value

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        assert self._value is not None
        await self._close(self._value, exc)


async def _open_transport(effect: OpenTransport, ssl: object) -> Connection | None:
    loop = asyncio.get_running_loop()
    target = effect.target
    ws = Connection(effect.endpoint, loop)
    context = _common.client_context(target, ssl)
    tls: dict[str, Any] = {"ssl": context, "server_hostname": target.server_hostname}
    if context is not None:  # the open deadline bounds it, not asyncio's 60 s
        tls["ssl_handshake_timeout"] = _NO_TLS_LIMIT

    async def open_() -> Connection:
        if target.unix_path is not None:
            await loop.create_unix_connection(lambda: ws, target.unix_path, **tls)
            return ws
        error = OSError(f"no address for {target.host}")
        for *_, address in await asyncio.wrap_future(_common.resolve(target.host, target.port)):
            try:
                await loop.create_connection(lambda: ws, address[0], address[1], **tls)
                return ws
            except OSError as exc:  # the next address may answer
                error = exc
        raise error

    return await _within(effect.deadline, open_(), None)  # type: ignore[no-any-return]


def connect(
    url: str, *, ssl: SSLContext | bool | None = None, **options: Unpack[ClientOptions]
) -> _Opening[Connection]:
    """Open a WebSocket connection to ``url``.

    Use ``async with connect(url) as ws:`` (the connection closes on leaving
    the block: 1000; 1011 if the block raised; aborted at once if it was
    cancelled) or ``ws = await connect(url)`` (close it yourself).

    Args:
        url: A ``ws://`` or ``wss://`` URL.
        ssl: An :class:`ssl.SSLContext`, or ``True`` for a default one; a
            ``wss://`` URL without it uses a default context. Only valid
            with ``wss://``.
        **options: The options of every driver's ``connect()``
            (docs/options.md): ``open_timeout``, ``subprotocols``,
            ``extra_headers``, ``max_message_size``, ``max_queue``,
            ``write_limit``, ``unix_path``, ``compression``, ...

    Raises:
        InvalidURI: ``url`` is not a WebSocket URL.
        InvalidStatus: The server answered with a non-redirect status.
        RedirectError: A redirect could not be followed.
        OpenTimeout: The opening did not finish within ``open_timeout``.
        HandshakeError: The server's response is not a valid handshake.
        OSError: DNS resolution, the TCP connection or TLS failed.
        TypeError, ValueError: An option is unknown or invalid (raised by
            ``connect()`` itself, before any I/O).
    """
    session = ClientSession.from_options(url, options, tls=_common.tls_choice(ssl))

    async def open_() -> Connection:
        procedure = ops.open_client(session, asyncio.get_running_loop().time)
        return await run(procedure, None, lambda effect: _open_transport(effect, ssl))  # type: ignore[no-any-return]

    return _Opening(open_, _finish)


async def _finish(ws: Connection, error: BaseException | None) -> None:
    await run(ops.finish(ws._endpoint, error, ws._loop.time), ws)


# ---------------------------------------------------------------------- server


class Server(ServerView[Connection]):
    """A running WebSocket server, returned by :func:`serve`.

    Each accepted connection runs in a task owned by the server: TLS, the
    ``process_request`` hook, then the handler. The handler's return closes
    the connection with 1000; an exception closes it with 1011 and is logged
    to the ``sansws.server`` logger.
    """

    def __init__(self, state: ServerState[Connection], ssl: ssl_module.SSLContext | None) -> None:
        self._state = state
        self._ssl = ssl
        self._loop = asyncio.get_running_loop()
        self._servers: list[asyncio.Server] = []
        self._unix: tuple[str, int] | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._done = asyncio.Event()

    def __repr__(self) -> str:
        return f"<sansws.drivers.asyncio.Server sockets={self.sockets!r}>"

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets."""
        return tuple(sock for server in self._servers for sock in server.sockets)

    def shutdown(self) -> None:
        """Stop accepting connections and close every connection with 1001
        (going away) -- or drop it, if its handshake was not answered yet;
        :meth:`serve_forever` and :meth:`wait_closed` return once every
        connection is closed and every handler has returned. Returns at
        once; calling it again does nothing."""
        for server in self._servers:
            server.close()
        for ws in self._state.shutdown():
            ws._tell(ws._endpoint.shutdown)
        if self._state.done:
            self._done.set()

    async def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` completes."""
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the server was shut down and every connection and
        handler has finished."""
        await self._done.wait()
        _common.remove_unix(self._unix)
        for server in self._servers:
            await server.wait_closed()

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

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        await _close_server(self, exc)

    async def _terminate(self) -> None:
        """Stop accepting, then cancel every connection's task: each aborts
        its transport."""
        for server in self._servers:
            server.close()
        self._state.shutdown()
        if self._state.done:  # nothing was open: no task will say so
            self._done.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        await self.wait_closed()

    def _protocol(self) -> Connection:
        # Called at the accept: the open timeout starts now.
        return Connection(self._state.endpoint(self._loop.time()), self._loop, self)

    def _admit(self, ws: Connection) -> bool:
        if not self._state.admit(ws):
            return False
        task = self._loop.create_task(self._serve(ws))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _serve(self, ws: Connection) -> None:
        try:
            await run(self._state.serve(ws._endpoint, ws, self._loop.time), ws)
        finally:
            ws.abort()
            if self._state.discard(ws):
                self._done.set()


async def _close_server(server: Server, error: BaseException | None) -> None:
    if ops.interrupted(error):
        await server._terminate()  # cancelled or interrupted: do not wait for peers
    else:
        await server.aclose()


def serve(
    handler: Handler, host: str | None = "127.0.0.1", port: int = 0, *,
    ssl: SSLContext | None = None, process_request: ProcessRequest | None = None,
    **options: Unpack[ServerOptions],
) -> _Opening[Server]:
    """Serve WebSocket connections on ``host:port`` (every address the name
    resolves to, on one port) or on ``unix_path``.

    Use ``async with serve(handler, host, port) as server:`` and ``await
    server.serve_forever()``; leaving the block shuts the server down (every
    connection closed with 1001) and waits for the handlers, or, if the
    block was cancelled, aborts them. ``server = await serve(...)`` also
    works; then call :meth:`Server.aclose`.

    Args:
        handler: ``async def handler(ws)``, run in a task per connection
            once the handshake is accepted.
        host: The address to bind (``None``: all interfaces).
        port: The TCP port; 0 picks a free one (see :attr:`Server.port`).
        ssl: An :class:`ssl.SSLContext` to serve ``wss://``.
        process_request: ``async def process_request(ws, request)``
            returning a :class:`Response` to refuse the handshake (for
            authentication, origin checks, health checks), or ``None`` to
            accept it. An exception answers 500; an answer later than
            ``open_timeout`` is not used (the hook is cancelled there).
        **options: The options of every driver's ``serve()``
            (docs/options.md).

    Raises:
        TypeError, ValueError: An option is unknown or invalid (raised by
            ``serve()`` itself, before anything listens).
        OSError: The address cannot be bound.
    """
    state = _common.server_state(options, ssl, handler, process_request)

    async def make() -> Server:
        server = Server(state, ssl)
        loop = server._loop
        addresses = None
        if state.binds:
            addresses = _common.passive_addresses(host, port)
            addresses = addresses or await asyncio.wrap_future(_common.resolve(host, port))  # type: ignore[arg-type]
        sockets, server._unix = _common.listen(state, port, addresses)
        server._port = _common.port(sockets, server._unix)
        start = loop.create_server if server._unix is None else loop.create_unix_server
        try:
            for sock in sockets:
                server._servers.append(await start(server._protocol, sock=sock))
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return server

    return _Opening(make, _close_server)
