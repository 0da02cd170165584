"""Printing for the admin commands: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows under headers, each column as wide as its longest cell."""
    cells = [[str(header) for header in headers]] + [["-" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    for row in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def short_time(value: str | None) -> str:
    """Shorten an ISO 8601 timestamp to ``YYYY-MM-DD HH:MM:SS``."""
    if not value:
        return "-"
    return value.replace("T", " ")[:19]


def human_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value} B"


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
