"""``python -m sansws URL``: the interactive client, run as a real subprocess
against loopback servers, with standard input from a pipe or a file.

Timings are upper bounds with wide margins; benchmarks/cli_latency.py
measures how fast Ctrl+C actually takes effect.
"""

from __future__ import annotations

import json
import pathlib
import select
import signal
import socket
import subprocess
import sys
import time

import pytest
from cli_harness import BINARY_PAYLOAD, Servers, cli_command, run_cli, running, wait_for

# An open timeout far longer than any bound below: a failure that comes "at
# once" cannot be the timeout's doing.
SLOW = ("--open-timeout", "60")


def test_end_of_piped_input_closes_after_printing_the_reply(servers: Servers) -> None:
    result = run_cli(servers.url("/echo"), stdin=b"hello\n")
    assert result.returncode == 0
    assert result.stdout == "< hello\n"
    assert result.status_lines == [
        f"Connected to {servers.url('/echo')}.",
        "Connection closed: 1000 (normal closure).",
    ]


def test_every_line_is_sent_as_a_text_message_in_order(servers: Servers) -> None:
    lines = [f"line {i} é ✓" for i in range(50)]
    result = run_cli(servers.url("/echo"), "-q", stdin="\n".join(lines).encode())
    assert result.returncode == 0
    # The last line has no line ending: it is sent all the same.
    assert result.stdout.splitlines() == [f"< {line}" for line in lines]
    assert result.stderr == ""


def test_standard_input_from_a_regular_file(servers: Servers, tmp_path: pathlib.Path) -> None:
    script = tmp_path / "script.txt"
    script.write_bytes(b"one\r\ntwo\n")
    with script.open("rb") as stdin:
        completed = subprocess.run(
            cli_command(servers.url("/echo")),
            stdin=stdin,
            capture_output=True,
            timeout=20,
            check=False,
        )
    assert completed.returncode == 0
    assert completed.stdout.decode().splitlines() == ["< one", "< two"]


def test_no_standard_input_at_all_closes_at_once(servers: Servers) -> None:
    result = run_cli(servers.url("/echo"), stdin=None)
    assert result.returncode == 0
    assert result.status_lines[-1] == "Connection closed: 1000 (normal closure)."
    assert result.elapsed < 5


def test_a_redirect_is_followed_and_each_hop_printed(servers: Servers) -> None:
    result = run_cli(servers.url("/redirect-twice"), stdin=b"hi\n")
    assert result.returncode == 0
    assert result.status_lines == [
        f"Redirected to ws://localhost:{servers.echo}/redirect (301).",
        f"Redirected to ws://localhost:{servers.echo}/echo (302).",
        f"Connected to ws://localhost:{servers.echo}/echo.",
        "Connection closed: 1000 (normal closure).",
    ]
    assert result.stdout == "< hi\n"


def test_a_redirect_without_location_fails_at_once_with_the_status(servers: Servers) -> None:
    result = run_cli(servers.url("/no-location"), *SLOW)
    assert result.returncode == 1
    assert result.status_lines == [
        f"Failed to connect to {servers.url('/no-location')}: "
        "server answered 302 without a Location header."
    ]
    assert result.stdout == ""
    assert result.elapsed < 5


def test_a_rejection_fails_at_once_with_the_status_and_the_start_of_the_body(
    servers: Servers,
) -> None:
    result = run_cli(servers.url("/missing"), *SLOW)
    assert result.returncode == 1
    assert result.status_lines == [
        f"Failed to connect to {servers.url('/missing')}: "
        "server rejected the connection: HTTP 404: no such endpoint here."
    ]
    assert result.elapsed < 5


def test_a_redirect_loop_fails_at_once(servers: Servers) -> None:
    result = run_cli(servers.url("/loop-a"), *SLOW)
    assert result.returncode == 1
    assert result.status_lines == [
        f"Redirected to {servers.url('/loop-b')} (302).",
        f"Failed to connect to {servers.url('/loop-a')}: "
        f"redirect loop: 302 back to {servers.url('/loop-a')}.",
    ]
    assert result.elapsed < 5


def test_max_redirects_zero_refuses_the_first_redirect(servers: Servers) -> None:
    result = run_cli(servers.url("/redirect"), "--max-redirects", "0")
    assert result.returncode == 1
    assert "too many redirects" in result.stderr


def test_a_refused_tcp_connection_is_one_line_naming_the_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        result = run_cli(f"ws://127.0.0.1:{port}/", *SLOW)
    assert result.returncode == 1
    (line,) = result.status_lines
    assert line.startswith(f"Failed to connect to ws://127.0.0.1:{port}/: Connection refused")
    assert result.elapsed < 5


def test_a_silent_server_fails_at_the_open_timeout(servers: Servers) -> None:
    result = run_cli(f"ws://127.0.0.1:{servers.silent}/", "--open-timeout", "0.5")
    assert result.returncode == 1
    assert result.status_lines == [
        f"Failed to connect to ws://127.0.0.1:{servers.silent}/: "
        f"timed out opening ws://127.0.0.1:{servers.silent}/ after 0.5 seconds."
    ]
    assert 0.4 < result.elapsed < 5


def test_sigint_during_the_handshake_exits_130_at_once(servers: Servers) -> None:
    before = len(servers.silent_requests())
    with running(f"ws://127.0.0.1:{servers.silent}/", *SLOW) as command:
        wait_for(lambda: len(servers.silent_requests()) > before, 10)
        command.interrupt()
        result = command.wait()
    assert result.returncode == 130
    assert result.elapsed < 5
    assert "Traceback" not in result.stderr


def test_sigint_during_the_tls_handshake_exits_130_at_once(servers: Servers) -> None:
    before = len(servers.silent_requests())
    with running(f"wss://127.0.0.1:{servers.silent}/", *SLOW) as command:
        wait_for(lambda: len(servers.silent_requests()) > before, 10)
        command.interrupt()
        result = command.wait()
    assert result.returncode == 130
    assert result.elapsed < 5
    assert result.stderr == ""


# Runs the command with getaddrinfo() stuck for a minute on one host name, as
# with a resolver that does not answer; through main() and a normal exit, so
# that a lookup thread the interpreter would join at exit would show.
STUCK_RESOLVER = """\
import os, socket, sys, time
real_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if host == "stuck.invalid":
        os.write(2, b"resolving\\n")
        time.sleep(60)
    return real_getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
from sansws.cli import main
sys.exit(main())
"""


def test_sigint_while_resolving_exits_130_without_waiting_for_the_resolver() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_RESOLVER, "ws://stuck.invalid/", *SLOW],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        assert process.stderr.readline() == b"resolving\n"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 130
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for stream in (process.stdin, process.stderr):
            assert stream is not None
            stream.close()


def test_sigint_while_following_a_redirect_exits_130_at_once(servers: Servers) -> None:
    before = len(servers.silent_requests())
    with running(servers.url("/to-silent"), *SLOW) as command:
        wait_for(lambda: len(servers.silent_requests()) > before, 10)
        command.interrupt()
        result = command.wait()
    assert result.returncode == 130
    assert result.elapsed < 5
    assert result.stderr == f"Redirected to ws://127.0.0.1:{servers.silent}/ (302).\n"


def test_sigint_while_connected_closes_with_1001_and_exits_130(servers: Servers) -> None:
    with running(servers.url("/idle-sigint")) as command:
        command.wait_for_stderr("Connected to")
        command.interrupt()
        result = command.wait()
    assert result.returncode == 130
    assert result.elapsed < 5
    assert result.stderr.splitlines()[-1] == "Connection closed: 1001 (going away)."
    assert servers.wait_close_code("/idle-sigint") == 1001


def test_end_of_input_keeps_printing_until_the_close_completes(servers: Servers) -> None:
    # This server sends a message after receiving the client's Close frame.
    result = run_cli(f"ws://127.0.0.1:{servers.late}/", stdin=b"hello\n")
    assert result.returncode == 0
    assert result.stdout == "< late reply\n"
    assert result.status_lines[-1] == "Connection closed: 1000 (normal closure)."


def test_a_server_close_ends_the_client_with_its_code_and_reason(servers: Servers) -> None:
    with running(servers.url("/server-closes")) as command:  # standard input stays open
        result = command.wait()
    assert result.returncode == 0
    assert result.stdout == "< bye\n"
    assert result.status_lines[-1] == "Connection closed: 1000 (normal closure) done."


def test_a_close_with_an_error_code_exits_1(servers: Servers) -> None:
    with running(servers.url("/server-fails")) as command:
        result = command.wait()
    assert result.returncode == 1
    assert result.status_lines[-1] == "Connection closed: 1011 (internal error) oops."


def test_binary_messages_are_shown_in_hex_shortened_after_32_bytes(servers: Servers) -> None:
    result = run_cli(servers.url("/binary"))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "< (binary, 48 bytes) " + BINARY_PAYLOAD[:32].hex(" ") + " ...",
        "< (binary, 2 bytes) 00 ff",
    ]


def test_terminal_control_characters_in_text_are_escaped(servers: Servers) -> None:
    result = run_cli(servers.url("/controls"))
    assert result.stdout == "< a\\x1b[2Jb\\nc\\x07\n"
    assert "\x1b" not in result.stdout


def test_json_prints_one_object_per_message(servers: Servers) -> None:
    result = run_cli(servers.url("/binary"), "--json", stdin="héllo\n".encode())
    assert result.returncode == 0
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"type": "binary", "data": BINARY_PAYLOAD.hex()},
        {"type": "binary", "data": "00ff"},
        {"type": "text", "data": "héllo"},
    ]


def test_binary_sends_each_hex_line_as_a_binary_message(servers: Servers) -> None:
    result = run_cli(servers.url("/echo"), "--binary", stdin=b"48 69\nnot hex\n00FF\n")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["< (binary, 2 bytes) 48 69", "< (binary, 2 bytes) 00 ff"]
    assert "Not sent: 'not hex' is not hexadecimal" in result.stderr


def test_headers_subprotocol_and_origin_are_sent(servers: Servers) -> None:
    result = run_cli(
        servers.url("/headers"),
        "--header",
        "X-Trace: 42",
        "--header",
        "X-Other:two words ",
        "--origin",
        "https://example.test",
        "--subprotocol",
        "chat",
    )
    assert result.returncode == 0
    headers = json.loads(result.stdout.removeprefix("< ").splitlines()[0])
    assert headers["X-Trace"] == "42"
    assert headers["X-Other"] == "two words"
    assert headers["Origin"] == "https://example.test"
    assert headers["Sec-WebSocket-Protocol"] == "chat"


def test_a_closed_output_pipe_ends_the_connection_quietly(servers: Servers) -> None:
    # As in `python -m sansws URL | head -1`, with standard input still open.
    process = subprocess.Popen(
        cli_command(servers.url("/echo")),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        process.stdin.write(b"first\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready
        assert process.stdout.readline() == b"< first\n"
        process.stdout.close()
        process.stdin.write(b"second\n")
        process.stdin.flush()
        assert process.wait(10) == 0
        stderr = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.stdin.close()
        process.stderr.close()
    assert stderr.splitlines()[-1] == "Connection closed: 1000 (normal closure)."
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr


def test_quiet_prints_messages_only(servers: Servers) -> None:
    result = run_cli(servers.url("/echo"), "-q", stdin=b"x\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, "< x\n", "")


def test_insecure_skips_certificate_verification_with_a_warning(servers: Servers) -> None:
    url = f"wss://127.0.0.1:{servers.tls}/echo"
    result = run_cli(url, "--insecure", stdin=b"secret\n")
    assert result.returncode == 0
    assert result.stdout == "< secret\n"
    assert result.status_lines[0].startswith("Warning: --insecure")
    assert f"Connected to {url}." in result.status_lines


def test_an_untrusted_certificate_fails_in_one_line(servers: Servers) -> None:
    url = f"wss://127.0.0.1:{servers.tls}/echo"
    result = run_cli(url)
    assert result.returncode == 1
    (line,) = result.status_lines
    assert line.startswith(f"Failed to connect to {url}: TLS certificate verification failed: ")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["http://example.com/"], "isn't a valid WebSocket URI"),
        (["--header", "no-colon", "ws://a/"], "expected NAME:VALUE"),
        (["--header", "Sec-WebSocket-Key: x", "ws://a/"], "Sec-WebSocket-Key"),
        (["--max-redirects", "-1", "ws://a/"], "expected a whole number"),
        (["--open-timeout", "soon", "ws://a/"], "expected a number of seconds"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_invalid_arguments_exit_2_before_any_connection(args: list[str], complaint: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert "Connected" not in result.stderr


def test_help_documents_every_option_with_examples() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for option in (
        "--header NAME:VALUE",
        "--subprotocol",
        "--origin",
        "--max-redirects",
        "--open-timeout",
        "--ping-interval",
        "--insecure",
        "--binary",
        "--json",
        "-q, --quiet",
        "serve",
        "examples:",
        "exit status:",
    ):
        assert option in result.stdout, option
