"""HTTP Basic authentication (RFC 7617) of a server's opening handshakes.

:func:`basic_auth` makes a ``process_request`` hook, for every driver::

    serve(handler, process_request=basic_auth("chat", credentials=("alice", "s3cret")))

A request without credentials, or with wrong ones, is answered 401 with a
``WWW-Authenticate`` challenge (so a browser asks for them); good ones
accept the handshake, and the handler finds the user in ``ws.username``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, overload

from .endpoint import Response
from .events import Request

__all__ = ["basic_auth", "parse_basic_credentials"]

Check = Callable[[str, str], "bool | Awaitable[bool]"]


def parse_basic_credentials(value: str) -> tuple[str, str] | None:
    """The ``(user, password)`` of an ``Authorization: Basic ...`` header
    value, or ``None`` if it holds no Basic credentials (another scheme,
    bad base64, no colon, not UTF-8)."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error):
        return None
    user, colon, password = decoded.partition(":")
    if not colon:
        return None
    return user, password


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode()).digest()


def _is_pair(value: object) -> bool:
    return (
        isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)
    )


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


Hook = Callable[[Any, Request], "Response | None"]
AsyncHook = Callable[[Any, Request], "Awaitable[Response | None]"]


@overload
def basic_auth(
    realm: str = "",
    *,
    credentials: tuple[str, str] | Iterable[tuple[str, str]],
    check_credentials: None = None,
) -> Hook: ...
@overload
def basic_auth(
    realm: str = "",
    *,
    credentials: None = None,
    check_credentials: Callable[[str, str], Awaitable[bool]],
) -> AsyncHook: ...
@overload
def basic_auth(
    realm: str = "",
    *,
    credentials: None = None,
    check_credentials: Callable[[str, str], bool],
) -> Hook: ...


def basic_auth(
    realm: str = "",
    *,
    credentials: tuple[str, str] | Iterable[tuple[str, str]] | None = None,
    check_credentials: Check | None = None,
) -> Hook | AsyncHook:
    """A ``process_request`` hook that lets in only the users it knows.

    Args:
        realm: Named in the challenge; browsers show it when they ask for
            credentials.
        credentials: A ``(user, password)`` pair or an iterable of them.
            Passwords are compared by their SHA-256 digests in constant
            time, and an unknown user takes as long as a wrong password.
        check_credentials: ``check_credentials(user, password)`` returns
            whether they are good; in the asyncio and trio drivers it may be
            an ``async def`` (a database lookup). Give this or
            ``credentials``, not both.

    Returns:
        The hook: ``serve(..., process_request=basic_auth(...))`` (an
        ``async def`` if ``check_credentials`` is one). It answers 401
        with ``WWW-Authenticate: Basic realm="...", charset="UTF-8"`` when
        the request has no Basic credentials or wrong ones, and else sets
        ``ws.username`` and accepts.

    Raises:
        TypeError: Neither or both of ``credentials`` and
            ``check_credentials`` were given, or a credential is not a pair
            of strings.
    """
    if (credentials is None) == (check_credentials is None):
        raise TypeError("basic_auth() takes credentials or check_credentials, and not both")
    check: Check
    if credentials is not None:
        pairs: list[Any] = [credentials] if _is_pair(credentials) else list(credentials)
        # Digests: every comparison is of 32 bytes, whatever the passwords'
        # lengths, and an unknown user is compared against a decoy.
        known: dict[str, bytes] = {}
        for pair in pairs:
            if not _is_pair(pair):
                raise TypeError(f"basic_auth(): a credential is a (user, password), not {pair!r}")
            known[pair[0]] = _digest(pair[1])
        decoy = _digest("")

        def check(user: str, password: str) -> bool:
            expected = known.get(user)
            against = decoy if expected is None else expected
            return hmac.compare_digest(_digest(password), against) and expected is not None

    else:
        assert check_credentials is not None
        if not callable(check_credentials):
            raise TypeError(f"basic_auth(): not a function: {check_credentials!r}")
        check = check_credentials

    challenge = f'Basic realm="{_quoted(realm)}", charset="UTF-8"'

    def refuse(what: str) -> Response:
        return Response(401, [("WWW-Authenticate", challenge)], f"{what}\n".encode())

    def decide(ws: Any, user: str, good: object) -> Response | None:
        if not good:
            return refuse("Invalid credentials")
        ws.username = user
        return None

    async def decide_later(ws: Any, user: str, good: Awaitable[bool]) -> Response | None:
        return decide(ws, user, await good)

    def process_request(ws: Any, request: Request) -> Response | Awaitable[Response | None] | None:
        header = request.headers.get("Authorization")
        if header is None:
            return refuse("Missing credentials")
        parsed = parse_basic_credentials(header)
        if parsed is None:
            return refuse("Unsupported credentials")
        user, password = parsed
        good = check(user, password)
        if inspect.isawaitable(good):
            return decide_later(ws, user, good)
        return decide(ws, user, good)

    if inspect.iscoroutinefunction(check_credentials):

        async def process_request_async(ws: Any, request: Request) -> Response | None:
            answer = process_request(ws, request)
            return await answer if inspect.isawaitable(answer) else answer

        return process_request_async
    return process_request  # type: ignore[return-value]  # awaitable only if check is async
