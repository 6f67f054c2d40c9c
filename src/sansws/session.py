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
import urllib.parse
from collections.abc import Sequence
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
        self.connection_options = connection_options
        self._deadline: float | None = None
        # Validate the options once, before any I/O, by building the first
        # connection's request (an unsafe header raises here).
        self._build_connection(self.uri, self.extra_headers, None)

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
        return self._attempt(
            new_uri, headers, now, hops=attempt.hops + 1, by=(status, str(new_uri)), history=history
        )

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
    and the start of the body of a rejection, or the error itself."""
    if isinstance(error, RedirectError):
        return str(error)
    if isinstance(error, InvalidStatus):
        snippet = error.body[:200].decode("utf-8", "replace").strip()
        snippet = " ".join(snippet.split())
        return f"server rejected the connection: HTTP {error.status}" + (
            f": {snippet}" if snippet else ""
        )
    return str(error) or type(error).__name__
