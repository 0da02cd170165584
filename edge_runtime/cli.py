"""``uniql edge``: serve an artifact with the edge daemon."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from uniql.errors import UniqlError

logger = logging.getLogger(__name__)


@click.group()
def edge() -> None:
    """Edge daemon: serve, pull and inspect artifacts on a device."""


@edge.command()
@click.option("--artifact", type=click.Path(file_okay=False, path_type=Path), help="Artifact directory to serve.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file of settings (keys as in EdgeSettings); env UNIQL_EDGE_* and flags override it.")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="TCP port (default 8088).")
@click.option("--rate", type=float, default=None, help="Pin this pruning rate and disable the memory policy.")
@click.option("--reserve-mib", type=float, default=None, help="Memory to keep free, in MiB (default 256).")
@click.option("--context-tokens", type=int, default=None, help="Context the KV cache is sized for (default 2048).")
@click.option("--threads", type=int, default=None, help="onnxruntime intra-op threads (default 0: all cores).")
@click.option("--accuracy-level", type=click.Choice(["0", "4"]), default=None,
              help="4-bit matmul compute: 0 float32 activations, exact (default); 4 int8 activations, faster decode.")
def serve(artifact, config_file, host, port, rate, reserve_mib, context_tokens, threads, accuracy_level) -> None:
    """Serve an artifact over an OpenAI-compatible HTTP API, switching rate with free memory."""
    import uvicorn

    from edge_runtime.config import load_settings
    from edge_runtime.daemon import EdgeDaemon
    from edge_runtime.server import create_app

    flags = {"artifact": str(artifact) if artifact else None, "host": host, "port": port, "rate": rate,
             "reserve_mib": reserve_mib, "context_tokens": context_tokens, "threads": threads,
             "accuracy_level": int(accuracy_level) if accuracy_level is not None else None}
    try:
        settings = load_settings(config_file, flags)
        daemon = EdgeDaemon(settings)
    except UniqlError as error:
        raise click.ClickException(str(error)) from error
    if settings.rate is None:
        daemon.start_monitor()
    logger.info("serving %s at rate %g on %s:%d", daemon.model_name, daemon.manager.rate, settings.host, settings.port)
    try:
        uvicorn.run(create_app(daemon), host=settings.host, port=settings.port, log_level="warning")
    finally:
        daemon.stop()


def _mount_pull() -> None:
    from edge_runtime.pull_cli import pull_command

    edge.add_command(pull_command, name="pull")


_mount_pull()


@edge.command()
@click.option("--artifact", type=click.Path(file_okay=False, path_type=Path), help="Local artifact directory to inspect.")
@click.option("--url", default=None, help="Address of a running daemon, e.g. http://127.0.0.1:8088; prints its /status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(artifact: Path | None, url: str | None, as_json: bool) -> None:
    """Show which rates a local artifact can serve with the bands present, or a running daemon's status."""
    import json

    import httpx

    if url:
        try:
            response = httpx.get(url.rstrip("/") + "/status", timeout=10)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise click.ClickException(f"could not read the status of {url}: {error}; is the daemon running?") from error
        click.echo(json.dumps(response.json(), indent=1))
        return
    if artifact is None:
        raise click.UsageError("give --artifact DIR or --url ADDRESS")

    from uniql.artifact import Artifact

    try:
        opened = Artifact.open(artifact)
    except UniqlError as error:
        raise click.ClickException(str(error)) from error
    rows = [{"rate": rate, "bytes": opened.rate_entry(rate)["bytes"], "ready": not opened.missing_blobs(rate)}
            for rate in opened.rates]
    if as_json:
        click.echo(json.dumps({"artifact": str(artifact), "rates": rows}, indent=1))
        return
    for row in rows:
        state = "ready" if row["ready"] else "bands missing (uniql edge pull)"
        click.echo(f"rate {row['rate']:.2f}  {row['bytes'] / 1e6:8.1f} MB  {state}")
