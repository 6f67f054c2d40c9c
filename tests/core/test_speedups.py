"""The optional C accelerator agrees with the pure-Python fallback.

sansws.frames exports ``apply_mask`` and ``build_frame``: the C versions from
sansws._speedups when they were built, else the pure-Python ones, which are
always importable. Each C function is checked here against its fallback, byte
for byte, on every length and alignment where the C code changes strategy
(16-byte blocks, 8-byte words, the byte-by-byte tail, the 16-, 64-bit length
encodings, releasing the GIL for large payloads).
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from sansws.frames import (
    Frame,
    apply_mask_python,
    build_frame_python,
    decode_text_python,
    parse_frame,
    serialize_frame,
)

try:
    from sansws import _speedups
except ImportError:  # built without a compiler: only the fallback is tested
    _speedups = None  # type: ignore[assignment]

BuildFrame = Callable[[int, str | bytes, bytes | None], bytes]

needs_c = pytest.mark.skipif(_speedups is None, reason="sansws._speedups was not built")

# Lengths around every boundary in the C loops and in the length encoding,
# and across the threshold above which the GIL is released (64 KiB).
LENGTHS = [*range(65), 125, 126, 127, 1000, 2047, 2048, 2049, 65535, 65536, 65537, 200_003]
MASKS = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04", b"\xa5\x5a\xc3\x3c"]


def data_of(length: int, seed: int = 0) -> bytes:
    return random.Random(length * 31 + seed).randbytes(length)


def xor_reference(data: bytes, mask: bytes) -> bytes:
    """RFC 6455 section 5.3, literally: octet i XOR mask[i MOD 4]."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@pytest.mark.parametrize("mask", MASKS)
def test_python_masking_is_the_xor_of_rfc6455_section_5_3(mask: bytes) -> None:
    # Short payloads take the big-integer path, long ones (from 2 KiB) the
    # translation tables.
    for length in [*range(70), 2046, 2047, 2048, 2049, 2050, 2051, 5003]:
        data = data_of(length)
        expected = xor_reference(data, mask)
        assert apply_mask_python(data, mask) == expected
        assert apply_mask_python(bytearray(data), mask) == expected
        assert apply_mask_python(memoryview(b"." + data)[1:], mask) == expected


def test_python_masking_is_its_own_inverse() -> None:
    data = data_of(1000)
    assert apply_mask_python(apply_mask_python(data, b"abcd"), b"abcd") == data


@needs_c
@pytest.mark.parametrize("mask", MASKS)
def test_c_masking_equals_the_fallback_at_every_length_and_offset(mask: bytes) -> None:
    for length in LENGTHS:
        data = data_of(length + 16)
        for offset in range(16) if length <= 1000 else (0, 1, 7):
            # A view at an offset feeds the C loops unaligned input.
            piece = memoryview(data)[offset : offset + length]
            assert _speedups.apply_mask(piece, mask) == apply_mask_python(piece, mask), (
                length,
                offset,
            )


@needs_c
def test_c_masking_accepts_every_bytes_like_input() -> None:
    data = data_of(100)
    expected = apply_mask_python(data, b"wxyz")
    assert _speedups.apply_mask(bytearray(data), b"wxyz") == expected
    assert _speedups.apply_mask(memoryview(data), b"wxyz") == expected


@pytest.mark.parametrize(
    "apply_mask",
    [
        apply_mask_python,
        pytest.param(getattr(_speedups, "apply_mask", None), marks=needs_c, id="c"),
    ],
)
def test_masking_refuses_a_mask_that_is_not_4_bytes(
    apply_mask: Callable[[bytes, bytes], bytes],
) -> None:
    for mask in (b"", b"abc", b"abcde"):
        with pytest.raises(ValueError, match="4 bytes"):
            apply_mask(b"data", mask)


@needs_c
def test_c_functions_check_their_arguments() -> None:
    with pytest.raises(TypeError):
        _speedups.apply_mask(b"data")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _speedups.apply_mask("text", b"abcd")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.build_frame(0x81, b"data")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _speedups.build_frame(0x82, 42, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.build_frame("0x82", b"", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _speedups.decode_text(b"data", None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _speedups.decode_text("text", None, True)  # type: ignore[arg-type]


FIRST_BYTES = [0x81, 0x82, 0x01, 0x00, 0x80, 0xC1, 0x88, 0x89, 0x8A, 0x7F, 0xFF]


def test_python_frames_parse_back_to_what_was_built() -> None:
    for length in LENGTHS:
        payload = data_of(length)
        for mask in (None, b"\x9a\x8b\x7c\x6d"):
            wire = build_frame_python(0x82, payload, mask)
            parsed = parse_frame(wire)
            assert parsed is not None
            frame, masked, consumed = parsed
            assert (frame, masked, consumed) == (Frame(0x2, payload), mask is not None, len(wire))
            assert wire == serialize_frame(Frame(0x2, payload), mask)


def test_python_frames_encode_text_as_utf8() -> None:
    text = "naïve ☃ 😀"
    assert build_frame_python(0x81, text, None) == b"\x81" + bytes([len(text.encode())]) + (
        text.encode()
    )


@needs_c
@pytest.mark.parametrize("mask", [None, *MASKS])
def test_c_frames_equal_the_fallback_for_every_length(mask: bytes | None) -> None:
    for length in LENGTHS:
        payload = data_of(length)
        for first in (0x82, 0x02, 0xF0) if length < 1000 else (0x82,):
            expected = build_frame_python(first, payload, mask)
            assert _speedups.build_frame(first, payload, mask) == expected, (length, first)
        expected = build_frame_python(0x82, payload, mask)
        assert _speedups.build_frame(0x82, bytearray(payload), mask) == expected
        assert _speedups.build_frame(0x82, memoryview(payload), mask) == expected


@needs_c
def test_c_frames_take_every_first_byte_as_given() -> None:
    for first in FIRST_BYTES:
        for mask in (None, b"1234"):
            expected = build_frame_python(first, b"x", mask)
            assert _speedups.build_frame(first, b"x", mask) == expected


TEXTS = [
    "",
    "a",
    "ascii only " * 10,
    "é",
    "naïve café",
    "東京",
    "😀" * 40,
    "mixed ☃ text, " * 5000,  # longer than 64 KiB: the GIL is released
    "x" * 70000,
]


@needs_c
@pytest.mark.parametrize("text", TEXTS, ids=lambda t: f"{len(t)} chars")
@pytest.mark.parametrize("mask", [None, b"\x10\x20\x30\x40"])
def test_c_frames_encode_text_as_the_fallback_does(text: str, mask: bytes | None) -> None:
    assert _speedups.build_frame(0x81, text, mask) == build_frame_python(0x81, text, mask)


class Text(str):
    """A str subclass: still text."""


@needs_c
def test_c_frames_accept_str_subclasses() -> None:
    for text in ("plain", "ünïcode"):
        assert _speedups.build_frame(0x81, Text(text), None) == build_frame_python(
            0x81, Text(text), None
        )


@pytest.mark.parametrize(
    "build",
    [
        build_frame_python,
        pytest.param(getattr(_speedups, "build_frame", None), marks=needs_c, id="c"),
    ],
)
def test_frames_refuse_what_cannot_go_on_the_wire(build: BuildFrame) -> None:
    with pytest.raises(UnicodeEncodeError):
        build(0x81, "lone \ud800 surrogate", None)
    with pytest.raises(UnicodeEncodeError):
        build(0x81, "lone \udfff surrogate", b"abcd")
    for first in (-1, 256):
        with pytest.raises(ValueError, match="range"):
            build(first, b"", None)
    for mask in (b"", b"abc", b"abcde"):
        with pytest.raises(ValueError, match="4 bytes"):
            build(0x82, b"data", mask)


DecodeResult = tuple[str, bytes] | tuple[type[Exception], tuple[object, ...]]


def outcome(
    decode: Callable[[bytes | memoryview, bytes | None, bool], tuple[str, bytes]],
    data: bytes | memoryview,
    mask: bytes | None,
    final: bool,
) -> DecodeResult:
    """What ``decode`` returns, or the exception it raises, comparably."""
    try:
        return decode(data, mask, final)
    except UnicodeDecodeError as exc:
        return type(exc), exc.args


def masked(text: bytes, mask: bytes | None) -> bytes:
    return text if mask is None else apply_mask_python(text, mask)


@pytest.mark.parametrize("final", [True, False])
def test_python_text_decoding_keeps_a_cut_character_for_the_next_piece(final: bool) -> None:
    encoded = "a\u00e9\u6771\U0001f600".encode()
    for cut in range(len(encoded) + 1):
        head, rest = encoded[:cut], encoded[cut:]
        complete = cut in (0, 1, 3, 6, 10)
        if final and not complete:
            with pytest.raises(UnicodeDecodeError):
                decode_text_python(masked(head, MASKS[3]), MASKS[3], final)
            continue
        text, tail = decode_text_python(masked(head, MASKS[3]), MASKS[3], final)
        assert text.encode() + tail == head
        assert len(tail) < 4
        assert text + (tail + rest).decode() == encoded.decode()


@needs_c
@pytest.mark.parametrize("mask", [None, *MASKS])
@pytest.mark.parametrize("final", [True, False])
def test_c_text_decoding_equals_the_fallback_on_ascii(mask: bytes | None, final: bool) -> None:
    for length in LENGTHS:
        text = bytes(32 + i % 95 for i in range(length + 16))
        wire = masked(text, mask)
        for offset in range(16) if length <= 1000 else (0, 3):
            piece = memoryview(wire)[offset : offset + length]
            expected = outcome(decode_text_python, piece, mask, final)
            assert outcome(_speedups.decode_text, piece, mask, final) == expected
            if mask is None or offset % 4 == 0:  # else the mask is out of step
                assert expected == (text[offset : offset + length].decode(), b"")


# Valid text with characters of every width, and invalid UTF-8 of every kind.
UTF8_SAMPLES = [
    "a\u00e9\u6771\U0001f600z".encode(),
    ("\u00e9" * 40).encode(),
    ("\U0001f600" * 40).encode(),
    ("x" * 70 + "\u20ac").encode(),  # non-ASCII after whole ASCII blocks
    b"ab\xffcd",
    b"\x80",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",  # an encoded surrogate: refused at its second byte
    "\ud7ff\ue000".encode(),  # ED 9F BF, EE 80 80: either side of the surrogates
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xe2\x82",
    b"ok \xe2\x82\x41",
]


@needs_c
@pytest.mark.parametrize("mask", [None, *MASKS])
@pytest.mark.parametrize("sample", UTF8_SAMPLES, ids=repr)
def test_c_text_decoding_equals_the_fallback_on_every_prefix(
    mask: bytes | None, sample: bytes
) -> None:
    """Every prefix, as a piece cut anywhere would be, final or not: the same
    text and cut character, or the same error."""
    for end in range(len(sample) + 1):
        piece = masked(sample[:end], mask)
        for final in (True, False):
            expected = outcome(decode_text_python, piece, mask, final)
            assert outcome(_speedups.decode_text, piece, mask, final) == expected, (end, final)


@needs_c
@pytest.mark.parametrize("mask", [None, b"\x10\x20\x30\x40"])
def test_c_text_decoding_equals_the_fallback_on_large_pieces(mask: bytes | None) -> None:
    # Beyond 64 KiB the C code releases the GIL while it works.
    for text in [*TEXTS, "x" * 65536 + "\u00e9", "\u00e9" + "x" * 65536]:
        encoded = text.encode()
        for cut in (len(encoded), len(encoded) - 1):
            piece = masked(encoded[:cut], mask)
            for final in (True, False):
                expected = outcome(decode_text_python, piece, mask, final)
                assert outcome(_speedups.decode_text, piece, mask, final) == expected


@pytest.mark.parametrize(
    "decode",
    [
        decode_text_python,
        pytest.param(getattr(_speedups, "decode_text", None), marks=needs_c, id="c"),
    ],
)
def test_text_decoding_refuses_a_mask_that_is_not_4_bytes(
    decode: Callable[[bytes, bytes | None, bool], tuple[str, bytes]],
) -> None:
    for mask in (b"abc", b"abcde"):
        with pytest.raises(ValueError, match="4 bytes"):
            decode(b"text", mask, True)


def test_without_the_accelerator_sansws_uses_the_fallback_and_works() -> None:
    # A fresh interpreter in which sansws._speedups cannot be imported, as
    # after an install without a compiler.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["sansws._speedups"] = None
        import sansws
        from sansws import frames
        assert frames.HAS_SPEEDUPS is False
        assert frames.apply_mask is frames.apply_mask_python
        assert frames.build_frame is frames.build_frame_python
        client = sansws.ClientConnection("ws://localhost/", open_timeout=None)
        server = sansws.ServerConnection(open_timeout=None)
        server.receive_data(client.data_to_send())
        server.accept()
        client.receive_data(server.data_to_send())
        client.send_text("héllo " * 20000)
        client.send_binary(bytes(range(256)))
        events = server.receive_data(client.data_to_send())
        assert [e.data for e in events] == ["héllo " * 20000, bytes(range(256))], events
        print("fallback ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fallback ok"
