"""The embedded default: API, worker and registry on one SQLite database file."""

from __future__ import annotations

import pytest

from edge_runtime.pull import pull
from services.db.migrate import upgrade_database
from services.settings import Settings
from tests.services.fixtures import LiveServer, free_port
from tests.workers.harness import run_counts, wait_for_state
from workers.tasks import STAGE_NAMES

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path):
    """Override of the PostgreSQL settings: a migrated SQLite file."""
    url = f"sqlite:///{tmp_path / 'service.db'}"
    upgrade_database(url)
    return Settings(home=tmp_path / "home", database_url=url, broker_url=f"redis://127.0.0.1:{free_port()}/0",
                    gc_grace_seconds=0)


def test_job_and_pull_on_sqlite(submit_job, start_worker, session_factory, control_dir, fake_api, tmp_path):
    worker = start_worker()
    job_id = submit_job()
    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 60, worker)
    assert job.state == "succeeded", job.error
    counts = run_counts(control_dir)
    assert all(counts[f"finish {stage}"] == 1 for stage in STAGE_NAMES)

    with LiveServer(fake_api.app) as server:
        result = pull(f"127.0.0.1:{server.port}/acme/tiny:v1", 0.2, tmp_path / "device", token=submit_job.token)
    assert result.bands == [0, 1]
