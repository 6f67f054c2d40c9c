"""Peers that are not sansws: raw sockets that misbehave on purpose, and
websockets as a reference implementation.

Raw peers run in plain threads (named ``peer-...``) with blocking sockets
that time out, so that they work the same under every driver and never
outlive their ``with`` block.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PEER_TIMEOUT = 10.0


def read_head(sock: socket.socket, limit: int = 65536) -> bytes:
    """Read an HTTP head (up to the blank line); b"" if the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            return b""
        data += chunk
    return data


def header(head: bytes, name: str) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode()
    return None


def accept_response(head: bytes) -> bytes:
    key = header(head, "Sec-WebSocket-Key") or ""
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()


def http_response(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status} Status"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = False) -> bytes:
    """One frame; servers send unmasked frames, clients masked ones."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_frame(code: int, reason: str = "", *, mask: bool = False) -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason.encode(), mask=mask)


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


Behaviour = Callable[[socket.socket, "RawServer"], None]


class RawServer:
    """A TCP server on 127.0.0.1 running ``behaviour(sock, server)`` per
    connection in a thread. ``state`` is a dict behaviours share with tests."""

    def __init__(self, behaviour: Behaviour, *, rcvbuf: int | None = None) -> None:
        self.behaviour = behaviour
        self.state: dict[str, Any] = {}
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.accepted = 0
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="peer-accept")

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(PEER_TIMEOUT)
            with self._lock:
                self.accepted += 1
                self._sockets.append(sock)
                thread = threading.Thread(target=self._run, args=(sock,), name="peer-conn")
                self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket) -> None:
        # The driver closing or resetting is expected in these tests.
        with contextlib.suppress(OSError):
            self.behaviour(sock, self)
        sock.close()

    def stopped(self, timeout: float) -> bool:
        """Sleep until stop or ``timeout``; True if stopping."""
        return self._stop.wait(timeout)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in threads:
            thread.join(PEER_TIMEOUT + 5)


# ---------------------------------------------------------------- behaviours


def silent(sock: socket.socket, server: RawServer) -> None:
    """Accept the TCP connection and never answer."""
    server.stopped(30)


def respond(data: bytes) -> Behaviour:
    """Read the request, send ``data``, wait for the client to leave."""

    def behaviour(sock: socket.socket, server: RawServer) -> None:
        head = read_head(sock)
        server.state.setdefault("requests", []).append(head)
        sock.sendall(data)
        sock.settimeout(5)
        while sock.recv(4096):
            pass

    return behaviour


def handshake_then(after: Behaviour) -> Behaviour:
    """Complete the WebSocket handshake, then run ``after``."""

    def behaviour(sock: socket.socket, server: RawServer) -> None:
        head = read_head(sock)
        if not head:
            return
        sock.sendall(accept_response(head))
        after(sock, server)

    return behaviour


def drain_until_eof(sock: socket.socket, server: RawServer) -> None:
    sock.settimeout(PEER_TIMEOUT)
    while sock.recv(65536):
        pass
    server.state["eof"] = True


@contextmanager
def raw_server(behaviour: Behaviour, **kwargs: Any) -> Iterator[RawServer]:
    with RawServer(behaviour, **kwargs) as server:
        yield server


def flood(message_size: int, total: int) -> Behaviour:
    """After the handshake, write binary messages as fast as the client
    reads them; ``state["written"]`` counts the bytes written, and
    ``state["stalled"]`` is set while a write has been blocked for 0.3 s."""
    return _write_forever(frame(0x2, b"\x00" * message_size), total)


def ping_flood(total: int) -> Behaviour:
    """After the handshake, write Pings (125-byte payloads) as fast as the
    client reads them and never read anything; ``state`` counts as in
    :func:`flood`."""
    return _write_forever(frame(0x9, b"p" * 125) * 512, total)


def _write_forever(chunk: bytes, total: int) -> Behaviour:
    """Write ``chunk`` again and again, without reading, until ``total``
    bytes are written or the server stops."""

    def behaviour(sock: socket.socket, server: RawServer) -> None:
        server.state["written"] = 0
        sock.setblocking(False)
        view = b""
        while server.state["written"] < total and not server._stop.is_set():
            if not view:
                view = chunk
            try:
                sent = sock.send(view)
            except BlockingIOError:
                blocked_since = server.state.setdefault("blocked_since", time.monotonic())
                if time.monotonic() - blocked_since > 0.3:
                    server.state["stalled"] = True
                time.sleep(0.01)
                continue
            server.state.pop("blocked_since", None)
            server.state["stalled"] = False
            server.state["written"] += sent
            view = view[sent:]
        server.stopped(30)

    return behaviour
