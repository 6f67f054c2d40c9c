"""sansws.asgi: the ASGI WebSocket rules, driven in memory against a real
sansws client, without a server or an event loop (a procedure that would
wait yields WaitFor; these tests see it)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from core_harness import QUIET, request_bytes

from sansws import ClientConnection, ServerConnection, State
from sansws.asgi import ASGIWebSocket, UnexpectedMessage
from sansws.endpoint import Close, Endpoint, Wait
from sansws.errors import ConnectionClosed, ConnectionClosedOK, LocalProtocolError
from sansws.events import Accepted, Closed, Message, Rejected
from sansws.ops import Procedure, Report, WaitFor

NOW = 1.0


def clock() -> float:
    return NOW


def done(procedure: Procedure[Any]) -> Any:
    """The value of a procedure that must not wait."""
    try:
        effect = next(procedure)
    except StopIteration as stop:
        return stop.value
    raise AssertionError(f"the procedure waits: {effect}")


def waits(procedure: Procedure[Any]) -> WaitFor:
    """What a procedure that must wait waits for."""
    effect = next(procedure)
    assert isinstance(effect, WaitFor)
    return effect


def started(path: str = "/chat", **options: Any) -> tuple[ASGIWebSocket, ClientConnection]:
    """An ASGIWebSocket whose client's request arrived; the application's
    first receive() taken."""
    client = ClientConnection(f"ws://example.com{path}", **{**QUIET, "subprotocols": ["a", "b"]})
    endpoint = Endpoint(
        ServerConnection(**{**QUIET, "server_header": None, **options}), NOW, max_queue=1
    )
    endpoint.receive_data(client.data_to_send(), NOW)
    asgi = ASGIWebSocket(endpoint, default_headers=[(b"server", b"test")])
    assert asgi.start(NOW)
    assert not asgi.start(NOW)  # once
    assert done(asgi.receive(clock)) == {"type": "websocket.connect"}
    return asgi, client


def opened(**options: Any) -> tuple[ASGIWebSocket, ClientConnection]:
    asgi, client = started(**options)
    done(asgi.send({"type": "websocket.accept"}, clock))
    [accepted] = client.receive_data(asgi.endpoint.actions(NOW).write)
    assert isinstance(accepted, Accepted)
    return asgi, client


def answer(asgi: ASGIWebSocket, client: ClientConnection) -> list[Any]:
    return client.receive_data(asgi.endpoint.actions(NOW).write)


def test_the_scope_decodes_the_path_and_keeps_the_raw_one() -> None:
    asgi, _ = started("/one%2Ftwo?x=1&y=%20")
    scope = asgi.scope(
        scheme="ws", server=("127.0.0.1", 80), client=("127.0.0.1", 5), root_path="/api"
    )
    assert scope["path"] == "/api/one/two"
    assert scope["raw_path"] == b"/api/one%2Ftwo"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["subprotocols"] == ["a", "b"]
    assert (b"host", b"example.com") in scope["headers"]
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert scope["asgi"]["spec_version"] == "2.4"
    assert "websocket.http.response" in scope["extensions"]


def test_an_invalid_request_is_answered_by_the_core_and_never_starts_the_application() -> None:
    endpoint = Endpoint(ServerConnection(**QUIET), NOW)
    endpoint.receive_data(request_bytes(extra=[("Sec-WebSocket-Version", "8")]), NOW)
    asgi = ASGIWebSocket(endpoint)
    assert not asgi.start(NOW)
    assert endpoint.actions(NOW).write.startswith(b"HTTP/1.1 426 ")


def test_receive_waits_for_the_answer_then_gives_messages_then_the_clients_close() -> None:
    asgi, client = started()
    assert waits(asgi.receive(clock)).what is Wait.MESSAGE
    done(
        asgi.send(
            {"type": "websocket.accept", "subprotocol": "b", "headers": [(b"x-a", b"1")]}, clock
        )
    )
    [accepted] = answer(asgi, client)
    assert isinstance(accepted, Accepted)
    assert accepted.subprotocol == "b"
    assert accepted.headers.get_all("Server") == ["test"]
    assert accepted.headers["X-A"] == "1"
    client.send_text("hi")
    client.send_binary(b"\x00")
    client.close(4000, "bye")
    asgi.endpoint.receive_data(client.data_to_send(), NOW)
    assert done(asgi.receive(clock)) == {"type": "websocket.receive", "text": "hi"}
    assert done(asgi.receive(clock)) == {"type": "websocket.receive", "bytes": b"\x00"}
    disconnect = {"type": "websocket.disconnect", "code": 4000, "reason": "bye"}
    assert done(asgi.receive(clock)) == disconnect
    # Once: a loop that missed it ends, instead of spinning or hanging.
    with pytest.raises(ConnectionClosed) as again:
        done(asgi.receive(clock))
    assert again.value.code == 4000


def test_a_connection_lost_before_the_answer_gives_1006_without_a_reason() -> None:
    asgi, _ = started()
    asgi.endpoint.transport_closed(NOW)
    assert done(asgi.receive(clock)) == {"type": "websocket.disconnect", "code": 1006}
    with pytest.raises(ConnectionClosed):
        done(asgi.send({"type": "websocket.accept"}, clock))


def test_close_before_accept_refuses_with_403() -> None:
    asgi, client = started()
    report = done(asgi.send({"type": "websocket.close"}, clock))
    assert isinstance(report, Report)
    assert report.level == logging.INFO
    assert report.message.endswith(" 403")
    rejected, *_ = answer(asgi, client)
    assert isinstance(rejected, Rejected)
    assert rejected.status == 403
    assert done(asgi.receive(clock)) == {"type": "websocket.disconnect", "code": 1006}
    with pytest.raises(UnexpectedMessage):
        done(asgi.send({"type": "websocket.send", "text": "x"}, clock))


def test_a_response_is_gathered_from_its_parts() -> None:
    asgi, client = started()
    start = {
        "type": "websocket.http.response.start",
        "status": 404,
        "headers": [(b"content-length", b"99")],
    }
    done(asgi.send(start, clock))
    with pytest.raises(
        UnexpectedMessage, match=r"Expected ASGI message 'websocket.http.response.body' but got"
    ):
        done(asgi.send(start, clock))
    done(
        asgi.send(
            {"type": "websocket.http.response.body", "body": b"not ", "more_body": True}, clock
        )
    )
    assert asgi.endpoint.state is State.CONNECTING
    done(asgi.send({"type": "websocket.http.response.body", "body": b"here"}, clock))
    rejected, *_ = answer(asgi, client)
    assert isinstance(rejected, Rejected)
    assert (rejected.status, rejected.body) == (404, b"not here")
    assert rejected.headers.get_all("Content-Length") == ["8"]


@pytest.mark.parametrize("status", [101, 199, 600, 700, "200", None])
def test_an_invalid_status_is_refused(status: object) -> None:
    asgi, _ = started()
    with pytest.raises(UnexpectedMessage, match=r"Invalid HTTP status code"):
        done(asgi.send({"type": "websocket.http.response.start", "status": status}, clock))


def test_messages_out_of_turn_are_refused_with_what_was_expected() -> None:
    asgi, _ = started()
    with pytest.raises(UnexpectedMessage, match=r"'websocket.accept', 'websocket.close' or"):
        done(asgi.send({"type": "websocket.send", "text": "early"}, clock))
    done(asgi.send({"type": "websocket.accept"}, clock))
    with pytest.raises(UnexpectedMessage, match=r"'websocket.send' or 'websocket.close'"):
        done(asgi.send({"type": "websocket.accept"}, clock))
    with pytest.raises(UnexpectedMessage, match=r"needs 'bytes' \(bytes\) or 'text' \(str\)"):
        done(asgi.send({"type": "websocket.send"}, clock))
    with pytest.raises(UnexpectedMessage, match=r"'bytes' must be bytes, not str"):
        done(asgi.send({"type": "websocket.send", "bytes": "text"}, clock))
    with pytest.raises(UnexpectedMessage, match=r"needs 'bytes'"):
        done(asgi.send({"type": "websocket.send", "text": 5}, clock))


def test_the_applications_close_ends_its_side_at_once() -> None:
    asgi, client = opened()
    client.send_text("queued")
    asgi.endpoint.receive_data(client.data_to_send(), NOW)
    done(asgi.send({"type": "websocket.close", "code": None, "reason": None}, clock))
    [closed] = answer(asgi, client)
    assert isinstance(closed, Closed)
    assert closed.code == 1000
    # Messages received before it come first, then the application's close.
    assert done(asgi.receive(clock)) == {"type": "websocket.receive", "text": "queued"}
    assert done(asgi.receive(clock)) == {"type": "websocket.disconnect", "code": 1000, "reason": ""}
    with pytest.raises(UnexpectedMessage, match=r"after sending 'websocket.close'"):
        done(asgi.send({"type": "websocket.send", "text": "x"}, clock))


def test_send_waits_for_the_buffer_to_drain_before_it_writes() -> None:
    asgi, client = opened()
    endpoint = asgi.endpoint
    endpoint.unwritten(endpoint.write_mark.high + 1)
    sending = asgi.send({"type": "websocket.send", "text": "x"}, clock)
    assert waits(sending).what is Wait.DRAINED
    assert endpoint.actions(NOW).write == b""  # nothing overtakes the buffer
    endpoint.unwritten(0)
    with pytest.raises(StopIteration):
        sending.send(True)
    assert answer(asgi, client) == [Message("x")]


def test_a_send_after_the_client_left_raises_connection_closed() -> None:
    asgi, client = opened()
    client.close(1000)
    asgi.endpoint.receive_data(client.data_to_send(), NOW)
    assert done(asgi.receive(clock))["code"] == 1000
    with pytest.raises(ConnectionClosedOK):
        done(asgi.send({"type": "websocket.send", "text": "late"}, clock))


def test_an_application_that_fails_before_answering_gets_a_500() -> None:
    asgi, client = started()
    report = asgi.finished(ValueError("boom"), None, NOW)
    assert report is not None
    assert report.level == logging.ERROR
    assert isinstance(report.error, ValueError)
    rejected, *_ = answer(asgi, client)
    assert isinstance(rejected, Rejected)
    assert (rejected.status, rejected.body) == (500, b"Internal Server Error")


def test_an_application_that_returns_without_answering_gets_a_500_and_a_report() -> None:
    asgi, client = started()
    report = asgi.finished(None, None, NOW)
    assert report is not None
    assert "without completing handshake" in report.message
    rejected, *_ = answer(asgi, client)
    assert isinstance(rejected, Rejected)
    assert rejected.status == 500


def test_a_started_response_is_sent_with_the_body_given_when_the_application_ends() -> None:
    asgi, client = started()
    done(asgi.send({"type": "websocket.http.response.start", "status": 404, "headers": []}, clock))
    assert asgi.finished(None, None, NOW) is None
    rejected, *_ = answer(asgi, client)
    assert isinstance(rejected, Rejected)
    assert (rejected.status, rejected.body) == (404, b"")


def test_an_application_that_returns_while_open_leaves_after_what_it_sent() -> None:
    asgi, client = opened()
    done(asgi.send({"type": "websocket.send", "bytes": b"last"}, clock))
    report = asgi.finished(None, 123, NOW)
    assert report is not None
    assert "should return None, but returned '123'" in report.message
    actions = asgi.endpoint.actions(NOW)
    assert actions.close is Close.FLUSH  # written, then closed: no Close frame
    assert client.receive_data(actions.write) == [Message(b"last")]


def test_an_error_that_only_says_the_connection_closed_is_not_reported() -> None:
    asgi, client = opened()
    client.close(1001)
    asgi.endpoint.receive_data(client.data_to_send(), NOW)
    error = OSError("client disconnected")
    error.__cause__ = asgi.endpoint.closed_error()
    assert asgi.finished(error, None, NOW) is None


def test_shutdown_closes_an_open_connection_with_1012() -> None:
    asgi, client = opened()
    asgi.shutdown(NOW)
    [closed] = answer(asgi, client)
    assert isinstance(closed, Closed)
    assert closed.code == 1012
    assert done(asgi.receive(clock)) == {"type": "websocket.disconnect", "code": 1012}
    with pytest.raises(ConnectionClosed):
        done(asgi.send({"type": "websocket.send", "text": "x"}, clock))


def test_shutdown_refuses_an_unanswered_handshake_with_503() -> None:
    asgi, client = started()
    asgi.shutdown(NOW)
    rejected, *_ = answer(asgi, client)
    assert isinstance(rejected, Rejected)
    assert rejected.status == 503


def test_shutdown_during_the_close_handshake_stops_waiting() -> None:
    asgi, client = opened()
    done(asgi.send({"type": "websocket.close", "code": 1000}, clock))
    answer(asgi, client)
    assert asgi.endpoint.state is State.CLOSING
    asgi.shutdown(NOW)
    assert asgi.endpoint.state is State.CLOSED
    assert asgi.endpoint.actions(NOW).close is Close.FLUSH


def test_a_receive_already_waiting_gets_the_shutdown_at_once() -> None:
    asgi, _client = opened()
    waiting = asgi.receive(clock)
    assert waits(waiting).what is Wait.MESSAGE
    asgi.shutdown(NOW)  # the client never answers the Close
    assert asgi.endpoint.actions(NOW).wake & Wait.MESSAGE
    with pytest.raises(StopIteration) as woken:
        waiting.send(True)
    assert woken.value.value == {"type": "websocket.disconnect", "code": 1012}


def test_a_receive_already_waiting_gets_the_applications_own_close() -> None:
    asgi, _client = opened()
    waiting = asgi.receive(clock)
    waits(waiting)
    done(asgi.send({"type": "websocket.close", "code": 4001, "reason": "bye"}, clock))
    assert asgi.endpoint.actions(NOW).wake & Wait.MESSAGE
    with pytest.raises(StopIteration) as woken:
        waiting.send(True)
    assert woken.value.value == {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}


def test_after_a_shutdown_refused_the_handshake_sending_says_the_connection_is_gone() -> None:
    asgi, _client = started()
    asgi.shutdown(NOW)
    assert done(asgi.receive(clock)) == {"type": "websocket.disconnect", "code": 1006}
    with pytest.raises(ConnectionClosed):
        done(asgi.send({"type": "websocket.accept"}, clock))


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [(204, [], b"a body"), (400, [(b"x-bad", b"a\nb")], b"")],
    ids=["204-with-a-body", "unsafe-header"],
)
def test_a_response_the_core_cannot_send_fails_the_send_and_the_end_answers_500(
    status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    asgi, client = started()
    start = {"type": "websocket.http.response.start", "status": status, "headers": headers}
    done(asgi.send(start, clock))
    with pytest.raises(LocalProtocolError):
        done(asgi.send({"type": "websocket.http.response.body", "body": body}, clock))
    asgi.finished(LocalProtocolError("from the send"), None, NOW)
    rejected, *_ = answer(asgi, client)
    assert isinstance(rejected, Rejected)
    assert rejected.status == 500
