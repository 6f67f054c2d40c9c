#!/usr/bin/env python3
"""Memory that permessage-deflate costs per connection: sansws next to
websockets and wsproto, measured in one run.

For each configuration, N server-side connections are opened in memory and
one compressed message travels each way on every one of them, so that both
the compressor and the decompressor exist; the figure is the memory traced by
:mod:`tracemalloc` (zlib's allocations included) per connection, minus the
same measurement with compression off. zlib's state is allocated by the
C library through CPython's allocator, so tracemalloc sees it.

Run ``python benchmarks/deflate_memory.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import websockets.client
import websockets.extensions.permessage_deflate as ws_deflate
import websockets.server
import websockets.uri
import wsproto
import wsproto.events
import wsproto.extensions

import sansws
from sansws.extensions import PerMessageDeflate

MESSAGE = b'{"event": "tick", "price": 101.25, "volume": 300}' * 20


@dataclass(frozen=True)
class Case:
    name: str
    # Opens one server-side connection, passes a message each way, returns it.
    open: Callable[[], object]


def sansws_case(compression: Any) -> Callable[[], object]:
    def open_one() -> object:
        client = sansws.ClientConnection("ws://localhost/", compression=compression)
        server = sansws.ServerConnection(compression=compression)
        server.receive_data(client.data_to_send())
        server.accept()
        client.receive_data(server.data_to_send())
        client.send_binary(MESSAGE)
        server.receive_data(client.data_to_send())
        server.send_binary(MESSAGE)
        client.receive_data(server.data_to_send())
        return server

    return open_one


def websockets_case(compressed: bool, **settings: Any) -> Callable[[], object]:
    def open_one() -> object:
        client_ext = [ws_deflate.ClientPerMessageDeflateFactory()] if compressed else []
        server_ext = [ws_deflate.ServerPerMessageDeflateFactory(**settings)] if compressed else []
        client = websockets.client.ClientProtocol(
            websockets.uri.parse_uri("ws://localhost/"), extensions=client_ext
        )
        server = websockets.server.ServerProtocol(extensions=server_ext)
        client.send_request(client.connect())
        server.receive_data(b"".join(client.data_to_send()))
        [request] = server.events_received()
        server.send_response(server.accept(request))  # type: ignore[arg-type]
        client.receive_data(b"".join(server.data_to_send()))
        client.events_received()
        client.send_binary(MESSAGE)
        server.receive_data(b"".join(client.data_to_send()))
        server.events_received()
        server.send_binary(MESSAGE)
        client.receive_data(b"".join(server.data_to_send()))
        client.events_received()
        return server

    return open_one


def wsproto_case(compressed: bool) -> Callable[[], object]:
    def open_one() -> object:
        client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        client_ext: list[wsproto.extensions.Extension] = []
        server_ext: list[wsproto.extensions.Extension] = []
        if compressed:
            client_ext.append(wsproto.extensions.PerMessageDeflate())
            server_ext.append(wsproto.extensions.PerMessageDeflate())
        server.receive_data(
            client.send(wsproto.events.Request(host="localhost", target="/", extensions=client_ext))
        )
        list(server.events())
        client.receive_data(server.send(wsproto.events.AcceptConnection(extensions=server_ext)))
        list(client.events())
        server.receive_data(client.send(wsproto.events.BytesMessage(data=MESSAGE)))
        list(server.events())
        client.receive_data(server.send(wsproto.events.BytesMessage(data=MESSAGE)))
        list(client.events())
        return server

    return open_one


def cases() -> list[tuple[str, Case, Case]]:
    """(label, compressed case, the same without compression)."""
    plain_sansws = Case("sansws", sansws_case(None))
    plain_websockets = Case("websockets", websockets_case(False))
    plain_wsproto = Case("wsproto", wsproto_case(False))
    return [
        (
            "sansws, default (server window 12 bits, memory level 5)",
            Case("", sansws_case("deflate")),
            plain_sansws,
        ),
        (
            "sansws, window 15 bits, memory level 8",
            Case("", sansws_case(PerMessageDeflate(memory_level=8))),
            plain_sansws,
        ),
        (
            "sansws, window 10 bits, memory level 1",
            Case("", sansws_case(PerMessageDeflate(10, 10, memory_level=1))),
            plain_sansws,
        ),
        (
            "sansws, default, no context takeover",
            Case(
                "",
                sansws_case(
                    PerMessageDeflate(
                        server_max_window_bits=12,
                        server_no_context_takeover=True,
                        client_no_context_takeover=True,
                    )
                ),
            ),
            plain_sansws,
        ),
        (
            "websockets, default (server window 12 bits, memory level 5)",
            Case(
                "",
                websockets_case(True, server_max_window_bits=12, compress_settings={"memLevel": 5}),
            ),
            plain_websockets,
        ),
        (
            "wsproto, default (window 15 bits, memory level 8)",
            Case("", wsproto_case(True)),
            plain_wsproto,
        ),
    ]


def per_connection(case: Case, count: int) -> float:
    """Bytes traced per open connection."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        kept = [case.open() for _ in range(count)]
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    del kept
    return used / count


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=200, help="connections per figure")
    parser.add_argument("--quick", action="store_true", help="a few connections: checks the script")
    args = parser.parse_args(argv)
    count = 3 if args.quick else args.connections
    out(
        f"Python {sys.version.split()[0]}; sansws {sansws.__version__}, "
        f"websockets {version('websockets')}, wsproto {version('wsproto')}; "
        f"{count} connections each"
    )
    out(f"{'configuration':<62} {'with':>9} {'without':>9} {'deflate':>9}  (KiB per connection)")
    for label, compressed, plain in cases():
        with_deflate = per_connection(compressed, count)
        without = per_connection(plain, count)
        out(
            f"{label:<62} {with_deflate / 1024:>9.1f} {without / 1024:>9.1f} "
            f"{(with_deflate - without) / 1024:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
