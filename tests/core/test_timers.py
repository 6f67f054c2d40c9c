"""Time enters only through handle_timeout(now): the opening handshake
timeout, keepalive pings, the ping timeout and the close timeout, driven here
by a fake clock made of plain floats."""

from __future__ import annotations

import math
from typing import Any
from unittest.mock import ANY

import pytest
from core_harness import (
    QUIET,
    URL,
    assert_failed,
    close_frames,
    frame,
    open_pair,
    parse_all,
    peer_frame,
    request_bytes,
    response_bytes,
    transfer,
)

from sansws import ClientConnection, ServerConnection, State
from sansws.errors import CloseTimeout, OpenTimeout, PingTimeout
from sansws.events import Closed, Pong
from sansws.frames import Opcode

INF = math.inf


def pings(data: bytes) -> list[bytes]:
    return [f.payload for f, _ in parse_all(data) if f.opcode == Opcode.PING]


# ---------------------------------------------------------------- next_deadline


def test_next_deadline_is_minus_infinity_until_a_started_timer_is_armed() -> None:
    client = ClientConnection(URL, **{**QUIET, "open_timeout": 10.0})
    assert client.next_deadline() == -INF
    assert client.handle_timeout(100.0) == []
    assert client.next_deadline() == 110.0


def test_next_deadline_is_none_when_no_timer_runs() -> None:
    client = ClientConnection(URL, **QUIET)
    assert client.next_deadline() is None
    assert client.handle_timeout(5.0) == []
    assert client.next_deadline() is None


def test_next_deadline_is_the_earliest_timer() -> None:
    client, server = open_pair(
        {"ping_interval": 20.0, "ping_timeout": 5.0}, {"ping_interval": 30.0}
    )
    client.handle_timeout(0.0)
    assert client.next_deadline() == 20.0
    client.handle_timeout(20.0)  # a ping goes out; its pong is due at 25
    assert client.next_deadline() == 25.0
    server.handle_timeout(1.0)
    assert server.next_deadline() == 31.0


def test_handle_timeout_called_early_or_often_changes_nothing() -> None:
    client = ClientConnection(URL, **{**QUIET, "open_timeout": 10.0})
    client.data_to_send()
    client.handle_timeout(0.0)
    for now in (0.0, 1.0, 5.0, 9.999):
        assert client.handle_timeout(now) == []
    assert client.state is State.CONNECTING
    assert client.next_deadline() == 10.0


def test_no_timer_runs_once_closed() -> None:
    _client, server = open_pair({}, {"ping_interval": 1.0, "close_timeout": 1.0})
    server.receive_data(b"")
    assert server.next_deadline() is None
    assert server.handle_timeout(1000.0) == []


# ---------------------------------------------------------------- opening handshake


@pytest.mark.parametrize("role", ["client", "server"])
def test_opening_handshake_that_takes_too_long_ends_with_open_timeout(role: str) -> None:
    conn: ClientConnection | ServerConnection
    if role == "client":
        conn = ClientConnection(URL, **{**QUIET, "open_timeout": 10.0})
    else:
        conn = ServerConnection(**{**QUIET, "open_timeout": 10.0})
    conn.data_to_send()
    conn.handle_timeout(50.0)
    assert conn.handle_timeout(59.9) == []
    (closed,) = conn.handle_timeout(60.0)
    assert isinstance(closed, Closed)
    assert (closed.code, closed.clean) == (1006, False)
    assert isinstance(closed.error, OpenTimeout)
    assert conn.state is State.CLOSED
    assert conn.should_close_transport
    assert conn.data_to_send() == b""
    assert conn.next_deadline() is None


def test_server_open_timeout_covers_the_wait_for_accept() -> None:
    server = ServerConnection(**{**QUIET, "open_timeout": 10.0})
    server.handle_timeout(0.0)
    server.receive_data(request_bytes())
    (closed,) = server.handle_timeout(10.0)
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, OpenTimeout)


def test_completed_handshake_stops_the_open_timer() -> None:
    client = ClientConnection(URL, **{**QUIET, "open_timeout": 10.0})
    client.data_to_send()
    client.handle_timeout(0.0)
    client.receive_data(response_bytes(client))
    assert client.next_deadline() is None
    assert client.handle_timeout(100.0) == []
    assert client.state is State.OPEN


def test_open_timeout_none_waits_forever() -> None:
    client = ClientConnection(URL, **QUIET)
    client.handle_timeout(0.0)
    assert client.handle_timeout(1e9) == []
    assert client.state is State.CONNECTING


# ---------------------------------------------------------------- keepalive


def keepalive_pair(**kwargs: Any) -> tuple[ClientConnection, ServerConnection]:
    options = {"ping_interval": 20.0, "ping_timeout": 10.0, **kwargs}
    return open_pair(options, {})


def test_keepalive_ping_is_sent_every_ping_interval() -> None:
    client, _server = keepalive_pair(ping_timeout=None)
    assert client.next_deadline() == -INF
    client.handle_timeout(100.0)
    assert client.data_to_send() == b""
    assert client.handle_timeout(119.0) == []
    assert client.data_to_send() == b""
    client.handle_timeout(120.0)
    (payload,) = pings(client.data_to_send())
    assert len(payload) == 4
    assert client.next_deadline() == 140.0


def test_pong_answering_the_keepalive_ping_clears_the_ping_timeout() -> None:
    client, server = keepalive_pair()
    client.handle_timeout(0.0)
    client.handle_timeout(20.0)
    assert client.next_deadline() == 30.0
    transfer(client, server)
    (pong,) = transfer(server, client)
    assert isinstance(pong, Pong)
    assert client.next_deadline() == 40.0  # only the next keepalive
    assert client.handle_timeout(30.0) == []
    assert client.state is State.OPEN
    client.handle_timeout(40.0)
    assert len(pings(client.data_to_send())) == 1


def test_missing_pong_fails_the_connection_with_1011_and_ping_timeout() -> None:
    client, _server = keepalive_pair()
    client.handle_timeout(0.0)
    client.handle_timeout(20.0)
    client.data_to_send()
    assert client.handle_timeout(29.9) == []
    events = client.handle_timeout(30.0)
    assert_failed(client, events, 1011, PingTimeout)


def test_unrelated_pong_does_not_clear_the_ping_timeout() -> None:
    client, _server = keepalive_pair()
    client.handle_timeout(0.0)
    client.handle_timeout(20.0)
    (payload,) = pings(client.data_to_send())
    other = bytes(b ^ 0xFF for b in payload)
    assert client.receive_data(frame(Opcode.PONG, other)) == [Pong(other)]
    events = client.handle_timeout(30.0)
    assert_failed(client, events, 1011, PingTimeout)


def test_no_second_keepalive_ping_while_one_is_unanswered() -> None:
    client, _server = keepalive_pair(ping_interval=5.0, ping_timeout=None)
    client.handle_timeout(0.0)
    client.handle_timeout(5.0)
    assert len(pings(client.data_to_send())) == 1
    client.handle_timeout(10.0)
    client.handle_timeout(15.0)
    assert pings(client.data_to_send()) == []
    assert client.state is State.OPEN


def test_the_keepalive_pong_says_when_its_ping_was_sent() -> None:
    # The connection has no clock: the layer that has one (the Endpoint)
    # measures the latency from this.
    client, server = keepalive_pair()
    client.handle_timeout(0.0)
    client.handle_timeout(20.0)
    transfer(client, server)
    assert transfer(server, client) == [Pong(ANY, keepalive_sent_at=20.0)]
    server.send_pong(b"unsolicited")
    assert transfer(server, client) == [Pong(b"unsolicited", keepalive_sent_at=None)]


def test_ping_interval_none_sends_no_keepalive() -> None:
    client, _server = keepalive_pair(ping_interval=None)
    client.handle_timeout(0.0)
    assert client.next_deadline() is None
    client.handle_timeout(1e6)
    assert client.data_to_send() == b""


def test_ping_timeout_none_never_fails_for_a_missing_pong() -> None:
    client, _server = keepalive_pair(ping_timeout=None)
    client.handle_timeout(0.0)
    client.handle_timeout(20.0)
    assert client.next_deadline() == 40.0
    client.handle_timeout(1e6)
    assert client.state is State.OPEN


def test_server_sends_keepalive_pings_too() -> None:
    client, server = open_pair({}, {"ping_interval": 1.0, "ping_timeout": 1.0})
    server.handle_timeout(0.0)
    server.handle_timeout(1.0)
    transfer(server, client)
    transfer(client, server)
    server.handle_timeout(2.0)
    assert server.state is State.OPEN
    assert server.next_deadline() == 3.0  # the next keepalive, no Pong timeout pending


def test_close_stops_keepalive() -> None:
    client, _server = keepalive_pair(close_timeout=None)
    client.handle_timeout(0.0)
    client.handle_timeout(20.0)
    client.close()
    client.data_to_send()
    assert client.next_deadline() is None
    client.handle_timeout(100.0)
    assert client.data_to_send() == b""
    assert client.state is State.CLOSING


# ---------------------------------------------------------------- close timeout


def test_close_timeout_after_close_ends_with_1006_and_close_timeout() -> None:
    client, _server = open_pair({"close_timeout": 5.0})
    client.close()
    assert close_frames(client.data_to_send()) == [b"\x03\xe8"]
    assert client.next_deadline() == -INF
    client.handle_timeout(10.0)
    assert client.handle_timeout(14.9) == []
    (closed,) = client.handle_timeout(15.0)
    assert isinstance(closed, Closed)
    assert (closed.code, closed.clean) == (1006, False)
    assert isinstance(closed.error, CloseTimeout)
    assert client.state is State.CLOSED
    assert client.should_close_transport
    assert client.data_to_send() == b""


def test_server_close_timeout_after_close() -> None:
    _client, server = open_pair({}, {"close_timeout": 1.0})
    server.close()
    server.handle_timeout(0.0)
    (closed,) = server.handle_timeout(1.0)
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, CloseTimeout)
    assert server.should_close_transport


def test_client_closes_the_transport_after_close_timeout_if_the_server_does_not() -> None:
    client, server = open_pair({"close_timeout": 5.0})
    client.close()
    client.handle_timeout(0.0)
    transfer(client, server)
    assert transfer(server, client) == [Closed(1000, "", clean=True)]
    assert not client.should_close_transport
    assert client.next_deadline() == -INF  # a fresh wait, for the EOF
    client.handle_timeout(1.0)
    assert client.handle_timeout(5.9) == []
    assert not client.should_close_transport
    assert client.handle_timeout(6.0) == []  # no second terminal event
    assert client.should_close_transport


def test_close_timeout_none_waits_forever() -> None:
    client, _server = open_pair()
    client.close()
    assert client.next_deadline() is None
    client.handle_timeout(1e9)
    assert client.state is State.CLOSING


def test_close_received_in_time_stops_the_close_timer() -> None:
    _client, server = open_pair({}, {"close_timeout": 5.0})
    server.close()
    server.handle_timeout(0.0)
    server.receive_data(peer_frame(server, Opcode.CLOSE, b"\x03\xe8"))
    assert server.next_deadline() is None
    assert server.handle_timeout(5.0) == []


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("name", ["ping_interval", "ping_timeout", "close_timeout", "open_timeout"])
@pytest.mark.parametrize("value", [0, 0.0, -1.0, math.nan])
def test_timer_values_must_be_positive_or_none(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        ClientConnection(URL, **{name: value})
    with pytest.raises(ValueError, match=name):
        ServerConnection(**{name: value})


def test_default_timers() -> None:
    client = ClientConnection(URL)
    assert (client.ping_interval, client.ping_timeout) == (20.0, 20.0)
    assert (client.close_timeout, client.open_timeout) == (10.0, 10.0)
    server = ServerConnection()
    assert (server.ping_interval, server.ping_timeout) == (20.0, 20.0)
    assert (server.close_timeout, server.open_timeout) == (10.0, 10.0)
