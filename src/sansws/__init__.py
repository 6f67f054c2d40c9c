"""sansws: a sans-I/O WebSocket library (RFC 6455 and RFC 7692).

The core -- :class:`ClientConnection` and :class:`ServerConnection` -- turns
bytes into events and calls into bytes, with no sockets, threads, clocks or
event loops. Drivers for sync code, asyncio and trio live in
:mod:`sansws.drivers`.
"""

from ._version import __version__
from .auth import basic_auth
from .connection import ClientConnection, Connection, ServerConnection, State
from .errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    InvalidState,
    LocalProtocolError,
    ProtocolError,
    WebSocketError,
)
from .events import (
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
from .frames import CloseCode, Opcode
from .headers import Headers
from .routing import Router
from .uri import WebSocketURI, parse_uri

__all__ = [
    "Accepted",
    "ClientConnection",
    "CloseCode",
    "Closed",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Event",
    "HandshakeError",
    "Headers",
    "InvalidState",
    "LocalProtocolError",
    "Message",
    "MessageChunk",
    "Opcode",
    "Ping",
    "Pong",
    "ProtocolError",
    "Rejected",
    "Request",
    "Router",
    "ServerConnection",
    "State",
    "WebSocketError",
    "WebSocketURI",
    "__version__",
    "basic_auth",
    "parse_uri",
]
