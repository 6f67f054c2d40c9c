"""A WebSocket driver for anyio (asyncio or trio) on the sansws core: a client
and a server, deciding nothing, as the driver contract asks."""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import ByteStream

from sansws import ops
from sansws.endpoint import READ_SIZE, Actions, Close, ConnectionView, Endpoint, Wait
from sansws.options import SERVE, settle
from sansws.serving import ServerState
from sansws.session import ClientSession

_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
now = anyio.current_time
logger = logging.getLogger(ops.LOGGER)


class Connection(ConnectionView):
    """An open WebSocket connection: send(), recv(), ping(), close()."""

    def __init__(self, endpoint: Endpoint, stream: ByteStream) -> None:
        self._endpoint = endpoint
        self._stream = stream
        self._changed = anyio.Event()  # set, then replaced, whenever anything happens
        self._out = bytearray()  # bytes the writer has not written yet
        self._close = Close.KEEP
        self._reading = True
        self._read_scope = anyio.CancelScope()

    # ---- Reactions: one function carries out what the core decided.

    def _apply(self, actions: Actions) -> None:
        self._reading = actions.read
        self._read_scope.deadline = math.inf if actions.deadline is None else actions.deadline
        self._out += actions.write
        if actions.close is not Close.KEEP:
            self._close = actions.close
        self._changed.set()
        self._changed = anyio.Event()

    async def _changes(self) -> None:
        await self._changed.wait()

    async def _io(self) -> None:
        """Read and write until the transport is closed."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._read)
            try:
                await self._write()
            finally:
                tasks.cancel_scope.cancel()

    async def _read(self) -> None:
        while True:
            with anyio.CancelScope() as self._read_scope:
                self._apply(self._endpoint.actions(now()))  # the scope gets the deadline
                while True:
                    if not self._reading:
                        await self._changes()
                        continue
                    try:
                        self._endpoint.receive_data(await self._stream.receive(READ_SIZE), now())
                    except _GONE:
                        self._endpoint.receive_data(b"", now())
                    self._apply(self._endpoint.actions(now()))
            self._apply(self._endpoint.actions(now()))  # the deadline passed

    async def _write(self) -> None:
        try:
            while self._close is not Close.ABORT and (self._out or self._close is Close.KEEP):
                if not self._out:
                    await self._changes()
                    continue
                data = bytes(self._out)
                self._out.clear()
                await self._stream.send(data)
                self._endpoint.unwritten(len(self._out))
                self._apply(self._endpoint.actions(now()))
        except _GONE:
            pass
        finally:
            await anyio.aclose_forcefully(self._stream)
            self._endpoint.transport_closed(now())
            self._apply(self._endpoint.actions(now()))

    # ---- Procedures: the core's generators; their effects, carried out here.

    async def _perform(self, effect: ops.Effect) -> Any:
        match effect:
            case ops.WaitFor(what=what, deadline=deadline):
                with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
                    while not self._endpoint.ready(what):
                        await self._changes()
                return self._endpoint.ready(what)
            case ops.NextFragment(source=source) if hasattr(source, "__anext__"):
                return await anext(source, ops.DONE)
            case ops.NextFragment(source=source):
                return next(source, ops.DONE)
            case ops.Call(function=function, args=args, deadline=deadline):
                result = function(*args)
                if not inspect.isawaitable(result):
                    return result
                with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
                    return await result
                return ops.TIMED_OUT
            case ops.Report(level=level, message=message, error=error):
                return logger.log(level, message, exc_info=error)
        raise NotImplementedError(effect)  # StartTLS: this example serves no TLS


    # ---- The application's API: hot paths are direct calls.

    async def send(self, message: Any) -> None:
        await run(ops.send(self._endpoint, message, now, asynchronous=True), self)

    async def recv(self) -> str | bytes:
        # Cancellation-safe: a message is only taken once it can be returned.
        while True:
            message = self._endpoint.next_message(now())  # raises ConnectionClosed at the end
            self._apply(self._endpoint.actions(now()))
            if message is not None:
                return message
            await self._perform(ops.WaitFor(Wait.MESSAGE))

    async def ping(self) -> float:
        ping = self._endpoint.ping(None, now())
        self._apply(self._endpoint.actions(now()))
        while not ping.done():
            await self._changes()
        return ping.result()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await run(ops.close(self._endpoint, code, reason, now), self)


async def run(
    procedure: ops.Procedure[Any],
    connection: Connection | None,
    open_transport: Callable[[ops.OpenTransport], Awaitable[Connection | None]] | None = None,
) -> Any:
    """Run a core procedure: carry out each effect, and the actions after
    every step."""
    value, error = None, None
    while True:
        try:
            effect = procedure.send(value) if error is None else procedure.throw(error)
        except StopIteration as stop:
            return stop.value
        finally:
            if connection is not None:
                connection._apply(connection._endpoint.actions(now()))
        try:
            if isinstance(effect, ops.OpenTransport):  # a client's next attempt
                assert open_transport is not None
                value = connection = await open_transport(effect)
            else:
                assert connection is not None
                value = await connection._perform(effect)
            error = None
        except BaseException as exc:
            value, error = None, exc


# ---- The client.


@asynccontextmanager
async def connect(url: str, **options: Any) -> AsyncIterator[Connection]:
    """Open a connection, following redirects, within one open timeout."""
    session = ClientSession(url, **options)  # checks every option before any I/O
    async with anyio.create_task_group() as tasks:

        async def open_transport(effect: ops.OpenTransport) -> Connection | None:
            target, deadline = effect.target, effect.deadline
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
                if target.unix_path is not None:
                    stream: ByteStream = await anyio.connect_unix(target.unix_path)
                elif target.tls:
                    stream = await anyio.connect_tcp(target.host, target.port, tls=True)
                else:
                    stream = await anyio.connect_tcp(target.host, target.port)
                connection = Connection(effect.endpoint, stream)
                tasks.start_soon(connection._io)
                return connection
            return None

        # Errors are raised after the task group, not wrapped in a group.
        error: BaseException | None = None
        try:
            connection: Connection = await run(ops.open_client(session, now), None, open_transport)
        except BaseException as exc:
            error = exc
        else:
            try:
                yield connection
            except BaseException as exc:
                error = exc
            await run(ops.finish(connection._endpoint, error, now), connection)
    if error is not None:
        raise error


# ---- The server.


@asynccontextmanager
async def serve(
    handler: Callable[[Connection], Awaitable[None]],
    host: str = "127.0.0.1",
    port: int = 0,
    **options: Any,
) -> AsyncIterator[int]:
    """Serve on ``host:port`` for the duration of the block, which gets the
    port; leaving it closes every connection with 1001."""
    state: ServerState[Connection] = ServerState(settle(options, SERVE, "serve()"), handler=handler)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)

    async def handle(stream: ByteStream) -> None:
        endpoint = state.endpoint(now())  # the open timeout starts at the accept
        connection = Connection(endpoint, stream)
        if not state.admit(connection):
            await anyio.aclose_forcefully(stream)
            return
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(connection._io)
                await run(state.serve(endpoint, connection, now), connection)
        finally:
            state.discard(connection)

    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, handle)
        try:
            yield listener.extra(anyio.abc.SocketAttribute.local_port)
        finally:
            for connection in state.shutdown():
                connection._endpoint.shutdown(now())
                connection._apply(connection._endpoint.actions(now()))
            with anyio.move_on_after(5):
                while not state.done:
                    await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
