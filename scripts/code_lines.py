#!/usr/bin/env python3
"""Count code lines: lines holding code, not blank, not only a comment, and
not part of a docstring (a string that is a statement of its own).

    python scripts/code_lines.py drivers/sync.py drivers/asyncio.py drivers/trio.py
    python scripts/code_lines.py drivers          # every .py file under it, and the total
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENDMARKER,
    tokenize.ENCODING,
}


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers covered by string statements (docstrings and the like)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            assert node.end_lineno is not None
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def code_lines(source: str) -> int:
    """How many lines of ``source`` hold code."""
    skipped = docstring_lines(ast.parse(source))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in _NOT_CODE:
            continue
        for line in range(token.start[0], token.end[0] + 1):
            if line not in skipped:
                lines.add(line)
    return len(lines)


def main(arguments: list[str]) -> int:
    files: list[Path] = []
    for argument in arguments or ["drivers"]:
        path = Path(argument)
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    total = 0
    for file in files:
        count = code_lines(file.read_text(encoding="utf-8"))
        total += count
        print(f"{count:6d}  {file}")
    if len(files) > 1:
        print(f"{total:6d}  total")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
