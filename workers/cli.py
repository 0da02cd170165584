"""``uniql worker``: run a Celery worker that executes compression jobs."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command(name="worker")
@click.option("--database-url", default=None, help="SQLAlchemy database URL [default: UNIQL_DATABASE_URL, "
              "else sqlite:///$UNIQL_HOME/service.db].")
@click.option("--broker-url", default=None, help="Celery broker URL [default: UNIQL_BROKER_URL or redis://127.0.0.1:6379/0].")
@click.option("--store-path", type=click.Path(path_type=Path), default=None,
              help="Root of the local artifact store [default: $UNIQL_HOME/store].")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Stages run at once; each needs the memory of a whole model.")
@click.option("--hostname", default=None, help="Celery node name [default: uniql@<host name>].")
@click.option("--max-tasks-per-child", default=0, show_default=True, type=click.IntRange(0),
              help="Replace a pool process after this many stages, to return its memory (0: never).")
@click.option("--loglevel", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False), help="Worker log level.")
def worker(
    database_url: str | None, broker_url: str | None, store_path: Path | None, concurrency: int,
    hostname: str | None, max_tasks_per_child: int, loglevel: str,
) -> None:
    """Run a Celery worker for compression jobs (uses a CUDA GPU when one is present)."""
    # Options become environment variables, so the pool processes build the same Settings.
    for name, value in (("UNIQL_DATABASE_URL", database_url), ("UNIQL_BROKER_URL", broker_url),
                        ("UNIQL_STORE_PATH", store_path)):
        if value is not None:
            os.environ[name] = str(value)

    from workers import signals  # noqa: F401  (connects the life-cycle hooks)
    from workers.celery_app import celery_app

    argv = ["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}",
            f"--queues={celery_app.conf.task_default_queue}", "--without-gossip", "--without-mingle"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    if max_tasks_per_child:
        argv.append(f"--max-tasks-per-child={max_tasks_per_child}")
    celery_app.worker_main(argv)
