"""One client ``connect``, across all its attempts: where to connect, the
redirects to follow, and the open-timeout budget.

A driver connects like this (time always comes from the driver's clock)::

    session = ClientSession(url, open_timeout=10, max_redirects=10)
    attempt = session.start(now)
    while True:
        # 1. open a transport to attempt.target before attempt.deadline
        #    (DNS, TCP, TLS with attempt.target.server_hostname);
        # 2. write attempt.connection.data_to_send() and feed the answer to
        #    attempt.connection until it returns Accepted, Rejected or Closed;
        # 3. ask the session what that means:
        next_attempt = session.outcome(attempt, now)   # raises on failure
        if next_attempt is None:
            break          # attempt.connection is OPEN
        close the transport; attempt = next_attempt

Every decision is here and nowhere else: which statuses redirect (301, 302,
303, 307 and 308), how a relative Location resolves, that ``wss://`` never
redirects to ``ws://``, that credentials do not follow a redirect to another
origin, how many hops are allowed, that a loop is detected at once, and how
much of the open timeout is left for each step. A 3xx without a usable
Location, any other status, and a redirect loop fail at once with a typed
error; only a silent peer makes the caller wait, until the deadline.

Proxies are not supported yet; a proxy would add a step to :class:`Target`
(connect to the proxy, then tunnel), not change the loop above.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .connection import ClientConnection, State
from .errors import (
    HandshakeError,
    InvalidStatus,
    InvalidURI,
    OpenTimeout,
    RedirectError,
    WebSocketError,
)
from .events import Accepted, Rejected
from .handshake import REDIRECT_STATUSES
from .headers import Headers, HeadersLike
from .uri import WebSocketURI, parse_uri

__all__ = ["Attempt", "ClientSession", "Target"]

# Headers that carry credentials: never sent to an origin they were not meant for.
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})

_HTTP_SCHEMES = {"ws": "http", "wss": "https"}
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a driver opens the transport for one attempt.

    Attributes:
        host: The host to resolve and connect to.
        port: The TCP port.
        tls: Whether to run TLS over the transport.
        server_hostname: The name to send in SNI and to verify the
            certificate against (``None`` without TLS).
        unix_path: Connect to this Unix socket instead of ``host:port``.
        uri: The WebSocket URI this attempt requests.
    """

    host: str
    port: int
    tls: bool
    server_hostname: str | None
    unix_path: str | None
    uri: WebSocketURI


@dataclass(slots=True)
class Attempt:
    """One try at opening the connection: a transport target, a fresh
    :class:`~sansws.ClientConnection` and the deadline for this attempt."""

    target: Target
    connection: ClientConnection
    deadline: float | None
    #: How many redirects led to this attempt (0 for the first).
    hops: int = 0
    #: The redirect that led here: ``(status, url)``, or ``None``.
    redirected_by: tuple[int, str] | None = None
    _history: tuple[str, ...] = field(default=(), repr=False)


class ClientSession:
    """Turns a URL and options into connection attempts and a verdict.

    Args:
        url: The ``ws://`` or ``wss://`` URL to open.
        open_timeout: Seconds for the whole opening, across DNS, TCP, TLS,
            the handshake and every redirect hop (default 10); ``None`` for
            no limit.
        max_redirects: Most redirects followed (default 10); 0 follows none.
        unix_path: Connect to this Unix socket path instead of the URL's host
            and port. Redirects are then only followed within the same
            origin.
        extra_headers: Request headers sent on every attempt, except that
            ``Authorization`` and ``Cookie`` are dropped once a redirect
            leaves the original origin.
        on_redirect: Called as ``on_redirect(status, url)`` each time a
            redirect is followed, before the next attempt starts, to report
            progress (command-line tools, logs). Drivers pass it through
            from ``connect(..., on_redirect=...)``.
        **connection_options: Passed to each
            :class:`~sansws.ClientConnection` (``subprotocols``, ``origin``,
            ``max_message_size``, timers, ...). ``open_timeout`` is set per
            attempt from what is left of the budget.

    Raises:
        InvalidURI: ``url`` is not a valid WebSocket URI.
    """

    def __init__(
        self,
        url: str,
        *,
        open_timeout: float | None = 10.0,
        max_redirects: int = 10,
        unix_path: str | None = None,
        extra_headers: HeadersLike = (),
        on_redirect: Callable[[int, str], None] | None = None,
        **connection_options: Any,
    ) -> None:
        if max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, not {max_redirects!r}")
        if open_timeout is not None and not open_timeout > 0:
            raise ValueError(f"open_timeout must be positive or None, not {open_timeout!r}")
        self.uri = parse_uri(url)
        self.open_timeout = open_timeout
        self.max_redirects = max_redirects
        self.unix_path = unix_path
        self.extra_headers = Headers(extra_headers)
        self.on_redirect = on_redirect
        self.connection_options = connection_options
        self._deadline: float | None = None
        # Validate the options once, before any I/O, by building the first
        # connection's request (an unsafe header raises here).
        # The first attempt then uses it: its handshake timer gets the whole
        # budget, which is what is left when start() runs.
        self._first: ClientConnection | None = self._build_connection(
            self.uri, self.extra_headers, open_timeout
        )

    @property
    def deadline(self) -> float | None:
        """When the open timeout expires, once :meth:`start` was called."""
        return self._deadline

    def start(self, now: float) -> Attempt:
        """The first attempt; the open-timeout budget starts at ``now``."""
        if self.open_timeout is not None:
            self._deadline = now + self.open_timeout
        return self._attempt(self.uri, self.extra_headers, now, hops=0, by=None, history=())

    def check_deadline(self, now: float) -> None:
        """Raise :class:`~sansws.errors.OpenTimeout` if the budget is spent.

        Drivers call this when a transport step (DNS, TCP, TLS) gave up at
        the deadline, to fail with the same error as every other step.
        """
        if self._deadline is not None and now >= self._deadline:
            raise OpenTimeout(f"timed out opening {self.uri} after {self.open_timeout} seconds")

    def check_tls_option(self, tls_configured: bool) -> None:
        """Raise :class:`ValueError` if the application configured TLS (a
        driver's ``ssl`` argument) for a ``ws://`` URL, where it would be
        silently ignored. A redirect from ``ws://`` to ``wss://`` still
        uses TLS, with a default context."""
        if tls_configured and not self.uri.secure:
            raise ValueError("ssl was given for a ws:// URL; use wss://")

    def outcome(self, attempt: Attempt, now: float) -> Attempt | None:
        """Decide what the end of ``attempt``'s handshake means.

        Call once the connection returned :class:`~sansws.events.Accepted`,
        :class:`~sansws.events.Rejected` or :class:`~sansws.events.Closed`.

        Returns:
            ``None`` if the connection is open, or the next attempt if the
            server redirected.

        Raises:
            RedirectError: A redirect cannot be followed.
            InvalidStatus: The server answered with a status that is not a
                redirect.
            OpenTimeout: The open timeout expired.
            HandshakeError: The server's answer was not a valid handshake.
        """
        connection = attempt.connection
        if connection.state is State.OPEN or isinstance(connection.response, Accepted):
            # Accepted, even if frames that came with the response (a
            # message, a Close) already ended the connection: the
            # application reads them, then the close.
            return None
        response = connection.response
        if isinstance(response, Rejected) and response.status in REDIRECT_STATUSES:
            return self._redirect(attempt, response, now)
        error = connection.close_error
        if isinstance(error, OpenTimeout):
            raise OpenTimeout(f"timed out opening {self.uri} after {self.open_timeout} seconds")
        if isinstance(error, WebSocketError):
            raise error
        if connection.state is State.CONNECTING:
            raise ValueError("outcome() called before the handshake ended")
        raise HandshakeError("connection closed during the opening handshake")

    def _redirect(self, attempt: Attempt, response: Rejected, now: float) -> Attempt:
        status = response.status
        location = response.location
        current = attempt.target.uri
        if not location or not location.strip():
            raise RedirectError(
                f"server answered {status} without a Location header", status, location
            )
        try:
            new_uri = self._resolve(current, location.strip())
        except InvalidURI as exc:
            raise RedirectError(
                f"cannot follow {status} redirect to {location!r}: {exc.msg}", status, location
            ) from None
        if current.secure and not new_uri.secure:
            raise RedirectError(
                f"refused {status} redirect from {current} to insecure {new_uri}", status, location
            )
        if attempt.hops >= self.max_redirects:
            raise RedirectError(
                f"too many redirects (more than {self.max_redirects}); last was {status} to "
                f"{new_uri}",
                status,
                location,
            )
        history = (*attempt._history, str(current))
        if str(new_uri) in history:
            raise RedirectError(f"redirect loop: {status} back to {new_uri}", status, location)
        cross_origin = new_uri.origin != self.uri.origin
        if cross_origin and self.unix_path is not None:
            raise RedirectError(
                f"cannot follow {status} redirect to another origin ({new_uri}) over a Unix socket",
                status,
                location,
            )
        headers = self.extra_headers
        if not cross_origin and new_uri.user_info is None:
            # A relative Location carries no credentials; within the origin
            # they were given for, they still apply.
            new_uri = dataclasses.replace(new_uri, user_info=self.uri.user_info)
        if cross_origin:
            headers = Headers(
                (name, value) for name, value in headers if name.lower() not in _CREDENTIAL_HEADERS
            )
        self.check_deadline(now)
        next_attempt = self._attempt(
            new_uri, headers, now, hops=attempt.hops + 1, by=(status, str(new_uri)), history=history
        )
        if self.on_redirect is not None:
            self.on_redirect(status, str(new_uri))
        return next_attempt

    @staticmethod
    def _resolve(current: WebSocketURI, location: str) -> WebSocketURI:
        # urljoin only resolves relative references for schemes it knows, so
        # resolve against the http(s) twin of the current URI.
        base = f"{_HTTP_SCHEMES[current.scheme]}://{current.host_header}{current.resource_name}"
        joined = urllib.parse.urljoin(base, location)
        scheme, sep, rest = joined.partition("://")
        ws_scheme = _WS_SCHEMES.get(scheme.lower())
        if not sep or ws_scheme is None:
            raise InvalidURI(location, "not an http, https, ws or wss URL")
        return parse_uri(f"{ws_scheme}://{rest}")

    def _attempt(
        self,
        uri: WebSocketURI,
        headers: Headers,
        now: float,
        *,
        hops: int,
        by: tuple[int, str] | None,
        history: Sequence[str],
    ) -> Attempt:
        connection, self._first = self._first, None
        if connection is None or hops:
            remaining = None if self._deadline is None else max(self._deadline - now, 1e-9)
            connection = self._build_connection(uri, headers, remaining)
        # Arm the handshake timer now, not when the transport is up, so that it
        # ends at the session's deadline however long DNS, TCP and TLS took.
        connection.handle_timeout(now)
        unix_path = self.unix_path
        target = Target(
            host=uri.host,
            port=uri.port,
            tls=uri.secure,
            server_hostname=uri.host if uri.secure else None,
            unix_path=unix_path,
            uri=uri,
        )
        return Attempt(target, connection, self._deadline, hops, by, tuple(history))

    def _build_connection(
        self, uri: WebSocketURI, headers: Headers, open_timeout: float | None
    ) -> ClientConnection:
        return ClientConnection(
            uri, extra_headers=headers, open_timeout=open_timeout, **self.connection_options
        )


def failure_summary(error: BaseException) -> str:
    """One line describing why opening a connection failed, for command-line
    tools and logs: the status and Location of a refused redirect, the status
    and the start of the body of a rejection, or the error itself, with DNS,
    TCP and TLS errors in words (``Connection refused (...)``,
    ``TLS certificate verification failed: ...``) rather than errno numbers."""
    if isinstance(error, RedirectError):
        return str(error)
    if isinstance(error, InvalidStatus):
        snippet = error.body[:200].decode("utf-8", "replace").strip()
        snippet = " ".join(snippet.split())
        return f"server rejected the connection: HTTP {error.status}" + (
            f": {snippet}" if snippet else ""
        )
    if isinstance(error, OSError) and not isinstance(error, WebSocketError):
        return _transport_failure(error)
    return " ".join(str(error).split()) or type(error).__name__


def _transport_failure(error: OSError) -> str:
    text = " ".join(str(error.strerror or error).split()) or type(error).__name__
    # Duck-typed so that the core need not import ssl (which imports socket).
    if any(cls.__module__ == "ssl" for cls in type(error).__mro__):
        verify_message = getattr(error, "verify_message", None)
        if verify_message:
            return f"TLS certificate verification failed: {verify_message}"
        return f"TLS failed: {text}"
    if isinstance(error.errno, int) and error.errno > 0:
        # asyncio reports "Connect call failed (address)" with only the errno
        # saying why.
        name = os.strerror(error.errno)
        if name.lower() not in text.lower():
            return f"{name} ({text})"
    return text
