"""``uniql serve``: run the API with uvicorn, after migrating the database."""

from __future__ import annotations

import logging
from pathlib import Path

import click

logger = logging.getLogger(__name__)


@click.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port to listen on.")
@click.option("--database-url", default=None, help="SQLAlchemy database URL [default: UNIQL_DATABASE_URL, "
              "else sqlite:///$UNIQL_HOME/service.db].")
@click.option("--broker-url", default=None, help="Celery broker URL [default: UNIQL_BROKER_URL or redis://127.0.0.1:6379/0].")
@click.option("--store-path", type=click.Path(path_type=Path), default=None,
              help="Root of the local artifact store [default: $UNIQL_HOME/store].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Uvicorn worker processes.")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Upgrade the database schema to the latest migration before serving.")
def serve(
    host: str, port: int, database_url: str | None, broker_url: str | None, store_path: Path | None,
    workers: int, migrate: bool,
) -> None:
    """Run the cloud API (REST, registry, OpenAPI docs at /docs)."""
    import os

    import uvicorn

    from services.db.migrate import upgrade_database
    from services.settings import Settings

    # Options become environment variables so every uvicorn worker process builds the same Settings.
    for name, value in (("UNIQL_DATABASE_URL", database_url), ("UNIQL_BROKER_URL", broker_url),
                        ("UNIQL_STORE_PATH", store_path)):
        if value is not None:
            os.environ[name] = str(value)
    settings = Settings()
    if migrate:
        upgrade_database(settings.database_url)
    logger.info("serving the API on http://%s:%d (docs at /docs)", host, port)
    uvicorn.run("services.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")
