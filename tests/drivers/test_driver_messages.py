"""Messages, fragments, pings and limits, through every driver."""

from __future__ import annotations

import anyio
import peers
import pytest
from adapters.base import Driver, handler

from sansws.errors import ConnectionClosedError, ConnectionClosedOK

pytestmark = pytest.mark.anyio

SIZES = [0, 1, 125, 126, 65535, 65536, 2**20]


@pytest.mark.parametrize("size", SIZES)
async def test_text_and_binary_messages_round_trip_unchanged(driver: Driver, size: int) -> None:
    text = ("é" * size)[: size // 2] if size else ""
    binary = bytes(range(256)) * (size // 256) + bytes(size % 256)
    async with (
        driver.serve("echo", max_message_size=2**21) as server,
        driver.connect(server.url, max_message_size=2**21) as ws,
    ):
        await ws.send(text)
        received = await ws.recv(timeout=10)
        assert isinstance(received, str)
        assert received == text
        await ws.send(binary)
        received = await ws.recv(timeout=10)
        assert isinstance(received, bytes)
        assert received == binary


async def test_bytearray_and_memoryview_are_sent_as_binary(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        await ws.send(bytearray(b"abc"))
        assert await ws.recv(timeout=5) == b"abc"
        await ws.send(memoryview(b"defg")[1:])
        assert await ws.recv(timeout=5) == b"efg"


async def test_an_iterable_of_fragments_arrives_as_one_message(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        await ws.send(["fra", "gme", "nts"])
        assert await ws.recv(timeout=5) == "fragments"
        await ws.send([b"\x00", b"", b"\x01" * 70000])
        assert await ws.recv(timeout=5) == b"\x00" + b"\x01" * 70000
        await ws.send("after")
        assert await ws.recv(timeout=5) == "after"


async def test_fragments_of_mixed_types_fail_the_connection_with_1011(driver: Driver) -> None:
    async with driver.serve("hold") as server:
        async with driver.connect(server.url) as ws:
            with pytest.raises(TypeError):
                await ws.send(["text", b"bytes"])
            with pytest.raises(ConnectionClosedError):
                await ws.recv(timeout=5)
        records = await server.wait_records()
    assert records[0].close_code == 1011


async def test_messages_arrive_in_order(driver: Driver) -> None:
    messages = [f"message {i}" for i in range(200)]
    async with (
        driver.serve(handler("send", messages=messages)) as server,
        driver.connect(server.url) as ws,
    ):
        received = [await ws.recv(timeout=5) for _ in messages]
    assert received == messages


async def test_ping_returns_the_latency_once_the_pong_arrives(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        waiter = await ws.ping()
        latency = await waiter.wait(timeout=5)
        assert 0 <= latency < 5
        assert ws.latency == latency
        waiter = await ws.ping(b"custom")
        assert await waiter.wait(timeout=5) >= 0


async def test_pings_waiting_for_a_pong_fail_when_the_connection_closes(driver: Driver) -> None:
    # A peer that never answers Pings, then closes the connection.
    def deaf(sock: object, server: peers.RawServer) -> None:
        server.stopped(0.5)

    with peers.raw_server(peers.handshake_then(deaf)) as server:
        async with driver.connect(server.url, close_timeout=1) as ws:
            waiter = await ws.ping()
            with pytest.raises(ConnectionClosedError):
                await waiter.wait(timeout=10)


async def test_unsolicited_pong_is_accepted_by_the_peer(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        await ws.pong(b"heartbeat")
        await ws.send("still open")
        assert await ws.recv(timeout=5) == "still open"


async def test_recv_times_out_without_losing_the_next_message(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        with pytest.raises(TimeoutError):
            await ws.recv(timeout=0.1)
        await ws.send("late")
        assert await ws.recv(timeout=5) == "late"


async def test_iteration_yields_messages_and_stops_on_a_normal_close(driver: Driver) -> None:
    async with (
        driver.serve(handler("send", messages=["a", b"b", "c"], close_code=1000)) as server,
        driver.connect(server.url) as ws,
    ):
        received = [message async for message in ws]
    assert received == ["a", b"b", "c"]


async def test_iteration_raises_after_an_error_close(driver: Driver) -> None:
    async with (
        driver.serve(handler("send", messages=["a"], close_code=4000, close_reason="x")) as server,
        driver.connect(server.url) as ws,
    ):
        received: list[str | bytes] = []

        async def collect() -> None:
            async for message in ws:
                received.append(message)

        with pytest.raises(ConnectionClosedError) as info:
            await collect()
    assert received == ["a"]
    assert info.value.code == 4000
    assert info.value.reason == "x"


async def test_messages_received_before_the_close_are_returned_before_the_error(
    driver: Driver,
) -> None:
    async with (
        driver.serve(handler("send", messages=["one", "two"], close_code=1000)) as server,
        driver.connect(server.url) as ws,
    ):
        await anyio.sleep(0.3)  # the server has sent everything and closed
        assert await ws.recv(timeout=5) == "one"
        assert await ws.recv(timeout=5) == "two"
        with pytest.raises(ConnectionClosedOK):
            await ws.recv(timeout=5)
        with pytest.raises(ConnectionClosedOK):
            await ws.recv(timeout=5)


async def test_a_message_over_max_message_size_closes_with_1009(driver: Driver) -> None:
    async with driver.serve("hold", max_message_size=1000) as server:
        async with driver.connect(server.url) as ws:
            await ws.send(b"x" * 1000)
            await ws.send(b"x" * 1001)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.recv(timeout=5)
            assert info.value.code == 1009
        records = await server.wait_records()
    assert records[0].messages == [b"x" * 1000]
    assert records[0].close_code == 1009


async def test_the_client_enforces_max_message_size_too(driver: Driver) -> None:
    async with (
        driver.serve(handler("send", messages=["y" * 101])) as server,
        driver.connect(server.url, max_message_size=100) as ws,
    ):
        with pytest.raises(ConnectionClosedError) as info:
            await ws.recv(timeout=5)
        assert info.value.code == 1009
        assert ws.close_code == 1009


# ---------------------------------------------------------------- text= and decode=


async def test_send_text_chooses_the_frame_type_whatever_the_python_type(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        await ws.send("é ok".encode(), text=True)  # pre-encoded JSON, say
        assert await ws.recv(timeout=5) == "é ok"
        await ws.send("as binary", text=False)
        assert await ws.recv(timeout=5) == b"as binary"
        await ws.send(bytearray(b"kept binary"), text=None)
        assert await ws.recv(timeout=5) == b"kept binary"
        # Bytes that are not UTF-8 cannot be a text frame: nothing is sent,
        # the connection goes on.
        with pytest.raises(UnicodeDecodeError):
            await ws.send(b"\xff\xfe", text=True)
        await ws.send("after")
        assert await ws.recv(timeout=5) == "after"


async def test_send_text_applies_to_every_fragment(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        encoded = "naïve".encode()
        # A two-byte character split between two fragments is still UTF-8.
        await ws.send([encoded[:3], encoded[3:]], text=True)
        assert await ws.recv(timeout=5) == "naïve"
        await ws.send(["str ", "fragments"], text=False)
        assert await ws.recv(timeout=5) == b"str fragments"


async def test_fragments_sent_as_text_that_end_mid_character_fail_with_1011(
    driver: Driver,
) -> None:
    async with driver.serve("hold") as server:
        async with driver.connect(server.url) as ws:
            with pytest.raises(UnicodeDecodeError):
                await ws.send([b"ok ", "é".encode()[:1]], text=True)
        [record] = await server.wait_records()
    assert record.close_code == 1011
    assert record.messages == []


async def test_recv_decode_converts_or_keeps_what_arrived(driver: Driver) -> None:
    messages = ["é", "é".encode(), "text", b"\xff"]
    async with (
        driver.serve(handler("send", messages=messages)) as server,
        driver.connect(server.url) as ws,
    ):
        assert await ws.recv(timeout=5, decode=False) == "é".encode()  # text as bytes
        assert await ws.recv(timeout=5, decode=True) == "é"  # binary as str
        assert await ws.recv(timeout=5, decode=None) == "text"
        with pytest.raises(UnicodeDecodeError):
            await ws.recv(timeout=5, decode=True)  # binary that is not UTF-8
        await ws.send("still open")
