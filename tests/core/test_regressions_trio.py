"""Regressions found while building the trio driver."""

from __future__ import annotations

import pytest

from sansws.connection import ServerConnection, State
from sansws.endpoint import Endpoint, EndpointAttributes
from sansws.errors import ConnectionClosedError, ProtocolError
from sansws.events import Accepted, Request


def _client_frame(opcode: int, payload: bytes) -> bytes:
    # Masked with a zero key, which leaves the payload as it is.
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def _open_server(max_queue: int) -> Endpoint:
    endpoint = Endpoint(ServerConnection(), max_queue=max_queue)
    progress = endpoint.receive_data(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        0.0,
    )
    assert isinstance(progress.request, Request)
    endpoint.answer(None)
    endpoint.data_to_send()
    return endpoint


def test_a_full_queue_stops_reading_only_while_the_connection_is_open() -> None:
    # The application closes without draining the queue: the driver must
    # read again, or the peer's Close frame would never be seen and the
    # close handshake could only end at close_timeout.
    endpoint = _open_server(max_queue=2)
    endpoint.receive_data(_client_frame(0x1, b"a") + _client_frame(0x1, b"b"), 1.0)
    assert endpoint.reading_paused
    endpoint.close(1000)
    assert endpoint.connection.state is State.CLOSING
    assert not endpoint.reading_paused
    endpoint.receive_data(_client_frame(0x8, b"\x03\xe8"), 2.0)
    assert endpoint.closed
    # Messages queued before the close are still delivered, in order.
    assert endpoint.next_message() == "a"
    assert endpoint.next_message() == "b"


# A protocol violation right after valid messages: the messages may still be
# answered, and their answers go out before the Close frame (Autobahn cases
# 3.2, 4.1.3, 5.15 expect the echo first).

RSV2_TEXT = bytes([0x80 | 0x20 | 0x1, 0x80]) + b"\0\0\0\0"  # text frame with RSV2 set
PING = _client_frame(0x9, b"p")


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of the unmasked frames a server sent."""
    frames = []
    while data:
        opcode, length = data[0] & 0x0F, data[1] & 0x7F
        assert length < 126
        frames.append((opcode, data[2 : 2 + length]))
        data = data[2 + length :]
    return frames


def test_a_violation_after_a_message_in_the_same_bytes_waits_for_the_answer() -> None:
    endpoint = _open_server(max_queue=16)
    endpoint.receive_data(_client_frame(0x1, b"hello") + RSV2_TEXT + PING, 1.0)
    assert endpoint.data_to_send() == b""  # no Close yet, no Pong for a later frame
    assert endpoint.connection.state is State.OPEN
    assert endpoint.reading_paused  # nothing after the violation is read meanwhile
    assert endpoint.next_message() == "hello"
    endpoint.send("hello")
    with pytest.raises(ConnectionClosedError) as caught:
        endpoint.next_message()
    assert caught.value.code == 1002
    frames = _frames(endpoint.data_to_send())
    assert frames[0] == (0x1, b"hello")
    assert frames[1][0] == 0x8
    assert frames[1][1][:2] == (1002).to_bytes(2, "big")
    assert endpoint.should_close_transport


def test_a_violation_while_a_taken_message_is_unanswered_is_held_too() -> None:
    # The message and the bad frame arrive in separate reads.
    endpoint = _open_server(max_queue=16)
    endpoint.receive_data(_client_frame(0x1, b"hello"), 1.0)
    assert endpoint.next_message() == "hello"
    endpoint.receive_data(RSV2_TEXT, 1.1)
    assert endpoint.connection.state is State.OPEN
    endpoint.send("hello")
    with pytest.raises(ConnectionClosedError):
        endpoint.next_message()
    assert [opcode for opcode, _ in _frames(endpoint.data_to_send())] == [0x1, 0x8]


def test_a_violation_with_no_message_to_answer_fails_at_once() -> None:
    endpoint = _open_server(max_queue=16)
    endpoint.receive_data(_client_frame(0x1, b"hello"), 1.0)
    assert endpoint.next_message() == "hello"
    assert endpoint.next_message() is None  # answered: the application asks for more
    endpoint.receive_data(RSV2_TEXT, 1.1)
    assert endpoint.closed
    assert endpoint.connection.close_code == 1002


def test_held_input_is_processed_when_more_bytes_arrive_or_at_end_of_stream() -> None:
    endpoint = _open_server(max_queue=16)
    endpoint.receive_data(_client_frame(0x1, b"a") + RSV2_TEXT, 1.0)
    assert endpoint.connection.holding
    endpoint.receive_data(PING, 1.1)
    assert endpoint.closed
    assert endpoint.connection.close_code == 1002
    assert endpoint.next_message() == "a"  # still delivered

    endpoint = _open_server(max_queue=16)
    endpoint.receive_data(_client_frame(0x1, b"a") + RSV2_TEXT, 1.0)
    endpoint.receive_data(b"", 1.1)
    assert endpoint.connection.close_code == 1002
    assert endpoint.should_close_transport


def test_held_input_is_processed_when_a_timer_is_due() -> None:
    # An application that never asks for the next message still sees the
    # connection fail, at the latest one second after the bad frame arrived.
    endpoint = _open_server(max_queue=16)
    endpoint.connection.handle_timeout(0.0)  # arms keepalive at 20 s
    endpoint.receive_data(_client_frame(0x1, b"a") + RSV2_TEXT, 1.0)
    assert endpoint.connection.holding
    endpoint.handle_timeout(1.999)
    assert endpoint.connection.holding
    endpoint.handle_timeout(2.0)
    assert endpoint.closed
    assert endpoint.connection.close_code == 1002
    assert endpoint.connection.release_held_input() == []


def test_the_closed_error_says_why_sansws_ended_the_connection() -> None:
    # Every driver raises closed_error(); its __cause__ carries the reason
    # (here a ProtocolError), so that no driver has to add it.
    endpoint = _open_server(max_queue=16)
    endpoint.receive_data(RSV2_TEXT, 1.0)
    with pytest.raises(ConnectionClosedError) as caught:
        endpoint.next_message()
    assert isinstance(caught.value.__cause__, ProtocolError)
    assert caught.value.__cause__.code == 1002
    assert endpoint.connection.close_error is caught.value.__cause__


def test_endpoint_attributes_read_the_connection_and_the_endpoint() -> None:
    # The attributes every driver's connection offers, in one place.
    class DriverConnection(EndpointAttributes):
        def __init__(self, endpoint: Endpoint) -> None:
            self._endpoint = endpoint

    endpoint = _open_server(max_queue=16)
    ws = DriverConnection(endpoint)
    assert ws.state is State.OPEN
    assert ws.subprotocol is None
    assert ws.request is endpoint.connection.request
    assert ws.request_headers is not None
    assert ws.request_headers["Sec-WebSocket-Version"] == "13"
    assert isinstance(ws.response, Accepted)
    assert ws.response_headers is not None
    assert ws.response_headers["Upgrade"].lower() == "websocket"
    assert (ws.close_code, ws.close_reason, ws.latency) == (None, None, 0.0)
    endpoint.receive_data(_client_frame(0x8, b"\x03\xe8bye"), 1.0)
    assert (ws.state, ws.close_code, ws.close_reason) == (State.CLOSED, 1000, "bye")
