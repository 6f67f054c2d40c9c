"""HTTP headers of an opening handshake, and the header syntax RFC 6455 uses.

:class:`Headers` is an immutable, ordered list of ``(name, value)`` pairs with
case-insensitive lookup. It keeps repeated headers (``get_all``) because the
WebSocket headers that carry lists (``Sec-WebSocket-Protocol``,
``Sec-WebSocket-Extensions``) may be split over several lines.

The parsing helpers below implement the small grammar the handshake needs:
comma-separated token lists (RFC 9110 section 5.6.1) and the extension list of
RFC 6455 section 9.1 with its parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Union, overload

from .errors import UnsafeHeader

__all__ = [
    "ExtensionOffer",
    "Headers",
    "HeadersLike",
    "build_extension_list",
    "parse_extension_list",
    "parse_token_list",
    "validate_header",
]

HeadersLike = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]]]
"""Anything accepted where headers are expected: a :class:`Headers`, a
mapping, or an iterable of ``(name, value)`` pairs."""

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Values may contain visible ASCII, obs-text, spaces and tabs; never CR, LF, NUL
# or other controls, which would end the header early or smuggle another one.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def validate_header(name: str, value: str) -> None:
    """Refuse a header the application wants to send if it is unsafe.

    Raises:
        UnsafeHeader: The name is not an HTTP token, or the value holds a
            control character (CR, LF, NUL, ...) or a character outside
            Latin-1, or starts or ends with whitespace.
    """
    if not _TOKEN.fullmatch(name):
        raise UnsafeHeader(name, value, "the name is not an HTTP token")
    if not _FIELD_VALUE.fullmatch(value):
        raise UnsafeHeader(
            name, value, "the value contains CR, LF, NUL or another control character"
        )


class Headers(Sequence[tuple[str, str]]):
    """Immutable HTTP headers: an ordered sequence of ``(name, value)`` pairs.

    Lookup by name is case-insensitive; names keep the case they had on the
    wire. Iterating yields the pairs in order::

        headers = Headers([("Host", "example.com"), ("X-Id", "1")])
        headers["host"]            # "example.com"
        headers.get("missing")     # None
        list(headers)              # [("Host", "example.com"), ("X-Id", "1")]
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: HeadersLike = ()) -> None:
        if isinstance(items, Headers):
            self._items: tuple[tuple[str, str], ...] = items._items
        elif isinstance(items, Mapping):
            self._items = tuple((str(k), str(v)) for k, v in items.items())
        else:
            self._items = tuple((str(k), str(v)) for k, v in items)
        # Lower-cased name -> values, built on the first lookup: a handshake
        # looks up half a dozen names, each a scan of every header otherwise.
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def _of(cls, items: tuple[tuple[str, str], ...]) -> Headers:
        """Headers over pairs already known to be strings (parsed ones)."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._index = None
        return headers

    @overload
    def __getitem__(self, key: int) -> tuple[str, str]: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[tuple[str, str]]: ...
    @overload
    def __getitem__(self, key: str) -> str: ...

    def __getitem__(
        self, key: int | slice | str
    ) -> tuple[str, str] | Sequence[tuple[str, str]] | str:
        """By position, the pair; by name, the value of the only header with
        that name (``KeyError`` if there is none or more than one)."""
        if isinstance(key, str):
            values = self.get_all(key)
            if len(values) != 1:
                raise KeyError(key)
            return values[0]
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __contains__(self, key: object) -> bool:
        """``"name" in headers`` tests for a header name; a pair tests for a pair."""
        if isinstance(key, str):
            return bool(self.get_all(key))
        return key in self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The values of the headers called ``name`` joined with ``", "``,
        or ``default`` if there is none."""
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        """The values of every header called ``name``, in order."""
        index = self._index
        if index is None:
            index = self._index = {}
            for key, value in self._items:
                index.setdefault(key.lower(), []).append(value)
        return list(index.get(name.lower(), ()))

    def items(self) -> tuple[tuple[str, str], ...]:
        """The ``(name, value)`` pairs, in order."""
        return self._items


def parse_token_list(values: Iterable[str]) -> list[str]:
    """Split comma-separated header values into their non-empty elements.

    RFC 9110 section 5.6.1 lets a list be spread over several header lines and
    allows empty elements; both are accepted. Elements are stripped of
    surrounding whitespace but otherwise kept as sent.
    """
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


ExtensionOffer = tuple[str, tuple[tuple[str, str | None], ...]]
"""One extension in a ``Sec-WebSocket-Extensions`` list: its name and its
parameters as ``(name, value)`` pairs, the value ``None`` for a parameter
without one. For example ``("permessage-deflate",
(("client_max_window_bits", None),))``."""

_PARAM_VALUE = re.compile(r'[!#$%&\'*+\-.^_`|~0-9A-Za-z]+|"[!#$%&\'*+\-.^_`|~0-9A-Za-z]+"')


def parse_extension_list(values: Iterable[str]) -> list[ExtensionOffer]:
    """Parse ``Sec-WebSocket-Extensions`` values (RFC 6455 section 9.1).

    Raises:
        ValueError: The syntax is invalid. Callers turn this into the
            handshake error that fits their role.
    """
    result: list[ExtensionOffer] = []
    for value in values:
        for raw_element in _split_outside_quotes(value, ","):
            element = raw_element.strip()
            if not element:
                continue
            name, *raw_params = (part.strip() for part in _split_outside_quotes(element, ";"))
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"invalid extension name {name!r}")
            params: list[tuple[str, str | None]] = []
            for raw in raw_params:
                key, sep, val = raw.partition("=")
                key = key.strip()
                if not _TOKEN.fullmatch(key):
                    raise ValueError(f"invalid extension parameter {raw!r}")
                if not sep:
                    params.append((key, None))
                    continue
                val = val.strip()
                if not _PARAM_VALUE.fullmatch(val):
                    raise ValueError(f"invalid extension parameter value {raw!r}")
                params.append((key, val.strip('"')))
            result.append((name, tuple(params)))
    return result


def build_extension_list(extensions: Iterable[ExtensionOffer]) -> str:
    """Serialize extensions for a ``Sec-WebSocket-Extensions`` header."""
    parts = []
    for name, params in extensions:
        pieces = [name]
        pieces.extend(key if val is None else f"{key}={val}" for key, val in params)
        parts.append("; ".join(pieces))
    return ", ".join(parts)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside double quotes (extension parameters may
    be quoted strings)."""
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts
