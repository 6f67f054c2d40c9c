"""permessage-deflate through every driver: on by default in connect() and
serve(), off with compression=None on either side, configurable with
PerMessageDeflate, and bounded by max_message_size after inflating."""

from __future__ import annotations

import pytest
from adapters.base import Driver

from sansws.errors import ConnectionClosedError
from sansws.extensions import PerMessageDeflate

pytestmark = pytest.mark.anyio

TEXT = "compressible " * 2000


async def test_connect_and_serve_negotiate_deflate_by_default(driver: Driver) -> None:
    async with driver.serve("echo") as server, driver.connect(server.url) as ws:
        assert ws.response.extensions == (
            ("permessage-deflate", (("server_max_window_bits", "12"),)),
        )
        await ws.send(TEXT)
        assert await ws.recv(timeout=10) == TEXT


@pytest.mark.parametrize("side", ["client", "server"])
async def test_compression_none_on_either_side_turns_it_off(driver: Driver, side: str) -> None:
    client = {"compression": None} if side == "client" else {}
    server_options = {"compression": None} if side == "server" else {}
    async with (
        driver.serve("echo", **server_options) as server,
        driver.connect(server.url, **client) as ws,
    ):
        assert ws.response.extensions == ()
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        await ws.send(TEXT)
        assert await ws.recv(timeout=10) == TEXT


async def test_settings_are_negotiated_through_the_drivers(driver: Driver) -> None:
    settings = PerMessageDeflate(server_no_context_takeover=True, client_max_window_bits=9)
    async with (
        driver.serve("echo", compression=PerMessageDeflate()) as server,
        driver.connect(server.url, compression=settings) as ws,
    ):
        assert ws.response.extensions == (
            (
                "permessage-deflate",
                (("server_no_context_takeover", None), ("client_max_window_bits", "9")),
            ),
        )
        for _ in range(3):
            await ws.send(TEXT)
            assert await ws.recv(timeout=10) == TEXT


async def test_a_message_inflating_past_max_message_size_fails_with_1009(driver: Driver) -> None:
    # 2 MiB of zeros travel as about 2 KiB; the server refuses it inflated.
    async with driver.serve("hold", max_message_size=2**20) as server:
        async with driver.connect(server.url, max_message_size=None) as ws:
            await ws.send(bytes(2 * 2**20))
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.recv(timeout=10)
            assert caught.value.code == 1009
        [record] = await server.wait_records()
        assert record.close_code == 1009
        assert record.messages == []
