"""Third-party clients against each sansws server (sync, asyncio, trio):
websockets' asyncio, sync and trio clients, aiohttp's
``ClientSession.ws_connect`` and websocket-client's ``create_connection``.

Every test runs once per client and server; the servers speak the test
protocol of interop_common.py, shared by the module, and the clients are
driven through interop_clients.py's blocking interface.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator

import pytest
from interop_clients import CLIENTS, FRAGMENTING_CLIENTS, open_client
from interop_common import (
    FRAGMENTS,
    LoopThread,
    command,
    joined,
    payload,
    unique_path,
)
from interop_servers import RunningServer, start

SERVERS = ("sync", "asyncio", "trio")

#: Sizes around each frame length encoding (7-bit, 16-bit, 64-bit), up to
#: 1 MiB; in bytes on the wire, for text as for binary.
SIZES = (0, 1, 125, 126, 65535, 65536, 2**20)


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tls_server_context: ssl.SSLContext
) -> Iterator[RunningServer]:
    with start(request.param, tls_server_context) as running:
        yield running


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    """The event loop of the asyncio clients."""
    with LoopThread("interop-clients") as running:
        yield running


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> str:
    """The third-party client's name."""
    name: str = request.param
    return name


def test_handshake_selects_the_common_subprotocol_and_carries_path_and_headers(
    client: str, server: RunningServer, loop: LoopThread
) -> None:
    path = unique_path() + "?query=1"
    url = server.url(path)
    options = dict(subprotocols=["unknown", "chat"], headers=[("X-Interop", "yes")])
    with open_client(client, url, loop, **options) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "chat"
        ws.send(command("describe"))
        seen = json.loads(ws.recv())
        ws.close(1000, "")
    assert seen == {"path": path, "subprotocol": "chat", "header": "yes"}
    assert server.recorder.wait(path).subprotocol == "chat"


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_messages_of_0_b_to_1_mib_arrive_unchanged_and_of_the_same_type(
    client: str, server: RunningServer, loop: LoopThread, kind: str
) -> None:
    with open_client(client, server.url(), loop) as ws:
        for size in SIZES:
            message = payload(kind, size)
            ws.send(message)
            assert ws.recv() == message, size


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_a_message_sansws_sends_in_fragments_arrives_whole(
    client: str, server: RunningServer, loop: LoopThread, kind: str
) -> None:
    with open_client(client, server.url(), loop) as ws:
        ws.send(command("fragments", kind))
        assert ws.recv() == joined(kind)


@pytest.mark.parametrize("client", sorted(FRAGMENTING_CLIENTS), indirect=True)
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_a_message_the_client_sends_in_fragments_arrives_whole(
    client: str, server: RunningServer, loop: LoopThread, kind: str
) -> None:
    with open_client(client, server.url(), loop) as ws:
        ws.send_fragments(FRAGMENTS[kind])
        assert ws.recv() == joined(kind)


def test_sansws_answers_a_ping_from_the_client_with_its_payload(
    client: str, server: RunningServer, loop: LoopThread
) -> None:
    with open_client(client, server.url(), loop, observe_pongs=True) as ws:
        for data in (b"", b"\x00interop", b"\xff" * 125):
            ws.ping(data)


def test_the_client_answers_a_ping_from_sansws(
    client: str, server: RunningServer, loop: LoopThread
) -> None:
    with open_client(client, server.url(), loop) as ws:
        for data in ("", "00ff", "ab" * 125):
            ws.send(command("ping", data))
            assert ws.recv() == f"pong {data}"


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4001, "client leaves, été")])
def test_the_close_code_and_reason_the_client_sends_reach_sansws(
    client: str, server: RunningServer, loop: LoopThread, code: int, reason: str
) -> None:
    path = unique_path()
    with open_client(client, server.url(path), loop) as ws:
        ws.close(code, reason)
    record = server.recorder.wait(path)
    assert (record.close_code, record.close_reason) == (code, reason)


@pytest.mark.parametrize(("code", "reason"), [(1001, "going away"), (4002, "server leaves, été")])
def test_the_close_code_and_reason_sansws_sends_reach_the_client(
    client: str, server: RunningServer, loop: LoopThread, code: int, reason: str
) -> None:
    with open_client(client, server.url(), loop) as ws:
        ws.send(command("close", code, reason))
        assert ws.recv_close() == (code, reason)


def test_a_tls_connection_carries_the_handshake_messages_and_close(
    client: str, server: RunningServer, loop: LoopThread, tls_client_context: ssl.SSLContext
) -> None:
    path = unique_path()
    url = server.url(path, tls=True)
    with open_client(client, url, loop, subprotocols=["chat"], tls=tls_client_context) as ws:
        assert ws.subprotocol == "chat"
        for message in (payload("text", 1000), payload("binary", 2**20)):
            ws.send(message)
            assert ws.recv() == message
        ws.send(command("fragments", "text"))
        assert ws.recv() == joined("text")
        ws.close(4003, "tls done")
    record = server.recorder.wait(path)
    assert (record.close_code, record.close_reason) == (4003, "tls done")
