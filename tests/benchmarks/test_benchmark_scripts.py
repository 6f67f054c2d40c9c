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
    headings = (
        "parse:",
        "produce, client:",
        "produce, server:",
        "parse, compressed:",
        "produce compressed, client:",
        "produce compressed, server:",
        "masking:",
    )
    for heading in headings:
        assert sum(line.startswith(heading) for line in lines) == 1, heading
    rows = [line for line in lines if line.split("|")[0].strip().endswith(("text", "binary"))]
    # 6 workloads x 3 sizes x 2 kinds, each with a rate per library and two ratios.
    assert len(rows) == 36
    for size in ("16 B", "126 B", "70000 B"):
        assert sum(size in row.split("|")[0] for row in rows) == 12
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


def test_echo_benchmark_reports_every_figure_for_every_implementation() -> None:
    echo = load("echo")
    lines: list[str] = []
    assert echo.main(["--quick"], out=lines.append) == 0
    for library in ("sansws", "websockets", "aiohttp", "trio"):
        assert library in lines[0]
    header = next(line for line in lines if "round trips/s" in line)
    for figure in ("64 B", "4 KiB", "1 MiB", "handshakes/s", "KiB/conn"):
        assert figure in header
    rows = {line.split("|")[0].strip(): line.split("|")[1:] for line in lines if "|" in line}
    for implementation in echo.IMPLEMENTATIONS:
        figures = [float(cell.replace(",", "")) for cell in rows[implementation]]
        assert len(figures) == 5
        # Rates were measured (a failed echo raises); memory may round to 0.
        assert all(figure > 0 for figure in figures[:4]), implementation
    for ours, theirs in echo.PAIRS:
        ratios = rows[f"{ours} / {theirs}"]
        assert all(cell.strip().rstrip("!").endswith("x") for cell in ratios)
    assert any(line.startswith("targets") for line in lines)


def test_echo_benchmark_ratios_favour_sansws_above_one_for_rates_and_memory() -> None:
    echo = load("echo")
    assert echo.ratio_of("64 B", 2000.0, 1000.0) == 2.0
    # Less memory is better: websockets' KiB over sansws'.
    assert echo.ratio_of("idle memory", 10.0, 20.0) == 2.0
    results = {
        "sansws-sync": dict.fromkeys(echo.FIGURES, 1.0),
        "websockets-sync": dict.fromkeys(echo.FIGURES, 1.0) | {"1 MiB": 2.0},
    }
    lines = echo.table(results, ["sansws-sync", "websockets-sync"])
    assert "sansws-sync below websockets-sync on 1 MiB: 0.50x" in "\n".join(lines)


def test_frames_benchmark_compresses_with_every_library() -> None:
    frames = load("frames")
    payload = frames.make_payload("text", 5000, "ascii")
    stream = frames.masked_stream(payload, 3, compressed=True)
    # Compressed: much smaller than three masked frames of 5000 bytes.
    assert len(stream) < 5000
    for name, run in frames.parse_passes(payload, 3, 4096, compressed=True).items():
        assert run() == 3, name
    for client in (True, False):
        for name, run in frames.produce_passes(payload, 3, client, compressed=True).items():
            assert run() == 3, name


def test_deflate_memory_benchmark_reports_every_configuration() -> None:
    memory = load("deflate_memory")
    lines: list[str] = []
    assert memory.main(["--quick"], out=lines.append) == 0
    rows = lines[2:]
    assert len(rows) == len(memory.cases())
    for library in ("sansws", "websockets", "wsproto"):
        assert any(row.startswith(library) for row in rows)
    cost = {row.rsplit(None, 3)[0]: float(row.split()[-1]) for row in rows}
    # Larger windows and memory levels cost more: 300 KiB against about 20.
    large = cost["sansws, window 15 bits, memory level 8"]
    small = cost["sansws, window 10 bits, memory level 1"]
    assert large > 4 * small > 0


def test_interrupt_latency_benchmark_measures_wakeups_and_sigint() -> None:
    latency = load("interrupt_latency")
    lines: list[str] = []
    status = latency.main(["--quick"], out=lines.append)
    assert lines[0].startswith("sync driver: latency in ms")
    rows = [line for line in lines[1:-1]]
    assert [row.split("  ")[0] for row in rows] == [
        "abort() from another thread, recv() blocked",
        "SIGINT in recv(), connection idle",
    ]
    for row in rows:
        low, median, high = (float(cell) for cell in row.split()[-3:])
        assert 0 <= low <= median <= high
    assert lines[-1].startswith("worst case:")
    assert status in (0, 1)  # over budget on a loaded machine is reported, not a crash


def test_fragments_benchmark_reports_every_library_on_both_streams() -> None:
    fragments = load("fragments")
    lines: list[str] = []
    assert fragments.main(["--quick"], out=lines.append) == 0
    rows = [line.split("|") for line in lines[2:]]
    assert len(rows) == 8
    for library in ("sansws (max_fragments=None)", "sansws (default", "websockets", "wsproto"):
        assert sum(row[0].startswith(library) for row in rows) == 2, library
    verdicts = {row[0].strip(): row[-1].strip() for row in rows}
    # The default limit refuses a 16 KiB message in 16 Ki frames; the others take it.
    assert verdicts["sansws (default, 4096)"] == "no: 1009"
    assert verdicts["sansws (max_fragments=None)"] == "yes"
    assert all(float(row[2]) >= 0 for row in rows)


def test_uvicorn_benchmark_reports_each_protocol_and_the_ratio() -> None:
    uvicorn_echo = load("uvicorn_echo")
    lines: list[str] = []
    assert uvicorn_echo.main(["--quick"], out=lines.append) == 0
    assert "uvicorn" in lines[0]
    rows = {line.split("|")[0].strip(): line for line in lines if line.count("|") == 5}
    assert set(rows) >= {"wsproto", "websockets-sansio", "sansws", "sansws / best other"}
    assert rows["sansws / best other"].count("x") == 5
    assert any(line.startswith("targets") for line in lines)


def test_broadcast_benchmark_reports_both_libraries_and_the_speed_up() -> None:
    broadcast = load("broadcast")
    lines: list[str] = []
    assert broadcast.main(["--quick"], out=lines.append) == 0
    assert "websockets" in lines[0]
    rows = {line.split("|")[0].strip(): line for line in lines if line.count("|") == 3}
    assert set(rows) >= {"sansws x 20", "websockets x 20", "sansws speed-up x 20"}
    # Every figure is a measured, positive number.
    for name in ("sansws x 20", "websockets x 20"):
        assert all(float(cell) > 0 for cell in rows[name].split("|")[1:])
    assert rows["sansws speed-up x 20"].count("x") == 4
