"""The client on a pseudo-terminal: typed lines are sent, incoming lines are
inserted above the line being typed, Ctrl+D closes, and Ctrl+C typed on the
terminal (SIGINT from the terminal driver) closes with 1001.

The screen is rendered by pyte, a VT100 emulator, from everything the
terminal received, the command's output and the terminal's own echo of
what was typed, in order.
"""

from __future__ import annotations

from cli_harness import Servers, Terminal


def non_blank(screen: list[str]) -> list[str]:
    return [line for line in screen if line]


def test_incoming_messages_do_not_mangle_the_line_being_typed(servers: Servers) -> None:
    url = servers.url("/tick-typing")
    terminal = Terminal(url)
    try:
        terminal.read_until("> ")
        terminal.type("hel")  # the server sends "tick" half a second after opening
        terminal.read_until("< tick")
        assert non_blank(terminal.screen()) == [f"Connected to {url}.", "< tick", "> hel"]
        terminal.type("lo\n")
        terminal.read_until("< hello")
        terminal.type("\x04")  # Ctrl+D: end of input
        assert terminal.wait() == 0
    finally:
        terminal.close()
    assert non_blank(terminal.screen()) == [
        f"Connected to {url}.",
        "< tick",
        "> hello",
        "< hello",
        "Connection closed: 1000 (normal closure).",
    ]


def test_a_message_longer_than_a_row_is_inserted_whole(servers: Servers) -> None:
    terminal = Terminal(servers.url("/echo"))
    long_line = "x" * 150  # one and a half rows of 100 columns
    try:
        terminal.read_until("> ")
        terminal.type(long_line + "\n")
        terminal.read_until("> ", timeout=5)  # the prompt after the line was read
        terminal.read_until("xxx\x1b8")  # the end of the echoed message
        terminal.type("ab")
        terminal.read_until("ab")
        screen = non_blank(terminal.screen())
        terminal.type("\x15\x04")  # Ctrl+U erases the typed text, Ctrl+D ends the input
        assert terminal.wait() == 0
    finally:
        terminal.close()
    # The typed line wraps over two rows, and so does the reply.
    assert screen[-5:] == [
        "> " + long_line[:98],
        long_line[98:],
        "< " + long_line[:98],
        long_line[98:],
        "> ab",
    ]


def test_ctrl_c_on_the_terminal_closes_with_1001_and_exits_130(servers: Servers) -> None:
    terminal = Terminal(servers.url("/tty-ctrl-c"))
    try:
        terminal.read_until("> ")
        terminal.type("half a line")
        terminal.type("\x03")  # Ctrl+C: the terminal sends SIGINT
        assert terminal.wait() == 130
    finally:
        terminal.close()
    assert servers.wait_close_code("/tty-ctrl-c") == 1001
    assert non_blank(terminal.screen())[-1] == "Connection closed: 1001 (going away)."


def test_the_embedded_echo_server_in_a_terminal() -> None:
    terminal = Terminal()
    try:
        terminal.read_until("> ")
        terminal.type("hi there\n")
        terminal.read_until("< hi there")
        terminal.type("\x04")
        assert terminal.wait() == 0
    finally:
        terminal.close()
    screen = non_blank(terminal.screen())
    assert screen[0].startswith("No URL given: started an echo server at ws://127.0.0.1:")
    assert screen[0].endswith(" in this process.")
    url = screen[0].split()[8]
    assert screen[1:] == [
        "Type a message and press Enter to send it; Ctrl+D closes.",
        f"Connected to {url}.",
        "> hi there",
        "< hi there",
        "Connection closed: 1000 (normal closure).",
    ]
