"""Fixtures for the service, worker and puller tests: real PostgreSQL, Redis, API server and workers.

Environment variables (defaults in brackets):
- ``UNIQL_TEST_DATABASE_URL`` [postgresql://postgres@127.0.0.1:5432/uniql_test], created if missing;
- ``UNIQL_TEST_REDIS_URL`` [redis://127.0.0.1:6379/11], flushed before each test that uses it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.app import create_app
from services.db.migrate import upgrade_database
from services.db.session import create_db_engine, create_session_factory
from services.settings import Settings, normalize_database_url
from services.tokens import create_token

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/uniql_test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
TABLES = ("device_heartbeats", "devices", "tags", "manifest_blobs", "manifests", "blobs", "repositories",
          "job_events", "job_stages", "jobs", "source_models", "api_tokens", "namespaces")


def wait_for(condition: Callable[[], Any], timeout: float, message: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns a truthy value; fail the test with ``message`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s: {message}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_postgres_database(url: str) -> str:
    """Create the database named in ``url`` when it does not exist; return the normalized URL."""
    url = normalize_database_url(url)
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                       {"name": parsed.database})
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A migrated PostgreSQL database for the whole test session."""
    url = ensure_postgres_database(os.environ.get("UNIQL_TEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    upgrade_database(url)
    return url


@pytest.fixture
def database_url(postgres_url: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied before the test."""
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield postgres_url


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("UNIQL_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings on the test database; the broker points at a closed port unless a test sets one."""
    return Settings(
        home=tmp_path / "home", database_url=database_url, broker_url=f"redis://127.0.0.1:{free_port()}/0",
        gc_grace_seconds=0,
    )


@pytest.fixture
def session_factory(settings: Settings):
    engine = create_db_engine(settings.database_url)
    yield create_session_factory(engine)
    engine.dispose()


@pytest.fixture
def make_token(session_factory) -> Callable[..., str]:
    """Create a token: ``make_token(scopes, namespace)``; namespace None gives a global admin."""

    def make(scopes: list[str], namespace: str | None = "acme", name: str = "test") -> str:
        with session_factory() as session:
            _, secret = create_token(session, name, scopes, namespace)
            session.commit()
        return secret

    return make


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    """The API served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: Any):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 20, "the API server did not start")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="session")
def moto_endpoint():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 30, "moto server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_bucket(moto_endpoint, monkeypatch) -> str:
    """A new bucket on the moto server, with boto3 credentials for it in the environment."""
    import boto3

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    bucket = f"uniql-{os.urandom(4).hex()}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket
