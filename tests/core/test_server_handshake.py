"""The server's side of the opening handshake (RFC 6455 section 4.2):
validating the request, answering it, and the bytes around it."""

from __future__ import annotations

from typing import Any

import h11
import pytest
from core_harness import (
    QUIET,
    ReverseClient,
    ReverseServer,
    client_frame,
    open_pair,
    parse_all,
    request_bytes,
)

from sansws import ClientConnection, ServerConnection, State
from sansws.errors import (
    InvalidHeader,
    InvalidMessage,
    InvalidState,
    LocalProtocolError,
    NegotiationError,
    UnsafeHeader,
)
from sansws.events import Closed, Message, Request
from sansws.extensions.base import Extension, ExtensionParams, ServerExtensionFactory
from sansws.frames import Opcode
from sansws.handshake import accept_key

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's example


def new_server(**kwargs: Any) -> ServerConnection:
    return ServerConnection(**{**QUIET, **kwargs})


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of an HTTP response."""
    client = h11.Connection(h11.CLIENT)
    upgrade = [("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    client.send(h11.Request(method="GET", target="/", headers=upgrade))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    response = client.next_event()
    assert isinstance(response, h11.Response | h11.InformationalResponse)
    headers = {n.decode().lower(): v.decode("latin-1") for n, v in response.headers}
    body = b""
    if isinstance(response, h11.Response):
        while True:
            event = client.next_event()
            if isinstance(event, h11.Data):
                body += event.data
            else:
                assert isinstance(event, h11.EndOfMessage)
                break
    return response.status_code, headers, body


def receive_request(server: ServerConnection, data: bytes) -> Request:
    events = server.receive_data(data)
    assert len(events) == 1
    (request,) = events
    assert isinstance(request, Request)
    assert server.request is request
    return request


def refused_by_accept(data: bytes, status: int) -> tuple[InvalidMessage | InvalidHeader, Any]:
    """Feed a request that is not a valid handshake; check that accept()
    answers it with ``status`` and a short body, and closes."""
    server = new_server()
    request = receive_request(server, data)
    error = request.error
    assert isinstance(error, InvalidMessage | InvalidHeader)
    assert server.accept() == []
    got, headers, body = parse_response(server.data_to_send())
    assert got == status
    assert body.startswith(f"Failed to open a WebSocket connection: {error}.\n".encode())
    assert len(body) < 200
    assert headers["connection"] == "close"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert server.state is State.CLOSED
    assert server.should_close_transport
    assert server.close_error is error
    return error, headers


# ---------------------------------------------------------------- valid requests


def test_valid_request_yields_a_request_event() -> None:
    server = new_server()
    data = request_bytes(
        target="/chat?room=1",
        extra=[
            ("Origin", "https://example.com"),
            ("Sec-WebSocket-Protocol", "v2, v1"),
            ("Sec-WebSocket-Protocol", "v0"),
            ("Sec-WebSocket-Extensions", "x-a; p=1; q, x-b"),
        ],
    )
    request = receive_request(server, data)
    assert request.path == "/chat?room=1"
    assert request.error is None
    assert request.origin == "https://example.com"
    assert request.subprotocols == ("v2", "v1", "v0")
    assert request.extensions == (("x-a", (("p", "1"), ("q", None))), ("x-b", ()))
    assert request.headers["Host"] == "example.com"
    assert server.request_headers is request.headers
    assert server.state is State.CONNECTING


def test_request_arriving_a_byte_at_a_time_yields_one_request() -> None:
    server = new_server()
    data = request_bytes()
    events = []
    for i in range(len(data)):
        events += server.receive_data(data[i : i + 1])
    assert [type(e) for e in events] == [Request]


def test_accept_answers_101_with_the_accept_hash_and_opens() -> None:
    server = new_server(server_header="srv/1")
    receive_request(server, request_bytes(key=KEY))
    assert server.accept(extra_headers=[("X-Extra", "1")]) == []
    status, headers, _ = parse_response(server.data_to_send())
    assert status == 101
    # The worked example of RFC 6455 section 1.3.
    assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert headers["upgrade"] == "websocket"
    assert headers["connection"] == "Upgrade"
    assert headers["server"] == "srv/1"
    assert headers["x-extra"] == "1"
    assert "sec-websocket-protocol" not in headers
    assert server.state is State.OPEN
    assert server.response_headers is not None
    assert server.response_headers["X-Extra"] == "1"


def test_server_header_can_be_omitted() -> None:
    server = new_server(server_header=None)
    receive_request(server, request_bytes())
    server.accept()
    _, headers, _ = parse_response(server.data_to_send())
    assert "server" not in headers


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        ("WebSocket", "upgrade"),
        ("websocket, h2c", "keep-alive, Upgrade"),
        ("h2c, WEBSOCKET", "UPGRADE,keep-alive"),
    ],
)
def test_upgrade_and_connection_are_case_insensitive_token_lists(
    upgrade: str, connection: str
) -> None:
    headers = [
        ("Host", "example.com"),
        ("Upgrade", upgrade),
        ("Connection", connection),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    request = receive_request(new_server(), request_bytes(headers=headers))
    assert request.error is None


def test_connection_tokens_may_span_several_header_lines() -> None:
    headers = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    assert receive_request(new_server(), request_bytes(headers=headers)).error is None


# ---------------------------------------------------------------- invalid requests


def test_method_other_than_get_is_answered_405() -> None:
    error, headers = refused_by_accept(request_bytes(method="POST"), 405)
    assert headers["allow"] == "GET"
    assert "GET" in str(error)


def test_http_version_other_than_11_is_answered_400() -> None:
    error, _ = refused_by_accept(request_bytes(version="HTTP/1.0"), 400)
    assert "HTTP/1.0" in str(error)


def without(name: str) -> list[tuple[str, str]]:
    base = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]
    return [(n, v) for n, v in base if n != name]


@pytest.mark.parametrize("value", [None, "h2c", "web socket"])
def test_missing_or_wrong_upgrade_is_answered_426_with_upgrade_websocket(value: str | None) -> None:
    headers = without("Upgrade") + ([("Upgrade", value)] if value else [])
    error, response_headers = refused_by_accept(request_bytes(headers=headers), 426)
    assert isinstance(error, InvalidHeader)
    assert (error.name, error.value) == ("Upgrade", value)
    assert response_headers["upgrade"] == "websocket"


@pytest.mark.parametrize("value", [None, "keep-alive", "upgrades"])
def test_missing_or_wrong_connection_is_answered_426_with_upgrade_websocket(
    value: str | None,
) -> None:
    headers = without("Connection") + ([("Connection", value)] if value else [])
    error, response_headers = refused_by_accept(request_bytes(headers=headers), 426)
    assert isinstance(error, InvalidHeader)
    assert error.name == "Connection"
    assert response_headers["upgrade"] == "websocket"


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "not base64!",
        "dGhlIHNhbXBsZSBub25jZQ",  # padding missing
        "dGhlIHNhbXBsZSBub25j",  # 15 bytes
        "dGhlIHNhbXBsZSBub25jZSE=",  # 17 bytes
    ],
)
def test_malformed_key_is_answered_400_with_a_short_body(key: str | None) -> None:
    headers = without("Sec-WebSocket-Key") + (
        [("Sec-WebSocket-Key", key)] if key is not None else []
    )
    error, _ = refused_by_accept(request_bytes(headers=headers), 400)
    assert isinstance(error, InvalidHeader)
    assert error.name == "Sec-WebSocket-Key"


def test_two_keys_are_answered_400() -> None:
    data = request_bytes(extra=[("Sec-WebSocket-Key", KEY)])
    error, _ = refused_by_accept(data, 400)
    assert isinstance(error, InvalidHeader)
    assert "more than one key" in str(error)


@pytest.mark.parametrize("version", [None, "8", "12", "13, 8", "14"])
def test_version_other_than_13_is_answered_426_with_the_supported_version(
    version: str | None,
) -> None:
    headers = without("Sec-WebSocket-Version")
    if version is not None:
        headers.append(("Sec-WebSocket-Version", version))
    error, response_headers = refused_by_accept(request_bytes(headers=headers), 426)
    assert response_headers["sec-websocket-version"] == "13"
    assert isinstance(error, InvalidHeader)
    assert error.name == "Sec-WebSocket-Version"


def test_malformed_extension_offer_is_answered_400() -> None:
    data = request_bytes(extra=[("Sec-WebSocket-Extensions", "x-a; =1")])
    error, _ = refused_by_accept(data, 400)
    assert isinstance(error, InvalidHeader)
    assert error.name == "Sec-WebSocket-Extensions"


def test_invalid_request_may_still_be_answered_with_reject() -> None:
    server = new_server()
    request = receive_request(server, request_bytes(headers=[("Host", "x")]))
    assert request.error is not None  # a plain GET, say a health check
    server.reject(200, body=b"ok")
    status, _, body = parse_response(server.data_to_send())
    assert (status, body) == (200, b"ok")


def bad_bytes(server: ServerConnection, data: bytes) -> InvalidMessage:
    events = server.receive_data(data)
    assert len(events) == 1
    (closed,) = events
    assert isinstance(closed, Closed)
    assert (closed.code, closed.clean) == (1006, False)
    assert isinstance(closed.error, InvalidMessage)
    assert server.state is State.CLOSED
    assert server.should_close_transport
    status, headers, body = parse_response(server.data_to_send())
    assert status == 400
    assert headers["connection"] == "close"
    assert body.startswith(b"Failed to open a WebSocket connection: ")
    assert server.receive_data(b"GET / HTTP/1.1\r\n\r\n") == []
    return closed.error


def test_bytes_that_are_not_http_are_answered_400_and_closed() -> None:
    bad_bytes(new_server(), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")


def test_request_without_host_is_answered_400_and_closed() -> None:
    bad_bytes(new_server(), b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")


def test_end_of_stream_before_the_request_closes_with_an_error() -> None:
    server = new_server()
    server.receive_data(b"GET / HT")
    (closed,) = server.receive_data(b"")
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, InvalidMessage)
    assert server.should_close_transport


def test_end_of_stream_before_accept_closes_without_an_error() -> None:
    server = new_server()
    receive_request(server, request_bytes())
    assert server.receive_data(b"") == [Closed(1006, "", clean=False)]
    with pytest.raises(InvalidState):
        server.accept()


# ---------------------------------------------------------------- subprotocols


def offered(*subprotocols: str) -> bytes:
    return request_bytes(extra=[("Sec-WebSocket-Protocol", ", ".join(subprotocols))])


def accepted_subprotocol(server: ServerConnection) -> str | None:
    _, headers, _ = parse_response(server.data_to_send())
    return headers.get("sec-websocket-protocol")


def test_accept_picks_the_clients_most_preferred_supported_subprotocol() -> None:
    server = new_server(subprotocols=["v1", "v2"])
    receive_request(server, offered("v3", "v2", "v1"))
    server.accept()
    assert accepted_subprotocol(server) == server.subprotocol == "v2"


def test_accept_selects_no_subprotocol_when_none_matches() -> None:
    server = new_server(subprotocols=["v1"])
    receive_request(server, offered("v9"))
    server.accept()
    assert accepted_subprotocol(server) is server.subprotocol is None


def test_accept_with_an_explicit_subprotocol_uses_it() -> None:
    server = new_server(subprotocols=["v1", "v2"])
    receive_request(server, offered("v1", "v2"))
    server.accept(subprotocol="v2")
    assert accepted_subprotocol(server) == "v2"


def test_accept_refuses_a_subprotocol_the_client_did_not_offer() -> None:
    server = new_server()
    receive_request(server, offered("v1"))
    with pytest.raises(LocalProtocolError, match="not offered"):
        server.accept(subprotocol="v2")
    assert server.state is State.CONNECTING
    assert server.data_to_send() == b""


def test_accept_refuses_an_unsafe_header() -> None:
    server = new_server()
    receive_request(server, request_bytes())
    with pytest.raises(UnsafeHeader):
        server.accept(extra_headers=[("X-Bad", "a\r\nb")])
    assert server.state is State.CONNECTING
    assert server.data_to_send() == b""
    server.accept()
    assert server.state is State.OPEN


def test_unsafe_server_header_is_refused_at_construction() -> None:
    with pytest.raises(UnsafeHeader):
        ServerConnection(server_header="srv\r\nX-Evil: 1")


# ---------------------------------------------------------------- extensions


def test_accept_negotiates_an_offered_extension() -> None:
    factory = ReverseServer()
    server = new_server(extensions=[factory])
    receive_request(
        server,
        request_bytes(extra=[("Sec-WebSocket-Extensions", "x-other, x-reverse; a=1, x-reverse")]),
    )
    server.accept()
    _, headers, _ = parse_response(server.data_to_send())
    assert headers["sec-websocket-extensions"] == "x-reverse; a=1"
    assert factory.seen == [[(("a", "1"),), ()]]
    assert server.extensions == (("x-reverse", (("a", "1"),)),)


def test_extension_declined_by_its_factory_is_not_used() -> None:
    server = new_server(extensions=[ReverseServer(decline=True)])
    receive_request(server, request_bytes(extra=[("Sec-WebSocket-Extensions", "x-reverse")]))
    server.accept()
    _, headers, _ = parse_response(server.data_to_send())
    assert "sec-websocket-extensions" not in headers
    assert server.extensions == ()


def test_extension_not_offered_is_not_used() -> None:
    server = new_server(extensions=[ReverseServer()])
    receive_request(server, request_bytes())
    server.accept()
    assert server.extensions == ()


def test_malformed_offer_found_by_the_factory_is_answered_400() -> None:
    class Strict(ServerExtensionFactory):
        name = "x-strict"

        def negotiate(
            self, offers: Any
        ) -> tuple[ExtensionParams, Extension] | None:  # pragma: no cover - raises
            raise NegotiationError("Sec-WebSocket-Extensions", "x-strict; a; a", "duplicate a")

    server = new_server(extensions=[Strict()])
    receive_request(server, request_bytes(extra=[("Sec-WebSocket-Extensions", "x-strict; a; a")]))
    assert server.accept() == []
    status, _, body = parse_response(server.data_to_send())
    assert status == 400
    assert b"duplicate a" in body
    assert server.state is State.CLOSED
    assert isinstance(server.close_error, NegotiationError)


def test_client_and_server_agree_on_an_extension() -> None:
    client, server = open_pair({"extensions": [ReverseClient()]}, {"extensions": [ReverseServer()]})
    assert client.extensions == server.extensions == (("x-reverse", ()),)
    client.send_text("hello")
    data = client.data_to_send()
    ((sent, _),) = parse_all(data)
    assert (sent.rsv1, sent.payload) == (True, b"olleh")
    assert server.receive_data(data) == [Message("hello")]


# ---------------------------------------------------------------- reject()


def test_reject_sends_the_response_and_closes() -> None:
    server = new_server(server_header="srv/1")
    receive_request(server, request_bytes())
    server.reject(403, [("X-Why", "auth")], b"go away")
    status, headers, body = parse_response(server.data_to_send())
    assert (status, body) == (403, b"go away")
    assert headers["x-why"] == "auth"
    assert headers["content-length"] == "7"
    assert headers["connection"] == "close"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["server"] == "srv/1"
    assert server.state is State.CLOSED
    assert server.should_close_transport
    assert server.close_error is None


def test_reject_keeps_the_applications_content_type_and_server_headers() -> None:
    server = new_server()
    receive_request(server, request_bytes())
    server.reject(
        400,
        {"Content-Type": "application/json", "Server": "mine", "Content-Length": "999"},
        b"{}",
    )
    _, headers, body = parse_response(server.data_to_send())
    assert headers["content-type"] == "application/json"
    assert headers["server"] == "mine"
    assert headers["content-length"] == "2"
    assert body == b"{}"


def test_reject_without_body_sends_no_content_type() -> None:
    server = new_server()
    receive_request(server, request_bytes())
    server.reject(404)
    status, headers, body = parse_response(server.data_to_send())
    assert (status, body) == (404, b"")
    assert "content-type" not in headers


@pytest.mark.parametrize("status", [100, 101, 199, 600])
def test_reject_refuses_a_status_that_is_not_a_final_non_101_status(status: int) -> None:
    server = new_server()
    receive_request(server, request_bytes())
    with pytest.raises(LocalProtocolError):
        server.reject(status)
    assert server.state is State.CONNECTING


def test_reject_refuses_an_unsafe_header() -> None:
    server = new_server()
    receive_request(server, request_bytes())
    with pytest.raises(UnsafeHeader):
        server.reject(400, [("X-Bad", "a\nb")])
    assert server.data_to_send() == b""


def test_accept_or_reject_without_a_request_raises_invalid_state() -> None:
    server = new_server()
    with pytest.raises(InvalidState):
        server.accept()
    with pytest.raises(InvalidState):
        server.reject(400)
    receive_request(server, request_bytes())
    server.accept()
    with pytest.raises(InvalidState):
        server.accept()
    with pytest.raises(InvalidState):
        server.reject(400)


# ---------------------------------------------------------------- bytes after the request


def test_frames_in_the_same_read_as_the_request_are_returned_by_accept() -> None:
    server = new_server()
    data = request_bytes() + client_frame(Opcode.TEXT, b"early") + client_frame(Opcode.PING, b"p")
    receive_request(server, data)
    events = server.accept()
    assert [type(e).__name__ for e in events] == ["Message", "Ping"]
    assert events[0] == Message("early")
    _head, _, after = server.data_to_send().partition(b"\r\n\r\n")
    ((pong, _),) = parse_all(after)
    assert (pong.opcode, pong.payload) == (Opcode.PONG, b"p")


def test_frames_sent_before_accept_are_returned_by_accept() -> None:
    server = new_server()
    receive_request(server, request_bytes())
    frame = client_frame(Opcode.BINARY, b"early")
    assert server.receive_data(frame[:3]) == []
    assert server.receive_data(frame[3:]) == []
    assert server.accept() == [Message(b"early")]


def test_too_much_data_before_accept_fails_the_handshake() -> None:
    server = new_server()
    receive_request(server, request_bytes())
    events = server.receive_data(b"\x00" * (1 << 20))
    assert events == []
    (closed,) = server.receive_data(b"\x00")
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, InvalidMessage)
    status, _, _ = parse_response(server.data_to_send())
    assert status == 400
    assert server.should_close_transport


def test_real_client_and_server_complete_the_handshake_and_exchange_messages() -> None:
    client = ClientConnection("ws://example.com/", subprotocols=["chat"], **QUIET)
    server = new_server(subprotocols=["chat"])
    request = receive_request(server, client.data_to_send())
    assert request.subprotocols == ("chat",)
    server.accept()
    server.send_text("welcome")
    events = client.receive_data(server.data_to_send())
    assert [type(e).__name__ for e in events] == ["Accepted", "Message"]
    assert client.subprotocol == server.subprotocol == "chat"
    assert client.response_headers is not None
    assert client.response_headers["Sec-WebSocket-Accept"] == accept_key(
        request.headers["Sec-WebSocket-Key"]
    )


# ---------------------------------------------------------------- limits


def test_request_header_line_longer_than_max_header_line_is_answered_400() -> None:
    error = bad_bytes(new_server(max_header_line=200), request_bytes(target="/" + "a" * 200))
    assert "longer than 200" in str(error)


def test_more_request_headers_than_max_headers_is_answered_400() -> None:
    data = request_bytes(extra=[(f"X-{i}", "v") for i in range(6)])
    error = bad_bytes(new_server(max_headers=10), data)
    assert "more than 10 headers" in str(error)


def test_default_limits_refuse_a_huge_head_before_it_is_complete() -> None:
    server = new_server()
    server.receive_data(b"GET / HTTP/1.1\r\n")
    events: list[Any] = []
    for i in range(200):
        events += server.receive_data(f"X-{i}: v\r\n".encode())
        if events:
            break
    assert isinstance(events[0], Closed)
    assert "more than 128 headers" in str(events[0].error)


def test_request_body_larger_than_max_body_size_is_answered_400() -> None:
    data = request_bytes(extra=[("Content-Length", "100")]) + b"x" * 100
    error = bad_bytes(new_server(max_body_size=50), data)
    assert "body too large" in str(error)


def test_small_request_body_is_tolerated_and_not_kept() -> None:
    data = request_bytes(extra=[("Content-Length", "5")]) + b"hello"
    request = receive_request(new_server(), data)
    assert request.error is None


@pytest.mark.parametrize("status", [204, 304])
def test_reject_with_a_bodiless_status_refuses_a_body_and_sends_no_length(status: int) -> None:
    server = new_server()
    receive_request(server, request_bytes())
    with pytest.raises(LocalProtocolError, match="cannot carry a body"):
        server.reject(status, body=b"x")
    assert server.state is State.CONNECTING
    assert server.data_to_send() == b""
    # Nothing was half-sent: the request can still be answered.
    server.reject(status)
    data = server.data_to_send()
    assert data.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"content-length" not in data.lower()
    assert server.state is State.CLOSED


def test_accept_refuses_extra_headers_that_the_handshake_sets() -> None:
    client = ClientConnection("ws://example.com/")
    server = ServerConnection()
    server.receive_data(client.data_to_send())
    with pytest.raises(UnsafeHeader, match="the handshake sets this header"):
        server.accept(extra_headers=[("Sec-WebSocket-Accept", "forged")])
    # Nothing was sent; the request can still be answered.
    assert server.data_to_send() == b""
    server.accept(extra_headers=[("X-Served-By", "a")])
    assert b"X-Served-By: a\r\n" in server.data_to_send()


# ---------------------------------------------------------------- planned answers


def test_the_planned_101_is_what_accept_sends_and_sends_nothing_itself() -> None:
    server = new_server(server_header="sansws-test")
    receive_request(server, request_bytes())
    status, headers, body = server.planned_answer(extra_headers=[("X-Extra", "1")])
    assert (status, body) == (101, b"")
    assert headers["Sec-WebSocket-Accept"] == accept_key(KEY)
    assert [name for name, _ in headers][-2:] == ["Server", "X-Extra"]
    assert server.data_to_send() == b""
    assert server.state is State.CONNECTING
    server.accept(extra_headers=[("X-Extra", "1")])
    assert parse_response(server.data_to_send())[1] == {k.lower(): v for k, v in headers}


def test_accept_sends_a_planned_101_with_headers_moved_added_and_removed() -> None:
    server = new_server(server_header="sansws-test")
    receive_request(server, request_bytes())
    _, planned, _ = server.planned_answer()
    own = [(n, v) for n, v in planned if n != "Server"]  # one removed
    server.accept(headers=[("Set-Cookie", "a=b"), *reversed(own)])
    status, headers, _ = parse_response(server.data_to_send())
    assert status == 101
    assert headers["set-cookie"] == "a=b"
    assert "server" not in headers
    assert server.state is State.OPEN
    assert server.response is not None
    assert server.response.headers["Set-Cookie"] == "a=b"


@pytest.mark.parametrize(
    "change",
    [
        lambda headers: [(n, "x" if n == "Sec-WebSocket-Accept" else v) for n, v in headers],
        lambda headers: [(n, v) for n, v in headers if n != "Upgrade"],
        lambda headers: [*headers, ("Sec-WebSocket-Protocol", "unasked")],
        lambda headers: [*headers, ("Content-Length", "0")],
        lambda headers: [*headers, ("X-Bad", "a\r\nb")],
    ],
    ids=["changed", "removed", "added", "content-length", "unsafe"],
)
def test_a_101_that_changes_the_handshakes_own_headers_is_refused(change: Any) -> None:
    server = new_server()
    receive_request(server, request_bytes())
    _, planned, _ = server.planned_answer()
    with pytest.raises(LocalProtocolError):
        server.accept(headers=change(list(planned)))
    # Nothing was sent: the request can still be answered.
    assert server.data_to_send() == b""
    assert server.state is State.CONNECTING
    server.reject(500)
    assert parse_response(server.data_to_send())[0] == 500


def test_the_planned_answer_to_an_invalid_request_is_the_standard_one() -> None:
    server = new_server()
    receive_request(server, request_bytes(headers=[("Host", "x")]))  # plain HTTP
    status, headers, body = server.planned_answer()
    assert (status, headers["Upgrade"]) == (426, "websocket")
    assert body.startswith(b"Failed to open a WebSocket connection: ")
    with pytest.raises(LocalProtocolError, match="cannot answer 101"):
        server.accept(headers=[("Upgrade", "websocket")])
    server.accept()
    sent_status, sent_headers, sent_body = parse_response(server.data_to_send())
    assert (sent_status, sent_body) == (status, body)
    assert sent_headers["upgrade"] == "websocket"
