"""Hypothesis strategies for testing code built on sansws, or on any
WebSocket implementation.

They describe the protocol's inputs, each labelled with what a compliant
peer must make of it:

* frames: :func:`frames`, :func:`masking_keys`, :func:`close_payloads`;
* messages and frame streams: :func:`messages`, :func:`frame_streams`
  (valid) and :func:`malformed_streams` (each labelled with the close code to
  fail with), as :class:`FrameStream`;
* opening handshakes: :func:`handshake_requests` and
  :func:`invalid_handshake_requests`, as :class:`HandshakeRequest` labelled
  with the status to answer;
* reads: :func:`chunkings` splits bytes the way a transport might.

This module needs hypothesis, installed by the ``testing`` extra
(``pip install 'sansws[testing]'``); the rest of sansws does not.
"""

try:
    import hypothesis as _hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("sansws.testing needs hypothesis: pip install 'sansws[testing]'") from exc

from ._chunks import chunkings
from ._frames import (
    VIOLATIONS,
    FrameStream,
    close_payloads,
    frame_streams,
    frames,
    malformed_streams,
    masking_keys,
    messages,
)
from ._handshake import HandshakeRequest, handshake_requests, invalid_handshake_requests

__all__ = [
    "VIOLATIONS",
    "FrameStream",
    "HandshakeRequest",
    "chunkings",
    "close_payloads",
    "frame_streams",
    "frames",
    "handshake_requests",
    "invalid_handshake_requests",
    "malformed_streams",
    "masking_keys",
    "messages",
]
