"""broadcast(): which connections it sends to, which it skips or closes,
and when a frame is built once for several, over real endpoints and their
in-memory peers (tests/drivers/test_driver_broadcast.py runs it in every
driver)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from core_harness import QUIET

from sansws import ClientConnection, ServerConnection, State
from sansws.broadcasting import broadcast
from sansws.endpoint import Actions, Endpoint
from sansws.errors import BroadcastSkipped
from sansws.events import Closed, Message
from sansws.extensions.permessage_deflate import PerMessageDeflate


class FakeDriverConnection:
    """A driver's connection as broadcast() uses it: the endpoint, the lock,
    the clock, and what the transport was given."""

    def __init__(self, endpoint: Endpoint, peer: ClientConnection | ServerConnection) -> None:
        self._endpoint = endpoint
        self._lock = contextlib.nullcontext()
        self.peer = peer
        self.written = bytearray()

    def _now(self) -> float:
        return 0.0

    def _write(self, data: bytes) -> None:
        self.written += data

    def _apply(self, actions: Actions) -> None:
        self.written += actions.write

    def received(self) -> list[Any]:
        if not self.written:
            return []  # b"" would tell the peer the stream ended
        events = self.peer.receive_data(bytes(self.written))
        self.written.clear()
        return events


def server_side(compression: Any = None, *, client_compression: Any = None) -> FakeDriverConnection:
    client = ClientConnection(
        "ws://example.com/", **{**QUIET, "compression": client_compression or compression}
    )
    server = ServerConnection(**{**QUIET, "compression": compression})
    endpoint = Endpoint(server, 0.0, write_limit=1024)
    endpoint.receive_data(client.data_to_send(), 0.0)
    endpoint.answer(None, 0.0)
    client.receive_data(endpoint.actions(0.0).write)
    assert client.state is State.OPEN
    return FakeDriverConnection(endpoint, client)


def client_side() -> FakeDriverConnection:
    endpoint = Endpoint(ClientConnection("ws://example.com/", **QUIET), 0.0)
    server = ServerConnection(**QUIET)
    server.receive_data(endpoint.actions(0.0).write)
    server.accept()
    endpoint.receive_data(server.data_to_send(), 0.0)
    endpoint.actions(0.0)
    return FakeDriverConnection(endpoint, server)


def messages(ws: FakeDriverConnection) -> list[str | bytes]:
    return [event.data for event in ws.received() if isinstance(event, Message)]


def test_every_open_connection_gets_the_message_and_the_frame_is_built_once() -> None:
    connections = [server_side() for _ in range(5)]
    result = broadcast(connections, "hello")
    assert (result.sent, result.skipped, result.encodings) == (5, [], 1)
    for ws in connections:
        assert messages(ws) == ["hello"]
    result = broadcast(connections, b"\x00\x01")
    assert all(messages(ws) == [b"\x00\x01"] for ws in connections)


def test_small_messages_share_a_frame_with_compressed_connections_large_ones_do_not() -> None:
    takeover = [server_side("deflate") for _ in range(3)]
    plain = [server_side() for _ in range(2)]
    # Below the threshold a compressed connection sends the message as it
    # is: one frame for all five.
    assert broadcast([*takeover, *plain], "short").encodings == 1
    # Above it, each compressor that remembers earlier messages compresses
    # its own copy; the plain connections still share one frame.
    long = "x" * 10_000
    assert broadcast([*takeover, *plain], long).encodings == 3 + 1
    for ws in [*takeover, *plain]:
        assert messages(ws) == ["short", long]


def test_compression_without_context_takeover_shares_one_compressed_frame() -> None:
    settings = PerMessageDeflate(server_no_context_takeover=True)
    connections = [server_side(settings) for _ in range(4)]
    long = "y" * 10_000
    for _ in range(2):  # the shared compressor leaves no state behind
        result = broadcast(connections, long)
        assert (result.sent, result.encodings) == (4, 1)
        assert all(messages(ws) == [long] for ws in connections)
    # Other settings are another encoding.
    other = server_side(PerMessageDeflate(server_no_context_takeover=True, level=1))
    assert broadcast([*connections, other], long).encodings == 2


def test_client_connections_mask_each_frame_with_their_own_key() -> None:
    clients = [client_side() for _ in range(3)]
    result = broadcast(clients, "from clients")
    assert (result.sent, result.encodings) == (3, 3)
    assert all(messages(ws) == ["from clients"] for ws in clients)


def test_closed_and_fragment_sending_connections_are_skipped() -> None:
    closed, busy, fine = server_side(), server_side(), server_side()
    closed._endpoint.close(1000, "", 0.0)
    closed._apply(closed._endpoint.actions(0.0))
    busy._endpoint.send_fragment("first half ", 0.0)
    result = broadcast([closed, busy, fine], "news")
    assert result.sent == 1
    assert [(s.connection, s.reason) for s in result.skipped] == [
        (closed, "closed"),
        (busy, "sending fragments"),
    ]
    assert messages(fine) == ["news"]
    # The fragmented message goes on undisturbed by the broadcast.
    busy._endpoint.send_fragment("second half", 0.0)
    busy._endpoint.end_fragments()
    busy._write(busy._endpoint.data_to_send())
    assert messages(busy) == ["first half second half"]


def slow(ws: FakeDriverConnection) -> FakeDriverConnection:
    """The driver reports more than write_limit (1024) bytes unwritten."""
    ws._endpoint.unwritten(4096)
    ws._apply(ws._endpoint.actions(0.0))
    return ws


def test_a_connection_above_its_write_limit_is_skipped_or_closed_with_1013() -> None:
    lagging, fine = slow(server_side()), server_side()
    result = broadcast([lagging, fine], "tick")
    assert [(s.connection, s.reason) for s in result.skipped] == [(lagging, "slow")]
    assert messages(lagging) == []
    assert messages(fine) == ["tick"]
    result = broadcast([lagging, fine], "tock", slow="close")
    assert (result.sent, result.closed, result.skipped) == (1, [lagging], [])
    [closing] = [e for e in lagging.received() if isinstance(e, Closed)]
    assert (closing.code, closing.reason) == (1013, "too slow to receive broadcasts")


def test_raise_exceptions_raises_a_group_after_sending_to_the_others() -> None:
    closed, fine = server_side(), server_side()
    closed._endpoint.abort(0.0)
    with pytest.raises(ExceptionGroup) as info:
        broadcast([closed, fine], "x", raise_exceptions=True)
    [skipped] = info.value.exceptions
    assert isinstance(skipped, BroadcastSkipped)
    assert skipped.connection is closed
    assert str(skipped) == f"not sent to {closed!r}: closed"
    assert messages(fine) == ["x"]
    assert broadcast([fine], "y", raise_exceptions=True).sent == 1


def test_what_is_not_a_message_or_a_policy_is_refused() -> None:
    with pytest.raises(TypeError, match="str or bytes-like"):
        broadcast([], 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="slow must be"):
        broadcast([], "x", slow="drop")  # type: ignore[arg-type]
