"""Devices over HTTP: registration, heartbeats and the heartbeat history."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.app import create_app
from tests.services.fixtures import auth

pytestmark = pytest.mark.integration


@pytest.fixture
def client(settings):
    settings.heartbeat_history_limit = 5
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def token(make_token):
    return make_token(["pull"])


def test_register_twice_keeps_id(client, token):
    first = client.post("/v1/devices", json={"name": "pi-1", "hardware": {"memory_bytes": 8 << 30}},
                        headers=auth(token))
    assert first.status_code == 201
    second = client.post("/v1/devices", json={"name": "pi-1", "model": "h/acme/tiny:v1"}, headers=auth(token))
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["model"] == "h/acme/tiny:v1"


def test_heartbeats_history_and_latest(client, token):
    device = client.post("/v1/devices", json={"name": "pi-2"}, headers=auth(token)).json()
    for index in range(7):
        response = client.post(f"/v1/devices/{device['id']}/heartbeats", headers=auth(token), json={
            "rate": 0.35 - 0.05 * index, "bands": [0, 1, 1], "available_memory_bytes": 1000 + index,
            "tokens_per_second": 10.0 + index,
        })
        assert response.status_code == 201, response.text
        assert response.json()["bands"] == [0, 1]

    history = client.get(f"/v1/devices/{device['id']}/heartbeats", headers=auth(token)).json()["items"]
    assert [beat["tokens_per_second"] for beat in history] == [12.0, 13.0, 14.0, 15.0, 16.0]
    latest = client.get(f"/v1/devices/{device['id']}", headers=auth(token)).json()
    assert latest["last_heartbeat"]["tokens_per_second"] == 16.0
    assert latest["last_seen_at"] is not None
    listing = client.get("/v1/devices", headers=auth(token)).json()
    assert listing["total"] == 1
    assert listing["items"][0]["last_heartbeat"]["available_memory_bytes"] == 1006


@pytest.mark.parametrize("heartbeat", [
    {"rate": 1.5, "available_memory_bytes": 1},
    {"rate": 0.1, "available_memory_bytes": -1},
    {"rate": 0.1, "available_memory_bytes": 1, "tokens_per_second": -3},
    {"rate": 0.1},
    {"rate": 0.1, "available_memory_bytes": 1, "surprise": True},
])
def test_invalid_heartbeat_is_422(client, token, heartbeat):
    device = client.post("/v1/devices", json={"name": "pi-3"}, headers=auth(token)).json()
    response = client.post(f"/v1/devices/{device['id']}/heartbeats", json=heartbeat, headers=auth(token))
    assert response.status_code == 422
