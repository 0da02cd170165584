"""HTTP API of the daemon in process: OpenAI shapes, bad input and a corrupted band."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from edge_runtime.config import EdgeSettings
from edge_runtime.daemon import EdgeDaemon
from edge_runtime.server import create_app


@pytest.fixture
def served(tiny_artifacts, tmp_path):
    import shutil

    artifact_dir = tmp_path / "artifact"
    shutil.copytree(tiny_artifacts("qwen2"), artifact_dir)
    daemon = EdgeDaemon(EdgeSettings(artifact=str(artifact_dir), model_name="tiny", start_rate=0.35))
    with TestClient(create_app(daemon)) as client:
        yield daemon, client


def test_completion_returns_text(served):
    _, client = served
    response = client.post("/v1/completions", json={"model": "tiny", "prompt": ["The quick", "An edge"], "max_tokens": 5})

    assert response.status_code == 200
    body = response.json()
    assert len(body["choices"]) == 2
    assert body["usage"]["completion_tokens"] == 10


def test_chat_stream_ends_with_done(served):
    _, client = served
    response = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4, "stream": True})

    assert response.status_code == 200
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert '"finish_reason": "length"' in events[-2]


def test_stop_string_cuts_text(served):
    _, client = served
    free = client.post("/v1/completions", json={"prompt": "The quick", "max_tokens": 12}).json()["choices"][0]["text"]
    stop = free[3:5]
    cut = client.post("/v1/completions", json={"prompt": "The quick", "max_tokens": 12, "stop": stop}).json()

    assert cut["choices"][0]["text"] == free[: free.find(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("body,status,fragment", [
    ({"model": "other", "prompt": "a"}, 404, "model 'other' not found"),
    ({"prompt": "The quick brown fox " * 200}, 400, "exceeds the context"),
    ({"prompt": "a", "temperature": 5}, 400, "temperature must be between 0 and 2"),
    ({"prompt": "a", "top_p": 0}, 400, "top_p must be in (0, 1]"),
    ({"prompt": "a", "max_tokens": 0}, 400, "max_tokens must be a positive integer"),
    ({"prompt": 3}, 400, "prompt must be a non-empty string"),
])
def test_bad_input_is_rejected(served, body, status, fragment):
    _, client = served
    response = client.post("/v1/completions", json=body)

    assert response.status_code == status
    assert fragment in response.json()["error"]["message"]


def test_models_status_metrics(served):
    daemon, client = served

    assert client.get("/v1/models").json()["data"][0]["id"] == "tiny"
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/status").json()["rate"] == 0.35
    assert "uniql_edge_rate 0.35" in client.get("/metrics").text


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_bad_band_keeps_old_engine_serving(served, damage):
    daemon, client = served
    band = daemon.loader.artifact.bands_for_rate(0.0)[-1]
    blob = daemon.loader.artifact.root / "blobs" / "sha256" / band["digest"].split(":")[1]
    if damage == "corrupt":
        data = bytearray(blob.read_bytes())
        data[-1] ^= 0xFF
        blob.write_bytes(bytes(data))
    else:
        blob.unlink()

    record = daemon.manager.switch(0.0, "test", build_beside=False)

    assert record.error is not None
    assert band["digest"].split(":")[1][:12] in record.error or "digest" in record.error or "missing" in record.error
    assert daemon.manager.rate == 0.35
    assert client.post("/v1/completions", json={"prompt": "a", "max_tokens": 2}).status_code == 200
