"""``python -m sansws`` without a URL: an echo server in the same process and
the client talking to it, the README's "run it" command. It needs nothing
else running, and behaves like any client when standard input is not a
terminal (as in CI)."""

from __future__ import annotations

import re

from cli_harness import run_cli, running

BANNER = re.compile(
    r"No URL given: started an echo server at (ws://127\.0\.0\.1:\d+/) in this process\."
)


def test_the_first_line_says_an_echo_server_was_started_and_messages_echo() -> None:
    result = run_cli(stdin=b"hello\n")
    assert result.returncode == 0
    assert result.stdout == "< hello\n"
    banner, connected, closed = result.status_lines
    match = BANNER.fullmatch(banner)
    assert match is not None
    assert connected == f"Connected to {match.group(1)}."
    assert closed == "Connection closed: 1000 (normal closure)."


def test_without_standard_input_it_connects_closes_and_exits_0() -> None:
    result = run_cli(stdin=None)
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.status_lines[-1] == "Connection closed: 1000 (normal closure)."
    assert result.elapsed < 5


def test_sigint_closes_with_1001_and_exits_130() -> None:
    with running() as command:
        command.wait_for_stderr("Connected to")
        command.interrupt()
        result = command.wait()
    assert result.returncode == 130
    assert result.elapsed < 5
    assert result.status_lines[-1] == "Connection closed: 1001 (going away)."


def test_options_apply_to_the_embedded_client() -> None:
    result = run_cli("--json", "-q", stdin=b"a\n")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        '{"type": "text", "data": "a"}\n',
        "",
    )
