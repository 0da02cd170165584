"""Plain-text tables of an artifact's per-rate results."""

from __future__ import annotations

from pathlib import Path

import click


def rate_rows(manifest: dict) -> list[dict]:
    rows = []
    for entry in manifest["rate_table"]:
        perplexity = entry.get("eval", {}).get("perplexity", {})
        rows.append({
            "rate": entry["rate"], "bytes": entry["bytes"],
            "params_rate": entry["realized_rate"]["params"],
            "wiki": perplexity.get("wiki"), "books": perplexity.get("books"),
            "tasks": {name: value.get("accuracy") for name, value in entry.get("eval", {}).get("tasks", {}).items()},
        })
    return rows


def format_number(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_rate_table(artifact_dir: Path) -> None:
    from uniql.artifact import Artifact

    manifest = Artifact.open(artifact_dir).manifest
    rows = rate_rows(manifest)
    task_names = sorted({name for row in rows for name in row["tasks"]})
    header = f"{'rate':>6} {'MB':>8} {'params cut':>10} {'wiki ppl':>9} {'books ppl':>9}" + "".join(f" {n:>10}" for n in task_names)
    click.echo(header, err=True)
    for row in rows:
        line = (f"{row['rate']:>6.2f} {row['bytes'] / 1e6:>8.2f} {row['params_rate']:>10.3f} "
                f"{format_number(row['wiki']):>9} {format_number(row['books']):>9}")
        line += "".join(f" {format_number(row['tasks'].get(n), 3):>10}" for n in task_names)
        click.echo(line, err=True)
