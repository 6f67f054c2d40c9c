"""The frames module: the reference parser and serializer, masking, and the
close code helpers."""

from __future__ import annotations

import pytest

import sansws.frames
from sansws.frames import (
    CloseCode,
    Frame,
    MaskKeySource,
    Opcode,
    apply_mask,
    apply_mask_python,
    close_code_name,
    is_valid_close_code,
    parse_close_payload,
    parse_frame,
    serialize_close_payload,
    serialize_frame,
    serialize_header,
)

MASK = b"\x01\x02\x03\x04"


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (125, b"\x7d"),
        (126, b"\x7e\x00\x7e"),
        (65535, b"\x7e\xff\xff"),
        (65536, b"\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (2**63 - 1, b"\x7f\x7f\xff\xff\xff\xff\xff\xff\xff"),
    ],
)
def test_serialize_header_uses_the_shortest_length_encoding(length: int, encoded: bytes) -> None:
    assert serialize_header(True, 0, Opcode.BINARY, length, None) == b"\x82" + encoded
    masked = serialize_header(False, 0x40, Opcode.TEXT, length, MASK)
    assert masked == bytes([0x41, 0x80 | encoded[0]]) + encoded[1:] + MASK


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
@pytest.mark.parametrize("mask", [None, MASK])
def test_serialize_then_parse_gives_the_frame_back(size: int, mask: bytes | None) -> None:
    frame = Frame(Opcode.BINARY, bytes(i % 251 for i in range(size)), fin=False, rsv1=True)
    data = frame.serialize(mask)
    assert parse_frame(data) == (frame, mask is not None, len(data))
    assert parse_frame(data + b"next") == (frame, mask is not None, len(data))


def test_reserved_bits_and_opcode_survive_the_round_trip() -> None:
    frame = Frame(0xB, b"x", fin=True, rsv1=False, rsv2=True, rsv3=True)
    data = serialize_frame(frame)
    assert data[0] == 0x80 | 0x20 | 0x10 | 0xB
    assert parse_frame(data) == (frame, False, 3)


@pytest.mark.parametrize("size", [5, 300, 70000])
@pytest.mark.parametrize("mask", [None, MASK])
def test_parse_frame_returns_none_for_every_incomplete_prefix(
    size: int, mask: bytes | None
) -> None:
    data = serialize_frame(Frame(Opcode.TEXT, b"a" * size), mask)
    header_size = len(data) - size
    for end in [*range(header_size + 1), len(data) - 1]:
        assert parse_frame(data[:end]) is None


@pytest.mark.parametrize(
    "data",
    [b"\x82\x7e\x00\x7d" + b"x" * 125, b"\x82\x7f" + (65535).to_bytes(8, "big") + b"x" * 65535],
)
def test_parse_frame_refuses_a_length_not_in_its_shortest_encoding(data: bytes) -> None:
    with pytest.raises(ValueError, match="shortest"):
        parse_frame(data)


def test_parse_frame_refuses_a_64_bit_length_with_the_top_bit_set() -> None:
    with pytest.raises(ValueError, match="most significant bit"):
        parse_frame(b"\x82\x7f\x80" + b"\x00" * 7)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1000, 65536 + 3])
@pytest.mark.parametrize("mask", [MASK, b"\x00\x00\x00\x00", b"\xff\xfe\x80\x7f"])
def test_apply_mask_xors_with_the_repeated_key(size: int, mask: bytes) -> None:
    data = bytes(i % 256 for i in range(size))
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert apply_mask_python(data, mask) == expected
    assert apply_mask(data, mask) == expected
    assert apply_mask(expected, mask) == data


def test_apply_mask_accepts_bytearray_and_memoryview() -> None:
    expected = apply_mask_python(b"abcdef", MASK)
    assert apply_mask(bytearray(b"abcdef"), MASK) == expected
    assert apply_mask(memoryview(b"abcdef"), MASK) == expected
    assert apply_mask_python(memoryview(b"abcdef"), MASK) == expected


def test_mask_keys_are_handed_out_four_bytes_at_a_time_and_refilled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def token_bytes(n: int) -> bytes:
        calls.append(n)
        return bytes([len(calls)]) * n

    monkeypatch.setattr(sansws.frames.secrets, "token_bytes", token_bytes)
    source = MaskKeySource()
    keys = [source.next_key() for _ in range(MaskKeySource._POOL_SIZE // 4 + 1)]
    assert all(len(key) == 4 for key in keys)
    assert keys[0] == keys[-2] == b"\x01" * 4
    assert keys[-1] == b"\x02" * 4  # a fresh draw once the pool is used up
    assert len(calls) == 2


@pytest.mark.parametrize(
    "code",
    [1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 4999],
)
def test_codes_that_may_be_sent(code: int) -> None:
    assert is_valid_close_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_codes_that_may_not_be_sent(code: int) -> None:
    assert not is_valid_close_code(code)


def test_close_code_names() -> None:
    assert close_code_name(1001) == "going away"
    assert close_code_name(CloseCode.MESSAGE_TOO_BIG) == "message too big"
    assert close_code_name(3000) == "registered"
    assert close_code_name(4001) == "private use"
    assert close_code_name(2000) == "unknown"


def test_close_payload_round_trip() -> None:
    assert serialize_close_payload(None) == b""
    assert serialize_close_payload(1000) == b"\x03\xe8"
    assert serialize_close_payload(4000, "é") == b"\x0f\xa0\xc3\xa9"
    assert parse_close_payload(b"\x0f\xa0\xc3\xa9") == (4000, "é")
    assert parse_close_payload(b"") == (1005, "")


def test_parse_close_payload_refusals() -> None:
    with pytest.raises(ValueError, match="1 byte"):
        parse_close_payload(b"\x03")
    with pytest.raises(ValueError, match="invalid close code 1005"):
        parse_close_payload(b"\x03\xed")
    with pytest.raises(UnicodeDecodeError):
        parse_close_payload(b"\x03\xe8\xff")
