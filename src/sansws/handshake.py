"""The opening handshake (RFC 6455 section 4), on top of h11.

h11 parses and produces the HTTP/1.1 messages; this module adds what makes
them a WebSocket handshake: building the client's upgrade request, validating
it on the server, choosing a subprotocol and extensions, and checking the
server's answer on the client.

:class:`ClientHandshake` and :class:`ServerHandshake` are used by the
connections and are not needed to use sansws. They hold no state beyond one
handshake and return plain results; the connection decides what they mean
for its state.

Size limits apply before h11 sees the bytes: the length of each header line
and the number of header lines are checked as the head arrives, so a peer
cannot make either side buffer more than ``max_header_line * (max_headers +
1)`` bytes of head. A rejection's body is read up to ``max_body_size`` bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import h11

from .errors import (
    HandshakeError,
    InvalidHeader,
    InvalidMessage,
    LocalProtocolError,
    NegotiationError,
    UnsafeHeader,
)
from .events import Accepted, Rejected, Request
from .extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParams,
    ServerExtensionFactory,
)
from .headers import (
    ExtensionOffer,
    Headers,
    HeadersLike,
    build_extension_list,
    parse_extension_list,
    parse_token_list,
    validate_header,
)
from .uri import WebSocketURI

__all__ = [
    "ClientHandshake",
    "HandshakeLimits",
    "ServerHandshake",
    "accept_extensions",
    "accept_key",
    "negotiate_extensions",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The constant RFC 6455 section 1.3 appends to the key before hashing."""

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value answering ``Sec-WebSocket-Key`` ``key``."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


DEFAULT_MAX_HEADER_LINE = 8190
DEFAULT_MAX_HEADERS = 128
DEFAULT_MAX_BODY_SIZE = 65536


@dataclass(frozen=True, slots=True)
class HandshakeLimits:
    """Bounds on what a peer may send during the opening handshake.

    Attributes:
        max_header_line: Longest request/status line or header line, in
            bytes, line ending excluded (default 8190, as many HTTP servers).
        max_headers: Most header lines (default 128).
        max_body_size: Most bytes of a rejection's body kept for the
            application (default 65536); the rest is not read.
    """

    max_header_line: int = DEFAULT_MAX_HEADER_LINE
    max_headers: int = DEFAULT_MAX_HEADERS
    max_body_size: int = DEFAULT_MAX_BODY_SIZE


class _HeadGuard:
    """Enforces the line-length and line-count limits on an HTTP head as its
    bytes arrive, before they reach h11."""

    __slots__ = ("_cr", "_done", "_limits", "_line", "_lines")

    def __init__(self, limits: HandshakeLimits) -> None:
        self._limits = limits
        self._line = 0  # length of the current, unfinished line
        self._lines = 0  # complete lines so far
        self._cr = False  # whether the unfinished line ends with CR
        self._done = False

    def feed(self, data: bytes) -> None:
        """Account for ``data``; raise :class:`InvalidMessage` on a breach."""
        if self._done:
            return
        limits = self._limits
        if not self._lines and not self._line and len(data) <= limits.max_header_line:
            # A whole head in one read, shorter than one line may be (the
            # usual request): no line can be too long, and its lines are
            # counted without a loop.
            end = data.find(b"\r\n\r\n")
            if end >= 0 and data.count(b"\n", 0, end) <= limits.max_headers:
                self._done = True
                return
        pos = 0
        while True:
            end = data.find(b"\n", pos)
            if end < 0:
                if pos < len(data):
                    self._line += len(data) - pos
                    # A read may end between the CR and the LF of a line.
                    self._cr = data[-1] == 0x0D
                if self._line - self._cr > limits.max_header_line:
                    raise InvalidMessage(f"header line longer than {limits.max_header_line} bytes")
                return
            length = self._line + end - pos
            if (data[end - 1] == 0x0D) if end > pos else self._cr:
                length -= 1
            self._cr = False
            if length > limits.max_header_line:
                raise InvalidMessage(f"header line longer than {limits.max_header_line} bytes")
            self._line = 0
            pos = end + 1
            if length == 0 and self._lines > 0:
                self._done = True  # the blank line ending the head
                return
            self._lines += 1
            if self._lines > limits.max_headers + 1:  # the first line is not a header
                raise InvalidMessage(f"more than {limits.max_headers} headers")


def _h11_max_size(limits: HandshakeLimits) -> int:
    return (limits.max_header_line + 2) * (limits.max_headers + 2)


def _decode_headers(h11_headers: h11._headers.Headers) -> Headers:
    # raw_items keeps the names' original case; HTTP header bytes are Latin-1.
    return Headers._of(
        tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in h11_headers.raw_items()
        )
    )


def _has_token(headers: Headers, name: str, token: str) -> bool:
    return any(item.lower() == token for item in parse_token_list(headers.get_all(name)))


# Headers the opening handshake itself sets: an application's copy would
# contradict them (a second key, another version) or bypass negotiation.
_HANDSHAKE_HEADERS = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
    }
)


def _prepare_headers(headers: HeadersLike, *, upgrade: bool = True) -> list[tuple[str, str]]:
    """Validate the application's extra headers; those of a request or a 101
    (``upgrade``) may not set what the handshake sets."""
    items = list(Headers(headers))
    for name, value in items:
        validate_header(name, value)
        if upgrade and name.lower() in _HANDSHAKE_HEADERS:
            raise UnsafeHeader(
                name, value, "the handshake sets this header (use subprotocols= or extensions=)"
            )
    return items


def _replaced(own: list[tuple[str, str]], replace: HeadersLike) -> list[tuple[str, str]]:
    """The headers a hook gave for a 101, checked against the handshake's
    own ones (``own``), which it may move but not change, add to or remove
    (nor may it add a Content-Length or Transfer-Encoding)."""
    given = list(Headers(replace))
    for name, value in given:
        validate_header(name, value)
    theirs = sorted((n.lower(), v) for n, v in given if n.lower() in _HANDSHAKE_HEADERS)
    if theirs != sorted((n.lower(), v) for n, v in own):
        raise LocalProtocolError(
            "a 101's Upgrade, Connection and Sec-WebSocket-* headers are the handshake's: "
            f"they cannot be changed (expected {own!r})"
        )
    return given


def _h11_headers(items: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    # validate_header allows Latin-1 values (obs-text); h11 would encode a
    # str as ASCII and fail on them.
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in items]


@dataclass(frozen=True, slots=True)
class ClientResult:
    """What the server's answer means: exactly one of ``accepted``,
    ``rejected`` and ``error`` is set."""

    accepted: Accepted | None = None
    extension: Extension | None = None
    trailing: bytes = b""
    rejected: Rejected | None = None
    error: HandshakeError | None = None


class ClientHandshake:
    """Builds a client's upgrade request and checks the server's answer.

    The request is built (and every header checked) in the constructor: an
    unsafe header raises :class:`~sansws.errors.UnsafeHeader` before a byte
    is produced.
    """

    def __init__(
        self,
        uri: WebSocketURI,
        *,
        subprotocols: Sequence[str] = (),
        extra_headers: HeadersLike = (),
        origin: str | None = None,
        extensions: Sequence[ClientExtensionFactory] = (),
        user_agent: str | None = None,
        limits: HandshakeLimits = HandshakeLimits(),
    ) -> None:
        self.uri = uri
        self.subprotocols = tuple(subprotocols)
        self.extensions = tuple(extensions)
        self.limits = limits
        self.key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        headers: list[tuple[str, str]] = [
            ("Host", uri.host_header),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self.key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if origin is not None:
            headers.append(("Origin", origin))
        if uri.user_info is not None:
            credentials = ":".join(uri.user_info).encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(credentials).decode()))
        if self.subprotocols:
            headers.append(("Sec-WebSocket-Protocol", ", ".join(self.subprotocols)))
        offers = extension_offers(self.extensions)
        if offers:
            headers.append(("Sec-WebSocket-Extensions", build_extension_list(offers)))
        if user_agent is not None:
            headers.append(("User-Agent", user_agent))
        extra = _prepare_headers(extra_headers)
        # An application's own header replaces a default one of the same
        # name (except the handshake's own), so it can set User-Agent.
        overridable = {"host", "user-agent", "origin", "authorization"}
        replaced = {name.lower() for name, _ in extra} & overridable
        headers = [(n, v) for n, v in headers if n.lower() not in replaced]
        headers.extend(extra)
        for name, value in headers:
            validate_header(name, value)
        for subprotocol in self.subprotocols:
            validate_header("Sec-WebSocket-Protocol", subprotocol)
            if not subprotocol or "," in subprotocol or subprotocol != subprotocol.strip():
                raise LocalProtocolError(f"invalid subprotocol name {subprotocol!r}")
        self.request_headers = Headers(headers)
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_h11_max_size(limits))
        try:
            self.request_bytes = self._h11.send(
                h11.Request(method="GET", target=uri.resource_name, headers=_h11_headers(headers))
            ) + (self._h11.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError as exc:  # pragma: no cover - validated above
            raise LocalProtocolError(str(exc)) from exc
        self._guard = _HeadGuard(limits)
        self._response: h11.Response | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._answered = False  # a byte of the answer arrived
        self._secure = uri.secure

    def receive_data(self, data: bytes) -> ClientResult | None:
        """Feed the server's bytes (``b""`` at end of stream); ``None`` until
        the answer is complete."""
        if not self._answered:
            error = self._no_answer(data)
            if error is not None:
                return ClientResult(error=error)
        try:
            if self._response is None:
                self._guard.feed(data)
            self._h11.receive_data(data)
            return self._next_result()
        except h11.RemoteProtocolError as exc:
            return ClientResult(error=InvalidMessage(f"invalid HTTP response: {exc}"))
        except HandshakeError as exc:
            return ClientResult(error=exc)

    def _no_answer(self, data: bytes) -> InvalidMessage | None:
        # The usual ways of talking plain HTTP to a TLS port, said plainly
        # rather than in h11's words.
        self._answered = bool(data)
        if not data:
            hint = "" if self._secure else " (if this port serves TLS, use wss://)"
            return InvalidMessage(f"the server closed the connection without an answer{hint}")
        if not self._secure and data[0] in (0x15, 0x16) and data[1:2] == b"\x03":
            return InvalidMessage("the server answered with TLS: use wss:// for this port")
        return None

    def _next_result(self) -> ClientResult | None:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.ConnectionClosed):
                if self._response is not None:
                    return self._rejected()
                raise InvalidMessage("connection closed during the opening handshake")
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101:
                    return self._switched(event)
                continue  # 1xx other than 101: RFC 9110 says to ignore it
            if isinstance(event, h11.Response):
                self._response = event
                if event.status_code in REDIRECT_STATUSES:
                    # The body of a redirect carries nothing the client needs;
                    # not waiting for it means a slow body cannot delay it.
                    return self._rejected()
                continue
            if isinstance(event, h11.Data):
                keep = self.limits.max_body_size - self._body_size
                if keep > 0:
                    self._body.append(bytes(event.data[:keep]))
                self._body_size += len(event.data)
                if self._body_size >= self.limits.max_body_size:
                    return self._rejected()
                continue
            if isinstance(event, h11.EndOfMessage):
                return self._rejected()
            raise InvalidMessage(
                f"unexpected HTTP event {type(event).__name__}"
            )  # pragma: no cover

    def _rejected(self) -> ClientResult:
        assert self._response is not None
        headers = _decode_headers(self._response.headers)
        status = self._response.status_code
        location = headers.get("Location") if status in REDIRECT_STATUSES else None
        return ClientResult(
            rejected=Rejected(
                status=status, headers=headers, body=b"".join(self._body), location=location
            )
        )

    def _switched(self, event: h11.InformationalResponse) -> ClientResult:
        headers = _decode_headers(event.headers)
        if not _has_token(headers, "Upgrade", "websocket"):
            raise InvalidHeader("Upgrade", headers.get("Upgrade"), "expected websocket")
        if not _has_token(headers, "Connection", "upgrade"):
            raise InvalidHeader("Connection", headers.get("Connection"), "expected Upgrade")
        accept_values = headers.get_all("Sec-WebSocket-Accept")
        if len(accept_values) != 1:
            raise InvalidHeader(
                "Sec-WebSocket-Accept",
                headers.get("Sec-WebSocket-Accept"),
                None if not accept_values else "more than one value",
            )
        if accept_values[0] != accept_key(self.key):
            raise InvalidHeader("Sec-WebSocket-Accept", accept_values[0], "wrong accept hash")
        subprotocol = self._check_subprotocol(headers)
        extension, negotiated = accept_extensions(
            self.extensions, headers.get_all("Sec-WebSocket-Extensions")
        )
        trailing, _closed = self._h11.trailing_data
        return ClientResult(
            accepted=Accepted(subprotocol=subprotocol, extensions=negotiated, headers=headers),
            extension=extension,
            trailing=bytes(trailing),
        )

    def _check_subprotocol(self, headers: Headers) -> str | None:
        values = parse_token_list(headers.get_all("Sec-WebSocket-Protocol"))
        if not values:
            return None
        if len(values) > 1:
            raise NegotiationError(
                "Sec-WebSocket-Protocol", ", ".join(values), "more than one subprotocol"
            )
        if values[0] not in self.subprotocols:
            raise NegotiationError("Sec-WebSocket-Protocol", values[0], "not offered")
        return values[0]


def accept_extensions(
    factories: Iterable[ClientExtensionFactory], raw: Sequence[str]
) -> tuple[Extension | None, tuple[ExtensionOffer, ...]]:
    """A client's side of the extension agreement: the extension that the
    server's ``Sec-WebSocket-Extensions`` values ``raw`` accepted, built by
    the matching factory, and the agreement as negotiated.

    Raises:
        NegotiationError: The values are malformed, accept more than one
            extension, or one that was not offered.
    """
    if not raw:
        return None, ()
    try:
        answered = parse_extension_list(raw)
    except ValueError as exc:
        raise NegotiationError("Sec-WebSocket-Extensions", ", ".join(raw), str(exc)) from None
    if not answered:
        return None, ()  # only empty list elements: no extension
    by_name = {factory.name: factory for factory in factories}
    if len(answered) > 1:
        raise NegotiationError(
            "Sec-WebSocket-Extensions", ", ".join(raw), "more than one extension accepted"
        )
    name, params = answered[0]
    factory = by_name.get(name)
    if factory is None:
        raise NegotiationError("Sec-WebSocket-Extensions", ", ".join(raw), "not offered")
    extension = factory.accept(params)
    return extension, (extension.negotiated(),)


def negotiate_extensions(
    factories: Iterable[ServerExtensionFactory], offered: Iterable[ExtensionOffer]
) -> tuple[Extension | None, ExtensionParams]:
    """A server's side of the extension agreement: the extension the first
    willing factory accepts among the client's ``offered`` extensions, and
    the parameters of its answer.

    Raises:
        NegotiationError: An offer is malformed.
    """
    offered = list(offered)
    for factory in factories:
        offers = [params for name, params in offered if name == factory.name]
        if not offers:
            continue
        result = factory.negotiate(offers)
        if result is not None:
            params, extension = result
            return extension, params
    return None, ()


@dataclass(frozen=True, slots=True)
class ServerResult:
    """A complete request: the event for the application and the bytes that
    followed the request (frames a client sent without waiting), or, for bytes
    that are not an HTTP request at all, the error and the response to send."""

    request: Request | None = None
    trailing: bytes = b""
    error: HandshakeError | None = None
    response: bytes = b""


class ServerHandshake:
    """Parses and validates a client's upgrade request and produces the
    answer."""

    def __init__(
        self,
        *,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[ServerExtensionFactory] = (),
        server_header: str | None = None,
        limits: HandshakeLimits = HandshakeLimits(),
    ) -> None:
        self.subprotocols = tuple(subprotocols)
        self.extensions = tuple(extensions)
        if server_header is not None:
            validate_header("Server", server_header)
        self.server_header = server_header
        self.limits = limits
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_h11_max_size(limits))
        self._guard = _HeadGuard(limits)
        self._request: h11.Request | None = None
        self._body_size = 0

    def receive_data(self, data: bytes) -> ServerResult | None:
        """Feed the client's bytes (``b""`` at end of stream); ``None`` until
        the request is complete."""
        try:
            if self._request is None:
                self._guard.feed(data)
            self._h11.receive_data(data)
            return self._next_result()
        except h11.RemoteProtocolError as exc:
            error = InvalidMessage(f"invalid HTTP request: {exc}")
        except InvalidMessage as exc:
            error = exc
        return ServerResult(error=error, response=self._error_response(error))

    def _next_result(self) -> ServerResult | None:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return None
            if isinstance(event, h11.ConnectionClosed):
                raise InvalidMessage("connection closed during the opening handshake")
            if isinstance(event, h11.Request):
                self._request = event
                continue
            if isinstance(event, h11.Data):
                # A GET upgrade has no business carrying a body; tolerate a
                # small one, but never buffer it.
                self._body_size += len(event.data)
                if self._body_size > self.limits.max_body_size:
                    raise InvalidMessage("request body too large")
                continue
            if isinstance(event, h11.EndOfMessage):
                assert self._request is not None
                trailing, _closed = self._h11.trailing_data
                return ServerResult(
                    request=self._build_request(self._request), trailing=bytes(trailing)
                )
            raise InvalidMessage(
                f"unexpected HTTP event {type(event).__name__}"
            )  # pragma: no cover

    def _build_request(self, event: h11.Request) -> Request:
        headers = _decode_headers(event.headers)
        path = event.target.decode("latin-1")
        subprotocols = tuple(parse_token_list(headers.get_all("Sec-WebSocket-Protocol")))
        extensions: tuple[ExtensionOffer, ...] = ()
        error: HandshakeError | None = None
        try:
            extensions = tuple(parse_extension_list(headers.get_all("Sec-WebSocket-Extensions")))
        except ValueError as exc:
            error = InvalidHeader(
                "Sec-WebSocket-Extensions", headers.get("Sec-WebSocket-Extensions"), str(exc)
            )
        if error is None:
            error = self._validate(event, headers)
        return Request(
            path=path,
            headers=headers,
            subprotocols=subprotocols,
            extensions=extensions,
            error=error,
        )

    @staticmethod
    def _validate(event: h11.Request, headers: Headers) -> HandshakeError | None:
        if event.method != b"GET":
            return InvalidMessage(f"the method must be GET, not {event.method.decode('latin-1')}")
        if event.http_version != b"1.1":
            return InvalidMessage(f"HTTP/{event.http_version.decode()} is not supported")
        if not _has_token(headers, "Upgrade", "websocket"):
            return InvalidHeader("Upgrade", headers.get("Upgrade"), "expected websocket")
        if not _has_token(headers, "Connection", "upgrade"):
            return InvalidHeader("Connection", headers.get("Connection"), "expected Upgrade")
        keys = headers.get_all("Sec-WebSocket-Key")
        if len(keys) != 1:
            return InvalidHeader(
                "Sec-WebSocket-Key",
                None if not keys else ", ".join(keys),
                None if not keys else "more than one key",
            )
        try:
            raw_key = base64.b64decode(keys[0].encode("latin-1"), validate=True)
        except binascii.Error:
            raw_key = b""
        if len(raw_key) != 16:
            return InvalidHeader("Sec-WebSocket-Key", keys[0], "not 16 bytes in base64")
        versions = headers.get_all("Sec-WebSocket-Version")
        if versions != ["13"]:
            return InvalidHeader(
                "Sec-WebSocket-Version",
                ", ".join(versions) if versions else None,
                "only version 13 is supported",
            )
        return None

    def select_subprotocol(self, offered: Sequence[str]) -> str | None:
        """The first subprotocol the client offered that the server supports,
        or ``None``."""
        for subprotocol in offered:
            if subprotocol in self.subprotocols:
                return subprotocol
        return None

    def accept(
        self,
        request: Request,
        subprotocol: str | None,
        extra_headers: HeadersLike,
        *,
        replace: HeadersLike | None = None,
    ) -> tuple[bytes, Extension | None, Headers]:
        """The 101 response for a valid ``request``, the extension in use and
        the response headers.

        ``replace``, if given, is every header of the 101 instead (what a
        ``process_response`` hook returned): it must hold the handshake's own
        headers (``Upgrade``, ``Connection`` and the ``Sec-WebSocket-*`` ones
        this method sets) unchanged, and ``extra_headers`` is then not used.

        Raises:
            LocalProtocolError: ``subprotocol`` was not offered, a header is
                unsafe, or ``replace`` changes the handshake's own headers.
            NegotiationError: An extension offer is malformed.
        """
        if subprotocol is not None and subprotocol not in request.subprotocols:
            raise LocalProtocolError(f"subprotocol {subprotocol!r} was not offered by the client")
        extra = _prepare_headers(extra_headers)
        headers: list[tuple[str, str]] = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(request.headers["Sec-WebSocket-Key"])),
        ]
        if subprotocol is not None:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        extension, response_params = negotiate_extensions(self.extensions, request.extensions)
        if extension is not None:
            headers.append(
                (
                    "Sec-WebSocket-Extensions",
                    build_extension_list([(extension.name, response_params)]),
                )
            )
        if replace is not None:
            headers = _replaced(headers, replace)
        else:
            if self.server_header is not None:
                headers.append(("Server", self.server_header))
            headers.extend(extra)
        # Written by hand rather than through h11, which would validate every
        # header again (each one already is) at a cost that shows in
        # handshakes per second; the connection drops h11 right after.
        lines = ["HTTP/1.1 101 Switching Protocols", *(f"{n}: {v}" for n, v in headers), "", ""]
        return "\r\n".join(lines).encode("latin-1"), extension, Headers._of(tuple(headers))

    def reject(self, status: int, headers: HeadersLike = (), body: bytes = b"") -> bytes:
        """An HTTP response refusing the handshake.

        ``Content-Length`` (except for 204 and 304, which have no body) and
        ``Connection: close`` are added; a ``Content-Type`` of
        ``text/plain; charset=utf-8`` is added for a non-empty body unless
        ``headers`` sets one.

        Raises:
            LocalProtocolError: ``status`` is not a final status other than
                101, a 204 or 304 would carry a body, or a header is unsafe.
        """
        if not 200 <= status <= 599:
            raise LocalProtocolError(f"cannot reject a handshake with status {status}")
        bodiless = status in (204, 304)
        if body and bodiless:
            # Checked before h11 sees the response: h11 would refuse the body
            # only after taking the head, and could then send nothing else.
            raise LocalProtocolError(f"a {status} response cannot carry a body")
        items = [
            (n, v)
            for n, v in _prepare_headers(headers, upgrade=False)
            if n.lower() not in ("content-length", "connection", "transfer-encoding")
        ]
        if body and not any(n.lower() == "content-type" for n, _ in items):
            items.append(("Content-Type", "text/plain; charset=utf-8"))
        if self.server_header is not None and not any(n.lower() == "server" for n, _ in items):
            items.append(("Server", self.server_header))
        if not bodiless:
            items.append(("Content-Length", str(len(body))))
        items.append(("Connection", "close"))
        try:
            parts = [self._h11.send(h11.Response(status_code=status, headers=_h11_headers(items)))]
            # A response to HEAD carries no body, only its Content-Length
            # (RFC 9110 section 9.3.2); h11 refuses to send one.
            if body and (self._request is None or self._request.method != b"HEAD"):
                parts.append(self._h11.send(h11.Data(data=body)))
            parts.append(self._h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot send this response: {exc}") from exc
        return b"".join(part or b"" for part in parts)

    def error_response(self, error: HandshakeError) -> bytes:
        """The standard answer to an invalid request: 426 with the supported
        version for a version mismatch, 405 for a method other than GET,
        426 with ``Upgrade: websocket`` for a request that does not ask for
        the upgrade (plain HTTP), else 400; the body states the problem."""
        return self._error_response(error)

    def _error_response(self, error: HandshakeError) -> bytes:
        return self.reject(*self.error_answer(error))

    def error_answer(self, error: HandshakeError) -> tuple[int, list[tuple[str, str]], bytes]:
        """The status, headers and body of :meth:`error_response` (before
        :meth:`reject` adds ``Content-Length``, ``Connection: close`` and
        ``Content-Type``)."""
        headers: list[tuple[str, str]] = []
        status = 400
        advice = ""
        if isinstance(error, InvalidHeader) and error.name == "Sec-WebSocket-Version":
            status = 426
            headers.append(("Sec-WebSocket-Version", "13"))
        elif self._request is not None and self._request.method != b"GET":
            status = 405
            headers.append(("Allow", "GET"))
        elif isinstance(error, InvalidHeader) and error.name in ("Upgrade", "Connection"):
            # A plain HTTP request (a browser's, a health check's) to a
            # WebSocket endpoint: RFC 9110 section 15.5.22.
            status = 426
            headers.append(("Upgrade", "websocket"))
            advice = "This is a WebSocket endpoint: connect to it with a WebSocket client.\n"
        body = f"Failed to open a WebSocket connection: {error}.\n{advice}".encode()
        return status, headers, body


def extension_offers(factories: Iterable[ClientExtensionFactory]) -> list[ExtensionOffer]:
    """The ``(name, params)`` offers the factories make, in order."""
    return [(factory.name, params) for factory in factories for params in factory.offers()]
