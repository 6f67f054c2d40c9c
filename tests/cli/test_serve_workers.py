"""``python -m sansws serve``: SIGTERM shuts a server down as gracefully as
Ctrl+C does, and ``--workers N`` runs N processes on one port that SIGTERM
or Ctrl+C stop together, every client getting 1001. The clients are
websockets' sync client, not sansws."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest
from cli_harness import Running, Terminal, running, wait_for
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

DRIVERS = ["asyncio", "trio", "sync"]
WORKER_LISTENING = re.compile(
    r"\[worker (\d)\] Listening on ws://127\.0\.0\.1:(\d+)/ \((\w+) driver\); Ctrl\+C to stop\."
)


def close_codes(clients: list[ClientConnection]) -> list[int | None]:
    """The close code each client received (None: no Close frame)."""
    codes: list[int | None] = []
    for ws in clients:
        try:
            message = ws.recv(timeout=10)  # TimeoutError if the server never closes
        except ConnectionClosedOK as closed:
            codes.append(None if closed.rcvd is None else closed.rcvd.code)
        else:
            raise AssertionError(f"a message instead of the close: {message!r}")
    return codes


def workers_of(parent: int) -> list[int]:
    """The process ids of ``parent``'s children (Linux)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children]


def workers_port(server: Running, workers: int) -> int:
    """Wait until every worker listens; return the shared port."""
    wait_for(
        lambda: len(WORKER_LISTENING.findall(server.stderr)) == workers,
        10,
        lambda: server.stderr,
    )
    ports = {int(port) for _, port, _ in WORKER_LISTENING.findall(server.stderr)}
    assert len(ports) == 1, server.stderr
    return ports.pop()


@pytest.mark.parametrize("driver", DRIVERS)
def test_sigterm_closes_every_client_with_1001_and_exits_0(driver: str) -> None:
    with running("serve", "--port", "0", "--driver", driver) as server:
        server.wait_for_stderr("Ctrl+C to stop.")
        port = int(re.search(r":(\d+)/", server.stderr).group(1))  # type: ignore[union-attr]
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"
            server.process.send_signal(signal.SIGTERM)
            assert close_codes([ws]) == [1001]
        result = server.wait()
    assert result.returncode == 0
    assert result.stderr.splitlines()[-1] == "Server stopped."


def serve_200_then_stop(server: Running, stop: signal.Signals) -> None:
    port = workers_port(server, 2)
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(connect(f"ws://127.0.0.1:{port}/{i}", open_timeout=5))
            for i in range(200)
        ]
        for i, ws in enumerate(clients):
            ws.send(str(i))
            assert ws.recv(timeout=5) == str(i)
        served = re.findall(r"^\[worker (\d)\] .* connected to /", server.stderr, re.MULTILINE)
        # The kernel spread the connections: both workers served some.
        assert {"1", "2"} <= set(served), server.stderr
        assert len(served) == 200
        server.process.send_signal(stop)
        assert close_codes(clients) == [1001] * 200


@pytest.mark.parametrize("driver", DRIVERS)
def test_two_workers_share_the_port_and_sigterm_stops_both(driver: str) -> None:
    with running("serve", "--port", "0", "--driver", driver, "--workers", "2") as server:
        serve_200_then_stop(server, signal.SIGTERM)
        result = server.wait(15)
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Starting 2 workers on ws://127.0.0.1:")
    for worker in ("1", "2"):
        assert lines.count(f"[worker {worker}] Server stopped.") == 1
    assert lines[-1] == "Server stopped."
    assert "Traceback" not in result.stderr


def test_ctrl_c_to_the_parent_stops_every_worker_gracefully() -> None:
    with running("serve", "--port", "0", "--workers", "2") as server:
        serve_200_then_stop(server, signal.SIGINT)
        result = server.wait(15)
    assert result.returncode == 0
    assert result.stderr.splitlines()[-1] == "Server stopped."


def test_without_so_reuseport_the_workers_share_one_inherited_socket() -> None:
    # The parent of a system without SO_REUSEPORT: it binds and listens, and
    # each worker accepts on the socket it inherited (--fd).
    script = (
        "import socket, sys; del socket.SO_REUSEPORT; from sansws.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", script, "serve", "--port", "0", "--workers", "2"]
    with running(command=command) as server:
        port = workers_port(server, 2)
        for worker in workers_of(server.process.pid):
            arguments = Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")
            assert b"--fd" in arguments, arguments
            assert b"--reuse-port" not in arguments
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            ws.send("shared")
            assert ws.recv(timeout=5) == "shared"
            server.process.send_signal(signal.SIGTERM)
            assert close_codes([ws]) == [1001]
        result = server.wait(15)
    assert result.returncode == 0


def test_workers_report_a_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with running("serve", "--port", str(port), "--workers", "2") as server:
            result = server.wait()
    assert result.returncode == 1
    assert result.stderr.startswith(f"Cannot listen on 127.0.0.1:{port}: ")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_workers_must_be_a_positive_number(value: str) -> None:
    with running("serve", "--workers", value) as server:
        result = server.wait()
    assert result.returncode == 2
    assert "expected a number of processes >= 1" in result.stderr


def test_ctrl_c_typed_on_a_terminal_reaches_each_worker_once() -> None:
    # The workers run in sessions of their own: the terminal's SIGINT goes to
    # the parent only, which forwards it once, so one Ctrl+C is graceful.
    terminal = Terminal("serve", "--port", "0", "--workers", "2")
    try:
        terminal.read_until("[worker 1] Listening")
        terminal.read_until("[worker 2] Listening")
        found = re.search(rb"127\.0\.0\.1:(\d+)/", bytes(terminal.output))
        assert found is not None
        port = int(found.group(1))
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            ws.send("typed")
            assert ws.recv(timeout=5) == "typed"
            terminal.type("\x03")
            assert close_codes([ws]) == [1001]
        assert terminal.wait() == 0
    finally:
        terminal.close()
    assert b"Server stopped." in terminal.output


def test_workers_whose_parent_was_killed_shut_down_by_themselves() -> None:
    with running("serve", "--port", "0", "--workers", "2") as server:
        port = workers_port(server, 2)
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            ws.send("orphan")
            assert ws.recv(timeout=5) == "orphan"
            server.process.kill()  # SIGKILL: the parent forwards nothing
            assert close_codes([ws]) == [1001]

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        wait_for(refused, 10, lambda: "a worker still listens")


def test_a_worker_that_dies_stops_the_others_and_the_parent_fails() -> None:
    with running("serve", "--port", "0", "--workers", "2") as server:
        port = workers_port(server, 2)
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            ws.send("x")
            assert ws.recv(timeout=5) == "x"
            lines = server.stderr.splitlines()
            [served] = [line for line in lines if "connected to /" in line]
            # Kill the worker that does not hold this connection (SIGKILL:
            # the out-of-memory killer's way); the parent stops the other.
            holder = served.split("]")[0].removeprefix("[worker ")
            [victim] = [
                pid
                for pid in workers_of(server.process.pid)
                if f"--worker\0{holder}\0" not in Path(f"/proc/{pid}/cmdline").read_text()
            ]
            os.kill(victim, signal.SIGKILL)
            assert close_codes([ws]) == [1001]
        result = server.wait(15)
    assert result.returncode == 1
    assert "Server stopped." not in result.stderr.splitlines()[-1:]
