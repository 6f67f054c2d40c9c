"""Endpoint: the driver contract (inputs in, one Actions value out) and the
application-facing state every driver shares: the message queue and read
pausing, the hold of a Close after unanswered messages, Ping records,
fragmented sends, write back-pressure, the transport-close rule, server
answers. Driven in memory against a real peer connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from core_harness import QUIET, URL, parse_all, peer_frame, request_bytes

from sansws import ClientConnection, ServerConnection, State
from sansws.endpoint import (
    Close,
    ConnectionView,
    Endpoint,
    Ping,
    Response,
    Wait,
    WaterMark,
    is_message,
)
from sansws.errors import (
    CloseTimeout,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    LocalProtocolError,
    OpenTimeout,
    PingTimeout,
    ProtocolError,
)
from sansws.events import Accepted, Closed, Event, Message, Rejected
from sansws.events import Ping as PingEvent
from sansws.events import Pong as PongEvent
from sansws.frames import Opcode

Peer = ClientConnection | ServerConnection


def pair(
    now: float = 0.0, *, max_queue: int | None = 16, write_limit: int = 32768, **options: Any
) -> tuple[Endpoint, ServerConnection]:
    """An OPEN client endpoint (its actions taken) and the in-memory server
    it talks to; ``options`` go to the client connection."""
    endpoint = Endpoint(
        ClientConnection(URL, **{**QUIET, **options}),
        now,
        max_queue=max_queue,
        write_limit=write_limit,
    )
    server = ServerConnection(**QUIET)
    server.receive_data(endpoint.actions(now).write)
    server.accept()
    endpoint.receive_data(server.data_to_send(), now)
    endpoint.actions(now)
    assert state(endpoint) is State.OPEN
    return endpoint, server


def server_pair(
    now: float = 0.0, *, max_queue: int | None = 16, **options: Any
) -> tuple[Endpoint, ClientConnection]:
    """An OPEN server endpoint (its actions taken) and its in-memory client;
    ``options`` go to the server connection."""
    endpoint, client = server_endpoint(now, max_queue=max_queue, **options)
    endpoint.answer(None, now)
    client.receive_data(endpoint.actions(now).write)
    assert state(endpoint) is State.OPEN
    return endpoint, client


def server_endpoint(
    now: float = 0.0, *, max_queue: int | None = 16, **options: Any
) -> tuple[Endpoint, ClientConnection]:
    """A server endpoint holding its client's request, not answered yet."""
    client = ClientConnection("ws://example.com/path", **{**QUIET, "subprotocols": ["chat"]})
    endpoint = Endpoint(
        ServerConnection(**{**QUIET, "subprotocols": ["chat"], **options}),
        now,
        max_queue=max_queue,
    )
    endpoint.receive_data(client.data_to_send(), now)
    return endpoint, client


def state(endpoint: Endpoint) -> State:
    # A function, so that a type checker does not narrow the state across
    # the calls that change it.
    return endpoint.state


def from_peer(endpoint: Endpoint, peer: Peer, now: float = 0.0) -> None:
    """Feed what ``peer`` queued to ``endpoint``."""
    endpoint.receive_data(peer.data_to_send(), now)


def to_peer(endpoint: Endpoint, peer: Peer, now: float = 0.0) -> list[Event]:
    """Carry out ``endpoint``'s write action into ``peer``; its events."""
    events: list[Event] = peer.receive_data(endpoint.actions(now).write)
    return events


def incoming(endpoint: Endpoint, opcode: int, payload: bytes = b"", **kwargs: Any) -> bytes:
    """A frame as the endpoint's peer sends it (masked towards a server)."""
    connection = endpoint.connection
    assert isinstance(connection, ClientConnection | ServerConnection)
    return peer_frame(connection, opcode, payload, **kwargs)


def violation(endpoint: Endpoint) -> bytes:
    """A frame that breaks the protocol (RSV2 without an extension), as the
    endpoint's peer would send it."""
    return incoming(endpoint, Opcode.TEXT, rsv2=True)


def text(endpoint: Endpoint, data: str) -> bytes:
    """A text frame as the endpoint's peer would send it."""
    return incoming(endpoint, Opcode.TEXT, data.encode())


CLOSE_1000 = (1000).to_bytes(2, "big")


# -------------------------------------------------------------- construction


def test_stream_mode_connections_are_refused() -> None:
    with pytest.raises(ValueError, match="stream_messages"):
        Endpoint(ClientConnection(URL, stream_messages=True), 0.0)


@pytest.mark.parametrize("max_queue", [0, -1])
def test_max_queue_must_be_positive_or_none(max_queue: int) -> None:
    with pytest.raises(ValueError, match="max_queue"):
        Endpoint(ClientConnection(URL), 0.0, max_queue=max_queue)


def test_write_limit_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="write_limit"):
        Endpoint(ClientConnection(URL), 0.0, write_limit=-1)


def test_a_server_open_timeout_runs_from_the_endpoint_construction() -> None:
    # The driver builds the endpoint at the accept: the open timeout (TLS,
    # request, process_request) counts from there, with no other call.
    endpoint = Endpoint(ServerConnection(**{**QUIET, "open_timeout": 5.0}), 100.0)
    assert endpoint.open_deadline == 105.0
    assert endpoint.actions(100.0).deadline == 105.0
    assert endpoint.actions(104.9).close is Close.KEEP
    assert state(endpoint) is State.CONNECTING
    actions = endpoint.actions(105.0)
    assert state(endpoint) is State.CLOSED
    assert isinstance(endpoint.connection.close_error, OpenTimeout)
    assert Wait.REQUEST in Wait(actions.wake)
    assert Wait.HANDSHAKE in Wait(actions.wake)


def test_without_an_open_timeout_there_is_no_open_deadline() -> None:
    endpoint = Endpoint(ServerConnection(**QUIET), 0.0)
    assert endpoint.open_deadline is None
    assert endpoint.actions(0.0).deadline is None


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # close() starts the close timer; keepalive starts when it opens.
        (lambda endpoint, now: endpoint.close(1000, "", now), 13.0),
        (lambda endpoint, now: None, 3.5),
    ],
    ids=["close timer", "keepalive timer"],
)
def test_a_timer_started_by_an_input_is_armed_from_the_next_actions_now(
    start: Callable[[Endpoint, float], None], expected: float
) -> None:
    # The connection marks such a timer -inf ("arm me"); the endpoint never
    # passes that on: a driver would spin on a deadline in the past.
    endpoint = Endpoint(
        ClientConnection(URL, **{**QUIET, "close_timeout": 10.0, "ping_interval": 0.5}), 0.0
    )
    server = ServerConnection(**QUIET)
    server.receive_data(endpoint.actions(0.0).write)
    server.accept()
    endpoint.receive_data(server.data_to_send(), 3.0)  # opens: keepalive waits to be armed
    start(endpoint, 3.0)
    assert endpoint.connection.next_deadline() == float("-inf")
    assert endpoint.actions(3.0).deadline == expected


def test_the_handshake_ending_wakes_handshake_waiters_once() -> None:
    endpoint = Endpoint(ClientConnection(URL, **QUIET), 0.0)
    server = ServerConnection(**QUIET)
    server.receive_data(endpoint.actions(0.0).write)
    server.accept()
    response = server.data_to_send()
    endpoint.receive_data(response[:10], 0.0)
    assert Wait.HANDSHAKE not in Wait(endpoint.actions(0.0).wake)
    assert not endpoint.ready(Wait.HANDSHAKE)
    endpoint.receive_data(response[10:], 0.0)
    assert Wait.HANDSHAKE in Wait(endpoint.actions(0.0).wake)
    assert endpoint.ready(Wait.HANDSHAKE)
    endpoint.receive_data(incoming(endpoint, Opcode.TEXT, b"x"), 0.0)
    assert Wait.HANDSHAKE not in Wait(endpoint.actions(0.0).wake)


def test_a_client_open_timeout_ends_the_handshake_and_aborts() -> None:
    endpoint = Endpoint(ClientConnection(URL, **{**QUIET, "open_timeout": 1.0}), 0.0)
    endpoint.actions(0.0)
    actions = endpoint.actions(1.0)
    assert Wait.HANDSHAKE in Wait(actions.wake)
    assert endpoint.ready(Wait.HANDSHAKE)
    assert state(endpoint) is State.CLOSED
    assert actions.close is Close.ABORT


def test_wake_names_each_change_once() -> None:
    endpoint, server = pair()
    server.send_text("x")
    from_peer(endpoint, server)
    assert endpoint.actions(0.0).wake == Wait.MESSAGE
    assert endpoint.actions(0.0).wake == Wait(0)  # reported: not again


def test_reading_stops_at_the_end_of_the_stream() -> None:
    # Nothing more can come; a driver that read on would spin on EOF.
    endpoint, server = pair(close_timeout=10.0)
    endpoint.close(1000, "", 0.0)
    to_peer(endpoint, server)
    assert endpoint.actions(0.0).read is True  # the answer is awaited
    endpoint.receive_data(b"", 1.0)
    assert endpoint.actions(1.0).read is False


# -------------------------------------------------------------- dirty


INPUTS: dict[str, Callable[[Endpoint, ServerConnection], object]] = {
    "receive_data": lambda e, s: e.receive_data(incoming(e, Opcode.PING), 1.0),
    "end of stream": lambda e, s: e.receive_data(b"", 1.0),
    "unwritten": lambda e, s: e.unwritten(10**6),
    "transport_closed": lambda e, s: e.transport_closed(1.0),
    "abort": lambda e, s: e.abort(1.0),
    "timer": lambda e, s: e.timer(1.0),
    "close": lambda e, s: e.close(1000, "", 1.0),
    "shutdown": lambda e, s: e.shutdown(1.0),
    "send_fragment": lambda e, s: e.send_fragment("x", 1.0),
}


@pytest.mark.parametrize("call", INPUTS.values(), ids=INPUTS.keys())
def test_every_input_sets_dirty_and_actions_clears_it(
    call: Callable[[Endpoint, ServerConnection], object],
) -> None:
    endpoint, server = pair()
    assert not endpoint.dirty
    call(endpoint, server)
    assert endpoint.dirty
    endpoint.actions(1.0)
    assert not endpoint.dirty


def test_a_new_endpoint_is_dirty() -> None:
    # Its first actions carry a client's request and the first deadline.
    endpoint = Endpoint(ClientConnection(URL, **QUIET), 0.0)
    assert endpoint.dirty
    assert endpoint.actions(0.0).write.startswith(b"GET /chat HTTP/1.1\r\n")
    assert not endpoint.dirty


def test_reporting_the_same_unwritten_level_again_is_not_an_input() -> None:
    endpoint, _server = pair()
    endpoint.unwritten(100)  # below write_limit: nothing changes
    assert not endpoint.dirty


def test_taking_a_message_leaves_the_endpoint_clean_unless_it_resumes_reading() -> None:
    # The hot path: after next_message a driver asks for the actions only
    # if dirty.
    endpoint, server = pair(max_queue=4)
    for i in range(4):
        server.send_text(str(i))
    from_peer(endpoint, server)
    assert endpoint.actions(0.0).read is False
    assert endpoint.next_message(0.0) == "0"
    assert endpoint.next_message(0.0) == "1"
    assert not endpoint.dirty  # still paused: nothing to report
    assert endpoint.next_message(0.0) == "2"  # one left: a quarter of 4
    assert endpoint.dirty
    assert endpoint.actions(0.0).read is True


# -------------------------------------------------------------- the queue


def test_messages_are_queued_in_order_until_the_application_takes_them() -> None:
    endpoint, server = pair()
    server.send_text("one")
    server.send_binary(b"two")
    from_peer(endpoint, server)
    assert Wait.MESSAGE in Wait(endpoint.actions(0.0).wake)
    assert endpoint.queued_messages == 2
    assert endpoint.next_message(0.0) == "one"
    assert endpoint.next_message(0.0) == b"two"
    assert endpoint.next_message(0.0) is None


def test_reading_pauses_at_max_queue_and_resumes_at_a_quarter() -> None:
    endpoint, server = pair(max_queue=8)
    for i in range(7):
        server.send_text(str(i))
    from_peer(endpoint, server)
    assert endpoint.actions(0.0).read is True
    server.send_text("7")
    from_peer(endpoint, server)
    assert endpoint.actions(0.0).read is False
    # Hysteresis: taking messages does not resume reading before the queue
    # is down to max_queue // 4.
    for _ in range(5):
        endpoint.next_message(0.0)
        assert endpoint.actions(0.0).read is False
    endpoint.next_message(0.0)
    assert endpoint.queued_messages == 2
    assert endpoint.actions(0.0).read is True


@pytest.mark.parametrize("max_queue", [1, 3])
def test_a_message_for_an_application_already_waiting_does_not_count(max_queue: int) -> None:
    endpoint, server = pair(max_queue=max_queue)
    # Not waiting: max_queue messages pause reading.
    for i in range(max_queue):
        server.send_text(str(i))
    from_peer(endpoint, server)
    assert endpoint.actions(0.0).read is False
    for i in range(max_queue):
        assert endpoint.next_message(0.0) == str(i)
    assert endpoint.actions(0.0).read is True
    # Waiting (the last call found none): the one that arrives is taken,
    # so max_queue more fit before reading pauses, and not one more.
    assert endpoint.next_message(0.0) is None
    for i in range(max_queue):
        server.send_text(str(i))
        from_peer(endpoint, server)
        assert endpoint.actions(0.0).read is True
    server.send_text("over")
    from_peer(endpoint, server)
    assert endpoint.actions(0.0).read is False
    # Taking the awaited message leaves max_queue waiting: still paused
    # until the queue is down to a quarter.
    assert endpoint.next_message(0.0) == "0"
    assert endpoint.queued_messages == max_queue
    assert endpoint.actions(0.0).read is False


def test_no_max_queue_never_pauses() -> None:
    endpoint, server = pair(max_queue=None)
    for i in range(1000):
        server.send_text(str(i))
    from_peer(endpoint, server)
    assert endpoint.queued_messages == 1000
    assert endpoint.actions(0.0).read is True


def test_a_full_queue_stops_reading_only_while_the_connection_is_open() -> None:
    # The application closes without draining the queue: the driver must
    # read again, or the peer's Close frame would never be seen and the
    # close handshake could only end at close_timeout.
    endpoint, client = server_pair(max_queue=2)
    client.send_text("a")
    client.send_text("b")
    from_peer(endpoint, client, 1.0)
    assert endpoint.actions(1.0).read is False
    endpoint.close(1000, "", 1.0)
    assert state(endpoint) is State.CLOSING
    to_peer(endpoint, client, 1.0)
    assert endpoint.actions(1.0).read is True
    from_peer(endpoint, client, 2.0)  # the client's answering Close
    assert state(endpoint) is State.CLOSED
    # Messages queued before the close are still delivered, in order.
    assert endpoint.next_message(2.0) == "a"
    assert endpoint.next_message(2.0) == "b"


# -------------------------------------------------------------- the hold


def test_messages_received_before_the_close_are_delivered_before_the_error() -> None:
    endpoint, server = pair()
    server.send_text("last words")
    server.close(1000, "bye")
    from_peer(endpoint, server)
    # The Close waits until the application has taken the message before it.
    assert state(endpoint) is State.OPEN
    assert endpoint.next_message(0.0) == "last words"
    with pytest.raises(ConnectionClosedOK) as info:
        endpoint.next_message(0.0)
    assert (info.value.code, info.value.reason) == (1000, "bye")
    assert state(endpoint) is State.CLOSED


def test_an_answer_to_the_last_message_goes_out_before_the_close_reply() -> None:
    # RFC 6455 section 5.5.1 lets an endpoint finish sending before it
    # answers a Close: a reply to a message that arrived with the peer's
    # Close is not refused.
    endpoint, server = pair()
    server.send_text("question")
    server.close(1000)
    from_peer(endpoint, server)
    assert endpoint.next_message(0.0) == "question"
    endpoint.send("answer")  # the connection is still open
    with pytest.raises(ConnectionClosedOK):
        endpoint.next_message(0.0)  # asking for more answers the Close
    assert to_peer(endpoint, server) == [Message("answer"), Closed(1000, "", clean=True)]


def test_a_violation_after_a_message_in_the_same_bytes_waits_for_the_answer() -> None:
    # Autobahn cases 3.2, 4.1.3, 5.15 expect the echo before the Close.
    endpoint, _client = server_pair()
    ping = incoming(endpoint, Opcode.PING, b"p")
    endpoint.receive_data(text(endpoint, "hello") + violation(endpoint) + ping, 1.0)
    actions = endpoint.actions(1.0)
    assert actions.write == b""  # no Close yet, no Pong for a frame after it
    assert actions.read is False  # nothing after the violation is read meanwhile
    assert state(endpoint) is State.OPEN
    assert endpoint.next_message(1.0) == "hello"
    endpoint.send("hello")
    with pytest.raises(ConnectionClosedError) as caught:
        endpoint.next_message(1.0)
    assert caught.value.code == 1002
    frames = [frame for frame, _ in parse_all(endpoint.actions(1.0).write)]
    assert [frame.opcode for frame in frames] == [Opcode.TEXT, Opcode.CLOSE]
    assert frames[1].payload[:2] == (1002).to_bytes(2, "big")


def test_a_violation_while_a_taken_message_is_unanswered_is_held_too() -> None:
    # The message and the bad frame arrive in separate reads.
    endpoint, _client = server_pair()
    endpoint.receive_data(text(endpoint, "hello"), 1.0)
    assert endpoint.next_message(1.0) == "hello"
    endpoint.receive_data(violation(endpoint), 1.1)
    assert state(endpoint) is State.OPEN
    endpoint.send("hello")
    with pytest.raises(ConnectionClosedError):
        endpoint.next_message(1.1)
    frames = parse_all(endpoint.actions(1.1).write)
    assert [frame.opcode for frame, _ in frames] == [Opcode.TEXT, Opcode.CLOSE]


def test_a_violation_with_no_message_to_answer_fails_at_once() -> None:
    endpoint, _client = server_pair()
    endpoint.receive_data(text(endpoint, "hello"), 1.0)
    assert endpoint.next_message(1.0) == "hello"
    assert endpoint.next_message(1.0) is None  # answered: it asks for more
    endpoint.receive_data(violation(endpoint), 1.1)
    assert state(endpoint) is State.CLOSED
    assert endpoint.connection.close_code == 1002


def test_a_hold_is_released_by_the_next_bytes() -> None:
    endpoint, _client = server_pair()
    endpoint.receive_data(text(endpoint, "a") + violation(endpoint), 1.0)
    assert endpoint.connection.holding
    endpoint.receive_data(incoming(endpoint, Opcode.PING), 1.1)
    assert state(endpoint) is State.CLOSED
    assert endpoint.connection.close_code == 1002
    assert endpoint.next_message(1.1) == "a"  # still delivered


def test_a_hold_is_released_at_the_end_of_the_stream() -> None:
    endpoint, _client = server_pair()
    endpoint.receive_data(text(endpoint, "a") + violation(endpoint), 1.0)
    endpoint.receive_data(b"", 1.1)
    assert endpoint.connection.close_code == 1002
    assert endpoint.actions(1.1).close is Close.ABORT


def test_a_held_close_is_answered_within_a_second_if_the_application_never_asks() -> None:
    endpoint, server = pair()
    server.send_text("ignored")
    server.close(1000)
    from_peer(endpoint, server, 10.0)
    assert endpoint.connection.holding
    assert endpoint.actions(10.0).deadline == 11.0
    endpoint.actions(10.999)
    assert state(endpoint) is State.OPEN
    actions = endpoint.actions(11.0)
    assert state(endpoint) is State.CLOSED
    assert server.receive_data(actions.write) == [Closed(1000, "", clean=True)]
    assert endpoint.next_message(11.0) == "ignored"  # still delivered


def test_closing_answers_a_held_close_at_once() -> None:
    # An application that takes a message and closes has given its last
    # answer: the peer's Close, held for it, must not wait for the hold's
    # second.
    endpoint, server = pair()
    server.send_text("last")
    server.close(1000)
    from_peer(endpoint, server, 10.0)
    assert endpoint.next_message(10.0) == "last"
    assert endpoint.connection.holding
    endpoint.close(1000, "", 10.0)
    assert not endpoint.connection.holding
    assert state(endpoint) is State.CLOSED
    assert to_peer(endpoint, server, 10.0) == [Closed(1000, "", clean=True)]


def test_leave_writes_what_is_buffered_then_closes_without_a_handshake() -> None:
    endpoint, client = server_pair(close_timeout=3.0)
    endpoint.send("last words")
    endpoint.leave(5.0)
    actions = endpoint.actions(5.0)
    assert state(endpoint) is State.CLOSED
    assert endpoint.closed_error().code == 1006
    assert actions.close is Close.FLUSH  # not ABORT: the buffer is written
    assert actions.deadline == 8.0  # for at most close_timeout
    assert client.receive_data(actions.write) == [Message("last words")]
    assert endpoint.actions(8.0).close is Close.ABORT


def test_leave_during_a_close_handshake_stops_waiting_for_the_peer() -> None:
    endpoint, client = server_pair()
    endpoint.close(1001, "", 1.0)
    [closed] = client.receive_data(endpoint.actions(1.0).write)
    assert isinstance(closed, Closed)
    assert closed.code == 1001
    endpoint.leave(2.0)  # the client's answer never arrives
    assert state(endpoint) is State.CLOSED
    assert endpoint.actions(2.0).close is Close.FLUSH


def test_a_held_violation_fails_the_connection_at_the_endpoints_deadline() -> None:
    # An application that never asks for the next message still sees the
    # connection fail, one second after the bad frame, whatever the
    # connection's own timers say (keepalive is 20 s away here).
    endpoint, _client = server_pair(ping_interval=20.0)
    endpoint.receive_data(text(endpoint, "a") + violation(endpoint), 1.0)
    assert endpoint.actions(1.0).deadline == 2.0
    endpoint.actions(1.999)
    assert endpoint.connection.holding
    endpoint.actions(2.0)
    assert state(endpoint) is State.CLOSED
    assert endpoint.connection.close_code == 1002
    assert endpoint.actions(2.0).deadline is None


def test_the_hold_is_shorter_than_half_a_short_close_timeout() -> None:
    endpoint, server = pair(close_timeout=0.5)
    server.send_text("x")
    server.close(1000)
    from_peer(endpoint, server, 3.0)
    assert endpoint.actions(3.0).deadline == 3.25


def test_a_timer_due_during_a_hold_acts_on_the_held_close_first() -> None:
    # A keepalive falling due while the peer's Close is held must not go
    # out after that Close: the held input is processed first.
    endpoint, server = pair(ping_interval=0.5)
    server.send_text("x")
    server.close(1000)
    from_peer(endpoint, server, 0.2)
    assert endpoint.actions(0.2).deadline == 0.5  # keepalive, before the 1.2 hold
    assert server.receive_data(endpoint.actions(0.5).write) == [Closed(1000, "", clean=True)]


# -------------------------------------------------------------- closed errors


def test_an_abnormal_end_raises_connection_closed_error() -> None:
    endpoint, _server = pair()
    endpoint.abort(1.0)
    with pytest.raises(ConnectionClosedError) as info:
        endpoint.next_message(1.0)
    assert info.value.code == 1006


def test_a_close_with_an_error_code_raises_connection_closed_error() -> None:
    endpoint, server = pair()
    server.close(4000, "app error")
    from_peer(endpoint, server)
    with pytest.raises(ConnectionClosedError) as info:
        endpoint.next_message(0.0)
    assert (info.value.code, info.value.reason) == (4000, "app error")


def test_the_closed_error_says_why_sansws_ended_the_connection() -> None:
    # Every driver raises closed_error(); its __cause__ carries the reason
    # (here a ProtocolError), so that no driver has to add it.
    endpoint, _client = server_pair()
    endpoint.receive_data(violation(endpoint), 1.0)
    with pytest.raises(ConnectionClosedError) as caught:
        endpoint.next_message(1.0)
    assert isinstance(caught.value.__cause__, ProtocolError)
    assert caught.value.__cause__.code == 1002
    assert endpoint.connection.close_error is caught.value.__cause__
    assert isinstance(endpoint.closed_error().__cause__, ProtocolError)


# -------------------------------------------------------------- sending


def test_send_picks_text_for_str_and_binary_for_bytes_like() -> None:
    endpoint, server = pair()
    endpoint.send("text")
    endpoint.send(b"bytes")
    endpoint.send(bytearray(b"array"))
    endpoint.send(memoryview(b"view"))
    assert to_peer(endpoint, server) == [
        Message("text"),
        Message(b"bytes"),
        Message(b"array"),
        Message(b"view"),
    ]


def test_data_to_send_is_all_a_driver_writes_after_send() -> None:
    # The hot path: send() only queues bytes, and says so by not making the
    # endpoint dirty.
    endpoint, server = pair()
    endpoint.send("hot")
    assert not endpoint.dirty
    assert server.receive_data(endpoint.data_to_send()) == [Message("hot")]
    assert endpoint.actions(0.0).write == b""


def test_send_refuses_other_types() -> None:
    endpoint, _server = pair()
    with pytest.raises(TypeError, match="str or bytes-like"):
        endpoint.send(42)  # type: ignore[arg-type]


def test_is_message_tells_whole_messages_from_fragment_sources() -> None:
    assert is_message("x")
    assert is_message(b"x")
    assert is_message(bytearray(b"x"))
    assert is_message(memoryview(b"x"))
    assert not is_message(["x"])
    assert not is_message(iter([b"x"]))


def test_send_before_the_handshake_completes_is_invalid_state() -> None:
    endpoint = Endpoint(ClientConnection(URL), 0.0)
    with pytest.raises(InvalidState):
        endpoint.send("too early")


def test_send_after_close_raises_connection_closed() -> None:
    endpoint, _server = pair()
    endpoint.close(1000, "", 0.0)
    with pytest.raises(ConnectionClosedError) as info:
        endpoint.send("late")
    # While CLOSING, the error describes the close that was sent.
    assert info.value.code == 1000


def test_fragments_make_one_message_ended_by_an_empty_final_frame() -> None:
    endpoint, _server = pair()
    endpoint.send_fragment("he", 0.0)
    endpoint.send_fragment("llo", 0.0)
    assert endpoint.sending_fragments
    endpoint.end_fragments()
    assert not endpoint.sending_fragments
    frames = [frame for frame, _ in parse_all(endpoint.actions(0.0).write)]
    assert [(f.opcode, f.payload, f.fin) for f in frames] == [
        (Opcode.TEXT, b"he", False),
        (Opcode.CONTINUATION, b"llo", False),
        (Opcode.CONTINUATION, b"", True),
    ]


def test_binary_fragments_accept_any_bytes_like() -> None:
    endpoint, server = pair()
    endpoint.send_fragment(b"a", 0.0)
    endpoint.send_fragment(bytearray(b"b"), 0.0)
    endpoint.send_fragment(memoryview(b"c"), 0.0)
    endpoint.end_fragments()
    assert to_peer(endpoint, server) == [Message(b"abc")]


def test_ending_fragments_wakes_senders() -> None:
    endpoint, _server = pair()
    endpoint.send_fragment("x", 0.0)
    endpoint.actions(0.0)
    endpoint.end_fragments()
    assert Wait.SENDABLE in Wait(endpoint.actions(0.0).wake)


def test_end_fragments_without_fragments_sends_nothing() -> None:
    endpoint, _server = pair()
    endpoint.end_fragments()
    assert endpoint.data_to_send() == b""
    assert not endpoint.dirty


def test_a_whole_message_cannot_interleave_with_fragments() -> None:
    endpoint, _server = pair()
    endpoint.send_fragment("part", 0.0)
    with pytest.raises(LocalProtocolError, match="fragmented"):
        endpoint.send("whole")


def test_mixing_fragment_types_fails_the_connection_with_1011() -> None:
    endpoint, server = pair()
    endpoint.send_fragment("text", 0.0)
    with pytest.raises(TypeError, match="all fragments"):
        endpoint.send_fragment(b"bytes", 0.0)
    assert state(endpoint) is State.CLOSED
    events = to_peer(endpoint, server)
    assert isinstance(events[-1], Closed)
    assert events[-1].code == 1011


def test_a_fragment_that_is_not_str_or_bytes_fails_the_connection() -> None:
    endpoint, _server = pair()
    endpoint.send_fragment(b"x", 0.0)
    with pytest.raises(TypeError, match="str or bytes-like"):
        endpoint.send_fragment(3, 0.0)  # type: ignore[arg-type]
    assert state(endpoint) is State.CLOSED


def test_abandoning_a_fragmented_message_fails_with_1011() -> None:
    endpoint, server = pair()
    endpoint.send_fragment(b"start", 0.0)
    endpoint.abort_fragments(0.0)
    events = to_peer(endpoint, server)
    assert isinstance(events[-1], Closed)
    assert (events[-1].code, events[-1].reason) == (1011, "incomplete fragmented message")


def test_abandoning_when_no_fragment_was_sent_changes_nothing() -> None:
    endpoint, _server = pair()
    endpoint.abort_fragments(0.0)
    assert state(endpoint) is State.OPEN
    assert not endpoint.dirty


def test_closing_ends_a_fragmented_message_without_its_final_frame() -> None:
    # The Close frame ends it; senders waiting to send are woken.
    endpoint, _server = pair()
    endpoint.send_fragment("part", 0.0)
    endpoint.close(1000, "", 0.0)
    assert not endpoint.sending_fragments
    actions = endpoint.actions(0.0)
    assert Wait.SENDABLE in Wait(actions.wake)
    assert [f.opcode for f, _ in parse_all(actions.write)] == [Opcode.TEXT, Opcode.CLOSE]


# -------------------------------------------------------------- back-pressure


def test_a_water_mark_pauses_above_high_and_resumes_at_low() -> None:
    mark = WaterMark(100)
    assert mark.low == 25
    assert mark.update(100) is False  # at the mark: not above it
    assert mark.update(101) is True
    assert mark.paused
    assert mark.update(26) is False  # between the marks: still paused
    assert mark.update(25) is True
    assert not mark.paused
    assert WaterMark(100, 50).low == 50


def test_sending_waits_above_write_limit_and_resumes_at_a_quarter() -> None:
    endpoint, _server = pair(write_limit=1000)
    assert endpoint.ready(Wait.DRAINED)
    endpoint.unwritten(1001)
    assert not endpoint.ready(Wait.DRAINED)
    assert Wait.DRAINED not in Wait(endpoint.actions(0.0).wake)
    endpoint.unwritten(251)
    assert not endpoint.ready(Wait.DRAINED)
    endpoint.unwritten(250)
    assert endpoint.ready(Wait.DRAINED)
    assert Wait.DRAINED in Wait(endpoint.actions(0.0).wake)


def test_reading_pauses_while_writing_is_paused_but_not_while_closing() -> None:
    # A peer that sends Pings and never reads would otherwise grow the buffer
    # of Pongs without bound; but the peer's Close must still be read.
    endpoint, _server = pair(write_limit=1000)
    endpoint.unwritten(1001)
    assert endpoint.actions(0.0).read is False
    endpoint.unwritten(0)
    assert endpoint.actions(0.0).read is True
    endpoint.unwritten(1001)
    endpoint.close(1000, "", 0.0)
    assert endpoint.actions(0.0).read is True


# -------------------------------------------------------------- closing the transport


def test_close_runs_the_handshake_and_is_idempotent() -> None:
    endpoint, server = pair()
    endpoint.close(1001, "going", 0.0)
    endpoint.close(1000, "again", 0.0)  # no second Close frame
    assert to_peer(endpoint, server) == [Closed(1001, "going", clean=True)]
    from_peer(endpoint, server)
    assert state(endpoint) is State.CLOSED


def test_a_clean_close_flushes_then_aborts_at_the_close_timeout() -> None:
    # The server closes the transport first (RFC 6455 section 7.1.1):
    # writing what is buffered, for at most close_timeout.
    endpoint, client = server_pair(close_timeout=10.0)
    client.close(1000)
    from_peer(endpoint, client, 1.0)
    actions = endpoint.actions(1.0)
    assert actions.close is Close.FLUSH
    assert actions.deadline == 11.0
    assert endpoint.actions(10.9).close is Close.KEEP
    assert endpoint.actions(11.0).close is Close.ABORT


def test_a_client_flushes_once_the_server_closed_the_transport() -> None:
    endpoint, server = pair(close_timeout=10.0)
    endpoint.close(1000, "", 0.0)
    to_peer(endpoint, server)
    from_peer(endpoint, server, 1.0)  # the server's answer
    actions = endpoint.actions(1.0)
    assert state(endpoint) is State.CLOSED
    assert actions.close is Close.KEEP  # it waits for the server's EOF
    assert actions.deadline == 11.0
    endpoint.receive_data(b"", 2.0)
    actions = endpoint.actions(2.0)
    assert actions.close is Close.FLUSH
    assert actions.deadline == 12.0


# A request without Sec-WebSocket-Version, which accept() answers with 426.
UNVERSIONED = request_bytes(
    headers=[
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
)
REFUSALS: dict[str, tuple[bytes, Response | None]] = {
    "the application's response": (request_bytes(), Response(403, body=b"no\n")),
    "an invalid request": (UNVERSIONED, None),
}


@pytest.mark.parametrize(("request_", "response"), REFUSALS.values(), ids=REFUSALS.keys())
def test_a_server_flushes_its_http_answer_to_a_handshake_it_did_not_accept(
    request_: bytes, response: Response | None
) -> None:
    # The client must be able to read the whole answer.
    endpoint = Endpoint(ServerConnection(**{**QUIET, "close_timeout": 10.0}), 0.0)
    endpoint.receive_data(request_, 0.0)
    endpoint.answer(response, 1.0)
    actions = endpoint.actions(1.0)
    assert actions.write.startswith(b"HTTP/1.1 4")
    assert actions.close is Close.FLUSH
    assert actions.deadline == 11.0
    assert endpoint.actions(11.0).close is Close.ABORT


def abandon_fragments(endpoint: Endpoint) -> None:
    endpoint.send_fragment("x", 1.0)
    endpoint.abort_fragments(1.0)


FAILURES: dict[str, Callable[[Endpoint], object]] = {
    "protocol violation": lambda e: e.receive_data(violation(e), 1.0),
    "end of stream while open": lambda e: e.receive_data(b"", 1.0),
    "abort()": lambda e: e.abort(1.0),
    "abort_fragments()": abandon_fragments,
}


@pytest.mark.parametrize("fail", FAILURES.values(), ids=FAILURES.keys())
@pytest.mark.parametrize("role", ["client", "server"])
def test_a_failure_aborts_the_transport(fail: Callable[[Endpoint], object], role: str) -> None:
    # The peer may not be reading: what the transport does not take at once
    # is dropped.
    if role == "client":
        endpoint = pair(close_timeout=10.0)[0]
    else:
        endpoint = server_pair(close_timeout=10.0)[0]
    fail(endpoint)
    actions = endpoint.actions(1.0)
    assert state(endpoint) is State.CLOSED
    assert actions.close is Close.ABORT


TIMEOUTS: dict[str, tuple[dict[str, Any], Callable[[Endpoint], object], type[Exception]]] = {
    "open timeout": ({"open_timeout": 5.0}, lambda e: None, OpenTimeout),
    "ping timeout": ({"ping_interval": 1.0, "ping_timeout": 1.0}, lambda e: None, PingTimeout),
    "close timeout": ({"close_timeout": 2.0}, lambda e: e.close(1000, "", 0.0), CloseTimeout),
}


@pytest.mark.parametrize(("options", "start", "error"), TIMEOUTS.values(), ids=TIMEOUTS.keys())
def test_a_timeout_aborts_the_transport(
    options: dict[str, Any], start: Callable[[Endpoint], object], error: type[Exception]
) -> None:
    if "open_timeout" in options:
        endpoint = Endpoint(ClientConnection(URL, **{**QUIET, **options}), 0.0)
    else:
        endpoint = pair(**options)[0]
    start(endpoint)
    # The timer fires in there.
    closes = [endpoint.actions(now).close for now in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)]
    assert isinstance(endpoint.connection.close_error, error)
    assert [close for close in closes if close is not Close.KEEP] == [Close.ABORT]


def test_flush_and_abort_are_each_reported_once() -> None:
    endpoint, client = server_pair(close_timeout=10.0)
    client.close(1000)
    from_peer(endpoint, client, 1.0)
    closes = [endpoint.actions(now).close for now in (1.0, 1.0, 5.0, 11.0, 11.0, 12.0)]
    assert closes == [Close.FLUSH, Close.KEEP, Close.KEEP, Close.ABORT, Close.KEEP, Close.KEEP]
    endpoint.abort(13.0)  # already aborting: nothing new to do
    assert endpoint.actions(13.0).close is Close.KEEP


def test_no_deadline_is_left_in_the_past_once_the_flush_time_ran_out() -> None:
    # Actions.deadline is "never in the past by more than the time the call
    # took": a driver arms its timer with it, and one in the past fires at
    # once, for ever.
    endpoint, client = server_pair(close_timeout=10.0)
    client.close(1000)
    from_peer(endpoint, client, 1.0)
    assert endpoint.actions(1.0).close is Close.FLUSH
    assert endpoint.actions(11.0).close is Close.ABORT
    deadline = endpoint.actions(11.5).deadline
    assert deadline is None or deadline >= 11.5


def test_the_transport_closing_wakes_every_waiter_and_ends_the_connection() -> None:
    endpoint, _server = pair(write_limit=10)
    ping = endpoint.ping(b"p", 0.0)
    endpoint.unwritten(11)  # bytes the transport never took
    endpoint.actions(0.0)
    endpoint.transport_closed(1.0)
    actions = endpoint.actions(1.0)
    assert all(what in Wait(actions.wake) for what in Wait)
    assert (actions.read, actions.deadline, actions.close) == (False, None, Close.KEEP)
    assert endpoint.ready(Wait.TRANSPORT_CLOSED)
    assert endpoint.ready(Wait.DRAINED)  # nothing more can drain
    assert endpoint.ready(Wait.CLOSED)
    assert endpoint.connection.close_code == 1006
    assert ping.done()


def test_nothing_is_written_or_read_after_the_transport_closed() -> None:
    endpoint, server = pair()
    server.send_text("too late")
    endpoint.close(1000, "", 0.0)  # its Close frame is still queued
    endpoint.transport_closed(1.0)
    assert endpoint.actions(1.0).write == b""
    from_peer(endpoint, server, 1.0)
    assert endpoint.queued_messages == 0
    endpoint.transport_closed(2.0)  # reported twice: nothing happens
    assert endpoint.actions(2.0).wake == Wait(0)


# -------------------------------------------------------------- pings


def test_a_ping_is_answered_with_its_latency() -> None:
    endpoint, server = pair()
    ping = endpoint.ping(None, 10.0)
    assert isinstance(ping, Ping)
    assert len(ping.payload) == 4
    assert not ping.done()
    assert server.receive_data(endpoint.data_to_send()) == [PingEvent(ping.payload)]
    from_peer(endpoint, server, 10.25)
    assert Wait.PONG in Wait(endpoint.actions(10.25).wake)
    assert ping.done()
    assert ping.result() == pytest.approx(0.25)
    assert endpoint.latency == pytest.approx(0.25)


def test_a_ping_has_no_result_before_its_pong() -> None:
    endpoint, _server = pair()
    ping = endpoint.ping(b"wait", 0.0)
    with pytest.raises(InvalidState, match="no pong yet"):
        ping.result()


def test_a_pong_answers_its_ping_and_every_earlier_one() -> None:
    # Peers may answer only the most recent Ping (RFC 6455 section 5.5.3).
    endpoint, server = pair()
    first = endpoint.ping(b"first", 1.0)
    second = endpoint.ping(b"second", 2.0)
    third = endpoint.ping(b"third", 3.0)
    endpoint.data_to_send()
    server.send_pong(b"second")
    from_peer(endpoint, server, 4.0)
    assert (first.result(), second.result()) == (3.0, 2.0)
    assert not third.done()
    assert endpoint.latency == 2.0  # the Ping the Pong named
    server.send_pong(b"third")
    from_peer(endpoint, server, 4.5)
    assert third.result() == 1.5


def test_an_unsolicited_pong_answers_nothing() -> None:
    endpoint, server = pair()
    ping = endpoint.ping(b"mine", 0.0)
    server.send_pong(b"other")
    from_peer(endpoint, server)
    assert Wait.PONG not in Wait(endpoint.actions(0.0).wake)
    assert not ping.done()


def test_two_pending_pings_cannot_share_a_payload() -> None:
    endpoint, _server = pair()
    endpoint.ping(b"same", 0.0)
    with pytest.raises(LocalProtocolError, match="already waiting"):
        endpoint.ping(b"same", 0.0)


def test_a_ping_payload_longer_than_125_bytes_is_refused() -> None:
    endpoint, _server = pair()
    with pytest.raises(LocalProtocolError, match="125"):
        endpoint.ping(b"x" * 126, 0.0)
    endpoint.ping(b"x" * 125, 0.0)  # and not left pending: a new one may use it


def test_pending_pings_fail_with_connection_closed_when_the_connection_closes() -> None:
    endpoint, _server = pair()
    ping = endpoint.ping(None, 0.0)
    endpoint.abort(1.0)
    assert Wait.PONG in Wait(endpoint.actions(1.0).wake)
    assert ping.done()
    with pytest.raises(ConnectionClosed) as info:
        ping.result()
    assert info.value.code == 1006


def test_keepalive_latency_is_measured_by_the_endpoint() -> None:
    # The connection's Pong says when the keepalive Ping left; the
    # endpoint's clock says when the Pong came back.
    endpoint, server = pair(ping_interval=5.0, ping_timeout=5.0)
    mine = endpoint.ping(b"mine", 0.0)
    endpoint.data_to_send()  # lost on the way: never answered
    events = server.receive_data(endpoint.actions(5.0).write)
    assert [type(event) for event in events] == [PingEvent]  # the keepalive
    endpoint.receive_data(server.data_to_send(), 5.125)
    assert endpoint.latency == pytest.approx(0.125)
    assert Wait.PONG not in Wait(endpoint.actions(5.125).wake)
    assert not mine.done()  # a keepalive Pong settles no application Ping


def test_pong_sends_an_unsolicited_pong() -> None:
    endpoint, server = pair()
    endpoint.pong(b"beat")
    assert server.receive_data(endpoint.data_to_send()) == [PongEvent(b"beat")]


def test_ping_after_close_raises_connection_closed() -> None:
    endpoint, _server = pair()
    endpoint.close(1000, "", 0.0)
    with pytest.raises(ConnectionClosedError):
        endpoint.ping(None, 0.0)
    with pytest.raises(ConnectionClosedError):
        endpoint.pong()


# -------------------------------------------------------------- shutdown


def test_shutdown_closes_an_open_connection_with_1001() -> None:
    endpoint, client = server_pair()
    endpoint.shutdown(1.0)
    assert state(endpoint) is State.CLOSING
    assert to_peer(endpoint, client, 1.0) == [Closed(1001, "", clean=True)]


def test_shutdown_drops_a_connection_still_in_its_opening_handshake() -> None:
    # Nothing was promised to it: no answer, and no waiting.
    endpoint, _client = server_endpoint()
    endpoint.shutdown(1.0)
    actions = endpoint.actions(1.0)
    assert actions.write == b""
    assert actions.close is Close.ABORT
    assert state(endpoint) is State.CLOSED


def test_shutdown_leaves_a_closing_connection_alone() -> None:
    endpoint, _client = server_pair()
    endpoint.close(4000, "bye", 0.0)
    endpoint.actions(0.0)
    endpoint.shutdown(1.0)
    assert endpoint.actions(1.0).write == b""  # no second Close frame
    assert state(endpoint) is State.CLOSING


# -------------------------------------------------------------- ready()


def test_message_is_ready_when_one_is_queued_or_the_connection_closed() -> None:
    endpoint, server = pair()
    assert not endpoint.ready(Wait.MESSAGE)
    server.send_text("x")
    from_peer(endpoint, server)
    assert endpoint.ready(Wait.MESSAGE)
    endpoint.next_message(0.0)
    assert not endpoint.ready(Wait.MESSAGE)
    endpoint.abort(0.0)
    assert endpoint.ready(Wait.MESSAGE)  # next_message raises now


def test_sendable_is_ready_unless_a_fragmented_message_is_being_sent() -> None:
    endpoint, server = pair()
    assert endpoint.ready(Wait.SENDABLE)
    endpoint.send_fragment("x", 0.0)
    assert not endpoint.ready(Wait.SENDABLE)
    server.close(1000)
    from_peer(endpoint, server)
    assert endpoint.ready(Wait.SENDABLE)  # not open: sending fails at once


def test_request_is_ready_when_it_arrived_or_the_handshake_ended_without_one() -> None:
    endpoint = Endpoint(ServerConnection(**QUIET), 0.0)
    assert not endpoint.ready(Wait.REQUEST)
    endpoint.receive_data(request_bytes(), 0.0)
    assert endpoint.ready(Wait.REQUEST)
    assert Wait.REQUEST in Wait(endpoint.actions(0.0).wake)
    silent = Endpoint(ServerConnection(**QUIET), 0.0)
    silent.receive_data(b"", 0.0)
    assert silent.ready(Wait.REQUEST)
    assert silent.request is None


def test_handshake_is_ready_once_the_opening_handshake_ended() -> None:
    endpoint, _client = server_endpoint()
    assert not endpoint.ready(Wait.HANDSHAKE)
    endpoint.answer(Response(404), 0.0)
    assert endpoint.ready(Wait.HANDSHAKE)  # refused counts as ended


def test_closed_is_ready_only_once_the_connection_is_closed() -> None:
    endpoint, server = pair()
    assert not endpoint.ready(Wait.CLOSED)
    endpoint.close(1000, "", 0.0)
    assert not endpoint.ready(Wait.CLOSED)  # CLOSING
    to_peer(endpoint, server)
    from_peer(endpoint, server)
    assert endpoint.ready(Wait.CLOSED)
    assert not endpoint.ready(Wait.TRANSPORT_CLOSED)


@pytest.mark.parametrize("what", [Wait.PONG, Wait.MESSAGE | Wait.CLOSED])
def test_ready_refuses_what_it_cannot_tell(what: Wait) -> None:
    # A Pong waiter checks its Ping (Ping.done()); a waiter waits for one
    # condition.
    endpoint, _server = pair()
    with pytest.raises(ValueError, match="cannot wait for"):
        endpoint.ready(what)


# -------------------------------------------------------------- server side


def test_a_server_endpoint_holds_the_request_until_it_is_answered() -> None:
    endpoint, _client = server_endpoint()
    assert endpoint.request is not None
    assert endpoint.request.path == "/path"
    assert state(endpoint) is State.CONNECTING
    assert endpoint.actions(0.0).write == b""


def test_answering_none_accepts_the_request() -> None:
    endpoint, client = server_endpoint()
    endpoint.answer(None, 0.0)
    actions = endpoint.actions(0.0)
    assert Wait.HANDSHAKE in Wait(actions.wake)
    events = client.receive_data(actions.write)
    assert [type(event) for event in events] == [Accepted]
    assert client.subprotocol == "chat"


def test_answer_takes_the_subprotocol_and_extra_headers() -> None:
    client = ClientConnection(URL, **{**QUIET, "subprotocols": ["chat", "superchat"]})
    endpoint = Endpoint(ServerConnection(**{**QUIET, "subprotocols": ["chat", "superchat"]}), 0.0)
    endpoint.receive_data(client.data_to_send(), 0.0)
    endpoint.answer(None, 0.0, subprotocol="superchat", extra_headers=[("X-Served-By", "a")])
    (accepted,) = client.receive_data(endpoint.actions(0.0).write)
    assert isinstance(accepted, Accepted)
    assert accepted.subprotocol == "superchat"
    assert accepted.headers["X-Served-By"] == "a"


def test_answering_accepts_frames_that_followed_the_request() -> None:
    # A client may send frames without waiting for the response.
    endpoint = Endpoint(ServerConnection(**QUIET), 0.0)
    endpoint.receive_data(request_bytes(), 0.0)
    endpoint.receive_data(text(endpoint, "hi"), 0.0)
    endpoint.answer(None, 0.0)
    assert Wait.MESSAGE in Wait(endpoint.actions(0.0).wake)
    assert endpoint.next_message(0.0) == "hi"


def test_answering_with_a_response_refuses_the_request() -> None:
    endpoint, client = server_endpoint()
    endpoint.answer(Response(401, [("WWW-Authenticate", "Bearer")], b"who are you?\n"), 0.0)
    (rejected,) = client.receive_data(endpoint.actions(0.0).write)
    assert isinstance(rejected, Rejected)
    assert rejected.status == 401
    assert rejected.headers["WWW-Authenticate"] == "Bearer"
    assert rejected.body == b"who are you?\n"


def test_only_a_server_answers_a_handshake() -> None:
    endpoint, _server = pair()
    with pytest.raises(TypeError, match="server"):
        endpoint.answer(None, 0.0)


# -------------------------------------------------------------- the view


def test_connection_view_reads_the_connection_and_the_endpoint() -> None:
    # The attributes every driver's connection offers, in one place.
    class DriverConnection(ConnectionView):
        def __init__(self, endpoint: Endpoint) -> None:
            self._endpoint = endpoint

    endpoint, client = server_pair()
    ws = DriverConnection(endpoint)
    assert ws.state is State.OPEN
    assert ws.subprotocol == "chat"
    assert ws.request is endpoint.request
    assert ws.request_headers is not None
    assert ws.request_headers["Sec-WebSocket-Version"] == "13"
    assert isinstance(ws.response, Accepted)
    assert ws.response_headers is not None
    assert ws.response_headers["Upgrade"].lower() == "websocket"
    assert (ws.close_code, ws.close_reason, ws.latency) == (None, None, 0.0)
    client.close(1000, "bye")
    from_peer(endpoint, client, 1.0)
    assert (ws.close_code, ws.close_reason) == (1000, "bye")
    assert state(endpoint) is State.CLOSED


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((200, "OK\n"), "the body is the third argument"),
        ((200, (), "OK\n"), "body must be bytes, not str"),
        (("200",), "status must be an int"),
    ],
)
def test_a_response_built_wrong_says_how_at_once(arguments: tuple[Any, ...], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Response(*arguments)
