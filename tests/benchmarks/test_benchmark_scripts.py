"""The benchmark scripts keep working: each runs in its quick mode.

Only that they run and measure what they claim is checked here; their figures
are read by people, never asserted on.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load(name: str) -> ModuleType:
    module_name = f"sansws_benchmark_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up while the module runs.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def test_frames_benchmark_reports_every_workload_size_and_library() -> None:
    frames = load("frames")
    lines: list[str] = []
    # 70000 B frames straddle the 65536 B reads, so payloads arrive in pieces.
    assert frames.main(["--quick", "--sizes", "16,126,70000"], out=lines.append) == 0
    output = "\n".join(lines)
    for library in ("sansws", "wsproto", "websockets"):
        assert library in lines[0]
    for heading in ("parse:", "produce, client:", "produce, server:", "masking:"):
        assert sum(line.startswith(heading) for line in lines) == 1, heading
    rows = [line for line in lines if line.split("|")[0].strip().endswith(("text", "binary"))]
    # 3 workloads x 3 sizes x 2 kinds, each with a rate per library and two ratios.
    assert len(rows) == 18
    for size in ("16 B", "126 B", "70000 B"):
        assert sum(size in row.split("|")[0] for row in rows) == 6
    assert all(row.count("x") >= 2 for row in rows)
    assert "sansws Python" in output
    assert any(line.startswith("targets") for line in lines)


def test_frames_benchmark_can_measure_the_pure_python_fallback() -> None:
    frames = load("frames")
    connection = frames.sansws.connection
    accelerated = connection.decode_text
    lines: list[str] = []
    argv = ["--quick", "--pure-python", "--sizes", "3000", "--workload", "parse"]
    assert frames.main(argv, out=lines.append) == 0
    assert "C accelerator: forced off" in lines[0] or "C accelerator: no" in lines[0]
    assert sum(line.split("|")[0].strip().endswith(("text", "binary")) for line in lines) == 2
    # The connection gets its functions back afterwards.
    assert connection.decode_text is accelerated


def test_frames_benchmark_checks_that_each_library_handled_every_message() -> None:
    frames = load("frames")
    passes = {"short": lambda: 1}
    with pytest.raises(AssertionError, match="short handled 1 messages, expected 2"):
        frames.measure(passes, expected=2, duration=0.0, repeat=1)
