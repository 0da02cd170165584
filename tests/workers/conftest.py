from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services import pipeline_contract
from services.app import create_app
from tests.services.archives import model_archive
from tests.services.fixtures import (  # noqa: F401
    auth,
    database_url,
    make_token,
    postgres_url,
    redis_url,
    session_factory,
    settings,
)
from tests.workers.harness import WorkerProcess, worker_env


@pytest.fixture
def control_dir(tmp_path):
    path = tmp_path / "control"
    path.mkdir()
    return path


@pytest.fixture
def start_worker(settings, control_dir, tmp_path):
    """Start worker processes: ``start_worker(fake_pipeline=True, **UNIQL_settings)``; all stop at teardown."""
    started: list[WorkerProcess] = []

    def start(fake_pipeline: bool = True, fast_restore: bool = False, **overrides) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        env = worker_env(settings, control_dir, **overrides)
        worker = WorkerProcess(env, log_path, fake_pipeline, fast_restore).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        print(f"--- {worker.log_path.name}\n{worker.log_tail(40)}")


@pytest.fixture
def fake_api(settings, redis_url, monkeypatch):
    """An in-process API on the test broker whose config checks use the fake pipeline."""
    monkeypatch.setattr(pipeline_contract, "PIPELINE_MODULE", "tests.workers.fake_pipeline")
    settings.broker_url = redis_url
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def submit_job(fake_api, make_token):
    """Upload a model archive and create a job; return its id."""
    token = make_token(["submit"])

    def submit(model: str = "tiny", tag: str = "v1") -> str:
        source = fake_api.post("/v1/source-models?name=tiny", content=model_archive(), headers=auth(token))
        assert source.status_code in (200, 201), source.text
        body = {"source_model_id": source.json()["id"], "model": model, "tag": tag, "config": {}}
        response = fake_api.post("/v1/jobs", json=body, headers=auth(token))
        assert response.status_code == 201, response.text
        return response.json()["id"]

    submit.token = token
    return submit
