"""Inputs the coverage-guided fuzzers (fuzz/) found to break an invariant,
kept so that they never do again. Each test names the rule that broke."""

from __future__ import annotations

from sansws import Accepted, ClientConnection, Message, State
from sansws.handshake import accept_key


def switching_protocols(client: ClientConnection, *headers: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: "
        + accept_key(client._handshake.key).encode()
        + b"\r\n"
        + b"".join(headers)
        + b"\r\n"
    )


def test_an_empty_extensions_header_in_a_response_means_no_extension() -> None:
    # Found by fuzz_handshake: receive_data raised IndexError.
    # test_client_handshake.py covers the header's other empty forms.
    client = ClientConnection("ws://example.com/")
    events = client.receive_data(
        switching_protocols(client, b"Sec-WebSocket-Extensions:\r\n") + b"\x81\x02hi"
    )
    assert events == [events[0], Message("hi")]
    assert isinstance(events[0], Accepted)
    assert events[0].extensions == ()
    assert client.state is State.OPEN
