"""The rules every driver used to decide for itself, each decided once in the
core and proved here against every driver (docs/drivers/rules.md)."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from typing import Any

import anyio
import peers
import pytest
from adapters.base import Driver, handler

from sansws import ClientConnection, State
from sansws.endpoint import Endpoint
from sansws.errors import ConnectionClosedError, HandshakeError, InvalidStatus, OpenTimeout
from sansws.frames import parse_close_payload
from sansws.ops import PROCESS_REQUEST_FAILED

pytestmark = pytest.mark.anyio


class Interrupted(BaseException):
    """Stands for a cancellation or KeyboardInterrupt: not an Exception."""


def read_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each whole unmasked frame in ``data``."""
    found: list[tuple[int, bytes]] = []
    pos = 0
    while len(data) - pos >= 2:
        length = data[pos + 1] & 0x7F
        header = 2
        if length == 126:
            length, header = struct.unpack("!H", data[pos + 2 : pos + 4])[0], 4
        elif length == 127:
            length, header = struct.unpack("!Q", data[pos + 2 : pos + 10])[0], 10
        if len(data) - pos < header + length:
            break
        found.append((data[pos] & 0x0F, data[pos + header : pos + header + length]))
        pos += header + length
    return found


def raw_client(port: int) -> tuple[socket.socket, bytes]:
    """A raw client socket whose opening handshake is done, and the bytes
    after the 101 response. Its receive buffer is small, so that what a
    server writes while it does not read stays in the server's buffers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    client = ClientConnection(f"ws://127.0.0.1:{port}/", compression=None)
    sock.sendall(client.data_to_send())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk, "closed during the handshake"
        head += chunk
    return sock, head.partition(b"\r\n\r\n")[2]


def read_until_eof(sock: socket.socket, limit: float = 10.0) -> bytes:
    sock.settimeout(limit)
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


# ---------------------------------------------------------------- a client block


async def test_a_client_block_that_raises_closes_with_1011(driver: Driver) -> None:
    async with driver.serve("hold") as server:
        with pytest.raises(ValueError, match="the application failed"):
            await driver.client_block(server.url, ValueError("the application failed"))
        (record,) = await server.wait_records()
    assert (record.close_code, record.close_reason) == (1011, "internal error")


async def test_an_interrupted_client_block_aborts_without_a_close_handshake(
    driver: Driver,
) -> None:
    async with driver.serve("hold", close_timeout=30) as server:
        started = time.monotonic()
        with pytest.raises(Interrupted):
            await driver.client_block(server.url, Interrupted())
        assert time.monotonic() - started < 5  # no wait for the peer
        (record,) = await server.wait_records()
    assert record.close_code == 1006


@pytest.mark.parametrize("error", [Interrupted(), ValueError("the application failed")], ids=repr)
async def test_a_server_block_left_with_no_connection_returns_at_once(
    driver: Driver, error: BaseException
) -> None:
    with anyio.fail_after(5):  # a server that waits for nothing must not wait
        with pytest.raises(type(error)):
            await driver.server_block(error)


# ---------------------------------------------------------------- process_request


async def test_a_failing_process_request_gets_the_one_500_response(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(request: Any) -> None:
        raise RuntimeError("the hook failed")

    async with driver.serve("echo", process_request=fail) as server:
        with pytest.raises(InvalidStatus) as info:
            async with driver.connect(server.url):
                pass  # pragma: no cover - never reached
    assert info.value.status == 500
    assert info.value.body == PROCESS_REQUEST_FAILED.body
    (record,) = [r for r in caplog.records if r.name == "sansws.server"]
    assert (record.levelno, record.getMessage()) == (logging.ERROR, "process_request failed")
    assert record.exc_info is not None


async def test_a_process_request_answer_after_the_open_timeout_is_not_used(
    driver: Driver,
) -> None:
    # An async hook is cancelled at the deadline; a blocking one cannot be,
    # but its late answer is not acted on: in every driver, no 101.
    async with driver.serve(
        "echo", open_timeout=0.3, process_request=lambda request: None, process_request_delay=0.6
    ) as server:
        with pytest.raises(HandshakeError):
            async with driver.connect(server.url, open_timeout=5):
                pass  # pragma: no cover - never reached


# ---------------------------------------------------------------- options


async def test_an_invalid_option_fails_before_anything_listens(driver: Driver) -> None:
    with pytest.raises(ValueError, match=r"^serve\(\): max_message_size must be an int >= 0"):
        async with driver.serve("echo", max_message_size=-1):
            pass  # pragma: no cover - never reached
    with pytest.raises(TypeError, match=r"did you mean 'max_message_size'\?"):
        async with driver.serve("echo", max_mesage_size=1):
            pass  # pragma: no cover - never reached
    with pytest.raises(TypeError, match=r"^connect\(\): subprotocols must be a sequence of str"):
        async with driver.connect("ws://127.0.0.1:9/", subprotocols="chat"):
            pass  # pragma: no cover - never reached
    with pytest.raises(ValueError, match=r"^connect\(\): max_queue must be an int >= 1"):
        async with driver.connect("ws://127.0.0.1:9/", max_queue=0):
            pass  # pragma: no cover - never reached


# ---------------------------------------------------------------- the open timeout


async def test_a_servers_open_timeout_runs_from_the_tcp_accept_across_tls(
    driver: Driver, tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    # One budget: TLS done after 0.4 s leaves 0.4 s for the request, not
    # another open_timeout.
    def slow_client(port: int) -> float:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            started = time.monotonic()
            time.sleep(0.4)
            with tls_client_context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                read_until_eof(tls, 5)  # sends no request
            return time.monotonic() - started

    async with driver.serve("echo", ssl=tls_server_context, open_timeout=0.8) as server:
        elapsed = await anyio.to_thread.run_sync(slow_client, server.port)
    assert 0.7 < elapsed < 1.15


async def test_a_transport_step_at_the_deadline_fails_with_the_sessions_open_timeout(
    driver: Driver,
) -> None:
    with peers.raw_server(peers.silent) as silent:  # accepts TCP, never speaks TLS
        url = f"wss://127.0.0.1:{silent.port}/"
        with pytest.raises(OpenTimeout) as info:
            async with driver.connect(url, open_timeout=0.3):
                pass  # pragma: no cover - never reached
    assert str(info.value) == f"timed out opening {url} after 0.3 seconds"


# ---------------------------------------------------------------- back-pressure


async def test_a_blocked_send_resumes_only_once_a_quarter_of_write_limit_is_left(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one back-pressure rule: the driver reports what it holds unwritten
    # and the core's marks decide (above write_limit: wait; at a quarter:
    # go on), whatever the driver's own buffer is.
    reported: list[int] = []
    lock = threading.Lock()
    unwritten = Endpoint.unwritten

    def record(self: Endpoint, size: int) -> None:
        with lock:
            reported.append(size)
        unwritten(self, size)

    monkeypatch.setattr(Endpoint, "unwritten", record)
    limit = 65536
    release = threading.Event()
    sent = -1  # in ``reported``: a send returned

    def stall_then_read(sock: socket.socket, server: peers.RawServer) -> None:
        release.wait(10)
        peers.drain_until_eof(sock, server)

    with peers.raw_server(peers.handshake_then(stall_then_read)) as peer:
        options = {"write_limit": limit, "compression": None, "close_timeout": 0.5}
        async with driver.connect(peer.url, **options) as ws:

            async def flood() -> None:
                for _ in range(400):  # more than the kernel's buffers take
                    await ws.send(b"x" * limit)
                    with lock:
                        reported.append(sent)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(flood)
                with anyio.fail_after(10):
                    while not any(size > limit for size in reported):
                        await anyio.sleep(0.01)
                await anyio.sleep(0.2)  # the send waits
                release.set()
    with lock:
        paused = next(i for i, size in enumerate(reported) if size > limit)
        returned = reported.index(sent, paused)
        between = reported[paused:returned]
    assert any(0 <= size <= limit // 4 for size in between), between
    assert all(size > limit // 4 for size in between[: between.index(min(between))]), between


# ---------------------------------------------------------------- closing the transport


def _big_messages(count: int = 16, size: int = 1 << 20) -> list[bytes]:
    return [bytes([i]) * size for i in range(count)]


async def test_after_a_clean_close_everything_buffered_and_the_close_frame_is_written(
    driver: Driver,
) -> None:
    # The client stops reading while the server's handler sends 4 MiB, then
    # sends its Close and reads only later: the server flushes it all.
    messages = _big_messages()

    def client(port: int) -> bytes:
        sock, rest = raw_client(port)
        with sock:
            time.sleep(0.3)  # the handler writes meanwhile
            sock.sendall(peers.close_frame(1000, "done", mask=True))
            time.sleep(0.3)
            return rest + read_until_eof(sock)

    big = handler("send", messages=messages)
    async with driver.serve(big, write_limit=1 << 24, compression=None) as server:
        data = await anyio.to_thread.run_sync(client, server.port)
    received = read_frames(data)
    assert [payload for opcode, payload in received if opcode == 0x2] == messages
    assert received[-1] == (0x8, struct.pack("!H", 1000) + b"done")


async def test_after_a_failure_what_the_transport_cannot_take_at_once_is_dropped(
    driver: Driver,
) -> None:
    # The same, but the client breaks the protocol instead of closing: the
    # server aborts, and does not wait for the client to read its backlog.
    messages = _big_messages()

    def client(port: int) -> bytes:
        sock, rest = raw_client(port)
        with sock:
            time.sleep(0.3)
            sock.sendall(peers.frame(0x1, b"unmasked"))  # clients must mask: 1002
            time.sleep(0.3)
            return rest + read_until_eof(sock)

    big = handler("send", messages=messages)
    async with driver.serve(big, write_limit=1 << 24, close_timeout=30, compression=None) as server:
        started = time.monotonic()
        data = await anyio.to_thread.run_sync(client, server.port)
        assert time.monotonic() - started < 10
    received = read_frames(data)
    assert len([opcode for opcode, _ in received if opcode == 0x2]) < len(messages)
    assert 0x8 not in [opcode for opcode, _ in received]  # the Close frame was behind them


# ---------------------------------------------------------------- echoing a Close


async def test_a_servers_close_reply_echoes_the_code_and_the_reason(driver: Driver) -> None:
    def client(port: int) -> bytes:
        sock, rest = raw_client(port)
        with sock:
            sock.sendall(peers.close_frame(4000, "bye", mask=True))
            return rest + read_until_eof(sock)

    async with driver.serve("hold") as server:
        data = await anyio.to_thread.run_sync(client, server.port)
    assert read_frames(data) == [(0x8, struct.pack("!H", 4000) + b"bye")]


async def test_a_clients_close_reply_echoes_the_code_and_the_reason(driver: Driver) -> None:
    def close_first(sock: socket.socket, server: peers.RawServer) -> None:
        sock.sendall(peers.close_frame(4001, "from the server"))
        reply = b""
        while len(reply) < 2 or len(reply) < 6 + (reply[1] & 0x7F):  # one masked frame
            reply += sock.recv(65536)
        server.state["reply"] = reply  # then the server closes the TCP connection

    with peers.raw_server(peers.handshake_then(close_first)) as peer:
        async with driver.connect(peer.url) as ws:
            with pytest.raises(ConnectionClosedError) as info:  # 4001 is no OK code
                await ws.recv(timeout=5)
            assert (info.value.code, info.value.reason) == (4001, "from the server")
        with anyio.fail_after(5):
            while "reply" not in peer.state:
                await anyio.sleep(0.01)
    reply = peer.state["reply"]
    assert reply[0] == 0x88  # a whole Close frame, masked as a client's are
    length, key = reply[1] & 0x7F, reply[2:6]
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(reply[6 : 6 + length]))
    assert parse_close_payload(payload) == (4001, "from the server")


# ---------------------------------------------------------------- binding


async def test_a_host_name_is_bound_on_every_address_it_resolves_to_on_one_port(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def both_loopbacks(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "loopbacks.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        v4 = real_getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM)
        v6 = real_getaddrinfo("::1", port, type=socket.SOCK_STREAM)
        return v4 + v6

    monkeypatch.setattr(socket, "getaddrinfo", both_loopbacks)
    async with driver.serve("echo", host="loopbacks.test") as server:
        names = [sock.getsockname() for sock in server.native.sockets]
        assert sorted(name[0] for name in names) == ["127.0.0.1", "::1"]
        assert {name[1] for name in names} == {server.port}
        for url in (f"ws://127.0.0.1:{server.port}/", f"ws://[::1]:{server.port}/"):
            async with driver.connect(url) as ws:
                await ws.send("hello")
                assert await ws.recv(timeout=5) == "hello"


# ---------------------------------------------------------------- logging


async def test_failures_before_the_handshake_are_logged_at_debug_only(
    driver: Driver,
    caplog: pytest.LogCaptureFixture,
    tls_server_context: ssl.SSLContext,
) -> None:
    def plain_bytes_to_a_tls_server(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not TLS
            read_until_eof(sock, 5)

    caplog.set_level(logging.DEBUG, logger="sansws.server")
    async with driver.serve("echo", ssl=tls_server_context) as server:
        await anyio.to_thread.run_sync(plain_bytes_to_a_tls_server, server.port)
        await anyio.sleep(0.2)
    records = [r for r in caplog.records if r.name == "sansws.server"]
    assert [r.levelno for r in records] == [logging.DEBUG]
    assert records[0].getMessage().startswith("TLS handshake failed")


async def test_an_open_timeout_during_tls_is_logged_at_debug(
    driver: Driver, caplog: pytest.LogCaptureFixture, tls_server_context: ssl.SSLContext
) -> None:
    def silent(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            read_until_eof(sock, 5)  # never starts TLS

    caplog.set_level(logging.DEBUG, logger="sansws.server")
    async with driver.serve("echo", ssl=tls_server_context, open_timeout=0.3) as server:
        await anyio.to_thread.run_sync(silent, server.port)
        await anyio.sleep(0.2)
    records = [r for r in caplog.records if r.name == "sansws.server"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.DEBUG, "opening handshake timed out")
    ]


async def test_a_client_that_leaves_before_its_request_is_logged_at_debug(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    def leave(port: int) -> None:
        socket.create_connection(("127.0.0.1", port), timeout=10).close()

    caplog.set_level(logging.DEBUG, logger="sansws.server")
    async with driver.serve("echo") as server:
        await anyio.to_thread.run_sync(leave, server.port)
        await anyio.sleep(0.2)
    records = [r for r in caplog.records if r.name == "sansws.server"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.DEBUG, "connection closed during the opening handshake")
    ]


# ---------------------------------------------------------------- Unix sockets


async def test_a_unix_socket_file_is_removed_at_shutdown_and_a_stale_one_replaced(
    driver: Driver, tmp_path: Any
) -> None:
    path = str(tmp_path / "ws.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # left behind by a server that is gone
    stale.close()
    async with driver.serve("echo", unix_path=path) as server:
        assert server.native.port is None
        async with driver.connect("ws://localhost/", unix_path=path) as ws:
            await ws.send("over a unix socket")
            assert await ws.recv(timeout=5) == "over a unix socket"
        with pytest.raises(OSError, match="a server is listening"):
            async with driver.serve("echo", unix_path=path):
                pass  # pragma: no cover - never reached
    assert not (tmp_path / "ws.sock").exists()
    (tmp_path / "file").write_text("not a socket")
    with pytest.raises(FileExistsError):
        async with driver.serve("echo", unix_path=str(tmp_path / "file")):
            pass  # pragma: no cover - never reached


# ---------------------------------------------------------------- the server's view


async def test_server_connections_lists_the_open_connections(driver: Driver) -> None:
    async with driver.serve("hold") as server:
        assert server.native.connections == set()
        async with driver.connect(server.url) as ws:
            await ws.send("here")
            with anyio.fail_after(5):
                while not server.native.connections:
                    await anyio.sleep(0.01)
            (connection,) = server.native.connections
            assert connection.state is State.OPEN
        await server.wait_records()
        assert server.native.connections == set()


async def test_shutdown_drops_a_connection_still_in_its_opening_handshake(
    driver: Driver,
) -> None:
    def half_a_request(port: int, ready: threading.Event) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n")  # and nothing more
            ready.set()
            return read_until_eof(sock, 5)

    ready = threading.Event()
    async with driver.serve("echo", open_timeout=60) as server:
        async with anyio.create_task_group() as tasks:
            result: list[bytes] = []

            async def client() -> None:
                result.append(await anyio.to_thread.run_sync(half_a_request, server.port, ready))

            tasks.start_soon(client)
            await anyio.to_thread.run_sync(ready.wait, 5)
            await anyio.sleep(0.1)
            started = time.monotonic()
            await server.shutdown()
        assert time.monotonic() - started < 5
    assert result == [b""]  # dropped: no response at all

