"""Blocking-socket plumbing for the sync driver: every wait goes through
:func:`wait_fds`, which polls file descriptors with a timeout.

A wait in ``poll`` (or ``select`` where there is no ``poll``) returns early
for three reasons only: a descriptor is ready, the timeout passed, or a
signal arrived. Python retries an interrupted ``poll`` itself after running
the signal's handler (PEP 475), so Ctrl+C's default handler raises
KeyboardInterrupt out of the wait at once; nothing here catches it.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import select
import socket
import ssl as ssl_module
import time
from collections.abc import Sequence
from typing import Any

from . import _common

#: What a non-blocking socket raises when it cannot read or write now.
WANT: tuple[type[Exception], ...] = (BlockingIOError, InterruptedError)
WANT += (ssl_module.SSLWantReadError, ssl_module.SSLWantWriteError)

_HAS_POLL = hasattr(select, "poll")
_READ = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP if _HAS_POLL else 0
_WRITE = select.POLLOUT | select.POLLERR | select.POLLHUP if _HAS_POLL else 0


def wait_fds(
    read: Sequence[int], write: Sequence[int], timeout: float | None
) -> tuple[set[int], set[int]]:
    """Wait until a descriptor in ``read`` is readable or one in ``write``
    writable, at most ``timeout`` seconds (``None``: no limit). Returns the
    ready ones. Raises whatever a signal handler raises."""
    if timeout is not None:
        timeout = max(timeout, 0.0)
    if not _HAS_POLL:  # pragma: no cover - Windows
        r, w, x = select.select(read, write, [*read, *write], timeout)
        return set(r) | set(x), set(w) | set(x)
    poller = select.poll()
    for fd in read:
        poller.register(fd, _READ)
    for fd in write:
        poller.register(fd, _READ | _WRITE if fd in read else _WRITE)
    # poll() takes milliseconds; round up so a short wait never spins.
    ready = poller.poll(None if timeout is None else math.ceil(timeout * 1000))
    readable = {fd for fd, mask in ready if mask & _READ and fd in read}
    writable = {fd for fd, mask in ready if mask & _WRITE and fd in write}
    return readable, writable


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


class Wakeup:
    """A wake-up channel other threads write to, to end a ``poll`` at once.

    Several threads may wait on one channel; a notification must reach every
    one of them. Each waiter registers the generation it saw before
    sleeping, under the owner's lock; :meth:`notify` bumps the generation and
    makes the channel readable; the channel is drained only once no sleeper
    is left that has not seen the latest generation. Call every method with
    the owner's lock held.
    """

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            # One descriptor instead of two: a server holds one per connection.
            self.fd = self._write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - not Linux
            self.fd, self._write_fd = os.pipe()
            os.set_blocking(self.fd, False)
            os.set_blocking(self._write_fd, False)
        self._generation = 0
        self._sleepers: dict[int, int] = {}
        self._pending = False
        self.closed = False

    def notify(self) -> None:
        self._generation += 1
        if self._sleepers and not self._pending and not self.closed:
            self._pending = True
            with contextlib.suppress(BlockingIOError):  # already readable
                os.write(self._write_fd, (1).to_bytes(8, "little"))  # an eventfd's counter

    def sleep(self) -> int:
        """Register a waiter about to poll ``fd``; returns its token."""
        generation = self._generation
        self._sleepers[generation] = self._sleepers.get(generation, 0) + 1
        return generation

    def woke(self, token: int) -> None:
        """Unregister a waiter whose poll returned."""
        count = self._sleepers.pop(token) - 1
        if count:
            self._sleepers[token] = count
        if self._pending and all(g >= self._generation for g in self._sleepers):
            self._pending = False
            with contextlib.suppress(BlockingIOError):
                os.read(self.fd, 4096)

    @property
    def sleeping(self) -> bool:
        return bool(self._sleepers)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for fd in {self.fd, self._write_fd}:
                os.close(fd)


class Flag:
    """A descriptor that turns readable for good once :meth:`set` is called:
    every present and future waiter sees it (a server shutting down)."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()
        self.is_set = False

    def set(self) -> None:
        if not self.is_set:
            self.is_set = True
            os.write(self._write_fd, b"\0")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            os.close(self._write_fd)
            self.fd = self._write_fd = -1


# ---------------------------------------------------------------- opening


class TransportTimeout(Exception):
    """A transport step reached the open deadline, or was abandoned."""


def resolve(host: str, port: int, deadline: float | None) -> list[Any]:
    """``getaddrinfo`` for TCP (see :func:`._common.resolve`), waited for in
    ``poll``, so that Ctrl+C and ``deadline`` end the wait at once."""
    lookup = _common.resolve(host, port)
    if not lookup.done():
        reader, writer = socket.socketpair()

        def wake(_: object) -> None:
            with contextlib.suppress(OSError):  # the caller may have given up
                writer.send(b"\0")

        with reader, writer:
            lookup.add_done_callback(wake)
            if not wait_fds([reader.fileno()], [], remaining(deadline))[0]:
                raise TransportTimeout(f"resolving {host}")
    return lookup.result()


def connect(host: str, port: int, unix_path: str | None, deadline: float | None) -> socket.socket:
    """A connected non-blocking socket: to ``unix_path``, or to each address
    of ``host`` in turn until ``deadline`` (the last ``OSError`` if none
    answered)."""
    if unix_path is not None:
        addresses = [(socket.AF_UNIX, socket.SOCK_STREAM, 0, "", unix_path)]
    else:
        addresses = resolve(host, port, deadline)
    error: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
                if not wait_fds([], [sock.fileno()], remaining(deadline))[1]:
                    raise TransportTimeout(f"connecting to {address}")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, f"connect to {address!r} failed: {os.strerror(code)}")
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    assert error is not None
    raise error


def start_tls(
    sock: socket.socket,
    context: ssl_module.SSLContext,
    deadline: float | None,
    *,
    server_hostname: str | None = None,
    wake_fd: int | None = None,
) -> ssl_module.SSLSocket:
    """Run TLS over a non-blocking socket until ``deadline``, a client's if
    ``server_hostname`` is given, else a server's; readiness of ``wake_fd``
    (the connection was aborted) abandons it. The socket is closed if the
    handshake fails."""
    server_side = server_hostname is None
    extra = [] if wake_fd is None else [wake_fd]
    tls: ssl_module.SSLSocket | None = None
    try:
        tls = context.wrap_socket(
            sock, server_side, do_handshake_on_connect=False, server_hostname=server_hostname
        )
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl_module.SSLWantReadError:
                readable, writable = wait_fds([tls.fileno(), *extra], [], remaining(deadline))
            except ssl_module.SSLWantWriteError:
                readable, writable = wait_fds(extra, [tls.fileno()], remaining(deadline))
            if wake_fd is not None and wake_fd in readable:
                raise TransportTimeout("abandoned")
            if not readable and not writable:
                raise TransportTimeout("TLS handshake")
    except BaseException:
        (sock if tls is None else tls).close()  # wrap_socket() detached sock
        raise
