"""Masking (RFC 6455 section 5.3): the C accelerator and the pure-Python
fallback agree on every input, and masking is its own inverse."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansws import frames
from sansws.frames import apply_mask_python
from sansws.testing import masking_keys

speedups: ModuleType | None
try:
    from sansws import _speedups as speedups
except ImportError:  # pragma: no cover - depends on the build
    speedups = None

needs_speedups = pytest.mark.skipif(speedups is None, reason="the C accelerator is not built")


@st.composite
def buffers(draw: st.DrawFn) -> bytes | bytearray | memoryview:
    """Payloads of any length, including ones past the C code's 16- and
    8-byte strides and past the size where it releases the GIL, passed as
    any buffer type, possibly a view that starts off alignment."""
    if draw(st.integers(0, 9)) == 0:
        pattern = draw(st.binary(min_size=1, max_size=64))
        data = (pattern * (70_000 // len(pattern) + 1))[: draw(st.integers(65_536, 70_000))]
    else:
        data = draw(st.binary(max_size=300))
    offset = draw(st.integers(0, min(15, len(data))))
    kind = draw(st.sampled_from(("bytes", "bytearray", "memoryview")))
    if kind == "memoryview":
        return memoryview(data)[offset:]
    data = data[offset:]
    return bytearray(data) if kind == "bytearray" else data


@needs_speedups
@given(buffers(), masking_keys())
def test_the_c_apply_mask_equals_apply_mask_python(
    data: bytes | bytearray | memoryview, key: bytes
) -> None:
    assert speedups is not None
    assert speedups.apply_mask(data, key) == apply_mask_python(data, key)


def test_apply_mask_is_the_c_version_when_it_is_built() -> None:
    expected = speedups.apply_mask if speedups is not None else apply_mask_python
    assert frames.apply_mask is expected
    assert frames.HAS_SPEEDUPS is (speedups is not None)


MASKERS: list[Callable[[bytes | bytearray | memoryview, bytes], bytes]] = [apply_mask_python]
if speedups is not None:
    MASKERS.append(speedups.apply_mask)


@pytest.mark.parametrize("apply_mask", MASKERS, ids=lambda f: f.__module__)
@given(buffers(), masking_keys())
def test_masking_twice_gives_the_data_back(
    apply_mask: Callable[[bytes | bytearray | memoryview, bytes], bytes],
    data: bytes | bytearray | memoryview,
    key: bytes,
) -> None:
    masked = apply_mask(data, key)
    assert isinstance(masked, bytes)
    assert len(masked) == len(data)
    assert apply_mask(masked, key) == bytes(data)


@given(st.binary(min_size=1, max_size=64), masking_keys())
def test_each_byte_is_xored_with_the_key_byte_at_its_position_mod_4(
    data: bytes, key: bytes
) -> None:
    # RFC 6455 section 5.3: octet i of the payload is XORed with octet
    # i MOD 4 of the masking key.
    expected = bytes(byte ^ key[i % 4] for i, byte in enumerate(data))
    assert frames.apply_mask(data, key) == expected
