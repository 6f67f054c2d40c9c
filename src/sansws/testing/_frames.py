"""Strategies for frames and frame streams (RFC 6455 section 5)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hypothesis import strategies as st

from ..events import Message, Ping, Pong
from ..frames import (
    MAX_CONTROL_PAYLOAD,
    Frame,
    Opcode,
    serialize_close_payload,
    serialize_header,
)

__all__ = [
    "VIOLATIONS",
    "FrameStream",
    "close_payloads",
    "frame_streams",
    "frames",
    "malformed_streams",
    "masking_keys",
    "messages",
]

# Payload lengths around each switch of the length encoding (7, 16, 64 bits).
_LENGTH_BOUNDARIES = (0, 1, 125, 126, 127, 65535, 65536)
# Above this size a payload repeats a short drawn pattern: hypothesis cannot
# draw tens of kilobytes byte by byte, and the length encoding, not the
# content, is what large payloads are for.
_DRAWN_PAYLOAD_LIMIT = 512

_VALID_CLOSE_CODES = (*range(1000, 1004), *range(1007, 1015))
_MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2

# Byte sequences that are not UTF-8 wherever they appear.
_INVALID_UTF8 = (
    b"\x80",  # continuation byte without a lead byte
    b"\xbf",
    b"\xc0\x80",  # overlong encoding of U+0000
    b"\xc1\xbf",  # overlong
    b"\xe0\x80\xaf",  # overlong
    b"\xed\xa0\x80",  # UTF-16 surrogate U+D800
    b"\xed\xbf\xbf",  # UTF-16 surrogate U+DFFF
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xf5\x80\x80\x80",  # lead byte that never starts a character
    b"\xfe",
    b"\xff",
    b"\xc2A",  # lead byte followed by ASCII
    b"\xe2\x82A",  # truncated three-byte sequence followed by ASCII
)
# Byte sequences that are only invalid because nothing follows them.
_TRUNCATED_UTF8 = (b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98")

_RESERVED_OPCODES = (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)


def masking_keys() -> st.SearchStrategy[bytes]:
    """Four-byte masking keys (RFC 6455 section 5.3).

    Example::

        @given(frames(), masking_keys())
        def test_round_trip(frame, key):
            assert parse_frame(frame.serialize(key))[0] == frame
    """
    return st.binary(min_size=4, max_size=4)


def _payload_sizes(max_size: int) -> st.SearchStrategy[int]:
    boundaries = [size for size in _LENGTH_BOUNDARIES if size <= max_size]
    return st.one_of(
        st.sampled_from(boundaries),
        st.integers(0, min(max_size, 2 * MAX_CONTROL_PAYLOAD)),
        st.integers(0, max_size),
    )


def _binary_of_size(draw: st.DrawFn, size: int) -> bytes:
    if size <= _DRAWN_PAYLOAD_LIMIT:
        return draw(st.binary(min_size=size, max_size=size))
    pattern = draw(st.binary(min_size=1, max_size=64))
    return (pattern * (size // len(pattern) + 1))[:size]


def _utf8_of_size(draw: st.DrawFn, size: int) -> bytes:
    """Valid UTF-8 of exactly ``size`` bytes."""
    text = draw(st.text(max_size=min(size, 64)))
    raw = text.encode()
    if len(raw) > size:
        raw = raw[:size].decode(errors="ignore").encode()
    if raw:
        raw *= size // len(raw)
    return raw + b"x" * (size - len(raw))


@st.composite
def _close_payload(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 7)) == 0:
        return b""
    code = draw(st.one_of(st.sampled_from(_VALID_CLOSE_CODES), st.integers(3000, 4999)))
    return serialize_close_payload(code) + _utf8_of_size(
        draw, draw(st.integers(0, _MAX_CLOSE_REASON))
    )


def close_payloads() -> st.SearchStrategy[bytes]:
    """Valid Close frame payloads: empty, or a close code that may be sent
    (1000-1003, 1007-1014, 3000-4999) and a UTF-8 reason, 125 bytes at most.

    Example::

        @given(close_payloads())
        def test_close_payloads_parse(payload):
            parse_close_payload(payload)  # never raises
    """
    return _close_payload()


@st.composite
def _frame(draw: st.DrawFn, opcodes: tuple[Opcode, ...], max_size: int) -> Frame:
    opcode = draw(st.sampled_from(opcodes))
    if opcode == Opcode.CLOSE:
        return Frame(opcode, draw(_close_payload()))
    if opcode in (Opcode.PING, Opcode.PONG):
        return Frame(opcode, draw(st.binary(max_size=MAX_CONTROL_PAYLOAD)))
    size = draw(_payload_sizes(max_size))
    text = opcode == Opcode.TEXT
    payload = _utf8_of_size(draw, size) if text else _binary_of_size(draw, size)
    return Frame(opcode, payload, fin=draw(st.booleans()))


def frames(
    *, opcodes: Iterable[int] = tuple(Opcode), max_size: int = 70_000
) -> st.SearchStrategy[Frame]:
    """Well-formed single frames of every shape, as :class:`~sansws.frames.Frame`.

    Each frame is valid on its own (RFC 6455 sections 5.2 and 5.5): no
    reserved bits; control frames are final and carry at most 125 bytes, a
    Close frame a valid code and UTF-8 reason; a final text frame carries
    UTF-8. Whether a frame fits where it appears in a stream (a continuation
    needs a message to continue) is for :func:`frame_streams` to get right.

    Data frame payloads range from empty to ``max_size`` bytes and favour the
    lengths where the encoding switches from 7 to 16 to 64 bits (125, 126,
    65535, 65536). Payloads above 512 bytes repeat a short drawn pattern.

    Args:
        opcodes: The opcodes to draw from (default: all six).
        max_size: The largest data frame payload.

    Example::

        from sansws.frames import parse_frame
        from sansws.testing import frames, masking_keys

        @given(frames(), st.none() | masking_keys())
        def test_parse_inverts_serialize(frame, key):
            parsed, masked, consumed = parse_frame(frame.serialize(key))
            assert parsed == frame and masked == (key is not None)
    """
    choices = tuple(Opcode(opcode) for opcode in opcodes)
    if not choices:
        raise ValueError("opcodes must not be empty")
    return _frame(choices, max_size)


@st.composite
def _message(draw: st.DrawFn, max_size: int) -> str | bytes:
    size = draw(_payload_sizes(max_size))
    if draw(st.booleans()):
        return _utf8_of_size(draw, size).decode()
    return _binary_of_size(draw, size)


def messages(*, max_size: int = 1024) -> st.SearchStrategy[str | bytes]:
    """Message contents for ``send_text`` (``str``) and ``send_binary``
    (``bytes``), empty ones included.

    Sizes range up to ``max_size`` bytes (UTF-8 encoded for text) and favour
    the lengths where the frame length encoding changes (125, 126, and with
    a large enough ``max_size``, 65535 and 65536).

    Example::

        @given(messages())
        def test_echo(message):
            ...  # send it, receive it, compare
    """
    return _message(max_size)


# ---------------------------------------------------------------------------
# Streams


@dataclass(frozen=True, slots=True)
class FrameStream:
    """Bytes a peer sends after the opening handshake, and what a compliant
    receiver makes of them.

    Attributes:
        data: The frames on the wire.
        masked: ``True`` if the stream is meant for a server (a client's
            frames are masked), ``False`` if it is meant for a client.
        events: The :class:`~sansws.events.Message`,
            :class:`~sansws.events.Ping` and :class:`~sansws.events.Pong`
            events the receiver reports, in order (messages assembled from
            their fragments).
        close: The ``(code, reason)`` of the Close frame that ends the
            stream, if it ends with one (code 1005 for a Close frame without
            a code). Nothing after it is processed.
        fail_code: For a malformed stream, the close code the receiver must
            fail the connection with (1002 or 1007); ``None`` if the stream
            is valid.
        violation: For a malformed stream, the name of its violation (one of
            :data:`VIOLATIONS`).
        rule: For a malformed stream, the rule it breaks, with its RFC 6455
            section.
    """

    data: bytes
    masked: bool
    events: tuple[Message | Ping | Pong, ...] = ()
    close: tuple[int, str] | None = None
    fail_code: int | None = None
    violation: str | None = None
    rule: str | None = None


class _Builder:
    """Accumulates a stream's bytes and its expected events."""

    def __init__(self, draw: st.DrawFn, masked: bool, max_size: int) -> None:
        self.draw = draw
        self.masked = masked
        self.max_size = max_size
        self.parts: list[bytes] = []
        self.events: list[Message | Ping | Pong] = []
        # The opcode of the message whose first fragments were sent but not
        # its last one, if any.
        self.open_opcode: Opcode | None = None

    def write(self, frame: Frame, *, masked: bool | None = None) -> None:
        if self.masked if masked is None else masked:
            self.parts.append(frame.serialize(self.draw(masking_keys())))
        else:
            self.parts.append(frame.serialize())

    def write_raw(self, data: bytes) -> None:
        self.parts.append(data)

    def control(self) -> None:
        """A Ping or Pong, as allowed anywhere (RFC 6455 section 5.4)."""
        payload = self.draw(st.binary(max_size=MAX_CONTROL_PAYLOAD))
        if self.draw(st.booleans()):
            self.write(Frame(Opcode.PING, payload))
            self.events.append(Ping(payload))
        else:
            self.write(Frame(Opcode.PONG, payload))
            self.events.append(Pong(payload))

    def maybe_controls(self) -> None:
        for _ in range(self.draw(st.integers(0, 2))):
            self.control()

    def content(self, opcode: Opcode) -> bytes:
        size = self.draw(_payload_sizes(self.max_size))
        draw = self.draw
        return _utf8_of_size(draw, size) if opcode == Opcode.TEXT else _binary_of_size(draw, size)

    def fragments(self, payload: bytes) -> list[bytes]:
        """Split a payload at arbitrary byte positions (a text fragment may
        end inside a character: only the whole message must be UTF-8)."""
        cuts = self.draw(
            st.lists(st.integers(0, len(payload)), max_size=3).map(sorted),
        )
        bounds = [0, *cuts, len(payload)]
        return [payload[a:b] for a, b in itertools.pairwise(bounds)]

    def message(self, *, finish: bool = True) -> None:
        """A message, fragmented or not, with control frames between its
        fragments; unfinished (last fragment missing) when ``finish`` is
        false."""
        assert self.open_opcode is None
        opcode = self.draw(st.sampled_from((Opcode.TEXT, Opcode.BINARY)))
        payload = self.content(opcode)
        pieces = self.fragments(payload)
        if not finish:
            pieces = pieces[: self.draw(st.integers(1, len(pieces)))]
        for index, piece in enumerate(pieces):
            if index:
                self.maybe_controls()
            last = finish and index == len(pieces) - 1
            self.write(Frame(opcode if index == 0 else Opcode.CONTINUATION, piece, fin=last))
        if finish:
            self.events.append(Message(payload.decode() if opcode == Opcode.TEXT else payload))
        else:
            self.open_opcode = opcode

    def valid_prefix(self, *, max_messages: int, open_message: bool) -> None:
        for _ in range(self.draw(st.integers(0, max_messages))):
            self.maybe_controls()
            self.message()
        self.maybe_controls()
        if open_message:
            self.message(finish=False)
            self.maybe_controls()

    def stream(
        self,
        close: tuple[int, str] | None = None,
        fail_code: int | None = None,
        violation: str | None = None,
        rule: str | None = None,
    ) -> FrameStream:
        return FrameStream(
            b"".join(self.parts),
            self.masked,
            tuple(self.events),
            close,
            fail_code,
            violation,
            rule,
        )


@st.composite
def _frame_stream(
    draw: st.DrawFn, masked: bool, max_size: int, max_messages: int, close: bool | None
) -> FrameStream:
    builder = _Builder(draw, masked, max_size)
    with_close = draw(st.booleans()) if close is None else close
    # A Close frame may interrupt a fragmented message (section 5.4 allows
    # control frames between fragments); the message is then never delivered.
    open_message = with_close and draw(st.booleans())
    builder.valid_prefix(max_messages=max_messages, open_message=open_message)
    if not with_close:
        if not builder.parts:
            # Never empty: an empty read means end of stream to a receiver.
            builder.message()
        return builder.stream()
    payload = draw(_close_payload())
    builder.write(Frame(Opcode.CLOSE, payload))
    if payload:
        code = int.from_bytes(payload[:2], "big")
        received = (code, payload[2:].decode())
    else:
        received = (1005, "")
    return builder.stream(close=received)


def frame_streams(
    *,
    masked: bool = True,
    max_size: int = 1024,
    max_messages: int = 4,
    close: bool | None = None,
) -> st.SearchStrategy[FrameStream]:
    """Valid frame streams: messages, fragmented or not, with Pings and
    Pongs between them and between their fragments, optionally ended by a
    Close frame.

    Text fragments may split a character; each complete text message is
    UTF-8. Empty messages and empty fragments occur. See :class:`FrameStream`
    for what the receiver must report.

    Args:
        masked: ``True`` for a stream a client sends (to feed a server),
            ``False`` for one a server sends.
        max_size: The largest message payload, in bytes. Raise it above
            65535 to include frames with a 64-bit length.
        max_messages: The most complete messages in a stream.
        close: ``True`` to always end the stream with a Close frame,
            ``False`` never to, ``None`` for either.

    Example::

        @given(frame_streams())
        def test_server_delivers_every_message(stream):
            server = open_server()  # a ServerConnection after the handshake
            events = server.receive_data(stream.data)
            assert events[: len(stream.events)] == list(stream.events)
    """
    return _frame_stream(masked, max_size, max_messages, close)


# ---------------------------------------------------------------------------
# Malformed streams: each violation is a function that writes the offending
# bytes and returns (close code, rule broken). ``needs`` says what the
# message state must be when it starts: True (a fragmented message is open),
# False (none is), or None (either).

_Violation = Callable[[_Builder], tuple[int, str]]
_VIOLATIONS: dict[str, tuple[_Violation, bool | None]] = {}


def _violation(name: str, needs: bool | None) -> Callable[[_Violation], _Violation]:
    def register(function: _Violation) -> _Violation:
        _VIOLATIONS[name] = (function, needs)
        return function

    return register


def _small_payload(b: _Builder) -> bytes:
    return b.draw(st.binary(max_size=MAX_CONTROL_PAYLOAD))


def _data_opcode(b: _Builder) -> Opcode:
    """An opcode for a well-formed data frame in the current message state."""
    if b.open_opcode is not None:
        return Opcode.CONTINUATION
    return b.draw(st.sampled_from((Opcode.TEXT, Opcode.BINARY)))


def _well_formed_frame(b: _Builder) -> Frame:
    """A frame that would be valid here, but for what the caller changes."""
    kind = b.draw(st.sampled_from(("data", "ping", "pong", "close")))
    if kind == "data":
        opcode = _data_opcode(b)
        text = Opcode.TEXT in (opcode, b.open_opcode)
        payload = b"text" if text else _small_payload(b)
        return Frame(opcode, payload, fin=b.draw(st.booleans()))
    if kind == "close":
        return Frame(Opcode.CLOSE, b.draw(_close_payload()))
    return Frame(Opcode.PING if kind == "ping" else Opcode.PONG, _small_payload(b))


@_violation("reserved-opcode", needs=None)
def _reserved_opcode(b: _Builder) -> tuple[int, str]:
    opcode = b.draw(st.sampled_from(_RESERVED_OPCODES))
    # A reserved control opcode keeps the other control frame rules, so that
    # the opcode is the only fault.
    fin = True if opcode >= 8 else b.draw(st.booleans())
    b.write(Frame(opcode, _small_payload(b), fin=fin))
    return 1002, f"RFC 6455 section 5.2: reserved opcode {opcode}"


@_violation("reserved-bits", needs=None)
def _reserved_bits(b: _Builder) -> tuple[int, str]:
    frame = _well_formed_frame(b)
    rsv = b.draw(st.integers(1, 7))
    b.write(Frame(frame.opcode, frame.payload, frame.fin, *(bool(rsv & bit) for bit in (4, 2, 1))))
    return 1002, "RFC 6455 section 5.2: RSV bits set with no extension negotiated"


@_violation("long-control", needs=None)
def _oversized_control(b: _Builder) -> tuple[int, str]:
    opcode = b.draw(st.sampled_from((Opcode.PING, Opcode.PONG, Opcode.CLOSE)))
    size = b.draw(st.integers(MAX_CONTROL_PAYLOAD + 1, 1000))
    payload = serialize_close_payload(1000) if opcode == Opcode.CLOSE else b""
    b.write(Frame(opcode, payload + b"x" * (size - len(payload))))
    return 1002, "RFC 6455 section 5.5: control frame payload longer than 125 bytes"


@_violation("fragmented-control", needs=None)
def _fragmented_control(b: _Builder) -> tuple[int, str]:
    opcode = b.draw(st.sampled_from((Opcode.PING, Opcode.PONG, Opcode.CLOSE)))
    payload = b.draw(_close_payload()) if opcode == Opcode.CLOSE else _small_payload(b)
    b.write(Frame(opcode, payload, fin=False))
    return 1002, "RFC 6455 section 5.5: fragmented control frame"


@_violation("length-msb", needs=None)
def _length_msb_set(b: _Builder) -> tuple[int, str]:
    opcode = _data_opcode(b)
    length = (1 << 63) | b.draw(st.integers(0, (1 << 63) - 1))
    mask = b.draw(masking_keys()) if b.masked else None
    b.write_raw(serialize_header(b.draw(st.booleans()), 0, opcode, length, mask))
    b.write_raw(b.draw(st.binary(max_size=8)))
    return 1002, "RFC 6455 section 5.2: 64-bit payload length with its most significant bit set"


@_violation("wrong-masking", needs=None)
def _wrong_masking(b: _Builder) -> tuple[int, str]:
    b.write(_well_formed_frame(b), masked=not b.masked)
    if b.masked:
        return 1002, "RFC 6455 section 5.1: a client frame that is not masked"
    return 1002, "RFC 6455 section 5.1: a server frame that is masked"


@_violation("invalid-utf8", needs=False)
def _invalid_utf8_text(b: _Builder) -> tuple[int, str]:
    prefix = _utf8_of_size(b.draw, b.draw(st.integers(0, 300)))
    if b.draw(st.booleans()):
        bad = b.draw(st.sampled_from(_INVALID_UTF8))
        suffix = _utf8_of_size(b.draw, b.draw(st.integers(0, 20)))
    else:
        bad, suffix = b.draw(st.sampled_from(_TRUNCATED_UTF8)), b""
    pieces = b.fragments(prefix + bad + suffix)
    written = 0
    for index, piece in enumerate(pieces):
        # Control frames only before the fault: when a receiver notices it,
        # as the bad byte arrives or at the end of the message, is its own
        # business (RFC 6455 section 8.1 says only that it must).
        if index and written <= len(prefix):
            b.maybe_controls()
        opcode = Opcode.TEXT if index == 0 else Opcode.CONTINUATION
        b.write(Frame(opcode, piece, fin=index == len(pieces) - 1))
        written += len(piece)
    return 1007, "RFC 6455 section 8.1: a text message that is not UTF-8"


@_violation("orphan-continuation", needs=False)
def _continuation_without_start(b: _Builder) -> tuple[int, str]:
    b.write(Frame(Opcode.CONTINUATION, _small_payload(b), fin=b.draw(st.booleans())))
    return 1002, "RFC 6455 section 5.4: continuation frame with no message to continue"


@_violation("interleaved-data", needs=True)
def _data_frame_inside_message(b: _Builder) -> tuple[int, str]:
    opcode = b.draw(st.sampled_from((Opcode.TEXT, Opcode.BINARY)))
    b.write(Frame(opcode, b"new", fin=b.draw(st.booleans())))
    return 1002, "RFC 6455 section 5.4: new data frame inside a fragmented message"


@_violation("close-1-byte", needs=None)
def _close_payload_one_byte(b: _Builder) -> tuple[int, str]:
    b.write(Frame(Opcode.CLOSE, b.draw(st.binary(min_size=1, max_size=1))))
    return 1002, "RFC 6455 section 5.5.1: Close frame payload of 1 byte"


@_violation("close-code", needs=None)
def _invalid_close_code(b: _Builder) -> tuple[int, str]:
    code = b.draw(
        st.one_of(
            st.integers(0, 999),
            st.sampled_from((1004, 1005, 1006, 1015)),
            st.integers(1016, 2999),
            st.integers(5000, 65535),
        )
    )
    reason = _utf8_of_size(b.draw, b.draw(st.integers(0, 20)))
    b.write(Frame(Opcode.CLOSE, serialize_close_payload(code) + reason))
    return 1002, f"RFC 6455 section 7.4: close code {code} may not be sent"


@_violation("close-reason", needs=None)
def _invalid_close_reason(b: _Builder) -> tuple[int, str]:
    code = b.draw(st.sampled_from(_VALID_CLOSE_CODES))
    bad = b.draw(st.sampled_from(_INVALID_UTF8 + _TRUNCATED_UTF8))
    reason = _utf8_of_size(b.draw, b.draw(st.integers(0, 40))) + bad
    b.write(Frame(Opcode.CLOSE, serialize_close_payload(code) + reason))
    return 1007, "RFC 6455 section 5.5.1: Close frame reason that is not UTF-8"


@st.composite
def _malformed_stream(
    draw: st.DrawFn, kinds: tuple[str, ...], masked: bool, max_size: int, max_messages: int
) -> FrameStream:
    kind = draw(st.sampled_from(kinds))
    violation, needs = _VIOLATIONS[kind]
    open_message = draw(st.booleans()) if needs is None else needs
    builder = _Builder(draw, masked, max_size)
    builder.valid_prefix(max_messages=max_messages, open_message=open_message)
    code, rule = violation(builder)
    # What follows the fault must be ignored.
    if draw(st.booleans()):
        builder.open_opcode = None
        events = len(builder.events)
        builder.message()
        del builder.events[events:]
    return builder.stream(fail_code=code, violation=kind, rule=rule)


def malformed_streams(
    *,
    violations: Iterable[str] | None = None,
    masked: bool = True,
    max_size: int = 1024,
    max_messages: int = 3,
) -> st.SearchStrategy[FrameStream]:
    """Frame streams that break RFC 6455, labelled with the close code a
    compliant receiver fails the connection with.

    Each stream is a valid prefix (as from :func:`frame_streams`, possibly
    ending inside a fragmented message), then exactly one violation, then
    possibly more frames, which the receiver must ignore. The labels hold
    for a connection with no extension negotiated: open the receiving
    connection with ``compression=None``, as with permessage-deflate RSV1
    is legal. The violations,
    by their name in :data:`VIOLATIONS`:

    * ``reserved-opcode``, ``reserved-bits``: a reserved opcode, or RSV bits
      with no extension negotiated (1002);
    * ``fragmented-control``, ``long-control``: a control frame that is
      fragmented or longer than 125 bytes (1002);
    * ``length-msb``: a 64-bit length with its most significant bit set
      (1002);
    * ``wrong-masking``: a frame masked the wrong way for its direction
      (1002);
    * ``orphan-continuation``, ``interleaved-data``: a continuation with no
      message to continue, or a new text or binary frame inside a fragmented
      message (1002);
    * ``invalid-utf8``: a text message that is not UTF-8, the fault possibly
      in a later fragment or a truncated final character (1007);
    * ``close-1-byte``, ``close-code``, ``close-reason``: a Close frame with
      a 1-byte payload or a code that may not be sent (1002), or a reason
      that is not UTF-8 (1007).

    ``events`` holds what the receiver reports before failing; ``fail_code``,
    ``violation`` and ``rule`` say how and why it fails. The message size
    limit (1009) is a policy, not a rule of the protocol, and is not
    exercised.

    Args:
        violations: The names of the violations to draw from (default: all).
        masked: ``True`` for a stream a client sends (to feed a server),
            ``False`` for one a server sends.
        max_size: The largest message payload in the valid parts, in bytes.
        max_messages: The most complete messages before the violation.

    Example::

        @given(malformed_streams())
        def test_server_fails_malformed_streams(stream):
            server = open_server()  # a ServerConnection after the handshake
            closed = server.receive_data(stream.data)[-1]
            assert closed.code == stream.fail_code, stream.rule
    """
    kinds = VIOLATIONS if violations is None else tuple(violations)
    unknown = set(kinds) - set(VIOLATIONS)
    if unknown or not kinds:
        raise ValueError(f"violations must be names from VIOLATIONS, not {sorted(unknown)}")
    return _malformed_stream(kinds, masked, max_size, max_messages)


VIOLATIONS: tuple[str, ...] = tuple(_VIOLATIONS)
"""The names of the violations :func:`malformed_streams` draws from."""
