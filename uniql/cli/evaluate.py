"""``uniql eval``: perplexity and task accuracy of an artifact at each rate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from uniql.cli.compress import parse_rates
from uniql.errors import UniqlError

TASKS = ("hellaswag", "piqa", "arc_easy", "winogrande")


@click.command(context_settings={"show_default": True})
@click.argument("artifact_dir", type=click.Path(path_type=Path))
@click.option("--rates", help="Comma-separated rates to measure. [default: every rate of the artifact]")
@click.option("--windows", type=int, default=8, help="Evaluation windows per text.")
@click.option("--length", type=int, default=512, help="Tokens per evaluation window.")
@click.option("--tasks", "with_tasks", is_flag=True, help="Also measure zero-shot accuracy on HellaSwag, PIQA, ARC-Easy and WinoGrande.")
@click.option("--task-limit", type=int, default=200, help="Questions per task (a fixed, seeded subset).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def evaluate(artifact_dir: Path, rates: str | None, windows: int, length: int, with_tasks: bool, task_limit: int,
             as_json: bool) -> None:
    """Measure ARTIFACT_DIR at each rate (wiki and books perplexity, bytes) and store the results in its manifest."""
    from uniql.artifact import Artifact
    from uniql.cli.tables import print_rate_table, rate_rows
    from uniql.pipeline.evaluate_stage import evaluate_artifact

    if windows <= 0 or length < 16:
        raise click.BadParameter(f"--windows must be positive and --length at least 16 (got {windows}, {length})")
    try:
        artifact = Artifact.open(artifact_dir)
        requested = parse_rates(rates)
        for rate in requested or []:
            artifact.rate_entry(rate)
        evaluate_artifact(artifact_dir, requested, windows, length, list(TASKS) if with_tasks else None, task_limit)
    except UniqlError as error:
        raise click.ClickException(str(error)) from error

    manifest = Artifact.open(artifact_dir).manifest
    if as_json:
        selected = set(requested) if requested else None
        rows = []
        for entry, row in zip(manifest["rate_table"], rate_rows(manifest)):
            if selected is not None and entry["rate"] not in selected:
                continue
            rows.append({"rate": entry["rate"], "bytes": entry["bytes"], "weight_bytes": entry["weight_bytes"],
                         "realized_rate": entry["realized_rate"],
                         "perplexity": {"wiki": row["wiki"], "books": row["books"]},
                         "tasks": entry["eval"].get("tasks", {})})
        click.echo(json.dumps({"artifact": str(artifact_dir), "rates": rows}, indent=1))
    else:
        print_rate_table(artifact_dir)
