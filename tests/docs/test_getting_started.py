"""Every client and server on the getting-started page runs as printed: each
driver's server answers each driver's client."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
DRIVERS = ("sync", "asyncio", "trio")


def blocks(section: str) -> dict[str, str]:
    """The code of each tab under the heading ``section``."""
    text = PAGE.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r'=== "(\w+)"\n\n    ```python\n(.*?)\n    ```', body, flags=re.S)
    return {name: "\n".join(line[4:] for line in code.splitlines()) for name, code in found}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_page_has_a_client_and_a_server_for_every_driver() -> None:
    assert set(blocks("A client")) == set(DRIVERS)
    assert set(blocks("A server")) == set(DRIVERS)


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_server_echoes_each_client(driver: str) -> None:
    port = free_port()
    server_code = blocks("A server")[driver].replace("8765", str(port))
    server = subprocess.Popen([sys.executable, "-c", server_code])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        for client in DRIVERS:
            code = blocks("A client")[client].replace("8765", str(port))
            result = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            assert (client, result.stdout, result.returncode) == (client, "Hello!\n", 0), (
                result.stderr
            )
    finally:
        server.terminate()
        server.wait(timeout=10)
