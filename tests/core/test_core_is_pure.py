"""The core makes no I/O: DESIGN.md's rule, enforced on the source."""

from __future__ import annotations

import ast
import pathlib

import sansws

FORBIDDEN = {"socket", "select", "selectors", "threading", "asyncio", "trio", "anyio", "time"}
# The command-line client is the one module allowed to run an event loop.
EXEMPT = {"cli.py", "__main__.py"}
CORE = pathlib.Path(sansws.__file__).parent


def imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def core_files() -> list[pathlib.Path]:
    return [
        path
        for path in CORE.rglob("*.py")
        if path.name not in EXEMPT and "drivers" not in path.relative_to(CORE).parts
    ]


def test_the_core_imports_no_io_thread_or_clock_module() -> None:
    offenders = {
        str(path.relative_to(CORE)): sorted(imported_modules(path) & FORBIDDEN)
        for path in core_files()
    }
    offenders = {path: mods for path, mods in offenders.items() if mods}
    assert offenders == {}


def test_the_purity_check_sees_every_core_module() -> None:
    # Guards the test above against checking nothing (a wrong path).
    names = {path.name for path in core_files()}
    assert {"connection.py", "frames.py", "handshake.py", "events.py"} <= names


def test_the_purity_check_catches_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("import os\nfrom time import monotonic\nimport selectors as s\n")
    assert imported_modules(module) & FORBIDDEN == {"time", "selectors"}
