"""Worker processes and job helpers for the worker tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from services.db.models import Job, JobEvent
from services.settings import Settings
from tests.services.fixtures import wait_for

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """A ``uniql worker`` in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, fake_pipeline: bool, fast_restore: bool = False):
        self.env = env
        self.log_path = log_path
        self.fake_pipeline = fake_pipeline
        self.fast_restore = fast_restore
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        args = [sys.executable, "-m", "tests.workers.worker_main", "--concurrency=1"]
        if self.fake_pipeline:
            args.append("--fake-pipeline")
        if self.fast_restore:
            args.append("--fast-restore")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(args, cwd=REPOSITORY_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a lost machine would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def worker_env(settings: Settings, control_dir: Path, **overrides: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "UNIQL_HOME": str(settings.home),
        "UNIQL_DATABASE_URL": settings.database_url,
        "UNIQL_BROKER_URL": settings.broker_url,
        "UNIQL_STORE_PATH": str(settings.local_store_path),
        "UNIQL_CACHE_PATH": str(settings.local_cache_path),
        "UNIQL_STORE_BACKEND": settings.store_backend,
        "UNIQL_S3_BUCKET": settings.s3_bucket,
        "UNIQL_S3_PREFIX": settings.s3_prefix,
        "UNIQL_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "UNIQL_STAGE_LEASE_SECONDS": "3",
        "UNIQL_RECOVERY_INTERVAL_SECONDS": "1",
        "UNIQL_RETRY_BACKOFF_SECONDS": "0.2",
        "UNIQL_TASK_MAX_RETRIES": "1",
        "UNIQL_FAKE_PIPELINE_DIR": str(control_dir),
        "PYTHONPATH": str(REPOSITORY_ROOT),
    })
    env.update({f"UNIQL_{key.upper()}": str(value) for key, value in overrides.items()})
    return env


def read_job(session_factory, job_id: str) -> Job:
    with session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge_all()
        return job


def wait_for_state(session_factory, job_id: str, states: set[str], timeout: float, worker: WorkerProcess | None = None):
    def reached():
        job = read_job(session_factory, job_id)
        return job if job.state in states else None

    try:
        return wait_for(reached, timeout, f"job {job_id} did not reach {states}")
    except BaseException:
        if worker is not None:
            print(f"worker log:\n{worker.log_tail()}")
        raise


def stage_state(session_factory, job_id: str, stage: str) -> str:
    return next(row.state for row in read_job(session_factory, job_id).stages if row.name == stage)


def run_counts(control_dir: Path) -> Counter:
    """Count 'start X' and 'finish X' lines of the fake pipeline."""
    path = control_dir / "runs.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(" ".join(line.split()[:2]) for line in lines)


def events(session_factory, job_id: str) -> list[JobEvent]:
    from sqlalchemy import select

    with session_factory() as session:
        return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))
