"""Frames survive serializing and parsing, alone and through a connection's
receive path; a connection reports every valid stream as labelled and fails
every malformed one with its labelled close code (RFC 6455 section 5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inmemory import describe, open_receiver, parse_all

from sansws import State
from sansws.errors import ProtocolError
from sansws.events import Closed, Event, Message, Ping, Pong
from sansws.frames import (
    Frame,
    Opcode,
    parse_close_payload,
    parse_frame,
    serialize_close_payload,
)
from sansws.testing import (
    VIOLATIONS,
    close_payloads,
    frame_streams,
    frames,
    malformed_streams,
    masking_keys,
)

# Every property holds however the connections were opened (inmemory.OPENING).
pytestmark = pytest.mark.usefixtures("opening")

ROLES = pytest.mark.parametrize("masked", [True, False], ids=["server", "client"])

# Any header the format can express, valid or not: parse_frame does not judge.
any_frames = st.builds(
    Frame,
    opcode=st.integers(0, 15),
    payload=st.binary(max_size=300),
    fin=st.booleans(),
    rsv1=st.booleans(),
    rsv2=st.booleans(),
    rsv3=st.booleans(),
)
keys = st.none() | masking_keys()


@given(frames() | any_frames, keys)
def test_parse_frame_inverts_serialize_frame_for_every_frame_shape(
    frame: Frame, key: bytes | None
) -> None:
    data = frame.serialize(key)
    assert parse_frame(data) == (frame, key is not None, len(data))


@given(frames(), keys)
def test_serialize_uses_the_shortest_length_encoding(frame: Frame, key: bytes | None) -> None:
    # RFC 6455 section 5.2: "the minimal number of bytes MUST be used to
    # encode the length".
    length = len(frame.payload)
    header = 2 if length < 126 else 4 if length < 65536 else 10
    assert len(frame.serialize(key)) == header + (4 if key else 0) + length


@given(frames(max_size=1000), keys, st.data())
def test_parse_frame_needs_the_whole_frame_and_only_it(
    frame: Frame, key: bytes | None, data: st.DataObject
) -> None:
    wire = frame.serialize(key)
    cut = data.draw(st.integers(0, len(wire) - 1), label="cut")
    assert parse_frame(wire[:cut]) is None
    more = data.draw(st.binary(max_size=20), label="more")
    assert parse_frame(wire + more) == (frame, key is not None, len(wire))


def in_context(frame: Frame) -> tuple[list[Frame], list[Event]]:
    """Frames that make ``frame`` valid where it stands, and the events a
    receiver reports for them."""
    if frame.opcode == Opcode.CLOSE:
        code, reason = parse_close_payload(frame.payload)
        return [frame], [Closed(code, reason, clean=True)]
    if frame.opcode == Opcode.PING:
        return [frame], [Ping(frame.payload)]
    if frame.opcode == Opcode.PONG:
        return [frame], [Pong(frame.payload)]
    # A continuation continues an empty binary fragment; a fragment that is
    # not final is finished by an empty continuation.
    before = [Frame(Opcode.BINARY, b"", fin=False)] if frame.opcode == Opcode.CONTINUATION else []
    after = [] if frame.fin else [Frame(Opcode.CONTINUATION, b"")]
    text = frame.opcode == Opcode.TEXT
    message = Message(frame.payload.decode() if text else frame.payload)
    return [*before, frame, *after], [message]


@ROLES
@given(frame=frames(), data=st.data())
def test_every_frame_shape_is_received_as_sent(
    masked: bool, frame: Frame, data: st.DataObject
) -> None:
    connection = open_receiver(masked)
    sequence, expected = in_context(frame)
    wire = b"".join(f.serialize(data.draw(masking_keys()) if masked else None) for f in sequence)
    events = connection.receive_data(wire)
    assert [describe(e) for e in events] == [describe(e) for e in expected]


def answers(events: tuple[Event, ...] | list[Event]) -> list[Frame]:
    """The Pongs a receiver owes for these events (RFC 6455 section 5.5.2)."""
    return [Frame(Opcode.PONG, event.data) for event in events if isinstance(event, Ping)]


@ROLES
@given(data=st.data())
def test_a_valid_stream_is_reported_as_labelled_and_answered(
    masked: bool, data: st.DataObject
) -> None:
    stream = data.draw(frame_streams(masked=masked))
    connection = open_receiver(masked)
    expected: list[Event] = list(stream.events)
    replies = answers(stream.events)
    if stream.close is not None:
        code, reason = stream.close
        expected.append(Closed(code, reason, clean=True))
        # The Close is echoed with its code and reason (RFC 6455 section 5.5.1).
        echo = b"" if code == 1005 else serialize_close_payload(code, reason)
        replies.append(Frame(Opcode.CLOSE, echo))
    events = connection.receive_data(stream.data)
    assert [describe(e) for e in events] == [describe(e) for e in expected]
    output = parse_all(connection.data_to_send())
    assert [frame for frame, _ in output] == replies
    # Servers never mask, clients always do (RFC 6455 section 5.1).
    assert all(was_masked is not masked for _, was_masked in output)
    assert connection.state is (State.OPEN if stream.close is None else State.CLOSED)
    # After a clean close, the server closes the transport first (RFC 6455
    # section 7.1.1); the client waits for it.
    assert connection.should_close_transport is (stream.close is not None and masked)


@pytest.mark.parametrize("violation", VIOLATIONS)
@ROLES
@given(data=st.data())
def test_a_malformed_stream_fails_with_its_close_code(
    violation: str, masked: bool, data: st.DataObject
) -> None:
    stream = data.draw(malformed_streams(violations=[violation], masked=masked))
    connection = open_receiver(masked)
    *before, closed = connection.receive_data(stream.data)
    assert before == list(stream.events)
    assert isinstance(closed, Closed)
    assert (closed.code, closed.clean) == (stream.fail_code, False), stream.rule
    assert isinstance(closed.error, ProtocolError)
    assert closed.error.code == stream.fail_code
    # Fail the WebSocket Connection (RFC 6455 section 7.1.7): answer what
    # came before, send a Close with the code, close the transport at once.
    *replies, close = (frame for frame, _ in parse_all(connection.data_to_send()))
    assert replies == answers(stream.events)
    assert close.opcode == Opcode.CLOSE
    assert parse_close_payload(close.payload)[0] == stream.fail_code
    assert connection.state is State.CLOSED
    assert connection.should_close_transport


@ROLES
@given(data=st.data())
def test_after_sending_a_close_a_connection_still_receives_and_answers_pings(
    masked: bool, data: st.DataObject
) -> None:
    # RFC 6455 section 5.5.2: a Ping is answered "unless it already received
    # a Close frame"; having sent one does not count. Messages still arrive
    # while CLOSING: the peer may have sent them before it saw the Close, or
    # finish its current message first (section 5.5.1).
    stream = data.draw(frame_streams(masked=masked))
    connection = open_receiver(masked)
    connection.close(1001, "bye")
    events = connection.receive_data(stream.data)
    expected: list[Event] = list(stream.events)
    if stream.close is not None:
        expected.append(Closed(*stream.close, clean=True))
    assert [describe(e) for e in events] == [describe(e) for e in expected]
    close, *replies = (frame for frame, _ in parse_all(connection.data_to_send()))
    assert parse_close_payload(close.payload) == (1001, "bye")
    # No second Close: the one sent already answers the peer's.
    assert replies == answers(stream.events)
    assert connection.state is (State.CLOSING if stream.close is None else State.CLOSED)


@given(close_payloads())
def test_a_valid_close_payload_parses_into_what_it_was_built_from(payload: bytes) -> None:
    code, reason = parse_close_payload(payload)
    assert serialize_close_payload(None if code == 1005 else code, reason) == payload
