"""Several WebSocket endpoints on one server, chosen by the request path.

A :class:`Router` is built from a mapping of patterns to handlers and
passed as the handler of ``serve()``, in every driver::

    router = Router({
        "/rooms/{room}": chat,           # ws.path_params == {"room": "lobby"}
        "/items/{id:int}": item,         # {"id": 42}
        "/files/{name:path}": files,     # {"name": "a/b.txt"}
    })
    serve(router, "127.0.0.1", 8765)

The rules, the same whatever the driver:

* A pattern is literal text with ``{name}`` or ``{name:converter}``
  parameters. Converters: ``str`` (the default: one path segment, not
  empty), ``int`` (decimal digits, an ``int``), ``float`` (digits with an
  optional fraction, a ``float``), ``uuid`` (a ``uuid.UUID``), ``path`` (the
  rest of the path, slashes included, possibly empty).
* Patterns are tried in the mapping's order; the first that matches the
  whole path (the query string left out) wins. Matching is exact: ``/chat``
  and ``/chat/`` are two paths (a WebSocket client does not follow
  redirects, so there is no redirect to the other one).
* A parameter's text is percent-decoded after matching, so ``%2F`` in a
  ``str`` parameter is a slash inside one segment, not a separator; a
  parameter that does not decode to UTF-8 text does not match. Literal text
  outside ASCII matches its UTF-8 percent-encoding.
* The server's ``process_request`` hook runs before the router answers:
  it may answer any path (a health check), and it sees the match in
  ``ws.route`` and ``ws.path_params``. A path no pattern matches then gets
  404; a plain HTTP request to a route gets the standard answer to a
  request that is not a WebSocket handshake (426 with
  ``Upgrade: websocket``, 405 for another method than GET).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from .endpoint import Response

__all__ = ["Match", "Router"]

# Each converter: the regular expression of its text, and the function that
# turns the (percent-decoded) text into the parameter's value.
_CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"[0-9]+", int),
    "float": (r"[0-9]+(?:\.[0-9]+)?", float),
    "uuid": (
        r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        uuid.UUID,
    ),
    "path": (r".*", str),
}
_PARAMETER = re.compile(r"{([^{}:]*)(?::([^{}]*))?}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Match:
    """A path matched one of a :class:`Router`'s patterns.

    Attributes:
        pattern: The pattern, as given to the router.
        handler: Its handler.
        params: The parameters, converted (``{"id": 42}``).
    """

    pattern: str
    handler: Callable[..., Any]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Route:
    pattern: str
    handler: Callable[..., Any]
    regex: re.Pattern[str]
    converters: tuple[tuple[str, Callable[[str], Any]], ...]


# A request target is ASCII: text outside it in a pattern matches its UTF-8
# percent-encoding ("/café" matches "/caf%C3%A9").
_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


def _literal(text: str) -> str:
    return re.escape(quote(text, safe=_ASCII))


def _compile(pattern: str, handler: Callable[..., Any]) -> _Route:
    if not pattern.startswith("/"):
        raise ValueError(f"route {pattern!r}: a pattern starts with '/'")
    if "<" in pattern or ">" in pattern:
        # Never in a request target (RFC 3986), so never matched: werkzeug's
        # syntax, most likely.
        raise ValueError(f"route {pattern!r}: a parameter is written {{name}}, not <name>")
    if not callable(handler):
        raise TypeError(f"route {pattern!r}: the handler is not callable: {handler!r}")
    parts: list[str] = []
    converters: list[tuple[str, Callable[[str], Any]]] = []
    position = 0
    for parameter in _PARAMETER.finditer(pattern):
        literal = pattern[position : parameter.start()]
        if "{" in literal or "}" in literal:
            raise ValueError(f"route {pattern!r}: unbalanced brace in {literal!r}")
        parts.append(_literal(literal))
        name, kind = parameter.group(1), parameter.group(2) or "str"
        if not _NAME.fullmatch(name):
            raise ValueError(f"route {pattern!r}: {name!r} is not a parameter name")
        if name in dict(converters):
            raise ValueError(f"route {pattern!r}: parameter {name!r} appears twice")
        if kind not in _CONVERTERS:
            known = ", ".join(_CONVERTERS)
            raise ValueError(f"route {pattern!r}: unknown converter {kind!r} (known: {known})")
        expression, convert = _CONVERTERS[kind]
        parts.append(f"(?P<{name}>{expression})")
        converters.append((name, convert))
        position = parameter.end()
    rest = pattern[position:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"route {pattern!r}: unbalanced brace in {rest!r}")
    parts.append(_literal(rest))
    return _Route(pattern, handler, re.compile("".join(parts)), tuple(converters))


class Router:
    """Handlers chosen by the request path; pass it as ``serve()``'s handler.

    Args:
        routes: Patterns (see the module's documentation) mapped to
            handlers, tried in order.

    Raises:
        ValueError: A pattern is malformed (no leading ``/``, an unknown
            converter, a parameter named twice, an unbalanced brace).
        TypeError: A handler is not callable.
    """

    def __init__(self, routes: Mapping[str, Callable[..., Any]]) -> None:
        self._routes = [_compile(pattern, handler) for pattern, handler in routes.items()]
        self._handlers = {route.pattern: route.handler for route in self._routes}

    @property
    def patterns(self) -> list[str]:
        """The patterns, in the order they are tried."""
        return [route.pattern for route in self._routes]

    def match(self, target: str) -> Match | None:
        """The first route whose pattern matches ``target``'s path (a
        request target: its query string is left out), or ``None``."""
        path = target.partition("?")[0]
        for route in self._routes:
            found = route.regex.fullmatch(path)
            if found is None:
                continue
            params: dict[str, Any] = {}
            try:
                for name, convert in route.converters:
                    params[name] = convert(unquote(found.group(name), errors="strict"))
            except (UnicodeDecodeError, ValueError):
                continue  # "%ff" is no text: the path does not match this route
            return Match(route.pattern, route.handler, params)
        return None

    def not_found(self, target: str) -> Response:
        """The answer to a request no route matches: 404, with a body that
        says so."""
        path = target.partition("?")[0]
        body = f"No WebSocket endpoint at {path}.\n".encode("utf-8", "backslashreplace")
        return Response(404, body=body)

    def __call__(self, ws: Any) -> Any:
        """Run the handler of the route ``ws`` matched (``ws.route``): the
        server calls this once the handshake is accepted. Returns what the
        handler returns (a coroutine, for the async drivers)."""
        route = ws.route
        if route is None:
            raise LookupError("this connection matched no route of this router")
        return self._handlers[route](ws)

    def __repr__(self) -> str:
        return f"Router({self.patterns!r})"
