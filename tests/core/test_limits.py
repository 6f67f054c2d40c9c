"""The message size limit: enforced as a message arrives (1009), never after
buffering it, and after decoding by an extension."""

from __future__ import annotations

import pytest
from core_harness import (
    URL,
    Reverse,
    ReverseClient,
    ReverseServer,
    assert_failed,
    client_frame,
    open_client,
    open_pair,
    open_server,
    parse_all,
    peer_frame,
)

from sansws import ClientConnection, ServerConnection
from sansws.errors import PayloadTooBig, ProtocolError
from sansws.events import Message, MessageChunk
from sansws.extensions.base import Extension, ExtensionParams
from sansws.frames import Opcode

Conn = ClientConnection | ServerConnection

MiB = 1 << 20


def header_only(conn: Conn, opcode: int, size: int, fin: bool = True) -> bytes:
    """The header of a frame announcing ``size`` payload bytes (and its
    masking key towards a server), without the payload."""
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        length = bytes([size])
    elif size < 65536:
        length = bytes([126]) + size.to_bytes(2, "big")
    else:
        length = bytes([127]) + size.to_bytes(8, "big")
    if isinstance(conn, ServerConnection):
        return bytes([first, 0x80 | length[0]]) + length[1:] + b"\x00\x00\x00\x00"
    return bytes([first]) + length


def test_default_max_message_size_is_1_mib() -> None:
    assert ClientConnection(URL).max_message_size == MiB
    assert ServerConnection().max_message_size == MiB


def test_message_of_exactly_max_message_size_is_accepted(conn: Conn) -> None:
    payload = b"\x00" * MiB
    assert conn.receive_data(peer_frame(conn, Opcode.BINARY, payload)) == [Message(payload)]


@pytest.mark.parametrize("opcode", [Opcode.TEXT, Opcode.BINARY])
def test_oversized_frame_fails_with_1009_on_its_header_alone(conn: Conn, opcode: int) -> None:
    # Only the header arrives: the connection fails before any payload is
    # buffered.
    events = conn.receive_data(header_only(conn, opcode, MiB + 1))
    closed = assert_failed(conn, events, 1009, PayloadTooBig)
    error = closed.error
    assert isinstance(error, PayloadTooBig)
    assert (error.size, error.max_size, error.code) == (MiB + 1, MiB, 1009)
    assert "message too big" in closed.reason


def test_a_64_bit_length_far_beyond_the_limit_fails_on_its_header(conn: Conn) -> None:
    events = conn.receive_data(header_only(conn, Opcode.BINARY, 1 << 62))
    assert_failed(conn, events, 1009, PayloadTooBig)


def test_fragmented_message_exceeding_the_limit_fails_at_the_crossing_fragment() -> None:
    client = open_client(max_message_size=1000)
    first = peer_frame(client, Opcode.BINARY, b"a" * 600, fin=False)
    assert client.receive_data(first) == []
    # The second fragment's header alone pushes the total past the limit.
    events = client.receive_data(header_only(client, Opcode.CONTINUATION, 401, fin=False))
    error = assert_failed(client, events, 1009, PayloadTooBig).error
    assert isinstance(error, PayloadTooBig)
    assert error.size == 1001


def test_fragments_adding_up_to_exactly_the_limit_are_accepted() -> None:
    server = open_server(max_message_size=1000)
    data = client_frame(Opcode.TEXT, b"a" * 600, fin=False) + client_frame(
        Opcode.CONTINUATION, b"b" * 400
    )
    assert server.receive_data(data) == [Message("a" * 600 + "b" * 400)]
    # The count starts again with each message.
    assert server.receive_data(data) == [Message("a" * 600 + "b" * 400)]


def test_max_message_size_none_disables_the_limit() -> None:
    client = open_client(max_message_size=None)
    payload = b"\x01" * (3 * MiB)
    assert client.receive_data(peer_frame(client, Opcode.BINARY, payload)) == [Message(payload)]


def test_max_message_size_zero_allows_only_empty_messages() -> None:
    client = open_client(max_message_size=0)
    assert client.receive_data(peer_frame(client, Opcode.TEXT)) == [Message("")]
    events = client.receive_data(peer_frame(client, Opcode.TEXT, b"x"))
    assert_failed(client, events, 1009, PayloadTooBig)


def test_negative_max_message_size_is_refused() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        ClientConnection(URL, max_message_size=-1)
    with pytest.raises(ValueError, match="max_message_size"):
        ServerConnection(max_message_size=-1)


def test_limit_applies_to_streamed_messages_too() -> None:
    client = open_client(max_message_size=100, stream_messages=True)
    data = peer_frame(client, Opcode.BINARY, b"a" * 60, fin=False)
    assert client.receive_data(data) == [MessageChunk(b"a" * 60, False)]
    events = client.receive_data(header_only(client, Opcode.CONTINUATION, 41))
    assert_failed(client, events, 1009, PayloadTooBig)


def test_control_frames_do_not_count_towards_the_message_size() -> None:
    client = open_client(max_message_size=10)
    data = (
        peer_frame(client, Opcode.TEXT, b"a" * 5, fin=False)
        + peer_frame(client, Opcode.PING, b"p" * 100)
        + peer_frame(client, Opcode.CONTINUATION, b"b" * 5)
    )
    assert client.receive_data(data)[-1] == Message("a" * 5 + "b" * 5)


# ---------------------------------------------------------------- after decoding


class Doubling(Reverse):
    """Decodes each byte into two, refusing output beyond ``max_size`` as a
    decompressor must."""

    def decode(self, data: bytes, rsv: int, final: bool, max_size: int | None) -> bytes:
        self.decoded.append((data, rsv, final, max_size))
        out = bytes(b for byte in data for b in (byte, byte))
        if max_size is not None and len(out) > max_size:
            raise PayloadTooBig(len(out), max_size)
        return out


class DoublingClient(ReverseClient):
    def accept(self, params: ExtensionParams) -> Extension:
        self.accepted = Doubling(params)
        return self.accepted


def doubling_client(max_message_size: int | None) -> tuple[ClientConnection, Doubling]:
    factory = DoublingClient()
    client, _ = open_pair(
        {"extensions": [factory], "max_message_size": max_message_size},
        {"extensions": [ReverseServer()]},
    )
    assert isinstance(factory.accepted, Doubling)
    return client, factory.accepted


def test_limit_applies_to_the_decoded_size_of_an_extension_message() -> None:
    client, extension = doubling_client(100)
    # 60 bytes on the wire are within the limit; decoded, they are 120.
    events = client.receive_data(peer_frame(client, Opcode.BINARY, b"z" * 60, rsv1=True))
    error = assert_failed(client, events, 1009, PayloadTooBig).error
    assert isinstance(error, PayloadTooBig)
    assert (error.size, error.max_size) == (120, 100)
    assert extension.decoded[0][3] == 100


def test_extension_is_told_how_much_the_message_may_still_grow() -> None:
    client, extension = doubling_client(100)
    data = peer_frame(client, Opcode.BINARY, b"a" * 20, fin=False, rsv1=True) + peer_frame(
        client, Opcode.CONTINUATION, b"b" * 20
    )
    assert client.receive_data(data) == [Message(b"a" * 40 + b"b" * 40)]
    assert [(rsv, final, limit) for _, rsv, final, limit in extension.decoded] == [
        (0x40, False, 100),
        (0x40, True, 60),
    ]


def test_extension_is_given_no_limit_when_there_is_none() -> None:
    client, extension = doubling_client(None)
    client.receive_data(peer_frame(client, Opcode.BINARY, b"a", rsv1=True))
    assert extension.decoded[0][3] is None


def test_extension_decoding_error_fails_with_its_code() -> None:
    class Broken(Reverse):
        def decode(self, data: bytes, rsv: int, final: bool, max_size: int | None) -> bytes:
            raise ProtocolError(1007, "cannot decode")

    class BrokenClient(ReverseClient):
        def accept(self, params: ExtensionParams) -> Extension:
            return Broken(params)

    client, _ = open_pair({"extensions": [BrokenClient()]}, {"extensions": [ReverseServer()]})
    events = client.receive_data(peer_frame(client, Opcode.TEXT, b"x", rsv1=True))
    closed = assert_failed(client, events, 1007, ProtocolError)
    assert closed.reason == "cannot decode"


def test_uncompressed_message_on_an_extension_connection_is_not_decoded() -> None:
    client, extension = doubling_client(100)
    assert client.receive_data(peer_frame(client, Opcode.BINARY, b"abc")) == [Message(b"abc")]
    assert extension.decoded == []


def test_long_failure_reason_is_cut_to_fit_a_close_frame_on_a_character_boundary() -> None:
    reason = "décodage impossible " * 10  # 200 characters, more bytes in UTF-8

    class Broken(Reverse):
        def decode(self, data: bytes, rsv: int, final: bool, max_size: int | None) -> bytes:
            raise ProtocolError(1007, reason)

    class BrokenClient(ReverseClient):
        def accept(self, params: ExtensionParams) -> Extension:
            return Broken(params)

    client, _ = open_pair({"extensions": [BrokenClient()]}, {"extensions": [ReverseServer()]})
    client.receive_data(peer_frame(client, Opcode.TEXT, b"x", rsv1=True))
    ((close, _),) = parse_all(client.data_to_send())
    assert len(close.payload) <= 125
    sent = close.payload[2:].decode()  # still valid UTF-8
    assert reason.startswith(sent)
    assert len(sent.encode()) > 120
    assert client.close_reason == reason  # the application sees it whole
