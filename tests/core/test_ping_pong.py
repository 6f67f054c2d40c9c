"""Ping and Pong (RFC 6455 sections 5.5.2 and 5.5.3)."""

from __future__ import annotations

import pytest
from core_harness import open_pair, parse_all, peer_frame, transfer

from sansws import ClientConnection, ServerConnection
from sansws.errors import LocalProtocolError
from sansws.events import Message, Ping, Pong
from sansws.frames import Opcode

Conn = ClientConnection | ServerConnection


def test_ping_is_answered_with_a_pong_carrying_the_same_data(conn: Conn) -> None:
    assert conn.receive_data(peer_frame(conn, Opcode.PING, b"hello")) == [Ping(b"hello")]
    ((pong, masked),) = parse_all(conn.data_to_send())
    assert (pong.opcode, pong.payload, pong.fin) == (Opcode.PONG, b"hello", True)
    assert masked is isinstance(conn, ClientConnection)


def test_empty_ping_is_answered_with_an_empty_pong(conn: Conn) -> None:
    assert conn.receive_data(peer_frame(conn, Opcode.PING)) == [Ping(b"")]
    ((pong, _),) = parse_all(conn.data_to_send())
    assert (pong.opcode, pong.payload) == (Opcode.PONG, b"")


def test_each_ping_gets_its_own_pong_in_order(conn: Conn) -> None:
    data = b"".join(peer_frame(conn, Opcode.PING, bytes([i])) for i in range(3))
    assert conn.receive_data(data) == [Ping(b"\x00"), Ping(b"\x01"), Ping(b"\x02")]
    assert [f.payload for f, _ in parse_all(conn.data_to_send())] == [b"\x00", b"\x01", b"\x02"]


def test_pong_is_reported_and_not_answered(conn: Conn) -> None:
    assert conn.receive_data(peer_frame(conn, Opcode.PONG, b"beat")) == [Pong(b"beat")]
    assert conn.data_to_send() == b""


def test_ping_and_pong_round_trip_between_client_and_server() -> None:
    client, server = open_pair()
    client.send_ping(b"c")
    assert transfer(client, server) == [Ping(b"c")]
    assert transfer(server, client) == [Pong(b"c")]
    server.send_ping(bytearray(b"s"))
    assert transfer(server, client) == [Ping(b"s")]
    assert transfer(client, server) == [Pong(b"s")]
    server.send_pong(b"unsolicited")
    assert transfer(server, client) == [Pong(b"unsolicited")]


def test_ping_payload_may_be_125_bytes_and_no_more(conn: Conn) -> None:
    conn.send_ping(b"x" * 125)
    conn.send_pong(b"x" * 125)
    assert [len(f.payload) for f, _ in parse_all(conn.data_to_send())] == [125, 125]
    with pytest.raises(LocalProtocolError, match="126 bytes"):
        conn.send_ping(b"x" * 126)
    with pytest.raises(LocalProtocolError, match="126 bytes"):
        conn.send_pong(b"x" * 126)
    assert conn.data_to_send() == b""


def test_pong_reply_is_queued_after_output_already_queued(conn: Conn) -> None:
    conn.send_text("first")
    conn.receive_data(peer_frame(conn, Opcode.PING, b"p"))
    frames = [f for f, _ in parse_all(conn.data_to_send())]
    assert [f.opcode for f in frames] == [Opcode.TEXT, Opcode.PONG]


def test_ping_between_messages_does_not_disturb_them(conn: Conn) -> None:
    data = (
        peer_frame(conn, Opcode.TEXT, b"a")
        + peer_frame(conn, Opcode.PING, b"p")
        + peer_frame(conn, Opcode.BINARY, b"b")
    )
    assert conn.receive_data(data) == [Message("a"), Ping(b"p"), Message(b"b")]
