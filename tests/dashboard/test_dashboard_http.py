"""Dashboard over HTTP: login cookie, redirects, scopes, CSRF, cancel and retry, artifact plots."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from services.dashboard.session import COOKIE_NAME, csrf_token_for
from tests.dashboard.stack import ServiceStack, publish_evaluated_artifact, submit_job

pytestmark = pytest.mark.integration


@contextmanager
def dashboard(stack: ServiceStack, token: str | None = None) -> Iterator[httpx.Client]:
    """Open a browser-like client, logged in with ``token`` when one is given."""
    with httpx.Client(base_url=stack.url, follow_redirects=False, timeout=30) as client:
        if token is not None:
            response = client.post("/dashboard/login", data={"token": token})
            assert response.status_code == 303, response.text
        yield client


def test_pages_redirect_to_login_without_cookie(idle_stack):
    with dashboard(idle_stack) as client:
        for path in ("/dashboard/jobs", "/dashboard/models", "/dashboard/devices"):
            response = client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/dashboard/login")


def test_login_rejects_invalid_token(idle_stack):
    with dashboard(idle_stack) as client:
        response = client.post("/dashboard/login", data={"token": "uq_not-a-real-token"})
    assert response.status_code == 401
    assert "invalid, expired or revoked" in response.text
    assert COOKIE_NAME not in response.cookies


def test_login_sets_httponly_strict_cookie(idle_stack):
    with dashboard(idle_stack) as client:
        response = client.post("/dashboard/login", data={"token": idle_stack.submit_token})
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/jobs"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/dashboard" in cookie


def test_pull_token_cannot_list_jobs(idle_stack):
    with dashboard(idle_stack) as client:
        response = client.post("/dashboard/login", data={"token": idle_stack.pull_token})
        assert response.headers["location"] == "/dashboard/models"
        jobs_page = client.get("/dashboard/jobs")
    assert jobs_page.status_code == 403
    assert "needs the &#39;submit&#39; scope" in jobs_page.text


def test_api_bearer_auth_still_required(idle_stack):
    with dashboard(idle_stack, idle_stack.submit_token) as client:
        response = client.get("/v1/jobs")
    assert response.status_code == 401


def test_revoked_token_cookie_sends_back_to_login(idle_stack):
    with idle_stack.client(idle_stack.admin_token) as api:
        created = api.post("/v1/tokens", json={"name": "short-lived", "scopes": ["submit"], "namespace": "acme"}).json()
    with dashboard(idle_stack, created["secret"]) as client:
        assert client.get("/dashboard/jobs").status_code == 200
        with idle_stack.client(idle_stack.admin_token) as api:
            assert api.delete(f"/v1/tokens/{created['id']}").status_code == 204
        response = client.get("/dashboard/jobs")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login?expired=1"


def test_job_page_shows_stages_and_config(idle_stack, idle_source_model):
    job = submit_job(idle_stack, idle_source_model, "http-stages")
    with dashboard(idle_stack, idle_stack.submit_token) as client:
        page = client.get(f"/dashboard/jobs/{job['id']}").text
        fragment = client.get(f"/dashboard/jobs/{job['id']}?fragment=1").text
    for stage in job["stages"]:
        assert f'<span class="stage-name">{stage["name"]}</span>' in page
    assert "calibration_samples" in page
    assert "Cancel job" in page
    assert 'data-live="true"' in fragment
    assert "<html" not in fragment


def test_cancel_needs_csrf_token(idle_stack, idle_source_model):
    job = submit_job(idle_stack, idle_source_model, "http-csrf")
    with dashboard(idle_stack, idle_stack.submit_token) as client:
        forged = client.post(f"/dashboard/jobs/{job['id']}/cancel", data={"csrf_token": "0" * 64})
        missing = client.post(f"/dashboard/jobs/{job['id']}/cancel")
    assert forged.status_code == 403
    assert missing.status_code == 422
    with idle_stack.client() as api:
        assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "queued"


def test_cancel_then_retry_from_dashboard(idle_stack, idle_source_model):
    job = submit_job(idle_stack, idle_source_model, "http-cancel")
    csrf = csrf_token_for(idle_stack.submit_token)
    with dashboard(idle_stack, idle_stack.submit_token) as client, idle_stack.client() as api:
        cancelled = client.post(f"/dashboard/jobs/{job['id']}/cancel", data={"csrf_token": csrf})
        assert cancelled.status_code == 303
        assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"
        page = client.get(f"/dashboard/jobs/{job['id']}").text
        assert "Retry job" in page
        assert "Cancel job" not in page

        retried = client.post(f"/dashboard/jobs/{job['id']}/retry", data={"csrf_token": csrf})
        assert retried.status_code == 303
        assert api.get(f"/v1/jobs/{job['id']}").json()["state"] == "queued"

        again = client.post(f"/dashboard/jobs/{job['id']}/retry", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert "only failed or cancelled jobs can be retried" in again.text


def test_unknown_job_page_is_not_found(idle_stack):
    with dashboard(idle_stack, idle_stack.submit_token) as client:
        response = client.get("/dashboard/jobs/0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert "not found" in response.text


def test_artifact_page_plots_quality_and_size(idle_stack, tmp_path):
    manifest = publish_evaluated_artifact(idle_stack, tmp_path, "plotted")
    with dashboard(idle_stack, idle_stack.pull_token) as client:
        models_page = client.get("/dashboard/models").text
        page = client.get("/dashboard/models/acme/plotted/v1").text
    assert 'href="/dashboard/models/acme/plotted/v1"' in models_page
    assert page.count("<svg") == 3
    for title in ("Perplexity against pruning rate", "Task accuracy against pruning rate",
                  "Download size against pruning rate"):
        assert title in page
    for label in ("global pruning rate (%)", "perplexity", "accuracy (%)", "size (kB)"):
        assert f">{label}</text>" in page
    rows = re.findall(r"<tr>\s*<th scope=\"row\">", page)
    assert len(rows) == len(manifest["rate_table"])
    assert ">PPL wiki</th>" in page
    assert ">piqa (%)</th>" in page


def test_artifact_page_of_other_namespace_is_not_found(idle_stack, tmp_path):
    publish_evaluated_artifact(idle_stack, tmp_path, "hidden")
    with idle_stack.client(idle_stack.admin_token) as api:
        api.post("/v1/namespaces", json={"name": "other"})
        secret = api.post("/v1/tokens", json={"name": "other-pull", "scopes": ["pull"], "namespace": "other"}).json()["secret"]
    with dashboard(idle_stack, secret) as client:
        response = client.get("/dashboard/models/acme/hidden/v1")
    assert response.status_code == 404


def test_device_page_plots_history(idle_stack):
    with idle_stack.client(idle_stack.pull_token) as api:
        device = api.post("/v1/devices", json={"name": "http-phone", "hardware": {"memory_bytes": 8 * 10**9}}).json()
        for index in range(3):
            beat = {"rate": 0.35 - 0.1 * index, "bands": list(range(index + 1)),
                    "available_memory_bytes": (2 + index) * 10**9, "tokens_per_second": 10.0 + index}
            assert api.post(f"/v1/devices/{device['id']}/heartbeats", json=beat).status_code == 201
    with dashboard(idle_stack, idle_stack.pull_token) as client:
        fleet = client.get("/dashboard/devices?fragment=1").text
        page = client.get(f"/dashboard/devices/{device['id']}").text
    assert 'data-device="http-phone"' in fleet
    assert "0, 1, 2" in fleet
    assert page.count("<svg") == 3
    assert ">tokens/s</text>" in page
    assert ">12</text>" in page
    assert "History (3 heartbeats)" in page
    assert json.dumps(8 * 10**9) in page
