"""The client's pieces, in-process: how messages and closes are printed, how
input lines become messages, the terminal sequence that inserts a line
above the one being typed, and the readers of standard input."""

from __future__ import annotations

import asyncio
import io
import os
import pathlib
import sys
from collections.abc import Iterator

import pyte
import pytest

from sansws import cli


def test_control_characters_are_escaped_and_other_text_kept() -> None:
    assert cli.escape_controls("plain é ✓ 👨\u200d👩") == "plain é ✓ 👨\u200d👩"
    assert cli.escape_controls("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert cli.escape_controls("\x1b[31mred\x07\x7f\x9b") == "\\x1b[31mred\\x07\\x7f\\x9b"


def test_binary_is_shown_in_hex_up_to_32_bytes() -> None:
    assert cli.describe_binary(b"") == "(binary, 0 bytes)"
    assert cli.describe_binary(b"\x00") == "(binary, 1 byte) 00"
    assert cli.describe_binary(bytes(32)) == "(binary, 32 bytes) " + " ".join(["00"] * 32)
    assert cli.describe_binary(bytes(33)) == "(binary, 33 bytes) " + " ".join(["00"] * 32) + " ..."


def test_messages_are_formatted_as_lines_or_json() -> None:
    assert cli.format_message("hi\x1b") == "< hi\\x1b"
    assert cli.format_message(b"hi") == "< (binary, 2 bytes) 68 69"
    assert cli.format_message("hi\x1b", as_json=True) == '{"type": "text", "data": "hi\\u001b"}'
    assert cli.format_message(b"\xff" * 40, as_json=True) == (
        '{"type": "binary", "data": "' + "ff" * 40 + '"}'
    )


def test_the_closing_line_names_the_code_and_escapes_the_reason() -> None:
    assert cli.describe_close(1000, "") == "Connection closed: 1000 (normal closure)."
    assert cli.describe_close(4001, "bye\x1b") == "Connection closed: 4001 (private use) bye\\x1b."
    assert cli.describe_close(None, None) == "Connection closed."


def test_input_lines_become_text_or_binary_messages() -> None:
    assert cli.parse_input_line(b"caf\xc3\xa9\r") == "café"
    assert cli.parse_input_line(b"\xff") == "\ufffd"
    assert cli.parse_input_line(b"48 69\r", binary=True) == b"Hi"
    assert cli.parse_input_line(b"", binary=True) == b""
    for bad in (b"4", b"zz", b"\xc3\xa9"):
        with pytest.raises(ValueError, match=r"hexadecimal|decode"):
            cli.parse_input_line(bad, binary=True)


def test_wide_characters_take_two_columns_and_combining_marks_none() -> None:
    assert cli.display_width("abc") == 3
    assert cli.display_width("日本") == 4
    assert cli.display_width("e\u0301") == 1


def render(text: str, columns: int = 20, rows: int = 5) -> pyte.Screen:
    screen = pyte.Screen(columns, rows)
    pyte.Stream(screen).feed(text.replace("\n", "\r\n"))
    return screen


@pytest.mark.parametrize("filler", [0, 4])  # the input line at the bottom, or not
@pytest.mark.parametrize("message", ["< short", "< " + "y" * 30])
def test_a_line_inserted_above_input_leaves_the_typed_line_and_cursor(
    filler: int, message: str
) -> None:
    before = "\n".join(f"old {i}" for i in range(filler)) + ("\n" if filler else "") + "> typ"
    screen = render(before + cli.insert_above_input(message, 20))
    lines = [line.rstrip() for line in screen.display]
    typed_row = screen.cursor.y
    assert lines[typed_row] == "> typ"
    assert screen.cursor.x == len("> typ")
    shown = "".join(lines[typed_row - len(message) // 20 - 1 : typed_row])
    assert shown == message


@pytest.fixture
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


async def read_all(source: cli.LineSource) -> list[bytes]:
    lines = []
    while (line := await source.readline()) is not None:
        lines.append(line)
    source.close()
    return lines


def test_lines_are_split_across_chunks_and_a_last_partial_line_kept(
    event_loop: asyncio.AbstractEventLoop,
) -> None:
    lines = cli._Lines(event_loop)
    for chunk in (b"a", b"b\ncd", b"\n\nlast"):
        lines.feed(chunk)
    lines.feed_eof()

    async def read() -> list[bytes | None]:
        return [await lines.readline() for _ in range(5)]

    assert event_loop.run_until_complete(read()) == [b"ab", b"cd", b"", b"last", None]


def with_stdin(
    monkeypatch: pytest.MonkeyPatch, loop: asyncio.AbstractEventLoop, fd: int
) -> list[bytes]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.FileIO(fd, closefd=False)))

    async def read() -> list[bytes]:
        return await read_all(await cli.open_input())

    return loop.run_until_complete(read())


def test_a_pipe_is_read_by_the_loop_and_left_open_and_blocking(
    monkeypatch: pytest.MonkeyPatch, event_loop: asyncio.AbstractEventLoop
) -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"one\ntwo\n")
        os.close(write_end)
        assert with_stdin(monkeypatch, event_loop, read_end) == [b"one", b"two"]
        assert os.get_blocking(read_end)
        os.fstat(read_end)  # still open
    finally:
        os.close(read_end)


def test_a_regular_file_is_read_without_the_selector(
    monkeypatch: pytest.MonkeyPatch, event_loop: asyncio.AbstractEventLoop, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(b"x\n" * 1000)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert not cli._pollable(fd)
        assert with_stdin(monkeypatch, event_loop, fd) == [b"x"] * 1000
    finally:
        os.close(fd)


def test_no_standard_input_is_an_empty_input(
    monkeypatch: pytest.MonkeyPatch, event_loop: asyncio.AbstractEventLoop
) -> None:
    monkeypatch.setattr(sys, "stdin", None)

    async def read() -> list[bytes]:
        return await read_all(await cli.open_input())

    assert event_loop.run_until_complete(read()) == []


def test_the_thread_fallback_hands_lines_to_the_loop(event_loop: asyncio.AbstractEventLoop) -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"from a thread\n")
        os.close(write_end)
        source = cli._ThreadInput(event_loop, read_end)
        assert event_loop.run_until_complete(read_all(source)) == [b"from a thread"]
    finally:
        os.close(read_end)
