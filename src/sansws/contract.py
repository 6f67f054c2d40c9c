"""The driver contract: what a driver's connection provides, and what the
core builds on it once for every driver.

A driver implements a few primitives on its connection object -- the
clock, carrying out :class:`~sansws.endpoint.Actions`, waiting for an
:class:`~sansws.endpoint.Wait` condition, awaiting within a deadline, a
server's TLS handshake -- and this module supplies the rest:

* :func:`run`, the runner of the procedures of :mod:`sansws.ops`: it steps
  a procedure, carries out the endpoint's actions after every step, and
  hands each effect to the connection's primitives, so no driver interprets
  effects itself;
* :class:`DriverConnection`, the base of every driver's connection (taking
  a queued message, calling into the endpoint under the connection's lock);
* :class:`AsyncConnection`, the whole API of an async driver's connection
  (``recv``, ``send``, ``pong``, ``close``, the context manager and the
  iterator), written once with its cancellation rules, and
  :class:`PingWaiter`.

Nothing here does I/O or blocks: a driver's primitives do. The sync driver
runs the same coroutine with effects that block instead of awaiting, so it
never suspends (see ``sansws.drivers.sync``).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
)
from typing import Any

from . import ops
from .endpoint import Actions, ConnectionView, Endpoint, Ping, Wait, decoded, is_message
from .errors import ConnectionClosedOK

__all__ = [
    "AsyncConnection", "DriverConnection", "PingRecord", "PingWaiter", "Sendable", "report", "run",
]

logger = logging.getLogger(ops.LOGGER)
_NO_LOCK = contextlib.nullcontext()


def report(effect: ops.Report) -> None:
    """Log a core :class:`~sansws.ops.Report` to the server logger, as
    :func:`run` does."""
    logger.log(effect.level, effect.message, exc_info=effect.error)



Data = str | bytes | bytearray | memoryview
Sendable = Data | Iterable[str] | Iterable[Data] | AsyncIterable[str] | AsyncIterable[Data]
"""What ``send()`` accepts: a message, or its fragments."""


class DriverConnection(ConnectionView):
    """What every driver's connection shares: taking a received message, and
    carrying out the effects of the core's procedures (see :func:`run`)
    with the primitives each driver defines."""

    _endpoint: Endpoint
    # Write bytes the endpoint queued (after send(), ping(), pong() and a
    # broadcast) without waiting: what the transport does not take at once
    # is buffered (lock held).
    _write: Callable[[bytes], None]
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
    """A WebSocket connection, client or server side, of an async driver
    (sansws's asyncio and trio drivers, or your own): its API, and the
    effects of the core's procedures carried out with the primitives each
    driver defines.

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

    async def recv(self, decode: bool | None = None) -> str | bytes:
        """Return the next message: ``str`` for text, ``bytes`` for binary;
        with ``decode=True`` always ``str``, with ``decode=False`` always
        ``bytes`` (see :func:`sansws.endpoint.decoded`).

        Cancellation-safe: a message is taken from the queue only once it can
        be returned; one that arrives meanwhile stays for the next call.

        Raises:
            UnicodeDecodeError: ``decode=True`` and a binary message is not
                UTF-8 (the message is gone; the connection stays open).
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
        return message if decode is None else decoded(message, decode)

    def __aiter__(self) -> AsyncConnection:
        return self

    async def __anext__(self) -> str | bytes:
        """The next message; the iteration stops after a normal closure and
        raises :class:`ConnectionClosedError` after an abnormal one."""
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    async def send(self, message: Sendable, text: bool | None = None) -> None:
        """Send a message: ``str`` as text, bytes-like as binary; an iterable
        or async iterable of ``str`` (or of bytes-like) as one message in
        fragments, one frame per item. ``text=True`` sends bytes-like as text
        (they must be UTF-8: ``UnicodeDecodeError`` else, before anything is
        sent for a whole message), ``text=False`` sends ``str`` as binary.

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
            endpoint.send(message, text=text)  # type: ignore[arg-type]
            self._write(endpoint.data_to_send())
            if not endpoint.ready(Wait.DRAINED):
                await run(ops.drain(endpoint), self)
            elif self._checkpoints:
                await self._checkpoint(cancellable=False)
            return
        await run(ops.send(endpoint, message, self._now, asynchronous=True, text=text), self)

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
    """The base of a ping waiter that holds the core's :class:`Ping` (the
    sync and trio drivers'; asyncio's is an ``asyncio.Future``)."""

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
