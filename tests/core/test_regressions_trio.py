"""Regressions found while building the trio driver."""

from __future__ import annotations

from sansws.connection import ServerConnection, State
from sansws.endpoint import Endpoint
from sansws.events import Request


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
