"""Framing, RFC 6455 section 5: lengths, masking, fragmentation, control
frames, reserved opcodes and bits."""

from __future__ import annotations

import struct

import pytest
from core_harness import (
    MASK,
    ReverseClient,
    ReverseServer,
    assert_failed,
    client_frame,
    frame,
    open_client,
    open_pair,
    open_server,
    parse_all,
    peer_frame,
    transfer,
)

import sansws.frames
from sansws import ClientConnection, ServerConnection
from sansws.errors import LocalProtocolError, ProtocolError
from sansws.events import Message, Ping, Pong
from sansws.frames import Opcode, apply_mask

Conn = ClientConnection | ServerConnection

# ---------------------------------------------------------------- lengths


@pytest.mark.parametrize(
    ("size", "length_byte", "header_size"),
    [(0, 0, 2), (125, 125, 2), (126, 126, 4), (65535, 126, 4), (65536, 127, 10)],
)
def test_payload_length_uses_7_16_or_64_bits_by_size(
    conn: Conn, size: int, length_byte: int, header_size: int
) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    data = peer_frame(conn, Opcode.BINARY, payload)
    assert data[1] & 0x7F == length_byte
    assert conn.receive_data(data) == [Message(payload)]

    conn.send_binary(payload)
    sent = conn.data_to_send()
    assert sent[1] & 0x7F == length_byte
    mask_size = 4 if isinstance(conn, ClientConnection) else 0
    assert len(sent) == header_size + mask_size + size


def test_16_bit_length_frame_arriving_a_byte_at_a_time_is_reassembled(conn: Conn) -> None:
    payload = b"x" * 300
    data = peer_frame(conn, Opcode.TEXT, payload)
    events = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    assert events == [Message("x" * 300)]


def test_64_bit_length_with_most_significant_bit_set_fails_with_1002(conn: Conn) -> None:
    mask_bit = 0 if isinstance(conn, ClientConnection) else 0x80
    header = bytes([0x82, mask_bit | 127]) + struct.pack("!Q", 1 << 63)
    events = conn.receive_data(header)
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "most significant bit" in str(error)


@pytest.mark.parametrize(
    ("length_field", "size"),
    [
        (b"\x7e\x00\x00", 0),
        (b"\x7e\x00\x7d", 125),
        (b"\x7f" + (125).to_bytes(8, "big"), 125),
        (b"\x7f" + (65535).to_bytes(8, "big"), 65535),
    ],
    ids=["16-bit-0", "16-bit-125", "64-bit-125", "64-bit-65535"],
)
def test_length_not_in_its_shortest_encoding_fails_with_1002(
    conn: Conn, length_field: bytes, size: int
) -> None:
    # RFC 6455 section 5.2: "the minimal number of bytes MUST be used".
    if isinstance(conn, ServerConnection):
        header = bytes([0x82, 0x80 | length_field[0]]) + length_field[1:] + MASK
    else:
        header = b"\x82" + length_field
    events = conn.receive_data(header)  # failed at the header, payload unread
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "shortest" in str(error)


def test_many_frames_in_one_read_each_yield_a_message(conn: Conn) -> None:
    data = b"".join(peer_frame(conn, Opcode.TEXT, str(i).encode()) for i in range(20))
    assert conn.receive_data(data) == [Message(str(i)) for i in range(20)]


# ---------------------------------------------------------------- masking


def test_server_fails_an_unmasked_client_frame_with_1002() -> None:
    server = open_server()
    events = server.receive_data(frame(Opcode.TEXT, b"hello"))
    error = assert_failed(server, events, 1002, ProtocolError).error
    assert "unmasked" in str(error)


def test_client_fails_a_masked_server_frame_with_1002() -> None:
    client = open_client()
    events = client.receive_data(frame(Opcode.TEXT, b"hello", mask=MASK))
    error = assert_failed(client, events, 1002, ProtocolError).error
    assert "masked frame from server" in str(error)


def test_client_masks_every_frame_and_server_masks_none() -> None:
    client, server = open_pair()
    client.send_text("hi")
    client.send_binary(b"bin")
    client.send_ping(b"p")
    client.send_pong(b"q")
    client.close()
    client_frames = parse_all(client.data_to_send())
    assert [masked for _, masked in client_frames] == [True] * 5
    assert [f.payload for f, _ in client_frames] == [b"hi", b"bin", b"p", b"q", b"\x03\xe8"]

    server.send_text("hi")
    server.send_binary(b"bin")
    server.send_ping(b"p")
    server.close()
    assert [masked for _, masked in parse_all(server.data_to_send())] == [False] * 4


def test_client_masking_keys_come_from_the_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []

    def token_bytes(n: int) -> bytes:
        drawn.append(n)
        return bytes((i * 7 + 1) % 256 for i in range(n))

    client = open_client()
    monkeypatch.setattr(sansws.frames.secrets, "token_bytes", token_bytes)
    for _ in range(3):
        client.send_binary(b"abcd")
    data = client.data_to_send()
    assert len(drawn) == 1  # keys are drawn in bulk, not one system call each
    pool = token_bytes(drawn[0])
    keys = [data[2 + 10 * i : 6 + 10 * i] for i in range(3)]
    assert keys == [pool[0:4], pool[4:8], pool[8:12]]


def test_client_masking_key_differs_for_every_frame() -> None:
    client = open_client()
    for _ in range(64):
        client.send_binary(b"")
    data = client.data_to_send()
    keys = {data[6 * i + 2 : 6 * i + 6] for i in range(64)}
    assert len(keys) == 64


def test_masked_payload_on_the_wire_is_the_payload_xor_the_key() -> None:
    client = open_client()
    client.send_binary(b"\x00" * 8 + b"payload")
    data = client.data_to_send()
    key = data[2:6]
    assert data[6:14] == key * 2
    assert apply_mask(data[6:], key) == b"\x00" * 8 + b"payload"


def test_masked_payload_split_at_any_offset_unmasks_correctly() -> None:
    payload = bytes(range(200))
    data = client_frame(Opcode.BINARY, payload)
    for split in range(1, len(data)):
        server = open_server()
        events = server.receive_data(data[:split]) + server.receive_data(data[split:])
        assert events == [Message(payload)], split


# ---------------------------------------------------------------- fragmentation


def test_fragments_are_assembled_into_one_message(conn: Conn) -> None:
    data = (
        peer_frame(conn, Opcode.TEXT, b"Hel", fin=False)
        + peer_frame(conn, Opcode.CONTINUATION, b"lo ", fin=False)
        + peer_frame(conn, Opcode.CONTINUATION, b"", fin=False)
        + peer_frame(conn, Opcode.CONTINUATION, b"world")
    )
    assert conn.receive_data(data) == [Message("Hello world")]
    data = peer_frame(conn, Opcode.BINARY, b"\x01", fin=False) + peer_frame(
        conn, Opcode.CONTINUATION, b"\x02"
    )
    assert conn.receive_data(data) == [Message(b"\x01\x02")]


def test_continuation_frame_without_a_message_to_continue_fails_with_1002(conn: Conn) -> None:
    events = conn.receive_data(peer_frame(conn, Opcode.CONTINUATION, b"x"))
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "continuation" in str(error)


def test_continuation_after_a_complete_message_fails_with_1002(conn: Conn) -> None:
    events = conn.receive_data(
        peer_frame(conn, Opcode.TEXT, b"done") + peer_frame(conn, Opcode.CONTINUATION, b"x")
    )
    assert events[0] == Message("done")
    assert_failed(conn, events, 1002, ProtocolError)


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_new_data_frame_inside_a_fragmented_message_fails_with_1002(
    conn: Conn, opcode: Opcode
) -> None:
    data = peer_frame(conn, Opcode.TEXT, b"a", fin=False) + peer_frame(conn, opcode, b"b")
    events = conn.receive_data(data)
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "inside a fragmented message" in str(error)


def test_control_frames_are_allowed_between_fragments(conn: Conn) -> None:
    data = (
        peer_frame(conn, Opcode.TEXT, b"frag", fin=False)
        + peer_frame(conn, Opcode.PING, b"ping")
        + peer_frame(conn, Opcode.PONG, b"pong")
        + peer_frame(conn, Opcode.CONTINUATION, b"ment")
    )
    assert conn.receive_data(data) == [Ping(b"ping"), Pong(b"pong"), Message("fragment")]
    ((pong, _),) = parse_all(conn.data_to_send())
    assert (pong.opcode, pong.payload) == (Opcode.PONG, b"ping")


def test_outgoing_fragments_use_continuation_frames_and_fin_on_the_last() -> None:
    client, server = open_pair()
    client.send_text("a", final=False)
    client.send_ping(b"between")
    client.send_text("b", final=False)
    client.send_text("c")
    frames = [f for f, _ in parse_all(client.data_to_send())]
    assert [(f.opcode, f.fin) for f in frames] == [
        (Opcode.TEXT, False),
        (Opcode.PING, True),
        (Opcode.CONTINUATION, False),
        (Opcode.CONTINUATION, True),
    ]
    server.send_binary(b"x", final=False)
    server.send_binary(memoryview(b"y"))
    assert transfer(server, client) == [Message(b"xy")]


def test_sending_the_other_kind_of_message_inside_a_fragmented_one_is_refused() -> None:
    client = open_client()
    client.send_text("a", final=False)
    with pytest.raises(LocalProtocolError, match="fragmented text message"):
        client.send_binary(b"b")
    client.send_text("b")
    client.send_binary(b"c", final=False)
    with pytest.raises(LocalProtocolError, match="fragmented binary message"):
        client.send_text("d")


# ---------------------------------------------------------------- control frames


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_control_frame_longer_than_125_bytes_fails_with_1002_at_its_header(
    conn: Conn, opcode: Opcode
) -> None:
    data = peer_frame(conn, opcode, b"\x03\xe8" + b"x" * 124)
    header = data[: 4 + (4 if isinstance(conn, ServerConnection) else 0)]
    events = conn.receive_data(header)
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "126 bytes > 125" in str(error)


def test_control_frame_of_exactly_125_bytes_is_accepted(conn: Conn) -> None:
    assert conn.receive_data(peer_frame(conn, Opcode.PING, b"p" * 125)) == [Ping(b"p" * 125)]


@pytest.mark.parametrize("opcode", [Opcode.PING, Opcode.PONG, Opcode.CLOSE])
def test_fragmented_control_frame_fails_with_1002(conn: Conn, opcode: Opcode) -> None:
    events = conn.receive_data(peer_frame(conn, opcode, b"", fin=False))
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "fragmented control frame" in str(error)


@pytest.mark.parametrize("rsv", ["rsv1", "rsv2", "rsv3"])
def test_control_frame_with_a_reserved_bit_fails_with_1002(conn: Conn, rsv: str) -> None:
    events = conn.receive_data(peer_frame(conn, Opcode.PING, b"", **{rsv: True}))
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "reserved bits" in str(error)


def test_control_frame_with_rsv1_fails_even_when_an_extension_uses_rsv1() -> None:
    _client, server = open_pair(
        {"extensions": [ReverseClient()]}, {"extensions": [ReverseServer()]}
    )
    events = server.receive_data(client_frame(Opcode.PING, b"", rsv1=True))
    assert_failed(server, events, 1002, ProtocolError)


# ---------------------------------------------------------------- reserved opcodes and bits


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcode_fails_with_1002(conn: Conn, opcode: int) -> None:
    events = conn.receive_data(peer_frame(conn, opcode, b"data"))
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert f"reserved opcode {opcode}" in str(error)


@pytest.mark.parametrize("rsv", ["rsv1", "rsv2", "rsv3"])
@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_reserved_bit_on_a_data_frame_without_an_extension_fails_with_1002(
    conn: Conn, rsv: str, opcode: Opcode
) -> None:
    events = conn.receive_data(peer_frame(conn, opcode, b"data", **{rsv: True}))
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "without an extension" in str(error)


def test_reserved_bit_on_a_continuation_frame_fails_with_1002(conn: Conn) -> None:
    data = peer_frame(conn, Opcode.TEXT, b"a", fin=False) + peer_frame(
        conn, Opcode.CONTINUATION, b"b", rsv1=True
    )
    events = conn.receive_data(data)
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "continuation" in str(error)


def test_rsv1_is_accepted_when_the_negotiated_extension_uses_it() -> None:
    _client, server = open_pair(
        {"extensions": [ReverseClient()]}, {"extensions": [ReverseServer()]}
    )
    data = client_frame(Opcode.TEXT, b"olleh", rsv1=True)
    assert server.receive_data(data) == [Message("hello")]
    # A bit the extension did not claim is still refused.
    events = server.receive_data(client_frame(Opcode.TEXT, b"x", rsv2=True))
    assert_failed(server, events, 1002, ProtocolError)


def test_failure_reports_the_error_on_the_connection_and_in_the_event(conn: Conn) -> None:
    events = conn.receive_data(peer_frame(conn, 3))
    closed = assert_failed(conn, events, 1002, ProtocolError)
    assert isinstance(closed.error, ProtocolError)
    assert closed.error.code == 1002
    assert closed.reason == closed.error.reason == "reserved opcode 3"
    assert conn.close_reason == "reserved opcode 3"


@pytest.mark.parametrize("size", [5, 300, 70000])
@pytest.mark.parametrize("opcode", [Opcode.BINARY, Opcode.PING])
def test_frame_split_anywhere_in_its_header_is_reassembled(
    conn: Conn, size: int, opcode: Opcode
) -> None:
    size = min(size, 125) if opcode == Opcode.PING else size
    payload = bytes(i % 256 for i in range(size))
    data = peer_frame(conn, opcode, payload)
    header_size = len(data) - size
    expected = [Message(payload)] if opcode == Opcode.BINARY else [Ping(payload)]
    for split in range(1, header_size + 2):
        fresh = open_client() if isinstance(conn, ClientConnection) else open_server()
        events = fresh.receive_data(data[:split])
        assert events == []
        assert fresh.receive_data(data[split:]) == expected


def test_control_frame_payload_arriving_in_pieces_is_handled_once_whole(conn: Conn) -> None:
    data = peer_frame(conn, Opcode.PING, b"0123456789")
    events = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
        if i < len(data) - 1:
            assert events == []
    assert events == [Ping(b"0123456789")]


def test_outgoing_fragments_set_the_extension_bits_on_the_first_frame_only() -> None:
    client, _server = open_pair(
        {"extensions": [ReverseClient()]}, {"extensions": [ReverseServer()]}
    )
    client.send_binary(b"ab", final=False)
    client.send_binary(b"cd")
    frames = [f for f, _ in parse_all(client.data_to_send())]
    assert [(f.opcode, f.rsv1, f.payload) for f in frames] == [
        (Opcode.BINARY, True, b"ba"),
        (Opcode.CONTINUATION, False, b"dc"),
    ]


def test_failure_while_closing_sends_no_second_close_frame(conn: Conn) -> None:
    conn.close(1000)
    conn.data_to_send()
    events = conn.receive_data(peer_frame(conn, 3))
    assert_failed(conn, events, 1002, ProtocolError, close_on_wire=False)
