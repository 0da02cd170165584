"""Tokens, scopes and tenant isolation over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from services.app import create_app
from services.db.base import utcnow
from services.tokens import create_token, hash_secret, list_tokens, revoke_token
from tests.services.archives import model_archive
from tests.services.fixtures import auth

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client


def test_missing_token_is_401(client):
    response = client.get("/v1/jobs")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "missing API token" in response.json()["detail"]


def test_unknown_token_is_401(client):
    response = client.get("/v1/jobs", headers=auth("uq_not-a-real-token"))
    assert response.status_code == 401
    assert "invalid, expired or revoked" in response.json()["detail"]


def test_revoked_token_is_401(client, session_factory, make_token):
    token = make_token(["submit"])
    assert client.get("/v1/jobs", headers=auth(token)).status_code == 200
    with session_factory() as session:
        (row,) = [row for row in list_tokens(session) if row.token_hash == hash_secret(token)]
        revoke_token(session, row.id)
        session.commit()
    assert client.get("/v1/jobs", headers=auth(token)).status_code == 401


def test_expired_token_is_401(client, session_factory):
    with session_factory() as session:
        _, token = create_token(session, "old", ["pull"], "acme", expires_at=utcnow() - timedelta(seconds=1))
        session.commit()
    assert client.get("/v1/devices", headers=auth(token)).status_code == 401


def test_token_hash_is_stored_not_secret(session_factory, make_token):
    token = make_token(["pull"])
    with session_factory() as session:
        hashes = [row.token_hash for row in list_tokens(session)]
    assert token not in hashes
    assert hash_secret(token) in hashes


@pytest.mark.parametrize(("method", "path", "scope"), [
    ("get", "/v1/jobs", "submit"),
    ("post", "/v1/source-models?name=x", "submit"),
    ("get", "/v1/tokens", "admin"),
    ("delete", "/v1/namespaces/acme/models/m/tags/t", "admin"),
])
def test_pull_token_lacks_scope_403(client, make_token, method, path, scope):
    response = client.request(method, path, headers=auth(make_token(["pull"])))
    assert response.status_code == 403
    assert f"needs the '{scope}' scope" in response.json()["detail"]


def test_other_tenant_ids_are_404(client, make_token):
    acme = make_token(["submit"], "acme")
    other = make_token(["admin"], "other")
    upload = client.post("/v1/source-models?name=tiny", content=model_archive(), headers=auth(acme))
    assert upload.status_code == 201
    source_id = upload.json()["id"]
    device = client.post("/v1/devices", json={"name": "pi-1"}, headers=auth(acme)).json()

    for path in (f"/v1/source-models/{source_id}", f"/v1/devices/{device['id']}",
                 "/v1/namespaces/acme/models", f"/v1/devices/{device['id']}/heartbeats"):
        response = client.get(path, headers=auth(other))
        assert response.status_code == 404, path
        assert "not found" in response.json()["detail"]
    assert client.get("/v1/source-models", headers=auth(other)).json()["items"] == []
    assert client.get("/v1/source-models?namespace=acme", headers=auth(other)).status_code == 404
    heartbeat = {"rate": 0.1, "available_memory_bytes": 1}
    assert client.post(f"/v1/devices/{device['id']}/heartbeats", json=heartbeat, headers=auth(other)).status_code == 404


def test_namespace_admin_manages_own_tokens_only(client, make_token):
    admin = make_token(["admin"], "acme")
    created = client.post("/v1/tokens", json={"name": "ci", "scopes": ["pull"]}, headers=auth(admin))
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("uq_")
    assert body["namespace"] == "acme"
    assert client.get("/v1/devices", headers=auth(body["secret"])).status_code == 200

    foreign = client.post("/v1/tokens", json={"name": "x", "scopes": ["admin"], "namespace": "other"},
                          headers=auth(admin))
    assert foreign.status_code == 404
    listed = client.get("/v1/tokens", headers=auth(admin)).json()
    assert all(token["namespace"] == "acme" for token in listed)
    assert all("secret" not in token for token in listed)

    assert client.delete(f"/v1/tokens/{body['id']}", headers=auth(admin)).status_code == 204
    assert client.get("/v1/devices", headers=auth(body["secret"])).status_code == 401


def test_global_admin_creates_namespaces(client, make_token):
    root = make_token(["admin"], None)
    response = client.post("/v1/namespaces", json={"name": "new-team"}, headers=auth(root))
    assert response.status_code == 201
    assert client.post("/v1/namespaces", json={"name": "new-team"}, headers=auth(root)).status_code == 409
    namespace_admin = make_token(["admin"], "acme")
    assert client.post("/v1/namespaces", json={"name": "x"}, headers=auth(namespace_admin)).status_code == 403
    names = [row["name"] for row in client.get("/v1/namespaces", headers=auth(root)).json()]
    assert "new-team" in names


def test_health_reports_broker_down(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "broker": False}
