"""stream_messages=True: a message is delivered as MessageChunk events while
its payload arrives, never buffered whole."""

from __future__ import annotations

import pytest
from core_harness import assert_failed, open_client, open_server, peer_frame

from sansws import ClientConnection, ServerConnection
from sansws.errors import ProtocolError
from sansws.events import Message, MessageChunk, Ping
from sansws.frames import Opcode

Conn = ClientConnection | ServerConnection


@pytest.fixture(params=["client", "server"])
def streaming(request: pytest.FixtureRequest) -> Conn:
    if request.param == "client":
        return open_client(stream_messages=True)
    return open_server(stream_messages=True)


def split_frame(conn: Conn, opcode: int, payload: bytes, **kwargs: bool) -> tuple[bytes, bytes]:
    """A frame's header (with masking key) and its payload as on the wire."""
    data = peer_frame(conn, opcode, payload, **kwargs)
    return data[: len(data) - len(payload)], data[len(data) - len(payload) :]


def test_whole_message_in_one_read_is_one_final_chunk(streaming: Conn) -> None:
    events = streaming.receive_data(peer_frame(streaming, Opcode.BINARY, b"abc"))
    assert events == [MessageChunk(b"abc", True)]
    events = streaming.receive_data(peer_frame(streaming, Opcode.TEXT, "é".encode()))
    assert events == [MessageChunk("é", True)]


def test_empty_message_is_one_empty_final_chunk(streaming: Conn) -> None:
    assert streaming.receive_data(peer_frame(streaming, Opcode.TEXT)) == [MessageChunk("", True)]
    assert streaming.receive_data(peer_frame(streaming, Opcode.BINARY)) == [MessageChunk(b"", True)]


def test_each_read_delivers_the_payload_it_carried(streaming: Conn) -> None:
    payload = bytes(range(256)) * 40
    header, wire = split_frame(streaming, Opcode.BINARY, payload)
    assert streaming.receive_data(header) == []  # nothing to deliver yet
    received = b""
    for start in range(0, len(wire), 1000):
        events = streaming.receive_data(wire[start : start + 1000])
        # Exactly the bytes of this read: nothing is held back to be
        # delivered with the whole message.
        final = start + 1000 >= len(wire)
        assert events == [MessageChunk(payload[start : start + 1000], final)]
        received += events[0].data  # type: ignore[union-attr, operator]
    assert received == payload


def test_fragments_are_delivered_as_chunks_with_final_on_the_last(streaming: Conn) -> None:
    data = (
        peer_frame(streaming, Opcode.TEXT, b"one ", fin=False)
        + peer_frame(streaming, Opcode.PING, b"p")
        + peer_frame(streaming, Opcode.CONTINUATION, b"two ", fin=False)
        + peer_frame(streaming, Opcode.CONTINUATION, b"three")
    )
    assert streaming.receive_data(data) == [
        MessageChunk("one ", False),
        Ping(b"p"),
        MessageChunk("two ", False),
        MessageChunk("three", True),
    ]


def test_empty_final_fragment_still_ends_the_message(streaming: Conn) -> None:
    data = peer_frame(streaming, Opcode.BINARY, b"x", fin=False) + peer_frame(
        streaming, Opcode.CONTINUATION, b""
    )
    assert streaming.receive_data(data) == [MessageChunk(b"x", False), MessageChunk(b"", True)]


def test_text_chunks_never_split_a_character(streaming: Conn) -> None:
    text = "aé€🎉" * 8
    header, wire = split_frame(streaming, Opcode.TEXT, text.encode())
    streaming.receive_data(header)
    chunks: list[MessageChunk] = []
    for i in range(len(wire)):
        for event in streaming.receive_data(wire[i : i + 1]):
            assert isinstance(event, MessageChunk)
            assert isinstance(event.data, str)
            chunks.append(event)
    assert "".join(c.data for c in chunks) == text  # type: ignore[misc]
    assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    # One chunk per character: each completes with the read of its last byte.
    assert len(chunks) == len(text)


def test_character_split_across_fragments_comes_whole_in_the_later_chunk(
    streaming: Conn,
) -> None:
    euro = "€".encode()
    data = peer_frame(streaming, Opcode.TEXT, b"a" + euro[:2], fin=False) + peer_frame(
        streaming, Opcode.CONTINUATION, euro[2:]
    )
    assert streaming.receive_data(data) == [MessageChunk("a", False), MessageChunk("€", True)]


def test_streaming_does_not_change_whole_message_delivery_by_default() -> None:
    client = open_client()
    header, wire = split_frame(client, Opcode.BINARY, b"abcdef")
    assert client.receive_data(header + wire[:3]) == []
    assert client.receive_data(wire[3:]) == [Message(b"abcdef")]


def test_streamed_text_with_invalid_utf8_fails_with_1007(streaming: Conn) -> None:
    data = peer_frame(streaming, Opcode.TEXT, b"ok", fin=False)
    assert streaming.receive_data(data) == [MessageChunk("ok", False)]
    events = streaming.receive_data(peer_frame(streaming, Opcode.CONTINUATION, b"\xff"))
    assert_failed(streaming, events, 1007, ProtocolError)
