"""sansws as uvicorn's WebSocket protocol::

    uvicorn app:app --ws sansws.drivers.uvicorn:WebSocketProtocol

or ``uvicorn.run(app, ws="sansws.drivers.uvicorn:WebSocketProtocol")``, or
``uvicorn.Config(app, ws=WebSocketProtocol)``. Any ASGI application runs on
it unchanged (Starlette's and FastAPI's ``WebSocket`` included).

uvicorn's options map to sansws' ones: ``ws_max_size`` is
``max_message_size``, ``ws_ping_interval`` and ``ws_ping_timeout`` the
keepalive (0 or ``None`` disables it), ``ws_per_message_deflate`` turns
``compression`` on or off, ``root_path``, ``server_header`` and
``date_header`` reach the scope and the answers as with uvicorn's own
backends. Reading pauses as soon as a received message waits for the
application, as with uvicorn's other backends, so ``ws_max_queue`` has no
effect (one that arrives while the application waits in ``receive()`` does
not pause it).

How it works: uvicorn's HTTP protocol hands over the transport and the
request bytes; they go into a :class:`sansws.drivers.asyncio.Connection`,
which carries out the core's actions, and every ASGI rule -- the events,
the answers, the disconnect codes, what happens when the application fails
-- is :class:`sansws.asgi.ASGIWebSocket`'s. This module only starts the
application's task, runs the core's procedures for its ``receive`` and
``send``, and logs what the core reports to ``uvicorn.error``.

Needs uvicorn: ``pip install 'sansws[uvicorn]'``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from typing import Any, cast

try:
    from uvicorn.config import Config
    from uvicorn.protocols.utils import (
        ClientDisconnected,
        get_local_addr,
        get_remote_addr,
        is_ssl,
    )
    from uvicorn.server import ServerState
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "sansws.drivers.uvicorn needs uvicorn: pip install 'sansws[uvicorn]'"
    ) from exc

from sansws import ServerConnection, State, asgi
from sansws.asgi import ASGIWebSocket
from sansws.contract import run
from sansws.endpoint import Wait
from sansws.errors import ConnectionClosed
from sansws.ops import Report
from sansws.options import SERVER_CONNECTION, settle

from .asyncio import Connection

__all__ = ["WebSocketProtocol"]


def _seconds(value: float | None) -> float | None:
    # uvicorn's "0 or None: no keepalive".
    return float(value) if value else None


# The connection options of each uvicorn Config and protocol class, settled
# once: checking them for every connection shows in handshakes per second.
_SETTINGS: weakref.WeakKeyDictionary[Config, dict[type, dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _settings(config: Config, protocol: type[WebSocketProtocol]) -> dict[str, Any]:
    by_class = _SETTINGS.setdefault(config, {})
    settings = by_class.get(protocol)
    if settings is None:
        options = {
            "max_message_size": config.ws_max_size,
            "ping_interval": _seconds(config.ws_ping_interval),
            "ping_timeout": _seconds(config.ws_ping_timeout),
            "compression": "deflate" if config.ws_per_message_deflate else None,
            "server_header": None,  # uvicorn's default headers carry it
            "open_timeout": None,
            **protocol.options,
        }
        caller = f"{protocol.__qualname__}.options"
        settings = by_class[protocol] = settle(options, SERVER_CONNECTION, caller)
    return settings


class _Connection(Connection):
    """The asyncio driver's connection, over a transport that uvicorn's HTTP
    protocol opened."""

    def _set_transport(self, transport: asyncio.Transport) -> None:
        mark = self._endpoint.write_mark
        set_limits = getattr(transport, "set_write_buffer_limits", None)
        if set_limits is not None:
            set_limits(high=mark.high, low=mark.low)
        self.local_address = transport.get_extra_info("sockname")
        self.remote_address = transport.get_extra_info("peername")

    def _writing(self, paused: bool) -> None:
        # With the limits above, the transport's pause_writing() means more
        # than write_limit bytes wait, resume_writing() a quarter or less.
        mark = self._endpoint.write_mark
        self._endpoint.unwritten(mark.high + 1 if paused else mark.low)
        if self._endpoint.dirty:
            self._apply(self._endpoint.actions(self._loop.time()))

    @staticmethod
    def _abort_transport(transport: asyncio.Transport) -> None:
        # uvicorn's test transports cannot abort: closing is the nearest.
        getattr(transport, "abort", transport.close)()


class WebSocketProtocol(asyncio.Protocol):
    """uvicorn's WebSocket protocol (``--ws``), on sansws: constructed by
    uvicorn's HTTP protocol for each upgrade request.

    Attributes:
        transport: The transport, once connected.
        close_timeout: Seconds to wait for the client's side of the close
            handshake (default 10); 0 gives up at once, ``None`` waits
            forever. Set it before the connection is made.
        scope: The ASGI scope, once the request arrived.
        options: sansws options uvicorn has no setting for, given by a
            subclass: ``options = {"max_fragments": None}`` (see
            docs/options.md; they take precedence over the ones translated
            from uvicorn's). Checked when the first connection is made.
    """

    options: Mapping[str, Any] = {}

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.app_state = app_state
        # uvicorn types the set with its own protocol classes.
        self.connections = cast("set[Any]", server_state.connections)
        self.tasks = server_state.tasks
        self.transport: asyncio.Transport | None = None
        self.scope: dict[str, Any] | None = None
        self.close_timeout: float | None = 10.0
        connection = ServerConnection._settled(_settings(config, type(self)))
        endpoint = asgi.endpoint(connection, self.loop.time())
        self._ws = _Connection(endpoint, self.loop)
        self._asgi = ASGIWebSocket(endpoint, default_headers=server_state.default_headers)
        self._task: asyncio.Task[None] | None = None
        # Sends waiting for the buffer to drain: a later one must not pass
        # them by taking the fast path.
        self._sending = 0

    @property
    def close_timer(self) -> asyncio.TimerHandle | None:
        """The timer running while the client's side of a close handshake
        the server started is awaited, else ``None``."""
        return self._ws._timer if self._asgi.endpoint.state is State.CLOSING else None

    # ------------------------------------------------------------------ the transport's calls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The HTTP protocol hands the transport over."""
        transport = cast(asyncio.Transport, transport)
        self.connections.add(self)
        self.transport = transport
        timeout = self.close_timeout
        connection = self._asgi.endpoint.connection
        connection.close_timeout = None if timeout is None else max(0.0, timeout)
        self._ws.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Bytes arrived: the request, then frames."""
        self._ws.data_received(data)
        if self._task is None:
            self._maybe_start()

    def eof_received(self) -> bool | None:
        """The client closed its side."""
        self._ws.eof_received()
        return None

    def pause_writing(self) -> None:
        """More than ``write_limit`` bytes wait to be written."""
        self._ws._writing(True)

    def resume_writing(self) -> None:
        """The write buffer drained to a quarter of ``write_limit``."""
        self._ws._writing(False)

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is closed."""
        self.connections.discard(self)
        self._ws.connection_lost(exc)

    def shutdown(self) -> None:
        """uvicorn is shutting down (see :meth:`ASGIWebSocket.shutdown`)."""
        self._ws._tell(self._asgi.shutdown)

    # ------------------------------------------------------------------ the application

    def _maybe_start(self) -> None:
        ws = self._ws
        if not self._asgi.start(ws._now()):
            if ws._endpoint.dirty:
                ws._apply(ws._endpoint.actions(ws._now()))
            return
        transport = self.transport
        assert transport is not None
        self.scope = self._asgi.scope(
            scheme="wss" if is_ssl(transport) else "ws",
            server=get_local_addr(transport),
            client=get_remote_addr(transport),
            root_path=self.config.root_path,
            asgi_version=self.config.asgi_version,
            state=self.app_state.copy(),
        )
        self._task = task = self.loop.create_task(self._run_asgi(self.scope))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_asgi(self, scope: dict[str, Any]) -> None:
        error: BaseException | None = None
        result: object = None
        try:
            result = await self.app(scope, self.receive, self.send)
        except BaseException as exc:
            error = exc
        ws = self._ws
        self._log(self._asgi.finished(error, result, ws._now()))
        if ws._endpoint.dirty:
            ws._apply(ws._endpoint.actions(ws._now()))
        if error is not None and not isinstance(error, Exception):
            raise error  # cancellation, KeyboardInterrupt

    async def receive(self) -> dict[str, Any]:
        """The application's ``receive()``."""
        # ASGIWebSocket.receive's loop, without a procedure's cost: it runs
        # for every message.
        ws, endpoint = self._ws, self._ws._endpoint
        while True:
            now = ws._now()
            try:
                event = self._asgi.next_event(now)
            except ConnectionClosed as exc:
                raise ClientDisconnected(str(exc)) from exc
            finally:
                if endpoint.dirty:
                    ws._apply(endpoint.actions(now))
            if event is not None:
                return event
            await ws._park(Wait.MESSAGE)

    async def send(self, message: Mapping[str, Any]) -> None:
        """The application's ``send()``.

        Raises:
            ClientDisconnected: The connection closed before this message
                could be sent (an ``OSError``, as with uvicorn's other
                backends).
        """
        ws, endpoint = self._ws, self._ws._endpoint
        try:
            if not self._sending and endpoint.ready(Wait.DRAINED):
                now = ws._now()
                try:
                    report = self._asgi.act(message, now)
                finally:
                    if endpoint.dirty:
                        ws._apply(endpoint.actions(now))
                    else:
                        ws._write(endpoint.data_to_send())
            else:
                self._sending += 1
                try:
                    report = await run(self._asgi.send(message, ws._now), ws)
                finally:
                    self._sending -= 1
        except ConnectionClosed as exc:
            raise ClientDisconnected(str(exc)) from exc
        self._log(report)

    def _log(self, report: Report | None) -> None:
        if report is not None:
            self.logger.log(report.level, report.message, exc_info=report.error)
