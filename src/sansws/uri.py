"""Parsing ``ws://`` and ``wss://`` URIs (RFC 6455 section 3)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from .errors import InvalidURI

__all__ = ["WebSocketURI", "parse_uri"]

_DEFAULT_PORTS = {False: 80, True: 443}


@dataclass(frozen=True, slots=True)
class WebSocketURI:
    """A parsed WebSocket URI.

    Attributes:
        secure: ``True`` for ``wss://``.
        host: The host name or IP address, without brackets for IPv6.
        port: The port, defaulted from the scheme.
        resource_name: The path and query to put in the request line,
            percent-encoded, at least ``"/"``.
        user_info: ``(username, password)`` from the URI, if any.
    """

    secure: bool
    host: str
    port: int
    resource_name: str
    user_info: tuple[str, str] | None = None

    @property
    def scheme(self) -> str:
        """``"wss"`` or ``"ws"``."""
        return "wss" if self.secure else "ws"

    @property
    def default_port(self) -> bool:
        """Whether the port is the scheme's default (80 or 443)."""
        return self.port == _DEFAULT_PORTS[self.secure]

    @property
    def host_header(self) -> str:
        """The value of the Host header: the host, bracketed if it is an IPv6
        address, with the port unless it is the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.default_port else f"{host}:{self.port}"

    @property
    def origin(self) -> tuple[bool, str, int]:
        """What identifies the origin (scheme, host, port): credentials are only
        sent to the origin they were given for."""
        return (self.secure, self.host.lower(), self.port)

    def __str__(self) -> str:
        """The URI, without credentials."""
        return f"{self.scheme}://{self.host_header}{self.resource_name}"


def parse_uri(uri: str) -> WebSocketURI:
    """Parse and validate a ``ws://`` or ``wss://`` URI.

    Raises:
        InvalidURI: The scheme is not ``ws`` or ``wss``, the host is missing,
            the port is invalid, or the URI has a fragment (RFC 6455 section
            3 forbids fragments).
    """
    try:
        parsed = urllib.parse.urlsplit(uri)
        port = parsed.port
    except ValueError as exc:
        raise InvalidURI(uri, str(exc)) from None
    scheme = parsed.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise InvalidURI(uri, "the scheme must be ws or wss")
    if not parsed.hostname:
        raise InvalidURI(uri, "the host is missing")
    if parsed.fragment or uri.endswith("#"):
        raise InvalidURI(uri, "a WebSocket URI must not have a fragment")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise InvalidURI(uri, "the URI contains whitespace or a control character")
    secure = scheme == "wss"
    path = parsed.path or "/"
    resource_name = path + ("?" + parsed.query if parsed.query else "")
    # Non-ASCII characters are percent-encoded so the request line stays
    # valid; characters that are already encoded, or are delimiters, are kept.
    resource_name = urllib.parse.quote(resource_name, safe="!#$%&'()*+,/:;=?@[]~")
    host = parsed.hostname
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidURI(uri, "the host name cannot be encoded") from None
    user_info = None
    if parsed.username is not None:
        user_info = (
            urllib.parse.unquote(parsed.username),
            urllib.parse.unquote(parsed.password or ""),
        )
    return WebSocketURI(
        secure=secure,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[secure],
        resource_name=resource_name,
        user_info=user_info,
    )
