"""A WebSocket driver for anyio (asyncio or trio) on the sansws core: a client
and a server, deciding nothing, as the driver contract asks."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import ByteStream

from sansws import ops
from sansws.contract import AsyncConnection, PingWaiter, run
from sansws.endpoint import READ_SIZE, Actions, Close, Endpoint, Wait
from sansws.options import SERVE, settle
from sansws.serving import ServerState
from sansws.session import ClientSession

_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
now = anyio.current_time


class Connection(AsyncConnection):
    """An open WebSocket connection. Its API -- send(), recv(), pong(),
    close(), ``async for`` and ``async with`` -- comes from the contract's
    AsyncConnection, built on the primitives below; ping() is this driver's."""

    def __init__(self, endpoint: Endpoint, stream: ByteStream) -> None:
        self._endpoint = endpoint
        self._stream = stream
        self._now = now
        self._changed = anyio.Event()  # set, then replaced, whenever anything happens
        self._out = bytearray()  # bytes the writer has not written yet
        self._sending = 0  # the size of what the writer is writing now
        self._close = Close.KEEP
        self._reading = True
        self._read_scope = anyio.CancelScope()

    async def ping(self) -> float:
        """Send a Ping and return the round-trip time once its Pong arrived."""
        waiter = PingWaiter(self, self._endpoint.ping(None, now()))
        self._write(self._endpoint.data_to_send())
        return await waiter

    # ---- Reactions: one function carries out what the core decided.

    def _apply(self, actions: Actions) -> None:
        self._reading = actions.read
        self._read_scope.deadline = math.inf if actions.deadline is None else actions.deadline
        if actions.close is not Close.KEEP:
            self._close = actions.close
        self._changed.set()
        self._changed = anyio.Event()
        if actions.write:
            self._write(actions.write)

    # ---- The primitives of the contract: write, wait, await within a deadline.

    def _write(self, data: bytes) -> None:
        self._out += data  # for the writer
        # Bytes count as unwritten until the writer's send() returns.
        self._endpoint.unwritten(len(self._out) + self._sending)
        self._apply(self._endpoint.actions(now()))

    async def _park(self, what: Wait) -> None:
        await self._changed.wait()  # any change: the caller checks its condition again

    async def _within(self, deadline: float | None, awaitable: Awaitable[Any], expired: Any) -> Any:
        with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
            return await awaitable
        return expired

    # (_tls_handshake, the last primitive, is left out: this example serves no TLS.)

    # ---- The transport: a reader and a writer task.

    async def _io(self) -> None:
        """Read and write until the transport is closed."""
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._read)
            try:
                await self._write_loop()
            finally:
                tasks.cancel_scope.cancel()

    async def _read(self) -> None:
        while True:
            with anyio.CancelScope() as self._read_scope:
                self._apply(self._endpoint.actions(now()))  # the scope gets the deadline
                while True:
                    if not self._reading:
                        await self._changed.wait()
                        continue
                    try:
                        self._endpoint.receive_data(await self._stream.receive(READ_SIZE), now())
                    except _GONE:
                        self._endpoint.receive_data(b"", now())
                    self._apply(self._endpoint.actions(now()))
            self._apply(self._endpoint.actions(now()))  # the deadline passed

    async def _write_loop(self) -> None:
        try:
            while self._close is not Close.ABORT and (self._out or self._close is Close.KEEP):
                if not self._out:
                    await self._changed.wait()
                    continue
                data = bytes(self._out)
                self._out.clear()
                self._sending = len(data)
                await self._stream.send(data)
                self._sending = 0
                self._endpoint.unwritten(len(self._out))
                self._apply(self._endpoint.actions(now()))
        except _GONE:
            pass
        finally:
            await anyio.aclose_forcefully(self._stream)
            self._endpoint.transport_closed(now())
            self._apply(self._endpoint.actions(now()))


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
                connection._tell(connection._endpoint.shutdown)
            with anyio.move_on_after(5):
                while not state.done:
                    await anyio.sleep(0.01)
            tasks.cancel_scope.cancel()
