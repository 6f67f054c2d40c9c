"""Strategies for opening handshake requests (RFC 6455 section 4.1 and 4.2.1)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hypothesis import strategies as st

__all__ = [
    "HANDSHAKE_DEFECTS",
    "HandshakeRequest",
    "handshake_requests",
    "invalid_handshake_requests",
]

_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PATH_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%"
# Visible ASCII without leading or trailing space: what survives a round trip
# through any HTTP parser unchanged.
_VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)
_TOKEN = st.text(_TOKEN_CHARS, min_size=1, max_size=12)

_Headers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """An opening handshake request and the answer it calls for.

    Attributes:
        data: The request on the wire.
        status: The status a compliant server answers with: 101 for a valid
            request; 426 (with ``Sec-WebSocket-Version: 13``) for a missing
            or other version; 405 for a method other than GET; 400 for
            anything else that is wrong. RFC 6455 section 4.2.2 requires
            "an appropriate HTTP error code"; these are the ones it suggests
            and the ones sansws uses.
        problem: What is wrong with the request, or ``None`` if it is valid.
        defect: The name of the defect (one of :data:`HANDSHAKE_DEFECTS`),
            or ``None`` if the request is valid.
        path: The request target.
        headers: The headers as a server should report them: in order,
            names as sent, values without surrounding whitespace. Empty for
            requests that are not HTTP at all.
        subprotocols: The subprotocols offered, in order of preference.
    """

    data: bytes
    status: int = 101
    problem: str | None = None
    defect: str | None = None
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()


def _recase(draw: st.DrawFn, text: str) -> str:
    """Header names and tokens are case-insensitive: vary their case."""
    style = draw(st.sampled_from(("as is", "lower", "upper", "mixed")))
    if style == "lower":
        return text.lower()
    if style == "upper":
        return text.upper()
    if style == "mixed":
        flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
        return "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))
    return text


def _token_list(draw: st.DrawFn, token: str, others: tuple[str, ...]) -> str:
    """``token`` in a comma-separated list, alone or among ``others``."""
    items = [_recase(draw, token), *draw(st.lists(st.sampled_from(others), max_size=2))]
    items = draw(st.permutations(items))
    separator = draw(st.sampled_from((", ", ",", " , ")))
    return separator.join(items)


def _key(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class _Parts:
    """A request being built: valid until a defect is applied."""

    method: str
    path: str
    version: str
    headers: _Headers
    subprotocols: tuple[str, ...]

    def without(self, name: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != name.lower()]

    def replace(self, name: str, value: str) -> None:
        self.headers = [(n, value if n.lower() == name.lower() else v) for n, v in self.headers]


@st.composite
def _valid_parts(draw: st.DrawFn) -> _Parts:
    segments = draw(st.lists(st.text(_PATH_CHARS.replace("%", ""), max_size=8), max_size=3))
    path = "/" + "/".join(segments)
    if draw(st.booleans()):
        path += "?" + draw(st.text(_PATH_CHARS.replace("%", "") + "/?", max_size=16))
    host = draw(st.sampled_from(("example.com", "localhost:8080", "127.0.0.1:9000", "[::1]")))
    headers: _Headers = [
        (_recase(draw, "Host"), host),
        (_recase(draw, "Upgrade"), _token_list(draw, "websocket", ("h2c", "foo/1"))),
        (_recase(draw, "Connection"), _token_list(draw, "Upgrade", ("keep-alive",))),
        (_recase(draw, "Sec-WebSocket-Key"), _key(draw(st.binary(min_size=16, max_size=16)))),
        (_recase(draw, "Sec-WebSocket-Version"), "13"),
    ]
    subprotocols = tuple(draw(st.lists(_TOKEN, max_size=3, unique=True)))
    if subprotocols:
        # A list may be split over several header lines (RFC 9110 5.3).
        split = draw(st.integers(1, len(subprotocols)))
        for part in (subprotocols[:split], subprotocols[split:]):
            if part:
                headers.append((_recase(draw, "Sec-WebSocket-Protocol"), ", ".join(part)))
    optional = [
        ("Origin", st.sampled_from(("http://example.com", "https://app.example:8443"))),
        ("User-Agent", _VALUE),
        ("Sec-WebSocket-Extensions", st.just("permessage-deflate; client_max_window_bits")),
        ("X-" + draw(_TOKEN), _VALUE),
    ]
    for name, values in optional:
        if draw(st.booleans()):
            headers.append((_recase(draw, name), draw(values)))
    # Keep the order among the Sec-WebSocket-Protocol lines: it is the
    # client's order of preference.
    order = draw(st.permutations(range(len(headers))))
    protocol_lines = [i for i in order if headers[i][0].lower() == "sec-websocket-protocol"]
    order = [i for i in order if i not in protocol_lines]
    at = draw(st.integers(0, len(order)))
    order[at:at] = sorted(protocol_lines)
    return _Parts("GET", path, "1.1", [headers[i] for i in order], subprotocols)


def _serialize(draw: st.DrawFn, parts: _Parts) -> bytes:
    lines = [f"{parts.method} {parts.path} HTTP/{parts.version}"]
    for name, value in parts.headers:
        separator = draw(st.sampled_from((": ", ":", ":  ", ":\t")))
        trailing = draw(st.sampled_from(("", "", " ")))
        lines.append(f"{name}{separator}{value}{trailing}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@st.composite
def _valid_request(draw: st.DrawFn) -> HandshakeRequest:
    parts = draw(_valid_parts())
    return HandshakeRequest(
        data=_serialize(draw, parts),
        path=parts.path,
        headers=tuple(parts.headers),
        subprotocols=parts.subprotocols,
    )


def handshake_requests() -> st.SearchStrategy[HandshakeRequest]:
    """Valid client upgrade requests (RFC 6455 section 4.1), labelled 101.

    They vary what a server must accept: the case of header names and of
    the ``websocket`` and ``Upgrade`` tokens, those tokens inside lists,
    whitespace around values, header order, subprotocol lists split over
    several lines, and optional headers (Origin, User-Agent, extension
    offers, unknown ``X-`` headers).

    Example::

        @given(handshake_requests())
        def test_server_accepts(request):
            server = ServerConnection()
            [event] = server.receive_data(request.data)
            assert event.error is None and event.path == request.path
    """
    return _valid_request()


_Defect = Callable[[st.DrawFn, _Parts], tuple[int, str]]


def _missing(name: str, status: int) -> _Defect:
    def defect(draw: st.DrawFn, parts: _Parts) -> tuple[int, str]:
        parts.without(name)
        return status, f"no {name} header"

    return defect


def _invalid_value(name: str, status: int, values: st.SearchStrategy[str]) -> _Defect:
    def defect(draw: st.DrawFn, parts: _Parts) -> tuple[int, str]:
        value = draw(values)
        parts.replace(name, value)
        return status, f"{name}: {value!r}"

    return defect


def _bad_method(draw: st.DrawFn, parts: _Parts) -> tuple[int, str]:
    parts.method = draw(st.sampled_from(("POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")))
    return 405, f"method {parts.method}"


def _http_10(draw: st.DrawFn, parts: _Parts) -> tuple[int, str]:
    parts.version = "1.0"
    return 400, "HTTP/1.0"


def _two_keys(draw: st.DrawFn, parts: _Parts) -> tuple[int, str]:
    parts.headers.append(("Sec-WebSocket-Key", _key(draw(st.binary(min_size=16, max_size=16)))))
    return 400, "two Sec-WebSocket-Key headers"


_NOT_BASE64 = st.text("ABCDEFabcdef0123456789+/=!*-_ ", min_size=24, max_size=24).filter(
    lambda key: any(c in key for c in "!*-_ ") and key == key.strip()
)
_WRONG_KEY_LENGTH = st.one_of(
    st.binary(max_size=15).map(_key), st.binary(min_size=17, max_size=32).map(_key)
)

_DEFECTS: dict[str, _Defect] = {
    "missing-key": _missing("Sec-WebSocket-Key", 400),
    "bad-key": _invalid_value("Sec-WebSocket-Key", 400, _NOT_BASE64 | _WRONG_KEY_LENGTH),
    "two-keys": _two_keys,
    "missing-version": _missing("Sec-WebSocket-Version", 426),
    "bad-version": _invalid_value(
        "Sec-WebSocket-Version",
        426,
        st.sampled_from(("8", "7", "12", "14", "0", "13, 8", "thirteen")),
    ),
    "missing-upgrade": _missing("Upgrade", 426),
    "bad-upgrade": _invalid_value(
        "Upgrade", 426, st.sampled_from(("h2c", "websockets", "web socket", "tls"))
    ),
    "missing-connection": _missing("Connection", 426),
    "bad-connection": _invalid_value(
        "Connection", 426, st.sampled_from(("keep-alive", "close", "Upgraded"))
    ),
    "missing-host": _missing("Host", 400),
    "bad-method": _bad_method,
    "http-1.0": _http_10,
}

HANDSHAKE_DEFECTS: tuple[str, ...] = (*_DEFECTS, "not-http")
"""The names of the defects :func:`invalid_handshake_requests` draws from."""


@st.composite
def _invalid_request(draw: st.DrawFn, defects: tuple[str, ...]) -> HandshakeRequest:
    defect = draw(st.sampled_from(defects))
    if defect == "not-http":
        # A first line with no space cannot be a request line (a TLS
        # ClientHello sent to a plain-text port looks like this).
        line = draw(st.binary(min_size=1, max_size=64).filter(lambda b: not b[:1].isspace()))
        line = line.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b"") or b"\x16"
        return HandshakeRequest(
            data=line + b"\r\n\r\n", status=400, problem="not HTTP", defect=defect
        )
    parts = draw(_valid_parts())
    status, problem = _DEFECTS[defect](draw, parts)
    return HandshakeRequest(
        data=_serialize(draw, parts),
        status=status,
        problem=problem,
        defect=defect,
        path=parts.path,
        headers=tuple(parts.headers),
        subprotocols=parts.subprotocols,
    )


def invalid_handshake_requests(
    *, defects: Iterable[str] | None = None
) -> st.SearchStrategy[HandshakeRequest]:
    """Upgrade requests a server must refuse, each labelled with the status
    to answer (:attr:`HandshakeRequest.status`), its ``defect`` and a
    description of the ``problem``.

    Each is a valid request (as from :func:`handshake_requests`) with one
    defect, by its name in :data:`HANDSHAKE_DEFECTS`:

    * ``missing-key``, ``bad-key`` (not base64, or not 16 bytes once
      decoded), ``two-keys``: ``Sec-WebSocket-Key`` (400);
    * ``missing-version``, ``bad-version``: ``Sec-WebSocket-Version`` (426);
    * ``missing-upgrade``, ``bad-upgrade``, ``missing-connection``,
      ``bad-connection``: the ``Upgrade`` and ``Connection`` tokens (426);
    * ``missing-host``, ``http-1.0``: HTTP/1.1 requirements (400);
    * ``bad-method``: POST, PUT, DELETE, HEAD, OPTIONS or PATCH (405);
    * ``not-http``: bytes that are no HTTP request at all (400).

    Args:
        defects: The names of the defects to draw from (default: all).

    Example::

        @given(invalid_handshake_requests())
        def test_server_refuses(request):
            server = ServerConnection()
            for event in server.receive_data(request.data):
                if isinstance(event, Request):
                    server.accept()  # answers with the error response
            assert server.data_to_send().startswith(b"HTTP/1.1 %d " % request.status)
    """
    names = HANDSHAKE_DEFECTS if defects is None else tuple(defects)
    unknown = set(names) - set(HANDSHAKE_DEFECTS)
    if unknown or not names:
        raise ValueError(f"defects must be names from HANDSHAKE_DEFECTS, not {sorted(unknown)}")
    return _invalid_request(names)
