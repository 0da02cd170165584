"""End to end over HTTP: upload a tiny random Llama, a worker compresses it, the edge pulls two rates."""

from __future__ import annotations

import io
import tarfile

import httpx
import pytest

from edge_runtime.pull import pull
from services.app import create_app
from tests.services.fixtures import LiveServer, auth
from tests.workers.harness import wait_for_state
from uniql.artifact.reader import Artifact

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT_LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Compression keeps the most important channels of every layer.",
    "An edge device chooses the pruning rate that fits in its free memory.",
    "Rotary position embeddings rotate pairs of dimensions by position.",
] * 60


def tar_directory(path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(path, arcname=".")
    return buffer.getvalue()


@pytest.fixture
def api(settings, redis_url):
    settings.broker_url = redis_url
    settings.allow_text_paths = True
    with LiveServer(create_app(settings)) as server:
        yield server


def test_upload_compress_and_pull_two_rates(api, settings, make_token, start_worker, session_factory, tmp_path):
    from tests.helpers.tiny_models import make_tiny_model_dir

    model_dir = make_tiny_model_dir(tmp_path / "model", "llama")
    text = tmp_path / "calibration.txt"
    text.write_text("\n".join(TEXT_LINES))
    token = make_token(["submit"])
    worker = start_worker(fake_pipeline=False, stage_lease_seconds=30)

    with httpx.Client(base_url=api.url, headers=auth(token), timeout=60) as client:
        source = client.post("/v1/source-models", params={"name": "tiny-llama"}, content=tar_directory(model_dir),
                             headers={"Content-Type": "application/gzip"})
        assert source.status_code == 201, source.text
        config = {"rates": [0.0, 0.15, 0.35], "calibration_samples": 8, "calibration_length": 64,
                  "finetune": {"enabled": False},
                  "group_size": 32, "head_dim_step": 16, "eval_windows": 2, "eval_length": 32,
                  "calibration_text": str(text), "eval_texts": {"wiki": str(text)}, "device": "auto"}
        body = {"source_model_id": source.json()["id"], "model": "tiny-llama", "tag": "v1", "config": config}
        created = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "e2e-1"})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        job = wait_for_state(session_factory, job_id, {"succeeded", "failed", "cancelled"}, 420, worker)
        assert job.state == "succeeded", job.error
        events = client.get(f"/v1/jobs/{job_id}/events", params={"limit": 1000}).json()["items"]
        assert any(event["kind"] == "progress" for event in events)
        assert [stage["state"] for stage in client.get(f"/v1/jobs/{job_id}").json()["stages"]] == ["done"] * 7

    reference = f"127.0.0.1:{api.port}/acme/tiny-llama:v1"
    dest = tmp_path / "device"
    high = pull(reference, 0.35, dest, token=token)
    manifest = Artifact.open(dest).manifest
    entry = {row["rate"]: row for row in manifest["rate_table"]}
    manifest_size = (dest / "manifest.json").stat().st_size
    assert high.bytes_downloaded == entry[0.35]["bytes"] + manifest_size
    assert Artifact.open(dest).load_tensors(0.35)

    low = pull(reference, 0.0, dest, token=token)
    assert low.bytes_downloaded == entry[0.0]["bytes"] - entry[0.35]["bytes"] + manifest_size
    artifact = Artifact.open(dest)
    assert artifact.missing_blobs(0.0) == []
    assert artifact.load_tensors(0.0)
    assert "perplexity" in entry[0.0]["eval"]
