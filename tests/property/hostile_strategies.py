"""Hypothesis strategies for what a hostile or broken peer sends: frames
(compressed or not, well-formed or not), opening handshakes with malformed
parts, and the ways a byte stream can be cut into reads.

Written for the property tests next to this module; general enough to move
into :mod:`sansws.testing`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from hypothesis import strategies as st

from sansws.frames import serialize_header

# ---------------------------------------------------------------- frames

DATA_OPCODES = (0x0, 0x1, 0x2)
CONTROL_OPCODES = (0x8, 0x9, 0xA)
RESERVED_OPCODES = (0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF)


@dataclass(frozen=True)
class RawFrame:
    """A frame as bytes on the wire may describe it, valid or not."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0  # as in the first byte: 0x40 is RSV1
    mask: bytes | None = None
    # Length to announce instead of len(payload), or bytes to cut off the end.
    announced: int | None = None
    truncate: int = 0

    def serialize(self) -> bytes:
        length = len(self.payload) if self.announced is None else self.announced
        header = serialize_header(self.fin, self.rsv, self.opcode, length, self.mask)
        payload = self.payload
        if self.mask is not None:
            repeated = self.mask * (len(payload) // 4 + 1)
            payload = bytes(a ^ b for a, b in zip(payload, repeated, strict=False))
        data = header + payload
        return data[: len(data) - self.truncate] if self.truncate else data


def deflate(data: bytes, wbits: int = 15, final_block: bool = False) -> bytes:
    """``data`` as permessage-deflate sends it with a ``wbits`` window: raw
    DEFLATE, tail removed."""
    if wbits == 8:  # zlib cannot; distance-1 matches fit any window
        compressor = zlib.compressobj(6, zlib.DEFLATED, -9, 8, zlib.Z_RLE)
    else:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    if final_block:
        return compressor.compress(data) + compressor.flush(zlib.Z_FINISH)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


texts = st.text(max_size=200)
utf8 = texts.map(str.encode)
# Invalid UTF-8 at the start, in the middle, or cut inside a character.
bad_utf8 = st.sampled_from([b"\xff", b"ok\xc3(", b"\xed\xa0\x80", b"caf\xc3", b"\xf4\x90\x80\x80"])
binaries = st.binary(max_size=300)

# Payloads that inflate to a lot, a little, or fail to inflate at all.
compressed_payloads = st.one_of(
    binaries.map(deflate),
    utf8.map(deflate),
    st.integers(1, 200_000).map(lambda n: deflate(b"\x00" * n)),
    binaries.map(lambda b: deflate(b, final_block=True)),
    st.binary(max_size=64),  # almost never valid DEFLATE
    st.just(b"\x00"),  # an empty stored block, header only
)

close_payloads = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=1),
    st.tuples(
        st.one_of(
            st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999]),
            st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]),
        ),
        st.one_of(utf8.map(lambda b: b[:123]), bad_utf8),
    ).map(lambda t: t[0].to_bytes(2, "big") + t[1]),
)


@st.composite
def raw_frames(draw: st.DrawFn, *, masked: bool, compression: bool) -> RawFrame:
    """One frame, usually well-formed, sometimes wrong in one way."""
    kind = draw(st.sampled_from(["data", "data", "data", "control", "reserved"]))
    if kind == "control":
        opcode = draw(st.sampled_from(CONTROL_OPCODES))
        payload = draw(close_payloads if opcode == 0x8 else st.binary(max_size=125))
    elif kind == "reserved":
        opcode = draw(st.sampled_from(RESERVED_OPCODES))
        payload = draw(st.binary(max_size=20))
    else:
        opcode = draw(st.sampled_from(DATA_OPCODES))
        if compression and draw(st.booleans()):
            payload = draw(compressed_payloads)
        elif opcode == 0x1:
            payload = draw(st.one_of(utf8, utf8, bad_utf8))
        else:
            payload = draw(binaries)
    rsv = 0
    if compression and opcode in (0x1, 0x2) and draw(st.booleans()):
        rsv = 0x40
    if draw(st.integers(0, 19)) == 0:
        rsv = draw(st.sampled_from([0x10, 0x20, 0x40, 0x70]))
    fin = draw(st.booleans()) if opcode in DATA_OPCODES else draw(st.integers(0, 9)) > 0
    mask: bytes | None = None
    if masked != (draw(st.integers(0, 29)) == 0):  # rarely the wrong way round
        mask = draw(st.one_of(st.just(b"\x00\x00\x00\x00"), st.binary(min_size=4, max_size=4)))
    announced = None
    if draw(st.integers(0, 19)) == 0:
        announced = draw(st.sampled_from([126, 65535, 65536, 1 << 20, 1 << 40, (1 << 63) + 1]))
    return RawFrame(opcode, payload, fin, rsv, mask, announced)


@st.composite
def messages(
    draw: st.DrawFn, *, masked: bool, compression: bool, wbits: int = 15
) -> list[RawFrame]:
    """One well-formed message, compressed with a ``wbits`` window or not: a
    first frame, continuations, Pings and Pongs between them."""
    opcode = draw(st.sampled_from([0x1, 0x2]))
    data = draw(texts).encode() if opcode == 0x1 else draw(binaries)
    compressed = compression and draw(st.booleans())
    wire = deflate(data, wbits) if compressed else data
    cuts = sorted(draw(st.lists(st.integers(0, len(wire)), max_size=4)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    frames = []
    for i, piece in enumerate(pieces):
        mask = draw(st.binary(min_size=4, max_size=4)) if masked else None
        frames.append(
            RawFrame(
                opcode if i == 0 else 0x0,
                piece,
                fin=i == len(pieces) - 1,
                rsv=0x40 if compressed and i == 0 else 0,
                mask=mask,
            )
        )
        if draw(st.integers(0, 4)) == 0:
            ping = draw(st.binary(max_size=125))
            frames.append(RawFrame(draw(st.sampled_from([0x9, 0xA])), ping, mask=mask))
    return frames


@st.composite
def frame_streams(draw: st.DrawFn, *, masked: bool, compression: bool) -> bytes:
    """What a peer sends after the handshake: mostly well-formed messages,
    sometimes a malformed frame, truncated or flipped bytes, or garbage."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        choice = draw(st.integers(0, 9))
        if choice < 6:
            for frame in draw(messages(masked=masked, compression=compression)):
                parts.append(frame.serialize())
        elif choice < 9:
            parts.append(draw(raw_frames(masked=masked, compression=compression)).serialize())
        else:
            parts.append(draw(st.binary(max_size=50)))
    stream = b"".join(parts)
    if stream and draw(st.integers(0, 3)) == 0:
        # Flip one byte somewhere.
        at = draw(st.integers(0, len(stream) - 1))
        stream = stream[:at] + bytes([stream[at] ^ draw(st.integers(1, 255))]) + stream[at + 1 :]
    if draw(st.integers(0, 4)) == 0:
        stream = stream[: draw(st.integers(0, len(stream)))]
    return stream


def valid_stream(frames: list[list[RawFrame]]) -> bytes:
    return b"".join(frame.serialize() for message in frames for frame in message)


# ---------------------------------------------------------------- chunking


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut into the reads a driver might make."""
    if not data:
        return []
    style = draw(st.sampled_from(["whole", "bytes", "sizes"]))
    if style == "whole":
        return [data]
    if style == "bytes" and len(data) <= 2000:
        return [data[i : i + 1] for i in range(len(data))]
    sizes = draw(st.lists(st.integers(1, 300), min_size=1, max_size=8))
    chunks = []
    pos = i = 0
    while pos < len(data):
        chunks.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return chunks


# ---------------------------------------------------------------- handshakes

EXTENSION_OFFERS = [
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10, permessage-deflate",
    "x-unknown; a=1, permessage-deflate",
    # Malformed: the server answers 400.
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; client_max_window_bits=07",
    "permessage-deflate; foo=bar",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_no_context_takeover=1",
    # Not even the extension syntax.
    "permessage-deflate; =",
    'permessage-deflate; a="b',
    ";;;",
    "",
]

EXTENSION_RESPONSES = [
    "permessage-deflate",
    "permessage-deflate; server_max_window_bits=8",
    "permessage-deflate; client_max_window_bits=8",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_max_window_bits=99",
    "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9",
    "permessage-deflate; mystery",
    "permessage-deflate, permessage-deflate",
    "x-not-offered",
    "",
    ",",
]

header_names = st.sampled_from(
    ["X-Extra", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Host"]
)
header_values = st.one_of(
    st.sampled_from(["websocket", "Upgrade", "13", "8", "dGhlIHNhbXBsZSBub25jZQ==", "x"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)


@st.composite
def header_lists(draw: st.DrawFn, base: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``base`` with headers dropped, duplicated, changed or added."""
    headers = list(base)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["drop", "dup", "change", "add", "long", "many"]))
        if op == "drop" and headers:
            headers.pop(draw(st.integers(0, len(headers) - 1)))
        elif op == "dup" and headers:
            headers.append(headers[draw(st.integers(0, len(headers) - 1))])
        elif op == "change" and headers:
            at = draw(st.integers(0, len(headers) - 1))
            headers[at] = (headers[at][0], draw(header_values))
        elif op == "add":
            headers.append((draw(header_names), draw(header_values)))
        elif op == "long":
            headers.append(("X-Long", "v" * draw(st.sampled_from([100, 250, 8190, 9000]))))
        elif op == "many":
            headers.extend([("X-Many", "1")] * draw(st.sampled_from([10, 130])))
    return headers


def render(start_line: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    head = start_line + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    return head.encode("latin-1") + body


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A client's opening handshake, often malformed."""
    base = [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    if draw(st.booleans()):
        base.append(("Sec-WebSocket-Extensions", draw(st.sampled_from(EXTENSION_OFFERS))))
    if draw(st.integers(0, 3)) == 0:
        base.append(("Sec-WebSocket-Protocol", draw(st.sampled_from(["chat", "a, b", ",,"]))))
    method = draw(st.sampled_from(["GET"] * 6 + ["POST", "get", "GET GET"]))
    version = draw(st.sampled_from(["HTTP/1.1"] * 6 + ["HTTP/1.0", "HTTP/2", "HTTX/1.1"]))
    target = draw(st.sampled_from(["/", "/chat?x=1", "*", "http://example.com/", "/ a"]))
    headers = draw(header_lists(base))
    body = b""
    if draw(st.integers(0, 5)) == 0:
        body = draw(st.binary(max_size=100))
        headers.append(("Content-Length", str(len(body) + draw(st.integers(-1, 1)))))
    data = render(f"{method} {target} {version}", headers, body)
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=200))
    return data


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """A server's answer to a handshake, often malformed. ``@ACCEPT@`` stands
    for the right Sec-WebSocket-Accept value, which depends on the client's
    random key."""
    status = draw(st.sampled_from([101] * 6 + [100, 200, 302, 400, 404, 500]))
    reason = {101: "Switching Protocols", 302: "Found"}.get(status, "Other")
    base: list[tuple[str, str]] = []
    if status == 101:
        base += [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", draw(st.sampled_from(["@ACCEPT@"] * 4 + ["wrong", ""]))),
        ]
        if draw(st.booleans()):
            base.append(("Sec-WebSocket-Extensions", draw(st.sampled_from(EXTENSION_RESPONSES))))
    elif status == 302:
        base.append(("Location", draw(st.sampled_from(["/next", "ws://other/", ""]))))
    body = b""
    if status not in (100, 101) and draw(st.booleans()):
        body = draw(st.binary(max_size=300))
        base.append(("Content-Length", str(len(body))))
    headers = draw(header_lists(base))
    data = render(f"HTTP/1.1 {status} {reason}", headers, body)
    if status == 100:
        data += render(
            "HTTP/1.1 101 Switching Protocols",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", "@ACCEPT@"),
            ],
        )
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=200))
    return data
