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
import ipaddress
import math
import os
import select
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    "Flag",
    "TransportTimeout",
    "Wakeup",
    "connect_tcp",
    "connect_unix",
    "resolve",
    "tls_handshake",
    "wait_fds",
]

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
        if fd in read:
            poller.modify(fd, _READ | _WRITE)
        else:
            poller.register(fd, _WRITE)
    # poll() takes milliseconds; round up so a short wait never spins.
    ready = poller.poll(None if timeout is None else math.ceil(timeout * 1000))
    readable: set[int] = set()
    writable: set[int] = set()
    for fd, mask in ready:
        if mask & _READ and fd in read:
            readable.add(fd)
        if mask & _WRITE and fd in write:
            writable.add(fd)
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
        self._eventfd: int | None = None
        self._pair: tuple[socket.socket, socket.socket] | None = None
        if hasattr(os, "eventfd"):
            # One descriptor instead of two: a server holds one per connection.
            self._eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self.fd = self._eventfd
        else:  # pragma: no cover - not Linux
            pair = socket.socketpair()
            for sock in pair:
                sock.setblocking(False)
            self._pair = pair
            self.fd = pair[0].fileno()
        self._generation = 0
        self._sleepers: dict[int, int] = {}
        self._pending = False
        self.closed = False

    def notify(self) -> None:
        self._generation += 1
        if self._sleepers and not self._pending and not self.closed:
            self._pending = True
            try:
                if self._eventfd is not None:
                    os.eventfd_write(self._eventfd, 1)
                else:  # pragma: no cover - not Linux
                    assert self._pair is not None
                    self._pair[1].send(b"\0")
            except BlockingIOError:  # pragma: no cover - already readable
                pass

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
            self._drain()

    @property
    def sleeping(self) -> bool:
        return bool(self._sleepers)

    def _drain(self) -> None:
        try:
            if self._eventfd is not None:
                os.eventfd_read(self._eventfd)
            else:  # pragma: no cover - not Linux
                assert self._pair is not None
                while self._pair[0].recv(4096):
                    pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._eventfd is not None:
            os.close(self._eventfd)
        else:  # pragma: no cover - not Linux
            assert self._pair is not None
            for sock in self._pair:
                sock.close()


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
    """A transport step reached the open deadline (the session then raises
    OpenTimeout)."""


def resolve(host: str, port: int, deadline: float | None) -> list[Any]:
    """``getaddrinfo`` for TCP, bounded by ``deadline``.

    An IP literal is converted without a lookup. A name is resolved in a
    short-lived daemon thread, because ``getaddrinfo`` cannot be interrupted:
    the caller waits for it in ``poll`` so that Ctrl+C and the deadline end
    the wait at once. An abandoned lookup's thread ends on its own when the
    resolver returns.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    reader, writer = socket.socketpair()
    result: list[Any] = []

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the waiting thread
            result.append(exc)
        finally:
            # The caller may have given up and closed its end.
            with contextlib.suppress(OSError):
                writer.send(b"\0")
            writer.close()

    thread = threading.Thread(target=lookup, name=f"sansws-resolve-{host}", daemon=True)
    try:
        thread.start()
        readable, _ = wait_fds([reader.fileno()], [], remaining(deadline))
        if not readable:
            raise TransportTimeout(f"resolving {host}")
    finally:
        reader.close()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome  # type: ignore[no-any-return]


def _finish_connect(sock: socket.socket, address: Any, deadline: float | None) -> None:
    code = sock.connect_ex(address)
    if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
        _, writable = wait_fds([], [sock.fileno()], remaining(deadline))
        if not writable:
            raise TransportTimeout(f"connecting to {address}")
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, f"connect to {address!r} failed: {os.strerror(code)}")


def connect_tcp(host: str, port: int, deadline: float | None) -> socket.socket:
    """A connected non-blocking TCP socket, trying each address in turn
    until ``deadline``; raises the last ``OSError`` if none answered."""
    error: OSError | None = None
    for family, kind, proto, _, address in resolve(host, port, deadline):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            _finish_connect(sock, address, deadline)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    assert error is not None
    raise error


def connect_unix(path: str, deadline: float | None) -> socket.socket:
    """A connected non-blocking Unix socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        _finish_connect(sock, path, deadline)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_handshake(
    sock: ssl_module.SSLSocket, deadline: float | None, wake_fd: int | None = None
) -> None:
    """Run the TLS handshake of a non-blocking socket until ``deadline``;
    readiness of ``wake_fd`` (a server shutting down) abandons it."""
    extra = [] if wake_fd is None else [wake_fd]
    while True:
        try:
            sock.do_handshake()
            return
        except ssl_module.SSLWantReadError:
            readable, writable = wait_fds([sock.fileno(), *extra], [], remaining(deadline))
        except ssl_module.SSLWantWriteError:
            readable, writable = wait_fds(extra, [sock.fileno()], remaining(deadline))
        if wake_fd is not None and wake_fd in readable:
            raise TransportTimeout("server shutting down")
        if not readable and not writable:
            raise TransportTimeout("TLS handshake")
