"""Connections opened in memory, and views of their behaviour that two runs
can compare."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sansws import ClientConnection, Connection, ServerConnection
from sansws.events import Accepted, Closed, Event, Request
from sansws.frames import Frame, parse_frame

URL = "ws://example.com/chat"

#: How :func:`open_pair` opens connections: ``"handshake"`` (a real opening
#: handshake) or ``"opened"`` (``ClientConnection.opened`` and
#: ``ServerConnection.opened`` from the same agreement, as for a server that
#: does its own upgrade). The ``opening`` fixture of conftest.py runs a
#: module once with each.
OPENING = "handshake"


def open_pair(
    *,
    client_kw: dict[str, Any] | None = None,
    server_kw: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[ClientConnection, ServerConnection]:
    """A client and a server that completed the opening handshake (or that
    started open: see :data:`OPENING`), without compression unless
    ``options`` ask for it: the streams sansws.testing generates are
    labelled for connections with no extension negotiated. ``options`` go
    to both, ``client_kw`` and ``server_kw`` to one."""
    options.setdefault("compression", None)
    client_options = {**options, **(client_kw or {})}
    server_options = {**options, **(server_kw or {})}
    if OPENING == "opened":
        offer = ClientConnection(URL, **client_options).request
        assert offer is not None
        offered = offer.headers.get_all("Sec-WebSocket-Extensions")
        opened_server = ServerConnection.opened(offered_extensions=offered, **server_options)
        agreed = opened_server.extensions_header
        opened_client = ClientConnection.opened(
            accepted_extensions=[agreed] if agreed else [], **client_options
        )
        return opened_client, opened_server
    client = ClientConnection(URL, **client_options)
    server = ServerConnection(**server_options)
    [request] = server.receive_data(client.data_to_send())
    assert isinstance(request, Request)
    assert request.error is None
    assert server.accept() == []
    [accepted] = client.receive_data(server.data_to_send())
    assert isinstance(accepted, Accepted)
    return client, server


def open_receiver(masked: bool, **options: Any) -> Connection:
    """An open connection of the role that receives masked (server) or
    unmasked (client) frames."""
    client, server = open_pair(**options)
    return server if masked else client


def feed(connection: Connection, chunks: Iterable[bytes]) -> list[Event]:
    return [event for chunk in chunks for event in connection.receive_data(chunk)]


def join(parts: list[str | bytes]) -> str | bytes:
    """The message whose fragments or chunks are ``parts``."""
    if all(isinstance(part, str) for part in parts):
        return "".join(part for part in parts if isinstance(part, str))
    return b"".join(part for part in parts if isinstance(part, bytes))


def describe(event: object) -> object:
    """An event as a comparable value: exceptions compare by identity, so
    errors are described by their type and message."""
    if isinstance(event, Closed):
        error = event.error
        return (Closed, event.code, event.reason, event.clean, type(error), str(error))
    if isinstance(event, Request):
        error = event.error
        fields = (event.path, event.headers, event.subprotocols, event.extensions)
        return (Request, *fields, type(error), str(error))
    return event


def parse_all(data: bytes) -> list[tuple[Frame, bool]]:
    """Every frame in ``data``, unmasked, with whether it was masked."""
    frames = []
    while data:
        parsed = parse_frame(data)
        assert parsed is not None, "output ends inside a frame"
        frame, masked, consumed = parsed
        frames.append((frame, masked))
        data = data[consumed:]
    return frames


def outcome(connection: Connection) -> object:
    """What a connection ended up as, apart from its events."""
    return (
        connection.state,
        connection.close_code,
        connection.close_reason,
        type(connection.close_error),
        connection.should_close_transport,
    )
