"""The Redis broker restarts (or is down) while jobs are queued; every job still finishes once."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis

from tests.services.fixtures import auth, free_port, wait_for
from tests.workers.harness import run_counts, wait_for_state
from workers.tasks import STAGE_NAMES

pytestmark = pytest.mark.integration


class RedisServer:
    """A private redis-server on a loopback port with an append-only file, restartable in place."""

    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not on PATH; install it (Debian: apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, 20, f"redis-server on port {self.port} did not start")

    def ping(self) -> bool:
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture
def broker(tmp_path, settings):
    server = RedisServer(tmp_path)
    server.start()
    settings.broker_url = server.url
    yield server
    server.stop()


@pytest.fixture
def redis_url(broker):
    """Route the API fixtures to the private broker."""
    return broker.url


def test_restart_while_jobs_queued(broker, submit_job, start_worker, session_factory, control_dir):
    (control_dir / "hold-calibrate").touch()
    worker = start_worker()
    running = submit_job(model="first")
    wait_for(lambda: run_counts(control_dir)["start calibrate"] == 1, 60, "first job did not start")
    queued = submit_job(model="second")
    client = redis.Redis.from_url(broker.url)
    assert client.llen("uniql") == 1
    client.close()

    broker.stop()
    broker.start()
    (control_dir / "hold-calibrate").unlink()

    for job_id in (running, queued):
        job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 90, worker)
        assert job.state == "succeeded", job.error
    counts = run_counts(control_dir)
    for stage in STAGE_NAMES:
        assert counts[f"finish {stage}"] == 2, stage


def test_job_created_while_broker_down_runs_later(broker, submit_job, start_worker, session_factory, fake_api):
    broker.stop()
    token = submit_job.token
    job_id = submit_job()
    assert fake_api.get(f"/v1/jobs/{job_id}", headers=auth(token)).json()["state"] == "queued"

    broker.start()
    worker = start_worker()
    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 90, worker)
    assert job.state == "succeeded", job.error
