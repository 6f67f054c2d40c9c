"""What a hostile peer can make the core hold is bounded: every limit has a
safe default, and hitting it ends the connection the documented way
(docs/limits.md). The message size and handshake limits are also tested in
test_limits.py and the handshake tests; this module covers memory and the
limits a peer reaches by trickling, fragmenting or never finishing."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansws import (
    ClientConnection,
    Closed,
    Message,
    Request,
    ServerConnection,
    State,
)
from sansws.errors import InvalidMessage, TooManyFragments
from sansws.frames import parse_close_payload, parse_frame, serialize_header
from sansws.handshake import HandshakeLimits, _HeadGuard, accept_key
from sansws.options import OPTIONS

KiB, MiB = 1 << 10, 1 << 20
MASK = b"\x00\x00\x00\x00"


def request_bytes(*headers: str, target: str = "/") -> bytes:
    lines = [
        f"GET {target} HTTP/1.1",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def open_server(**kwargs: Any) -> ServerConnection:
    server = ServerConnection(**kwargs)
    [request] = server.receive_data(request_bytes())
    assert isinstance(request, Request)
    server.accept()
    server.data_to_send()
    return server


def response_head(
    client: ClientConnection, *headers: str, status: str = "101 Switching Protocols"
) -> bytes:
    lines = [f"HTTP/1.1 {status}"]
    if status.startswith("101"):
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(client._handshake.key)}",
        ]
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def masked(
    opcode: int, payload: bytes = b"", *, fin: bool = True, length: int | None = None
) -> bytes:
    """A frame from a client, masked with a zero key; ``length`` overrides the
    announced length (the payload is then what follows the header)."""
    announced = len(payload) if length is None else length
    return serialize_header(fin, 0, opcode, announced, MASK) + payload


def close_code_sent(data: bytes) -> int | None:
    while data:
        parsed = parse_frame(data)
        assert parsed is not None
        frame, _masked, consumed = parsed
        if frame.opcode == 8:
            return parse_close_payload(frame.payload)[0]
        data = data[consumed:]
    return None


@contextmanager
def traced() -> Iterator[Callable[[], tuple[int, int]]]:
    """Measure memory allocated inside the block: yields a function giving
    (growth since the start, peak above the start)."""
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()

    def measure() -> tuple[int, int]:
        current, peak = tracemalloc.get_traced_memory()
        return current - start, peak - start

    try:
        yield measure
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------- defaults


def test_every_limit_has_a_safe_default() -> None:
    defaults = {name: option.default for name, option in OPTIONS.items()}
    assert defaults["max_message_size"] == MiB
    assert defaults["max_fragments"] == 4096
    assert defaults["max_header_line"] == 8190
    assert defaults["max_headers"] == 128
    assert defaults["max_body_size"] == 64 * KiB
    assert defaults["open_timeout"] == 10
    assert defaults["close_timeout"] == 10
    assert defaults["ping_timeout"] == 20
    assert defaults["max_queue"] == 16
    assert defaults["write_limit"] == 32 * KiB
    for connection in (ClientConnection("ws://a/"), ServerConnection()):
        assert connection.max_message_size == MiB
        assert (connection.open_timeout, connection.close_timeout) == (10, 10)


# ---------------------------------------------------------------- message size


@pytest.mark.parametrize("opcode", [1, 2])
def test_tiny_fragments_cost_little_more_memory_than_the_message(opcode: int) -> None:
    # 16 KiB in one-byte fragments: without merging, each byte would cost a
    # list slot and an object of about 40 bytes.
    size = 16 * KiB
    server = open_server(max_fragments=None)
    wire = masked(opcode, b"a", fin=False) + masked(0, b"a", fin=False) * (size - 2)
    pieces = [wire[i : i + 4096] for i in range(0, len(wire), 4096)]
    with traced() as measure:
        for piece in pieces:
            assert server.receive_data(piece) == []
        held, _peak = measure()
    assert held < 1.25 * size, held
    [message] = server.receive_data(masked(0, b"a"))
    assert message == Message("a" * size if opcode == 1 else b"a" * size)


def test_empty_fragments_hold_no_memory() -> None:
    server = open_server(max_fragments=None)
    assert server.receive_data(masked(2, b"", fin=False)) == []
    wire = masked(0, b"", fin=False) * 5000
    with traced() as measure:
        for _ in range(4):
            assert server.receive_data(wire) == []
        held, _peak = measure()
    assert held < 4 * KiB, held
    assert server.receive_data(masked(0, b"end")) == [Message(b"end")]


# ---------------------------------------------------------------- fragments


def fragmented(opcode: int, frames: int, piece: bytes = b"a") -> bytes:
    """One message from a client in ``frames`` frames, every other
    continuation frame empty."""
    middle = [masked(0, b"" if i % 2 else piece, fin=False) for i in range(frames - 2)]
    return masked(opcode, piece, fin=False) + b"".join(middle) + masked(0, piece)


@pytest.mark.parametrize("opcode", [1, 2])
def test_a_message_in_max_fragments_frames_is_delivered(opcode: int) -> None:
    server = open_server(max_fragments=8)
    events = server.receive_data(fragmented(opcode, 8) * 2)  # the count is per message
    payload = "a" * 5 if opcode == 1 else b"a" * 5
    assert events == [Message(payload), Message(payload)]


@pytest.mark.parametrize("opcode", [1, 2])
def test_one_frame_more_fails_with_1009_before_its_payload_is_read(opcode: int) -> None:
    server = open_server(max_fragments=8)
    wire = fragmented(opcode, 9)
    # Cut after the header of the ninth frame: its payload never arrives.
    events = server.receive_data(wire[: len(wire) - 1])
    [closed] = events
    assert isinstance(closed, Closed)
    assert closed.code == 1009
    assert closed.reason == "message in more than 8 fragments"
    assert isinstance(closed.error, TooManyFragments)
    assert (closed.error.fragments, closed.error.max_fragments) == (9, 8)
    assert close_code_sent(server.data_to_send()) == 1009
    assert server.state is State.CLOSED


def test_the_count_restarts_after_a_message_that_ends_with_an_empty_frame() -> None:
    server = open_server(max_fragments=3)
    message = masked(1, b"a", fin=False) + masked(0, b"b", fin=False) + masked(0, b"")
    assert server.receive_data(message * 3) == [Message("ab")] * 3


def test_empty_continuation_frames_count() -> None:
    server = open_server(max_fragments=3)
    wire = masked(2, b"", fin=False) + masked(0, b"", fin=False) * 3
    [closed] = server.receive_data(wire)
    assert isinstance(closed, Closed)
    assert closed.code == 1009


def test_control_frames_between_fragments_do_not_count() -> None:
    server = open_server(max_fragments=2)
    wire = masked(2, b"a", fin=False) + masked(9, b"p") * 5 + masked(0, b"b")
    events = server.receive_data(wire)
    assert events[-1] == Message(b"ab")
    assert len(events) == 6  # five Pings, then the message


def test_a_streamed_message_is_limited_too() -> None:
    server = open_server(max_fragments=4, stream_messages=True)
    events = server.receive_data(fragmented(2, 5))
    assert isinstance(events[-1], Closed)
    assert events[-1].code == 1009


def test_a_client_applies_the_limit_to_the_server_s_messages() -> None:
    client = ClientConnection("ws://example.com/", max_fragments=2)
    client.data_to_send()
    client.receive_data(response_head(client))
    frames = serialize_header(False, 0, 1, 1, None) + b"a"
    frames += (serialize_header(False, 0, 0, 1, None) + b"b") * 2
    [closed] = client.receive_data(frames)
    assert isinstance(closed, Closed)
    assert closed.code == 1009
    assert isinstance(closed.error, TooManyFragments)


def test_without_the_limit_any_number_of_fragments_is_accepted() -> None:
    server = open_server(max_fragments=None)
    events = server.receive_data(fragmented(2, 20_001))
    assert events == [Message(b"a" * 10_002)]


@pytest.mark.parametrize("value", [0, -1, 1.5, "8"])
def test_max_fragments_must_be_a_positive_int_or_none(value: object) -> None:
    with pytest.raises((TypeError, ValueError), match="max_fragments"):
        ServerConnection(max_fragments=value)


# ---------------------------------------------------------------- frames


def test_a_control_frame_longer_than_125_bytes_fails_with_1002_from_its_header() -> None:
    server = open_server()
    [closed] = server.receive_data(masked(9, length=126))
    assert isinstance(closed, Closed)
    assert closed.code == 1002


def test_a_partial_frame_header_is_all_the_core_buffers_between_frames() -> None:
    server = open_server()
    # A 64-bit length arriving a byte at a time, then a Ping likewise.
    wire = masked(2, b"z" * 70_000) + masked(9, b"p" * 125)
    events = []
    for i in range(len(wire)):
        events.extend(server.receive_data(wire[i : i + 1]))
        assert len(server._buf) <= 14 + 125
    assert [type(e).__name__ for e in events] == ["Message", "Ping"]


def test_a_huge_frame_is_processed_as_it_arrives_not_buffered_whole() -> None:
    server = open_server(max_message_size=None, stream_messages=True)
    server.receive_data(masked(2, length=1 << 40))  # a terabyte, announced
    chunk = b"\x00" * (64 * KiB)
    with traced() as measure:
        for _ in range(32):  # 2 MiB of it
            [event] = server.receive_data(chunk)
            assert event.data == chunk
        del event
        held, peak = measure()
    assert held < 16 * KiB, held
    assert peak < 4 * 64 * KiB, peak


# ---------------------------------------------------------------- handshake


def test_a_request_that_never_ends_is_refused_once_it_reaches_the_limits() -> None:
    server = ServerConnection(max_header_line=100, max_headers=10)
    events = []
    for _ in range(100):
        events.extend(server.receive_data(b"X-Endless: 1\r\n"))
        if events:
            break
    [closed] = events
    assert isinstance(closed, Closed)
    assert server.state is State.CLOSED


def test_early_data_before_accept_is_limited_to_1_mib() -> None:
    server = ServerConnection()
    [request] = server.receive_data(request_bytes())
    assert isinstance(request, Request)
    frame = masked(2, b"e" * 1000)
    for _ in range(MiB // len(frame)):
        assert server.receive_data(frame) == []
    [closed] = server.receive_data(frame)
    assert isinstance(closed, Closed)
    assert "too much data before the handshake was answered" in str(closed.error)
    assert server.data_to_send().startswith(b"HTTP/1.1 400 ")
    assert server.state is State.CLOSED


def test_early_data_arriving_with_the_request_is_limited_too() -> None:
    server = ServerConnection()
    [closed] = server.receive_data(request_bytes() + masked(2, b"e" * (MiB + 1)))
    assert isinstance(closed, Closed)
    assert isinstance(closed.error, InvalidMessage)
    assert server.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_early_data_within_the_limit_is_processed_after_accept() -> None:
    server = ServerConnection()
    [request] = server.receive_data(request_bytes() + masked(1, b"early"))
    assert isinstance(request, Request)
    assert server.receive_data(masked(1, b"later")) == []
    assert server.accept() == [Message("early"), Message("later")]


@given(
    lines=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=14),
    separator=st.sampled_from([b"\r\n", b"\n"]),
)
def test_the_head_limits_do_not_depend_on_how_the_bytes_arrive(
    lines: list[int], separator: bytes
) -> None:
    # One read (where whole small heads take a shortcut) or one byte at a
    # time: the same heads are refused.
    limits = HandshakeLimits(max_header_line=30, max_headers=10, max_body_size=0)
    head = separator.join(b"x" * n for n in lines) + separator + separator

    def refused(reads: list[bytes]) -> bool:
        guard = _HeadGuard(limits)
        try:
            for read in reads:
                guard.feed(read)
        except InvalidMessage:
            return True
        return False

    assert refused([head]) == refused([head[i : i + 1] for i in range(len(head))])
    too_long = any(n > limits.max_header_line for n in lines)
    too_many = len(lines) > limits.max_headers + 1
    assert refused([head]) == (too_long or too_many)
