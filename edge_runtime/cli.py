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
def serve(artifact, config_file, host, port, rate, reserve_mib, context_tokens, threads) -> None:
    """Serve an artifact over an OpenAI-compatible HTTP API, switching rate with free memory."""
    import uvicorn

    from edge_runtime.config import load_settings
    from edge_runtime.daemon import EdgeDaemon
    from edge_runtime.server import create_app

    flags = {"artifact": str(artifact) if artifact else None, "host": host, "port": port, "rate": rate,
             "reserve_mib": reserve_mib, "context_tokens": context_tokens, "threads": threads}
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
