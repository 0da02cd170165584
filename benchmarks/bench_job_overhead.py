"""Benchmark of the cloud service's job overhead: one compression job through the API, the Redis broker and
a Celery worker, against ``uniql compress`` run directly on the same model with the same pipeline settings.

Run: python benchmarks/bench_job_overhead.py [--rounds 3] [--model-dir DIR]

It drops, recreates and migrates a scratch PostgreSQL database (UNIQL_BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/uniql_bench_overhead) and flushes Redis database 13
(UNIQL_BENCH_REDIS_URL, default redis://127.0.0.1:6379/13). Then it starts the API with uvicorn and one
``uniql worker --concurrency 1`` in subprocesses, all on loopback. Each round runs both paths, and the
order alternates between rounds:
- service: wall time from the upload request (gzipped tar of the model) through job creation, the
  seven stage tasks and the publish task to the job's ``succeeded`` state, polled every 0.2 s;
- direct: wall time of ``uniql compress MODEL --config FILE`` in a subprocess, interpreter start included.
Both paths also report the sum of the stage ``seconds`` that the pipeline records, so the table separates
pipeline time from the time spent around it. The worker starts once before the rounds, and its start-up
time is printed but not counted in any round. The direct path pays the interpreter and torch imports in
every round. The worker pays its imports once, so its first job is slower than the later ones.
On failure the logs of the API, the worker and the direct runs are kept, and their folder is printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))

from benchmarks.bench_service import fresh_database
from benchmarks.common import machine_line, today
from services.db.session import create_db_engine, create_session_factory
from services.settings import Settings
from services.tokens import create_token
from uniql.pipeline import STAGES

NAMESPACE = "bench"
POLL_SECONDS = 0.2
WORKER_START_SECONDS = 120
JOB_TIMEOUT_SECONDS = 1800
# The same settings as FAST_PIPELINE_CONFIG in tests/dashboard/stack.py. Both paths run this config.
PIPELINE_CONFIG = {"rates": [0.0, 0.15, 0.35], "calibration_samples": 4, "calibration_length": 64,
                   "finetune": {"enabled": False},
                   "eval_windows": 2, "eval_length": 64, "batch_size": 2}


def service_environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, "UNIQL_HOME": str(settings.home), "UNIQL_DATABASE_URL": settings.database_url,
            "UNIQL_BROKER_URL": settings.broker_url, "UNIQL_QUEUE_NAME": settings.queue_name,
            "UNIQL_STORE_PATH": str(settings.store_path), "UNIQL_CACHE_PATH": str(settings.cache_path),
            "PYTHONPATH": str(REPOSITORY_ROOT)}


def start_api(settings: Settings, port: int, log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "services.app:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env=service_environment(settings), cwd=REPOSITORY_ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited with {process.returncode}; see {log_path}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"the API server did not start within 60 s; see {log_path}")


def start_worker(settings: Settings, log_path: Path) -> tuple[subprocess.Popen, float]:
    """Start ``uniql worker`` on the benchmark queue; return the process and its start-up seconds."""
    began = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uniql.cli.main", "worker", "--concurrency", "1", "--hostname",
             f"bench-overhead-{uuid.uuid4().hex[:8]}@127.0.0.1"],
            env=service_environment(settings), cwd=REPOSITORY_ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + WORKER_START_SECONDS
    while b"ready" not in log_path.read_bytes():
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"the worker did not start within {WORKER_START_SECONDS} s; see {log_path}")
        time.sleep(0.2)
    return process, time.perf_counter() - began


def stop(process: subprocess.Popen | None) -> None:
    """Send SIGTERM, wait up to 30 s, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def make_submit_token(settings: Settings) -> str:
    engine = create_db_engine(settings.database_url)
    with create_session_factory(engine)() as session:
        _, token = create_token(session, "bench-overhead", ["submit"], NAMESPACE)
        session.commit()
    engine.dispose()
    return token


def model_archive(model_dir: Path) -> bytes:
    """Return a gzipped tar of the files in ``model_dir``, as ``uniql jobs submit`` packs it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)
    return buffer.getvalue()


def run_service(client: httpx.Client, model_dir: Path, round_index: int) -> tuple[float, float]:
    """Upload the model, create a job and poll it to success; return wall seconds and stage seconds."""
    began = time.perf_counter()
    upload = client.post("/v1/source-models", params={"name": f"model-r{round_index}", "namespace": NAMESPACE},
                         content=model_archive(model_dir), headers={"Content-Type": "application/gzip"})
    if upload.status_code not in (200, 201):
        raise RuntimeError(f"upload failed with status {upload.status_code}: {upload.text[:500]}")
    body = {"source_model_id": upload.json()["id"], "model": "overhead", "tag": f"r{round_index}",
            "namespace": NAMESPACE, "config": PIPELINE_CONFIG}
    created = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    if created.status_code != 201:
        raise RuntimeError(f"job creation failed with status {created.status_code}: {created.text[:500]}")
    job_id = created.json()["id"]

    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        response = client.get(f"/v1/jobs/{job_id}")
        response.raise_for_status()
        job = response.json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} timed out after {JOB_TIMEOUT_SECONDS} s in state {job['state']}")
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - began
    if job["state"] != "succeeded":
        raise RuntimeError(f"job {job_id} ended {job['state']}: {job['error']}")
    return wall, sum((stage["metrics"] or {}).get("seconds", 0.0) for stage in job["stages"])


def run_direct(model_dir: Path, config_file: Path, out_dir: Path, log_path: Path) -> tuple[float, float]:
    """Run ``uniql compress`` in a subprocess; return wall seconds and the stage seconds of its checkpoints."""
    workdir = out_dir.with_name(out_dir.name + ".work")
    command = [sys.executable, "-m", "uniql.cli.main", "compress", str(model_dir), "--out", str(out_dir),
               "--config", str(config_file), "--workdir", str(workdir), "--keep-workdir"]
    began = time.perf_counter()
    with log_path.open("wb") as log:
        result = subprocess.run(command, cwd=REPOSITORY_ROOT, stdout=log, stderr=subprocess.STDOUT, check=False,
                                env={**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)})
    wall = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"uniql compress exited with {result.returncode}; see {log_path}")
    markers = [workdir / f"{stage}.done" for stage in STAGES]
    stage_seconds = sum(json.loads(marker.read_text()).get("seconds", 0.0) for marker in markers if marker.is_file())
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    return wall, stage_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="Rounds; each runs both paths once.")
    parser.add_argument("--model-dir", type=Path, help="Hugging Face model directory [default: a tiny random Llama].")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")

    database = fresh_database(os.environ.get("UNIQL_BENCH_DATABASE_URL",
                                             "postgresql://postgres@127.0.0.1:5432/uniql_bench_overhead"))
    redis_url = os.environ.get("UNIQL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    redis.Redis.from_url(redis_url).flushdb()
    scratch = Path(tempfile.mkdtemp(prefix="uniql-bench-overhead-"))
    settings = Settings(home=scratch / "home", database_url=database, broker_url=redis_url,
                        queue_name=f"uniql-bench-overhead-{uuid.uuid4().hex[:8]}")
    if args.model_dir is not None:
        model_dir = args.model_dir.resolve()
        model_label = str(model_dir)
    else:
        from tests.helpers.tiny_models import make_tiny_model_dir

        model_dir = make_tiny_model_dir(scratch / "model", "llama")
        model_label = "tiny random Llama (tests.helpers.tiny_models)"
    config_file = scratch / "pipeline.json"
    config_file.write_text(json.dumps(PIPELINE_CONFIG))
    token = make_submit_token(settings)

    api = worker = None
    succeeded = False
    results: dict[str, list[tuple[float, float]]] = {"service": [], "direct": []}
    try:
        port = random.randint(20000, 40000)
        api = start_api(settings, port, scratch / "api.log")
        worker, worker_start_seconds = start_worker(settings, scratch / "worker.log")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                          timeout=120) as client:
            for round_index in range(args.rounds):
                order = ("direct", "service") if round_index % 2 == 0 else ("service", "direct")
                for path in order:
                    if path == "service":
                        measured = run_service(client, model_dir, round_index)
                    else:
                        measured = run_direct(model_dir, config_file, scratch / f"direct-r{round_index}",
                                              scratch / f"direct-r{round_index}.log")
                    results[path].append(measured)
                    print(f"round {round_index + 1} {path}: {measured[0]:.1f} s wall, {measured[1]:.1f} s in stages",
                          flush=True)
        succeeded = True
    finally:
        stop(worker)
        stop(api)
        redis.Redis.from_url(redis_url).flushdb()
        if succeeded:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"the benchmark failed; logs and files are kept in {scratch}", file=sys.stderr)

    print_table(results, args.rounds, model_label, worker_start_seconds)


def print_table(results: dict[str, list[tuple[float, float]]], rounds: int, model_label: str,
                worker_start_seconds: float) -> None:
    medians = {path: (statistics.median(wall for wall, _ in rows), statistics.median(stage for _, stage in rows))
               for path, rows in results.items()}
    service_wall, service_stages = medians["service"]
    direct_wall, direct_stages = medians["direct"]
    print(f"\n{today()}, {machine_line()}")
    print(f"Model: {model_label}. Pipeline config: {json.dumps(PIPELINE_CONFIG)}. "
          f"{rounds} rounds, medians. Worker start-up (not counted): {worker_start_seconds:.1f} s.\n")
    print("| path | wall (s) | stage seconds (s) | outside stages (s) |")
    print("|---|---:|---:|---:|")
    print(f"| direct `uniql compress` | {direct_wall:.1f} | {direct_stages:.1f} | {direct_wall - direct_stages:.1f} |")
    print(f"| service (upload + job + worker + publish) | {service_wall:.1f} | {service_stages:.1f} | "
          f"{service_wall - service_stages:.1f} |")
    print(f"\nRatio service / direct (wall): {service_wall / direct_wall:.2f}. "
          f"Service overhead: {service_wall - direct_wall:.1f} s wall, "
          f"{(service_wall - service_stages) - (direct_wall - direct_stages):.1f} s outside the stages.")


if __name__ == "__main__":
    main()
