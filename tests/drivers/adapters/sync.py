"""The sync driver behind the async test interface: every blocking call runs
in a worker thread (``anyio.to_thread.run_sync``)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
from sansws.drivers import sync

from adapters.base import (
    Conn,
    Driver,
    Handler,
    HandlerSpec,
    Message,
    PingWaiter,
    Record,
    Server,
    native_handler,
    report_of,
)
from sansws import State
from sansws.errors import ConnectionClosed

T = TypeVar("T")


async def _run(func: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(functools.partial(func, *args))


class SyncPingWaiter(PingWaiter):
    def __init__(self, waiter: sync.PingWaiter) -> None:
        self.native = waiter

    async def wait(self, timeout: float | None = None) -> float:
        return await _run(self.native.wait, timeout)


class SyncConn(Conn):
    def __init__(self, native: sync.Connection) -> None:
        self.native = native

    async def send(self, message: Message | Iterable[Message], text: bool | None = None) -> None:
        await _run(self.native.send, message, text)

    async def recv(self, timeout: float | None = None, decode: bool | None = None) -> Message:
        return await _run(self.native.recv, timeout, decode)

    async def ping(self, data: bytes | None = None) -> PingWaiter:
        return SyncPingWaiter(await _run(self.native.ping, data))

    async def pong(self, data: bytes = b"") -> None:
        await _run(self.native.pong, data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await _run(self.native.close, code, reason)

    async def abort(self) -> None:
        await _run(self.native.abort)

    async def __aiter__(self) -> AsyncIterator[Message]:
        iterator = iter(self.native)
        sentinel = object()
        while True:
            item = await _run(next, iterator, sentinel)
            if item is sentinel:
                return
            yield item  # type: ignore[misc]


def _hold(server: Server, ws: sync.Connection, messages: list[Message]) -> None:
    try:
        for message in ws:
            messages.append(message)
        code, reason = ws.close_code, ws.close_reason
    except ConnectionClosed as exc:
        code, reason = exc.code, exc.reason
    request = ws.request
    server.add_record(Record(request.path if request else "", messages, code, reason))


def make_handler(spec: Handler, server: Server) -> Callable[[sync.Connection], None]:
    params = spec.params

    def handler(ws: sync.Connection) -> None:
        name = spec.name
        if name == "echo":
            for message in ws:
                ws.send(message)
        elif name == "hold":
            _hold(server, ws, [])
        elif name == "close":
            ws.close(params.get("code", 1000), params.get("reason", ""))
            _hold(server, ws, [])
        elif name == "report":
            ws.send(report_of(ws))
            _hold(server, ws, [])
        elif name == "send":
            for message in params.get("messages", []):
                ws.send(message)
            if params.get("close_code") is not None:
                ws.close(params["close_code"], params.get("close_reason", ""))
            _hold(server, ws, [])
        elif name == "raise":
            raise RuntimeError("handler failed")
        elif name == "stall":
            # Never read; bounded by the server closing the connection.
            deadline = time.monotonic() + 30
            while ws.state is not State.CLOSED and time.monotonic() < deadline:
                time.sleep(0.01)

    return handler


class SyncServer(Server):
    def __init__(self, native: sync.Server, scheme: str) -> None:
        super().__init__()
        self.native = native
        self.scheme = scheme
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.native.port

    async def shutdown(self) -> None:
        self.native.shutdown()
        if self._thread is not None:
            await _run(self._thread.join)


class SyncDriver(Driver):
    name = "sync"
    anyio_backend = "asyncio"

    @asynccontextmanager
    async def connect(self, url: str, **options: Any) -> AsyncIterator[Conn]:
        native = await _run(functools.partial(sync.connect, url, **options))
        try:
            yield SyncConn(native)
        finally:
            await _run(native.close)

    @asynccontextmanager
    async def serve(self, handler: HandlerSpec, **options: Any) -> AsyncIterator[Server]:
        process_request = options.pop("process_request", None)
        delay = options.pop("process_request_delay", 0.0)
        if process_request is not None:
            func = process_request

            def native_process_request(ws: sync.Connection, request: Any) -> Any:
                time.sleep(delay)
                return func(request)

            options["process_request"] = native_process_request
        if "native_process_request" in options:
            options["process_request"] = options.pop("native_process_request")
        holder: list[SyncServer] = []

        def make(spec: Handler) -> Callable[[sync.Connection], None]:
            def run(ws: sync.Connection) -> None:  # the server exists by then
                make_handler(spec, holder[0])(ws)

            return run

        run = native_handler(handler, sync.Router, make)
        native = await _run(functools.partial(sync.serve, run, **options))
        server = SyncServer(native, "wss" if options.get("ssl") else "ws")
        holder.append(server)
        thread = threading.Thread(target=native.serve_forever, name="test-serve-forever")
        server._thread = thread
        thread.start()
        try:
            yield server
        finally:
            await server.shutdown()


    async def client_block(self, url: str, error: BaseException, **options: Any) -> None:
        def block() -> None:
            with sync.connect(url, **options):
                raise error

        await _run(block)

    async def server_block(self, error: BaseException) -> None:
        def block() -> None:
            with sync.serve(lambda ws: None):
                raise error

        await _run(block)


def make_driver() -> Driver:
    return SyncDriver()
