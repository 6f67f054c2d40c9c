"""permessage-deflate (RFC 7692): negotiation, compression, decompression and
its bounds, between two sansws connections and against hand-made input."""

from __future__ import annotations

import gc
import os
import tracemalloc
import zlib
from typing import Any

import pytest

from sansws import ClientConnection, Closed, Message, MessageChunk, ServerConnection, State
from sansws.errors import NegotiationError, PayloadTooBig, ProtocolError
from sansws.events import Accepted, Request
from sansws.extensions import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    PerMessageDeflateExtension,
    ServerPerMessageDeflateFactory,
)
from sansws.extensions.permessage_deflate import _parse_params
from sansws.frames import Frame, parse_frame
from sansws.handshake import accept_key
from sansws.headers import parse_extension_list

MiB = 1 << 20


# ---------------------------------------------------------------- helpers


def connect(
    client_kw: dict[str, Any] | None = None, server_kw: dict[str, Any] | None = None
) -> tuple[ClientConnection, ServerConnection]:
    client = ClientConnection("ws://example.com/", **(client_kw or {}))
    server = ServerConnection(**(server_kw or {}))
    [request] = server.receive_data(client.data_to_send())
    assert isinstance(request, Request)
    assert server.accept() == []
    [accepted] = client.receive_data(server.data_to_send())
    assert isinstance(accepted, Accepted)
    return client, server


def deflate_of(conn: ClientConnection | ServerConnection) -> PerMessageDeflateExtension:
    extension = conn._extension
    assert isinstance(extension, PerMessageDeflateExtension)
    return extension


def frames_of(data: bytes) -> list[Frame]:
    frames = []
    while data:
        parsed = parse_frame(data)
        assert parsed is not None
        frame, _masked, consumed = parsed
        frames.append(frame)
        data = data[consumed:]
    return frames


def request_offers(header: str) -> bytes:
    return (
        "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {header}\r\n\r\n"
    ).encode()


def server_response(server: ServerConnection, offer: str) -> tuple[int, str | None]:
    """Feed a request with ``offer``, accept it, and return the status and
    the Sec-WebSocket-Extensions header of the answer."""
    [request] = server.receive_data(request_offers(offer))
    assert isinstance(request, Request)
    server.accept()
    head = server.data_to_send().split(b"\r\n\r\n")[0].decode()
    status = int(head.split()[1])
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "sec-websocket-extensions":
            return status, value.strip()
    return status, None


def client_receives(client: ClientConnection, extensions: str | None) -> list[Any]:
    """Answer ``client``'s request with a 101 carrying ``extensions``."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(client._handshake.key)}",
    ]
    if extensions is not None:
        lines.append(f"Sec-WebSocket-Extensions: {extensions}")
    return client.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode())


def compressed_frame(
    payload: bytes, *, fin: bool = True, rsv1: bool = True, opcode: int = 1
) -> bytes:
    """A frame as a server sends it (unmasked)."""
    return Frame(opcode, payload, fin=fin, rsv1=rsv1).serialize()


def raw_deflate(data: bytes, wbits: int = -15) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 7},
        {"level": 10},
        {"level": -1},
        {"memory_level": 0},
        {"memory_level": 10},
        {"threshold": -1},
    ],
)
def test_settings_out_of_range_are_refused_at_construction(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PerMessageDeflate(**kwargs)


def test_compression_must_be_deflate_settings_or_none() -> None:
    with pytest.raises(ValueError, match="compression must be"):
        ClientConnection("ws://example.com/", compression="gzip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compression must be"):
        ServerConnection(compression="zstd")  # type: ignore[arg-type]


# ---------------------------------------------------------------- client offers


def request_extensions(client: ClientConnection) -> str | None:
    assert client.request_headers is not None
    return client.request_headers.get("Sec-WebSocket-Extensions")


def test_client_offers_deflate_by_default_letting_the_server_pick_its_window() -> None:
    client = ClientConnection("ws://example.com/")
    assert request_extensions(client) == "permessage-deflate; client_max_window_bits"


def test_client_with_compression_none_offers_nothing() -> None:
    client = ClientConnection("ws://example.com/", compression=None)
    assert request_extensions(client) is None


def test_client_offers_every_requested_parameter() -> None:
    settings = PerMessageDeflate(
        server_max_window_bits=10,
        client_max_window_bits=9,
        server_no_context_takeover=True,
        client_no_context_takeover=True,
    )
    client = ClientConnection("ws://example.com/", compression=settings)
    assert request_extensions(client) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=9"
    )


def test_client_sends_several_offers_in_order_of_preference() -> None:
    factory = ClientPerMessageDeflateFactory(
        PerMessageDeflate(server_max_window_bits=10), PerMessageDeflate()
    )
    client = ClientConnection("ws://example.com/", extensions=[factory])
    assert request_extensions(client) == (
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits, "
        "permessage-deflate; client_max_window_bits"
    )


def test_an_explicit_deflate_factory_replaces_the_compression_default() -> None:
    factory = ClientPerMessageDeflateFactory(PerMessageDeflate(client_max_window_bits=11))
    client = ClientConnection("ws://example.com/", extensions=[factory], compression="deflate")
    assert request_extensions(client) == "permessage-deflate; client_max_window_bits=11"


# ---------------------------------------------------------------- client accepts


@pytest.mark.parametrize(
    ("settings", "response", "expected"),
    [
        # (local nct, remote nct, local bits, remote bits) for the client.
        (PerMessageDeflate(), "permessage-deflate", (False, False, 15, 15)),
        (
            PerMessageDeflate(),
            "permessage-deflate; server_no_context_takeover",
            (False, True, 15, 15),
        ),
        (
            PerMessageDeflate(),
            "permessage-deflate; client_no_context_takeover",
            (True, False, 15, 15),
        ),
        (
            PerMessageDeflate(),
            "permessage-deflate; server_max_window_bits=8",
            (False, False, 15, 8),
        ),
        (
            PerMessageDeflate(),
            "permessage-deflate; client_max_window_bits=8",
            (False, False, 8, 15),
        ),
        (
            PerMessageDeflate(server_max_window_bits=10),
            "permessage-deflate; server_max_window_bits=9",
            (False, False, 15, 9),
        ),
        (
            PerMessageDeflate(client_max_window_bits=10),
            "permessage-deflate",
            (False, False, 10, 15),
        ),
        (
            PerMessageDeflate(client_max_window_bits=10),
            'permessage-deflate; client_max_window_bits="10"',
            (False, False, 10, 15),
        ),
        (
            PerMessageDeflate(client_no_context_takeover=True),
            "permessage-deflate",
            (True, False, 15, 15),
        ),
        (
            PerMessageDeflate(server_no_context_takeover=True),
            "permessage-deflate; server_no_context_takeover",
            (False, True, 15, 15),
        ),
    ],
)
def test_client_accepts_a_response_that_answers_its_offer(
    settings: PerMessageDeflate, response: str, expected: tuple[bool, bool, int, int]
) -> None:
    client = ClientConnection("ws://example.com/", compression=settings)
    [accepted] = client_receives(client, response)
    assert isinstance(accepted, Accepted)
    extension = deflate_of(client)
    assert (
        extension.local_no_context_takeover,
        extension.remote_no_context_takeover,
        extension.local_max_window_bits,
        extension.remote_max_window_bits,
    ) == expected
    assert client.extensions == accepted.extensions
    assert accepted.extensions[0][0] == "permessage-deflate"


@pytest.mark.parametrize(
    ("settings", "response", "problem"),
    [
        (
            PerMessageDeflate(server_no_context_takeover=True),
            "permessage-deflate",
            "server_no_context_takeover was requested",
        ),
        (
            PerMessageDeflate(server_max_window_bits=10),
            "permessage-deflate",
            "server_max_window_bits was requested",
        ),
        (
            PerMessageDeflate(server_max_window_bits=10),
            "permessage-deflate; server_max_window_bits=11",
            "server_max_window_bits is larger",
        ),
        (
            PerMessageDeflate(client_max_window_bits=10),
            "permessage-deflate; client_max_window_bits=12",
            "client_max_window_bits is larger",
        ),
        # Malformed responses, whatever was offered.
        (PerMessageDeflate(), "permessage-deflate; foo", "unknown parameter foo"),
        (
            PerMessageDeflate(),
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "duplicate parameter",
        ),
        (
            PerMessageDeflate(),
            "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9",
            "duplicate parameter",
        ),
        (PerMessageDeflate(), "permessage-deflate; client_max_window_bits", "needs a value"),
        (PerMessageDeflate(), "permessage-deflate; server_max_window_bits", "needs a value"),
        (PerMessageDeflate(), "permessage-deflate; server_max_window_bits=7", "from 8 to 15"),
        (PerMessageDeflate(), "permessage-deflate; server_max_window_bits=16", "from 8 to 15"),
        (PerMessageDeflate(), "permessage-deflate; server_max_window_bits=09", "from 8 to 15"),
        (PerMessageDeflate(), "permessage-deflate; client_max_window_bits=x", "from 8 to 15"),
        (
            PerMessageDeflate(),
            "permessage-deflate; client_no_context_takeover=1",
            "takes no value",
        ),
        (PerMessageDeflate(), "permessage-deflate, permessage-deflate", "more than one"),
    ],
)
def test_client_fails_the_handshake_on_a_response_it_cannot_accept(
    settings: PerMessageDeflate, response: str, problem: str
) -> None:
    client = ClientConnection("ws://example.com/", compression=settings)
    [closed] = client_receives(client, response)
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, NegotiationError)
    assert problem in str(closed.error)
    assert client.state is State.CLOSED


def test_client_refuses_deflate_it_did_not_offer() -> None:
    client = ClientConnection("ws://example.com/", compression=None)
    [closed] = client_receives(client, "permessage-deflate")
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, NegotiationError)


def test_client_uses_the_first_offer_the_response_satisfies() -> None:
    factory = ClientPerMessageDeflateFactory(
        PerMessageDeflate(server_no_context_takeover=True, threshold=1),
        PerMessageDeflate(server_max_window_bits=10, threshold=2),
        PerMessageDeflate(threshold=3),
    )
    client = ClientConnection("ws://example.com/", extensions=[factory])
    client_receives(client, "permessage-deflate; server_max_window_bits=10")
    assert deflate_of(client).threshold == 2


def test_client_without_any_satisfied_offer_names_each_problem() -> None:
    factory = ClientPerMessageDeflateFactory(
        PerMessageDeflate(server_no_context_takeover=True),
        PerMessageDeflate(server_max_window_bits=10),
    )
    client = ClientConnection("ws://example.com/", extensions=[factory])
    [closed] = client_receives(client, "permessage-deflate")
    assert "server_no_context_takeover was requested" in str(closed.error)
    assert "server_max_window_bits was requested" in str(closed.error)


# ---------------------------------------------------------------- server negotiates


@pytest.mark.parametrize(
    ("settings", "offer", "response"),
    [
        # The default server bounds its own window to 12 bits.
        (None, "permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
        (
            None,
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            None,
            "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=9",
        ),
        (
            None,
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=8",
        ),
        (
            None,
            "permessage-deflate; server_max_window_bits=15",
            "permessage-deflate; server_max_window_bits=12",
        ),
        (PerMessageDeflate(), "permessage-deflate", "permessage-deflate"),
        (
            PerMessageDeflate(),
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate",
        ),
        (
            PerMessageDeflate(),
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            PerMessageDeflate(client_max_window_bits=9),
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            PerMessageDeflate(client_max_window_bits=8),
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=8",
        ),
        (
            PerMessageDeflate(client_max_window_bits=12),
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=10",
        ),
        # Without client_max_window_bits in the offer, the server may not
        # bound the client's window (RFC 7692 section 7.1.2.2).
        (PerMessageDeflate(client_max_window_bits=9), "permessage-deflate", "permessage-deflate"),
        (
            PerMessageDeflate(),
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            PerMessageDeflate(server_no_context_takeover=True),
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            PerMessageDeflate(),
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            PerMessageDeflate(client_no_context_takeover=True),
            "permessage-deflate",
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            PerMessageDeflate(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=11",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=11",
        ),
        # Several offers: the first one wins.
        (
            PerMessageDeflate(),
            "permessage-deflate; server_max_window_bits=10, permessage-deflate",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            PerMessageDeflate(),
            "x-other, permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        ),
    ],
)
def test_server_answers_the_first_offer_within_its_settings(
    settings: PerMessageDeflate | None, offer: str, response: str
) -> None:
    server = ServerConnection(compression="deflate" if settings is None else settings)
    status, header = server_response(server, offer)
    assert (status, header) == (101, response)
    assert server.state is State.OPEN
    assert server.extensions[0][0] == "permessage-deflate"


@pytest.mark.parametrize(
    ("offer", "problem"),
    [
        ("permessage-deflate; foo", "unknown parameter foo"),
        ("permessage-deflate; server_max_window_bits", "needs a value"),
        ("permessage-deflate; server_max_window_bits=16", "from 8 to 15"),
        ("permessage-deflate; client_max_window_bits=7", "from 8 to 15"),
        ("permessage-deflate; client_max_window_bits=010", "from 8 to 15"),
        ("permessage-deflate; server_no_context_takeover=yes", "takes no value"),
        (
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "duplicate parameter client_no_context_takeover",
        ),
        (
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
            "duplicate parameter client_max_window_bits",
        ),
    ],
)
def test_server_declines_a_malformed_offer_and_opens_uncompressed(offer: str, problem: str) -> None:
    # RFC 7692 section 5: a server MUST decline an offer with an unknown,
    # duplicate or invalid parameter -- decline, not fail the handshake.
    server = ServerConnection()
    assert server_response(server, offer) == (101, None)
    assert server.state is State.OPEN
    assert server.extensions == ()
    # What made the offer invalid is the parser's verdict on it.
    with pytest.raises(NegotiationError, match=problem):
        _parse_params(parse_extension_list([offer])[0][1], offer=True)


def test_server_skips_a_malformed_offer_for_the_next_valid_one() -> None:
    server = ServerConnection()
    status, answer = server_response(
        server, "permessage-deflate; bar, permessage-deflate; server_max_window_bits=10"
    )
    assert status == 101
    assert answer is not None
    assert "server_max_window_bits=10" in answer


def test_server_with_compression_none_declines_deflate() -> None:
    server = ServerConnection(compression=None)
    assert server_response(server, "permessage-deflate") == (101, None)
    assert server.extensions == ()


def test_an_explicit_server_factory_replaces_the_compression_default() -> None:
    factory = ServerPerMessageDeflateFactory(PerMessageDeflate(server_no_context_takeover=True))
    server = ServerConnection(extensions=[factory])
    assert server_response(server, "permessage-deflate") == (
        101,
        "permessage-deflate; server_no_context_takeover",
    )


def test_server_factory_declines_when_no_offer_is_passed() -> None:
    assert ServerPerMessageDeflateFactory().negotiate([]) is None


def test_server_and_client_agree_on_every_parameter_combination() -> None:
    # For each combination the two sides derive mirror-image extensions.
    for server_bits in (None, 8, 9, 12, 15):
        for client_bits in (None, 8, 11, 15):
            for snct in (False, True):
                for cnct in (False, True):
                    settings = PerMessageDeflate(server_bits, client_bits, snct, cnct)
                    client, server = connect(
                        {"compression": settings}, {"compression": PerMessageDeflate()}
                    )
                    c, s = deflate_of(client), deflate_of(server)
                    assert c.local_max_window_bits == s.remote_max_window_bits
                    assert c.remote_max_window_bits == s.local_max_window_bits
                    assert c.local_no_context_takeover == s.remote_no_context_takeover == cnct
                    assert c.remote_no_context_takeover == s.local_no_context_takeover == snct
                    assert c.remote_max_window_bits == (server_bits or 15)
                    assert c.local_max_window_bits == (client_bits or 15)


# ---------------------------------------------------------------- compressing


def test_rsv1_marks_the_first_frame_of_a_compressed_message_only() -> None:
    client, server = connect()
    server.send_text("a" * 300, final=False)
    server.send_text("b" * 300, final=False)
    server.send_text("c" * 300)
    frames = frames_of(server.data_to_send())
    assert [(f.opcode, f.rsv1, f.fin) for f in frames] == [
        (1, True, False),
        (0, False, False),
        (0, False, True),
    ]
    [message] = client.receive_data(b"".join(f.serialize() for f in frames))
    assert message == Message("a" * 300 + "b" * 300 + "c" * 300)


def test_messages_below_the_threshold_are_sent_uncompressed() -> None:
    _client, server = connect(server_kw={"compression": PerMessageDeflate(threshold=100)})
    server.send_binary(b"x" * 99)
    server.send_binary(b"x" * 100)
    small, large = frames_of(server.data_to_send())
    assert (small.rsv1, small.payload) == (False, b"x" * 99)
    assert large.rsv1
    assert len(large.payload) < 100


def test_a_fragmented_message_is_compressed_even_if_its_first_fragment_is_small() -> None:
    client, server = connect()
    server.send_text("a", final=False)
    server.send_text("")
    frames = frames_of(server.data_to_send())
    assert frames[0].rsv1
    assert client.receive_data(b"".join(f.serialize() for f in frames)) == [Message("a")]


def test_compressed_payloads_end_without_the_empty_block_tail() -> None:
    _client, server = connect(server_kw={"compression": PerMessageDeflate(threshold=0)})
    for size in (0, 1, 1000, 100_000):
        server.send_binary(os.urandom(size))
        [frame] = frames_of(server.data_to_send())
        assert frame.rsv1
        assert not frame.payload.endswith(b"\x00\x00\xff\xff")


def test_empty_fragments_of_a_compressed_message_decode() -> None:
    client, server = connect()
    server.send_binary(b"x" * 200, final=False)
    server.send_binary(b"", final=False)
    server.send_binary(b"")
    server.send_binary(b"y" * 200)
    messages = client.receive_data(server.data_to_send())
    assert messages == [Message(b"x" * 200), Message(b"y" * 200)]


def test_context_takeover_makes_a_repeated_message_smaller() -> None:
    client, server = connect()
    text = "".join(f"{i:x}" for i in range(400))
    sizes = []
    for _ in range(3):
        server.send_text(text)
        out = server.data_to_send()
        sizes.append(len(out))
        assert client.receive_data(out) == [Message(text)]
    assert sizes[1] < sizes[0] // 4
    assert sizes[2] < sizes[0] // 4


@pytest.mark.parametrize("side", ["server", "client"])
def test_no_context_takeover_compresses_each_message_alone(side: str) -> None:
    settings = PerMessageDeflate(
        server_no_context_takeover=side == "server", client_no_context_takeover=side == "client"
    )
    client, server = connect({"compression": settings}, {"compression": settings})
    sender, receiver = (server, client) if side == "server" else (client, server)
    text = "".join(f"{i:x}" for i in range(400))
    sizes = []
    for _ in range(3):
        sender.send_text(text)
        out = sender.data_to_send()
        sizes.append(len(out))
        assert receiver.receive_data(out) == [Message(text)]
    assert sizes[0] == sizes[1] == sizes[2]
    # The receiver drops its decompressor between messages.
    assert deflate_of(receiver)._decoder is None


def test_a_window_of_8_bits_yields_data_an_8_bit_inflater_accepts() -> None:
    # zlib refuses raw deflate with an 8-bit window; sansws compresses with
    # distance-1 matches only, which any window accepts.
    client, _server = connect(
        {"compression": PerMessageDeflate(client_max_window_bits=8)},
        {"compression": PerMessageDeflate()},
    )
    assert deflate_of(client).local_max_window_bits == 8
    # Repeats at a distance of 300 bytes: a 9-bit window would use them.
    block = os.urandom(300)
    data = block * 20 + b"\x00" * 5000
    client.send_binary(data)
    [frame] = frames_of(client.data_to_send())
    strict = zlib.decompressobj(wbits=-8)
    assert strict.decompress(frame.payload + b"\x00\x00\xff\xff") == data
    assert len(frame.payload) < len(data)


SIZES = [0, 1, 125, 126, 127, 128, 1000, 65535, 65536, 100_000, MiB]


def payload_of(size: int, kind: str) -> str | bytes:
    if kind == "text":
        words = ("alpha", "béta", "γάμμα", "дельта", "😀", "epsilon")
        text = " ".join(words[i % len(words)] for i in range(size // 6 + 1))
        return text[:size]
    # Half random, half repetitive: both compressible and incompressible runs.
    return (os.urandom(size // 2) + b"0123456789abcdef" * (size // 32 + 1))[:size]


@pytest.mark.parametrize("kind", ["text", "binary"])
@pytest.mark.parametrize(
    "settings",
    [
        PerMessageDeflate(threshold=0),
        PerMessageDeflate(8, 8, threshold=0),
        PerMessageDeflate(9, 10, True, True, level=1, memory_level=1),
        PerMessageDeflate(15, 15, level=9, memory_level=9),
    ],
    ids=["default", "bits8", "small-nct", "large"],
)
def test_messages_of_0_bytes_to_1_mib_round_trip_in_both_directions(
    kind: str, settings: PerMessageDeflate
) -> None:
    client, server = connect(
        {"compression": settings, "max_message_size": None},
        {"compression": settings, "max_message_size": None},
    )
    for size in SIZES:
        data = payload_of(size, kind)
        for sender, receiver in ((client, server), (server, client)):
            if isinstance(data, str):
                sender.send_text(data)
            else:
                sender.send_binary(data)
            assert receiver.receive_data(sender.data_to_send()) == [Message(data)]


def test_a_compressed_message_decodes_whatever_the_chunking() -> None:
    text = "chunked " * 200
    for step in (1, 2, 3, 7, 64):
        c, s = connect()
        s.send_text(text[:500], final=False)
        s.send_text(text[500:])
        wire = s.data_to_send()
        events = []
        for i in range(0, len(wire), step):
            events.extend(c.receive_data(wire[i : i + step]))
        assert events == [Message(text)], step


def test_streamed_compressed_messages_arrive_in_chunks() -> None:
    client, server = connect(client_kw={"stream_messages": True})
    data = os.urandom(50_000)
    server.send_binary(data)
    wire = server.data_to_send()
    chunks: list[Any] = []
    for i in range(0, len(wire), 8192):
        chunks.extend(client.receive_data(wire[i : i + 8192]))
    assert len(chunks) > 1
    assert all(isinstance(chunk, MessageChunk) for chunk in chunks)
    assert b"".join(chunk.data for chunk in chunks) == data
    assert [chunk.final for chunk in chunks][-1]


def test_uncompressed_messages_are_accepted_when_deflate_is_negotiated() -> None:
    client, _server = connect()
    assert client.receive_data(compressed_frame(b"plain", rsv1=False)) == [Message("plain")]


# ---------------------------------------------------------------- RFC examples


def test_the_examples_of_rfc_7692_section_7_2_3_decode_to_hello() -> None:
    client, _ = connect(client_kw={"compression": PerMessageDeflate()})
    hello = Message("Hello")
    # 7.2.3.1: one compressed message, then the same split over two frames.
    assert client.receive_data(bytes.fromhex("c107f248cdc9c90700")) == [hello]
    assert client.receive_data(bytes.fromhex("4103f248cd80 04c9c90700".replace(" ", ""))) == [hello]
    # 7.2.3.2: the second "Hello" refers to the first one's window.
    client, _ = connect()
    assert client.receive_data(bytes.fromhex("c107f248cdc9c90700")) == [hello]
    assert client.receive_data(bytes.fromhex("c105f200110000")) == [hello]
    # 7.2.3.3: a stored (uncompressed) DEFLATE block.
    assert client.receive_data(bytes.fromhex("c10b0005 00faff48656c6c6f00".replace(" ", ""))) == [
        hello
    ]
    # 7.2.3.4: a block with BFINAL set, followed by a byte that is ignored.
    assert client.receive_data(bytes.fromhex("c108f348cdc9c9070000")) == [hello]
    # 7.2.3.5: two DEFLATE blocks in one message.
    assert client.receive_data(bytes.fromhex("c10df24805000000ffffcac9c90700")) == [hello]
    # After the final block, the next message starts afresh.
    assert client.receive_data(bytes.fromhex("c107f248cdc9c90700")) == [hello]
    assert client.state is State.OPEN


def test_data_after_a_final_block_is_ignored_across_fragments() -> None:
    client, _ = connect()
    bfinal = bytes.fromhex("f348cdc9c90700")
    wire = (
        compressed_frame(bfinal, fin=False)
        + compressed_frame(b"garbage that is never inflated", fin=False, rsv1=False, opcode=0)
        + compressed_frame(b"more", rsv1=False, opcode=0)
    )
    assert client.receive_data(wire) == [Message("Hello")]
    assert client.receive_data(bytes.fromhex("c107f248cdc9c90700")) == [Message("Hello")]


# ---------------------------------------------------------------- bad input


def test_invalid_compressed_data_fails_the_connection_with_1007() -> None:
    client, _ = connect()
    [closed] = client.receive_data(compressed_frame(b"\xff\xff\xff\xff"))
    assert isinstance(closed, Closed)
    assert (closed.code, closed.reason) == (1007, "invalid compressed data")
    assert isinstance(closed.error, ProtocolError)
    assert client.state is State.CLOSED


def test_rsv1_on_a_continuation_frame_fails_with_1002() -> None:
    client, _ = connect()
    wire = compressed_frame(raw_deflate(b"ab"), fin=False) + compressed_frame(
        b"", rsv1=True, opcode=0
    )
    [closed] = client.receive_data(wire)
    assert isinstance(closed, Closed)
    assert closed.code == 1002


def test_rsv2_fails_with_1002_even_with_deflate() -> None:
    client, _ = connect()
    [closed] = client.receive_data(b"\xa1\x00")
    assert isinstance(closed, Closed)
    assert closed.code == 1002


def test_rsv1_on_a_control_frame_fails_with_1002() -> None:
    client, _ = connect()
    [closed] = client.receive_data(b"\xc9\x00")
    assert isinstance(closed, Closed)
    assert closed.code == 1002


def test_rsv1_without_deflate_fails_with_1002() -> None:
    client, _ = connect({"compression": None}, {"compression": None})
    [closed] = client.receive_data(compressed_frame(raw_deflate(b"hello")))
    assert isinstance(closed, Closed)
    assert closed.code == 1002


def test_compressed_text_that_is_not_utf8_fails_with_1007() -> None:
    client, _ = connect()
    [closed] = client.receive_data(compressed_frame(raw_deflate(b"\xff\xfe")))
    assert isinstance(closed, Closed)
    assert closed.code == 1007


# ---------------------------------------------------------------- bounds


@pytest.mark.parametrize("split", [False, True])
def test_the_size_limit_applies_to_the_decompressed_message_exactly(split: bool) -> None:
    limit = 10_000
    for size, ok in ((limit, True), (limit + 1, False)):
        client, _ = connect(client_kw={"max_message_size": limit})
        data = b"z" * size
        payload = raw_deflate(data)
        if split:
            wire = compressed_frame(payload[:3], fin=False, opcode=2) + compressed_frame(
                payload[3:], rsv1=False, opcode=0
            )
        else:
            wire = compressed_frame(payload, opcode=2)
        events = client.receive_data(wire)
        if ok:
            assert events == [Message(data)]
        else:
            [closed] = events
            assert isinstance(closed, Closed)
            assert closed.code == 1009
            assert isinstance(closed.error, PayloadTooBig)
            assert closed.error.max_size == limit
            assert closed.error.size > limit


def test_the_size_limit_counts_every_fragment_of_a_compressed_message() -> None:
    client, _ = connect(client_kw={"max_message_size": 1000})
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    pieces = [compressor.compress(b"q" * 600) + compressor.flush(zlib.Z_SYNC_FLUSH)]
    pieces.append(compressor.compress(b"q" * 600) + compressor.flush(zlib.Z_SYNC_FLUSH))
    wire = compressed_frame(pieces[0], fin=False, opcode=2) + compressed_frame(
        pieces[1][:-4], rsv1=False, opcode=0
    )
    [closed] = client.receive_data(wire)
    assert isinstance(closed, Closed)
    assert closed.code == 1009
    assert isinstance(closed.error, PayloadTooBig)
    assert closed.error.size > 1000


def bomb(decompressed: int) -> bytes:
    """A raw DEFLATE stream of zeros, without the tail: about 1 KiB per MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(b"\x00" * MiB) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # Once the window holds zeros, a MiB of zeros is the same bytes each time.
    repeat = compressor.compress(b"\x00" * MiB) + compressor.flush(zlib.Z_SYNC_FLUSH)
    again = compressor.compress(b"\x00" * MiB) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert repeat == again
    return first + repeat * (decompressed // MiB - 1)


@pytest.mark.parametrize("chunk", [64 * 1024, None])
def test_a_decompression_bomb_fails_with_1009_allocating_about_the_limit(
    chunk: int | None,
) -> None:
    limit = MiB
    payload = bomb(1 << 30)  # 1 GiB of zeros in about 1 MiB
    assert len(payload) < 1.1 * MiB
    client, _ = connect(client_kw={"max_message_size": limit})
    wire = compressed_frame(payload, opcode=2)
    pieces = [wire] if chunk is None else [wire[i : i + chunk] for i in range(0, len(wire), chunk)]
    events: list[Any] = []
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        for piece in pieces:
            events.extend(client.receive_data(piece))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [closed] = events
    assert isinstance(closed, Closed)
    assert closed.code == 1009
    # The limit, one 64 KiB step of zlib output and input, zlib's state, and
    # the received piece, which the core slices out of its input: never
    # anything like the 1 GiB the payload inflates to.
    piece_size = len(pieces[0])
    assert peak < limit + piece_size + 256 * 1024, peak


def test_streaming_does_not_lift_the_size_limit_on_compressed_messages() -> None:
    client, _ = connect(client_kw={"max_message_size": MiB, "stream_messages": True})
    events = client.receive_data(compressed_frame(bomb(64 * MiB), opcode=2))
    assert isinstance(events[-1], Closed)
    assert events[-1].code == 1009
    assert sum(len(e.data) for e in events if isinstance(e, MessageChunk)) <= MiB


def test_without_a_size_limit_a_large_compressed_message_is_delivered() -> None:
    client, _ = connect(client_kw={"max_message_size": None})
    [message] = client.receive_data(compressed_frame(bomb(8 * MiB), opcode=2))
    assert message == Message(b"\x00" * (8 * MiB))


# ---------------------------------------------------------------- extension unit


def make_extension(**kwargs: Any) -> PerMessageDeflateExtension:
    options: dict[str, Any] = {
        "local_no_context_takeover": False,
        "remote_no_context_takeover": False,
        "local_max_window_bits": 15,
        "remote_max_window_bits": 15,
        "settings": PerMessageDeflate(threshold=0),
    }
    options.update(kwargs)
    return PerMessageDeflateExtension((), **options)


def test_decode_with_an_exhausted_budget_refuses_any_output() -> None:
    extension = make_extension()
    with pytest.raises(PayloadTooBig):
        extension.decode(raw_deflate(b"a"), 0x40, True, 0)
    assert make_extension().decode(raw_deflate(b""), 0x40, True, 0) == b""


def test_decode_of_a_large_final_piece_checks_the_budget_before_the_tail() -> None:
    data = os.urandom(4000)
    payload = raw_deflate(data)
    assert len(payload) >= 2048  # takes the two-call path
    assert make_extension().decode(payload, 0x40, True, 4000) == data
    with pytest.raises(PayloadTooBig):
        make_extension().decode(payload, 0x40, True, 3999)


def test_extensions_describe_what_was_negotiated() -> None:
    client, _server = connect()
    assert repr(deflate_of(client)) == (
        "PerMessageDeflateExtension('permessage-deflate; server_max_window_bits=12')"
    )
    assert "PerMessageDeflate(" in repr(ServerPerMessageDeflateFactory())
    assert "PerMessageDeflate(" in repr(ClientPerMessageDeflateFactory())
