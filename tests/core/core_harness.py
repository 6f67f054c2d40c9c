"""In-memory plumbing for the core's unit tests: connected client/server
pairs, hand-built frames and handshakes, and the checks every failure test
shares. No sockets, no clock."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from sansws import ClientConnection, ServerConnection, State
from sansws.events import Accepted, Closed, Event, Request
from sansws.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParams,
    ServerExtensionFactory,
)
from sansws.frames import Frame, Opcode, parse_frame, serialize_frame
from sansws.handshake import accept_key
from sansws.headers import ExtensionOffer

# A fixed masking key keeps hand-built client frames readable in failures.
MASK = b"\x37\xfa\x21\x3d"

# Compression, where the core offers it by default, is tested on its own:
# here it stays off so that the wire carries exactly what a test sent.
PLAIN: dict[str, Any] = {"compression": None}

# Timers and compression off unless a test is about them, so that output
# holds only what the test caused.
QUIET: dict[str, Any] = {
    "ping_interval": None,
    "ping_timeout": None,
    "close_timeout": None,
    "open_timeout": None,
    **PLAIN,
}

URL = "ws://example.com/chat"


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
) -> bytes:
    """One frame on the wire (unmasked unless ``mask`` is given)."""
    return serialize_frame(Frame(opcode, payload, fin, rsv1, rsv2, rsv3), mask)


def client_frame(opcode: int, payload: bytes = b"", **kwargs: Any) -> bytes:
    """A frame as a client sends it: masked."""
    return frame(opcode, payload, mask=MASK, **kwargs)


def parse_all(data: bytes) -> list[tuple[Frame, bool]]:
    """Every frame in ``data`` as ``(frame, masked)``; ``data`` must hold
    whole frames only."""
    frames = []
    while data:
        parsed = parse_frame(data)
        assert parsed is not None, f"incomplete frame in {data!r}"
        parsed_frame, masked, consumed = parsed
        frames.append((parsed_frame, masked))
        data = data[consumed:]
    return frames


def close_frames(data: bytes) -> list[bytes]:
    """The payloads of the Close frames in ``data``."""
    return [f.payload for f, _ in parse_all(data) if f.opcode == Opcode.CLOSE]


def request_bytes(
    *,
    method: str = "GET",
    target: str = "/chat",
    version: str = "HTTP/1.1",
    key: str = "dGhlIHNhbXBsZSBub25jZQ==",
    headers: Sequence[tuple[str, str]] | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A client's opening handshake, by hand; ``headers`` replaces the usual
    ones entirely."""
    if headers is None:
        headers = [
            ("Host", "example.com"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
    lines = [f"{method} {target} {version}"]
    lines += [f"{name}: {value}" for name, value in [*headers, *extra]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response_bytes(
    client: ClientConnection,
    *,
    status: str = "101 Switching Protocols",
    headers: Sequence[tuple[str, str]] | None = None,
    extra: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """A server's answer to ``client``'s handshake, by hand; ``headers``
    replaces the usual 101 headers entirely."""
    if headers is None:
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(client_key(client))),
        ]
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{name}: {value}" for name, value in [*headers, *extra]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def client_key(client: ClientConnection) -> str:
    assert client.request_headers is not None
    return client.request_headers["Sec-WebSocket-Key"]


def new_client(url: str = URL, **kwargs: Any) -> ClientConnection:
    """A client whose request was taken from its output, awaiting the answer."""
    client = ClientConnection(url, **{**QUIET, **kwargs})
    client.data_to_send()
    return client


def open_client(**kwargs: Any) -> ClientConnection:
    """An ``OPEN`` client, its output drained."""
    client = new_client(**kwargs)
    events = client.receive_data(response_bytes(client))
    assert [type(e) for e in events] == [Accepted]
    assert client.state is State.OPEN
    return client


def open_server(**kwargs: Any) -> ServerConnection:
    """An ``OPEN`` server, its output drained."""
    server = ServerConnection(**{**QUIET, **kwargs})
    events = server.receive_data(request_bytes())
    assert [type(e) for e in events] == [Request]
    assert server.accept() == []
    server.data_to_send()
    assert server.state is State.OPEN
    return server


def open_pair(
    client_kwargs: dict[str, Any] | None = None, server_kwargs: dict[str, Any] | None = None
) -> tuple[ClientConnection, ServerConnection]:
    """A client and a server that completed the handshake with each other."""
    client = ClientConnection(URL, **{**QUIET, **(client_kwargs or {})})
    server = ServerConnection(**{**QUIET, **(server_kwargs or {})})
    (request,) = server.receive_data(client.data_to_send())
    assert isinstance(request, Request)
    assert server.accept() == []
    (accepted,) = client.receive_data(server.data_to_send())
    assert isinstance(accepted, Accepted)
    return client, server


def transfer(source: ClientConnection | ServerConnection, dest: Any) -> list[Event]:
    """Move ``source``'s pending output into ``dest``; ``dest``'s events."""
    events: list[Event] = dest.receive_data(source.data_to_send())
    return events


def assert_failed(
    conn: ClientConnection | ServerConnection,
    events: list[Event],
    code: int,
    error_type: type[Exception],
    *,
    close_on_wire: bool = True,
) -> Closed:
    """Check the common shape of a connection failure (RFC 6455 section
    7.1.7): one Close frame carrying ``code`` on the wire, ``CLOSED``, the
    transport to be closed, exactly one terminal ``Closed`` event with the
    error, and nothing more processed afterwards."""
    closed = [e for e in events if isinstance(e, Closed)]
    assert len(closed) == 1, events
    assert events[-1] is closed[0]
    event = closed[0]
    assert event.code == code
    assert event.clean is False
    assert isinstance(event.error, error_type), event.error
    assert conn.state is State.CLOSED
    assert conn.should_close_transport
    assert conn.close_code == code
    assert conn.close_error is event.error
    payloads = close_frames(conn.data_to_send())
    if close_on_wire:
        assert len(payloads) == 1
        assert int.from_bytes(payloads[0][:2], "big") == code
    else:
        assert payloads == []
    # Bytes after the failure are ignored: no event, no output.
    assert conn.receive_data(peer_frame(conn, Opcode.TEXT, b"more")) == []
    assert conn.data_to_send() == b""
    return event


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---------------------------------------------------------------- extension


class Reverse(Extension):
    """A toy extension for tests: RSV1 marks a message whose bytes are
    reversed frame by frame. Exercises the extension interface without
    compression."""

    name = "x-reverse"
    rsv_mask = 0x40

    def __init__(self, params: ExtensionParams = ()) -> None:
        self.params = params
        self.decoded: list[tuple[bytes, int, bool, int | None]] = []

    def negotiated(self) -> ExtensionOffer:
        return (self.name, self.params)

    def decode(self, data: bytes, rsv: int, final: bool, max_size: int | None) -> bytes:
        self.decoded.append((data, rsv, final, max_size))
        return data[::-1]

    def encode(self, data: bytes, first: bool, final: bool) -> tuple[int, bytes]:
        return 0x40, data[::-1]


class ReverseClient(ClientExtensionFactory):
    name = "x-reverse"

    def __init__(self, offers: Sequence[ExtensionParams] = ((),)) -> None:
        self._offers = offers
        self.accepted: Reverse | None = None

    def offers(self) -> Sequence[ExtensionParams]:
        return self._offers

    def accept(self, params: ExtensionParams) -> Extension:
        self.accepted = Reverse(params)
        return self.accepted


class ReverseServer(ServerExtensionFactory):
    name = "x-reverse"

    def __init__(self, decline: bool = False) -> None:
        self.decline = decline
        self.seen: list[Sequence[ExtensionParams]] = []

    def negotiate(
        self, offers: Sequence[ExtensionParams]
    ) -> tuple[ExtensionParams, Extension] | None:
        self.seen.append(offers)
        if self.decline:
            return None
        return offers[0], Reverse(offers[0])


def peer_frame(
    conn: ClientConnection | ServerConnection, opcode: int, payload: bytes = b"", **kwargs: Any
) -> bytes:
    """A well-formed frame as ``conn``'s peer sends it: masked towards a
    server, unmasked towards a client."""
    if isinstance(conn, ClientConnection):
        return frame(opcode, payload, **kwargs)
    return client_frame(opcode, payload, **kwargs)
