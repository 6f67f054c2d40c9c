"""The example of docs/deployment.md runs as documented: several processes
on one port, each stopped gracefully by SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sansws.drivers import sync

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "reuse_port_server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_processes_started_from_the_example_share_a_port() -> None:
    port = free_port()
    processes = [
        subprocess.Popen(
            [sys.executable, str(EXAMPLE), str(port)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        pids = set()
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()  # bounded: the process prints or exits
            assert line.endswith(f"serving on port {port}\n"), line
            pids.add(process.pid)
        served: set[str] = set()
        deadline = time.monotonic() + 10
        while len(served) < 2 and time.monotonic() < deadline:
            with sync.connect(f"ws://127.0.0.1:{port}/") as ws:
                served.add(str(ws.recv(timeout=5)))
        assert served == {f"served by process {pid}" for pid in pids}
        with sync.connect(f"ws://127.0.0.1:{port}/") as ws:
            ws.recv(timeout=5)
            for process in processes:
                process.send_signal(signal.SIGTERM)
            with pytest.raises(sync.ConnectionClosedOK) as closed:
                ws.recv(timeout=5)
            assert closed.value.code == 1001
        for process in processes:
            assert process.wait(10) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
