"""A WebSocket client driver for anyio (asyncio or trio) on the sansws core."""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import ByteStream

from sansws.endpoint import READ_SIZE, Endpoint
from sansws.session import ClientSession, Target

_EOF = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)


class Connection:
    """An open WebSocket connection: send(), recv(), ping(), close()."""

    def __init__(self, endpoint: Endpoint, stream: ByteStream) -> None:
        self.endpoint = endpoint
        self._stream = stream
        self._send_lock = anyio.Lock()
        self._changed = anyio.Event()  # set, then replaced, whenever anything happens
        self._transport_closed = False
        self._pongs: dict[bytes, float] = {}  # answered pings: payload -> latency

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _flush(self) -> None:
        # After every call into the endpoint: write what it queued, and close
        # the transport when the core says so.
        async with self._send_lock:
            data = self.endpoint.data_to_send()
            if data and not self._transport_closed:
                try:
                    await self._stream.send(data)
                except _EOF:
                    self.endpoint.abort(anyio.current_time())
            if self.endpoint.should_close_transport and not self._transport_closed:
                self._transport_closed = True
                await self._stream.aclose()
        self._wake()

    async def _pump(self) -> None:
        """Wait for bytes or the core's next deadline, feed the endpoint, flush."""
        deadline = self.endpoint.next_deadline()
        data = None
        with anyio.move_on_at(math.inf if deadline is None else deadline):
            if self.endpoint.reading_paused:  # the application is behind: stop reading
                await self._changed.wait()
                return
            try:
                data = await self._stream.receive(READ_SIZE)
            except _EOF:
                data = b""
        now = anyio.current_time()
        if data is None:
            progress = self.endpoint.handle_timeout(now)
        else:
            progress = self.endpoint.receive_data(data, now)
        self._pongs.update(progress.pongs)
        await self._flush()

    async def _run(self) -> None:
        while not self._transport_closed:
            await self._pump()

    async def send(self, message: str | bytes) -> None:
        self.endpoint.send(message)
        await self._flush()

    async def recv(self) -> str | bytes:
        # Cancellation-safe: a message is only taken once it can be returned.
        while True:
            message = self.endpoint.next_message()  # raises ConnectionClosed at the end
            await self._flush()
            if message is not None:
                return message
            await self._changed.wait()

    async def ping(self) -> float:
        payload = self.endpoint.ping(anyio.current_time())
        await self._flush()
        while payload not in self._pongs:
            if self.endpoint.closed:
                raise self.endpoint.connection.closed_error()
            await self._changed.wait()
        return self._pongs.pop(payload)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.endpoint.close(code, reason)
        await self._flush()
        while not self._transport_closed:
            await self._changed.wait()


async def _open_stream(target: Target, ssl_context: ssl.SSLContext | None) -> ByteStream:
    if target.unix_path is not None:
        return await anyio.connect_unix(target.unix_path)
    if not target.tls:
        return await anyio.connect_tcp(target.host, target.port)
    context = ssl_context or ssl.create_default_context()
    return await anyio.connect_tcp(
        target.host, target.port, ssl_context=context, tls_hostname=target.server_hostname
    )


@asynccontextmanager
async def connect(
    url: str, *, ssl_context: ssl.SSLContext | None = None, **options: Any
) -> AsyncIterator[Connection]:
    """Open a connection, following redirects, within one open timeout."""
    session = ClientSession(url, **options)  # validates every option before any I/O
    session.check_tls_option(ssl_context is not None)
    attempt = session.start(anyio.current_time())
    while True:
        budget = None if attempt.deadline is None else attempt.deadline - anyio.current_time()
        try:
            with anyio.fail_after(budget):  # DNS, TCP and TLS
                stream = await _open_stream(attempt.target, ssl_context)
        except TimeoutError:
            session.check_deadline(anyio.current_time())  # raises OpenTimeout
            raise
        connection = Connection(Endpoint(attempt.connection), stream)
        try:
            await connection._flush()  # the opening handshake request
            while connection.endpoint.handshake_pending:  # ends by itself at the deadline
                await connection._pump()
            next_attempt = session.outcome(attempt, anyio.current_time())  # raises on failure
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
        if next_attempt is None:
            break
        await stream.aclose()
        attempt = next_attempt
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(connection._run)
        try:
            yield connection
        finally:
            with anyio.CancelScope(shield=True):
                await connection.close()
