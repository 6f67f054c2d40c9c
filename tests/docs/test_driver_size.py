"""The code lines docs/embedding.md reports for the drivers are the ones
scripts/code_lines.py counts; every driver stays under 400 of them, the three
general drivers and what they share under 1,400, and the uvicorn protocol,
whose ASGI rules are in the core (sansws.asgi), under 200."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
code_lines = runpy.run_path(str(ROOT / "scripts" / "code_lines.py"))["code_lines"]


def count(path: Path) -> int:
    return int(code_lines(path.read_text(encoding="utf-8")))


def test_the_embedding_guide_reports_the_drivers_code_lines() -> None:
    page = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    reported = dict(re.findall(r"^\| `(drivers/[\w.]+)`[^|]*\| (\d+) \|$", page, re.MULTILINE))
    files = sorted((ROOT / "drivers").glob("*.py"))
    actual = {f"drivers/{path.name}": count(path) for path in files if count(path)}
    assert {name: int(value) for name, value in reported.items()} == actual
    total = re.search(r"^\| all of `drivers/` \| (\d+) \|$", page, re.MULTILINE)
    assert total is not None
    assert int(total.group(1)) == sum(actual.values())


def test_each_driver_is_under_400_code_lines() -> None:
    for name in ("sync", "asyncio", "trio"):
        assert count(ROOT / "drivers" / f"{name}.py") < 400, name


def test_the_general_drivers_and_what_they_share_are_under_1400_code_lines() -> None:
    names = ("sync", "asyncio", "trio", "_common", "_sync_net", "__init__")
    assert sum(count(ROOT / "drivers" / f"{name}.py") for name in names) < 1400
    others = {path.stem for path in (ROOT / "drivers").glob("*.py")} - set(names)
    assert others == {"uvicorn"}  # a new module is counted on purpose


def test_the_uvicorn_protocol_is_under_200_code_lines() -> None:
    assert count(ROOT / "drivers" / "uvicorn.py") < 200


def test_the_example_driver_size_is_the_one_reported() -> None:
    lines = count(ROOT / "docs" / "examples" / "anyio_driver.py")
    assert f"{lines} code lines" in (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
