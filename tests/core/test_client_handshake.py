"""The client's side of the opening handshake (RFC 6455 section 4.1): the
request it sends and the checks it makes on the server's answer."""

from __future__ import annotations

import base64
from typing import Any

import h11
import pytest
from core_harness import (
    PLAIN,
    URL,
    ReverseClient,
    basic_auth,
    client_key,
    frame,
    new_client,
    response_bytes,
)

import sansws.handshake
from sansws import ClientConnection, State
from sansws.errors import (
    InvalidHeader,
    InvalidMessage,
    InvalidStatus,
    LocalProtocolError,
    NegotiationError,
    UnsafeHeader,
)
from sansws.events import Accepted, Closed, Message, Rejected
from sansws.frames import Opcode
from sansws.handshake import accept_key
from sansws.headers import Headers


def parse_request(data: bytes) -> tuple[h11.Request, list[tuple[str, str]]]:
    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert isinstance(server.next_event(), h11.EndOfMessage)
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers.raw_items()]
    return request, headers


def sent_headers(url: str = URL, **kwargs: Any) -> Headers:
    client = ClientConnection(url, **{**PLAIN, **kwargs})
    _request, headers = parse_request(client.data_to_send())
    assert Headers(headers) == client.request_headers
    return Headers(headers)


# ---------------------------------------------------------------- the request


def test_client_request_is_an_http_11_get_upgrade_with_the_required_headers() -> None:
    client = ClientConnection("ws://example.com/chat?room=1", **PLAIN)
    request, headers = parse_request(client.data_to_send())
    assert (request.method, request.target, request.http_version) == (
        b"GET",
        b"/chat?room=1",
        b"1.1",
    )
    key = client_key(client)
    assert headers == [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
        ("User-Agent", f"sansws/{sansws.__version__}"),
    ]
    assert client.state is State.CONNECTING
    assert client.data_to_send() == b""  # queued once


def test_request_target_is_slash_for_an_empty_path() -> None:
    client = ClientConnection("ws://example.com")
    request, _ = parse_request(client.data_to_send())
    assert request.target == b"/"


def test_sec_websocket_key_is_16_random_bytes_in_base64_new_for_each_connection() -> None:
    keys = {client_key(ClientConnection(URL)) for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16


def test_sec_websocket_key_comes_from_the_csprng(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sansws.handshake.secrets, "token_bytes", lambda n: b"\x01" * n)
    client = ClientConnection(URL)
    assert base64.b64decode(client_key(client)) == b"\x01" * 16


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("ws://example.com/", "example.com"),
        ("ws://example.com:80/", "example.com"),
        ("ws://example.com:8080/", "example.com:8080"),
        ("ws://example.com:443/", "example.com:443"),
        ("wss://example.com/", "example.com"),
        ("wss://example.com:443/", "example.com"),
        ("wss://example.com:80/", "example.com:80"),
        ("ws://[::1]/", "[::1]"),
        ("ws://[::1]:8080/", "[::1]:8080"),
        ("wss://[2001:db8::1]:443/", "[2001:db8::1]"),
        ("ws://127.0.0.1:9000/", "127.0.0.1:9000"),
        ("ws://EXAMPLE.com/", "example.com"),
    ],
)
def test_host_header_has_the_port_only_when_not_the_default(url: str, host: str) -> None:
    assert sent_headers(url)["Host"] == host


def test_origin_header_is_sent_only_when_given() -> None:
    assert "Origin" not in sent_headers()
    assert sent_headers(origin="https://example.com")["Origin"] == "https://example.com"


def test_subprotocols_are_offered_in_order_of_preference() -> None:
    assert "Sec-WebSocket-Protocol" not in sent_headers()
    headers = sent_headers(subprotocols=["chat.v2", "chat"])
    assert headers["Sec-WebSocket-Protocol"] == "chat.v2, chat"


@pytest.mark.parametrize("name", ["", "a,b", " padded", "tab\t"])
def test_invalid_subprotocol_name_is_refused(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        ClientConnection(URL, subprotocols=[name])


def test_extension_offers_are_sent() -> None:
    assert "Sec-WebSocket-Extensions" not in sent_headers()
    factory = ReverseClient(offers=[(("level", "1"), ("fast", None)), ()])
    headers = sent_headers(extensions=[factory])
    assert headers["Sec-WebSocket-Extensions"] == "x-reverse; level=1; fast, x-reverse"


def test_user_headers_are_sent_after_the_handshake_headers() -> None:
    headers = sent_headers(extra_headers=[("X-Trace", "1"), ("X-Trace", "2")])
    assert headers.get_all("X-Trace") == ["1", "2"]
    assert list(headers)[-2:] == [("X-Trace", "1"), ("X-Trace", "2")]
    assert sent_headers(extra_headers={"X-Id": "7"})["X-Id"] == "7"
    assert sent_headers(extra_headers=Headers([("X-Id", "8")]))["X-Id"] == "8"


def test_credentials_in_the_uri_become_a_basic_authorization_header() -> None:
    headers = sent_headers("ws://alice:s%3Acret@example.com/")
    assert headers["Authorization"] == basic_auth("alice", "s:cret")
    assert sent_headers("ws://bob@example.com/")["Authorization"] == basic_auth("bob", "")
    assert "Authorization" not in sent_headers()


def test_user_authorization_header_replaces_the_one_from_the_uri() -> None:
    headers = sent_headers(
        "ws://alice:secret@example.com/", extra_headers=[("authorization", "Bearer t")]
    )
    assert headers.get_all("Authorization") == ["Bearer t"]


def test_user_agent_can_be_replaced_or_omitted() -> None:
    assert sent_headers(user_agent="probe/1")["User-Agent"] == "probe/1"
    assert "User-Agent" not in sent_headers(user_agent=None)
    headers = sent_headers(extra_headers=[("User-Agent", "mine/2")])
    assert headers.get_all("User-Agent") == ["mine/2"]
    headers = sent_headers(origin="https://a", extra_headers=[("Origin", "https://b")])
    assert headers.get_all("Origin") == ["https://b"]


def test_latin1_header_value_is_sent_as_latin1() -> None:
    client = ClientConnection(URL, extra_headers=[("X-Name", "café")])
    assert b"\r\nX-Name: caf\xe9\r\n" in client.data_to_send()


UNSAFE = ["a\rb", "a\nb", "a\r\nX-Evil: 1", "a\x00b", "a\x7fb", "日本"]


@pytest.mark.parametrize("value", UNSAFE)
def test_unsafe_header_value_is_refused_at_construction(value: str) -> None:
    with pytest.raises(UnsafeHeader) as info:
        ClientConnection(URL, extra_headers=[("X-Test", value)])
    assert (info.value.name, info.value.value) == ("X-Test", value)


@pytest.mark.parametrize("name", ["X\rTest", "X\nTest", "X\x00Test", "X Test", "X:Test", ""])
def test_unsafe_header_name_is_refused_at_construction(name: str) -> None:
    with pytest.raises(UnsafeHeader) as info:
        ClientConnection(URL, extra_headers=[(name, "v")])
    assert info.value.name == name


@pytest.mark.parametrize("value", UNSAFE[:4])
@pytest.mark.parametrize("option", ["origin", "user_agent", "subprotocols"])
def test_unsafe_origin_user_agent_or_subprotocol_is_refused(option: str, value: str) -> None:
    argument: Any = [value] if option == "subprotocols" else value
    with pytest.raises(UnsafeHeader):
        ClientConnection(URL, **{option: argument})


def test_refusing_an_unsafe_header_queues_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    sends: list[object] = []
    original = h11.Connection.send

    def spy(self: h11.Connection, event: Any) -> bytes | None:
        sends.append(event)
        return original(self, event)

    monkeypatch.setattr(h11.Connection, "send", spy)
    with pytest.raises(UnsafeHeader):
        ClientConnection(URL, extra_headers=[("X-Ok", "fine"), ("X-Bad", "a\r\nb")])
    assert sends == []


# ---------------------------------------------------------------- the answer: accepted


def test_valid_101_response_opens_the_connection() -> None:
    client = new_client()
    response = response_bytes(client, extra=[("X-Server", "yes")])
    (accepted,) = client.receive_data(response)
    assert isinstance(accepted, Accepted)
    assert (accepted.subprotocol, accepted.extensions) == (None, ())
    assert accepted.headers["X-Server"] == "yes"
    assert client.state is State.OPEN
    assert client.response is accepted
    assert client.response_headers == accepted.headers
    assert client.subprotocol is None


def test_101_response_arriving_a_byte_at_a_time_opens_the_connection() -> None:
    client = new_client()
    response = response_bytes(client)
    events = []
    for i in range(len(response)):
        events += client.receive_data(response[i : i + 1])
    assert [type(e) for e in events] == [Accepted]


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        ("WebSocket", "upgrade"),
        ("websocket, h2c", "keep-alive, Upgrade"),
        ("h2c, WEBSOCKET", "UPGRADE"),
    ],
)
def test_upgrade_and_connection_tokens_are_case_insensitive_lists(
    upgrade: str, connection: str
) -> None:
    client = new_client()
    response = response_bytes(
        client,
        headers=[
            ("Upgrade", upgrade),
            ("Connection", connection),
            ("Sec-WebSocket-Accept", accept_key(client_key(client))),
        ],
    )
    assert [type(e) for e in client.receive_data(response)] == [Accepted]


def test_frames_in_the_same_read_as_the_101_are_processed() -> None:
    client = new_client()
    data = response_bytes(client) + frame(Opcode.TEXT, b"hello") + frame(Opcode.BINARY, b"\x00")
    events = client.receive_data(data)
    assert [type(e) for e in events] == [Accepted, Message, Message]
    assert events[1:] == [Message("hello"), Message(b"\x00")]


def test_partial_frame_in_the_same_read_as_the_101_is_completed_later() -> None:
    client = new_client()
    data = frame(Opcode.TEXT, b"hello")
    events = client.receive_data(response_bytes(client) + data[:3])
    assert [type(e) for e in events] == [Accepted]
    assert client.receive_data(data[3:]) == [Message("hello")]


def test_informational_responses_other_than_101_are_ignored() -> None:
    client = new_client()
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    assert client.receive_data(data) == []
    assert [type(e) for e in client.receive_data(response_bytes(client))] == [Accepted]


def test_subprotocol_chosen_by_the_server_among_those_offered_is_accepted() -> None:
    client = new_client(subprotocols=["v2", "v1"])
    (accepted,) = client.receive_data(
        response_bytes(client, extra=[("Sec-WebSocket-Protocol", "v1")])
    )
    assert isinstance(accepted, Accepted)
    assert accepted.subprotocol == client.subprotocol == "v1"


def test_extension_accepted_by_the_server_among_those_offered_is_used() -> None:
    factory = ReverseClient(offers=[(("level", "1"),)])
    client = new_client(extensions=[factory])
    response = response_bytes(client, extra=[("Sec-WebSocket-Extensions", "x-reverse; level=1")])
    (accepted,) = client.receive_data(response)
    assert isinstance(accepted, Accepted)
    assert accepted.extensions == client.extensions == (("x-reverse", (("level", "1"),)),)
    assert factory.accepted is not None
    # Its reserved bit is now accepted, and messages pass through it.
    events = client.receive_data(frame(Opcode.BINARY, b"cba", rsv1=True))
    assert events == [Message(b"abc")]


# ---------------------------------------------------------------- the answer: invalid


def failed_handshake(client: ClientConnection, data: bytes) -> Closed:
    events = client.receive_data(data)
    assert len(events) == 1
    (closed,) = events
    assert isinstance(closed, Closed)
    assert (closed.code, closed.clean) == (1006, False)
    assert client.state is State.CLOSED
    assert client.should_close_transport
    assert client.data_to_send() == b""
    assert client.close_error is closed.error
    assert client.receive_data(frame(Opcode.TEXT, b"ignored")) == []
    return closed


def invalid_header(client: ClientConnection, response: bytes, name: str) -> InvalidHeader:
    error = failed_handshake(client, response).error
    assert isinstance(error, InvalidHeader), error
    assert error.name == name
    return error


def test_wrong_accept_hash_fails_the_handshake() -> None:
    client = new_client()
    wrong = accept_key("x" * 24)
    response = response_bytes(
        client,
        headers=[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", wrong),
        ],
    )
    error = invalid_header(client, response, "Sec-WebSocket-Accept")
    assert error.value == wrong
    assert "wrong accept hash" in str(error)


def test_missing_accept_header_fails_the_handshake() -> None:
    client = new_client()
    response = response_bytes(client, headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")])
    error = invalid_header(client, response, "Sec-WebSocket-Accept")
    assert error.value is None
    assert str(error) == "missing Sec-WebSocket-Accept header"


def test_repeated_accept_header_fails_the_handshake() -> None:
    client = new_client()
    good = accept_key(client_key(client))
    response = response_bytes(client, extra=[("Sec-WebSocket-Accept", good)])
    error = invalid_header(client, response, "Sec-WebSocket-Accept")
    assert "more than one value" in str(error)


@pytest.mark.parametrize("upgrade", [None, "h2c", "websocketx"])
def test_101_without_upgrade_websocket_fails_the_handshake(upgrade: str | None) -> None:
    client = new_client()
    headers = [("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(client_key(client)))]
    if upgrade is not None:
        headers.append(("Upgrade", upgrade))
    invalid_header(client, response_bytes(client, headers=headers), "Upgrade")


@pytest.mark.parametrize("connection", [None, "keep-alive", "upgraded"])
def test_101_without_connection_upgrade_fails_the_handshake(connection: str | None) -> None:
    client = new_client()
    headers = [("Upgrade", "websocket"), ("Sec-WebSocket-Accept", accept_key(client_key(client)))]
    if connection is not None:
        headers.append(("Connection", connection))
    invalid_header(client, response_bytes(client, headers=headers), "Connection")


def test_subprotocol_the_client_did_not_offer_fails_the_handshake() -> None:
    client = new_client(subprotocols=["v1"])
    response = response_bytes(client, extra=[("Sec-WebSocket-Protocol", "v2")])
    error = invalid_header(client, response, "Sec-WebSocket-Protocol")
    assert isinstance(error, NegotiationError)
    assert "not offered" in str(error)


def test_subprotocol_when_none_was_offered_fails_the_handshake() -> None:
    client = new_client()
    response = response_bytes(client, extra=[("Sec-WebSocket-Protocol", "v1")])
    invalid_header(client, response, "Sec-WebSocket-Protocol")


def test_more_than_one_subprotocol_fails_the_handshake() -> None:
    client = new_client(subprotocols=["v1", "v2"])
    response = response_bytes(client, extra=[("Sec-WebSocket-Protocol", "v1, v2")])
    error = invalid_header(client, response, "Sec-WebSocket-Protocol")
    assert "more than one" in str(error)


def test_extension_the_client_did_not_offer_fails_the_handshake() -> None:
    client = new_client()
    response = response_bytes(client, extra=[("Sec-WebSocket-Extensions", "x-reverse")])
    error = invalid_header(client, response, "Sec-WebSocket-Extensions")
    assert isinstance(error, NegotiationError)
    assert "not offered" in str(error)


def test_more_than_one_extension_in_the_answer_fails_the_handshake() -> None:
    client = new_client(extensions=[ReverseClient()])
    response = response_bytes(client, extra=[("Sec-WebSocket-Extensions", "x-reverse, x-reverse")])
    error = invalid_header(client, response, "Sec-WebSocket-Extensions")
    assert "more than one extension" in str(error)


def test_malformed_extension_answer_fails_the_handshake() -> None:
    client = new_client(extensions=[ReverseClient()])
    response = response_bytes(client, extra=[("Sec-WebSocket-Extensions", "x-reverse; =1")])
    invalid_header(client, response, "Sec-WebSocket-Extensions")


def test_response_that_is_not_http_fails_the_handshake() -> None:
    client = new_client()
    error = failed_handshake(client, b"SSH-2.0-OpenSSH_9.6\r\n\r\n").error
    assert isinstance(error, InvalidMessage)


def test_end_of_stream_before_the_response_fails_the_handshake() -> None:
    client = new_client()
    error = failed_handshake(client, b"").error
    assert isinstance(error, InvalidMessage)


def test_end_of_stream_inside_the_response_head_fails_the_handshake() -> None:
    client = new_client()
    assert client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgr") == []
    error = failed_handshake(client, b"").error
    assert isinstance(error, InvalidMessage)


# ---------------------------------------------------------------- the answer: rejected


def rejected(client: ClientConnection, *chunks: bytes) -> Rejected:
    events = []
    for chunk in chunks:
        events += client.receive_data(chunk)
    assert len(events) == 1, events
    (event,) = events
    assert isinstance(event, Rejected)
    assert client.state is State.CLOSED
    assert client.should_close_transport
    assert client.response is event
    assert client.next_deadline() is None
    error = client.close_error
    assert isinstance(error, InvalidStatus)
    assert (error.status, error.headers, error.body) == (event.status, event.headers, event.body)
    return event


def test_non_101_response_with_content_length_is_rejected_with_its_body() -> None:
    client = new_client()
    head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nX-Why: auth\r\n\r\n"
    assert client.receive_data(head + b"forb") == []
    event = rejected(client, b"idden")
    assert (event.status, event.body, event.location) == (403, b"forbidden", None)
    assert event.headers["X-Why"] == "auth"
    assert str(client.close_error) == "server rejected WebSocket connection: HTTP 403"


def test_non_101_response_with_chunked_body_is_rejected_with_its_body() -> None:
    client = new_client()
    data = (
        b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    event = rejected(client, data)
    assert (event.status, event.body) == (500, b"hello world")


def test_non_101_response_delimited_by_end_of_stream_is_rejected_at_eof() -> None:
    client = new_client()
    assert client.receive_data(b"HTTP/1.1 404 Not Found\r\n\r\nnot ") == []
    assert client.receive_data(b"here") == []
    event = rejected(client, b"")
    assert (event.status, event.body) == (404, b"not here")


def test_rejection_body_is_bounded_by_max_body_size() -> None:
    client = new_client(max_body_size=10)
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 1000\r\n\r\n"
    # Reported as soon as the bound is reached, without the rest of the body.
    event = rejected(client, head + b"0123456789abcdef")
    assert event.body == b"0123456789"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_reported_when_its_headers_arrive_with_its_location(status: int) -> None:
    client = new_client()
    head = f"HTTP/1.1 {status} Moved\r\nLocation: /elsewhere\r\nContent-Length: 100\r\n\r\n"
    event = rejected(client, head.encode())
    assert (event.status, event.location, event.body) == (status, "/elsewhere", b"")


def test_redirect_without_location_reports_none() -> None:
    client = new_client()
    event = rejected(client, b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n")
    assert event.location is None


def test_location_is_reported_only_for_redirects() -> None:
    client = new_client()
    event = rejected(client, b"HTTP/1.1 200 OK\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
    assert (event.status, event.location) == (200, None)


def test_bytes_after_a_rejection_are_ignored() -> None:
    client = new_client()
    rejected(client, b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n")
    assert client.receive_data(b"more body") == []
    assert client.receive_data(b"") == []


# ---------------------------------------------------------------- limits


def test_response_header_line_longer_than_max_header_line_fails() -> None:
    client = new_client(max_header_line=100)
    data = b"HTTP/1.1 101 Switching Protocols\r\nX-Long: " + b"a" * 100
    error = failed_handshake(client, data).error
    assert isinstance(error, InvalidMessage)
    assert "longer than 100" in str(error)


def test_header_line_of_exactly_max_header_line_is_accepted() -> None:
    client = new_client(max_header_line=100)
    line = ("X-Pad", "a" * (100 - len("X-Pad: ")))
    data = response_bytes(client, extra=[line])
    assert [type(e) for e in client.receive_data(data)] == [Accepted]


def test_more_response_headers_than_max_headers_fails() -> None:
    client = new_client(max_headers=5)
    data = response_bytes(client, extra=[(f"X-{i}", "v") for i in range(3)])
    error = failed_handshake(client, data).error
    assert isinstance(error, InvalidMessage)
    assert "more than 5 headers" in str(error)


def test_exactly_max_headers_response_headers_are_accepted() -> None:
    client = new_client(max_headers=5)
    data = response_bytes(client, extra=[(f"X-{i}", "v") for i in range(2)])
    assert [type(e) for e in client.receive_data(data)] == [Accepted]


def test_limits_count_the_head_only_even_when_a_read_splits_its_last_line_ending() -> None:
    # The read ends between the CR and LF of the blank line; the next one
    # carries a long frame with no newline: it is not a header line.
    client = new_client(max_header_line=100, max_headers=5)
    response = response_bytes(client)
    payload = b"x" * 1000
    events = client.receive_data(response[:-1])
    events += client.receive_data(response[-1:] + frame(Opcode.BINARY, payload))
    assert events[1:] == [Message(payload)]
    assert type(events[0]) is Accepted


def test_header_line_limit_counts_a_split_crlf_once() -> None:
    client = new_client(max_header_line=100)
    line = b"X-Pad: " + b"a" * 93  # exactly 100 bytes
    head = response_bytes(client, extra=[])[:-2] + line + b"\r"
    assert client.receive_data(head) == []
    assert [type(e) for e in client.receive_data(b"\n\r\n")] == [Accepted]


def test_response_with_bare_lf_line_endings_is_accepted() -> None:
    client = new_client(max_header_line=100)
    response = response_bytes(client).replace(b"\r\n", b"\n")
    assert [type(e) for e in client.receive_data(response)] == [Accepted]


def test_head_fed_line_by_line_is_accepted() -> None:
    client = new_client(max_headers=5)
    events = []
    for line in response_bytes(client).splitlines(keepends=True):
        events += client.receive_data(line)
    assert [type(e) for e in events] == [Accepted]


def test_max_body_size_zero_keeps_no_body() -> None:
    client = new_client(max_body_size=0)
    event = rejected(client, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\nhello")
    assert (event.status, event.body) == (403, b"")


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_empty_extension_answer_means_no_extension(value: str) -> None:
    client = new_client(extensions=[ReverseClient()])
    response = response_bytes(client, extra=[("Sec-WebSocket-Extensions", value)])
    (accepted,) = client.receive_data(response)
    assert isinstance(accepted, Accepted)
    assert accepted.extensions == client.extensions == ()
    # With no extension in use, RSV1 is refused again.
    (closed,) = client.receive_data(frame(Opcode.TEXT, b"x", rsv1=True))
    assert isinstance(closed, Closed)
    assert closed.code == 1002


@pytest.mark.parametrize(
    "name",
    [
        "Upgrade",
        "connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Content-Length",
    ],
)
def test_extra_headers_cannot_set_what_the_handshake_sets(name: str) -> None:
    with pytest.raises(UnsafeHeader, match="the handshake sets this header"):
        ClientConnection("ws://example.com/", extra_headers=[(name, "x")])


def test_an_extra_host_header_replaces_the_one_from_the_url() -> None:
    conn = ClientConnection("ws://127.0.0.1:8000/", extra_headers=[("Host", "app.example")])
    assert conn.request_headers is not None
    assert conn.request_headers.get_all("Host") == ["app.example"]


@pytest.mark.parametrize(
    ("url", "answer", "message"),
    [
        ("ws://example.com/", b"", "without an answer (if this port serves TLS, use wss://)"),
        ("wss://example.com/", b"", "the server closed the connection without an answer"),
        ("ws://example.com/", b"\x15\x03\x01\x00\x02\x02\x28", "answered with TLS: use wss://"),
        ("ws://example.com/", b"\x16\x03\x03\x00\x40", "answered with TLS: use wss://"),
    ],
)
def test_no_answer_or_a_tls_record_is_said_plainly(url: str, answer: bytes, message: str) -> None:
    client = ClientConnection(url, **PLAIN)
    client.data_to_send()
    [closed] = client.receive_data(answer)
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, InvalidMessage)
    assert message in str(closed.error)
    assert "SEND_RESPONSE" not in str(closed.error)  # none of h11's words
