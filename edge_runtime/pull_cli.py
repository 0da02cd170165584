"""``uniql edge pull``: download an artifact at one pruning rate from a registry."""

from __future__ import annotations

import json
from pathlib import Path

import click

from uniql.errors import UniqlError


@click.command(name="pull")
@click.argument("reference")
@click.option("--rate", type=click.FloatRange(0.0, 1.0, max_open=True), required=True,
              help="Pruning rate to pull the bands for (one of the artifact's rates, e.g. 0.25).")
@click.option("--dest", "dest_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Artifact directory on the device; blobs of other rates already there are kept.")
@click.option("--token", envvar="UNIQL_TOKEN", default=None, help="API token with the pull scope [env: UNIQL_TOKEN].")
@click.option("--retries", default=3, show_default=True, type=click.IntRange(0, 100),
              help="Retries per blob after network errors; each resumes where the last stopped.")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(min=1.0),
              help="Network timeout per request, in seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pull_command(reference: str, rate: float, dest_dir: Path, token: str | None, retries: int, timeout: float,
                 as_json: bool) -> None:
    """Pull REFERENCE (HOST/NAMESPACE/MODEL:TAG) at one pruning rate into an artifact directory."""
    from edge_runtime.pull import pull

    try:
        result = pull(reference, rate, dest_dir, token=token, retries=retries, timeout=timeout)
    except UniqlError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps({
            "reference": result.reference, "manifest_digest": result.manifest_digest, "rate": result.rate,
            "bands": result.bands, "dest_dir": str(result.dest_dir), "bytes_downloaded": result.bytes_downloaded,
            "blobs_downloaded": result.blobs_downloaded, "blobs_reused": result.blobs_reused,
        }))
        return
    click.echo(f"pulled {result.reference} at rate {result.rate:g} into {result.dest_dir}: "
               f"bands {result.bands}, {len(result.blobs_downloaded)} blobs downloaded "
               f"({result.bytes_downloaded / 1e6:.1f} MB), {len(result.blobs_reused)} already present")
