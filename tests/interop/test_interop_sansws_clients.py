"""Each sansws client (sync, asyncio, trio) against third-party servers:
websockets' asyncio and trio servers and aiohttp's ``web.WebSocketResponse``.

Every test runs once per driver and server; the servers speak the test
protocol of interop_common.py, shared by the module.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator

import pytest
from adapters.base import Driver
from interop_common import (
    FRAGMENTS,
    MAX_SIZE,
    WAIT,
    command,
    joined,
    payload,
    unique_path,
)
from interop_servers import FRAGMENTING_SERVERS, RunningServer, start

from sansws.errors import ConnectionClosedError, ConnectionClosedOK

pytestmark = pytest.mark.anyio

SERVERS = ("websockets", "websockets-trio", "aiohttp")

#: Sizes around each frame length encoding (7-bit, 16-bit, 64-bit), up to
#: 1 MiB; in bytes on the wire, for text as for binary.
SIZES = (0, 1, 125, 126, 65535, 65536, 2**20)


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tls_server_context: ssl.SSLContext
) -> Iterator[RunningServer]:
    with start(request.param, tls_server_context) as running:
        yield running


async def test_handshake_selects_the_common_subprotocol_and_carries_path_and_headers(
    driver: Driver, server: RunningServer
) -> None:
    path = unique_path() + "?query=1"
    async with driver.connect(
        server.url(path),
        subprotocols=["unknown", "chat"],
        extra_headers=[("X-Interop", "yes")],
    ) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response.subprotocol == "chat"
        await ws.send(command("describe"))
        seen = json.loads(await ws.recv(WAIT))
    assert seen == {"path": path, "subprotocol": "chat", "header": "yes"}
    assert server.recorder.wait(path).subprotocol == "chat"


@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_messages_of_0_b_to_1_mib_arrive_unchanged_and_of_the_same_type(
    driver: Driver, server: RunningServer, kind: str
) -> None:
    async with driver.connect(server.url(), max_message_size=MAX_SIZE) as ws:
        for size in SIZES:
            message = payload(kind, size)
            await ws.send(message)
            assert await ws.recv(WAIT) == message, size


@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_a_message_sansws_sends_in_fragments_arrives_whole(
    driver: Driver, server: RunningServer, kind: str
) -> None:
    async with driver.connect(server.url()) as ws:
        await ws.send(FRAGMENTS[kind])
        assert await ws.recv(WAIT) == joined(kind)


@pytest.mark.parametrize("server", sorted(FRAGMENTING_SERVERS & set(SERVERS)), indirect=True)
@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_a_message_the_server_sends_in_fragments_arrives_whole(
    driver: Driver, server: RunningServer, kind: str
) -> None:
    async with driver.connect(server.url()) as ws:
        await ws.send(command("fragments", kind))
        assert await ws.recv(WAIT) == joined(kind)


async def test_the_server_answers_a_ping_from_sansws_with_its_payload(
    driver: Driver, server: RunningServer
) -> None:
    async with driver.connect(server.url()) as ws:
        waiters = [await ws.ping(data) for data in (b"", b"\x00interop", b"\xff" * 125)]
        for waiter in waiters:
            assert 0 <= await waiter.wait(WAIT) < WAIT
        # A ping without data gets a payload of sansws' choosing, matched too.
        assert 0 <= await (await ws.ping()).wait(WAIT) < WAIT


async def test_sansws_answers_a_ping_from_the_server(driver: Driver, server: RunningServer) -> None:
    async with driver.connect(server.url("/observe-pongs")) as ws:
        for data in ("", "00ff", "ab" * 125):
            await ws.send(command("ping", data))
            assert await ws.recv(WAIT) == f"pong {data}"


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4001, "client leaves, été")])
async def test_the_close_code_and_reason_sansws_sends_reach_the_server(
    driver: Driver, server: RunningServer, code: int, reason: str
) -> None:
    path = unique_path()
    async with driver.connect(server.url(path)) as ws:
        # The server's handler is running: websockets' trio server (17.4)
        # never ends a handler that first reads after the Close arrived.
        await ws.send("ready")
        assert await ws.recv(WAIT) == "ready"
        await ws.close(code, reason)
    record = server.recorder.wait(path)
    assert (record.close_code, record.close_reason) == (code, reason)


@pytest.mark.parametrize(
    ("code", "reason", "error"),
    [(1001, "going away", ConnectionClosedOK), (4002, "server leaves, été", ConnectionClosedError)],
)
async def test_the_close_code_and_reason_the_server_sends_reach_sansws(
    driver: Driver, server: RunningServer, code: int, reason: str, error: type[Exception]
) -> None:
    async with driver.connect(server.url()) as ws:
        await ws.send(command("close", code, reason))
        with pytest.raises(error) as info:
            await ws.recv(WAIT)
        assert (info.value.code, info.value.reason) == (code, reason)  # type: ignore[attr-defined]
        assert (ws.close_code, ws.close_reason) == (code, reason)


async def test_a_tls_connection_verifies_the_server_and_carries_messages_and_close(
    driver: Driver, server: RunningServer, tls_client_context: ssl.SSLContext
) -> None:
    path = unique_path()
    url = server.url(path, tls=True)
    async with driver.connect(
        url, ssl=tls_client_context, subprotocols=["chat"], max_message_size=MAX_SIZE
    ) as ws:
        assert ws.subprotocol == "chat"
        for message in (payload("text", 1000), payload("binary", 2**20)):
            await ws.send(message)
            assert await ws.recv(WAIT) == message
        await ws.send(FRAGMENTS["binary"])
        assert await ws.recv(WAIT) == joined("binary")
        await ws.close(4003, "tls done")
    record = server.recorder.wait(path)
    assert (record.close_code, record.close_reason) == (4003, "tls done")


async def test_a_tls_client_refuses_a_certificate_it_does_not_trust(
    driver: Driver, server: RunningServer
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        async with driver.connect(server.url(tls=True), ssl=ssl.create_default_context()):
            pass
