#!/usr/bin/env python3
"""Print the table of every option (docs/options.md embeds it; a test checks
that the page holds exactly what this prints)."""

from __future__ import annotations

from sansws.options import (
    CLIENT_CONNECTION,
    CONNECT,
    DEFAULT_USER_AGENT,
    OPTIONS,
    SERVE,
    SERVER_CONNECTION,
)

_COLUMNS = (
    (CONNECT, "connect()"),
    (SERVE, "serve()"),
    (CLIENT_CONNECTION, "ClientConnection"),
    (SERVER_CONNECTION, "ServerConnection"),
)


def _default(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value == 2**20:
        return "`2**20` (1 MiB)"
    if value == DEFAULT_USER_AGENT:
        return '`"sansws/<version>"`'
    return f"`{value!r}`"


def table() -> str:
    """The options as a Markdown table."""
    head = "| option | default | " + " | ".join(title for _, title in _COLUMNS) + " | meaning |"
    rule = "| --- | --- | " + " | ".join("---" for _ in _COLUMNS) + " | --- |"
    rows = [head, rule]
    for option in OPTIONS.values():
        marks = " | ".join("✓" if scope in option.scopes else "" for scope, _ in _COLUMNS)
        rows.append(f"| `{option.name}` | {_default(option.default)} | {marks} | {option.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(table(), end="")
