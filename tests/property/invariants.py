"""What must hold whatever a peer sends: shared by the property tests here
and the coverage-guided fuzz targets in fuzz/."""

from __future__ import annotations

from sansws import ClientConnection, ServerConnection, State
from sansws.errors import PayloadTooBig, ProtocolError
from sansws.frames import (
    Frame,
    is_valid_close_code,
    parse_close_payload,
    parse_frame,
)

# A partial header (14 bytes at most) or a partial control frame.
MAX_BUFFERED_FRAME = 14 + 125
MAX_EARLY_DATA = 1 << 20


def valid_close_code(code: int | None) -> bool:
    """Close codes a connection may report: those valid on the wire, 1005 (a
    Close without a code) and 1006 (no Close at all)."""
    return code is not None and (code in (1005, 1006) or is_valid_close_code(code))


def check_buffers(conn: ClientConnection | ServerConnection) -> None:
    """No buffer in the core holds more than its limit allows."""
    assert len(conn._buf) <= MAX_BUFFERED_FRAME, len(conn._buf)
    limit = conn.max_message_size
    if limit is not None:
        assert sum(len(part) for part in conn._msg_parts) <= limit
        assert conn._msg_size <= limit
    if isinstance(conn, ServerConnection):
        assert len(conn._early_data) <= MAX_EARLY_DATA


def check_output(data: bytes, *, client: bool) -> list[Frame]:
    """What a connection writes after the handshake is well-formed frames:
    masked from a client only, small control frames, a valid close code, and
    nothing after a Close. Returns the frames, unmasked."""
    frames = []
    closed = False
    while data:
        parsed = parse_frame(data)
        assert parsed is not None, "a truncated frame was written"
        frame, masked, consumed = parsed
        frames.append(frame)
        data = data[consumed:]
        assert not closed, "a frame was written after a Close frame"
        assert masked == client
        if frame.opcode >= 0x8:  # a control frame
            assert len(frame.payload) <= 125
            assert frame.fin
            if frame.opcode == 8:
                code, _reason = parse_close_payload(frame.payload)
                assert code == 1005 or is_valid_close_code(code)
                closed = True
    return frames


def check_end(conn: ClientConnection | ServerConnection) -> None:
    """After the peer's end of stream, the connection is closed for good with
    a close code from RFC 6455's list, and a protocol error carries the code
    that was sent for it."""
    assert conn.state is State.CLOSED
    assert valid_close_code(conn.close_code), conn.close_code
    error = conn.close_error
    if isinstance(error, PayloadTooBig):
        assert error.code == 1009
    if isinstance(error, ProtocolError):
        assert error.code in (1002, 1007, 1009), error
        assert conn.close_code == error.code
