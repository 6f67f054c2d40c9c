"""A server reports every valid upgrade request as sent and accepts it with
101; it refuses every invalid one with the labelled status (RFC 6455
section 4.2)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansws import ServerConnection, State
from sansws.errors import HandshakeError
from sansws.events import Closed, Request
from sansws.testing import (
    HANDSHAKE_DEFECTS,
    HandshakeRequest,
    handshake_requests,
    invalid_handshake_requests,
)

# RFC 6455 section 1.3.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    version, status, _reason = status_line.split(" ", 2)
    assert version == "HTTP/1.1"
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"repeated {name}"
        headers[name.lower()] = value.strip()
    return int(status), headers, body


@given(handshake_requests(), st.lists(st.sampled_from(["chat", "v2", "x"]), unique=True))
def test_a_valid_request_is_reported_as_sent_and_accepted_with_101(
    request: HandshakeRequest, supported: list[str]
) -> None:
    server = ServerConnection(subprotocols=supported)
    [event] = server.receive_data(request.data)
    assert isinstance(event, Request)
    assert event.error is None
    assert (event.path, list(event.headers), event.subprotocols) == (
        request.path,
        list(request.headers),
        request.subprotocols,
    )
    assert server.accept() == []
    status, headers, body = parse_response(server.data_to_send())
    assert (status, body) == (101, b"")
    assert headers["upgrade"].lower() == "websocket"
    assert headers["connection"].lower() == "upgrade"
    key = event.headers["Sec-WebSocket-Key"].encode()
    assert (
        headers["sec-websocket-accept"]
        == base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    )
    # The server picks the client's most preferred subprotocol it supports.
    chosen = next((p for p in request.subprotocols if p in supported), None)
    assert server.subprotocol == chosen
    assert headers.get("sec-websocket-protocol") == chosen
    assert server.state is State.OPEN


@pytest.mark.parametrize("defect", HANDSHAKE_DEFECTS)
@given(data=st.data())
def test_an_invalid_request_is_refused_with_its_labelled_status(
    defect: str, data: st.DataObject
) -> None:
    request = data.draw(invalid_handshake_requests(defects=[defect]))
    server = ServerConnection()
    [event] = server.receive_data(request.data)
    if isinstance(event, Request):
        # Parsed as HTTP: the application hears of it, accept() refuses it.
        assert isinstance(event.error, HandshakeError), request.problem
        assert server.accept() == []
    else:
        # Not HTTP: the core answers on its own.
        assert isinstance(event, Closed)
        assert isinstance(event.error, HandshakeError)
    status, headers, body = parse_response(server.data_to_send())
    assert status == request.status, request.problem
    if status == 426 and "version" in defect:
        # RFC 6455 section 4.4: say which version the server speaks.
        assert headers["sec-websocket-version"] == "13"
    elif status == 426:
        # Plain HTTP: RFC 9110 section 15.5.22, say which upgrade is needed.
        assert headers["upgrade"] == "websocket"
    if status == 405:
        assert headers["allow"] == "GET"
    head_request = request.data.startswith(b"HEAD ")
    assert len(body) == (0 if head_request else int(headers["content-length"]))
    assert headers["connection"] == "close"
    assert server.state is State.CLOSED
    assert server.should_close_transport
