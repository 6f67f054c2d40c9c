"""Events are small immutable values; errors form one hierarchy and carry
what a caller needs."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from core_harness import URL

import sansws
from sansws import ClientConnection
from sansws.errors import (
    CloseTimeout,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    InvalidHeader,
    InvalidMessage,
    InvalidState,
    InvalidStatus,
    InvalidURI,
    LocalProtocolError,
    NegotiationError,
    OpenTimeout,
    PayloadTooBig,
    PingTimeout,
    ProtocolError,
    RedirectError,
    UnsafeHeader,
    WebSocketError,
    WebSocketTimeout,
)
from sansws.events import (
    Accepted,
    Closed,
    Event,
    Message,
    MessageChunk,
    Ping,
    Pong,
    Rejected,
    Request,
)
from sansws.headers import Headers
from sansws.uri import parse_uri

EVENTS: list[Event] = [
    Request("/", Headers([("Origin", "https://a")])),
    Accepted(),
    Rejected(403, Headers()),
    Message("text"),
    MessageChunk(b"part", False),
    Ping(b"p"),
    Pong(b"q"),
    Closed(1000, "bye", True),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_events_are_immutable(event: Event) -> None:
    field = dataclasses.fields(event)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, field, None)
    assert not hasattr(event, "__dict__")  # slotted: no stray attributes
    assert hash(dataclasses.replace(event)) == hash(event)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_events_compare_by_value_and_pickle(event: Event) -> None:
    assert dataclasses.replace(event) == event
    assert pickle.loads(pickle.dumps(event)) == event


def test_events_read_well_with_match() -> None:
    seen = []
    for event in [Message("t"), Message(b"b"), Closed(1001, "away"), Ping(b"x")]:
        match event:
            case Message(data=str() as text):
                seen.append(("text", text))
            case Message(data=bytes() as payload):
                seen.append(("binary", payload))
            case Closed(code=code, reason=reason):
                seen.append(("closed", (code, reason)))
            case _:
                seen.append(("other", event))
    assert seen == [
        ("text", "t"),
        ("binary", b"b"),
        ("closed", (1001, "away")),
        ("other", Ping(b"x")),
    ]


def test_closed_is_ok_only_after_a_clean_close_with_a_normal_code() -> None:
    assert Closed(1000, clean=True).ok
    assert Closed(1001, clean=True).ok
    assert Closed(1005, clean=True).ok
    assert not Closed(1000, clean=False).ok
    assert not Closed(1011, clean=True).ok
    assert not Closed(1006).ok


def test_event_defaults() -> None:
    assert Closed(1006) == Closed(1006, "", False, None)
    assert Accepted() == Accepted(None, (), Headers())
    assert Rejected(404, Headers()).location is None
    assert Request("/", Headers()).origin is None
    assert EVENTS[0].origin == "https://a"  # type: ignore[union-attr]


# ---------------------------------------------------------------- errors


def test_every_error_is_a_websocket_error() -> None:
    for cls in [
        InvalidURI,
        LocalProtocolError,
        InvalidState,
        UnsafeHeader,
        HandshakeError,
        InvalidMessage,
        InvalidHeader,
        NegotiationError,
        InvalidStatus,
        RedirectError,
        ProtocolError,
        PayloadTooBig,
        WebSocketTimeout,
        OpenTimeout,
        PingTimeout,
        CloseTimeout,
        ConnectionClosed,
        ConnectionClosedOK,
        ConnectionClosedError,
    ]:
        assert issubclass(cls, WebSocketError), cls
    assert issubclass(InvalidURI, ValueError)
    assert issubclass(UnsafeHeader, ValueError)
    assert issubclass(InvalidState, LocalProtocolError)
    assert issubclass(UnsafeHeader, LocalProtocolError)
    assert issubclass(NegotiationError, InvalidHeader)
    assert issubclass(PayloadTooBig, ProtocolError)
    assert issubclass(WebSocketTimeout, TimeoutError)
    assert issubclass(ConnectionClosedOK, ConnectionClosed)


def test_invalid_header_describes_what_was_wrong() -> None:
    assert str(InvalidHeader("Upgrade")) == "missing Upgrade header"
    assert str(InvalidHeader("Upgrade", "")) == "empty Upgrade header"
    assert str(InvalidHeader("Upgrade", "h2c")) == "invalid Upgrade header: 'h2c'"
    error = InvalidHeader("Upgrade", "h2c", "expected websocket")
    assert str(error) == "invalid Upgrade header: 'h2c' (expected websocket)"
    assert (error.name, error.value, error.msg) == ("Upgrade", "h2c", "expected websocket")


def test_errors_carry_their_details() -> None:
    headers = Headers([("Location", "/x")])
    status = InvalidStatus(302, headers, b"body")
    assert (status.status, status.headers, status.body) == (302, headers, b"body")
    assert str(status) == "server rejected WebSocket connection: HTTP 302"

    redirect = RedirectError("too many redirects", 302, "/x")
    assert (redirect.status, redirect.location, str(redirect)) == (302, "/x", "too many redirects")

    protocol = ProtocolError(1002, "reserved opcode 3")
    assert str(protocol) == "reserved opcode 3 (sent close code 1002)"

    too_big = PayloadTooBig(2000, 1000)
    assert (too_big.code, too_big.size, too_big.max_size) == (1009, 2000, 1000)
    assert str(too_big) == "message too big: 2000 > 1000 bytes (sent close code 1009)"

    state = InvalidState("cannot send", sansws.State.CLOSING)
    assert state.state is sansws.State.CLOSING

    unsafe = UnsafeHeader("X", "a\nb", "bad value")
    assert (unsafe.name, unsafe.value, str(unsafe)) == (
        "X",
        "a\nb",
        "refused header 'X': bad value",
    )


def test_connection_closed_describes_the_code_and_reason() -> None:
    assert str(ConnectionClosedOK(1000, "", True)) == "connection closed: 1000 (normal closure)"
    error = ConnectionClosedError(4001, "kicked", True)
    assert str(error) == "connection closed: 4001 (private use) kicked"
    assert (error.code, error.reason, error.clean) == (4001, "kicked", True)


def test_client_refuses_an_invalid_url_and_accepts_a_parsed_one() -> None:
    with pytest.raises(InvalidURI):
        ClientConnection("http://example.com/")
    uri = parse_uri(URL)
    assert ClientConnection(uri).uri is uri


def test_public_names_are_exported() -> None:
    for name in sansws.__all__:
        assert hasattr(sansws, name), name
