"""``python -m sansws serve --workers N``: N server processes on one port.

The parent starts the workers and serves nothing itself. Each worker is
``python -m sansws serve`` with the same host, port and driver, and either
``--reuse-port`` where the system has ``SO_REUSEPORT`` (every worker binds
the port, and the kernel spreads new connections among them) or ``--fd``
elsewhere (the parent binds one listening socket, which every worker
inherits and accepts on).

Signals: the workers run in sessions of their own, so a terminal's Ctrl+C
reaches them once, through the parent, which forwards Ctrl+C and SIGTERM to
every worker: a first Ctrl+C or any SIGTERM shuts each one down gracefully
(1001 to every client), a second Ctrl+C aborts their connections. A worker
whose parent is gone (killed with SIGKILL) shuts down gracefully on its
own: it watches its parent's process id. If a worker fails (the port is
taken), the others are stopped and the parent exits with its status.

Part of the command-line tool, like :mod:`sansws.cli`: it starts processes
and handles signals, which the core never does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cli import Console

__all__ = ["count", "supervise", "watch_parent"]

EXIT_OK, EXIT_FAILURE, EXIT_INTERRUPTED = 0, 1, 130
# How often a worker looks whether its parent is still there.
_PARENT_POLL = 0.2


def count(value: str) -> int:
    """The ``--workers`` argument: an int >= 1."""
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes >= 1, not {value!r}")
    return workers


def watch_parent(parent: int | None) -> None:
    """In a worker: shut down gracefully (SIGTERM to itself) once the
    process ``parent`` is no longer its parent."""
    if parent is None:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="sansws-watch-parent", daemon=True).start()


def _bind(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    # The host's first address: with SO_REUSEPORT this socket only holds a
    # port 0 picked, which the workers bind on every address; without, the
    # workers share it, so they serve that one address (see docs/cli.md).
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def supervise(args: Any, console: Console) -> int:
    """Start ``args.workers`` workers, forward signals, and return the exit
    status once every one has exited."""
    if os.name != "posix":
        console.error("--workers needs a POSIX system; start one server per port instead.")
        return EXIT_FAILURE
    host, port, driver = args.host, args.port, args.driver
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    try:
        # With SO_REUSEPORT the parent's socket only holds the port (it does
        # not listen, so it gets no connection); without, it is the one
        # every worker accepts on.
        held = _bind(host, port, reuse_port=reuse_port)
    except OSError as exc:
        console.error(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.")
        return EXIT_FAILURE
    with held:
        port = held.getsockname()[1]
        command = [sys.executable, "-m", "sansws", "serve", "--host", host, "--port", str(port)]
        command += ["--driver", driver, "--parent", str(os.getpid())]
        if reuse_port:
            command.append("--reuse-port")
            fds: tuple[int, ...] = ()
        else:
            held.listen(100)
            command += ["--fd", str(held.fileno())]
            fds = (held.fileno(),)
        return _run(command, args.workers, fds, console, _shown(host, port, driver, args.workers))


def _shown(host: str, port: int, driver: str, workers: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"Starting {workers} workers on ws://{shown}:{port}/ ({driver} driver); Ctrl+C to stop."


def _run(
    command: list[str], workers: int, fds: tuple[int, ...], console: Console, notice: str
) -> int:
    processes: dict[int, subprocess.Popen[bytes]] = {}
    codes: dict[int, int] = {}
    presses = 0
    stopping: int | None = None  # the signal the workers were sent

    def stop(signum: int) -> None:
        nonlocal stopping
        stopping = signum
        for pid, process in processes.items():
            if pid not in codes:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signum)

    def on_signal(signum: int, frame: object) -> None:
        nonlocal presses
        presses += signum == signal.SIGINT
        stop(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        console.status(notice)
        for number in range(1, workers + 1):
            if stopping is not None:
                break
            process = subprocess.Popen(
                [*command, "--worker", str(number)], pass_fds=fds, start_new_session=True
            )
            processes[process.pid] = process
        if stopping is not None:
            # A signal while a worker was being started reached the others
            # only: this one gets it too (twice is no harm for SIGTERM, and
            # a second SIGINT is what a second Ctrl+C means).
            stop(stopping)
        while len(codes) < len(processes):
            # Interrupted by a signal, waitpid() runs the handler and goes on.
            pid, status = os.waitpid(-1, 0)
            if pid not in processes:
                continue
            code = codes[pid] = os.waitstatus_to_exitcode(status)
            processes[pid].returncode = code
            if code == -signal.SIGTERM and stopping == signal.SIGTERM:
                # Stopped before it could handle SIGTERM (still starting): it
                # had no connection to close.
                codes[pid] = EXIT_OK
            elif code != EXIT_OK and stopping is None:
                stop(signal.SIGTERM)  # one failed: the others go too
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    failures = [code for code in codes.values() if code != EXIT_OK]
    if presses > 1:
        return EXIT_INTERRUPTED
    if failures:
        return EXIT_FAILURE if any(code < 0 for code in failures) else max(failures)
    console.status("Server stopped.")
    return EXIT_OK
