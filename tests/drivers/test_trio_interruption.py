"""Ctrl+C under ``trio.run``: a real SIGINT sent to a subprocess blocked at
each waiting point of the trio driver ends the wait at once, with every
socket closed; and trio stays an optional dependency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

#: Generous upper bound between SIGINT and the child's exit.
EXIT_BOUND = 5.0

CHILD = textwrap.dedent(
    """
    import os, socket, sys, threading
    import trio
    from sansws import ClientConnection, ServerConnection
    from sansws.drivers.trio import connect, serve

    SCENARIO = sys.argv[1]

    def sockets():
        count = 0
        for name in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
            except OSError:
                pass
        return count

    # The peer runs in a thread, so that the main task has no nursery of its
    # own: what reaches trio.run is what the driver lets through.
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def peer():
        sock, _ = listener.accept()
        if SCENARIO in ("recv", "send", "close", "ping", "leave"):
            # A handshake, then silence: never reads again.
            request = b""
            while b"\\r\\n\\r\\n" not in request:
                request += sock.recv(65536)
            conn = ServerConnection()
            conn.receive_data(request)
            conn.accept()
            sock.sendall(conn.data_to_send())
        stop.wait(60)
        sock.close()

    def ready():
        print("READY", flush=True)

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def hold(ws):
        await trio.sleep(60)

    raw = []

    async def main():
        port = listener.getsockname()[1]
        scheme = "wss" if SCENARIO == "tls" else "ws"
        url = f"{scheme}://127.0.0.1:{port}/"
        if SCENARIO in ("connect", "tls"):
            ready()
            async with connect(url, open_timeout=60):
                pass
        elif SCENARIO == "serve":
            async with serve(echo) as server:
                async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                    await ws.send("hello")
                    await ws.recv()
                    ready()
                    await server.serve_forever()
        elif SCENARIO == "shutdown":
            # Leaving the block waits for a handler that does not return.
            async with serve(hold) as server:
                client = ClientConnection(f"ws://127.0.0.1:{server.port}/")
                raw.append(socket.create_connection(("127.0.0.1", server.port)))
                raw[0].sendall(client.data_to_send())
                await trio.to_thread.run_sync(raw[0].recv, 65536)
                ready()
        else:
            async with connect(url, close_timeout=60, write_limit=1024) as ws:
                if SCENARIO == "recv":
                    ready()
                    await ws.recv()
                elif SCENARIO == "send":
                    ready()
                    while True:
                        await ws.send(b"x" * 65536)
                elif SCENARIO == "close":
                    ready()
                    await ws.close()
                elif SCENARIO == "leave":
                    ready()  # leaving the block waits for the silent peer's Close
                elif SCENARIO == "ping":
                    waiter = await ws.ping()
                    ready()
                    await waiter.wait()

    thread = threading.Thread(target=peer, daemon=True)
    if SCENARIO not in ("serve", "shutdown"):
        thread.start()
    try:
        trio.run(main)
    except KeyboardInterrupt:
        stop.set()
        if SCENARIO not in ("serve", "shutdown"):
            thread.join(10)
        listener.close()
        for sock in raw:
            sock.close()
        print("INTERRUPTED", sockets(), flush=True)
        if "--uncaught" in sys.argv:
            raise
    """
)


def interrupt(scenario: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the child until READY, let it block, send SIGINT; return its
    result and how long it took to exit after the signal."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, scenario, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "READY\n", line + (child.stderr.read() if child.stderr else "")
        time.sleep(0.3)  # let it reach the wait
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=EXIT_BOUND + 10)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:  # pragma: no cover - only when the test fails
            child.kill()
            child.communicate()
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr), elapsed


@pytest.mark.parametrize(
    "scenario", ["connect", "tls", "recv", "send", "close", "ping", "serve", "leave", "shutdown"]
)
def test_ctrl_c_ends_every_wait_at_once_and_closes_every_socket(scenario: str) -> None:
    # "leave" and "shutdown" are waits inside the driver's own nurseries:
    # KeyboardInterrupt comes out of them as itself, not in an exception group.
    result, elapsed = interrupt(scenario)
    assert result.stdout == "INTERRUPTED 0\n", result.stderr
    assert elapsed < EXIT_BOUND


def test_an_uncaught_ctrl_c_exits_with_the_sigint_status() -> None:
    # KeyboardInterrupt itself reaches trio.run's caller, not an exception
    # group from the driver's nurseries.
    result, elapsed = interrupt("recv", "--uncaught")
    assert result.stdout == "INTERRUPTED 0\n"
    assert result.returncode == -signal.SIGINT
    assert "KeyboardInterrupt" in result.stderr
    assert elapsed < EXIT_BOUND


BLOCK_TRIO = textwrap.dedent(
    """
    import sys

    class NoTrio:
        def find_spec(self, name, path=None, target=None):
            if name == "trio" or name.startswith("trio."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoTrio())
    """
)


def test_without_trio_the_driver_fails_to_import_saying_what_to_install() -> None:
    code = BLOCK_TRIO + "import sansws.drivers.trio\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:")
    assert "sansws[trio]" in last


def test_nothing_but_the_trio_driver_imports_trio() -> None:
    # The core and the other drivers work without trio installed.
    code = BLOCK_TRIO + textwrap.dedent(
        """
        import pkgutil, importlib, sansws
        # sansws.testing needs the hypothesis extra, which is not the point here.
        optional = ("sansws.__main__", "sansws.testing", "sansws.drivers.trio")
        for module in pkgutil.walk_packages(sansws.__path__, "sansws."):
            if not module.name.startswith(optional):
                importlib.import_module(module.name)
        import sansws.drivers.asyncio, sansws.drivers.sync
        print(sorted(name for name in sys.modules if name.startswith("sansws")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert result.returncode == 0, result.stderr
    assert "'sansws.connection'" in result.stdout
    assert "'sansws.drivers.sync'" in result.stdout
