"""A server's routing (sansws.Router), its select_subprotocol hook and HTTP
Basic authentication (basic_auth), through every driver: each is decided in
the core (sansws.ops.serve), and these tests prove that every driver obeys
it."""

from __future__ import annotations

import dataclasses
import importlib
import json
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import pytest
from adapters.base import Driver, HandlerSpec

import sansws
from sansws import State
from sansws.endpoint import Response
from sansws.errors import InvalidStatus

pytestmark = pytest.mark.anyio

ROUTES: HandlerSpec = {
    "/rooms/{room}": "report",
    "/items/{id:int}": "report",
    "/files/{name:path}": "report",
    "/{anything}": "echo",  # after the others: tried last
}


def module(driver: Driver) -> Any:
    """The driver's module: every one exports Router and basic_auth."""
    return importlib.import_module(f"sansws.drivers.{driver.name}")


async def report(driver: Driver, url: str, **options: Any) -> dict[str, Any]:
    async with driver.connect(url, **options) as ws:
        result: dict[str, Any] = json.loads(await ws.recv(timeout=5))
        result["client_subprotocol"] = ws.subprotocol
    return result


async def refusal(driver: Driver, url: str, **options: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with driver.connect(url, **options):
            pass  # pragma: no cover
    return info.value


async def plain_http(port: int, head: bytes) -> bytes:
    def exchange() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(head)
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    return await anyio.to_thread.run_sync(exchange)


# ---------------------------------------------------------------- routing


def test_every_driver_module_exports_the_cores_router_and_basic_auth(driver: Driver) -> None:
    assert module(driver).Router is sansws.Router
    assert module(driver).basic_auth is sansws.basic_auth


async def test_the_router_runs_the_handler_of_the_route_the_path_matches(driver: Driver) -> None:
    async with driver.serve(ROUTES) as server:
        room = await report(driver, server.url + "rooms/lobby?since=3")
        item = await report(driver, server.url + "items/42")
        files = await report(driver, server.url + "files/a/b%20c.txt")
        slash = await report(driver, server.url + "rooms/a%2Fb")
        async with driver.connect(server.url + "other") as ws:  # the echo route
            await ws.send("hi")
            assert await ws.recv(timeout=5) == "hi"
    assert (room["route"], room["path_params"]) == ("/rooms/{room}", {"room": ["str", "lobby"]})
    assert room["path"] == "/rooms/lobby?since=3"
    assert (item["route"], item["path_params"]) == ("/items/{id:int}", {"id": ["int", "42"]})
    assert files["path_params"] == {"name": ["str", "a/b c.txt"]}
    # An encoded slash is part of the segment, not a separator.
    assert slash["path_params"] == {"room": ["str", "a/b"]}


async def test_a_path_no_route_matches_is_answered_404(driver: Driver) -> None:
    async with driver.serve(ROUTES) as server:
        for path in ("items/abc", "rooms/a/b", "", "rooms/"):
            error = await refusal(driver, server.url + path)
            assert error.status == 404, path
            assert error.body.startswith(b"No WebSocket endpoint at /")


async def test_plain_http_gets_426_on_a_route_404_elsewhere_and_405_for_post(
    driver: Driver,
) -> None:
    async with driver.serve(ROUTES) as server:
        upgrade = await plain_http(server.port, b"GET /rooms/x HTTP/1.1\r\nHost: a\r\n\r\n")
        unknown = await plain_http(server.port, b"GET /items/x HTTP/1.1\r\nHost: a\r\n\r\n")
        post = await plain_http(
            server.port, b"POST /rooms/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        )
    assert upgrade.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nUpgrade: websocket\r\n" in upgrade
    assert upgrade.endswith(b"connect to it with a WebSocket client.\n")
    assert unknown.startswith(b"HTTP/1.1 404 ")
    assert post.startswith(b"HTTP/1.1 405 ")
    assert b"\r\nAllow: GET\r\n" in post


async def test_process_request_answers_before_the_router_and_sees_the_match(
    driver: Driver,
) -> None:
    seen: list[tuple[str | None, dict[str, Any]]] = []

    def hook(ws: Any, request: Any) -> Response | None:
        seen.append((ws.route, dict(ws.path_params)))
        if request.path == "/healthz":  # no route: answered all the same
            return Response(200, body=b"ok\n")
        if ws.path_params.get("room") == "closed":
            return Response(403, body=b"closed\n")
        return None

    async with driver.serve(ROUTES, native_process_request=hook) as server:
        health = await plain_http(server.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        assert (await refusal(driver, server.url + "rooms/closed")).status == 403
        assert (await report(driver, server.url + "rooms/open"))["route"] == "/rooms/{room}"
        assert (await refusal(driver, server.url + "items/x")).status == 404
    assert health.startswith(b"HTTP/1.1 200 ")
    assert seen == [
        ("/{anything}", {"anything": "healthz"}),
        ("/rooms/{room}", {"room": "closed"}),
        ("/rooms/{room}", {"room": "open"}),
        (None, {}),
    ]


async def test_without_a_router_a_connection_has_no_route(driver: Driver) -> None:
    async with driver.serve("report") as server:
        result = await report(driver, server.url + "rooms/lobby")
    assert (result["route"], result["path_params"], result["username"]) == (None, {}, None)


# ---------------------------------------------------------------- select_subprotocol


async def test_select_subprotocol_chooses_among_the_clients_offer(driver: Driver) -> None:
    offers: list[list[str]] = []

    def select(ws: Any, offered: Sequence[str]) -> str | None:
        offers.append(list(offered))
        return offered[-1] if "pick-last" in offered else None

    async with driver.serve("report", select_subprotocol=select, subprotocols=["a"]) as server:
        last = await report(driver, server.url, subprotocols=["a", "b", "pick-last"])
        # None is no subprotocol, although the server supports "a".
        none = await report(driver, server.url, subprotocols=["a"])
    assert (last["subprotocol"], last["client_subprotocol"]) == ("pick-last", "pick-last")
    assert (none["subprotocol"], none["client_subprotocol"]) == (None, None)
    assert offers == [["a", "b", "pick-last"], ["a"]]


@pytest.mark.parametrize(
    "select",
    [
        pytest.param(lambda ws, offered: "unoffered", id="unoffered"),
        pytest.param(lambda ws, offered: 1 / 0, id="raises"),
    ],
)
async def test_a_failing_or_wrong_select_subprotocol_is_answered_500(
    driver: Driver, select: Callable[[Any, Sequence[str]], Any], caplog: pytest.LogCaptureFixture
) -> None:
    async with driver.serve("echo", select_subprotocol=select) as server:
        error = await refusal(driver, server.url, subprotocols=["x"])
        # The server keeps serving.
        assert (await refusal(driver, server.url, subprotocols=["x"])).status == 500
    assert error.status == 500
    assert any(r.levelname == "ERROR" and r.name == "sansws.server" for r in caplog.records)


async def test_an_async_select_subprotocol_is_awaited_by_the_async_drivers(
    driver: Driver,
) -> None:
    async def select(ws: Any, offered: Sequence[str]) -> str | None:
        await anyio.sleep(0)
        return offered[0]

    async with driver.serve("report", select_subprotocol=select) as server:
        if driver.name == "sync":
            # The sync driver cannot await: the hook's error, answered 500.
            assert (await refusal(driver, server.url, subprotocols=["x"])).status == 500
        else:
            assert (await report(driver, server.url, subprotocols=["x"]))["subprotocol"] == "x"


# ---------------------------------------------------------------- basic_auth

CHALLENGE = 'Basic realm="test room", charset="UTF-8"'


@pytest.mark.parametrize(
    "credentials",
    [("alice", "s3cret"), [("bob", "other"), ("alice", "s3cret")]],
    ids=["one pair", "a list"],
)
async def test_basic_auth_lets_in_good_credentials_and_sets_the_username(
    driver: Driver, credentials: Any
) -> None:
    hook = module(driver).basic_auth("test room", credentials=credentials)
    async with driver.serve("report", native_process_request=hook) as server:
        url = f"ws://alice:s3cret@127.0.0.1:{server.port}/"
        assert (await report(driver, url))["username"] == "alice"


@pytest.mark.parametrize(
    ("userinfo", "body"),
    [
        ("", b"Missing credentials\n"),
        ("alice:wrong@", b"Invalid credentials\n"),
        ("mallory:s3cret@", b"Invalid credentials\n"),
    ],
    ids=["missing", "wrong password", "unknown user"],
)
async def test_basic_auth_answers_401_with_a_challenge(
    driver: Driver, userinfo: str, body: bytes
) -> None:
    hook = module(driver).basic_auth("test room", credentials=("alice", "s3cret"))
    async with driver.serve("report", native_process_request=hook) as server:
        error = await refusal(driver, f"ws://{userinfo}127.0.0.1:{server.port}/")
    assert error.status == 401
    assert error.headers["WWW-Authenticate"] == CHALLENGE
    assert error.body == body


async def test_basic_auth_with_check_credentials_sync_or_async(driver: Driver) -> None:
    checked: list[tuple[str, str]] = []

    def check(user: str, password: str) -> bool:
        checked.append((user, password))
        return password == user[::-1]

    async def check_later(user: str, password: str) -> bool:
        await anyio.sleep(0)
        return check(user, password)

    checks: list[Callable[[str, str], bool | Awaitable[bool]]] = [check]
    if driver.name != "sync":  # the sync driver cannot await; see the test above
        checks.append(check_later)
    for function in checks:
        hook = module(driver).basic_auth("test room", check_credentials=function)
        async with driver.serve("report", native_process_request=hook) as server:
            url = f"ws://anna:anna@127.0.0.1:{server.port}/"
            assert (await report(driver, url))["username"] == "anna"
            error = await refusal(driver, f"ws://anna:nope@127.0.0.1:{server.port}/")
            assert error.status == 401
    assert checked == [("anna", "anna"), ("anna", "nope")] * len(checks)


# ---------------------------------------------------------------- answers that cannot be sent


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("nonsense", id="not a Response"),
        pytest.param(Response(101), id="a 101"),
        pytest.param(Response(403, [("X-Bad", "a\r\nb")]), id="an unsafe header"),
    ],
)
async def test_a_process_request_answer_that_cannot_be_sent_is_answered_500(
    driver: Driver, answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(ws: Any, request: Any) -> object:
        return answer

    async with driver.serve("echo", native_process_request=hook) as server:
        assert (await refusal(driver, server.url)).status == 500
    assert any("cannot answer the handshake" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- process_response


async def test_process_response_sees_the_101_and_may_add_headers(driver: Driver) -> None:
    seen: list[tuple[int, list[str]]] = []

    def hook(ws: Any, request: Any, response: Response) -> Response | None:
        names = [name.lower() for name, _ in response.headers]
        seen.append((response.status, names))
        if request.path == "/as-is":
            return None
        return dataclasses.replace(response, headers=[*response.headers, ("Set-Cookie", "id=7")])

    async with driver.serve("echo", process_response=hook, subprotocols=["v1"]) as server:
        async with driver.connect(server.url, subprotocols=["v1"]) as ws:
            assert ws.response.headers["Set-Cookie"] == "id=7"
            assert ws.subprotocol == "v1"
            await ws.send("still a WebSocket")
            assert await ws.recv(timeout=5) == "still a WebSocket"
        async with driver.connect(server.url + "as-is") as ws:
            assert "Set-Cookie" not in ws.response.headers
    handshake = ["upgrade", "connection", "sec-websocket-accept", "sec-websocket-protocol"]
    assert seen[0] == (101, [*handshake, "sec-websocket-extensions", "server"])


async def test_process_response_sees_every_refusal_and_may_replace_an_answer(
    driver: Driver,
) -> None:
    def hook(ws: Any, request: Any, response: Response) -> Response | None:
        if request.path == "/forbidden":
            return Response(403, [("X-Why", "closed for today")], b"come back tomorrow\n")
        if response.status != 101:  # the router's 404, the plain HTTP 426
            return dataclasses.replace(response, headers=[*response.headers, ("X-Seen", "yes")])
        return None

    routes: HandlerSpec = {"/forbidden": "echo", "/ws": "echo"}
    async with driver.serve(routes, process_response=hook) as server:
        forbidden = await refusal(driver, server.url + "forbidden")
        missing = await refusal(driver, server.url + "missing")
        plain = await plain_http(server.port, b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n")
        async with driver.connect(server.url + "ws") as ws:
            assert ws.state is State.OPEN
    assert (forbidden.status, forbidden.headers["X-Why"]) == (403, "closed for today")
    assert forbidden.body == b"come back tomorrow\n"
    assert (missing.status, missing.headers["X-Seen"]) == (404, "yes")
    assert plain.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nX-Seen: yes\r\n" in plain
    assert b"\r\nUpgrade: websocket\r\n" in plain


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param(
            lambda ws, request, response: dataclasses.replace(
                response,
                headers=[(n, v[::-1]) for n, v in response.headers],
            ),
            id="changes the handshake's headers",
        ),
        pytest.param(
            lambda ws, request, response: dataclasses.replace(
                response, headers=[*response.headers, ("Content-Length", "0")]
            ),
            id="adds a Content-Length",
        ),
        pytest.param(lambda ws, request, response: 1 / 0, id="raises"),
        pytest.param(lambda ws, request, response: "nonsense", id="not a Response"),
    ],
)
async def test_a_process_response_that_breaks_the_handshake_is_answered_500(
    driver: Driver, hook: Callable[..., Any]
) -> None:
    async with driver.serve("echo", process_response=hook) as server:
        assert (await refusal(driver, server.url)).status == 500


async def test_an_async_process_response_is_awaited_by_the_async_drivers(driver: Driver) -> None:
    async def hook(ws: Any, request: Any, response: Response) -> Response | None:
        await anyio.sleep(0)
        return dataclasses.replace(response, headers=[*response.headers, ("X-Async", "1")])

    async with driver.serve("echo", process_response=hook) as server:
        if driver.name == "sync":
            assert (await refusal(driver, server.url)).status == 500
        else:
            async with driver.connect(server.url) as ws:
                assert ws.response.headers["X-Async"] == "1"


async def test_a_101_from_process_request_is_a_500_with_or_without_process_response(
    driver: Driver,
) -> None:
    def hook(ws: Any, request: Any) -> Response:
        return Response(101)

    for options in ({}, {"process_response": lambda ws, request, response: None}):
        async with driver.serve("echo", native_process_request=hook, **options) as server:
            assert (await refusal(driver, server.url)).status == 500


async def test_a_hook_that_builds_a_response_wrong_gets_a_500_and_a_clear_log(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(ws: Any, request: Any) -> Response:
        return Response(200, "OK\n")  # type: ignore[arg-type]  # websockets' respond() order

    async with driver.serve("echo", native_process_request=hook) as server:
        assert (await refusal(driver, server.url)).status == 500
    [record] = [r for r in caplog.records if r.getMessage() == "process_request failed"]
    assert record.exc_info is not None
    assert "the body is the third argument" in str(record.exc_info[1])
