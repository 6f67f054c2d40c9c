"""The WebSocket wire format (RFC 6455 section 5): opcodes, close codes,
masking, and serializing and parsing single frames.

A frame on the wire::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-------+-+-------------+-------------------------------+
    |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
    |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
    |N|V|V|V|       |S|             |   (if payload len==126/127)   |
    | |1|2|3|       |K|             |                               |
    +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
    |     Extended payload length continued, if payload len == 127  |
    + - - - - - - - - - - - - - - - +-------------------------------+
    |                               |Masking-key, if MASK set to 1  |
    +-------------------------------+-------------------------------+
    | Masking-key (continued)       |          Payload Data         |
    +-------------------------------- - - - - - - - - - - - - - - - +

This module knows nothing of connections or state. The connection's receive
loop parses frame headers inline, for speed; :func:`parse_frame` and
:class:`Frame` are the readable reference used by tests, strategies and
tools.
"""

from __future__ import annotations

import codecs
import secrets
import struct
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "CLOSE_CODE_NAMES",
    "HAS_SPEEDUPS",
    "CloseCode",
    "Frame",
    "MaskKeySource",
    "Opcode",
    "apply_mask",
    "apply_mask_python",
    "build_frame",
    "build_frame_python",
    "close_code_name",
    "decode_text",
    "decode_text_python",
    "is_valid_close_code",
    "parse_close_payload",
    "parse_frame",
    "serialize_close_payload",
    "serialize_frame",
    "serialize_header",
]


class Opcode(IntEnum):
    """Frame opcodes (RFC 6455 section 5.2). 3-7 and 11-15 are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


#: Largest payload a control frame may carry (RFC 6455 section 5.5).
MAX_CONTROL_PAYLOAD = 125


class CloseCode(IntEnum):
    """Close status codes (RFC 6455 section 7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


CLOSE_CODE_NAMES: dict[int, str] = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received",
    1006: "abnormal closure",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}


def close_code_name(code: int) -> str:
    """A short human name for a close code, e.g. ``"going away"`` for 1001."""
    if code in CLOSE_CODE_NAMES:
        return CLOSE_CODE_NAMES[code]
    if 3000 <= code < 4000:
        return "registered"
    if 4000 <= code < 5000:
        return "private use"
    return "unknown"


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a Close frame on the wire.

    1000-1003 and 1007-1014 are defined by RFC 6455 and its registry; 3000-4999
    are for libraries and applications. 1004 is reserved, and 1005, 1006 and
    1015 describe what happened locally and must never be sent.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# Payloads at least this long are masked by apply_mask_python with byte
# translation tables, which beats big-integer XOR from about 2 KiB on.
_TRANSLATE_MIN = 2048
# _XOR_TABLES[k] maps each byte to itself XOR k; built on first use.
_XOR_TABLES: list[bytes] = []


def apply_mask_python(data: bytes | bytearray | memoryview, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (pure Python).

    Short payloads go through one big integer: one ``int.from_bytes`` over
    the payload and one over the repeated key. Long ones are translated four
    times, every fourth byte through the table for its key byte, which is
    about three times faster there.

    Raises:
        ValueError: ``mask`` is not 4 bytes long.
    """
    if len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    length = len(data)
    if length == 0:
        return b""
    if length < _TRANSLATE_MIN:
        repeated = mask * (length // 4 + 1)
        value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:length], "little")
        return value.to_bytes(length, "little")
    if not _XOR_TABLES:
        _XOR_TABLES.extend(bytes(byte ^ key for byte in range(256)) for key in range(256))
    masked = bytearray(data)
    for i in range(4):
        masked[i::4] = masked[i::4].translate(_XOR_TABLES[mask[i]])
    return bytes(masked)


def build_frame_python(first: int, payload: str | bytes, mask: bytes | None) -> bytes:
    """A whole frame on the wire (pure Python).

    ``first`` is the header's first byte (FIN, RSV bits and opcode); the
    payload length follows in its shortest form, then the masking key and
    the masked payload if ``mask`` is given, else the payload as is. A
    ``str`` payload is encoded to UTF-8 first.

    Raises:
        UnicodeEncodeError: ``payload`` is a ``str`` that is not valid
            Unicode (a lone surrogate).
        ValueError: ``first`` is not a byte, or ``mask`` not 4 bytes long.
    """
    if isinstance(payload, str):
        payload = payload.encode()
    if not 0 <= first <= 255:
        raise ValueError("first must be in range(0, 256)")
    if mask is not None and len(mask) != 4:
        raise ValueError("mask must contain 4 bytes")
    header = serialize_header(first & 0x80 != 0, first & 0x70, first & 0x0F, len(payload), mask)
    if mask is not None:
        return header + apply_mask_python(payload, mask)
    return header + payload


def decode_text_python(
    data: bytes | memoryview, mask: bytes | None, final: bool
) -> tuple[str, bytes]:
    """Unmask a piece of a text message with ``mask`` (unless it is ``None``)
    and decode it from UTF-8 (pure Python).

    Returns the text and the bytes of a character cut at the end of the
    piece, which belong in front of the next piece; with ``final``, a cut
    character is an error instead.

    Raises:
        UnicodeDecodeError: The piece is not valid UTF-8, or could not be
            continued into valid UTF-8. Raised as soon as the piece holds
            the offending byte, not only at the end of the message.
        ValueError: ``mask`` is not 4 bytes long.
    """
    if mask is not None:
        data = apply_mask_python(data, mask)
    text, used = codecs.utf_8_decode(data, "strict", final)
    tail = bytes(data[used:])
    # CPython's decoder holds back an encoded UTF-16 surrogate (ED A0-BF)
    # until its third byte arrives, although no continuation can make it
    # valid: refuse it now, not one byte late.
    if tail[:1] == b"\xed" and tail[1:2] >= b"\xa0":
        raise UnicodeDecodeError("utf-8", bytes(data), used, used + 1, "invalid continuation byte")
    return text, tail


try:
    from ._speedups import apply_mask as _apply_mask_c
    from ._speedups import build_frame as _build_frame_c
    from ._speedups import decode_text as _decode_text_c
except ImportError:  # pragma: no cover - depends on the build
    HAS_SPEEDUPS = False
    apply_mask = apply_mask_python
    build_frame = build_frame_python
    decode_text = decode_text_python
else:  # pragma: no cover - depends on the build
    HAS_SPEEDUPS = True
    apply_mask = _apply_mask_c
    build_frame = _build_frame_c
    decode_text = _decode_text_c
# apply_mask(data, mask) -> bytes, build_frame(first, payload, mask) -> bytes
# and decode_text(data, mask, final) -> (str, bytes) are the C versions from
# sansws._speedups when it was built, else the pure-Python ones; both give
# identical results.


class MaskKeySource:
    """Masking keys for client frames, from the operating system's CSPRNG.

    RFC 6455 section 5.3 requires each key to be unpredictable. Keys come from
    :func:`secrets.token_bytes` (``os.urandom``), drawn a few kilobytes at a
    time and handed out four bytes at a time, so that a client sending many
    small frames makes one system call per thousand frames instead of one per
    frame. Each key is used once.
    """

    __slots__ = ("_pool", "_pos")

    _POOL_SIZE = 4096

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def next_key(self) -> bytes:
        """A fresh 4-byte masking key."""
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = secrets.token_bytes(self._POOL_SIZE)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


_PACK_H = struct.Struct("!BBH").pack
_PACK_Q = struct.Struct("!BBQ").pack


def serialize_header(fin: bool, rsv: int, opcode: int, length: int, mask: bytes | None) -> bytes:
    """The header of a frame carrying ``length`` payload bytes.

    ``rsv`` holds the three reserved bits as they sit in the first byte
    (``0x40`` is RSV1). The shortest length encoding is always used, as
    RFC 6455 section 5.2 requires.
    """
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if mask is not None else 0
    if length < 126:
        header = bytes((first, mask_bit | length))
    elif length < 65536:
        header = _PACK_H(first, mask_bit | 126, length)
    else:
        header = _PACK_Q(first, mask_bit | 127, length)
    return header + mask if mask is not None else header


@dataclass(frozen=True, slots=True)
class Frame:
    """One WebSocket frame, unmasked.

    Attributes:
        opcode: The frame's opcode (an :class:`Opcode`, or a reserved value
            when describing invalid input).
        payload: The payload, after unmasking.
        fin: Whether this is the last frame of a message.
        rsv1, rsv2, rsv3: The reserved bits (RSV1 marks a compressed message
            when permessage-deflate is in use).
    """

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False

    def serialize(self, mask: bytes | None = None) -> bytes:
        """The frame on the wire, masked with ``mask`` when given (clients
        mask, servers do not)."""
        return serialize_frame(self, mask)


def serialize_frame(frame: Frame, mask: bytes | None = None) -> bytes:
    """Serialize ``frame``, masking its payload with ``mask`` when given."""
    rsv = (0x40 if frame.rsv1 else 0) | (0x20 if frame.rsv2 else 0) | (0x10 if frame.rsv3 else 0)
    header = serialize_header(frame.fin, rsv, frame.opcode, len(frame.payload), mask)
    payload = apply_mask(frame.payload, mask) if mask is not None else frame.payload
    return header + payload


_NOT_SHORTEST = "frame length not in its shortest encoding"


def parse_frame(data: bytes) -> tuple[Frame, bool, int] | None:
    """Parse one frame at the start of ``data``.

    Returns ``(frame, masked, consumed)`` with the payload unmasked, or
    ``None`` if ``data`` does not yet hold a whole frame. The frame is not
    validated beyond its length encoding: deciding what is allowed is the
    connection's job.

    Raises:
        ValueError: The 64-bit length has its most significant bit set, or
            the length is not in its shortest encoding (RFC 6455 section
            5.2).
    """
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    length = second & 0x7F
    pos = 2
    if length == 126:
        if len(data) < 4:
            return None
        length = int.from_bytes(data[2:4], "big")
        if length < 126:
            raise ValueError(_NOT_SHORTEST)
        pos = 4
    elif length == 127:
        if len(data) < 10:
            return None
        length = int.from_bytes(data[2:10], "big")
        if length >> 63:
            raise ValueError("the most significant bit of a 64-bit length must be 0")
        if length < 65536:
            raise ValueError(_NOT_SHORTEST)
        pos = 10
    masked = bool(second & 0x80)
    mask = b""
    if masked:
        if len(data) < pos + 4:
            return None
        mask = bytes(data[pos : pos + 4])
        pos += 4
    if len(data) < pos + length:
        return None
    payload = bytes(data[pos : pos + length])
    if masked:
        payload = apply_mask(payload, mask)
    frame = Frame(
        opcode=first & 0x0F,
        payload=payload,
        fin=bool(first & 0x80),
        rsv1=bool(first & 0x40),
        rsv2=bool(first & 0x20),
        rsv3=bool(first & 0x10),
    )
    return frame, masked, pos + length


def serialize_close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a Close frame: the code in network order, then the
    reason in UTF-8; empty when ``code`` is ``None``."""
    if code is None:
        return b""
    return code.to_bytes(2, "big") + reason.encode()


def parse_close_payload(payload: bytes) -> tuple[int, str]:
    """Parse a Close frame's payload into ``(code, reason)``.

    An empty payload means no status: ``(1005, "")``.

    Raises:
        ValueError: The payload is one byte long, or the code may not be sent
            on the wire (close code 1002 applies).
        UnicodeDecodeError: The reason is not valid UTF-8 (close code 1007
            applies).
    """
    if not payload:
        return CloseCode.NO_STATUS_RCVD, ""
    if len(payload) == 1:
        raise ValueError("close frame payload of 1 byte")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ValueError(f"invalid close code {code}")
    return code, payload[2:].decode("utf-8")
