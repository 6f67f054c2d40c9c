"""Third-party clients behind one blocking interface, so that each interop
test against the sansws servers is written once: websockets' asyncio, sync
and trio clients, aiohttp's ``ClientSession.ws_connect`` and
websocket-client's ``create_connection``.

The asyncio clients run on a :class:`~interop_common.LoopThread`, the trio
one in a :class:`~interop_common.TrioThread`; every call waits at most
:data:`~interop_common.WAIT` seconds.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ssl
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import aiohttp
import trio
import websocket
from interop_common import MAX_SIZE, WAIT, LoopThread, Message, TrioThread
from websockets.asyncio.client import ClientConnection as AsyncioWebsocketsConnection
from websockets.asyncio.client import connect as asyncio_websockets_connect
from websockets.exceptions import ConnectionClosed as WebsocketsClosed
from websockets.sync.client import ClientConnection as SyncWebsocketsConnection
from websockets.sync.client import connect as sync_websockets_connect
from websockets.trio.client import ClientConnection as TrioWebsocketsConnection
from websockets.trio.client import connect as websockets_trio_connect

#: Every third-party client of the suite.
CLIENTS = (
    "websockets-asyncio",
    "websockets-sync",
    "websockets-trio",
    "aiohttp",
    "websocket-client",
)

#: Clients able to send a fragmented message (aiohttp's API has no way to).
FRAGMENTING_CLIENTS = frozenset(
    {"websockets-asyncio", "websockets-sync", "websockets-trio", "websocket-client"}
)


class PeerClient(abc.ABC):
    """One open connection of a third-party client."""

    subprotocol: str | None

    @abc.abstractmethod
    def send(self, message: Message) -> None: ...

    @abc.abstractmethod
    def send_fragments(self, fragments: Sequence[Message]) -> None:
        """Send ``fragments`` as one message, a frame each."""

    @abc.abstractmethod
    def recv(self) -> Message: ...

    @abc.abstractmethod
    def ping(self, data: bytes) -> None:
        """Send a Ping; return once its Pong arrived."""

    @abc.abstractmethod
    def close(self, code: int, reason: str) -> None:
        """Run the close handshake, starting it with ``code`` and ``reason``."""

    @abc.abstractmethod
    def recv_close(self) -> tuple[int, str]:
        """Wait for the server to close; the code and reason it sent."""

    @abc.abstractmethod
    def release(self) -> None:
        """Free the connection's resources, whatever its state."""


@contextlib.contextmanager
def open_client(
    name: str,
    url: str,
    loop: LoopThread,
    *,
    subprotocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    tls: ssl.SSLContext | None = None,
    observe_pongs: bool = False,
) -> Iterator[PeerClient]:
    """Connect with the client called ``name``; leaving the block frees it.

    ``observe_pongs`` is for aiohttp, which hides Pongs from its user unless
    it stops answering Pings itself.
    """
    client: PeerClient
    if name == "websockets-asyncio":
        client = _WebsocketsAsyncio(url, loop, subprotocols, headers, tls)
    elif name == "websockets-sync":
        client = _WebsocketsSync(url, subprotocols, headers, tls)
    elif name == "websockets-trio":
        client = _WebsocketsTrio(url, subprotocols, headers, tls)
    elif name == "aiohttp":
        client = _Aiohttp(url, loop, subprotocols, headers, tls, observe_pongs=observe_pongs)
    elif name == "websocket-client":
        client = _WebsocketClient(url, subprotocols, headers, tls)
    else:
        raise ValueError(name)
    try:
        yield client
    finally:
        client.release()


class _WebsocketsAsyncio(PeerClient):
    def __init__(
        self,
        url: str,
        loop: LoopThread,
        subprotocols: Sequence[str],
        headers: Sequence[tuple[str, str]],
        tls: ssl.SSLContext | None,
    ) -> None:
        self.loop = loop

        async def connect() -> AsyncioWebsocketsConnection:
            return await asyncio_websockets_connect(
                url,
                subprotocols=list(subprotocols) or None,  # type: ignore[arg-type]
                additional_headers=list(headers),
                ssl=tls,
                max_size=MAX_SIZE,
            )

        self.ws = loop.call(connect())
        self.subprotocol = self.ws.subprotocol

    def send(self, message: Message) -> None:
        self.loop.call(self.ws.send(message))

    def send_fragments(self, fragments: Sequence[Message]) -> None:
        self.loop.call(self.ws.send(fragments))

    def recv(self) -> Message:
        return self.loop.call(self.ws.recv())

    def ping(self, data: bytes) -> None:
        async def ping() -> None:
            pong = await self.ws.ping(data)
            await asyncio.wait_for(pong, WAIT)

        self.loop.call(ping())

    def close(self, code: int, reason: str) -> None:
        self.loop.call(self.ws.close(code, reason))

    def recv_close(self) -> tuple[int, str]:
        with contextlib.suppress(WebsocketsClosed):
            message = self.recv()
            raise AssertionError(f"received {message!r} instead of a Close")
        assert self.ws.close_code is not None
        assert self.ws.close_reason is not None
        return self.ws.close_code, self.ws.close_reason

    def release(self) -> None:
        self.loop.call(self.ws.close())


class _WebsocketsSync(PeerClient):
    def __init__(
        self,
        url: str,
        subprotocols: Sequence[str],
        headers: Sequence[tuple[str, str]],
        tls: ssl.SSLContext | None,
    ) -> None:
        # websockets 17 wants its sync connections used as context managers.
        self.ws: SyncWebsocketsConnection = sync_websockets_connect(
            url,
            subprotocols=list(subprotocols) or None,  # type: ignore[arg-type]
            additional_headers=list(headers),
            ssl=tls,
            max_size=MAX_SIZE,
            open_timeout=WAIT,
            close_timeout=WAIT,
        ).__enter__()
        self.subprotocol = self.ws.subprotocol

    def send(self, message: Message) -> None:
        self.ws.send(message)

    def send_fragments(self, fragments: Sequence[Message]) -> None:
        self.ws.send(fragments)

    def recv(self) -> Message:
        return self.ws.recv(timeout=WAIT)

    def ping(self, data: bytes) -> None:
        assert self.ws.ping(data).wait(WAIT), "no Pong"

    def close(self, code: int, reason: str) -> None:
        self.ws.close(code, reason)

    def recv_close(self) -> tuple[int, str]:
        with contextlib.suppress(WebsocketsClosed):
            message = self.recv()
            raise AssertionError(f"received {message!r} instead of a Close")
        assert self.ws.close_code is not None
        assert self.ws.close_reason is not None
        return self.ws.close_code, self.ws.close_reason

    def release(self) -> None:
        self.ws.__exit__(None, None, None)


class _WebsocketsTrio(PeerClient):
    """websockets' trio client, in ``trio.run`` in a thread of its own."""

    def __init__(
        self,
        url: str,
        subprotocols: Sequence[str],
        headers: Sequence[tuple[str, str]],
        tls: ssl.SSLContext | None,
    ) -> None:
        async def main(started: Callable[[Any], None]) -> None:
            async with websockets_trio_connect(
                url,
                subprotocols=list(subprotocols) or None,  # type: ignore[arg-type]
                additional_headers=list(headers),
                ssl=tls,
                max_size=MAX_SIZE,
            ) as ws:
                started(ws)
                await trio.sleep_forever()

        self.thread = TrioThread(main, "interop-websockets-trio-client")
        self.ws: TrioWebsocketsConnection = self.thread.start()
        self.subprotocol = self.ws.subprotocol

    def send(self, message: Message) -> None:
        self.thread.run(lambda: self.ws.send(message))

    def send_fragments(self, fragments: Sequence[Message]) -> None:
        self.thread.run(lambda: self.ws.send(fragments))

    def recv(self) -> Message:
        return self.thread.run(self.ws.recv)

    def ping(self, data: bytes) -> None:
        async def ping() -> None:
            pong = await self.ws.ping(data)
            await pong.wait()

        self.thread.run(ping)

    def close(self, code: int, reason: str) -> None:
        self.thread.run(lambda: self.ws.aclose(code, reason))

    def recv_close(self) -> tuple[int, str]:
        with contextlib.suppress(WebsocketsClosed):
            message = self.recv()
            raise AssertionError(f"received {message!r} instead of a Close")
        assert self.ws.close_code is not None
        assert self.ws.close_reason is not None
        return self.ws.close_code, self.ws.close_reason

    def release(self) -> None:
        self.thread.run(self.ws.aclose)
        self.thread.stop()


class _Aiohttp(PeerClient):
    def __init__(
        self,
        url: str,
        loop: LoopThread,
        subprotocols: Sequence[str],
        headers: Sequence[tuple[str, str]],
        tls: ssl.SSLContext | None,
        *,
        observe_pongs: bool,
    ) -> None:
        self.loop = loop

        async def connect() -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
            session = aiohttp.ClientSession()
            try:
                ws = await session.ws_connect(
                    url,
                    protocols=subprotocols,
                    headers=list(headers),
                    ssl=tls if tls is not None else True,
                    max_msg_size=MAX_SIZE,
                    autoping=not observe_pongs,
                    timeout=aiohttp.ClientWSTimeout(ws_close=WAIT),
                )
            except BaseException:
                await session.close()
                raise
            return session, ws

        self.session, self.ws = loop.call(connect())
        self.subprotocol = self.ws.protocol

    def send(self, message: Message) -> None:
        if isinstance(message, str):
            self.loop.call(self.ws.send_str(message))
        else:
            self.loop.call(self.ws.send_bytes(message))

    def send_fragments(self, fragments: Sequence[Message]) -> None:
        raise NotImplementedError("aiohttp cannot send a fragmented message")

    def _receive(self) -> aiohttp.WSMessage:
        return self.loop.call(self.ws.receive(timeout=WAIT))

    def recv(self) -> Message:
        msg = self._receive()
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
        data: Message = msg.data
        return data

    def ping(self, data: bytes) -> None:
        self.loop.call(self.ws.ping(data))
        msg = self._receive()
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.PONG, data), msg

    def close(self, code: int, reason: str) -> None:
        assert self.loop.call(self.ws.close(code=code, message=reason.encode()))

    def recv_close(self) -> tuple[int, str]:
        msg = self._receive()
        assert msg.type is aiohttp.WSMsgType.CLOSE, msg
        code: int = msg.data
        reason: str = msg.extra or ""
        return code, reason

    def release(self) -> None:
        async def release() -> None:
            await self.ws.close()
            await self.session.close()

        self.loop.call(release())


class _WebsocketClient(PeerClient):
    def __init__(
        self,
        url: str,
        subprotocols: Sequence[str],
        headers: Sequence[tuple[str, str]],
        tls: ssl.SSLContext | None,
    ) -> None:
        options: dict[str, Any] = {}
        if subprotocols:
            options["subprotocols"] = list(subprotocols)
        if tls is not None:
            options["sslopt"] = {"context": tls}
        self.ws = websocket.create_connection(
            url, header=[f"{name}: {value}" for name, value in headers], timeout=WAIT, **options
        )
        self.subprotocol = self.ws.getsubprotocol()

    def send(self, message: Message) -> None:
        if isinstance(message, str):
            self.ws.send_text(message)
        else:
            self.ws.send_bytes(message)

    def send_fragments(self, fragments: Sequence[Message]) -> None:
        opcode = websocket.ABNF.OPCODE_TEXT
        if isinstance(fragments[0], bytes):
            opcode = websocket.ABNF.OPCODE_BINARY
        for index, fragment in enumerate(fragments):
            data = fragment.encode() if isinstance(fragment, str) else fragment
            fin = int(index == len(fragments) - 1)
            self.ws.send_frame(websocket.ABNF.create_frame(data, opcode, fin))
            opcode = websocket.ABNF.OPCODE_CONT

    def recv(self) -> Message:
        opcode, data = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_TEXT:
            text: str = data.decode()
            return text
        assert opcode == websocket.ABNF.OPCODE_BINARY, (opcode, data)
        binary: bytes = data
        return binary

    def ping(self, data: bytes) -> None:
        self.ws.ping(data)
        opcode, payload = self.ws.recv_data(control_frame=True)
        assert (opcode, payload) == (websocket.ABNF.OPCODE_PONG, data)

    def close(self, code: int, reason: str) -> None:
        self.ws.close(status=code, reason=reason, timeout=WAIT)

    def recv_close(self) -> tuple[int, str]:
        # websocket-client answers the Close (with 1000) before returning it.
        opcode, payload = self.ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE, (opcode, payload)
        (code,) = struct.unpack("!H", payload[:2])
        return code, payload[2:].decode()

    def release(self) -> None:
        self.ws.shutdown()  # type: ignore[no-untyped-call]
