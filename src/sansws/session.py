"""One client ``connect``, across all its attempts: where to connect, the
redirects to follow, and the open-timeout budget.

:func:`sansws.ops.open_client` runs the loop below for every driver (time
always comes from the driver's clock)::

    session = ClientSession(url, open_timeout=10, max_redirects=10)
    attempt = session.start(now)
    while True:
        # 1. open a transport to attempt.target before attempt.deadline
        #    (DNS, TCP, TLS with attempt.target.server_hostname); at the
        #    deadline: raise session.timed_out();
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .connection import ClientConnection, State
from .errors import (
    HandshakeError,
    InvalidURI,
    OpenTimeout,
    RedirectError,
    WebSocketError,
)
from .events import Accepted, Rejected
from .handshake import REDIRECT_STATUSES
from .headers import Headers
from .options import CLIENT_CONNECTION, CONNECT, names, settle
from .uri import WebSocketURI, parse_uri

if TYPE_CHECKING:
    from typing import Unpack

    from .options import ClientOptions

__all__ = ["TLS", "Attempt", "ClientSession", "Target"]

TLS = Literal["default", "custom"] | None
"""What TLS the application configured: ``None`` (the URL's scheme
decides, with a default context), ``"default"`` (TLS asked for, with a
default context: a driver's ``ssl=True``) or ``"custom"`` (the application's
own context: ``ssl=context``)."""

# The options each attempt's ClientConnection takes from the session's;
# extra_headers and open_timeout change from one attempt to the next.
_PER_CONNECTION = tuple(
    name
    for name in names(CLIENT_CONNECTION)
    if name not in {"extra_headers", "open_timeout", "stream_messages"}
)

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
        custom_tls: Run TLS with the application's context (the driver's
            ``ssl`` argument) rather than with
            :func:`ssl.create_default_context`.
    """

    host: str
    port: int
    tls: bool
    server_hostname: str | None
    unix_path: str | None
    uri: WebSocketURI
    custom_tls: bool = False


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
        tls: What TLS the application configured (see :data:`TLS`).
        **options: The options of every driver's ``connect()``
            (:class:`~sansws.options.ClientOptions`, docs/options.md).
            ``open_timeout`` covers DNS, TCP, TLS, the handshake and every
            redirect hop; ``unix_path`` connects every attempt to a Unix
            socket, and then redirects are only followed within the same
            origin; ``extra_headers`` are sent on every attempt, except that
            ``Authorization`` and ``Cookie`` are dropped once a redirect
            leaves the original origin; ``on_redirect(status, url)`` is
            called each time a redirect is followed.

    Raises:
        InvalidURI: ``url`` is not a valid WebSocket URI.
        ValueError: TLS was configured for a ``ws://`` URL, or an option is
            out of range.
        TypeError: An option is unknown or of the wrong type.
    """

    def __init__(self, url: str, *, tls: TLS = None, **options: Unpack[ClientOptions]) -> None:
        self._setup(url, settle(options, CONNECT, "ClientSession()"), tls)

    @classmethod
    def from_options(
        cls, url: str, options: Mapping[str, Any], *, tls: TLS = None, caller: str = "connect()"
    ) -> ClientSession:
        """A session for a driver's ``connect(url, **options)``: errors in
        the options name ``caller``."""
        session = cls.__new__(cls)
        session._setup(url, settle(options, CONNECT, caller), tls)
        return session

    def _setup(self, url: str, settings: dict[str, Any], tls: TLS) -> None:
        self.uri = parse_uri(url)
        if tls is not None and not self.uri.secure:
            # It would be silently ignored; a redirect from ws:// to wss://
            # still uses TLS, with a default context.
            raise ValueError("ssl was given for a ws:// URL; use wss://")
        #: The settled options (every one of :class:`~sansws.options.ClientOptions`).
        self.settings = settings
        self.open_timeout: float | None = settings["open_timeout"]
        self.max_redirects: int = settings["max_redirects"]
        self.unix_path: str | None = settings["unix_path"]
        self.extra_headers: Headers = settings["extra_headers"]
        self.on_redirect: Callable[[int, str], object] | None = settings["on_redirect"]
        self._custom_tls = tls == "custom"
        self._connection_settings = {name: settings[name] for name in _PER_CONNECTION}
        self._connection_settings["stream_messages"] = False
        self._deadline: float | None = None
        # Validate the options once, before any I/O, by building the first
        # connection's request (an unsafe header raises here).
        # The first attempt then uses it: its handshake timer gets the whole
        # budget, which is what is left when start() runs.
        self._first: ClientConnection | None = self._build_connection(
            self.uri, self.extra_headers, self.open_timeout
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

    def timed_out(self) -> OpenTimeout:
        """The error for a step that reached the deadline: a transport step
        (DNS, TCP, TLS) or the handshake, as every step reports it."""
        return OpenTimeout(f"timed out opening {self.uri} after {self.open_timeout} seconds")

    def _check_deadline(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline:
            raise self.timed_out()

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
            raise self.timed_out()
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
        self._check_deadline(now)
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
            custom_tls=self._custom_tls and uri.secure,
        )
        return Attempt(target, connection, self._deadline, hops, by, tuple(history))

    def _build_connection(
        self, uri: WebSocketURI, headers: Headers, open_timeout: float | None
    ) -> ClientConnection:
        settings = dict(self._connection_settings, extra_headers=headers, open_timeout=open_timeout)
        return ClientConnection._settled(uri, settings)
