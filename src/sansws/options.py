"""Every option of a connection, a ``connect()`` and a ``serve()``, described
once: its type, its default, how it is checked, and what it means.

The typed dictionaries below are what a type checker sees
(``connect(url, **options: Unpack[ClientOptions])``); :data:`OPTIONS` is what
runs. :func:`settle` fills in the defaults and checks every value before any
I/O, so that a misspelt option or a value out of range fails at once, in
every driver, with the same error naming the function that was called::

    >>> settle({"max_mesage_size": 1}, CONNECT, "connect()")
    Traceback (most recent call last):
      ...
    TypeError: connect() got an unexpected keyword argument 'max_mesage_size' \
    (did you mean 'max_message_size'?)

The drivers' own options (``ssl``, a server's ``process_request``, the sync
driver's ``keepalive_thread``) are keyword arguments of their functions, since
their types depend on the I/O model.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypedDict

from ._version import __version__
from .extensions.permessage_deflate import Compression, PerMessageDeflate
from .headers import Headers, HeadersLike

if TYPE_CHECKING:
    from .extensions.base import ClientExtensionFactory, ServerExtensionFactory

__all__ = [
    "CLIENT_CONNECTION",
    "CONNECT",
    "DEFAULT_USER_AGENT",
    "OPTIONS",
    "SERVE",
    "SERVER_CONNECTION",
    "ClientConnectionOptions",
    "ClientOptions",
    "Option",
    "ServerConnectionOptions",
    "ServerOptions",
    "settle",
]

DEFAULT_USER_AGENT: Final = f"sansws/{__version__}"

#: The scopes an option belongs to.
CLIENT_CONNECTION: Final = "ClientConnection"
SERVER_CONNECTION: Final = "ServerConnection"
CONNECT: Final = "connect"
SERVE: Final = "serve"
_BOTH_CONNECTIONS = frozenset({CLIENT_CONNECTION, SERVER_CONNECTION})
_EVERYWHERE = frozenset({CLIENT_CONNECTION, SERVER_CONNECTION, CONNECT, SERVE})
_CLIENTS = frozenset({CLIENT_CONNECTION, CONNECT})
_SERVERS = frozenset({SERVER_CONNECTION, SERVE})
_DRIVERS = frozenset({CONNECT, SERVE})


# ---------------------------------------------------------------- typing


class _Common(TypedDict, total=False):
    max_message_size: int | None
    max_fragments: int | None
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float | None
    open_timeout: float | None
    compression: Compression
    max_header_line: int
    max_headers: int
    max_body_size: int


class _ClientHandshake(TypedDict, total=False):
    subprotocols: Sequence[str]
    extra_headers: HeadersLike
    origin: str | None
    extensions: Sequence[ClientExtensionFactory]
    user_agent: str | None


class _ServerHandshake(TypedDict, total=False):
    subprotocols: Sequence[str]
    extensions: Sequence[ServerExtensionFactory]
    server_header: str | None


class _Driver(TypedDict, total=False):
    max_queue: int | None
    write_limit: int
    unix_path: str | os.PathLike[str] | None


class ClientConnectionOptions(_Common, _ClientHandshake, total=False):
    """The options of :class:`~sansws.ClientConnection`."""

    stream_messages: bool


class ServerConnectionOptions(_Common, _ServerHandshake, total=False):
    """The options of :class:`~sansws.ServerConnection`."""

    stream_messages: bool


class ClientOptions(_Common, _ClientHandshake, _Driver, total=False):
    """The options every driver's ``connect()`` takes."""

    max_redirects: int
    on_redirect: Callable[[int, str], object] | None


class ServerOptions(_Common, _ServerHandshake, _Driver, total=False):
    """The options every driver's ``serve()`` takes."""

    extra_headers: HeadersLike
    backlog: int
    sock: Any
    reuse_port: bool
    select_subprotocol: Callable[[Any, Sequence[str]], object] | None
    process_response: Callable[[Any, Any, Any], object] | None


# ---------------------------------------------------------------- checks

Check = Callable[[str, Any], Any]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(minimum: int, *, optional: bool = False) -> Check:
    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        what = f"an int >= {minimum}" + (" or None" if optional else "")
        if not _is_int(value):
            raise TypeError(f"{name} must be {what}, not {value!r}")
        if value < minimum:
            raise ValueError(f"{name} must be {what}, not {value!r}")
        return value

    return check


def _seconds(name: str, value: Any) -> Any:
    if value is None:
        return None
    what = "a positive number of seconds or None"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be {what}, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be {what}, not {value!r}")
    return float(value)


def _text(*, optional: bool) -> Check:
    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str{' or None' if optional else ''}, not {value!r}")
        return value

    return check


def _flag(name: str, value: Any) -> Any:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value


def _subprotocols(name: str, value: Any) -> Any:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of str, not {value!r}")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise TypeError(f"{name} must be a sequence of str, not {value!r}")
    return items  # the handshake checks that each is a valid name


def _headers(name: str, value: Any) -> Any:
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be headers (a mapping or (name, value) pairs), not {value!r}")
    try:
        return Headers(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be headers (a mapping or (name, value) pairs), not {value!r}"
        ) from exc


def _compression(name: str, value: Any) -> Any:
    if value is None or value == "deflate" or isinstance(value, PerMessageDeflate):
        return value
    raise ValueError(f'{name} must be "deflate", a PerMessageDeflate or None, not {value!r}')


def _extensions(name: str, value: Any) -> Any:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a sequence of extension factories, not {value!r}")
    return tuple(value)


def _path(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name} must be a path or None, not {value!r}")
    return os.fspath(value)


def _listening_socket(name: str, value: Any) -> Any:
    # A socket.socket, without importing socket into the core.
    if value is None:
        return None
    if not all(callable(getattr(value, m, None)) for m in ("accept", "getsockname", "listen")):
        raise TypeError(f"{name} must be a bound socket or None, not {value!r}")
    address = value.getsockname()
    # Unbound, listen() would bind every interface on a random port.
    if not address or (isinstance(address, tuple) and address[1] == 0):
        raise ValueError(f"{name} must be bound (to an address and port, or a path)")
    return value


def _callback(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, not {value!r}")
    return value


# ---------------------------------------------------------------- the options


@dataclass(frozen=True, slots=True)
class Option:
    """One option: where it applies, its default, its check and its meaning.

    Attributes:
        name: The keyword argument.
        default: Its value when not given.
        check: ``check(name, value)`` returns the value to use (normalized:
            a tuple for a sequence, :class:`~sansws.Headers` for headers) or
            raises :class:`TypeError` (wrong type) or :class:`ValueError`
            (out of range).
        scopes: Where it is accepted: :data:`CLIENT_CONNECTION`,
            :data:`SERVER_CONNECTION`, :data:`CONNECT`, :data:`SERVE`.
        doc: What it means, for the documentation.
    """

    name: str
    default: Any
    check: Check
    scopes: frozenset[str]
    doc: str


def _option(name: str, default: Any, check: Check, scopes: frozenset[str], doc: str) -> Option:
    return Option(name, default, check, scopes, " ".join(doc.split()))


OPTIONS: Final[Mapping[str, Option]] = {
    option.name: option
    for option in (
        _option(
            "max_message_size",
            2**20,
            _integer(0, optional=True),
            _EVERYWHERE,
            """Largest incoming message, in bytes after decompression; a larger
            one fails the connection with 1009 as soon as a frame header
            announces it. None: no limit.""",
        ),
        _option(
            "max_fragments",
            4096,
            _integer(1, optional=True),
            _EVERYWHERE,
            """Most frames an incoming message may come in, empty continuation
            frames included; the frame after the last one allowed fails the
            connection with 1009. None: no limit.""",
        ),
        _option(
            "ping_interval",
            20.0,
            _seconds,
            _EVERYWHERE,
            "Seconds between keepalive Pings. None: no keepalive.",
        ),
        _option(
            "ping_timeout",
            20.0,
            _seconds,
            _EVERYWHERE,
            """Seconds to wait for the Pong answering a keepalive Ping before
            failing the connection with 1011. None: wait forever.""",
        ),
        _option(
            "close_timeout",
            10.0,
            _seconds,
            _EVERYWHERE,
            """Seconds to wait for the peer's side of the close handshake, for
            a client the server's closing of the transport after it, and for
            the last buffered bytes to be written. None: wait forever.""",
        ),
        _option(
            "open_timeout",
            10.0,
            _seconds,
            _EVERYWHERE,
            """Seconds for the whole opening: for a client DNS, TCP, TLS, the
            handshake and every redirect; for a server TLS, the request,
            process_request and the answer, counted from the TCP accept.
            None: no limit.""",
        ),
        _option(
            "compression",
            "deflate",
            _compression,
            _EVERYWHERE,
            """"deflate" negotiates permessage-deflate with default settings, a
            PerMessageDeflate with those settings, None not at all.""",
        ),
        _option(
            "max_header_line",
            8190,
            _integer(1),
            _EVERYWHERE,
            "Longest request, status or header line of the opening handshake, in bytes.",
        ),
        _option(
            "max_headers",
            128,
            _integer(1),
            _EVERYWHERE,
            "Most header lines in the opening handshake.",
        ),
        _option(
            "max_body_size",
            65536,
            _integer(0),
            _EVERYWHERE,
            """Most body bytes a client keeps from a refusal, and a server
            tolerates in a request.""",
        ),
        _option(
            "subprotocols",
            (),
            _subprotocols,
            _EVERYWHERE,
            """Subprotocols a client offers, or a server supports, most
            preferred first (a sequence of str).""",
        ),
        _option(
            "extensions",
            (),
            _extensions,
            _EVERYWHERE,
            """Extension factories to offer or negotiate, besides
            permessage-deflate (see compression).""",
        ),
        _option(
            "extra_headers",
            (),
            _headers,
            frozenset({CLIENT_CONNECTION, CONNECT, SERVE}),
            """More headers: a client's request headers (Authorization and
            Cookie are not sent to another origin after a redirect), a
            server's headers on every 101 response.""",
        ),
        _option(
            "origin",
            None,
            _text(optional=True),
            _CLIENTS,
            "The Origin header a client sends, if any.",
        ),
        _option(
            "user_agent",
            DEFAULT_USER_AGENT,
            _text(optional=True),
            _CLIENTS,
            "The User-Agent header a client sends. None: none.",
        ),
        _option(
            "server_header",
            DEFAULT_USER_AGENT,
            _text(optional=True),
            _SERVERS,
            "The Server header a server sends. None: none.",
        ),
        _option(
            "stream_messages",
            False,
            _flag,
            _BOTH_CONNECTIONS,
            """Deliver each message as MessageChunk events as its bytes arrive
            instead of one Message once complete.""",
        ),
        _option(
            "max_redirects",
            10,
            _integer(0),
            frozenset({CONNECT}),
            "Most HTTP redirects a client follows (301, 302, 303, 307, 308). 0: none.",
        ),
        _option(
            "on_redirect",
            None,
            _callback,
            frozenset({CONNECT}),
            """Called as on_redirect(status, url) each time a redirect is
            followed, before the next attempt.""",
        ),
        _option(
            "max_queue",
            16,
            _integer(1, optional=True),
            _DRIVERS,
            """Received messages waiting for the application above which the
            driver stops reading; it resumes when a quarter of them are
            left. One that arrives while `recv()` waits does not count.
            None: no limit.""",
        ),
        _option(
            "write_limit",
            32768,
            _integer(0),
            _DRIVERS,
            """Bytes waiting to be written above which sending waits, and
            reading pauses; both resume once a quarter of them are left.""",
        ),
        _option(
            "unix_path",
            None,
            _path,
            _DRIVERS,
            """A Unix socket path: a client connects to it (the URL still gives
            the Host header and the path), a server listens on it instead of
            host and port.""",
        ),
        _option(
            "backlog",
            100,
            _integer(0),
            frozenset({SERVE}),
            "The listen backlog of each listening socket.",
        ),
        _option(
            "sock",
            None,
            _listening_socket,
            frozenset({SERVE}),
            """An already bound socket (TCP or Unix) to serve on instead of
            host and port or `unix_path` (a socket inherited from a process
            manager, or shared by workers); the server listens on it and
            closes it when it closes.""",
        ),
        _option(
            "reuse_port",
            False,
            _flag,
            frozenset({SERVE}),
            """Set SO_REUSEPORT on each listening socket, so that several
            processes listen on one port and the kernel spreads the
            connections among them (Linux, the BSDs, macOS).""",
        ),
        _option(
            "select_subprotocol",
            None,
            _callback,
            frozenset({SERVE}),
            """Called as select_subprotocol(ws, offered) with the
            subprotocols the client offered, in its order, once the request
            is known to be a valid handshake; returns the one to use or None
            for none (then `subprotocols` is not consulted). May be async in
            the async drivers; an exception answers 500.""",
        ),
        _option(
            "process_response",
            None,
            _callback,
            frozenset({SERVE}),
            """Called as process_response(ws, request, response) with the
            answer about to be sent: a Response with status 101 and its
            headers for an accepted handshake, else the refusal. Returns
            None to send it, or a Response to send instead (a 101 with other
            headers, or a refusal). May be async in the async drivers; an
            exception answers 500.""",
        ),
    )
}


def names(scope: str) -> tuple[str, ...]:
    """The options accepted in ``scope``, in documentation order."""
    return tuple(name for name, option in OPTIONS.items() if scope in option.scopes)


def settle(options: Mapping[str, Any], scope: str, caller: str) -> dict[str, Any]:
    """Every option of ``scope``: the given ones checked and normalized, the
    others at their defaults.

    Args:
        options: The keyword arguments as given.
        scope: :data:`CLIENT_CONNECTION`, :data:`SERVER_CONNECTION`,
            :data:`CONNECT` or :data:`SERVE`.
        caller: How the user called it, for the messages (``"connect()"``).

    Raises:
        TypeError: An option is unknown in ``scope``, or of the wrong type.
        ValueError: An option's value is out of range, or contradicts
            another (``sock`` with ``unix_path`` or ``reuse_port``).
    """
    settled: dict[str, Any] = {}
    for name, value in options.items():
        option = OPTIONS.get(name)
        if option is None or scope not in option.scopes:
            raise TypeError(f"{caller} got an unexpected keyword argument {name!r}" + _hint(name))
        try:
            settled[name] = option.check(name, value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{caller}: {exc}") from None
    for name, option in OPTIONS.items():
        if scope in option.scopes and name not in settled:
            settled[name] = option.default
    if settled.get("sock") is not None:
        for other in ("unix_path", "reuse_port"):
            if settled[other]:
                raise ValueError(f"{caller}: sock is already bound: {other} cannot apply to it")
    return settled


# websockets' names for sansws options: a spelling match would mislead
# (max_size is closest to max_body_size, which limits something else).
_RENAMED = {
    "max_size": "max_message_size",
    "additional_headers": "extra_headers",
    "user_agent_header": "user_agent",
}


def _hint(name: str) -> str:
    renamed = _RENAMED.get(name)
    if renamed is not None:
        return f" (websockets' {name} is {renamed!r} here)"
    close = difflib.get_close_matches(name, list(OPTIONS), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
