"""What every driver shares that is plumbing, not policy: the public names
they all export, TLS contexts, a resolver that never holds up Ctrl+C or the
interpreter's exit, listening sockets, and what the asyncio and trio
drivers share in carrying out the core's procedures.

Every rule lives in the core (``sansws.endpoint``, ``sansws.ops``,
``sansws.serving``); this module only does the system calls those rules
need in the same way for every driver.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import functools
import inspect
import ipaddress
import logging
import os
import socket
import ssl as ssl_module
import stat
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
)
from typing import Any, Generic, TypeVar

from sansws import ops
from sansws.endpoint import Actions, ConnectionView, Endpoint, Ping, Response, Wait, is_message
from sansws.errors import *  # noqa: F403 - every driver exports every exception
from sansws.errors import ConnectionClosedOK
from sansws.events import Request
from sansws.options import SERVE, settle
from sansws.serving import ServerState, bind_plan, with_port
from sansws.session import TLS, Target

#: The names every driver module exports besides its own Connection,
#: Handler, PingWaiter, ProcessRequest, Server, connect and serve.
# Spelt out rather than taken from errors.__all__: type checkers follow only
# a literal (tests/drivers/test_driver_exports.py checks that none is missing).
__all__ = [
    "CloseTimeout", "ConnectionClosed", "ConnectionClosedError", "ConnectionClosedOK",  # noqa: F405
    "HandshakeError", "InvalidHeader", "InvalidMessage", "InvalidState", "InvalidStatus",  # noqa: F405
    "InvalidURI", "LocalProtocolError", "NegotiationError", "OpenTimeout", "PayloadTooBig",  # noqa: F405
    "PingTimeout", "ProtocolError", "RedirectError", "Request", "Response", "TooManyFragments",  # noqa: F405
    "UnsafeHeader", "WebSocketError", "WebSocketTimeout",  # noqa: F405
]

logger = logging.getLogger(ops.LOGGER)
_NO_LOCK = contextlib.nullcontext()


def report(effect: ops.Report) -> None:
    """Log a core :class:`~sansws.ops.Report`."""
    logger.log(effect.level, effect.message, exc_info=effect.error)


# ---------------------------------------------------------------- TLS


def tls_choice(ssl: object) -> TLS:
    """What a ``connect(..., ssl=...)`` argument asks for (see
    :data:`sansws.session.TLS`)."""
    if ssl is None or ssl is False:
        return None
    if ssl is True:
        return "default"
    if isinstance(ssl, ssl_module.SSLContext):
        return "custom"
    raise TypeError(f"connect(): ssl must be an ssl.SSLContext, True, False or None, not {ssl!r}")


@functools.cache
def default_context() -> ssl_module.SSLContext:
    """The context for ``wss://`` when the application gave none: created
    once (loading the trust store takes milliseconds), verifying
    certificates and host names."""
    return ssl_module.create_default_context()


def client_context(target: Target, ssl: object) -> ssl_module.SSLContext | None:
    """The TLS context for an attempt's ``target``, as the session chose."""
    if not target.tls:
        return None
    if target.custom_tls:
        assert isinstance(ssl, ssl_module.SSLContext)
        return ssl
    return default_context()


# ---------------------------------------------------------------- names


def numeric_address(host: str, port: int) -> list[Any] | None:
    """``getaddrinfo`` results for an IP literal, which need no lookup; else
    ``None``."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)


def resolve(host: str, port: int) -> concurrent.futures.Future[list[Any]]:
    """``getaddrinfo`` results for a TCP connection to ``host``: an IP literal
    converted at once, a name looked up in a daemon thread of its own.

    ``getaddrinfo`` cannot be interrupted. A daemon thread lets the caller
    stop waiting for the future at once (Ctrl+C, a deadline, a cancellation)
    and is never joined at exit, unlike the threads of asyncio's default
    executor; an abandoned lookup's thread ends when the resolver returns.
    """
    future: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
    numeric = numeric_address(host, port)
    if numeric is not None:
        future.set_result(numeric)
        return future

    def lookup() -> None:
        if future.set_running_or_notify_cancel():  # not abandoned already
            try:
                future.set_result(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
            except BaseException as exc:  # handed to the waiter
                future.set_exception(exc)

    threading.Thread(target=lookup, name="sansws-resolve", daemon=True).start()
    return future


# ---------------------------------------------------------------- serving


def server_state(
    options: Mapping[str, Any], ssl: object, handler: Any, process_request: Any
) -> ServerState[Any]:
    """The lifecycle of a ``serve(handler, ..., ssl=ssl, **options)``, its
    options checked before anything listens."""
    settings = settle(options, SERVE, "serve()")
    if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
        raise TypeError(f"serve(): ssl must be an ssl.SSLContext or None, not {ssl!r}")
    return ServerState(settings, handler=handler, process_request=process_request, tls=bool(ssl))


def passive_addresses(host: str | None, port: int) -> list[Any] | None:
    """``getaddrinfo`` results to listen on for every interface
    (``host=None``) or an IP literal, which need no lookup; else ``None``."""
    if host is not None and numeric_address(host, port) is None:
        return None
    flags = socket.AI_PASSIVE | (socket.AI_NUMERICHOST if host is not None else 0)
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)


def listen(
    state: ServerState[Any], port: int, addresses: list[Any] | None
) -> tuple[list[socket.socket], tuple[str, int] | None]:
    """The server's listening, non-blocking sockets: on ``unix_path`` (see
    :func:`listen_unix`), or on every address in ``addresses``
    (``getaddrinfo`` results for its host), all on one port (see
    :func:`sansws.serving.bind_plan`). With a Unix socket, also its path and
    inode for :func:`remove_unix`."""
    backlog, path = state.settings["backlog"], state.settings["unix_path"]
    if path is not None:
        return [listen_unix(path, backlog)], (path, os.stat(path).st_ino)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in bind_plan(addresses or ()):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(with_port(address, port))
            port = sock.getsockname()[1]  # port 0: the others take the first one's
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets, None


def listen_unix(path: str, backlog: int) -> socket.socket:
    """A listening, non-blocking Unix socket at ``path``.

    A socket file left behind by a server that is gone (connecting to it is
    refused) is replaced; one a server still listens on, or a file that is
    not a socket, is an error (``OSError`` with ``EADDRINUSE`` or
    ``EEXIST``).
    """
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise FileExistsError(errno.EEXIST, f"{path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                os.unlink(path)  # stale: its server is gone
            else:
                raise OSError(errno.EADDRINUSE, f"a server is listening on {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def remove_unix(unix: tuple[str, int] | None) -> None:
    """Remove the socket file a server created, unless another file took
    its place meanwhile."""
    if unix is not None:
        with contextlib.suppress(OSError):
            if os.stat(unix[0]).st_ino == unix[1]:
                os.unlink(unix[0])


def port(sockets: Any, unix: object) -> int | None:
    """A server's TCP port (the same on every socket), ``None`` for a Unix
    socket."""
    return None if unix is not None or not sockets else int(sockets[0].getsockname()[1])


_C = TypeVar("_C")


class ServerView(Generic[_C]):
    """The read-only attributes every driver's server offers."""

    _state: ServerState[Any]
    _port: int | None

    @property
    def port(self) -> int | None:
        """The TCP port the server listens on, the same on every address
        (``None`` for a Unix socket)."""
        return self._port

    @property
    def connections(self) -> set[_C]:
        """The open connections."""
        return self._state.connections


# ---------------------------------------------------------------- async drivers


Data = str | bytes | bytearray | memoryview
Sendable = Data | Iterable[str] | Iterable[Data] | AsyncIterable[str] | AsyncIterable[Data]
"""What ``send()`` accepts: a message, or its fragments."""


class DriverConnection(ConnectionView):
    """What every driver's connection shares: taking a received message, and
    carrying out the effects of the core's procedures (see :func:`run`)
    with the primitives each driver defines."""

    _endpoint: Endpoint
    # Held while a procedure steps and while the endpoint is called (sync:
    # the connection's lock; one thread at a time in an event loop).
    _lock: contextlib.AbstractContextManager[Any] = _NO_LOCK
    # The clock; carry out Actions; wait until the endpoint is ready for
    # something, at most until a deadline (False if it passed); await
    # something, cancelling it at a deadline (then return the third
    # argument); a server's TLS handshake, within a deadline.
    _now: Callable[[], float]
    _apply: Callable[[Actions], None]
    _wait_until: Callable[[Wait, float | None], Awaitable[bool]]
    _within: Callable[[float | None, Awaitable[Any], Any], Awaitable[Any]]
    _start_tls: Callable[[float | None], Awaitable[bool]]

    def _take(self) -> str | bytes | None:
        """The next message, if one is queued (lock held)."""
        endpoint = self._endpoint
        try:
            return endpoint.next_message(self._now())
        finally:
            if endpoint.dirty:
                self._apply(endpoint.actions(self._now()))

    def _tell(self, call: Callable[[float], object]) -> None:
        """Make a call into the endpoint and carry out its actions."""
        with self._lock:
            call(self._now())
            self._apply(self._endpoint.actions(self._now()))

    async def _perform(self, effect: ops.Effect) -> Any:
        match effect:
            case ops.WaitFor(what=what, deadline=deadline):
                return await self._wait_until(what, deadline)
            case ops.NextFragment(source=AsyncIterator() as source):
                return await anext(source, ops.DONE)
            case ops.NextFragment(source=source):
                return next(source, ops.DONE)
            case ops.Call(function=function, args=args, deadline=deadline):
                result = function(*args)
                if inspect.isawaitable(result):
                    result = await self._within(deadline, result, ops.TIMED_OUT)
                return result
            case ops.StartTLS(deadline=deadline):
                return await self._start_tls(deadline)
            case ops.Report():
                return report(effect)


class AsyncConnection(DriverConnection):
    """A WebSocket connection, client or server side, of the asyncio or trio
    driver: its API, and the effects of the core's procedures carried out
    with the primitives each driver defines.

    Use it as an async iterator to receive messages until the connection
    closes normally, and as an async context manager to close it on leaving
    the block. Every method is safe to call from several tasks at once:
    messages are never interleaved and each received message goes to exactly
    one :meth:`recv` call.
    """

    _endpoint: Endpoint
    # Whether every await must be a checkpoint even when nothing waits (trio).
    _checkpoints = False

    # ---------------------------------------------------------------- the API

    async def recv(self) -> str | bytes:
        """Return the next message: ``str`` for text, ``bytes`` for binary.

        Cancellation-safe: a message is taken from the queue only once it can
        be returned; one that arrives meanwhile stays for the next call.

        Raises:
            ConnectionClosedOK: The connection closed normally and every
                message received before the close was returned.
            ConnectionClosedError: The connection closed with an error (the
                exception's ``__cause__`` says why, when sansws ended it).
        """
        checkpoints, waited = self._checkpoints, False
        if checkpoints:
            await self._checkpoint(cancellable=True)
        while (message := self._take()) is None:
            await self._park(Wait.MESSAGE)
            waited = True
        if checkpoints and not waited:
            await self._checkpoint(cancellable=False)
        return message

    def __aiter__(self) -> AsyncConnection:
        return self

    async def __anext__(self) -> str | bytes:
        """The next message; the iteration stops after a normal closure and
        raises :class:`ConnectionClosedError` after an abnormal one."""
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    async def send(self, message: Sendable) -> None:
        """Send a message: ``str`` as text, bytes-like as binary; an iterable
        or async iterable of ``str`` (or of bytes-like) as one message in
        fragments, one frame per item.

        Waits while another task sends a fragmented message; once the message
        is queued, while more than ``write_limit`` bytes wait to be written
        (until a quarter is left). Cancelled, it queued the whole message or
        nothing -- except a message sent in fragments and cancelled after its
        first one, which fails the connection with 1011: the peer cannot be
        told to drop half a message.

        Raises:
            ConnectionClosed: The connection is closing or closed.
            TypeError: ``message`` is none of the above.
        """
        endpoint = self._endpoint
        if self._checkpoints:
            await self._checkpoint(cancellable=True)
        if is_message(message) and endpoint.ready(Wait.SENDABLE):
            endpoint.send(message)  # type: ignore[arg-type]
            self._write(endpoint.data_to_send())
            if not endpoint.ready(Wait.DRAINED):
                await run(ops.drain(endpoint), self)
            elif self._checkpoints:
                await self._checkpoint(cancellable=False)
            return
        await run(ops.send(endpoint, message, self._now, asynchronous=True), self)

    async def pong(self, data: bytes = b"") -> None:
        """Send an unsolicited Pong (a one-way heartbeat); waits while the
        write buffer is above ``write_limit``.

        Raises:
            ConnectionClosed: The connection is closing or closed.
        """
        if self._checkpoints:
            await self._checkpoint(cancellable=True)
        self._endpoint.pong(data)
        self._write(self._endpoint.data_to_send())
        await run(ops.drain(self._endpoint), self)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the close handshake and return once the transport is closed,
        at most about ``close_timeout`` later. Idempotent: once closing or
        closed, just waits for the transport to close. If cancelled, the
        transport is aborted.

        Raises:
            LocalProtocolError: ``code`` may not be sent, or ``reason`` is
                longer than 123 bytes in UTF-8.
        """
        if self._checkpoints:
            await self._checkpoint(cancellable=True)
        await run(ops.close(self._endpoint, code, reason, self._now), self)

    async def wait_closed(self) -> None:
        """Wait until the transport is closed."""
        await self._wait_for(Wait.TRANSPORT_CLOSED)

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        await run(ops.finish(self._endpoint, exc, self._now), self)

    # ---------------------------------------------------------------- each driver's

    # Write after send(), ping() and pong(); wait until Actions.wake names a
    # condition; a checkpoint (trio); a server's TLS handshake.
    _write: Callable[[bytes], None]
    _park: Callable[[Wait], Awaitable[None]]
    _checkpoint: Callable[..., Awaitable[None]]
    _tls_handshake: Callable[[], Awaitable[bool]]

    async def _wait_for(self, what: Wait) -> bool:
        while not self._endpoint.ready(what):
            await self._park(what)
        return True

    async def _wait_until(self, what: Wait, deadline: float | None) -> bool:
        return await self._within(deadline, self._wait_for(what), False)  # type: ignore[no-any-return]

    async def _start_tls(self, deadline: float | None) -> bool:
        return await self._within(deadline, self._tls_handshake(), False)  # type: ignore[no-any-return]


def step(
    procedure: ops.Procedure[Any], value: Any, error: BaseException | None, connection: Any
) -> ops.Effect:
    """Advance ``procedure`` with the last effect's result (or exception),
    then, whatever happened, carry out ``connection``'s actions. Raises
    StopIteration at the end."""
    try:
        return procedure.send(value) if error is None else procedure.throw(error)
    finally:
        if connection is not None and connection._endpoint.dirty:
            connection._apply(connection._endpoint.actions(connection._now()))


async def run(
    procedure: ops.Procedure[Any],
    connection: DriverConnection | None,
    open_transport: Callable[[ops.OpenTransport], Awaitable[Any]] | None = None,
) -> Any:
    """Run a core procedure, carrying out the endpoint's actions after every
    step (see :mod:`sansws.ops`): each step with the connection's lock held,
    each effect without. The sync driver's effects block instead of
    awaiting, so this coroutine never suspends there (see its ``_run``)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            with connection._lock if connection is not None else _NO_LOCK:
                effect = step(procedure, value, error, connection)
        except StopIteration as stop:
            return stop.value
        try:
            if type(effect) is ops.OpenTransport:
                assert open_transport is not None
                value = connection = await open_transport(effect)
            else:
                assert connection is not None
                value = await connection._perform(effect)
            error = None
        except BaseException as exc:
            value, error = None, exc


class PingRecord:
    """What every driver's ping waiter holds: the core's :class:`Ping`."""

    def __init__(self, connection: Any, ping: Ping) -> None:
        self._connection = connection
        self._ping = ping
        #: The Ping's payload, which its Pong echoes.
        self.payload = ping.payload

    def done(self) -> bool:
        """Whether the Pong arrived or the connection closed."""
        return self._ping.done()


class PingWaiter(PingRecord):
    """A sent Ping: ``await waiter`` (or ``await waiter.wait()``) returns the
    round-trip time once its Pong arrived; both raise
    :class:`~sansws.errors.ConnectionClosed` if the connection closed first.
    Cancelling the wait leaves the waiter valid."""

    _connection: AsyncConnection

    async def wait(self) -> float:
        """Wait for the Pong and return the latency in seconds."""
        while not self._ping.done():
            await self._connection._park(Wait.PONG)
        return self._ping.result()

    def __await__(self) -> Generator[Any, None, float]:
        return self.wait().__await__()
