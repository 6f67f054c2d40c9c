"""Strategies for splitting a byte stream into reads."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

__all__ = ["chunkings"]


@st.composite
def _chunking(draw: st.DrawFn, data: bytes, max_cuts: int) -> list[bytes]:
    length = len(data)
    if length <= 1:
        return [data] if data else []
    how = draw(st.sampled_from(("whole", "cuts", "fixed")))
    if how == "whole":
        return [data]
    if how == "fixed":
        # Reads of one size; size 1 feeds the stream one byte at a time.
        size = draw(st.integers(1, length))
        return [data[i : i + size] for i in range(0, length, size)]
    cuts = sorted(draw(st.sets(st.integers(1, length - 1), min_size=1, max_size=max_cuts)))
    bounds = [0, *cuts, length]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def chunkings(data: bytes, *, max_cuts: int = 32) -> st.SearchStrategy[list[bytes]]:
    """Ways to split ``data`` into consecutive reads, as a transport might
    deliver it.

    Each chunking is a list of non-empty byte strings whose concatenation is
    ``data`` (an empty read would mean end of stream to a connection; empty
    ``data`` gives no reads). It is ``data`` whole, reads of one fixed size
    down to one byte at a time, or up to ``max_cuts`` cuts at arbitrary
    positions: inside a frame header, a masking key, a UTF-8 character, or
    just after the opening handshake.

    Example::

        @given(st.data())
        def test_reads_do_not_matter(data):
            stream = data.draw(frame_streams())
            whole = open_server().receive_data(stream.data)
            server = open_server()
            pieces = [
                event
                for chunk in data.draw(chunkings(stream.data))
                for event in server.receive_data(chunk)
            ]
            assert pieces == whole
    """
    return _chunking(data, max_cuts)
