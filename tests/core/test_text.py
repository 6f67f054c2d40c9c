"""Text messages: UTF-8 is validated incrementally and fails fast with 1007
(RFC 6455 sections 5.6 and 8.1)."""

from __future__ import annotations

import pytest
from core_harness import assert_failed, open_client, peer_frame

from sansws import ClientConnection, ServerConnection
from sansws.errors import ProtocolError
from sansws.events import Closed, Message, MessageChunk
from sansws.frames import Opcode

Conn = ClientConnection | ServerConnection

# Invalid sequences and the index of the first byte that makes them invalid:
# from that byte on, no continuation can produce valid UTF-8.
INVALID = [
    pytest.param(b"\xff", 0, id="never-valid-byte"),
    pytest.param(b"\xf5\x80\x80\x80", 0, id="start-byte-above-f4"),
    pytest.param(b"\xc0\xaf", 0, id="overlong-2-byte"),
    pytest.param(b"\xe0\x80\xaf", 1, id="overlong-3-byte"),
    pytest.param(b"\xf0\x80\x80\xaf", 1, id="overlong-4-byte"),
    pytest.param(b"\xed\xa0\x80", 1, id="utf16-surrogate"),
    pytest.param(b"\xed\xbf\xbf", 1, id="utf16-low-surrogate"),
    pytest.param(b"\xf4\x90\x80\x80", 1, id="above-u10ffff"),
    pytest.param(b"\xce\x41", 1, id="missing-continuation"),
    pytest.param(b"\x80", 0, id="lone-continuation"),
]


def _header_and_payload(conn: Conn, payload: bytes, **kwargs: bool) -> tuple[bytes, bytes]:
    data = peer_frame(conn, Opcode.TEXT, payload, **kwargs)
    split = len(data) - len(payload)
    return data[:split], data[split:]


def test_valid_utf8_text_arrives_as_str(conn: Conn) -> None:
    text = "κόσμε, 世界, 🎉"
    assert conn.receive_data(peer_frame(conn, Opcode.TEXT, text.encode())) == [Message(text)]


def test_binary_messages_are_not_utf8_validated(conn: Conn) -> None:
    assert conn.receive_data(peer_frame(conn, Opcode.BINARY, b"\xff\xfe")) == [Message(b"\xff\xfe")]


@pytest.mark.parametrize(("sequence", "bad_index"), INVALID)
def test_invalid_utf8_in_a_whole_text_frame_fails_with_1007(
    conn: Conn, sequence: bytes, bad_index: int
) -> None:
    events = conn.receive_data(peer_frame(conn, Opcode.TEXT, b"ok " + sequence))
    error = assert_failed(conn, events, 1007, ProtocolError).error
    assert "invalid UTF-8" in str(error)


@pytest.mark.parametrize(("sequence", "bad_index"), INVALID)
def test_invalid_utf8_fails_in_the_read_that_delivers_the_bad_byte_within_a_frame(
    conn: Conn, sequence: bytes, bad_index: int
) -> None:
    # The frame is far from complete when the bad byte arrives.
    header, payload = _header_and_payload(conn, b"ok " + sequence + b"x" * 100)
    assert conn.receive_data(header + payload[:3]) == []
    for i in range(len(sequence)):
        events = conn.receive_data(payload[3 + i : 4 + i])
        if i < bad_index:
            assert events == []
        else:
            assert_failed(conn, events, 1007, ProtocolError)
            return
    pytest.fail("the connection never failed")


@pytest.mark.parametrize(("sequence", "bad_index"), INVALID)
def test_invalid_utf8_fails_in_the_fragment_that_holds_the_bad_byte(
    conn: Conn, sequence: bytes, bad_index: int
) -> None:
    # The valid start of the sequence ends one fragment; the bad byte alone
    # is the next, which is not the last one.
    first = peer_frame(conn, Opcode.TEXT, b"ok " + sequence[:bad_index], fin=False)
    assert conn.receive_data(first) == []
    bad_byte = sequence[bad_index : bad_index + 1]
    bad = peer_frame(conn, Opcode.CONTINUATION, bad_byte, fin=False)
    events = conn.receive_data(bad)
    assert_failed(conn, events, 1007, ProtocolError)


def test_character_split_across_fragments_is_reassembled(conn: Conn) -> None:
    euro = "€".encode()
    data = (
        peer_frame(conn, Opcode.TEXT, b"price: " + euro[:1], fin=False)
        + peer_frame(conn, Opcode.CONTINUATION, euro[1:2], fin=False)
        + peer_frame(conn, Opcode.CONTINUATION, euro[2:] + b"5")
    )
    assert conn.receive_data(data) == [Message("price: €5")]


def test_character_split_across_reads_of_one_frame_is_reassembled(conn: Conn) -> None:
    text = "🎉" * 10
    data = peer_frame(conn, Opcode.TEXT, text.encode())
    events = []
    for i in range(0, len(data), 3):
        events += conn.receive_data(data[i : i + 3])
    assert events == [Message(text)]


def test_text_message_ending_inside_a_character_fails_with_1007(conn: Conn) -> None:
    data = peer_frame(conn, Opcode.TEXT, b"ok \xe2\x82", fin=False) + peer_frame(
        conn, Opcode.CONTINUATION, b""
    )
    events = conn.receive_data(data)
    assert_failed(conn, events, 1007, ProtocolError)


def test_single_frame_text_ending_inside_a_character_fails_with_1007(conn: Conn) -> None:
    events = conn.receive_data(peer_frame(conn, Opcode.TEXT, b"\xf0\x9f\x8e"))
    assert_failed(conn, events, 1007, ProtocolError)


@pytest.mark.parametrize(("sequence", "bad_index"), INVALID)
def test_streamed_text_fails_fast_on_invalid_utf8(sequence: bytes, bad_index: int) -> None:
    client = open_client(stream_messages=True)
    frame = peer_frame(client, Opcode.TEXT, b"ok " + sequence + b"tail")
    header_size = len(frame) - len(sequence) - 7
    events = client.receive_data(frame[: header_size + 3 + bad_index])
    assert [e for e in events if isinstance(e, Closed)] == []
    assert "".join(e.data for e in events if isinstance(e, MessageChunk)) == "ok "  # type: ignore[misc]
    events = client.receive_data(frame[header_size + 3 + bad_index : header_size + 4 + bad_index])
    assert_failed(client, events, 1007, ProtocolError)
