"""The connection's fast paths behave exactly like the plain ones.

Payloads reach the connection whole or in pieces (a frame cut by the reads),
short (copied) or long (unmasked from a view of the received bytes), text or
binary, masked or not; text is unmasked and decoded in one pass when it can
be. Every test here runs twice: with the C accelerator when it was built,
and with the pure-Python fallback forced, so both stay correct on their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from core_harness import MASK
from core_harness import open_pair as harness_pair

from sansws import (
    ClientConnection,
    Closed,
    Connection,
    Event,
    Message,
    MessageChunk,
    ServerConnection,
    connection,
    frames,
)
from sansws.extensions.base import (
    ClientExtensionFactory,
    Extension,
    ExtensionParams,
    ServerExtensionFactory,
)
from sansws.frames import Frame, Opcode, parse_frame, serialize_frame
from sansws.headers import ExtensionOffer

IMPLEMENTATIONS = ["python", *(["c"] if frames.HAS_SPEEDUPS else [])]


@pytest.fixture(params=IMPLEMENTATIONS, autouse=True)
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the C functions, or with the fallback forced."""
    name: str = request.param
    if name == "python":
        monkeypatch.setattr(connection, "apply_mask", frames.apply_mask_python)
        monkeypatch.setattr(connection, "build_frame", frames.build_frame_python)
        monkeypatch.setattr(connection, "decode_text", frames.decode_text_python)
    else:
        used = vars(connection)
        assert used["decode_text"] is not frames.decode_text_python
        assert used["build_frame"] is not frames.build_frame_python
        assert used["apply_mask"] is not frames.apply_mask_python
    return name


def open_pair(
    extensions: tuple[ClientExtensionFactory, ServerExtensionFactory] | None = None,
    **options: Any,
) -> tuple[ClientConnection, ServerConnection]:
    """An open client and server, timers and compression off, with
    ``extensions`` negotiated if given."""
    client_options, server_options = dict(options), dict(options)
    if extensions is not None:
        client_options["extensions"] = [extensions[0]]
        server_options["extensions"] = [extensions[1]]
    return harness_pair(client_options, server_options)


def feed(conn: Connection, wire: bytes, cuts: Sequence[int]) -> list[list[Event]]:
    """Feed ``wire`` cut at ``cuts``; the events each read returned."""
    bounds = [0, *cuts, len(wire)]
    return [conn.receive_data(wire[a:b]) for a, b in itertools.pairwise(bounds) if b > a]


def reads(wire: bytes, size: int) -> list[int]:
    return list(range(size, len(wire), size))


def flat(batches: list[list[Event]]) -> list[Event]:
    return [event for batch in batches for event in batch]


def text_frame(payload: bytes, *, fin: bool = True, opcode: int = Opcode.TEXT) -> Frame:
    return Frame(opcode, payload, fin=fin)


# Characters of 1, 2, 3 and 4 bytes in UTF-8, and ASCII around them.
MIXED = "a\u00e9\u6771\U0001f600z" * 3 + " end"


# ---------------------------------------------------------------- UTF-8 in pieces


@pytest.mark.parametrize("client_sends", [True, False], ids=["masked", "unmasked"])
def test_text_cut_at_every_byte_arrives_whole(client_sends: bool) -> None:
    """RFC 6455 section 5.6: a text message is UTF-8 as a whole; the reads
    that carry it may cut a character anywhere."""
    client, server = open_pair()
    sender, receiver = (client, server) if client_sends else (server, client)
    sender.send_text(MIXED)
    wire = sender.data_to_send()
    for cut in range(1, len(wire)):
        assert flat(feed(receiver, wire, [cut])) == [Message(MIXED)], cut


def test_fragmented_text_cut_at_every_pair_of_bytes_arrives_whole() -> None:
    """Fragments may cut a character too (RFC 6455 section 5.4)."""
    _, server = open_pair()
    encoded = MIXED.encode()
    # Fragments cut inside the 4-byte character, then inside the 3-byte one.
    first, middle, last = encoded[:5], encoded[5:9], encoded[9:]
    wire = b"".join(
        [
            serialize_frame(Frame(Opcode.TEXT, first, fin=False), MASK),
            serialize_frame(Frame(Opcode.CONTINUATION, middle, fin=False), MASK),
            serialize_frame(Frame(Opcode.CONTINUATION, last), MASK),
        ]
    )
    for cuts in itertools.combinations(range(1, len(wire)), 2):
        assert flat(feed(server, wire, cuts)) == [Message(MIXED)], cuts


def test_streamed_text_never_splits_a_character() -> None:
    client, server = open_pair(stream_messages=True)
    text = MIXED * 300  # several KiB: pieces are decoded from views
    client.send_text(text)
    wire = client.data_to_send()
    for size in (1, 7, 333, 4096):
        if size == 1:
            wire_part = wire[:600]  # enough pieces, without taking long
            events = flat(feed(server, wire_part, reads(wire_part, 1)))
            events += server.receive_data(wire[600:])
        else:
            events = flat(feed(server, wire, reads(wire, size)))
        assert all(isinstance(e, MessageChunk) for e in events)
        chunks = [e for e in events if isinstance(e, MessageChunk)]
        assert "".join(str(c.data) for c in chunks) == text
        assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]


# ---------------------------------------------------------------- invalid UTF-8


INVALID = [
    # (bytes, index of the first byte that makes them invalid)
    (b"\xff", 0),
    (b"\x80", 0),
    (b"\xc0\xaf", 0),  # overlong "/"
    (b"\xe0\x80\xaf", 1),  # overlong "/"
    (b"\xed\xa0\x80", 1),  # surrogate U+D800
    (b"\xf4\x90\x80\x80", 1),  # above U+10FFFF
    (b"\xe2\x82\x41", 2),  # "A" where a continuation byte belongs
]


@pytest.mark.parametrize("client_sends", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("prefix", [0, 3, 2500, 70000], ids=lambda n: f"after {n} B")
@pytest.mark.parametrize(("bad", "where"), INVALID, ids=repr)
def test_invalid_utf8_fails_with_1007_as_soon_as_the_offending_byte_arrives(
    client_sends: bool, prefix: int, bad: bytes, where: int
) -> None:
    """The connection fails with 1007 (RFC 6455 section 8.1) on the read
    that brings the first byte that cannot be part of valid UTF-8, not at
    the end of the frame or message."""
    client, server = open_pair(max_message_size=None)
    receiver = server if client_sends else client
    payload = b"x" * prefix + bad + b"y" * 5000
    wire = serialize_frame(text_frame(payload), MASK if client_sends else None)
    header = len(wire) - len(payload)
    offending = header + prefix + where
    before = flat(feed(receiver, wire[:offending], reads(wire[:offending], 65536)))
    assert before == []
    (closed,) = receiver.receive_data(wire[offending : offending + 1])
    assert isinstance(closed, Closed)
    assert closed.code == 1007
    assert receiver.state is connection.CLOSED


@pytest.mark.parametrize("client_sends", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("size", [10, 3000], ids=["short", "long"])
def test_text_message_ending_inside_a_character_fails_with_1007(
    client_sends: bool, size: int
) -> None:
    client, server = open_pair()
    receiver = server if client_sends else client
    mask = MASK if client_sends else None
    cut = b"a" * size + "\u20ac".encode()[:2]
    whole = serialize_frame(text_frame(cut), mask)
    fragmented = serialize_frame(text_frame(cut, fin=False), mask) + serialize_frame(
        text_frame(b"", opcode=Opcode.CONTINUATION), mask
    )
    for wire in (whole, fragmented):
        for cuts in ([], [len(wire) - 1], reads(wire, 1000)):
            client, server = open_pair()
            receiver = server if client_sends else client
            events = flat(feed(receiver, wire, cuts))
            assert len(events) == 1
            assert isinstance(events[0], Closed)
            assert events[0].code == 1007


# ---------------------------------------------------------------- sizes and reads


SIZES = [0, 1, 125, 126, 2047, 2048, 2049, 65535, 65536, 65537, 200_001]


def payloads(size: int) -> Iterator[str | bytes]:
    yield ("ascii text " * (size // 11 + 1))[:size]
    mixed = (MIXED * (size // len(MIXED.encode()) + 1)).encode()[:size]
    yield mixed.decode(errors="ignore")
    yield bytes(i * 7 % 256 for i in range(size))


@pytest.mark.parametrize("client_sends", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("size", SIZES)
def test_messages_arrive_whole_whatever_their_size_and_the_reads(
    client_sends: bool, size: int
) -> None:
    client, server = open_pair(max_message_size=None)
    sender, receiver = (client, server) if client_sends else (server, client)
    for payload in payloads(size):
        send = sender.send_text if isinstance(payload, str) else sender.send_binary
        send(payload)  # type: ignore[arg-type]
        send(payload)  # type: ignore[arg-type]
        wire = sender.data_to_send()
        for read in (len(wire), 65536, 3001, 1000):
            # Two back-to-back frames: the second starts inside a read.
            events = flat(feed(receiver, wire, reads(wire, read)))
            assert events == [Message(payload), Message(payload)], (type(payload), read)


@pytest.mark.parametrize("size", [10, 5000, 100_000])
def test_fragmented_and_streamed_messages_keep_their_bytes(size: int) -> None:
    client, server = open_pair(stream_messages=True, max_message_size=None)
    data = bytes(range(256)) * (size // 256 + 1)
    client.send_binary(data[:size], final=False)
    client.send_binary(data[size : 2 * size])
    wire = client.data_to_send()
    events = flat(feed(server, wire, reads(wire, 4000)))
    pieces = [e.data for e in events if isinstance(e, MessageChunk) and isinstance(e.data, bytes)]
    assert len(pieces) == len(events)
    assert b"".join(pieces) == data[: 2 * size]


# ---------------------------------------------------------------- sending


@pytest.mark.parametrize("client_sends", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("length", [0, 125, 126, 65535, 65536])
def test_each_frame_is_queued_whole_with_the_shortest_length(
    client_sends: bool, length: int
) -> None:
    client, server = open_pair()
    sender = client if client_sends else server
    for text in (("x" * length), (MIXED * length)[:length]):
        sender.send_text(text)
        wire = sender.data_to_send()
        parsed = parse_frame(wire)
        assert parsed is not None
        frame, masked, consumed = parsed
        assert consumed == len(wire)
        assert masked is client_sends
        assert frame == Frame(Opcode.TEXT, text.encode())
        length_field = wire[1] & 0x7F
        encoded = len(text.encode())
        assert length_field == (encoded if encoded < 126 else 126 if encoded < 65536 else 127)


def test_text_that_cannot_be_encoded_raises_before_anything_changes() -> None:
    client, server = open_pair()
    client.send_text("ab", final=False)
    with pytest.raises(UnicodeEncodeError):
        client.send_text("lone \ud800 surrogate")
    with pytest.raises(UnicodeEncodeError):
        client.send_text("lone \udfff surrogate", final=False)
    # The fragmented message is still the one in progress, and can finish.
    client.send_text("cd")
    assert server.receive_data(client.data_to_send()) == [Message("abcd")]
    with pytest.raises(UnicodeEncodeError):
        server.send_text("\ud83d")
    assert server.data_to_send() == b""
    server.send_text("ok")
    assert client.receive_data(server.data_to_send()) == [Message("ok")]


# ---------------------------------------------------------------- extensions


class Identity(Extension):
    """An extension that marks messages with RSV1 and changes nothing else,
    recording what the connection hands it."""

    name = "x-identity"
    rsv_mask = 0x40

    def __init__(self) -> None:
        self.encoded: list[object] = []
        self.decoded: list[object] = []

    def negotiated(self) -> ExtensionOffer:
        return (self.name, ())

    def decode(self, data: bytes, rsv: int, final: bool, max_size: int | None) -> bytes:
        self.decoded.append(data)
        return data

    def encode(self, data: bytes, first: bool, final: bool) -> tuple[int, bytes]:
        self.encoded.append(data)
        return 0x40, data


class IdentityClient(ClientExtensionFactory):
    name = "x-identity"

    def __init__(self) -> None:
        self.extension = Identity()

    def offers(self) -> Sequence[ExtensionParams]:
        return [()]

    def accept(self, params: ExtensionParams) -> Extension:
        return self.extension


class IdentityServer(ServerExtensionFactory):
    name = "x-identity"

    def __init__(self) -> None:
        self.extension = Identity()

    def negotiate(self, offers: Sequence[ExtensionParams]) -> tuple[ExtensionParams, Extension]:
        return (), self.extension


@pytest.mark.parametrize("client_sends", [True, False], ids=["masked", "unmasked"])
def test_an_extension_sees_bytes_in_and_out_whatever_the_path(client_sends: bool) -> None:
    """Extensions transform bytes: text reaches them encoded, and payloads
    unmasked and copied out of the received data, piece by piece."""
    client_factory, server_factory = IdentityClient(), IdentityServer()
    client, server = open_pair((client_factory, server_factory), max_message_size=None)
    assert client.extensions == server.extensions == (("x-identity", ()),)
    sender, receiver = (client, server) if client_sends else (server, client)
    sent, received = (
        (client_factory.extension, server_factory.extension)
        if client_sends
        else (server_factory.extension, client_factory.extension)
    )
    messages: list[str | bytes] = [MIXED, "é" * 40000, b"\x00\xff" * 40000, ""]
    for message in messages:
        if isinstance(message, str):
            sender.send_text(message)
        else:
            sender.send_binary(message)
    wire = sender.data_to_send()
    assert wire[0] & 0x40  # the extension's bit went out
    events = flat(feed(receiver, wire, reads(wire, 65536)))
    assert events == [Message(m) for m in messages]
    assert sent.encoded == [m.encode() if isinstance(m, str) else m for m in messages]
    assert all(type(piece) is bytes for piece in sent.encoded + received.decoded)
    # A 80000-byte message cut by 65536-byte reads reaches decode in pieces.
    assert len(received.decoded) > len(messages)
