"""A running service for dashboard and CLI tests: API on a loopback port, tokens, and optionally a worker.

The database is PostgreSQL (``UNIQL_DASHBOARD_TEST_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/uniql_dashboard_test``), emptied once per test session, so
these tests never touch the database the service tests truncate. Each stack has its own Celery
queue on Redis database 12, so a worker started for one stack never takes another stack's jobs.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select, text

from services.app import create_app
from services.db.migrate import upgrade_database
from services.db.models import Namespace
from services.db.session import create_db_engine, create_session_factory
from services.registry import publish_artifact
from services.settings import Settings
from services.store import create_store
from services.tokens import create_token
from tests.services.artifact_factory import make_random_artifact
from tests.services.fixtures import (
    TABLES,
    LiveServer,
    ensure_postgres_database,
    free_port,
    wait_for,
)
from uniql.artifact.writer import write_manifest

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/uniql_dashboard_test"
REDIS_URL = os.environ.get("UNIQL_DASHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
NAMESPACE = "acme"
WORKER_START_SECONDS = 120


@functools.cache
def prepare_database() -> str:
    """Create, migrate and empty the dashboard test database once per process; return its URL."""
    url = ensure_postgres_database(os.environ.get("UNIQL_DASHBOARD_TEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    upgrade_database(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@dataclass
class ServiceStack:
    """A live API with one token per role: global admin, submit and pull in ``NAMESPACE``."""

    url: str
    settings: Settings
    admin_token: str
    submit_token: str
    pull_token: str
    namespace: str = NAMESPACE

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.submit_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def _make_tokens(settings: Settings, label: str) -> tuple[str, str, str]:
    engine = create_db_engine(settings.database_url)
    with create_session_factory(engine)() as session:
        _, admin = create_token(session, f"{label}-admin", ["admin"], None)
        _, submit = create_token(session, f"{label}-submit", ["submit"], NAMESPACE)
        _, pull = create_token(session, f"{label}-pull", ["pull"], NAMESPACE)
        session.commit()
    engine.dispose()
    return admin, submit, pull


@contextmanager
def run_stack(home: Path, database_url: str, with_broker: bool, label: str) -> Iterator[ServiceStack]:
    """Serve the API; without a broker, jobs stay queued (the broker URL points at a closed port)."""
    broker_url = REDIS_URL if with_broker else f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings(home=home, database_url=database_url, broker_url=broker_url,
                        queue_name=f"uniql-test-{label}-{uuid.uuid4().hex[:8]}", gc_grace_seconds=0)
    admin, submit, pull = _make_tokens(settings, label)
    with LiveServer(create_app(settings)) as server:
        yield ServiceStack(server.url, settings, admin, submit, pull)


@contextmanager
def run_worker(stack: ServiceStack, log_path: Path) -> Iterator[subprocess.Popen]:
    """Start ``uniql worker`` on the stack's queue in a child process; stop it (SIGTERM) at exit."""
    settings = stack.settings
    env = {**os.environ, "UNIQL_HOME": str(settings.home), "UNIQL_DATABASE_URL": settings.database_url,
           "UNIQL_BROKER_URL": settings.broker_url, "UNIQL_QUEUE_NAME": settings.queue_name,
           "UNIQL_STORE_PATH": str(settings.store_path), "UNIQL_CACHE_PATH": str(settings.cache_path)}
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "uniql.cli.main", "worker", "--concurrency", "1"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"ready" in log_path.read_bytes() or process.poll() is not None, WORKER_START_SECONDS,
                 f"the worker did not start; see {log_path}", interval=0.5)
        assert process.poll() is None, f"the worker exited with {process.returncode}: {log_path.read_text()[-2000:]}"
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def model_archive(model_dir: Path) -> bytes:
    """Return a gzipped tar of the files in ``model_dir``, as ``uniql jobs submit`` packs it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)
    return buffer.getvalue()


def upload_model(stack: ServiceStack, model_dir: Path, name: str = "tiny-llama") -> str:
    """Upload ``model_dir`` as a source model of ``NAMESPACE``; return its id."""
    with stack.client() as client:
        response = client.post("/v1/source-models", params={"name": name, "namespace": NAMESPACE},
                               content=model_archive(model_dir), headers={"Content-Type": "application/gzip"})
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


# Small pipeline settings: a tiny model compresses in about a minute on two CPU cores (measured with 3 rates).
FAST_PIPELINE_CONFIG = {"rates": [0.0, 0.15, 0.35], "calibration_samples": 4, "calibration_length": 64,
                        "finetune": {"enabled": False},
                        "eval_windows": 2, "eval_length": 64, "batch_size": 2}


def submit_job(stack: ServiceStack, source_model_id: str, model: str, tag: str = "latest") -> dict:
    body = {"source_model_id": source_model_id, "model": model, "tag": tag, "namespace": NAMESPACE,
            "config": FAST_PIPELINE_CONFIG}
    with stack.client() as client:
        response = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


def publish_evaluated_artifact(stack: ServiceStack, tmp_path: Path, model: str) -> dict:
    """Publish a random artifact whose rate table carries perplexity and task accuracy."""
    manifest = make_random_artifact(tmp_path / model)
    for index, entry in enumerate(manifest["rate_table"]):
        entry["eval"] = {"perplexity": {"wiki": 20.0 + 3 * index, "books": 40.0 + 5 * index},
                         "tasks": {"piqa": 0.70 - 0.02 * index}}
    write_manifest(tmp_path / model, manifest)
    engine = create_db_engine(stack.settings.database_url)
    with create_session_factory(engine)() as session:
        namespace_id = session.scalar(select(Namespace.id).where(Namespace.name == stack.namespace))
        publish_artifact(session, create_store(stack.settings), tmp_path / model, namespace_id, model, "v1", None)
        session.commit()
    engine.dispose()
    return manifest
