"""Endpoint: the application-facing state every driver shares (message queue
and read pausing, ping waiters, fragmented sends, closing, server answers)."""

from __future__ import annotations

import pytest

from sansws import ClientConnection, ServerConnection, State
from sansws.endpoint import Endpoint, Progress, Response, is_message
from sansws.errors import (
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    LocalProtocolError,
)
from sansws.events import Closed, Message, Ping, Pong


def pair(**options: object) -> tuple[Endpoint, ServerConnection]:
    """An OPEN client endpoint and the in-memory server it talks to."""
    client = ClientConnection("ws://example.com/", ping_interval=None)
    server = ServerConnection(ping_interval=None)
    server.receive_data(client.data_to_send())
    server.accept()
    endpoint = Endpoint(client, **options)  # type: ignore[arg-type]
    progress = endpoint.receive_data(server.data_to_send(), 0.0)
    assert progress.handshake
    return endpoint, server


def server_sends(endpoint: Endpoint, server: ServerConnection, now: float = 0.0) -> Progress:
    return endpoint.receive_data(server.data_to_send(), now)


def frames_at_server(endpoint: Endpoint, server: ServerConnection) -> list[object]:
    return list(server.receive_data(endpoint.data_to_send()))


# -------------------------------------------------------------- construction


def test_stream_mode_connections_are_refused() -> None:
    with pytest.raises(ValueError, match="stream_messages"):
        Endpoint(ClientConnection("ws://a/", stream_messages=True))


@pytest.mark.parametrize("max_queue", [0, -1])
def test_max_queue_must_be_positive_or_none(max_queue: int) -> None:
    with pytest.raises(ValueError, match="max_queue"):
        Endpoint(ClientConnection("ws://a/"), max_queue=max_queue)


def test_the_handshake_ending_is_reported_once() -> None:
    client = ClientConnection("ws://example.com/", ping_interval=None)
    endpoint = Endpoint(client)
    assert endpoint.handshake_pending
    server = ServerConnection()
    server.receive_data(endpoint.data_to_send())
    server.accept()
    response = server.data_to_send()
    first = endpoint.receive_data(response[:10], 0.0)
    assert not first.handshake
    second = endpoint.receive_data(response[10:], 0.0)
    assert second.handshake
    assert not endpoint.handshake_pending


def test_a_handshake_timeout_is_reported_as_the_end_of_the_handshake() -> None:
    endpoint = Endpoint(ClientConnection("ws://a/", open_timeout=1.0))
    endpoint.handle_timeout(0.0)
    progress = endpoint.handle_timeout(1.0)
    assert progress.handshake
    assert progress.closed
    assert endpoint.closed


# -------------------------------------------------------------- the queue


def test_messages_are_queued_in_order_until_the_application_takes_them() -> None:
    endpoint, server = pair()
    server.send_text("one")
    server.send_binary(b"two")
    progress = server_sends(endpoint, server)
    assert progress.messages
    assert endpoint.queued_messages == 2
    assert endpoint.next_message() == "one"
    assert endpoint.next_message() == b"two"
    assert endpoint.next_message() is None


def test_reading_pauses_at_max_queue_and_resumes_at_a_quarter() -> None:
    endpoint, server = pair(max_queue=8)
    for i in range(7):
        server.send_text(str(i))
    server_sends(endpoint, server)
    assert not endpoint.reading_paused
    server.send_text("7")
    server_sends(endpoint, server)
    assert endpoint.reading_paused
    # Hysteresis: taking messages does not resume reading before the queue
    # is down to max_queue // 4.
    for _ in range(5):
        endpoint.next_message()
        assert endpoint.reading_paused
    endpoint.next_message()
    assert endpoint.queued_messages == 2
    assert not endpoint.reading_paused


def test_no_max_queue_never_pauses() -> None:
    endpoint, server = pair(max_queue=None)
    for i in range(1000):
        server.send_text(str(i))
    server_sends(endpoint, server)
    assert endpoint.queued_messages == 1000
    assert not endpoint.reading_paused


def test_messages_received_before_the_close_are_delivered_before_the_error() -> None:
    endpoint, server = pair()
    server.send_text("last words")
    server.close(1000, "bye")
    progress = server_sends(endpoint, server)
    # The Close waits until the application has taken the message before it.
    assert progress.messages
    assert not progress.closed
    assert endpoint.next_message() == "last words"
    with pytest.raises(ConnectionClosedOK) as info:
        endpoint.next_message()
    assert (info.value.code, info.value.reason) == (1000, "bye")
    assert endpoint.closed


def test_an_answer_to_the_last_message_goes_out_before_the_close_reply() -> None:
    # RFC 6455 section 5.5.1 lets an endpoint finish sending before it
    # answers a Close: a reply to a message that arrived with the peer's
    # Close is not refused.
    endpoint, server = pair()
    server.send_text("question")
    server.close(1000)
    server_sends(endpoint, server)
    assert endpoint.next_message() == "question"
    endpoint.send("answer")  # the connection is still open
    with pytest.raises(ConnectionClosedOK):
        endpoint.next_message()  # asking for more answers the Close
    events = frames_at_server(endpoint, server)
    assert events == [Message("answer"), Closed(1000, "", clean=True)]


def test_a_held_close_is_answered_within_a_second_if_the_application_never_asks() -> None:
    endpoint, server = pair()
    server.send_text("ignored")
    server.close(1000)
    endpoint.receive_data(server.data_to_send(), 10.0)
    assert endpoint.connection.holding
    assert endpoint.next_deadline() == 11.0  # armed by the receive's own tick
    assert not endpoint.handle_timeout(10.999).closed
    assert endpoint.handle_timeout(11.0).closed
    assert endpoint.next_message() == "ignored"  # still delivered
    events = frames_at_server(endpoint, server)
    assert events == [Closed(1000, "", clean=True)]


def test_the_hold_is_shorter_than_half_a_short_close_timeout() -> None:
    client = ClientConnection("ws://example.com/", ping_interval=None, close_timeout=0.5)
    server = ServerConnection(ping_interval=None)
    server.receive_data(client.data_to_send())
    server.accept()
    endpoint = Endpoint(client)
    endpoint.receive_data(server.data_to_send(), 0.0)
    server.send_text("x")
    server.close(1000)
    endpoint.receive_data(server.data_to_send(), 3.0)
    assert endpoint.next_deadline() == 3.25


def test_an_abnormal_end_raises_connection_closed_error() -> None:
    endpoint, _server = pair()
    progress = endpoint.abort(1.0)
    assert progress.closed
    with pytest.raises(ConnectionClosedError) as info:
        endpoint.next_message()
    assert info.value.code == 1006


def test_a_close_with_an_error_code_raises_connection_closed_error() -> None:
    endpoint, server = pair()
    server.close(4000, "app error")
    server_sends(endpoint, server)
    with pytest.raises(ConnectionClosedError) as info:
        endpoint.next_message()
    assert (info.value.code, info.value.reason) == (4000, "app error")


# -------------------------------------------------------------- sending


def test_send_picks_text_for_str_and_binary_for_bytes_like() -> None:
    endpoint, server = pair()
    endpoint.send("text")
    endpoint.send(b"bytes")
    endpoint.send(bytearray(b"array"))
    endpoint.send(memoryview(b"view"))
    assert frames_at_server(endpoint, server) == [
        Message("text"),
        Message(b"bytes"),
        Message(b"array"),
        Message(b"view"),
    ]


def test_send_refuses_other_types() -> None:
    endpoint, _server = pair()
    with pytest.raises(TypeError, match="str or bytes-like"):
        endpoint.send(42)  # type: ignore[arg-type]


def test_is_message_tells_whole_messages_from_fragment_sources() -> None:
    assert is_message("x")
    assert is_message(b"x")
    assert is_message(memoryview(b"x"))
    assert not is_message(["x"])
    assert not is_message(iter([b"x"]))


def test_send_before_the_handshake_completes_is_invalid_state() -> None:
    endpoint = Endpoint(ClientConnection("ws://a/"))
    with pytest.raises(InvalidState):
        endpoint.send("too early")


def test_send_after_close_raises_connection_closed() -> None:
    endpoint, _server = pair()
    endpoint.close(1000)
    with pytest.raises(ConnectionClosedError) as info:
        endpoint.send("late")
    # While CLOSING, the error describes the close that was sent.
    assert info.value.code == 1000


def test_fragments_make_one_message_ended_by_an_empty_final_frame() -> None:
    endpoint, server = pair()
    endpoint.send_fragment("he")
    endpoint.send_fragment("llo")
    assert endpoint.sending_fragments
    endpoint.end_fragments()
    assert not endpoint.sending_fragments
    assert frames_at_server(endpoint, server) == [Message("hello")]


def test_binary_fragments_accept_any_bytes_like() -> None:
    endpoint, server = pair()
    endpoint.send_fragment(b"a")
    endpoint.send_fragment(bytearray(b"b"))
    endpoint.send_fragment(memoryview(b"c"))
    endpoint.end_fragments()
    assert frames_at_server(endpoint, server) == [Message(b"abc")]


def test_end_fragments_without_fragments_sends_nothing() -> None:
    endpoint, _server = pair()
    endpoint.end_fragments()
    assert endpoint.data_to_send() == b""


def test_a_whole_message_cannot_interleave_with_fragments() -> None:
    endpoint, _server = pair()
    endpoint.send_fragment("part")
    with pytest.raises(LocalProtocolError, match="fragmented"):
        endpoint.send("whole")


def test_mixing_fragment_types_fails_the_connection_with_1011() -> None:
    endpoint, server = pair()
    endpoint.send_fragment("text")
    with pytest.raises(TypeError, match="all fragments"):
        endpoint.send_fragment(b"bytes")
    assert endpoint.closed
    assert endpoint.should_close_transport
    events = frames_at_server(endpoint, server)
    assert isinstance(events[-1], Closed)
    assert events[-1].code == 1011


def test_a_fragment_of_another_type_fails_the_connection() -> None:
    endpoint, _server = pair()
    endpoint.send_fragment(b"x")
    with pytest.raises(TypeError, match="str or bytes-like"):
        endpoint.send_fragment(3)  # type: ignore[arg-type]
    assert endpoint.closed


def test_abandoning_a_fragmented_message_fails_with_1011() -> None:
    endpoint, server = pair()
    endpoint.send_fragment(b"start")
    endpoint.abort_fragments()
    events = frames_at_server(endpoint, server)
    assert isinstance(events[-1], Closed)
    assert (events[-1].code, events[-1].reason) == (1011, "incomplete fragmented message")
    # Abandoning when nothing is in progress changes nothing.
    endpoint2, _ = pair()
    endpoint2.abort_fragments()
    assert endpoint2.connection.state is State.OPEN


# -------------------------------------------------------------- pings


def test_a_ping_is_answered_with_its_latency() -> None:
    endpoint, server = pair()
    payload = endpoint.ping(10.0)
    assert len(payload) == 4
    events = frames_at_server(endpoint, server)
    assert events == [Ping(payload)]
    progress = server_sends(endpoint, server, now=10.25)
    assert progress.pongs == [(payload, pytest.approx(0.25))]
    assert endpoint.latency == pytest.approx(0.25)


def test_a_pong_answers_its_ping_and_every_earlier_one() -> None:
    endpoint, server = pair()
    first = endpoint.ping(1.0, b"first")
    second = endpoint.ping(2.0, b"second")
    third = endpoint.ping(3.0, b"third")
    endpoint.data_to_send()
    server.send_pong(second)
    progress = server_sends(endpoint, server, now=4.0)
    assert progress.pongs == [(first, 3.0), (second, 2.0)]
    server.send_pong(third)
    assert server_sends(endpoint, server, now=4.5).pongs == [(third, 1.5)]


def test_an_unsolicited_pong_answers_nothing() -> None:
    endpoint, server = pair()
    endpoint.ping(0.0, b"mine")
    server.send_pong(b"other")
    assert server_sends(endpoint, server).pongs == []


def test_two_pending_pings_cannot_share_a_payload() -> None:
    endpoint, _server = pair()
    endpoint.ping(0.0, b"same")
    with pytest.raises(LocalProtocolError, match="already waiting"):
        endpoint.ping(0.0, b"same")


def test_pending_pings_are_forgotten_when_the_connection_closes() -> None:
    endpoint, _server = pair()
    payload = endpoint.ping(0.0)
    progress = endpoint.abort(1.0)
    assert progress.closed
    # A late Pong (impossible on a real transport) would answer nothing.
    assert payload not in endpoint._pings


def test_keepalive_latency_is_reported_as_the_endpoint_latency() -> None:
    client = ClientConnection("ws://a/", ping_interval=5.0, ping_timeout=5.0)
    server = ServerConnection(ping_interval=None)
    endpoint = Endpoint(client)
    server.receive_data(endpoint.data_to_send())
    server.accept()
    endpoint.receive_data(server.data_to_send(), 0.0)  # arms keepalive at t=0
    endpoint.handle_timeout(5.0)  # sends the keepalive ping
    server.receive_data(endpoint.data_to_send())  # answers it
    endpoint.receive_data(server.data_to_send(), 5.125)
    assert endpoint.latency == pytest.approx(0.125)


def test_pong_sends_an_unsolicited_pong() -> None:
    endpoint, server = pair()
    endpoint.pong(b"beat")
    assert frames_at_server(endpoint, server) == [Pong(b"beat")]


def test_ping_after_close_raises_connection_closed() -> None:
    endpoint, _server = pair()
    endpoint.close()
    with pytest.raises(ConnectionClosedError):
        endpoint.ping(0.0)
    with pytest.raises(ConnectionClosedError):
        endpoint.pong()


# -------------------------------------------------------------- closing


def test_close_runs_the_handshake_and_is_idempotent() -> None:
    endpoint, server = pair()
    endpoint.close(1001, "going")
    endpoint.close(1000, "again")  # no second Close frame
    events = frames_at_server(endpoint, server)
    assert events == [Closed(1001, "going", clean=True)]
    progress = server_sends(endpoint, server)
    assert progress.closed
    assert endpoint.closed
    # The client lets the server close the transport first.
    assert not endpoint.should_close_transport
    assert endpoint.receive_data(b"", 2.0).closed is False
    assert endpoint.should_close_transport


def test_next_deadline_follows_the_connection() -> None:
    endpoint, _server = pair()
    assert endpoint.next_deadline() is None
    endpoint.close()
    assert endpoint.next_deadline() == float("-inf")
    endpoint.handle_timeout(3.0)
    assert endpoint.next_deadline() == 13.0


# -------------------------------------------------------------- server side


def server_endpoint() -> tuple[Endpoint, ClientConnection, Progress]:
    client = ClientConnection("ws://example.com/path", subprotocols=["chat"], ping_interval=None)
    endpoint = Endpoint(ServerConnection(subprotocols=["chat"], ping_interval=None))
    progress = endpoint.receive_data(client.data_to_send(), 0.0)
    return endpoint, client, progress


def test_a_server_endpoint_reports_the_request() -> None:
    _endpoint, _client, progress = server_endpoint()
    assert progress.request is not None
    assert progress.request.path == "/path"
    assert not progress.handshake


def test_answering_none_accepts_the_request() -> None:
    endpoint, client, _ = server_endpoint()
    progress = endpoint.answer(None)
    assert progress.handshake
    events = client.receive_data(endpoint.data_to_send())
    assert client.state is State.OPEN
    assert client.subprotocol == "chat"
    assert len(events) == 1


def test_answering_accepts_frames_that_followed_the_request() -> None:
    client = ClientConnection("ws://example.com/", ping_interval=None)
    endpoint = Endpoint(ServerConnection(ping_interval=None))
    request = client.data_to_send()
    endpoint.receive_data(request, 0.0)
    # A client may send frames without waiting for the response.
    frame = b"\x81\x82abcd" + bytes(a ^ b for a, b in zip(b"hi", b"ab", strict=True))
    endpoint.receive_data(frame, 0.0)
    progress = endpoint.answer(None)
    assert progress.messages
    assert endpoint.next_message() == "hi"


def test_answering_with_a_response_rejects_the_request() -> None:
    endpoint, client, _ = server_endpoint()
    endpoint.answer(Response(401, [("WWW-Authenticate", "Bearer")], b"who are you?\n"))
    assert endpoint.should_close_transport
    (rejected,) = client.receive_data(endpoint.data_to_send())
    assert rejected.status == 401  # type: ignore[union-attr]
    assert rejected.body == b"who are you?\n"  # type: ignore[union-attr]


def test_only_a_server_answers_a_handshake() -> None:
    endpoint, _server = pair()
    with pytest.raises(TypeError, match="server"):
        endpoint.answer(None)


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [(None, 1000, ""), (RuntimeError("boom"), 1011, "internal error")],
)
def test_a_handler_that_returns_closes_normally_and_one_that_raises_with_1011(
    error: BaseException | None, code: int, reason: str
) -> None:
    endpoint, client, _ = server_endpoint()
    endpoint.answer(None)
    client.receive_data(endpoint.data_to_send())
    assert endpoint.finish_handler(error) is (error is not None)
    (closed,) = client.receive_data(endpoint.data_to_send())
    assert closed == Closed(code, reason, clean=True)


def test_a_handler_letting_out_its_own_connection_closed_has_not_failed() -> None:
    endpoint, client, _ = server_endpoint()
    endpoint.answer(None)
    client.receive_data(endpoint.data_to_send())
    client.close(1000)
    endpoint.receive_data(client.data_to_send(), 0.0)
    with pytest.raises(ConnectionClosedOK) as info:
        endpoint.next_message()
    assert endpoint.finish_handler(info.value) is False


def test_a_connection_closed_from_elsewhere_while_open_is_a_failure() -> None:
    # A handler relaying to another connection that closed has failed: its
    # own connection is still open and gets 1011.
    endpoint, client, _ = server_endpoint()
    endpoint.answer(None)
    client.receive_data(endpoint.data_to_send())
    assert endpoint.finish_handler(ConnectionClosedOK(1000, "", clean=True)) is True
    (closed,) = client.receive_data(endpoint.data_to_send())
    assert closed.code == 1011  # type: ignore[union-attr]


def test_reading_pauses_while_the_driver_cannot_write_but_not_while_closing() -> None:
    endpoint, _server = pair()
    assert not endpoint.reading_paused
    endpoint.writing_paused = True  # the driver's unwritten bytes passed write_limit
    assert endpoint.reading_paused
    endpoint.writing_paused = False
    assert not endpoint.reading_paused
    endpoint.writing_paused = True
    endpoint.close()
    # The peer's Close must still be read, or closing would wait for the timeout.
    assert not endpoint.reading_paused
