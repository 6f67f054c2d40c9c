"""The closing handshake, RFC 6455 sections 5.5.1, 7 and 7.4."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from core_harness import (
    assert_failed,
    close_frames,
    new_client,
    open_pair,
    parse_all,
    peer_frame,
    request_bytes,
    transfer,
)

from sansws import ClientConnection, ServerConnection, State
from sansws.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    LocalProtocolError,
    ProtocolError,
)
from sansws.events import Closed, Message, Ping
from sansws.frames import Opcode

Conn = ClientConnection | ServerConnection

VALID_CODES = [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1999, 2000, 2999, 5000, 65535]


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


# ---------------------------------------------------------------- receiving a Close


@pytest.mark.parametrize("code", VALID_CODES)
def test_close_with_a_valid_code_is_accepted_and_its_code_and_reason_echoed(
    conn: Conn, code: int
) -> None:
    # Browsers show the reason of the Close frame they receive (CloseEvent),
    # so the reply carries it back, as websockets, wsproto and ws do.
    events = conn.receive_data(peer_frame(conn, Opcode.CLOSE, close_payload(code, b"bye")))
    assert events == [Closed(code, "bye", clean=True)]
    assert close_frames(conn.data_to_send()) == [close_payload(code, b"bye")]
    assert conn.state is State.CLOSED
    assert (conn.close_code, conn.close_reason, conn.close_error) == (code, "bye", None)


@pytest.mark.parametrize("code", INVALID_CODES)
def test_close_with_a_code_not_allowed_on_the_wire_fails_with_1002(conn: Conn, code: int) -> None:
    events = conn.receive_data(peer_frame(conn, Opcode.CLOSE, close_payload(code)))
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert f"invalid close code {code}" in str(error)


def test_close_with_a_1_byte_payload_fails_with_1002(conn: Conn) -> None:
    events = conn.receive_data(peer_frame(conn, Opcode.CLOSE, b"\x03"))
    error = assert_failed(conn, events, 1002, ProtocolError).error
    assert "1 byte" in str(error)


def test_close_reason_that_is_not_utf8_fails_with_1007(conn: Conn) -> None:
    events = conn.receive_data(peer_frame(conn, Opcode.CLOSE, close_payload(1000, b"\xff")))
    error = assert_failed(conn, events, 1007, ProtocolError).error
    assert "close reason" in str(error)


def test_close_without_a_payload_reports_1005_and_is_answered_without_a_code(
    conn: Conn,
) -> None:
    events = conn.receive_data(peer_frame(conn, Opcode.CLOSE))
    assert events == [Closed(1005, "", clean=True)]
    assert events[0].ok  # type: ignore[union-attr]
    assert close_frames(conn.data_to_send()) == [b""]


def test_close_reason_of_123_utf8_bytes_is_accepted(conn: Conn) -> None:
    reason = "é" * 61 + "x"
    payload = close_payload(1000, reason.encode())
    assert len(payload) == 125
    assert conn.receive_data(peer_frame(conn, Opcode.CLOSE, payload)) == [
        Closed(1000, reason, clean=True)
    ]


# ---------------------------------------------------------------- the handshake


def test_close_handshake_started_by_the_client() -> None:
    client, server = open_pair()
    client.close(1001, "going")
    assert client.state is State.CLOSING
    assert not client.should_close_transport

    assert transfer(client, server) == [Closed(1001, "going", clean=True)]
    assert server.state is State.CLOSED
    # RFC 6455 section 7.1.1: the server closes the TCP connection first.
    assert server.should_close_transport

    assert transfer(server, client) == [Closed(1001, "going", clean=True)]
    assert client.state is State.CLOSED
    assert not client.should_close_transport  # it waits for the server's EOF
    assert client.receive_data(b"") == []
    assert client.should_close_transport


def test_close_handshake_started_by_the_server() -> None:
    client, server = open_pair()
    server.close(4000, "app")
    assert server.state is State.CLOSING
    assert not server.should_close_transport

    assert transfer(server, client) == [Closed(4000, "app", clean=True)]
    assert client.state is State.CLOSED
    assert not client.should_close_transport

    assert transfer(client, server) == [Closed(4000, "app", clean=True)]
    assert server.state is State.CLOSED
    assert server.should_close_transport


def test_simultaneous_close_completes_on_both_sides() -> None:
    client, server = open_pair()
    client.close(1000)
    server.close(1001)
    to_server, to_client = client.data_to_send(), server.data_to_send()
    assert server.receive_data(to_server) == [Closed(1000, "", clean=True)]
    assert client.receive_data(to_client) == [Closed(1001, "", clean=True)]
    # Each had sent its Close already: neither sends another.
    assert client.data_to_send() == server.data_to_send() == b""
    assert server.should_close_transport


def test_close_without_code_is_sent_as_an_empty_close_frame() -> None:
    client, server = open_pair()
    client.close(None)
    assert close_frames(client.data_to_send()) == [b""]
    assert server.receive_data(b"") == [Closed(1006)]


def test_messages_still_arrive_while_closing(conn: Conn) -> None:
    conn.close()
    conn.data_to_send()
    events = conn.receive_data(
        peer_frame(conn, Opcode.TEXT, b"late") + peer_frame(conn, Opcode.CLOSE, close_payload(1000))
    )
    assert events == [Message("late"), Closed(1000, "", clean=True)]
    assert conn.data_to_send() == b""  # the Close was already sent


def test_ping_while_closing_is_reported_and_answered(conn: Conn) -> None:
    # RFC 6455 section 5.5.2: a Pong answers a Ping "unless it already
    # received a Close frame"; having sent one does not count.
    conn.close()
    conn.data_to_send()
    assert conn.receive_data(peer_frame(conn, Opcode.PING, b"?")) == [Ping(b"?")]
    [(pong, _)] = parse_all(conn.data_to_send())
    assert (pong.opcode, pong.payload) == (Opcode.PONG, b"?")


def test_nothing_is_processed_after_the_close_frame(conn: Conn) -> None:
    data = peer_frame(conn, Opcode.CLOSE, close_payload(1000)) + peer_frame(
        conn, Opcode.TEXT, b"after"
    )
    assert conn.receive_data(data) == [Closed(1000, "", clean=True)]
    assert conn.receive_data(peer_frame(conn, Opcode.TEXT, b"later")) == []


SENDS: list[Callable[[Conn], None]] = [
    lambda c: c.send_text("x"),
    lambda c: c.send_binary(b"x"),
    lambda c: c.send_ping(b""),
    lambda c: c.send_pong(b""),
]


@pytest.mark.parametrize("send", SENDS, ids=["text", "binary", "ping", "pong"])
def test_sending_after_close_was_sent_raises_invalid_state(
    conn: Conn, send: Callable[[Conn], None]
) -> None:
    conn.close()
    conn.data_to_send()
    with pytest.raises(InvalidState) as info:
        send(conn)
    assert info.value.state is State.CLOSING
    assert conn.data_to_send() == b""


@pytest.mark.parametrize("send", SENDS, ids=["text", "binary", "ping", "pong"])
def test_sending_after_close_was_received_raises_invalid_state(
    conn: Conn, send: Callable[[Conn], None]
) -> None:
    conn.receive_data(peer_frame(conn, Opcode.CLOSE, close_payload(1000)))
    conn.data_to_send()
    with pytest.raises(InvalidState) as info:
        send(conn)
    assert info.value.state is State.CLOSED


@pytest.mark.parametrize("send", SENDS, ids=["text", "binary", "ping", "pong"])
def test_sending_before_the_handshake_completes_raises_invalid_state(
    send: Callable[[Conn], None],
) -> None:
    with pytest.raises(InvalidState) as info:
        send(new_client())
    assert info.value.state is State.CONNECTING


# ---------------------------------------------------------------- the transport


def test_end_of_stream_without_close_yields_closed_1006(conn: Conn) -> None:
    events = conn.receive_data(b"")
    assert events == [Closed(1006, "", clean=False)]
    assert conn.state is State.CLOSED
    assert conn.should_close_transport
    assert conn.data_to_send() == b""  # no Close frame on a dead transport
    assert conn.receive_data(b"") == []


def test_end_of_stream_while_closing_yields_closed_1006(conn: Conn) -> None:
    conn.close()
    events = conn.receive_data(b"")
    assert events == [Closed(1006, "", clean=False)]
    assert conn.should_close_transport


def test_end_of_stream_inside_a_frame_yields_closed_1006(conn: Conn) -> None:
    assert conn.receive_data(peer_frame(conn, Opcode.TEXT, b"cut short")[:5]) == []
    assert conn.receive_data(b"") == [Closed(1006, "", clean=False)]


def test_server_closes_the_transport_as_soon_as_it_is_closed() -> None:
    _client, server = open_pair()
    server.receive_data(peer_frame(server, Opcode.CLOSE, close_payload(1000)))
    assert server.should_close_transport
    assert server.next_deadline() is None


def test_client_waits_for_the_server_to_close_the_transport() -> None:
    client, _server = open_pair({"close_timeout": 5.0})
    client.receive_data(peer_frame(client, Opcode.CLOSE, close_payload(1000)))
    assert client.state is State.CLOSED
    assert not client.should_close_transport
    assert client.next_deadline() == float("-inf")
    assert client.receive_data(b"") == []
    assert client.should_close_transport
    assert client.next_deadline() is None  # nothing left to wait for


def test_client_with_no_close_timeout_waits_for_eof_forever() -> None:
    client, _server = open_pair()
    client.receive_data(peer_frame(client, Opcode.CLOSE, close_payload(1000)))
    assert not client.should_close_transport
    assert client.next_deadline() is None
    client.receive_data(b"")
    assert client.should_close_transport


def test_failure_closes_the_transport_at_once_on_the_client_too() -> None:
    client, _server = open_pair({"close_timeout": 5.0})
    events = client.receive_data(peer_frame(client, 3))
    assert_failed(client, events, 1002, ProtocolError)
    assert client.next_deadline() is None


# ---------------------------------------------------------------- close() itself


@pytest.mark.parametrize("code", INVALID_CODES)
def test_close_refuses_a_code_that_may_not_be_sent(conn: Conn, code: int) -> None:
    with pytest.raises(LocalProtocolError, match=f"close code {code}"):
        conn.close(code)
    assert conn.state is State.OPEN
    assert conn.data_to_send() == b""


@pytest.mark.parametrize("code", VALID_CODES)
def test_close_sends_any_code_allowed_on_the_wire(conn: Conn, code: int) -> None:
    conn.close(code, "r")
    assert close_frames(conn.data_to_send()) == [close_payload(code, b"r")]


def test_close_refuses_a_reason_longer_than_123_bytes(conn: Conn) -> None:
    with pytest.raises(LocalProtocolError, match="123 bytes"):
        conn.close(1000, "x" * 124)
    with pytest.raises(LocalProtocolError, match="123 bytes"):
        conn.close(1000, "é" * 62)  # 62 characters, 124 bytes
    assert conn.state is State.OPEN
    conn.close(1000, "x" * 123)
    assert close_frames(conn.data_to_send()) == [close_payload(1000, b"x" * 123)]


def test_close_refuses_a_reason_without_a_code(conn: Conn) -> None:
    with pytest.raises(LocalProtocolError, match="requires a close code"):
        conn.close(None, "why")
    assert conn.state is State.OPEN


def test_close_when_already_closing_or_closed_does_nothing(conn: Conn) -> None:
    conn.close(1000)
    conn.data_to_send()
    conn.close(1001, "again")
    assert conn.data_to_send() == b""
    assert conn.state is State.CLOSING
    conn.receive_data(peer_frame(conn, Opcode.CLOSE, close_payload(1000)))
    conn.close(1001)
    assert conn.data_to_send() == b""
    assert conn.state is State.CLOSED
    assert conn.close_code == 1000


def test_close_before_the_client_handshake_completes_ends_without_a_close_frame() -> None:
    client = new_client()
    client.close()
    assert client.state is State.CLOSED
    assert client.should_close_transport
    assert client.data_to_send() == b""
    assert client.close_code == 1006
    # The application caused the end itself: no event reports it back.
    assert client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n") == []


def test_close_before_the_server_answers_the_request_ends_without_a_response() -> None:
    server = ServerConnection()
    server.receive_data(request_bytes())
    server.close()
    assert server.state is State.CLOSED
    assert server.should_close_transport
    assert server.data_to_send() == b""
    with pytest.raises(InvalidState):
        server.accept()


# ---------------------------------------------------------------- closed_error()


@pytest.mark.parametrize(
    ("payload", "exc_type", "code"),
    [
        (close_payload(1000), ConnectionClosedOK, 1000),
        (close_payload(1001), ConnectionClosedOK, 1001),
        (b"", ConnectionClosedOK, 1005),
        (close_payload(1011, b"oops"), ConnectionClosedError, 1011),
        (close_payload(4000), ConnectionClosedError, 4000),
    ],
)
def test_closed_error_after_a_clean_close_depends_on_the_code(
    conn: Conn, payload: bytes, exc_type: type[Exception], code: int
) -> None:
    (closed,) = conn.receive_data(peer_frame(conn, Opcode.CLOSE, payload))
    error = conn.closed_error()
    assert type(error) is exc_type
    assert (error.code, error.reason, error.clean) == (code, closed.reason, True)  # type: ignore[union-attr]


def test_closed_error_after_end_of_stream_is_an_error_with_1006(conn: Conn) -> None:
    conn.receive_data(b"")
    error = conn.closed_error()
    assert type(error) is ConnectionClosedError
    assert (error.code, error.reason, error.clean) == (1006, "", False)


def test_closed_error_after_a_protocol_failure_carries_the_code_sent(conn: Conn) -> None:
    conn.receive_data(peer_frame(conn, 3))
    error = conn.closed_error()
    assert type(error) is ConnectionClosedError
    assert (error.code, error.reason, error.clean) == (1002, "reserved opcode 3", False)


def test_closed_error_while_closing_describes_the_close_sent(conn: Conn) -> None:
    conn.close(1001, "bye")
    error = conn.closed_error()
    assert type(error) is ConnectionClosedError  # the handshake is incomplete
    assert (error.code, error.reason, error.clean) == (1001, "bye", False)


def test_closed_error_while_closing_without_a_code_says_1006(conn: Conn) -> None:
    conn.close(None)
    error = conn.closed_error()
    assert (error.code, error.reason) == (1006, "")


def test_closed_error_after_a_clean_close_this_side_started(conn: Conn) -> None:
    conn.close(1000, "done")
    conn.receive_data(peer_frame(conn, Opcode.CLOSE, close_payload(1000)))
    error = conn.closed_error()
    assert type(error) is ConnectionClosedOK
    assert str(error) == "connection closed: 1000 (normal closure)"


# ---------------------------------------------------------------- fail()


def test_fail_sends_a_close_frame_and_ends_at_once(conn: Conn) -> None:
    conn.fail(1011, "source failed")
    assert close_frames(conn.data_to_send()) == [close_payload(1011, b"source failed")]
    assert conn.state is State.CLOSED
    assert conn.should_close_transport
    assert (conn.close_code, conn.close_reason) == (1011, "source failed")
    assert conn.next_deadline() is None
    # The application ended it: no event, and the peer's answer is ignored.
    assert conn.receive_data(peer_frame(conn, Opcode.CLOSE, close_payload(1011))) == []


def test_fail_while_closing_sends_no_second_close_frame(conn: Conn) -> None:
    conn.close(1000)
    conn.data_to_send()
    conn.fail()
    assert conn.data_to_send() == b""
    assert conn.state is State.CLOSED
    assert conn.should_close_transport
    assert conn.close_code == 1011


def test_fail_once_closed_does_nothing(conn: Conn) -> None:
    conn.receive_data(b"")
    conn.fail(1011)
    assert conn.data_to_send() == b""
    assert conn.close_code == 1006


def test_fail_before_the_handshake_completes_ends_without_a_close_frame() -> None:
    client = new_client()
    client.fail()
    assert client.state is State.CLOSED
    assert client.should_close_transport
    assert client.data_to_send() == b""


def test_fail_refuses_an_invalid_code(conn: Conn) -> None:
    with pytest.raises(LocalProtocolError):
        conn.fail(1006)
    assert conn.state is State.OPEN
