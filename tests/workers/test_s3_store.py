"""A job on the S3 store backend (moto's server): upload, checkpoints per stage, publish, pull."""

from __future__ import annotations

import pytest

from edge_runtime.pull import pull
from services.settings import Settings
from services.store import create_store
from tests.services.fixtures import LiveServer, free_port, moto_endpoint, s3_bucket  # noqa: F401
from tests.workers.harness import wait_for_state

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path, database_url, moto_endpoint, s3_bucket):  # noqa: F811
    """Override of the default settings: the artifact store is an S3 bucket."""
    return Settings(home=tmp_path / "home", database_url=database_url, broker_url=f"redis://127.0.0.1:{free_port()}/0",
                    store_backend="s3", s3_bucket=s3_bucket, s3_prefix="test", s3_endpoint_url=moto_endpoint,
                    gc_grace_seconds=0)


def test_job_on_s3_store(submit_job, start_worker, session_factory, fake_api, settings, tmp_path):
    worker = start_worker()
    job_id = submit_job()
    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 90, worker)
    assert job.state == "succeeded", job.error

    keys = {key for key, _ in create_store(settings).list_keys(f"jobs/{job_id}/work")}
    assert f"jobs/{job_id}/work/calibrate.done" in keys
    assert f"jobs/{job_id}/work/artifact/manifest.json" in keys
    assert not list(settings.local_store_path.glob("blobs/**/*"))

    with LiveServer(fake_api.app) as server:
        result = pull(f"127.0.0.1:{server.port}/acme/tiny:v1", 0.0, tmp_path / "device", token=submit_job.token)
    assert result.bands == [0, 1, 2, 3]
