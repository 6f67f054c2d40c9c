"""Coverage-guided fuzzing of the opening handshake parser, in both roles.

Run for ten minutes (libFuzzer options follow the script name)::

    python fuzz/fuzz_handshake.py -max_total_time=600

The first input byte chooses the role, small or default limits, and how the
rest is split into ``receive_data`` calls. A server answers any complete
request with ``accept()`` (or ``reject()``); for a client, the placeholder
``@ACCEPT@`` in the input is replaced by the right ``Sec-WebSocket-Accept``
value, so the fuzzer can reach the checks that follow it. See fuzz/README.md.
"""

from __future__ import annotations

import atheris
import h11

with atheris.instrument_imports(include=["sansws"]):
    from sansws import ClientConnection, ServerConnection, State
    from sansws.events import Accepted, Closed, Rejected, Request
    from sansws.handshake import accept_key

from _runner import run  # also puts tests/property on sys.path
from invariants import check_buffers, check_end, check_output

SMALL_LIMITS = {"max_header_line": 200, "max_headers": 10, "max_body_size": 100}


def check_http_response(data: bytes) -> int:
    """``data`` is one well-formed HTTP/1.1 response; return its status."""
    parser = h11.Connection(h11.CLIENT)
    headers = [("Host", "x"), ("Connection", "Upgrade"), ("Upgrade", "websocket")]
    parser.send(h11.Request(method="GET", target="/", headers=headers))
    parser.send(h11.EndOfMessage())
    parser.receive_data(data)
    event = parser.next_event()
    assert isinstance(event, h11.Response | h11.InformationalResponse), event
    return event.status_code


def fuzz_server(data: bytes, config: int) -> None:
    limits = SMALL_LIMITS if config & 2 else {}
    server = ServerConnection(**limits)  # type: ignore[arg-type]
    request = None
    for chunk in chunks(data, config):
        for event in server.receive_data(chunk):
            if isinstance(event, Request):
                request = event
        if server.state is not State.CONNECTING:
            break
        check_buffers(server)
    if request is not None and server.state is State.CONNECTING:
        if config & 4:
            server.reject(403, body=b"no")
        else:
            server.accept()
    out = server.data_to_send()
    if out:
        head, _, frames = out.partition(b"\r\n\r\n")
        status = check_http_response(head + b"\r\n\r\n")
        assert status == 101 or 400 <= status < 500, status
        if status == 101:
            assert request is not None
            assert request.error is None
            # Frames the client sent early were processed by accept(): they
            # may have closed the connection already, cleanly or not.
            check_output(frames, client=False)
        else:
            assert server.state is State.CLOSED
    server.receive_data(b"")
    check_end(server)


def fuzz_client(data: bytes, config: int) -> None:
    limits = SMALL_LIMITS if config & 2 else {}
    client = ClientConnection("ws://example.com/", **limits)  # type: ignore[arg-type]
    client.data_to_send()
    data = data.replace(b"@ACCEPT@", accept_key(client._handshake.key).encode())
    events = []
    for chunk in chunks(data, config):
        events.extend(client.receive_data(chunk))
        check_buffers(client)
    events.extend(client.receive_data(b""))
    check_output(client.data_to_send(), client=True)
    terminal = [e for e in events if isinstance(e, Closed | Rejected)]
    assert len(terminal) == 1, events
    assert events[-1] is terminal[0]
    if any(isinstance(e, Accepted) for e in events):
        assert isinstance(events[0], Accepted)
    check_end(client)


def chunks(data: bytes, config: int) -> list[bytes]:
    size = (config >> 3) + 1 if config >> 3 else len(data) or 1
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    config, rest = data[0], data[1:]
    if config & 1:
        fuzz_client(rest, config)
    else:
        fuzz_server(rest, config)


REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: @ACCEPT@\r\n"
)
SEEDS = [
    b"\x00" + REQUEST + b"\r\n",
    b"\x02" + REQUEST + b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
    b"; server_max_window_bits=10, permessage-deflate\r\n\r\n\x81\x80\x00\x00\x00\x00",
    b"\x04" + REQUEST + b"Sec-WebSocket-Protocol: chat, superchat\r\n\r\n",
    b"\x28" + REQUEST + b"Content-Length: 5\r\n\r\nhello",
    b"\x01" + SWITCHING + b"\r\n\x81\x05hello",
    b"\x03" + SWITCHING + b"Sec-WebSocket-Extensions: permessage-deflate; "
    b"server_no_context_takeover; client_max_window_bits=9\r\n\r\n"
    b"\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00",
    b"\x01HTTP/1.1 100 Continue\r\n\r\n" + SWITCHING + b"\r\n",
    b"\x09HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n",
    b"\x01HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
    b"\x01HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
]


def main() -> None:
    run("handshake", test_one_input, SEEDS)


if __name__ == "__main__":
    main()
