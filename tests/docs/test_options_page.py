"""docs/options.md lists every option as sansws.options describes it."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_options_page_holds_the_table_of_every_option() -> None:
    table = runpy.run_path(str(ROOT / "scripts" / "options_table.py"))["table"]()
    assert table in (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
