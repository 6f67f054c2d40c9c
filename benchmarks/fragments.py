#!/usr/bin/env python3
"""What a peer sending a message one byte per frame costs: memory held per
payload byte while the message is incomplete, and frames parsed per second,
for sansws next to websockets and wsproto, measured in one run.

Two streams, both from a client to a server-side connection in memory: a
message of ``--size`` bytes in 1-byte frames, and the same with an empty
continuation frame after each byte (twice the frames, the same payload).
Every frame but the last is fed, in 64 KiB reads, and the memory traced by
:mod:`tracemalloc` is read then, before the message completes: what a
hostile peer holds on to by never sending the last frame.

The core assembles a message itself; websockets' and wsproto's sans-I/O
layers hand out every frame and leave the assembling to the layer above, so
their figures include a list of what they handed out (websockets' own
asyncio and threading layers keep a list of frames, and cap it at 4096).
sansws is measured with ``max_fragments=None``, then with its default, which
refuses the message at the frame after the 4096th.

Run ``python benchmarks/fragments.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any

import websockets.frames
import websockets.server
import wsproto
import wsproto.events
import wsproto.frame_protocol

import sansws
from sansws.frames import serialize_header

MASK = b"\x00\x00\x00\x00"
READ = 65536
REQUEST = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def stream(size: int, empty: bool) -> tuple[list[bytes], bytes, int]:
    """The reads of every frame but the last, the last frame, and the number
    of frames: binary, masked, one byte each (and an empty one after each
    byte if ``empty``)."""
    byte = serialize_header(False, 0, 0, 1, MASK) + b"a"
    gap = serialize_header(False, 0, 0, 0, MASK) if empty else b""
    wire = serialize_header(False, 0, 2, 1, MASK) + b"a" + gap + (byte + gap) * (size - 2)
    last = serialize_header(True, 0, 0, 1, MASK) + b"a"
    frames = (size - 1) * (2 if empty else 1) + 1
    return [wire[i : i + READ] for i in range(0, len(wire), READ)], last, frames


# Each receiver opens a server-side connection and returns a function that
# takes one read and returns what the application layer keeps of it, and a
# function that says whether the message is complete after the last frame.
Receiver = Callable[[], tuple[Callable[[bytes], None], Callable[[bytes], bool]]]


def sansws_receiver(max_fragments: int | None) -> Receiver:
    def open_one() -> tuple[Callable[[bytes], None], Callable[[bytes], bool]]:
        server = sansws.ServerConnection(max_fragments=max_fragments, compression=None)
        server.receive_data(REQUEST)
        server.accept()
        server.data_to_send()
        closed: list[Any] = []

        def feed(data: bytes) -> None:
            if not closed:
                closed.extend(e for e in server.receive_data(data) if type(e) is sansws.Closed)

        def finish(data: bytes) -> bool:
            if closed:
                return False
            return any(type(e) is sansws.Message for e in server.receive_data(data))

        return feed, finish

    return open_one


def websockets_receiver() -> tuple[Callable[[bytes], None], Callable[[bytes], bool]]:
    server = websockets.server.ServerProtocol(max_size=None)
    server.receive_data(REQUEST)
    [request] = server.events_received()
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    server.data_to_send()
    frames: list[websockets.frames.Frame] = []  # what websockets' assembler keeps

    def feed(data: bytes) -> None:
        server.receive_data(data)
        frames.extend(server.events_received())  # type: ignore[arg-type]

    def finish(data: bytes) -> bool:
        feed(data)
        return frames[-1].fin

    return feed, finish


def wsproto_receiver() -> tuple[Callable[[bytes], None], Callable[[bytes], bool]]:
    server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    server.receive_data(REQUEST)
    list(server.events())
    server.send(wsproto.events.AcceptConnection())
    parts: list[bytes | bytearray] = []  # what an application assembling the message keeps

    def feed(data: bytes) -> None:
        server.receive_data(data)
        for event in server.events():
            assert isinstance(event, wsproto.events.BytesMessage)
            parts.append(event.data)

    def finish(data: bytes) -> bool:
        server.receive_data(data)
        return any(getattr(event, "message_finished", False) for event in server.events())

    return feed, finish


def measure(receiver: Receiver, size: int, empty: bool) -> tuple[float, float, float, bool]:
    """(bytes held per payload byte before the last frame, the peak per
    payload byte, frames per second, whether the message was delivered)."""
    reads, last, frames = stream(size, empty)
    feed, _ = receiver()  # timed on its own: tracemalloc slows every allocation
    began = time.perf_counter()
    for data in reads:
        feed(data)
    elapsed = time.perf_counter() - began
    feed, finish = receiver()
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    for data in reads:
        feed(data)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    delivered = finish(last)
    return (held - start) / size, (peak - start) / size, frames / elapsed, delivered


RECEIVERS: dict[str, Receiver] = {
    "sansws (max_fragments=None)": sansws_receiver(None),
    "sansws (default, 4096)": sansws_receiver(4096),
    "websockets": websockets_receiver,
    "wsproto": wsproto_receiver,
}


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Print the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256 * 1024, help="message size in bytes")
    parser.add_argument("--quick", action="store_true", help="a 16 KiB message, for tests")
    args = parser.parse_args(argv)
    size = 16 * 1024 if args.quick else args.size
    libraries = ", ".join(
        f"{name} {version(name)}" for name in ("sansws", "websockets", "wsproto")
    )
    out(f"{libraries}; Python {sys.version.split()[0]}; a {size} B message in 1-byte frames")
    out(f"{'library':30} | {'stream':26} | held B/B | peak B/B |  frames/s | delivered")
    for label, empty in (("1-byte frames", False), ("1-byte + empty frames", True)):
        for name, receiver in RECEIVERS.items():
            held, peak, rate, delivered = measure(receiver, size, empty)
            # A refused message stops the parsing: no rate to speak of.
            speed, verdict = (f"{rate:9.0f}", "yes") if delivered else ("        -", "no: 1009")
            out(f"{name:30} | {label:26} | {held:8.2f} | {peak:8.2f} | {speed} | {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
