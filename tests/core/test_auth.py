"""basic_auth and the parsing of Basic credentials, sans I/O (the drivers'
tests run the hook in every driver)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from sansws import Headers, Request, basic_auth
from sansws.auth import parse_basic_credentials
from sansws.endpoint import Response


def basic(userinfo: str) -> str:
    return "Basic " + base64.b64encode(userinfo.encode()).decode()


def request(authorization: str | None) -> Request:
    headers = [] if authorization is None else [("Authorization", authorization)]
    return Request(path="/", headers=Headers(headers))


class FakeConnection:
    username: str | None = None


def run(hook: Any, authorization: str | None) -> tuple[Response | None, str | None]:
    ws = FakeConnection()
    result = hook(ws, request(authorization))
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return result, ws.username


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (basic("alice:s3cret"), ("alice", "s3cret")),
        (basic("alice:with:colons"), ("alice", "with:colons")),
        (basic(":"), ("", "")),
        (basic("zoë:pässword"), ("zoë", "pässword")),
        ("basic " + base64.b64encode(b"a:b").decode(), ("a", "b")),
        ("Bearer abc", None),
        ("Basic", None),
        ("Basic not*base64", None),
        ("Basic " + base64.b64encode(b"no colon").decode(), None),
        ("Basic " + base64.b64encode(b"\xff:\xfe").decode(), None),
    ],
)
def test_parse_basic_credentials(value: str, expected: tuple[str, str] | None) -> None:
    assert parse_basic_credentials(value) == expected


def test_good_credentials_set_the_username_and_accept() -> None:
    hook = basic_auth("r", credentials=[("alice", "s3cret"), ("bob", "hunter2")])
    assert run(hook, basic("bob:hunter2")) == (None, "bob")
    assert run(hook, basic("alice:s3cret")) == (None, "alice")


@pytest.mark.parametrize(
    ("authorization", "body"),
    [
        (None, b"Missing credentials\n"),
        ("Bearer token", b"Unsupported credentials\n"),
        (basic("alice:wrong"), b"Invalid credentials\n"),
        (basic("alice:s3cret-and-more"), b"Invalid credentials\n"),
        (basic("nobody:s3cret"), b"Invalid credentials\n"),
        (basic("alice:"), b"Invalid credentials\n"),
    ],
)
def test_bad_or_missing_credentials_get_401_with_the_challenge(
    authorization: str | None, body: bytes
) -> None:
    hook = basic_auth('say "hi"', credentials=("alice", "s3cret"))
    response, username = run(hook, authorization)
    assert response is not None
    assert response.status == 401
    assert dict(Headers(response.headers))["WWW-Authenticate"] == (
        'Basic realm="say \\"hi\\"", charset="UTF-8"'
    )
    assert response.body == body
    assert username is None


def test_check_credentials_may_be_a_function_or_a_coroutine_function() -> None:
    def check(user: str, password: str) -> bool:
        return (user, password) == ("u", "p")

    async def check_later(user: str, password: str) -> bool:
        await asyncio.sleep(0)
        return check(user, password)

    for function in (check, check_later):
        hook = basic_auth(check_credentials=function)
        assert run(hook, basic("u:p")) == (None, "u")
        response, username = run(hook, basic("u:q"))
        assert response is not None
        assert (response.status, username) == (401, None)


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"credentials": ("a", "b"), "check_credentials": lambda u, p: True},
        {"credentials": [("a", "b"), ("c",)]},
        {"credentials": [("a", 1)]},
        {"credentials": "alice:s3cret"},
        {"check_credentials": "not a function"},
    ],
)
def test_basic_auth_refuses_what_is_not_credentials(arguments: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="basic_auth"):
        basic_auth("r", **arguments)
