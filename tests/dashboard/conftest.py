"""Fixtures of the dashboard tests: live service stacks (with and without a worker) and a tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.stack import (
    ServiceStack,
    prepare_database,
    run_stack,
    run_worker,
    upload_model,
)


@pytest.fixture(scope="session")
def dashboard_database_url() -> str:
    return prepare_database()


@pytest.fixture(scope="session")
def idle_stack(tmp_path_factory, dashboard_database_url: str) -> Iterator[ServiceStack]:
    """A service whose jobs stay queued: no broker, no worker."""
    with run_stack(tmp_path_factory.mktemp("idle-home"), dashboard_database_url, with_broker=False,
                   label="idle") as stack:
        yield stack


@pytest.fixture(scope="session")
def working_stack(tmp_path_factory, dashboard_database_url: str) -> Iterator[ServiceStack]:
    """A service with Redis and one real Celery worker process running compression jobs."""
    home = tmp_path_factory.mktemp("working-home")
    with run_stack(home, dashboard_database_url, with_broker=True, label="working") as stack:
        with run_worker(stack, home / "worker.log"):
            yield stack


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tests.helpers.tiny_models import make_tiny_model_dir

    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model") / "llama", "llama", False)


@pytest.fixture(scope="session")
def idle_source_model(idle_stack: ServiceStack, tiny_model_dir: Path) -> str:
    return upload_model(idle_stack, tiny_model_dir)
