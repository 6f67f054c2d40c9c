"""permessage-deflate against websockets' and wsproto's sans-I/O protocols,
in memory, in both roles, for every parameter combination both sides
support.

The matrices cover what Autobahn|Testsuite's sections 12 (message sizes and
fragmentation with compression) and 13 (window bits and context takeover
combinations, several offers) check, without sockets.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
import wsproto
import wsproto.events as wsproto_events
import wsproto.extensions as wsproto_extensions
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory as WsClientFactory,
)
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate as WsPerMessageDeflate,
)
from websockets.extensions.permessage_deflate import (
    ServerPerMessageDeflateFactory as WsServerFactory,
)
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol
from websockets.uri import parse_uri as ws_parse_uri

from sansws import Accepted, ClientConnection, Message, Request, ServerConnection, State
from sansws.extensions import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    PerMessageDeflateExtension,
)

MiB = 1 << 20
Data = str | bytes


# ---------------------------------------------------------------- peers


class Peer(Protocol):
    def send(self, data: Data, fragment: int | None) -> None: ...
    def data_to_send(self) -> bytes: ...
    def receive(self, data: bytes) -> list[Data]: ...


def fragments(data: Data, size: int | None) -> list[Data]:
    if size is None or len(data) <= size:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


class SanswsPeer:
    def __init__(self, conn: ClientConnection | ServerConnection) -> None:
        self.conn = conn

    def send(self, data: Data, fragment: int | None) -> None:
        pieces = fragments(data, fragment)
        for i, piece in enumerate(pieces):
            final = i == len(pieces) - 1
            if isinstance(piece, str):
                self.conn.send_text(piece, final=final)
            else:
                self.conn.send_binary(piece, final=final)

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()

    def receive(self, data: bytes) -> list[Data]:
        messages = []
        for event in self.conn.receive_data(data):
            assert isinstance(event, Message), event
            messages.append(event.data)
        return messages

    @property
    def deflate(self) -> PerMessageDeflateExtension | None:
        extension = self.conn._extension
        assert extension is None or isinstance(extension, PerMessageDeflateExtension)
        return extension


class WebsocketsPeer:
    def __init__(self, proto: ClientProtocol | ServerProtocol) -> None:
        self.proto = proto
        self.parts: list[bytes] = []
        self.text = False

    def send(self, data: Data, fragment: int | None) -> None:
        text = isinstance(data, str)
        raw = data.encode() if isinstance(data, str) else data
        pieces = fragments(raw, fragment)
        for i, piece in enumerate(pieces):
            assert isinstance(piece, bytes)
            fin = i == len(pieces) - 1
            if i:
                self.proto.send_continuation(piece, fin)
            elif text:
                self.proto.send_text(piece, fin)
            else:
                self.proto.send_binary(piece, fin)

    def data_to_send(self) -> bytes:
        return b"".join(self.proto.data_to_send())

    def receive(self, data: bytes) -> list[Data]:
        self.proto.receive_data(data)
        messages: list[Data] = []
        for event in self.proto.events_received():
            assert isinstance(event, WsFrame), event
            if event.opcode in (WsOpcode.TEXT, WsOpcode.BINARY):
                self.text = event.opcode is WsOpcode.TEXT
            elif event.opcode is not WsOpcode.CONT:
                raise AssertionError(event)
            self.parts.append(event.data)
            if event.fin:
                joined = b"".join(self.parts)
                self.parts = []
                messages.append(joined.decode() if self.text else joined)
        return messages

    @property
    def deflate(self) -> WsPerMessageDeflate | None:
        extensions = self.proto.extensions
        assert len(extensions) <= 1
        return extensions[0] if extensions else None  # type: ignore[return-value]


class WsprotoPeer:
    def __init__(
        self, conn: wsproto.WSConnection, extension: wsproto_extensions.PerMessageDeflate
    ) -> None:
        self.conn = conn
        self.extension = extension
        self.out: list[bytes] = []
        self.parts: list[Any] = []

    def send(self, data: Data, fragment: int | None) -> None:
        pieces = fragments(data, fragment)
        for i, piece in enumerate(pieces):
            finished = i == len(pieces) - 1
            event: wsproto_events.Message[Any]
            if isinstance(piece, str):
                event = wsproto_events.TextMessage(data=piece, message_finished=finished)
            else:
                event = wsproto_events.BytesMessage(data=piece, message_finished=finished)
            self.out.append(self.conn.send(event))

    def data_to_send(self) -> bytes:
        out, self.out = b"".join(self.out), []
        return out

    def receive(self, data: bytes) -> list[Data]:
        self.conn.receive_data(data)
        messages: list[Data] = []
        for event in self.conn.events():
            if isinstance(event, wsproto_events.Ping):
                self.out.append(self.conn.send(event.response()))
                continue
            assert isinstance(event, wsproto_events.TextMessage | wsproto_events.BytesMessage), (
                event
            )
            self.parts.append(event.data)
            if event.message_finished:
                joined = (
                    "".join(self.parts) if isinstance(event.data, str) else b"".join(self.parts)
                )
                self.parts = []
                messages.append(joined)
        return messages

    @property
    def deflate(self) -> wsproto_extensions.PerMessageDeflate | None:
        return self.extension if self.extension.enabled() else None


# ---------------------------------------------------------------- handshakes


def sansws_client_websockets_server(
    settings: PerMessageDeflate | ClientPerMessageDeflateFactory, factory: WsServerFactory
) -> tuple[SanswsPeer, WebsocketsPeer]:
    if isinstance(settings, ClientPerMessageDeflateFactory):
        client = ClientConnection("ws://example.com/", extensions=[settings], max_message_size=None)
    else:
        client = ClientConnection("ws://example.com/", compression=settings, max_message_size=None)
    server = ServerProtocol(extensions=[factory], max_size=None)
    server.receive_data(client.data_to_send())
    [request] = server.events_received()
    assert isinstance(request, WsRequest)
    response = server.accept(request)
    assert response.status_code == 101, response.body
    server.send_response(response)
    [accepted] = client.receive_data(b"".join(server.data_to_send()))
    assert isinstance(accepted, Accepted), accepted
    return SanswsPeer(client), WebsocketsPeer(server)


def websockets_client_sansws_server(
    factories: list[WsClientFactory], settings: PerMessageDeflate
) -> tuple[WebsocketsPeer, SanswsPeer]:
    client = ClientProtocol(ws_parse_uri("ws://example.com/"), extensions=factories, max_size=None)
    server = ServerConnection(compression=settings, max_message_size=None)
    client.send_request(client.connect())
    [request] = server.receive_data(b"".join(client.data_to_send()))
    assert isinstance(request, Request)
    server.accept()
    client.receive_data(server.data_to_send())
    [response] = client.events_received()
    assert isinstance(response, WsResponse)
    assert client.state is WsState.OPEN, client.handshake_exc
    return WebsocketsPeer(client), SanswsPeer(server)


def sansws_client_wsproto_server(
    settings: PerMessageDeflate, extension: wsproto_extensions.PerMessageDeflate
) -> tuple[SanswsPeer, WsprotoPeer]:
    client = ClientConnection("ws://example.com/", compression=settings, max_message_size=None)
    server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    server.receive_data(client.data_to_send())
    [request] = server.events()
    assert isinstance(request, wsproto_events.Request)
    response = server.send(wsproto_events.AcceptConnection(extensions=[extension]))
    [accepted] = client.receive_data(response)
    assert isinstance(accepted, Accepted), accepted
    return SanswsPeer(client), WsprotoPeer(server, extension)


def wsproto_client_sansws_server(
    extension: wsproto_extensions.PerMessageDeflate, settings: PerMessageDeflate
) -> tuple[WsprotoPeer, SanswsPeer]:
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    server = ServerConnection(compression=settings, max_message_size=None)
    request = client.send(
        wsproto_events.Request(host="example.com", target="/", extensions=[extension])
    )
    [event] = server.receive_data(request)
    assert isinstance(event, Request)
    server.accept()
    client.receive_data(server.data_to_send())
    [accepted] = client.events()
    assert isinstance(accepted, wsproto_events.AcceptConnection), accepted
    return WsprotoPeer(client, extension), SanswsPeer(server)


# ---------------------------------------------------------------- exchanges


def json_text(size: int, seed: int) -> str:
    rng = random.Random(seed)
    items = []
    length = 0
    while length < size:
        item = json.dumps({"id": rng.randrange(10**6), "name": f"user{rng.randrange(999)}"})
        items.append(item)
        length += len(item) + 1
    return ("[" + ",".join(items) + "]")[:size]


def messages_of(size: int, seed: int) -> Iterator[Data]:
    """A text message (JSON-like, compressible) and a binary one (half random)."""
    yield json_text(size, seed)
    rng = random.Random(seed)
    yield (rng.randbytes(size // 2) + bytes(size - size // 2))[:size]


def exchange(
    a: Peer, b: Peer, messages: list[Data], fragment: int | None = None, chunk: int = 65536
) -> None:
    """Send ``messages`` from ``a`` to ``b`` and back, in ``chunk``-byte
    reads, and check each arrives intact."""
    for sender, receiver in ((a, b), (b, a)):
        for message in messages:
            sender.send(message, fragment)
        wire = sender.data_to_send()
        received: list[Data] = []
        for i in range(0, len(wire), chunk):
            received.extend(receiver.receive(wire[i : i + chunk]))
        assert received == messages


SMALL_SET = [m for size in (0, 16, 300, 5000) for m in messages_of(size, size)]
SMALL_SET += [os.urandom(20_000), "repeated message " * 20, "repeated message " * 20]


def assert_mirrored(
    ours: PerMessageDeflateExtension | None, theirs: WsPerMessageDeflate | None
) -> None:
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert ours.local_no_context_takeover == theirs.remote_no_context_takeover
        assert ours.remote_no_context_takeover == theirs.local_no_context_takeover
        assert ours.local_max_window_bits == theirs.remote_max_window_bits
        assert ours.remote_max_window_bits == theirs.local_max_window_bits


# ---------------------------------------------------------------- websockets


BITS = (None, 8, 9, 15)
FLAGS = list(itertools.product((False, True), repeat=2))

WS_SERVER_FACTORIES = {
    "default": lambda: WsServerFactory(
        server_max_window_bits=12, compress_settings={"memLevel": 5}
    ),
    "plain": WsServerFactory,
    "no-takeover": lambda: WsServerFactory(
        server_no_context_takeover=True, client_no_context_takeover=True
    ),
    "client-bits-8": lambda: WsServerFactory(client_max_window_bits=8),
    "bits-9": lambda: WsServerFactory(server_max_window_bits=9, client_max_window_bits=9),
}


@pytest.mark.parametrize("server", list(WS_SERVER_FACTORIES))
@pytest.mark.parametrize(("snct", "cnct"), FLAGS)
@pytest.mark.parametrize("server_bits", BITS)
@pytest.mark.parametrize("client_bits", BITS)
def test_sansws_client_and_websockets_server_agree_on_every_offer(
    server: str, snct: bool, cnct: bool, server_bits: int | None, client_bits: int | None
) -> None:
    settings = PerMessageDeflate(server_bits, client_bits, snct, cnct, threshold=0)
    ours, theirs = sansws_client_websockets_server(settings, WS_SERVER_FACTORIES[server]())
    if server_bits == 8:
        # websockets cannot compress with an 8-bit window and declines.
        assert ours.deflate is None
        assert theirs.deflate is None
    else:
        assert ours.deflate is not None
        assert ours.deflate.remote_no_context_takeover >= snct
        assert ours.deflate.local_no_context_takeover >= cnct
        if server_bits is not None:
            assert ours.deflate.remote_max_window_bits <= server_bits
    assert_mirrored(ours.deflate, theirs.deflate)
    exchange(ours, theirs, SMALL_SET)
    exchange(ours, theirs, SMALL_SET[-4:], fragment=100)


WS_CLIENT_BITS: tuple[int | bool | None, ...] = (None, True, 9, 15)

SANSWS_SERVER_SETTINGS = {
    "default": PerMessageDeflate(server_max_window_bits=12, threshold=0),
    "plain": PerMessageDeflate(threshold=0),
    "no-takeover": PerMessageDeflate(
        server_no_context_takeover=True, client_no_context_takeover=True, threshold=0
    ),
    "client-bits-9": PerMessageDeflate(client_max_window_bits=9, threshold=0),
    "bits-8": PerMessageDeflate(server_max_window_bits=8, threshold=0),
}


@pytest.mark.parametrize("server", list(SANSWS_SERVER_SETTINGS))
@pytest.mark.parametrize(("snct", "cnct"), FLAGS)
@pytest.mark.parametrize("server_bits", BITS)
@pytest.mark.parametrize("client_bits", WS_CLIENT_BITS)
def test_websockets_client_and_sansws_server_agree_on_every_offer(
    server: str, snct: bool, cnct: bool, server_bits: int | None, client_bits: int | bool | None
) -> None:
    factory = WsClientFactory(snct, cnct, server_bits, client_bits)  # type: ignore[arg-type]
    theirs, ours = websockets_client_sansws_server([factory], SANSWS_SERVER_SETTINGS[server])
    assert ours.deflate is not None
    if server_bits is not None:
        assert ours.deflate.local_max_window_bits <= server_bits
    assert ours.deflate.local_no_context_takeover >= snct
    assert_mirrored(ours.deflate, theirs.deflate)
    exchange(ours, theirs, SMALL_SET)
    exchange(ours, theirs, SMALL_SET[-4:], fragment=100)


def test_websockets_server_picks_the_first_offer_it_supports_from_a_sansws_client() -> None:
    # websockets declines the 8-bit offer and takes the next one.
    factory = ClientPerMessageDeflateFactory(
        PerMessageDeflate(server_max_window_bits=8, threshold=1),
        PerMessageDeflate(server_max_window_bits=10, threshold=2),
        PerMessageDeflate(threshold=3),
    )
    ours, theirs = sansws_client_websockets_server(factory, WsServerFactory())
    assert ours.deflate is not None
    assert (ours.deflate.threshold, ours.deflate.remote_max_window_bits) == (2, 10)
    assert_mirrored(ours.deflate, theirs.deflate)
    exchange(ours, theirs, SMALL_SET)


def test_sansws_server_picks_the_first_of_several_websockets_offers() -> None:
    factories = [
        WsClientFactory(server_no_context_takeover=True, server_max_window_bits=9),
        WsClientFactory(),
    ]
    theirs, ours = websockets_client_sansws_server(factories, PerMessageDeflate())
    assert ours.deflate is not None
    assert ours.deflate.local_no_context_takeover
    assert ours.deflate.local_max_window_bits == 9
    assert_mirrored(ours.deflate, theirs.deflate)
    exchange(ours, theirs, SMALL_SET)


# ---------------------------------------------------------------- wsproto

WSPROTO_BITS = (None, 9, 15)

WSPROTO_SERVERS = {
    "plain": wsproto_extensions.PerMessageDeflate,
    "client-no-takeover": lambda: wsproto_extensions.PerMessageDeflate(
        client_no_context_takeover=True
    ),
    "server-no-takeover": lambda: wsproto_extensions.PerMessageDeflate(
        server_no_context_takeover=True
    ),
    "client-bits-10": lambda: wsproto_extensions.PerMessageDeflate(client_max_window_bits=10),
}


def assert_wsproto_mirrored(
    ours: PerMessageDeflateExtension | None,
    theirs: wsproto_extensions.PerMessageDeflate | None,
    *,
    we_are_client: bool,
) -> None:
    assert ours is not None
    assert theirs is not None
    client_bits, server_bits = theirs.client_max_window_bits, theirs.server_max_window_bits
    if we_are_client:
        assert ours.local_max_window_bits <= client_bits
        assert ours.remote_max_window_bits >= server_bits
        assert ours.local_no_context_takeover >= theirs.client_no_context_takeover
        assert ours.remote_no_context_takeover <= theirs.server_no_context_takeover
    else:
        assert ours.local_max_window_bits <= server_bits
        assert ours.remote_max_window_bits >= client_bits
        assert ours.local_no_context_takeover >= theirs.server_no_context_takeover
        assert ours.remote_no_context_takeover <= theirs.client_no_context_takeover


@pytest.mark.parametrize("server", list(WSPROTO_SERVERS))
@pytest.mark.parametrize(("snct", "cnct"), FLAGS)
@pytest.mark.parametrize("server_bits", WSPROTO_BITS)
@pytest.mark.parametrize("client_bits", WSPROTO_BITS)
def test_sansws_client_and_wsproto_server_agree_on_every_offer(
    server: str, snct: bool, cnct: bool, server_bits: int | None, client_bits: int | None
) -> None:
    settings = PerMessageDeflate(server_bits, client_bits, snct, cnct, threshold=0)
    ours, theirs = sansws_client_wsproto_server(settings, WSPROTO_SERVERS[server]())
    assert_wsproto_mirrored(ours.deflate, theirs.deflate, we_are_client=True)
    exchange(ours, theirs, SMALL_SET)
    exchange(ours, theirs, SMALL_SET[-4:], fragment=100)


def test_wsproto_server_declines_an_8_bit_window_and_sansws_sends_uncompressed() -> None:
    settings = PerMessageDeflate(server_max_window_bits=8)
    ours, theirs = sansws_client_wsproto_server(settings, wsproto_extensions.PerMessageDeflate())
    assert ours.deflate is None
    exchange(ours, theirs, SMALL_SET)


WSPROTO_CLIENT_BITS = (9, 12, 15)


@pytest.mark.parametrize(
    "server", ["default", "plain", "no-takeover", "client-bits-9"]
)  # wsproto cannot use 8 bits
@pytest.mark.parametrize(("snct", "cnct"), FLAGS)
@pytest.mark.parametrize("server_bits", WSPROTO_CLIENT_BITS)
@pytest.mark.parametrize("client_bits", WSPROTO_CLIENT_BITS)
def test_wsproto_client_and_sansws_server_agree_on_every_offer(
    server: str, snct: bool, cnct: bool, server_bits: int, client_bits: int
) -> None:
    extension = wsproto_extensions.PerMessageDeflate(cnct, client_bits, snct, server_bits)
    theirs, ours = wsproto_client_sansws_server(extension, SANSWS_SERVER_SETTINGS[server])
    assert_wsproto_mirrored(ours.deflate, theirs.deflate, we_are_client=False)
    exchange(ours, theirs, SMALL_SET)
    exchange(ours, theirs, SMALL_SET[-4:], fragment=100)


# ---------------------------------------------------------------- sizes


@dataclass
class Pairing:
    name: str
    make: Any


PAIRINGS = [
    Pairing(
        "sansws-client/websockets-server",
        lambda s: sansws_client_websockets_server(s, WsServerFactory(server_max_window_bits=12)),
    ),
    Pairing(
        "websockets-client/sansws-server",
        lambda s: websockets_client_sansws_server([WsClientFactory()], s)[::-1],
    ),
    Pairing(
        "sansws-client/wsproto-server",
        lambda s: sansws_client_wsproto_server(s, wsproto_extensions.PerMessageDeflate()),
    ),
    Pairing(
        "wsproto-client/sansws-server",
        lambda s: wsproto_client_sansws_server(wsproto_extensions.PerMessageDeflate(), s)[::-1],
    ),
]

SIZES = [0, 1, 125, 126, 65535, 65536, 100_000, MiB]


@pytest.mark.parametrize("pairing", PAIRINGS, ids=lambda p: p.name)
@pytest.mark.parametrize(
    "settings",
    [PerMessageDeflate(threshold=0), PerMessageDeflate(12, 12, True, True, level=9)],
    ids=["takeover", "no-takeover"],
)
def test_messages_of_0_bytes_to_1_mib_interoperate(
    pairing: Pairing, settings: PerMessageDeflate
) -> None:
    ours, theirs = pairing.make(settings)
    messages = [m for size in SIZES for m in messages_of(size, size)]
    messages.append(os.urandom(MiB))  # incompressible
    exchange(ours, theirs, messages)


AUTOBAHN_12_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]


@pytest.mark.parametrize("pairing", PAIRINGS, ids=lambda p: p.name)
@pytest.mark.parametrize("fragment", [None, 256, 4096, 65536])
def test_autobahn_12_sizes_and_fragmentations_interoperate(
    pairing: Pairing, fragment: int | None
) -> None:
    ours, theirs = pairing.make(PerMessageDeflate(threshold=0))
    for size in AUTOBAHN_12_SIZES:
        if fragment == 256 and size > 16384:
            continue  # thousands of frames, and nothing the others do not cover
        # The second copy of each message tests the shared window.
        messages = list(messages_of(size, size)) * 2
        exchange(ours, theirs, messages, fragment=fragment, chunk=4096)


# Autobahn 13.x offers, as (server_no_context_takeover, server_max_window_bits)
# requested by the client, and the server accepting them as it likes.
AUTOBAHN_13_SIZES = [16, 1024, 16384, 131072]
AUTOBAHN_13_OFFERS = [
    [(False, None)],
    [(True, None)],
    [(False, 8)],
    [(False, 15)],
    [(True, 8)],
    [(True, 15)],
    [(True, 8), (True, None), (False, None)],
]


@pytest.mark.parametrize("offers", AUTOBAHN_13_OFFERS, ids=str)
@pytest.mark.parametrize("server", list(SANSWS_SERVER_SETTINGS))
def test_autobahn_13_offers_from_websockets_to_a_sansws_server(
    offers: list[tuple[bool, int | None]], server: str
) -> None:
    factories = [WsClientFactory(snct, False, bits, None) for snct, bits in offers]
    theirs, ours = websockets_client_sansws_server(factories, SANSWS_SERVER_SETTINGS[server])
    assert ours.deflate is not None
    snct, bits = offers[0]
    assert ours.deflate.local_no_context_takeover >= snct
    if bits is not None:
        assert ours.deflate.local_max_window_bits <= bits
    assert_mirrored(ours.deflate, theirs.deflate)
    for size in AUTOBAHN_13_SIZES:
        exchange(ours, theirs, list(messages_of(size, size)) * 2, chunk=4096)


@pytest.mark.parametrize("offers", AUTOBAHN_13_OFFERS, ids=str)
@pytest.mark.parametrize("server", list(WS_SERVER_FACTORIES))
def test_autobahn_13_offers_from_a_sansws_client_to_websockets(
    offers: list[tuple[bool, int | None]], server: str
) -> None:
    factory = ClientPerMessageDeflateFactory(
        *(
            PerMessageDeflate(server_max_window_bits=b, server_no_context_takeover=s)
            for s, b in offers
        )
    )
    ours, theirs = sansws_client_websockets_server(factory, WS_SERVER_FACTORIES[server]())
    assert_mirrored(ours.deflate, theirs.deflate)
    for size in AUTOBAHN_13_SIZES:
        exchange(ours, theirs, list(messages_of(size, size)) * 2, chunk=4096)


def test_sansws_server_state_after_interop_is_open() -> None:
    theirs, ours = websockets_client_sansws_server([WsClientFactory()], PerMessageDeflate())
    exchange(ours, theirs, SMALL_SET)
    assert isinstance(ours.conn, ServerConnection)
    assert ours.conn.state is State.OPEN
