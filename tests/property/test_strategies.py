"""sansws.testing itself: optional, and its strategies keep their promises."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from sansws.frames import Frame, Opcode
from sansws.testing import (
    FrameStream,
    chunkings,
    frame_streams,
    frames,
    malformed_streams,
    messages,
)

# Makes every "import hypothesis" fail, as if it were not installed.
WITHOUT_HYPOTHESIS = "import sys; sys.modules['hypothesis'] = None\n"


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_HYPOTHESIS + code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sansws_and_its_core_import_without_hypothesis() -> None:
    result = run(
        "import pkgutil, importlib, sansws\n"
        "for info in pkgutil.walk_packages(sansws.__path__, 'sansws.'):\n"
        "    if info.name.split('.')[1] not in ('testing', 'drivers', 'cli', '__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('sansws')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert "sansws.connection" in result.stdout


def test_sansws_testing_without_hypothesis_says_how_to_install_it() -> None:
    result = run("import sansws.testing\n")
    assert result.returncode != 0
    assert "ImportError: sansws.testing needs hypothesis: pip install 'sansws[testing]'" in (
        result.stderr
    )


@given(st.binary(max_size=300), st.data())
def test_a_chunking_is_the_data_in_non_empty_reads(data: bytes, draw: st.DataObject) -> None:
    chunks = draw.draw(chunkings(data))
    assert b"".join(chunks) == data
    assert all(chunks)


def test_chunkings_go_down_to_one_byte_at_a_time() -> None:
    chunks = find(chunkings(b"abcdef"), lambda chunks: len(chunks) == 6)
    assert chunks == [b"a", b"b", b"c", b"d", b"e", b"f"]


def shape(frame: Frame) -> tuple[int, bool, str]:
    length = len(frame.payload)
    encoding = "7-bit" if length < 126 else "16-bit" if length < 65536 else "64-bit"
    return frame.opcode, frame.fin, encoding


@pytest.mark.parametrize("opcode", [Opcode.CONTINUATION, Opcode.TEXT, Opcode.BINARY])
@pytest.mark.parametrize("fin", [True, False])
@pytest.mark.parametrize("encoding", ["7-bit", "16-bit", "64-bit"])
def test_frames_reach_every_data_frame_shape(opcode: Opcode, fin: bool, encoding: str) -> None:
    wanted = (opcode, fin, encoding)
    # Searching the shapes, not the frames, keeps large payloads out of reports.
    assert find(frames().map(shape), lambda found: found == wanted) == wanted


@given(frame_streams() | malformed_streams())
def test_streams_are_never_empty(stream: FrameStream) -> None:
    # An empty read would mean end of stream to a receiver.
    assert stream.data


@given(messages(max_size=200))
def test_messages_are_text_or_bytes_within_the_size(message: str | bytes) -> None:
    size = len(message.encode()) if isinstance(message, str) else len(message)
    assert size <= 200


def test_strategies_refuse_arguments_that_select_nothing() -> None:
    with pytest.raises(ValueError, match="violations"):
        malformed_streams(violations=["no-such-violation"])
    with pytest.raises(ValueError, match="opcodes"):
        frames(opcodes=())


def test_the_example_in_the_testing_guide_runs() -> None:
    guide = pathlib.Path(__file__).parents[2] / "docs" / "testing.md"
    [example] = re.findall(r"```python\n(.*?)```", guide.read_text(encoding="utf-8"), re.S)
    namespace: dict[str, object] = {}
    exec(compile(example, str(guide), "exec"), namespace)
    test = namespace["test_the_server_reports_what_the_stream_holds"]
    assert callable(test)
    test()
