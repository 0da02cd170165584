"""Property-based requests from the OpenAPI description (schemathesis): no request may cause a 5xx."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from services.app import create_app
from services.registry import publish_artifact
from services.settings import Settings, normalize_database_url
from services.store import create_store
from services.tokens import get_or_create_namespace
from tests.services.archives import model_archive
from tests.services.artifact_factory import make_random_artifact
from tests.services.fixtures import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, auth

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25


@schemathesis.serializer("application/x-tar", "application/gzip")
def serialize_archive(ctx, value) -> bytes:
    """Send generated binary bodies as they are (random bytes are invalid archives, the point of fuzzing)."""
    return value if isinstance(value, bytes) else str(value).encode()


def _fuzz_app():
    home = Path(tempfile.mkdtemp(prefix="uniql-fuzz-"))
    database = normalize_database_url(os.environ.get("UNIQL_TEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    broker = os.environ.get("UNIQL_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    return create_app(Settings(home=home, database_url=database, broker_url=broker, gc_grace_seconds=0))


APP = _fuzz_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(autouse=True)
def seeded(database_url, redis_url, session_factory, make_token, tmp_path):
    """Empty database, then one source model, job, device and published model for the requests to find."""
    settings = APP.state.settings
    APP.state.fuzz_token = make_token(["admin"], None)
    with session_factory() as session:
        namespace_id = get_or_create_namespace(session, "acme").id
        make_random_artifact(tmp_path / "artifact")
        publish_artifact(session, create_store(settings), tmp_path / "artifact", namespace_id, "tiny", "v1", None)
        session.commit()
    with TestClient(APP) as client:
        headers = auth(APP.state.fuzz_token)
        source = client.post("/v1/source-models?name=tiny&namespace=acme", content=model_archive(), headers=headers)
        client.post("/v1/jobs", json={"namespace": "acme", "source_model_id": source.json()["id"], "model": "tiny"},
                    headers=headers)
        client.post("/v1/devices", json={"namespace": "acme", "name": "pi"}, headers=headers)


@schema.parametrize()
@hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.function_scoped_fixture])
def test_no_server_errors(case):
    token = APP.state.fuzz_token
    for headers in (auth(token), {}):
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
