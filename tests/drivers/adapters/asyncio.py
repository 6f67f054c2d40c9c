"""The asyncio driver behind the shared suite's interface (see base.py).

Calls go straight to ``sansws.drivers.asyncio``; ``recv`` and ping timeouts
use ``asyncio.timeout``, so the suite also exercises cancellation by timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sansws.drivers import asyncio as driver

from adapters.base import (
    Conn,
    Driver,
    Handler,
    HandlerSpec,
    Message,
    PingWaiter,
    ProcessRequest,
    Record,
    Server,
    native_handler,
    report_of,
)
from sansws.connection import State
from sansws.endpoint import Response
from sansws.errors import ConnectionClosed
from sansws.events import Request

# Bounds the ``stall`` handler's polling: far above any test's duration.
STALL_LIMIT = 60.0


class AsyncioPingWaiter(PingWaiter):
    def __init__(self, future: asyncio.Future[float]) -> None:
        self.future = future

    async def wait(self, timeout: float | None = None) -> float:
        async with asyncio.timeout(timeout):
            # Shielded: a timed-out wait leaves the ping pending for a retry.
            return await asyncio.shield(self.future)


class AsyncioConn(Conn):
    def __init__(self, native: driver.Connection) -> None:
        self.native = native

    async def send(self, message: Message | Iterable[Message], text: bool | None = None) -> None:
        await self.native.send(message, text)

    async def recv(self, timeout: float | None = None, decode: bool | None = None) -> Message:
        async with asyncio.timeout(timeout):
            return await self.native.recv(decode)

    async def ping(self, data: bytes | None = None) -> PingWaiter:
        return AsyncioPingWaiter(self.native.ping(data))

    async def pong(self, data: bytes = b"") -> None:
        await self.native.pong(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.native.close(code, reason)

    async def abort(self) -> None:
        self.native.abort()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self.native.__aiter__()


class AsyncioServer(Server):
    native: driver.Server

    @property
    def port(self) -> int:
        port = self.native.port
        assert port is not None
        return port

    async def shutdown(self) -> None:
        self.native.shutdown()
        await self.native.wait_closed()


async def _hold(ws: driver.Connection, server: AsyncioServer, messages: list[Message]) -> None:
    try:
        while True:
            messages.append(await ws.recv())
    except ConnectionClosed as exc:
        assert ws.request is not None
        server.add_record(Record(ws.request.path, messages, exc.code, exc.reason))


def _native_handler(spec: Handler, server: AsyncioServer) -> driver.Handler:
    name, params = spec.name, spec.params

    async def handle(ws: driver.Connection) -> None:
        if name == "echo":
            async for message in ws:
                await ws.send(message)
        elif name == "hold":
            await _hold(ws, server, [])
        elif name == "close":
            await ws.close(params.get("code", 1000), params.get("reason", ""))
            await _hold(ws, server, [])
        elif name == "report":
            await ws.send(report_of(ws))
            await _hold(ws, server, [])
        elif name == "send":
            for message in params.get("messages", []):
                await ws.send(message)
            if params.get("close_code") is not None:
                await ws.close(params["close_code"], params.get("close_reason", ""))
            else:
                await _hold(ws, server, [])
        elif name == "raise":
            raise RuntimeError("handler failed")
        else:
            assert name == "stall"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STALL_LIMIT
            while ws.state is not State.CLOSED and loop.time() < deadline:
                await asyncio.sleep(0.01)

    return handle


def _native_process_request(
    process_request: ProcessRequest, delay: float = 0.0
) -> driver.ProcessRequest:
    async def native(ws: driver.Connection, request: Request) -> Response | None:
        await asyncio.sleep(delay)
        return process_request(request)

    return native


class AsyncioDriver(Driver):
    name = "asyncio"
    anyio_backend = "asyncio"

    @asynccontextmanager
    async def connect(self, url: str, **options: Any) -> AsyncIterator[Conn]:
        async with driver.connect(url, **options) as ws:
            yield AsyncioConn(ws)

    @asynccontextmanager
    async def serve(self, handler: HandlerSpec, **options: Any) -> AsyncIterator[Server]:
        server = AsyncioServer()
        if options.get("ssl") is not None:
            server.scheme = "wss"
        process_request = options.pop("process_request", None)
        delay = options.pop("process_request_delay", 0.0)
        if process_request is not None:
            options["process_request"] = _native_process_request(process_request, delay)
        if "native_process_request" in options:
            options["process_request"] = options.pop("native_process_request")
        host = options.pop("host", "127.0.0.1")
        port = options.pop("port", 0)
        native = native_handler(handler, driver.Router, lambda spec: _native_handler(spec, server))
        async with driver.serve(native, host, port, **options) as native:
            server.native = native
            yield server


    async def client_block(self, url: str, error: BaseException, **options: Any) -> None:
        async with driver.connect(url, **options):
            raise error

    async def server_block(self, error: BaseException) -> None:
        async def handler(ws: driver.Connection) -> None:
            pass

        async with driver.serve(handler):
            raise error


def make_driver() -> Driver:
    return AsyncioDriver()
