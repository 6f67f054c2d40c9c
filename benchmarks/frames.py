#!/usr/bin/env python3
"""Frame throughput of sansws next to wsproto and websockets, in one run.

Three workloads, each with text and binary messages of several sizes:

* parse: a server receives masked client frames, fed in fixed-size reads
  (64 KiB by default), and every event is drained;
* produce, client: ``send_text``/``send_binary`` then ``data_to_send()``,
  masked;
* produce, server: the same, unmasked.

Each runs once plainly and once with permessage-deflate, every library with
the same zlib settings (window 15 bits, level 6, memory level 8, context
takeover).

websockets is measured through its own sans-I/O layer
(``websockets.server.ServerProtocol`` and ``websockets.client.ClientProtocol``),
wsproto through ``wsproto.connection.Connection``. Every library gets the same
bytes and the same work per pass; each figure is the best of several timed runs
so that a busy machine disturbs it less, and the libraries take turns within
each round so that their ratios compare like with like.

Then a masking micro-benchmark: sansws' C ``apply_mask``, its pure-Python
fallback, and ``websockets.speedups.apply_mask``.

Run ``python benchmarks/frames.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import websockets.client
import websockets.extensions.permessage_deflate
import websockets.frames
import websockets.server
import websockets.uri
import wsproto.connection
import wsproto.events
import wsproto.extensions
from websockets.protocol import State as WebsocketsState

import sansws
import sansws.connection
from sansws import frames
from sansws.extensions import PerMessageDeflate
from sansws.frames import HAS_SPEEDUPS, Frame, Opcode, apply_mask, apply_mask_python

MaskFunction = Callable[[bytes, bytes], bytes]
websockets_apply_mask: MaskFunction | None
try:
    from websockets.speedups import apply_mask as websockets_apply_mask
except ImportError:  # websockets built without its C extension
    websockets_apply_mask = None

LIBRARIES = ("sansws", "wsproto", "websockets")
DEFAULT_SIZES = (16, 125, 1024, 65536, 1048576)
KINDS = ("text", "binary")
WORKLOADS = {
    "parse": "parse: a server receives masked client frames, fed in {read} B reads",
    "client": "produce, client: send + data_to_send(), masked",
    "server": "produce, server: send + data_to_send(), unmasked",
    "parse-deflate": "parse, compressed: the same with permessage-deflate",
    "client-deflate": "produce compressed, client: the same with permessage-deflate",
    "server-deflate": "produce compressed, server: the same with permessage-deflate",
}
# Targets: sansws at least this many times the other library's frames/s.
TARGETS = {"wsproto": 3.0, "websockets": 1.0}
# With compression, zlib does most of the work in every library: the target is
# that what sansws does around it costs no more than what the others do.
DEFLATE_TARGETS = {"wsproto": 1.0, "websockets": 1.0}
# The same zlib settings for every library.
DEFLATE_LEVEL, DEFLATE_MEMORY_LEVEL, DEFLATE_WINDOW_BITS = 6, 8, 15


def targets(workload: str) -> dict[str, float]:
    return DEFLATE_TARGETS if workload.endswith("-deflate") else TARGETS


MASK_TARGET = 0.5

# One pass over the prepared frames; returns how many messages it handled.
Pass = Callable[[], int]


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    duration: float  # seconds each timed run lasts at least
    repeat: int  # timed runs per figure; the best one counts
    read_size: int
    stream_bytes: int  # payload bytes per pass, roughly
    max_frames: int  # frames per pass at most
    charset: str
    pure_python: bool  # sansws without its C accelerator


# ---------------------------------------------------------------- payloads


def make_payload(kind: str, size: int, charset: str) -> str | bytes:
    """A payload of exactly ``size`` bytes (in UTF-8 for text)."""
    if kind == "binary":
        return random.Random(size).randbytes(size)
    sample = (
        "The quick brown fox jumps over the lazy dog. "
        if charset == "ascii"
        else "Größe 東京 ½ café naïve — ünïcödé ☃ 😀 "
    )
    encoded = (sample * (size // len(sample.encode()) + 1)).encode()[:size]
    # Trim a character cut in half and pad with ASCII back to the size.
    text = encoded.decode(errors="ignore")
    return text + "x" * (size - len(text.encode()))


def frames_per_pass(size: int, settings: Settings) -> int:
    return max(2, min(settings.max_frames, settings.stream_bytes // size))


def masked_stream(payload: str | bytes, count: int, compressed: bool = False) -> bytes:
    """``count`` masked client frames carrying ``payload``, compressed by a
    sansws client when ``compressed``."""
    if compressed:
        client, _ = sansws_pair(compressed=True)
        for _ in range(count):
            if isinstance(payload, str):
                client.send_text(payload)
            else:
                client.send_binary(payload)
        return client.data_to_send()
    if isinstance(payload, str):
        frame = Frame(Opcode.TEXT, payload.encode())
    else:
        frame = Frame(Opcode.BINARY, payload)
    rng = random.Random(count)
    return b"".join(frame.serialize(rng.randbytes(4)) for _ in range(count))


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# ---------------------------------------------------------------- connections


# Every library frames the same bytes: compression stays off where sansws
# would offer it by default.
_PLAIN: dict[str, Any] = {"compression": None}


SANSWS_DEFLATE = PerMessageDeflate(
    level=DEFLATE_LEVEL, memory_level=DEFLATE_MEMORY_LEVEL, threshold=0
)


def sansws_pair(
    compressed: bool = False,
) -> tuple[sansws.ClientConnection, sansws.ServerConnection]:
    """A client and a server connection, both OPEN, without size limits or
    timers, with compression only if ``compressed``."""
    options: dict[str, Any] = {
        "max_message_size": None,
        "ping_interval": None,
        "ping_timeout": None,
        "close_timeout": None,
        "open_timeout": None,
        **({"compression": SANSWS_DEFLATE} if compressed else _PLAIN),
    }
    client = sansws.ClientConnection("ws://localhost/", **options)
    server = sansws.ServerConnection(**options)
    (request,) = server.receive_data(client.data_to_send())
    assert isinstance(request, sansws.Request), request
    server.accept()
    (accepted,) = client.receive_data(server.data_to_send())
    assert isinstance(accepted, sansws.Accepted), accepted
    if compressed:
        assert client.extensions == server.extensions == (("permessage-deflate", ()),)
    else:
        assert client.extensions == server.extensions == ()
    return client, server


def websockets_protocol(client: bool, compressed: bool = False) -> websockets.protocol.Protocol:
    proto: websockets.protocol.Protocol
    if client:
        proto = websockets.client.ClientProtocol(
            websockets.uri.parse_uri("ws://localhost/"),
            state=WebsocketsState.OPEN,
            max_size=None,
        )
    else:
        proto = websockets.server.ServerProtocol(state=WebsocketsState.OPEN, max_size=None)
    if compressed:
        proto.extensions = [
            websockets.extensions.permessage_deflate.PerMessageDeflate(
                False,
                False,
                DEFLATE_WINDOW_BITS,
                DEFLATE_WINDOW_BITS,
                {"level": DEFLATE_LEVEL, "memLevel": DEFLATE_MEMORY_LEVEL},
            )
        ]
    return proto


def wsproto_connection(client: bool, compressed: bool = False) -> wsproto.connection.Connection:
    role = wsproto.connection.ConnectionType
    extensions: list[wsproto.extensions.Extension] = []
    if compressed:
        # wsproto compresses at zlib's default level and memory level (6, 8).
        extension = wsproto.extensions.PerMessageDeflate()
        extension.finalize("permessage-deflate")  # as after a handshake
        extensions.append(extension)
    return wsproto.connection.Connection(
        role.CLIENT if client else role.SERVER, extensions=extensions
    )


# ---------------------------------------------------------------- workloads


def parse_passes(
    payload: str | bytes, count: int, read_size: int, compressed: bool = False
) -> dict[str, Pass]:
    # With compression, each pass feeds the same stream to the same
    # connection: its first message refers to nothing before it, so the
    # window left by the previous pass does not matter.
    chunks = split(masked_stream(payload, count, compressed), read_size)

    _, sansws_server = sansws_pair(compressed)
    receive = sansws_server.receive_data

    def sansws_pass() -> int:
        n = 0
        for chunk in chunks:
            n += len(receive(chunk))
        return n

    # wsproto delivers messages in pieces as they arrive; a message is
    # complete at its message_finished event.
    wsproto_conn = wsproto_connection(client=False, compressed=compressed)
    wsproto_receive = wsproto_conn.receive_data
    wsproto_events = wsproto_conn.events
    wsproto_message = wsproto.events.Message

    def wsproto_pass() -> int:
        n = 0
        for chunk in chunks:
            wsproto_receive(chunk)
            for event in wsproto_events():
                if isinstance(event, wsproto_message) and event.message_finished:
                    n += 1
        return n

    # websockets' sans-I/O layer yields frames: it neither assembles messages
    # nor decodes text (its I/O layers do), so it does less than the others.
    ws_proto = websockets_protocol(client=False, compressed=compressed)
    ws_receive = ws_proto.receive_data
    ws_events = ws_proto.events_received
    ws_frame = websockets.frames.Frame

    def websockets_pass() -> int:
        n = 0
        for chunk in chunks:
            ws_receive(chunk)
            for frame in ws_events():
                if isinstance(frame, ws_frame) and frame.fin:
                    n += 1
        return n

    _check_sansws_parse(payload, chunks, compressed)
    return {"sansws": sansws_pass, "wsproto": wsproto_pass, "websockets": websockets_pass}


def _check_sansws_parse(payload: str | bytes, chunks: Sequence[bytes], compressed: bool) -> None:
    """Fail loudly if sansws does not deliver the messages it is timed on."""
    _, server = sansws_pair(compressed)
    for chunk in chunks:
        for event in server.receive_data(chunk):
            if not (isinstance(event, sansws.Message) and event.data == payload):
                raise AssertionError(f"unexpected event {event!r:.200}")


def produce_passes(
    payload: str | bytes, count: int, client: bool, compressed: bool = False
) -> dict[str, Pass]:
    is_text = isinstance(payload, str)
    loop = range(count)

    conn = sansws_pair(compressed)[0 if client else 1]
    send = conn.send_text if is_text else conn.send_binary
    data_to_send = conn.data_to_send

    def sansws_pass() -> int:
        for _ in loop:
            send(payload)  # type: ignore[arg-type]  # text or bytes, to match send
            data_to_send()
        return count

    wsproto_send = wsproto_connection(client, compressed).send
    message = wsproto.events.TextMessage if is_text else wsproto.events.BytesMessage

    def wsproto_pass() -> int:
        for _ in loop:
            wsproto_send(message(data=payload))  # type: ignore[arg-type]
        return count

    # websockets' send_text takes UTF-8 bytes: encoding is part of the work.
    ws_proto = websockets_protocol(client, compressed)
    ws_data_to_send = ws_proto.data_to_send
    if isinstance(payload, str):
        text = payload
        ws_send_text = ws_proto.send_text

        def websockets_pass() -> int:
            for _ in loop:
                ws_send_text(text.encode())
                ws_data_to_send()
            return count

    else:
        data = payload
        ws_send_binary = ws_proto.send_binary

        def websockets_pass() -> int:
            for _ in loop:
                ws_send_binary(data)
                ws_data_to_send()
            return count

    return {"sansws": sansws_pass, "wsproto": wsproto_pass, "websockets": websockets_pass}


# ---------------------------------------------------------------- timing


def measure(
    passes: dict[str, Pass], expected: int, duration: float, repeat: int
) -> dict[str, float]:
    """Seconds per pass for each library: the best of ``repeat`` runs, each
    at least ``duration`` long; the libraries take turns in every round."""
    loops: dict[str, int] = {}
    for name, run in passes.items():
        handled = run()  # also warms up
        if handled != expected:
            raise AssertionError(f"{name} handled {handled} messages, expected {expected}")
        n = 1
        while True:
            start = time.perf_counter()
            for _ in range(n):
                run()
            elapsed = time.perf_counter() - start
            if elapsed >= duration:
                break
            n = max(n + 1, math.ceil(n * 1.2 * duration / max(elapsed, 1e-9)))
        loops[name] = n
    best = dict.fromkeys(passes, math.inf)
    for _ in range(repeat):
        for name, run in passes.items():
            n = loops[name]
            start = time.perf_counter()
            for _ in range(n):
                run()
            best[name] = min(best[name], (time.perf_counter() - start) / n)
    return best


# ---------------------------------------------------------------- output


def human_size(size: int) -> str:
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    if size >= 1 << 10 and size % (1 << 10) == 0:
        return f"{size >> 10} KiB"
    return f"{size} B"


@dataclass
class Row:
    workload: str
    kind: str
    size: int
    frames_per_s: dict[str, float]

    def ratio(self, other: str) -> float:
        return self.frames_per_s["sansws"] / self.frames_per_s[other]


def format_row(row: Row) -> str:
    cells = [f"{human_size(row.size):>8} {row.kind:<6}"]
    for name in LIBRARIES:
        rate = row.frames_per_s[name]
        cells.append(f"{rate:>12,.0f} {rate * row.size / 1e6:>9,.1f}")
    ratios = []
    for other, target in targets(row.workload).items():
        ratio = row.ratio(other)
        ratios.append(f"{ratio:>6.2f}x{' ' if ratio >= target else '!'}")
    return " | ".join(cells) + " | " + " ".join(f"{r:>12}" for r in ratios)


def table_header() -> list[str]:
    top = [" " * 15] + [f"{name:^22}" for name in LIBRARIES] + ["  sansws / ..."]
    sub = [f"{'size':>8} {'type':<6}"]
    sub += [f"{'frames/s':>12} {'MB/s':>9}" for _ in LIBRARIES]
    sub.append(" ".join(f"{name:>12}" for name in TARGETS))
    return [" | ".join(top), " | ".join(sub)]


def versions(pure_python: bool) -> str:
    accelerator = "forced off" if pure_python and HAS_SPEEDUPS else "yes" if HAS_SPEEDUPS else "no"
    return (
        f"Python {platform.python_version()} ({platform.machine()}); "
        f"sansws {sansws.__version__} (C accelerator: {accelerator}), "
        f"wsproto {version('wsproto')}, websockets {version('websockets')}"
    )


@contextlib.contextmanager
def pure_python_sansws(enabled: bool) -> Iterator[None]:
    """Make sansws' connections use the pure-Python fallback, as when it
    was installed without a compiler."""
    names = ("apply_mask", "build_frame", "decode_text")
    saved = {name: getattr(sansws.connection, name) for name in names}
    if enabled:
        for name in names:
            setattr(sansws.connection, name, getattr(frames, f"{name}_python"))
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(sansws.connection, name, function)


# ---------------------------------------------------------------- main runs


def run_frames(
    settings: Settings, workloads: Sequence[str], out: Callable[[str], None]
) -> list[Row]:
    rows: list[Row] = []
    for workload in workloads:
        out("")
        out(WORKLOADS[workload].format(read=settings.read_size))
        for line in table_header():
            out(line)
        for size in settings.sizes:
            count = frames_per_pass(size, settings)
            for kind in KINDS:
                payload = make_payload(kind, size, settings.charset)
                compressed = workload.endswith("-deflate")
                if workload.startswith("parse"):
                    passes = parse_passes(payload, count, settings.read_size, compressed)
                else:
                    client = workload.startswith("client")
                    passes = produce_passes(payload, count, client, compressed)
                seconds = measure(passes, count, settings.duration, settings.repeat)
                row = Row(workload, kind, size, {k: count / v for k, v in seconds.items()})
                rows.append(row)
                out(format_row(row))
    return rows


def mask_pass(function: MaskFunction, data: bytes, mask: bytes) -> Pass:
    def run() -> int:
        return len(function(data, mask))

    return run


def run_masking(settings: Settings, out: Callable[[str], None]) -> dict[int, dict[str, float]]:
    """GB/s for each masking function, by payload size."""
    functions: dict[str, MaskFunction] = {}
    if HAS_SPEEDUPS:
        functions["sansws C"] = apply_mask
    functions["sansws Python"] = apply_mask_python
    if websockets_apply_mask is not None:
        functions["websockets C"] = websockets_apply_mask
    mask = b"\x12\x34\x56\x78"
    out("")
    out("masking: GB/s (1 GB = 1e9 bytes)")
    out(f"{'size':>8} | " + " | ".join(f"{name:>14}" for name in functions))
    results: dict[int, dict[str, float]] = {}
    for size in (65536, 1048576):
        data = random.Random(size).randbytes(size)
        expected = apply_mask_python(data, mask)
        passes: dict[str, Pass] = {}
        for name, function in functions.items():
            if function(data, mask) != expected:
                raise AssertionError(f"{name} masks differently")
            passes[name] = mask_pass(function, data, mask)
        seconds = measure(passes, size, settings.duration, settings.repeat)
        results[size] = {name: size / s / 1e9 for name, s in seconds.items()}
        cells = [f"{results[size][name]:>14.2f}" for name in functions]
        line = f"{human_size(size):>8} | " + " | ".join(cells)
        if "sansws C" in functions and "websockets C" in functions:
            ratio = results[size]["sansws C"] / results[size]["websockets C"]
            line += f" | sansws C / websockets C: {ratio:.2f}x"
        out(line)
    return results


def summary(rows: Sequence[Row], masking: dict[int, dict[str, float]]) -> list[str]:
    missed = []
    for row in rows:
        for other, target in targets(row.workload).items():
            if row.ratio(other) < target:
                missed.append(
                    f"  {row.workload} {row.kind} {human_size(row.size)}: "
                    f"{row.ratio(other):.2f}x {other} (target {target:g}x)"
                )
    big = masking.get(1048576, {})
    if "sansws C" in big and "websockets C" in big:
        ratio = big["sansws C"] / big["websockets C"]
        if ratio < MASK_TARGET:
            missed.append(f"  masking 1 MiB: {ratio:.2f}x websockets (target {MASK_TARGET}x)")
    if not missed:
        return ["targets: all met"]
    return ["targets missed (! in the tables):", *missed]


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, list[str], bool]:
    parser = argparse.ArgumentParser(
        description="Frame parsing and producing throughput: sansws, wsproto, websockets."
    )
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="comma-separated payload sizes in bytes (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0.05,
        help="minimum seconds per timed run (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat", type=int, default=7, help="timed runs per figure, best counts (default: 7)"
    )
    parser.add_argument("--read-size", type=int, default=65536, help="bytes per read when parsing")
    parser.add_argument(
        "--charset",
        choices=("ascii", "mixed"),
        default="ascii",
        help="text payloads: plain ASCII, or a mix of 1- to 4-byte UTF-8 characters",
    )
    parser.add_argument(
        "--workload",
        action="append",
        choices=[*WORKLOADS, "mask"],
        help="run only this workload (repeatable; default: all)",
    )
    parser.add_argument(
        "--pure-python",
        action="store_true",
        help="run sansws without its C accelerator, as installed without a compiler",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few frames, one short run each: checks that the script works, "
        "figures are not meaningful",
    )
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.quick:
        settings = Settings(sizes, 0.0, 1, args.read_size, 1, 2, args.charset, args.pure_python)
    else:
        settings = Settings(
            sizes,
            args.duration,
            args.repeat,
            args.read_size,
            4 << 20,
            2000,
            args.charset,
            args.pure_python,
        )
    workloads = args.workload or [*WORKLOADS, "mask"]
    return settings, workloads, args.quick


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    settings, workloads, quick = parse_args(argv)
    out(versions(settings.pure_python))
    if quick:
        out("--quick: figures are not meaningful")
    else:
        out(
            f"best of {settings.repeat} runs of >= {settings.duration} s each; "
            "MB = 1e6 payload bytes; ! marks a ratio below its target "
            f"({', '.join(f'{t:g}x {n}' for n, t in TARGETS.items())}; "
            f"compressed: {', '.join(f'{t:g}x {n}' for n, t in DEFLATE_TARGETS.items())})"
        )
    with pure_python_sansws(settings.pure_python):
        rows = run_frames(settings, [w for w in WORKLOADS if w in workloads], out)
    masking = run_masking(settings, out) if "mask" in workloads else {}
    out("")
    for line in summary(rows, masking):
        out(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
