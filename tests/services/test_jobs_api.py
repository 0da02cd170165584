"""Jobs over HTTP: validation before queueing, idempotency keys, filters, events, cancel and retry."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.app import create_app
from services.db.models import Job
from services.jobs import add_event
from tests.services.archives import model_archive
from tests.services.fixtures import auth

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings, redis_url):
    settings.broker_url = redis_url
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def token(make_token):
    return make_token(["submit"])


@pytest.fixture
def source_id(client, token):
    response = client.post("/v1/source-models?name=tiny", content=model_archive(), headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def job_body(source_id, **overrides):
    body = {"source_model_id": source_id, "model": "tiny-llama", "tag": "v1",
            "config": {"rates": [0.0, 0.15, 0.35], "calibration_samples": 8}}
    body.update(overrides)
    return body


def count_jobs(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(Job))


def queued_messages(redis_url) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return client.llen("uniql")
    finally:
        client.close()


def test_create_job_queues_it(client, token, source_id, redis_url):
    response = client.post("/v1/jobs", json=job_body(source_id), headers=auth(token))
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "queued"
    assert job["reference"] == "acme/tiny-llama:v1"
    assert job["stages"][0]["name"] == "calibrate"
    assert all(stage["state"] == "pending" for stage in job["stages"])
    assert job["config"]["calibration_samples"] == 8
    assert queued_messages(redis_url) == 1


def test_idempotency_key_replay_returns_same_job(client, token, source_id, session_factory, redis_url):
    headers = {**auth(token), "Idempotency-Key": "build-42"}
    first = client.post("/v1/jobs", json=job_body(source_id), headers=headers)
    second = client.post("/v1/jobs", json=job_body(source_id), headers=headers)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert count_jobs(session_factory) == 1
    assert queued_messages(redis_url) == 1


def test_idempotency_key_with_other_body_is_422(client, token, source_id, session_factory):
    headers = {**auth(token), "Idempotency-Key": "build-43"}
    client.post("/v1/jobs", json=job_body(source_id), headers=headers)
    response = client.post("/v1/jobs", json=job_body(source_id, tag="v2"), headers=headers)
    assert response.status_code == 422
    assert "already used for job" in response.json()["detail"]
    assert count_jobs(session_factory) == 1


@pytest.mark.parametrize(("config", "message"), [
    ({"no_such_key": 1}, "unknown config keys"),
    ({"bits": 3}, "bits=3"),
    ({"head_dim_step": 24}, "head_dim_step=24"),
    ({"calibration_text": "/etc/passwd"}, "names a file"),
    ({"eval_texts": {"wiki": "../secret.txt"}}, "names a file"),
])
def test_invalid_config_is_422_and_not_queued(client, token, source_id, session_factory, redis_url, config, message):
    response = client.post("/v1/jobs", json=job_body(source_id, config=config), headers=auth(token))
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert count_jobs(session_factory) == 0
    assert queued_messages(redis_url) == 0


def test_unknown_source_model_is_404(client, token):
    response = client.post("/v1/jobs", json=job_body("0" * 32), headers=auth(token))
    assert response.status_code == 404
    assert "upload it first" in response.json()["detail"]


def test_list_filters_and_pagination(client, token, source_id, make_token):
    for index in range(5):
        client.post("/v1/jobs", json=job_body(source_id, model="a" if index < 3 else "b"), headers=auth(token))
    page = client.get("/v1/jobs?limit=2&offset=0", headers=auth(token)).json()
    assert page["total"] == 5
    assert len(page["items"]) == 2
    rest = client.get("/v1/jobs?limit=2&offset=4", headers=auth(token)).json()
    assert len(rest["items"]) == 1
    assert client.get("/v1/jobs?model=a", headers=auth(token)).json()["total"] == 3
    assert client.get("/v1/jobs?state=running", headers=auth(token)).json()["total"] == 0
    assert client.get("/v1/jobs?namespace=acme&state=queued", headers=auth(token)).json()["total"] == 5
    other = make_token(["submit"], "other")
    assert client.get("/v1/jobs", headers=auth(other)).json()["total"] == 0
    assert client.get("/v1/jobs?state=exploded", headers=auth(token)).status_code == 422


def test_events_are_paged_with_after(client, token, source_id, session_factory):
    job_id = client.post("/v1/jobs", json=job_body(source_id), headers=auth(token)).json()["id"]
    with session_factory() as session:
        for index in range(3):
            add_event(session, job_id, "progress", f"step {index}", stage="calibrate", fraction=index / 3)
        session.commit()
    first = client.get(f"/v1/jobs/{job_id}/events?limit=2", headers=auth(token)).json()
    assert [event["kind"] for event in first["items"]] == ["state", "progress"]
    rest = client.get(f"/v1/jobs/{job_id}/events?after={first['next_after']}", headers=auth(token)).json()
    assert [event["message"] for event in rest["items"]] == ["step 1", "step 2"]


def test_cancel_queued_job_then_retry(client, token, source_id, redis_url):
    job_id = client.post("/v1/jobs", json=job_body(source_id), headers=auth(token)).json()["id"]
    cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(token))
    assert cancelled.status_code == 202
    assert cancelled.json()["state"] == "cancelled"
    again = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(token))
    assert again.status_code == 409
    assert "only queued or running jobs" in again.json()["detail"]

    retried = client.post(f"/v1/jobs/{job_id}/retry", headers=auth(token))
    assert retried.status_code == 202
    assert retried.json()["state"] == "queued"
    assert retried.json()["retry_count"] == 1
    assert queued_messages(redis_url) == 2
    assert client.post(f"/v1/jobs/{job_id}/retry", headers=auth(token)).status_code == 409


def test_job_created_while_broker_down_stays_queued(settings, token, session_factory):
    with TestClient(create_app(settings)) as client:
        source = client.post("/v1/source-models?name=tiny", content=model_archive(), headers=auth(token)).json()
        response = client.post("/v1/jobs", json=job_body(source["id"]), headers=auth(token))
    assert response.status_code == 201
    with session_factory() as session:
        job = session.get(Job, response.json()["id"])
        assert job.state == "queued"
        assert job.enqueued_at is None
