"""How bytes are split into reads never changes what a connection does: the
same stream fed whole or in any chunking, down to one byte at a time, gives
the same events, the same output (masking keys aside) and the same end."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inmemory import URL, describe, feed, join, open_receiver, outcome, parse_all

from sansws import ClientConnection, Connection, ServerConnection
from sansws.events import Accepted, Closed, Event, Message, MessageChunk, Request
from sansws.frames import Frame
from sansws.testing import (
    FrameStream,
    chunkings,
    frame_streams,
    handshake_requests,
    invalid_handshake_requests,
    malformed_streams,
)

# Every property holds however the connections were opened (inmemory.OPENING).
pytestmark = pytest.mark.usefixtures("opening")

ROLES = pytest.mark.parametrize("masked", [True, False], ids=["server", "client"])


def any_stream(masked: bool) -> st.SearchStrategy[FrameStream]:
    return frame_streams(masked=masked) | malformed_streams(masked=masked)


def result(connection: Connection, events: Iterable[object]) -> object:
    output: list[Frame] = [frame for frame, _ in parse_all(connection.data_to_send())]
    return [describe(event) for event in events], output, outcome(connection)


@ROLES
@given(data=st.data())
def test_any_chunking_of_a_frame_stream_gives_the_same_result(
    masked: bool, data: st.DataObject
) -> None:
    stream = data.draw(any_stream(masked), label="stream")
    chunks = data.draw(chunkings(stream.data), label="chunks")
    whole = open_receiver(masked)
    chunked = open_receiver(masked)
    assert result(chunked, feed(chunked, chunks)) == result(whole, feed(whole, [stream.data]))


def without_wording(described: object) -> object:
    """A described event or outcome with the wording of a handshake error
    left out.

    h11 rejects a request line that cannot be valid as soon as its first
    bytes arrive, in words that quote the line only if it arrived whole; the
    wording reaches the error and the 400 response's body. Only the wording
    depends on the reads, not what happens.
    """
    if isinstance(described, tuple) and described[0] is Closed:
        return described[:-1]
    return described


def response_head(output: bytes) -> object:
    head, _, _ = output.partition(b"\r\n\r\n")
    return [line for line in head.split(b"\r\n") if not line.startswith(b"Content-Length:")]


def serve(chunks: Iterable[bytes]) -> object:
    """Feed a server, accepting the request as soon as it is complete."""
    server = ServerConnection(compression=None)
    events: list[Event] = []
    for chunk in chunks:
        for event in server.receive_data(chunk):
            events.append(event)
            if isinstance(event, Request):
                events.extend(server.accept())
    output = server.data_to_send()
    if server.request is None:
        # Not HTTP at all: compare what does not depend on the wording.
        events_seen = [without_wording(describe(e)) for e in events]
        return events_seen, response_head(output), outcome(server)
    # A server does not mask: its output is compared byte for byte.
    return [describe(event) for event in events], output, outcome(server)


@given(data=st.data())
def test_any_chunking_of_a_request_and_frames_gives_the_server_the_same_result(
    data: st.DataObject,
) -> None:
    # Frames may follow the request in the same read, before the response.
    request = data.draw(handshake_requests() | invalid_handshake_requests(), label="request")
    stream = data.draw(any_stream(True), label="stream")
    wire = request.data + stream.data
    chunks = data.draw(chunkings(wire), label="chunks")
    assert serve(chunks) == serve([wire])


def split_like(data: bytes, chunks: list[bytes]) -> list[bytes]:
    pieces, pos = [], 0
    for chunk in chunks:
        pieces.append(data[pos : pos + len(chunk)])
        pos += len(chunk)
    assert pos == len(data)
    return pieces


def without_accept_hash(event: Event) -> object:
    # Each client has its own key, hence its own Sec-WebSocket-Accept.
    if isinstance(event, Accepted):
        headers = [(n, v) for n, v in event.headers if n.lower() != "sec-websocket-accept"]
        return (Accepted, event.subprotocol, event.extensions, headers)
    return event


@given(data=st.data())
def test_any_chunking_of_a_response_and_frames_gives_the_client_the_same_result(
    data: st.DataObject,
) -> None:
    # Frames may follow the 101 response in the same read.
    stream = data.draw(any_stream(False), label="stream")
    results = []
    chunks: list[bytes] | None = None
    for _ in range(2):
        client = ClientConnection(URL, compression=None)
        server = ServerConnection(compression=None)
        server.receive_data(client.data_to_send())
        server.accept()
        wire = server.data_to_send() + stream.data
        if chunks is None:
            pieces = [wire]
            chunks = data.draw(chunkings(wire), label="chunks")
        else:
            pieces = split_like(wire, chunks)
        events = [without_accept_hash(event) for event in feed(client, pieces)]
        results.append(result(client, events))
    assert results[0] == results[1]


def join_chunks(events: list[Event]) -> list[Event]:
    """Streamed events with each message's chunks joined into a Message; the
    chunks of a message that never completed are dropped."""
    joined: list[Event] = []
    parts: list[str | bytes] = []
    for event in events:
        if isinstance(event, MessageChunk):
            parts.append(event.data)
            if event.final:
                joined.append(Message(join(parts)))
                parts = []
        else:
            joined.append(event)
    return joined


@ROLES
@given(data=st.data())
def test_streamed_chunks_join_into_the_same_messages_in_any_chunking(
    masked: bool, data: st.DataObject
) -> None:
    stream = data.draw(any_stream(masked), label="stream")
    chunks = data.draw(chunkings(stream.data), label="chunks")
    assembled = open_receiver(masked)
    streamed = open_receiver(masked, stream_messages=True)
    expected = assembled.receive_data(stream.data)
    events = feed(streamed, chunks)
    assert [describe(e) for e in join_chunks(events)] == [describe(e) for e in expected]
    assert outcome(streamed) == outcome(assembled)
