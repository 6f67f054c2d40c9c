"""What every driver shares that is plumbing, not policy: the public names
they all export, TLS contexts, a resolver that never holds up Ctrl+C or the
interpreter's exit, and listening sockets.

Every rule lives in the core (``sansws.endpoint``, ``sansws.ops``,
``sansws.serving``, and ``sansws.contract``, which runs the procedures and
holds the async drivers' connection API); this module only does the system
calls those rules need in the same way for every driver.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import functools
import ipaddress
import os
import socket
import ssl as ssl_module
import stat
import threading
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from sansws.auth import basic_auth
from sansws.broadcasting import broadcast
from sansws.endpoint import Response
from sansws.errors import *  # noqa: F403 - every driver exports every exception
from sansws.events import Request
from sansws.options import SERVE, settle
from sansws.routing import Router
from sansws.serving import ServerState, bind_plan, with_port
from sansws.session import TLS, Target

#: The names every driver module exports besides its own Connection,
#: Handler, PingWaiter, ProcessRequest, Server, connect and serve: the
#: exceptions, Request and Response, Router, basic_auth and broadcast.
# Spelt out rather than taken from errors.__all__: type checkers follow only
# a literal (tests/drivers/test_driver_exports.py checks that none is missing).
__all__ = [
    "BroadcastSkipped", "CloseTimeout", "ConnectionClosed", "ConnectionClosedError",  # noqa: F405
    "ConnectionClosedOK", "HandshakeError", "InvalidHeader", "InvalidMessage",  # noqa: F405
    "InvalidState", "InvalidStatus", "InvalidURI", "LocalProtocolError", "NegotiationError",  # noqa: F405
    "OpenTimeout", "PayloadTooBig", "PingTimeout", "ProtocolError", "RedirectError",  # noqa: F405
    "Request", "Response", "TooManyFragments", "UnsafeHeader", "WebSocketError",  # noqa: F405
    "WebSocketTimeout", "Router", "basic_auth", "broadcast",  # noqa: F405
]

# ---------------------------------------------------------------- TLS


def tls_choice(ssl: object) -> TLS:
    """What a ``connect(..., ssl=...)`` argument asks for (see
    :data:`sansws.session.TLS`)."""
    if ssl is None or ssl is False:
        return None
    if ssl is True:
        return "default"
    if isinstance(ssl, ssl_module.SSLContext):
        return "custom"
    raise TypeError(f"connect(): ssl must be an ssl.SSLContext, True, False or None, not {ssl!r}")


@functools.cache
def default_context() -> ssl_module.SSLContext:
    """The context for ``wss://`` when the application gave none: created
    once (loading the trust store takes milliseconds), verifying
    certificates and host names."""
    return ssl_module.create_default_context()


def client_context(target: Target, ssl: object) -> ssl_module.SSLContext | None:
    """The TLS context for an attempt's ``target``, as the session chose."""
    if not target.tls:
        return None
    if target.custom_tls:
        assert isinstance(ssl, ssl_module.SSLContext)
        return ssl
    return default_context()


# ---------------------------------------------------------------- names


def numeric_address(host: str, port: int) -> list[Any] | None:
    """``getaddrinfo`` results for an IP literal, which need no lookup; else
    ``None``."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)


def resolve(host: str, port: int) -> concurrent.futures.Future[list[Any]]:
    """``getaddrinfo`` results for a TCP connection to ``host``: an IP literal
    converted at once, a name looked up in a daemon thread of its own.

    ``getaddrinfo`` cannot be interrupted. A daemon thread lets the caller
    stop waiting for the future at once (Ctrl+C, a deadline, a cancellation)
    and is never joined at exit, unlike the threads of asyncio's default
    executor; an abandoned lookup's thread ends when the resolver returns.
    """
    future: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
    numeric = numeric_address(host, port)
    if numeric is not None:
        future.set_result(numeric)
        return future

    def lookup() -> None:
        if future.set_running_or_notify_cancel():  # not abandoned already
            try:
                future.set_result(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
            except BaseException as exc:  # handed to the waiter
                future.set_exception(exc)

    threading.Thread(target=lookup, name="sansws-resolve", daemon=True).start()
    return future


# ---------------------------------------------------------------- serving


def server_state(
    options: Mapping[str, Any], ssl: object, handler: Any, process_request: Any, run: Any = None
) -> ServerState[Any]:
    """The lifecycle of a ``serve(handler, ..., ssl=ssl, **options)``, its
    options checked before anything listens; ``run``, if given, is called
    instead of ``handler`` (and calls it)."""
    settings = settle(options, SERVE, "serve()")
    if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
        raise TypeError(f"serve(): ssl must be an ssl.SSLContext or None, not {ssl!r}")
    if settings["reuse_port"] and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("serve(): reuse_port: this platform has no SO_REUSEPORT")
    tls = bool(ssl)
    return ServerState(settings, handler=handler, process_request=process_request, tls=tls, run=run)


def passive_addresses(host: str | None, port: int) -> list[Any] | None:
    """``getaddrinfo`` results to listen on for every interface
    (``host=None``) or an IP literal, which need no lookup; else ``None``."""
    if host is not None and numeric_address(host, port) is None:
        return None
    flags = socket.AI_PASSIVE | (socket.AI_NUMERICHOST if host is not None else 0)
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)


def listen(
    state: ServerState[Any], port: int, addresses: list[Any] | None
) -> tuple[list[socket.socket], tuple[str, int] | None]:
    """The server's listening, non-blocking sockets: on ``unix_path`` (see
    :func:`listen_unix`), or on every address in ``addresses``
    (``getaddrinfo`` results for its host), all on one port (see
    :func:`sansws.serving.bind_plan`). With a Unix socket, also its path and
    inode for :func:`remove_unix`."""
    backlog, path, given = (state.settings[k] for k in ("backlog", "unix_path", "sock"))
    if path is not None:
        return [listen_unix(path, backlog)], (path, os.stat(path).st_ino)
    if given is not None:
        given.listen(backlog)
        given.setblocking(False)
        return [given], None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in bind_plan(addresses or ()):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if state.settings["reuse_port"]:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(with_port(address, port))
            port = sock.getsockname()[1]  # port 0: the others take the first one's
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets, None


def listen_unix(path: str, backlog: int) -> socket.socket:
    """A listening, non-blocking Unix socket at ``path``.

    A socket file left behind by a server that is gone (connecting to it is
    refused) is replaced; one a server still listens on, or a file that is
    not a socket, is an error (``OSError`` with ``EADDRINUSE`` or
    ``EEXIST``).
    """
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise FileExistsError(errno.EEXIST, f"{path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except ConnectionRefusedError:
                os.unlink(path)  # stale: its server is gone
            else:
                raise OSError(errno.EADDRINUSE, f"a server is listening on {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def remove_unix(unix: tuple[str, int] | None) -> None:
    """Remove the socket file a server created, unless another file took
    its place meanwhile."""
    if unix is not None:
        with contextlib.suppress(OSError):
            if os.stat(unix[0]).st_ino == unix[1]:
                os.unlink(unix[0])


def port(sockets: Any, unix: object) -> int | None:
    """A server's TCP port (the same on every socket), ``None`` for a Unix
    socket."""
    address = sockets[0].getsockname() if sockets else None  # a str for a Unix socket
    return int(address[1]) if isinstance(address, tuple) else None


_C = TypeVar("_C")


class ServerView(Generic[_C]):
    """The read-only attributes every driver's server offers."""

    _state: ServerState[Any]
    _port: int | None

    @property
    def port(self) -> int | None:
        """The TCP port the server listens on, the same on every address
        (``None`` for a Unix socket)."""
        return self._port

    @property
    def connections(self) -> set[_C]:
        """The open connections."""
        return self._state.connections
