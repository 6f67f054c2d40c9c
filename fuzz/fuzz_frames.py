"""Coverage-guided fuzzing of the frame parser: an open connection, in either
role, with or without permessage-deflate, receives arbitrary bytes.

Run for ten minutes (libFuzzer options follow the script name)::

    python fuzz/fuzz_frames.py -max_total_time=600

The first input byte chooses the configuration (role, compression, streaming,
a small message size limit), the second how the rest is split into
``receive_data`` calls. See fuzz/README.md.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["sansws"]):
    from sansws import ClientConnection, ServerConnection, State
    from sansws.events import Accepted, Request
    from sansws.extensions import PerMessageDeflate
    from sansws.handshake import accept_key

from _runner import run  # also puts tests/property on sys.path
from invariants import check_buffers, check_end, check_output

REQUEST = (
    b"GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)


def open_connection(config: int) -> ClientConnection | ServerConnection:
    client_role = bool(config & 1)
    settings = None
    if config & 2:
        settings = PerMessageDeflate(
            server_no_context_takeover=bool(config & 8),
            client_no_context_takeover=bool(config & 8),
            server_max_window_bits=8 if config & 16 else None,
            client_max_window_bits=8 if config & 16 else None,
        )
    options = {
        "compression": settings,
        "stream_messages": bool(config & 4),
        "max_message_size": 1000 if config & 32 else 1 << 16,
    }
    if client_role:
        client = ClientConnection("ws://example.com/", **options)  # type: ignore[arg-type]
        client.data_to_send()
        extensions = ""
        if settings is not None:
            params = (
                "; server_no_context_takeover; client_no_context_takeover" if config & 8 else ""
            )
            if config & 16:
                params += "; server_max_window_bits=8; client_max_window_bits=8"
            extensions = f"Sec-WebSocket-Extensions: permessage-deflate{params}\r\n"
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(client._handshake.key)}\r\n{extensions}\r\n"
        ).encode()
        [accepted] = client.receive_data(response)
        assert isinstance(accepted, Accepted)
        return client
    server = ServerConnection(**options)  # type: ignore[arg-type]
    [request] = server.receive_data(REQUEST)
    assert isinstance(request, Request)
    server.accept()
    server.data_to_send()
    return server


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    config, split = data[0], data[1]
    stream = data[2:]
    conn = open_connection(config)
    assert conn.state is State.OPEN
    client = isinstance(conn, ClientConnection)
    # Chunk sizes cycle through a pattern the second byte picks.
    sizes = [1 + (split >> shift) % 61 for shift in (0, 2, 4, 6)] if split else [len(stream) or 1]
    pos = i = 0
    output = []
    while pos < len(stream):
        size = sizes[i % len(sizes)]
        conn.receive_data(stream[pos : pos + size])
        output.append(conn.data_to_send())
        check_buffers(conn)
        pos += size
        i += 1
    conn.handle_timeout(0.0)
    conn.receive_data(b"")
    output.append(conn.data_to_send())
    check_output(b"".join(output), client=client)
    check_end(conn)


ZERO_MASK = b"\x00\x00\x00\x00"
SEEDS = [
    # Client role (odd first byte): unmasked frames from a server.
    b"\x01\x00\x81\x05hello\x89\x00\x88\x02\x03\xe8",
    b"\x03\x00\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00\xc1\x05\xf2\x00\x11\x00\x00",
    b"\x07\x55\x41\x03\xf2\x48\xcd\x80\x04\xc9\xc9\x07\x00\x8a\x01x",
    b"\x13\x00\xc2\x08\xf3\x48\xcd\xc9\xc9\x07\x00\x00\x02\x7e\x00\x10" + b"a" * 16,
    b"\x23\x00\xc2\x0d\xf2\x48\x05\x00\x00\x00\xff\xff\xca\xc9\xc9\x07\x00",
    # Server role (even first byte): frames masked with a zero key.
    b"\x00\x00\x81\x85" + ZERO_MASK + b"hello\x88\x82" + ZERO_MASK + b"\x03\xe8",
    b"\x02\x33\xc1\x87" + ZERO_MASK + b"\xf2\x48\xcd\xc9\xc9\x07\x00",
    b"\x06\x00\x01\x81" + ZERO_MASK + b"a\x80\x81" + ZERO_MASK + b"b",
]


def main() -> None:
    run("frames", test_one_input, SEEDS)


if __name__ == "__main__":
    main()
