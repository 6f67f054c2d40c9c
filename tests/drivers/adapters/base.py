"""The test-facing interface every driver adapter implements.

The shared behavioural suite (tests/drivers/test_driver_*.py) is written once,
as async tests, against this interface; each driver has an adapter module
tests/drivers/adapters/<name>.py that defines ``make_driver() -> Driver``.

How to write an adapter:

* ``Driver.name`` is "sync", "asyncio" or "trio"; ``Driver.anyio_backend`` is
  the anyio backend the tests run on ("trio" for trio, else "asyncio").
* ``Driver.connect(url, **options)`` is an async context manager yielding a
  :class:`Conn`. ``options`` are the driver's own ``connect()`` options,
  passed through unchanged (``open_timeout``, ``subprotocols``, ``ssl``,
  ``unix_path``, ``max_queue``, ...). Errors raised by the driver propagate
  unchanged (``InvalidStatus``, ``RedirectError``, ``OpenTimeout``,
  ``OSError``...). Leaving the block closes the connection (``close()``).
* ``Driver.serve(handler, **options)`` is an async context manager yielding a
  :class:`Server` that is already accepting. ``handler`` is a name from
  :data:`HANDLERS` or a :class:`Handler` with parameters; the adapter runs
  it with the driver's native handler API (a thread per connection in sync,
  tasks in asyncio and trio). ``options`` go to the driver's ``serve()``
  unchanged (host defaults to 127.0.0.1 and port to 0), except
  ``process_request``, which is given here as a plain function
  ``(request: sansws.events.Request) -> Response | None`` and which the adapter
  wraps into the driver's native form ``process_request(ws, request)``;
  with ``process_request_delay=seconds`` the native hook first sleeps that
  long, the driver's way (a blocking sleep in sync, an awaited one else).
  ``native_process_request`` is given as ``process_request`` unchanged (a
  hook made by the driver module's ``basic_auth``). ``handler`` may also be
  a mapping of route patterns to handler names or :class:`Handler`: the
  adapter passes the driver module's ``Router`` of the native handlers.
  Leaving the block shuts the server down and waits for it.
* ``Driver.client_block(url, error, **options)`` opens a connection with the
  driver's own client block (``with connect()`` / ``async with connect()``)
  and raises ``error`` in it; the exception propagates.
* Blocking drivers run their calls in worker threads
  (``anyio.to_thread.run_sync``); async drivers call their API directly.
* :class:`Conn` wraps one connection (client side in tests). ``recv`` takes a
  timeout and raises the builtin ``TimeoutError`` when it expires
  (``anyio.fail_after`` does that for async drivers). ``ping`` returns a
  :class:`PingWaiter`; ``await waiter.wait(timeout)`` returns the latency.
  ``Conn`` is async-iterable with the driver's iteration semantics (stops on
  ConnectionClosedOK, raises ConnectionClosedError). ``native`` is the
  driver's own connection object, for attributes not listed here.

Standard server handlers (implement each natively, with these semantics):

* ``echo``: send every received message back, unchanged, until closed.
* ``hold``: receive until the connection closes, then append a
  :class:`Record` (path, messages received, close code and reason from the
  ``ConnectionClosed`` exception) to ``Server.records``.
* ``close``: ``code=1000, reason=""``: close at once with them, then record
  like ``hold`` (messages empty).
* ``report``: send one text message, ``json.dumps`` of ``{"path": ...,
  "headers": [[name, value], ...], "subprotocol": ..., "route": ...,
  "path_params": {name: [type name, str(value)]}, "username": ...}`` from the
  connection's request and attributes (see :func:`report_of`), then behave
  like ``hold``.
* ``send``: ``messages=[...]`` (str or bytes), ``close_code=None``: send
  each message in order; then close with ``close_code`` if given (and
  ``close_reason``, default ""), else behave like ``hold``.
* ``raise``: raise ``RuntimeError("handler failed")`` at once (the driver
  then closes with 1011).
* ``stall``: never read; return when the server shuts down (wait on
  ``Server`` shutdown, or sleep in short bounded steps until the connection
  is closed by the server). Used to prove the driver stops reading.

Records are appended from whatever thread or task runs the handler;
``Server.wait_records`` polls for them with a bounded timeout.
"""

from __future__ import annotations

import abc
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import anyio

from sansws.endpoint import Response
from sansws.events import Request

__all__ = [
    "HANDLERS",
    "Conn",
    "Driver",
    "Handler",
    "HandlerSpec",
    "PingWaiter",
    "ProcessRequest",
    "Record",
    "Server",
    "native_handler",
    "report_of",
]

HANDLERS = ("echo", "hold", "close", "report", "send", "raise", "stall")

#: process_request as the tests give it; adapters wrap it natively.
ProcessRequest = Callable[[Request], Response | None]

Message = str | bytes


@dataclass(frozen=True)
class Handler:
    """A standard server handler and its parameters: ``Handler("close",
    {"code": 4000, "reason": "bye"})``; see :func:`handler`."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in HANDLERS:
            raise ValueError(f"unknown handler {self.name!r}")


def handler(name: str, **params: Any) -> Handler:
    """``handler("send", messages=["a", b"b"], close_code=1000)``."""
    return Handler(name, params)


def as_handler(spec: str | Handler) -> Handler:
    return Handler(spec) if isinstance(spec, str) else spec


#: What ``serve()`` takes as its handler: one, or a router's patterns.
HandlerSpec = str | Handler | dict[str, str | Handler]


def native_handler(spec: HandlerSpec, router: Any, make: Callable[[Handler], Any]) -> Any:
    """The driver's handler for ``spec``: ``make(Handler)`` for one, the
    driver module's ``router`` class over them for a mapping."""
    if isinstance(spec, dict):
        return router({pattern: make(as_handler(each)) for pattern, each in spec.items()})
    return make(as_handler(spec))


def report_of(ws: Any) -> str:
    """The ``report`` handler's message for the native connection ``ws``."""
    request = ws.request
    assert request is not None
    return json.dumps(
        {
            "path": request.path,
            "headers": [[name, value] for name, value in request.headers],
            "subprotocol": ws.subprotocol,
            "route": ws.route,
            "path_params": {k: [type(v).__name__, str(v)] for k, v in ws.path_params.items()},
            "username": ws.username,
        }
    )


@dataclass(frozen=True)
class Record:
    """What a ``hold``-like handler saw, once its connection closed."""

    path: str
    messages: list[Message]
    close_code: int | None
    close_reason: str | None


class PingWaiter(abc.ABC):
    """A sent Ping; ``wait`` returns its latency in seconds once the Pong
    arrived, raises ConnectionClosed if the connection closes first, and
    TimeoutError after ``timeout``."""

    @abc.abstractmethod
    async def wait(self, timeout: float | None = None) -> float: ...


class Conn(abc.ABC):
    """One connection, as the tests use it."""

    #: The driver's own connection object.
    native: Any

    @abc.abstractmethod
    async def send(self, message: Message | Iterable[Message], text: bool | None = None) -> None:
        """Send a message, or an iterable of fragments as one message;
        ``text`` as the driver's ``send()`` takes it."""

    @abc.abstractmethod
    async def recv(self, timeout: float | None = None, decode: bool | None = None) -> Message:
        """The next message; TimeoutError after ``timeout``; ``decode`` as
        the driver's ``recv()`` takes it."""

    @abc.abstractmethod
    async def ping(self, data: bytes | None = None) -> PingWaiter: ...

    @abc.abstractmethod
    async def pong(self, data: bytes = b"") -> None: ...

    @abc.abstractmethod
    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    @abc.abstractmethod
    async def abort(self) -> None: ...

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[Message]: ...

    # Attributes read straight from the native connection.
    @property
    def subprotocol(self) -> str | None:
        return self.native.subprotocol  # type: ignore[no-any-return]

    @property
    def request(self) -> Any:
        return self.native.request

    @property
    def response(self) -> Any:
        return self.native.response

    @property
    def close_code(self) -> int | None:
        return self.native.close_code  # type: ignore[no-any-return]

    @property
    def close_reason(self) -> str | None:
        return self.native.close_reason  # type: ignore[no-any-return]

    @property
    def state(self) -> Any:
        return self.native.state

    @property
    def latency(self) -> float:
        return self.native.latency  # type: ignore[no-any-return]

    @property
    def local_address(self) -> Any:
        return self.native.local_address

    @property
    def remote_address(self) -> Any:
        return self.native.remote_address


class Server(abc.ABC):
    """A running server."""

    #: The driver's own server object.
    native: Any
    #: What ``hold``-like handlers saw (appended from handler threads/tasks).
    records: list[Record]
    #: "ws" or "wss".
    scheme: str = "ws"

    def __init__(self) -> None:
        self.records = []
        self._lock = threading.Lock()

    @property
    @abc.abstractmethod
    def port(self) -> int: ...

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/"

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Stop accepting, close every connection with 1001, and return once
        every handler finished."""

    def add_record(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)

    async def wait_records(self, count: int = 1, timeout: float = 5.0) -> list[Record]:
        """The records, once there are at least ``count`` (TimeoutError after
        ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.records) >= count:
                    return list(self.records)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.records)} records after {timeout} s")
            await anyio.sleep(0.01)


class Driver(abc.ABC):
    """One driver, as the tests use it."""

    name: str
    anyio_backend: str

    @abc.abstractmethod
    def connect(self, url: str, **options: Any) -> AbstractAsyncContextManager[Conn]: ...

    @abc.abstractmethod
    def serve(
        self, handler: str | Handler, **options: Any
    ) -> AbstractAsyncContextManager[Server]: ...

    @abc.abstractmethod
    async def client_block(self, url: str, error: BaseException, **options: Any) -> None:
        """Raise ``error`` inside the driver's own client block."""

    @abc.abstractmethod
    async def server_block(self, error: BaseException) -> None:
        """Raise ``error`` inside the driver's own server block, on a server
        that has no connection."""

    def __repr__(self) -> str:
        return f"<driver {self.name}>"
