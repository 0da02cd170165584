"""Benchmark of the cloud service on loopback: API latency under load and pull throughput.

Run: python benchmarks/bench_service.py [--jobs 500] [--requests 400] [--concurrency 16] [--artifact-mib 128]

It drops, recreates and migrates a scratch PostgreSQL database (UNIQL_BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/uniql_bench). Then it seeds jobs and one published artifact
of random bands, starts the API with uvicorn in a subprocess, and measures:
- job listing (GET /v1/jobs?limit=50) and 1 MiB blob range reads, p50/p99 latency at a fixed
  number of concurrent requests;
- one ``edge_runtime.pull`` of the whole artifact against a plain file copy of the same blobs.
The page cache is warm for both sides of the pull comparison. No job is queued (no broker needed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT))

from edge_runtime.pull import pull  # noqa: E402
from services.db.migrate import upgrade_database  # noqa: E402
from services.db.models import Job, JobStage, SourceModel  # noqa: E402
from services.db.session import create_db_engine, create_session_factory  # noqa: E402
from services.registry import publish_artifact  # noqa: E402
from services.settings import Settings, normalize_database_url  # noqa: E402
from services.store import create_store  # noqa: E402
from services.tokens import create_token, get_or_create_namespace  # noqa: E402
from tests.services.artifact_factory import make_random_artifact  # noqa: E402

MIB = 1 << 20
STAGES = ("calibrate", "sort", "allocate", "finetune", "quantize", "package", "evaluate")


def fresh_database(url: str) -> str:
    url = normalize_database_url(url)
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    upgrade_database(url)
    return url


def seed(settings: Settings, job_count: int, artifact_mib: int, scratch: Path) -> tuple[str, dict]:
    """Insert jobs and publish one artifact; return a pull token and the manifest."""
    engine = create_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    band_bytes = tuple(int(artifact_mib * MIB * share) for share in (0.5, 0.2, 0.15, 0.15))
    manifest = make_random_artifact(scratch / "artifact", band_bytes=band_bytes)
    with sessions() as session:
        namespace = get_or_create_namespace(session, "acme")
        source = SourceModel(namespace_id=namespace.id, name="bench", digest="sha256:" + "0" * 64, size_bytes=0,
                             unpacked_bytes=0, file_count=0)
        session.add(source)
        session.flush()
        for index in range(job_count):
            session.add(Job(namespace_id=namespace.id, source_model_id=source.id, model_name=f"model-{index % 7}",
                            tag="v1", config={"rates": [0.0, 0.35]}, request_hash="0" * 64, state="succeeded",
                            stages=[JobStage(position=i, name=name, state="done") for i, name in enumerate(STAGES)]))
        _, token = create_token(session, "bench", ["admin"], "acme")
        publish_artifact(session, create_store(settings), scratch / "artifact", namespace.id, "bench", "v1", None)
        session.commit()
    engine.dispose()
    return token, manifest


def start_server(settings: Settings, port: int) -> subprocess.Popen:
    env = dict(os.environ, UNIQL_HOME=str(settings.home), UNIQL_DATABASE_URL=settings.database_url,
               UNIQL_BROKER_URL=settings.broker_url, PYTHONPATH=str(REPOSITORY_ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "services.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"], env=env, cwd=REPOSITORY_ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the API server did not start within 60 s")


async def measure(base_url: str, token: str, paths: list[tuple[str, dict]], concurrency: int) -> list[float]:
    """Send the requests with at most ``concurrency`` in flight; return latencies in ms."""
    latencies: list[float] = []
    queue = list(paths)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                 limits=limits, timeout=60) as client:
        async def run() -> None:
            while queue:
                path, headers = queue.pop()
                start = time.perf_counter()
                response = await client.get(path, headers=headers)
                await response.aread()
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code not in (200, 206):
                    raise RuntimeError(f"GET {path} failed with status {response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(run() for _ in range(concurrency)))
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500, help="Jobs in the database.")
    parser.add_argument("--requests", type=int, default=400, help="Requests per measured endpoint.")
    parser.add_argument("--concurrency", type=int, default=16, help="Requests in flight at once.")
    parser.add_argument("--artifact-mib", type=int, default=128, help="Size of the published artifact in MiB.")
    args = parser.parse_args()

    database = fresh_database(os.environ.get("UNIQL_BENCH_DATABASE_URL",
                                             "postgresql://postgres@127.0.0.1:5432/uniql_bench"))
    scratch = Path(tempfile.mkdtemp(prefix="uniql-bench-"))
    settings = Settings(home=scratch / "home", database_url=database, broker_url="redis://127.0.0.1:1/0")
    token, manifest = seed(settings, args.jobs, args.artifact_mib, scratch)
    port = random.randint(20000, 40000)
    server = start_server(settings, port)
    base_url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        listing = [("/v1/jobs?limit=50", {})] * args.requests
        blob = manifest["bands"][0]
        blob_path = f"/v1/namespaces/acme/models/bench/blobs/{blob['digest']}"
        ranges = []
        for _ in range(args.requests):
            start = random.randrange(0, blob["size"] - MIB)
            ranges.append((blob_path, {"Range": f"bytes={start}-{start + MIB - 1}"}))
        for name, requests in (("GET /v1/jobs?limit=50", listing), ("GET blob, 1 MiB Range", ranges)):
            asyncio.run(measure(base_url, token, requests[:20], args.concurrency))  # warm-up
            began = time.perf_counter()
            latencies = asyncio.run(measure(base_url, token, requests, args.concurrency))
            elapsed = time.perf_counter() - began
            rows.append((name, f"{percentile(latencies, 0.5):.1f} ms", f"{percentile(latencies, 0.99):.1f} ms",
                         f"{len(latencies) / elapsed:.0f} req/s"))

        dest = scratch / "device"
        began = time.perf_counter()
        result = pull(f"127.0.0.1:{port}/acme/bench:v1", 0.0, dest, token=token, verify_existing=False)
        pull_seconds = time.perf_counter() - began
        copy_seconds = copy_blobs(settings, manifest, scratch / "copy")
        megabytes = result.bytes_downloaded / 1e6
        rows.append(("pull rate 0 (HTTP + sha256)", f"{pull_seconds:.2f} s", "", f"{megabytes / pull_seconds:.0f} MB/s"))
        rows.append(("plain file copy, same blobs", f"{copy_seconds:.2f} s", "", f"{megabytes / copy_seconds:.0f} MB/s"))
    finally:
        server.terminate()
        server.wait(timeout=20)
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{args.jobs} jobs, {args.requests} requests per endpoint, {args.concurrency} in flight, "
          f"artifact {args.artifact_mib} MiB, {os.cpu_count()} CPUs")
    print(f"{'measurement':<30} {'p50 / time':>12} {'p99':>10} {'throughput':>12}")
    for name, p50, p99, throughput in rows:
        print(f"{name:<30} {p50:>12} {p99:>10} {throughput:>12}")


def copy_blobs(settings: Settings, manifest: dict, target: Path) -> float:
    target.mkdir(parents=True)
    digests = [band["digest"] for band in manifest["bands"]] + list(manifest["tokenizer"]["files"].values())
    began = time.perf_counter()
    for digest in digests:
        hex_digest = digest.split(":")[1]
        shutil.copyfile(settings.local_store_path / "blobs" / "sha256" / hex_digest, target / hex_digest)
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
