"""The servers of the interop suite, each speaking the test protocol of
interop_common.py: websockets' (asyncio and trio) and aiohttp's (the peers
of sansws clients) and one per sansws driver (the peers of third-party
clients).

Each runs in a background thread, with its own event loop where it needs
one, and listens on two loopback ports: plain and TLS (the certificate comes
from the test's throwaway CA). :func:`start` returns a
:class:`RunningServer` that stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from aiohttp import WSMsgType, web
from interop_common import (
    FRAGMENTS,
    MAX_SIZE,
    SERVER_SUBPROTOCOLS,
    WAIT,
    LoopThread,
    Message,
    Record,
    Recorder,
    TrioThread,
    answer_commands,
    describe,
    parse_command,
)
from sansws.drivers import asyncio as sansws_asyncio
from sansws.drivers import sync as sansws_sync
from sansws.drivers import trio as sansws_trio
from websockets.asyncio.server import ServerConnection as WebsocketsConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.trio.server import ServerConnection as WebsocketsTrioConnection
from websockets.trio.server import serve as websockets_trio_serve
from websockets.typing import Subprotocol

from sansws.errors import ConnectionClosed

#: Servers able to send a fragmented message (aiohttp's API has no way to).
FRAGMENTING_SERVERS = frozenset({"websockets", "websockets-trio", "sync", "asyncio", "trio"})


@dataclass
class RunningServer:
    """A server of the suite, listening on ``port`` and on ``tls_port``."""

    name: str
    port: int
    tls_port: int
    recorder: Recorder
    stop: Callable[[], None] = field(repr=False)

    def url(self, path: str = "/", *, tls: bool = False) -> str:
        if tls:
            return f"wss://127.0.0.1:{self.tls_port}{path}"
        return f"ws://127.0.0.1:{self.port}{path}"


@contextlib.contextmanager
def start(name: str, tls: ssl.SSLContext) -> Iterator[RunningServer]:
    """Run the server called ``name`` for the duration of the block."""
    server = _STARTERS[name](tls)
    try:
        yield server
    finally:
        server.stop()


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    return sock


# ---------------------------------------------------------------- websockets


async def _websockets_handler(ws: WebsocketsConnection, recorder: Recorder) -> None:
    assert ws.request is not None
    path = ws.request.path

    async def ping(data: bytes) -> None:
        await asyncio.wait_for(await ws.ping(data), WAIT)

    try:
        await answer_commands(
            ws,
            send=ws.send,
            ping=ping,
            close=ws.close,
            described=describe(path, ws.subprotocol, ws.request.headers.get("X-Interop")),
        )
    except WebsocketsClosed:
        pass
    finally:
        recorder.add(Record(path, ws.subprotocol, ws.close_code, ws.close_reason))


async def _websockets_trio_handler(ws: WebsocketsTrioConnection, recorder: Recorder) -> None:
    assert ws.request is not None
    path = ws.request.path

    async def ping(data: bytes) -> None:
        pong = await ws.ping(data)
        with trio.fail_after(WAIT):
            await pong.wait()

    try:
        await answer_commands(
            ws,
            send=ws.send,
            ping=ping,
            close=ws.aclose,
            described=describe(path, ws.subprotocol, ws.request.headers.get("X-Interop")),
        )
    except WebsocketsClosed:
        pass
    finally:
        recorder.add(Record(path, ws.subprotocol, ws.close_code, ws.close_reason))


def _websockets_subprotocol(
    ws: WebsocketsConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    # websockets refuses a client that offers no subprotocol to a server that
    # has some; the other servers accept it without one.
    return next((Subprotocol(name) for name in SERVER_SUBPROTOCOLS if name in offered), None)


def _start_websockets(tls: ssl.SSLContext) -> RunningServer:
    recorder = Recorder()
    loop = LoopThread("interop-websockets-server").__enter__()

    async def handler(ws: WebsocketsConnection) -> None:
        await _websockets_handler(ws, recorder)

    async def open_servers() -> list[Any]:
        return [
            await websockets_serve(
                handler,
                "127.0.0.1",
                0,
                ssl=context,
                select_subprotocol=_websockets_subprotocol,
                max_size=MAX_SIZE,
            )
            for context in (None, tls)
        ]

    servers = loop.call(open_servers())

    def stop() -> None:
        async def close() -> None:
            for server in servers:
                server.close()
                await server.wait_closed()

        loop.call(close())
        loop.__exit__(None, None, None)

    plain, secure = (server.sockets[0].getsockname()[1] for server in servers)
    return RunningServer("websockets", plain, secure, recorder, stop)


def _start_websockets_trio(tls: ssl.SSLContext) -> RunningServer:
    recorder = Recorder()

    async def handler(ws: WebsocketsTrioConnection) -> None:
        await _websockets_trio_handler(ws, recorder)

    async def main(started: Callable[[Any], None]) -> None:
        async with trio.open_nursery() as nursery:
            servers = [
                await nursery.start(
                    functools.partial(
                        websockets_trio_serve,
                        handler,
                        0,
                        host="127.0.0.1",
                        ssl=context,
                        select_subprotocol=_websockets_subprotocol,
                        max_size=MAX_SIZE,
                    )
                )
                for context in (None, tls)
            ]
            started([server.listeners[0].socket.getsockname()[1] for server in servers])

    thread = TrioThread(main, "interop-websockets-trio-server")
    plain, secure = thread.start()
    return RunningServer("websockets-trio", plain, secure, recorder, thread.stop)


# ---------------------------------------------------------------- aiohttp


async def _aiohttp_handler(request: web.Request, recorder: Recorder) -> web.WebSocketResponse:
    # aiohttp answers Pings and swallows Pongs on its own unless autoping is
    # off; the ping command needs to see the Pong, so a path asks for that.
    observe_pongs = "observe-pongs" in request.path
    ws = web.WebSocketResponse(
        protocols=SERVER_SUBPROTOCOLS, max_msg_size=MAX_SIZE, autoping=not observe_pongs
    )
    await ws.prepare(request)
    path = request.path_qs
    code: int | None = None
    reason: str | None = None
    try:
        while True:
            msg = await ws.receive(timeout=WAIT)
            if msg.type is WSMsgType.CLOSE:
                code, reason = msg.data, msg.extra
                break
            if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
            if msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
                continue
            message: Message = msg.data
            words = parse_command(message)
            if words is None:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(message)
            elif words[0] == "describe":
                await ws.send_str(describe(path, ws.ws_protocol, request.headers.get("X-Interop")))
            elif words[0] == "ping":
                data = bytes.fromhex(words[1])
                await ws.ping(data)
                while True:
                    answer = await ws.receive(timeout=WAIT)
                    if answer.type is WSMsgType.PONG and answer.data == data:
                        break
                await ws.send_str(f"pong {words[1]}")
            elif words[0] == "close":
                await ws.close(code=words[1], message=words[2].encode())
                code, reason = ws.close_code, None
                break
    finally:
        recorder.add(Record(path, ws.ws_protocol, code, reason))
    return ws


def _start_aiohttp(tls: ssl.SSLContext) -> RunningServer:
    recorder = Recorder()
    loop = LoopThread("interop-aiohttp-server").__enter__()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        return await _aiohttp_handler(request, recorder)

    plain, secure = _listener(), _listener()

    async def open_server() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, plain).start()
        await web.SockSite(runner, secure, ssl_context=tls).start()
        return runner

    runner = loop.call(open_server())

    def stop() -> None:
        loop.call(runner.cleanup())
        loop.__exit__(None, None, None)
        plain.close()
        secure.close()

    ports = plain.getsockname()[1], secure.getsockname()[1]
    return RunningServer("aiohttp", *ports, recorder, stop)


# ---------------------------------------------------------------- sansws


def _sansws_record(ws: Any, error: ConnectionClosed | None) -> Record:
    code, reason = (error.code, error.reason) if error else (ws.close_code, ws.close_reason)
    return Record(ws.request.path, ws.subprotocol, code, reason)


def _sync_handler(ws: sansws_sync.Connection, recorder: Recorder) -> None:
    error = None
    try:
        for message in ws:
            words = parse_command(message)
            if words is None:
                ws.send(message)
            elif words[0] == "describe":
                header = ws.request.headers.get("X-Interop")
                ws.send(describe(ws.request.path, ws.subprotocol, header))
            elif words[0] == "fragments":
                ws.send(FRAGMENTS[words[1]])
            elif words[0] == "ping":
                ws.ping(bytes.fromhex(words[1])).wait(WAIT)
                ws.send(f"pong {words[1]}")
            elif words[0] == "close":
                ws.close(words[1], words[2])
    except ConnectionClosed as exc:
        error = exc
    recorder.add(_sansws_record(ws, error))


def _start_sync(tls: ssl.SSLContext) -> RunningServer:
    recorder = Recorder()
    options: dict[str, Any] = dict(subprotocols=SERVER_SUBPROTOCOLS, max_message_size=MAX_SIZE)
    servers = [
        sansws_sync.serve(lambda ws: _sync_handler(ws, recorder), ssl=context, **options)
        for context in (None, tls)
    ]
    threads = [
        threading.Thread(target=server.serve_forever, name="interop-sync-server")
        for server in servers
    ]
    for thread in threads:
        thread.start()

    def stop() -> None:
        for server in servers:
            server.shutdown()
        for thread in threads:
            thread.join(WAIT)
            assert not thread.is_alive()

    return RunningServer("sync", servers[0].port, servers[1].port, recorder, stop)


async def _asyncio_handler(ws: sansws_asyncio.Connection, recorder: Recorder) -> None:
    assert ws.request is not None

    async def ping(data: bytes) -> None:
        await asyncio.wait_for(ws.ping(data), WAIT)

    error = None
    try:
        await answer_commands(
            ws,
            send=ws.send,
            ping=ping,
            close=ws.close,
            described=describe(
                ws.request.path, ws.subprotocol, ws.request.headers.get("X-Interop")
            ),
        )
    except ConnectionClosed as exc:
        error = exc
    recorder.add(_sansws_record(ws, error))


def _start_asyncio(tls: ssl.SSLContext) -> RunningServer:
    recorder = Recorder()
    loop = LoopThread("interop-asyncio-server").__enter__()

    async def handler(ws: sansws_asyncio.Connection) -> None:
        await _asyncio_handler(ws, recorder)

    async def open_servers() -> list[sansws_asyncio.Server]:
        return [
            await sansws_asyncio.serve(
                handler, subprotocols=SERVER_SUBPROTOCOLS, max_message_size=MAX_SIZE, ssl=context
            )
            for context in (None, tls)
        ]

    servers = loop.call(open_servers())

    def stop() -> None:
        async def close() -> None:
            for server in servers:
                await server.aclose()

        loop.call(close())
        loop.__exit__(None, None, None)

    plain, secure = (server.port for server in servers)
    assert plain is not None
    assert secure is not None
    return RunningServer("asyncio", plain, secure, recorder, stop)


async def _trio_handler(ws: sansws_trio.Connection, recorder: Recorder) -> None:
    assert ws.request is not None

    async def ping(data: bytes) -> None:
        waiter = await ws.ping(data)
        with trio.fail_after(WAIT):
            await waiter.wait()

    error = None
    try:
        await answer_commands(
            ws,
            send=ws.send,
            ping=ping,
            close=ws.close,
            described=describe(
                ws.request.path, ws.subprotocol, ws.request.headers.get("X-Interop")
            ),
        )
    except ConnectionClosed as exc:
        error = exc
    recorder.add(_sansws_record(ws, error))


def _start_trio(tls: ssl.SSLContext) -> RunningServer:
    recorder = Recorder()

    async def handler(ws: sansws_trio.Connection) -> None:
        await _trio_handler(ws, recorder)

    async def main(started: Callable[[Any], None]) -> None:
        options: dict[str, Any] = dict(subprotocols=SERVER_SUBPROTOCOLS, max_message_size=MAX_SIZE)
        async with (
            sansws_trio.serve(handler, **options) as plain,
            sansws_trio.serve(handler, ssl=tls, **options) as secure,
        ):
            started((plain, secure))
            await plain.serve_forever()
            await secure.serve_forever()

    thread = TrioThread(main, "interop-trio-server")
    plain, secure = thread.start()

    def shutdown() -> None:
        plain.shutdown()
        secure.shutdown()

    return RunningServer("trio", plain.port, secure.port, recorder, lambda: thread.stop(shutdown))


_STARTERS: dict[str, Callable[[ssl.SSLContext], RunningServer]] = {
    "websockets": _start_websockets,
    "websockets-trio": _start_websockets_trio,
    "aiohttp": _start_aiohttp,
    "sync": _start_sync,
    "asyncio": _start_asyncio,
    "trio": _start_trio,
}
