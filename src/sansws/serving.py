"""A server's lifecycle, decided once for every driver.

A driver owns its listeners, its accept loop and the threads or tasks that
run connections. What they mean is decided here:

* a connection accepted while the server shuts down is refused
  (:meth:`ServerState.admit` returns ``False``: abort it);
* :meth:`ServerState.shutdown` hands back every connection, each of which
  the driver ends with :meth:`Endpoint.shutdown
  <sansws.endpoint.Endpoint.shutdown>`: 1001 (going away) for an open one, a
  dropped transport for one still in its opening handshake;
* the server is done (``serve_forever()`` and ``wait_closed()`` return) once
  it shut down and every connection it admitted was discarded, which a
  driver does when the connection's procedure (:func:`sansws.ops.serve`)
  ended.

Binding follows one rule too (:func:`bind_plan`): every address a host name
resolves to, on one port even when the port is 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from . import ops
from .connection import ServerConnection, State
from .endpoint import Endpoint
from .ops import Clock, Procedure, Report
from .options import SERVER_CONNECTION, names
from .routing import Router

_OPEN = State.OPEN

__all__ = ["ACCEPT_RETRY_DELAY", "ServerState", "accept_failed", "bind_plan", "with_port"]


class _HasState(Protocol):
    @property
    def state(self) -> State: ...


_C = TypeVar("_C", bound=_HasState)


class ServerState(Generic[_C]):
    """The connections of one server and whether it is shutting down.

    Args:
        settings: The server's settled options (``settle(options, SERVE,
            "serve()")``).
        handler: The application's handler, as :func:`sansws.ops.serve`
            calls it.
        process_request: The application's hook, or ``None``.
        tls: Whether the server runs TLS over each accepted transport.
        run: Called instead of ``handler``, when a driver wraps it (and
            calls ``handler`` from there).

    Drivers whose connections run in several threads call it with their
    server's lock held.
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        handler: Callable[..., Any],
        process_request: Callable[..., Any] | None = None,
        tls: bool = False,
        run: Callable[..., Any] | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"serve(): the handler is not callable: {handler!r}")
        self.settings = settings
        self._connection_settings = {
            name: settings[name] for name in names(SERVER_CONNECTION) if name in settings
        }
        self._connection_settings["stream_messages"] = False
        self._handler = run or handler
        self._process_request = process_request
        # A router as the handler answers before the handshake (see ops.serve).
        self._router = handler if isinstance(handler, Router) else None
        self._tls = tls
        self._connections: set[_C] = set()
        #: Whether :meth:`shutdown` was called.
        self.shutting_down = False

    def endpoint(self, now: float) -> Endpoint:
        """The endpoint of a connection accepted at ``now`` (its open timeout
        runs from there)."""
        settings = self.settings
        return Endpoint(
            ServerConnection._settled(self._connection_settings),
            now,
            max_queue=settings["max_queue"],
            write_limit=settings["write_limit"],
        )

    def serve(self, endpoint: Endpoint, connection: object, clock: Clock) -> Procedure[None]:
        """The procedure that serves ``connection`` (see
        :func:`sansws.ops.serve`)."""
        return ops.serve(
            endpoint,
            connection,
            clock,
            handler=self._handler,
            process_request=self._process_request,
            tls=self._tls,
            extra_headers=self.settings["extra_headers"],
            select_subprotocol=self.settings["select_subprotocol"],
            process_response=self.settings["process_response"],
            router=self._router,
        )

    def admit(self, connection: _C) -> bool:
        """Track a newly accepted connection; ``False`` (abort it) once the
        server is shutting down."""
        if self.shutting_down:
            return False
        self._connections.add(connection)
        return True

    def discard(self, connection: _C) -> bool:
        """Forget a connection whose procedure ended; return whether the
        server is now :attr:`done`."""
        self._connections.discard(connection)
        return self.done

    def shutdown(self) -> list[_C]:
        """Stop admitting; return the connections to end (see
        :meth:`Endpoint.shutdown <sansws.endpoint.Endpoint.shutdown>`), or
        nothing if the server was already shutting down."""
        if self.shutting_down:
            return []
        self.shutting_down = True
        return list(self._connections)

    @property
    def binds(self) -> bool:
        """Whether the server binds TCP addresses of its own (resolving its
        host first), rather than ``unix_path`` or a given ``sock``."""
        return self.settings["unix_path"] is None and self.settings["sock"] is None

    @property
    def done(self) -> bool:
        """Whether the server shut down and every connection ended."""
        return self.shutting_down and not self._connections

    @property
    def connections(self) -> set[_C]:
        """The open connections: accepted by the handshake and not closed.
        Safe to read while other threads admit and discard (the set is
        copied first)."""
        return {c for c in self._connections.copy() if c.state is _OPEN}


def accept_failed(error: OSError) -> Report:
    """What to log when ``accept()`` fails (out of descriptors, memory):
    the server keeps serving, and retries after a short pause."""
    return Report(logging.ERROR, f"accept() failed: {error}; retrying in 0.1 s")


#: How long an accept loop pauses after ``accept()`` failed.
ACCEPT_RETRY_DELAY = 0.1

_AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]


def bind_plan(addresses: Iterable[_AddrInfo]) -> list[_AddrInfo]:
    """The addresses to bind, from ``getaddrinfo`` results for the server's
    host: every one, each distinct address once, in the resolver's order;
    with port 0 the port the first socket got is used for the others (see
    :func:`with_port`), so that the server has one port."""
    seen: set[tuple[int, tuple[Any, ...]]] = set()
    plan: list[_AddrInfo] = []
    for info in addresses:
        key = (info[0], info[4][:2])
        if key not in seen:
            seen.add(key)
            plan.append(info)
    return plan


def with_port(address: Sequence[Any], port: int) -> tuple[Any, ...]:
    """``address`` (a socket address tuple) with ``port``."""
    return (address[0], port, *address[2:])
