"""``uniql jobs``: submit a model directory for compression, follow, list, cancel and retry jobs."""

from __future__ import annotations

import json
import tarfile
import tempfile
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from services.admin_cli.client import (
    EXIT_JOB_FAILED,
    EXIT_USAGE,
    ApiClient,
    CliError,
    with_client,
)
from services.admin_cli.output import echo_json, echo_table, json_option, short_time

TERMINAL_STATES = ("succeeded", "failed", "cancelled")
JOB_STATES = ("queued", "running", *TERMINAL_STATES)


@click.group(name="jobs")
def jobs() -> None:
    """Submit and manage compression jobs on a cloud service.

    Exit codes: 0 ok, 1 API error, 2 usage, 3 server unreachable, 4 authentication failed,
    5 not found, 6 the job failed or was cancelled (submit --wait).
    """


def read_pipeline_config(path: Path | None) -> dict[str, Any]:
    """Read pipeline settings from a JSON or TOML file (by extension); none means the defaults."""
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        config = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise CliError(f"cannot parse the pipeline config {path}: {error}", EXIT_USAGE) from error
    if not isinstance(config, dict):
        raise CliError(f"the pipeline config {path} must hold an object of settings, not {type(config).__name__}",
                       EXIT_USAGE)
    return config


def upload_model_dir(client: ApiClient, model_dir: Path, namespace: str | None) -> dict[str, Any]:
    """Pack the directory as a gzipped tar in a temporary file and upload it as a source model."""
    if not (model_dir / "config.json").is_file():
        raise CliError(f"{model_dir} has no config.json; pass a Hugging Face model directory", EXIT_USAGE)
    with tempfile.TemporaryDirectory(prefix="uniql-upload-") as scratch:
        archive_path = Path(scratch) / "model.tar.gz"
        with tarfile.open(archive_path, "w:gz") as archive:
            for path in sorted(model_dir.iterdir()):
                archive.add(path, arcname=path.name)
        params = {"name": model_dir.resolve().name}
        if namespace:
            params["namespace"] = namespace
        size = archive_path.stat().st_size
        click.echo(f"uploading {model_dir} ({size / 1e6:.1f} MB packed)", err=True)
        with archive_path.open("rb") as body:
            response = client.request(
                "POST", "/v1/source-models", params=params, content=body,
                headers={"Content-Type": "application/gzip", "Content-Length": str(size)},
                timeout=3600.0,
            )
    return response.json()


def wait_for_job(client: ApiClient, job: dict[str, Any], poll_seconds: float) -> dict[str, Any]:
    """Show a progress bar until the job ends; return its final state."""
    with tqdm(total=100, unit="%", desc="queued", bar_format="{desc:<22} {bar} {n:.0f}% [{elapsed}]") as bar:
        while True:
            bar.set_description_str(f"{job['state']}: {job.get('current_stage') or '-'}"[:22])
            bar.update(round(job["progress"] * 100, 1) - bar.n)
            if job["state"] in TERMINAL_STATES:
                return job
            time.sleep(poll_seconds)
            job = client.get_json(f"/v1/jobs/{job['id']}")


def echo_job(job: dict[str, Any]) -> None:
    click.echo(f"job {job['id']}: {job['state']}, {job['progress'] * 100:.0f} %, publishes {job['reference']}")
    if job.get("error"):
        click.echo(f"error: {job['error']}")


@jobs.command(name="submit")
@click.argument("model_dir", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "model_name", required=True, help="Registry model name the artifact is published as.")
@click.option("--tag", default="latest", show_default=True, help="Registry tag the artifact is published as.")
@click.option("--namespace", help="Namespace of the job [default: the token's namespace].")
@click.option("--source-model-id", help="Use an uploaded source model instead of uploading MODEL_DIR.")
@click.option("--config", "pipeline_config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pipeline settings as a JSON or TOML file [default: the pipeline defaults].")
@click.option("--idempotency-key", help="Key that makes a repeated submit return the same job [default: random].")
@click.option("--wait", is_flag=True, help="Show a progress bar and wait until the job ends.")
@click.option("--poll-interval", default=2.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds between progress polls with --wait.")
@json_option
@with_client
def submit_job(
    client: ApiClient, model_dir: Path | None, model_name: str, tag: str, namespace: str | None,
    source_model_id: str | None, pipeline_config: Path | None, idempotency_key: str | None, wait: bool,
    poll_interval: float, as_json: bool,
) -> None:
    """Upload MODEL_DIR (a Hugging Face model directory) and queue a compression job for it."""
    if (model_dir is None) == (source_model_id is None):
        raise CliError("give either MODEL_DIR or --source-model-id, not both or neither", EXIT_USAGE)
    config = read_pipeline_config(pipeline_config)
    if source_model_id is None:
        assert model_dir is not None
        source_model_id = upload_model_dir(client, model_dir, namespace)["id"]
    body: dict[str, Any] = {"source_model_id": source_model_id, "model": model_name, "tag": tag, "config": config}
    if namespace:
        body["namespace"] = namespace
    headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
    job = client.request("POST", "/v1/jobs", json=body, headers=headers).json()
    if not as_json:
        click.echo(f"job {job['id']} queued: publishes {job['reference']}")
    if wait:
        job = wait_for_job(client, job, poll_interval)
    if as_json:
        echo_json(job)
    elif wait:
        echo_job(job)
    if wait and job["state"] != "succeeded":
        raise CliError(f"job {job['id']} ended {job['state']}: {job.get('error') or 'no error recorded'}",
                       EXIT_JOB_FAILED)


@jobs.command(name="list")
@click.option("--state", type=click.Choice(JOB_STATES), help="Show only jobs in this state.")
@click.option("--namespace", help="Show only jobs of this namespace.")
@click.option("--model", "model_name", help="Show only jobs that publish this registry model.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200), help="Maximum number of jobs to show.")
@json_option
@with_client
def list_jobs(client: ApiClient, state: str | None, namespace: str | None, model_name: str | None, limit: int,
              as_json: bool) -> None:
    """List jobs, newest first."""
    params = {key: value for key, value in
              (("state", state), ("namespace", namespace), ("model", model_name), ("limit", limit)) if value}
    page = client.get_json("/v1/jobs", params=params)
    if as_json:
        echo_json(page)
        return
    echo_table(
        ["ID", "STATE", "PROGRESS", "STAGE", "PUBLISHES", "CREATED"],
        [[job["id"], job["state"], f"{job['progress'] * 100:.0f}%", job["current_stage"], job["reference"],
          short_time(job["created_at"])] for job in page["items"]],
    )


@jobs.command(name="show")
@click.argument("job_id")
@json_option
@with_client
def show_job(client: ApiClient, job_id: str, as_json: bool) -> None:
    """Show a job with its stages, timings and configuration."""
    job = client.get_json(f"/v1/jobs/{job_id}")
    if as_json:
        echo_json(job)
        return
    echo_job(job)
    click.echo(f"created {short_time(job['created_at'])}, started {short_time(job['started_at'])}, "
               f"finished {short_time(job['finished_at'])}, retries {job['retry_count']}")
    if job.get("manifest_digest"):
        click.echo(f"manifest {job['manifest_digest']}")
    echo_table(["STAGE", "STATE", "ATTEMPTS", "STARTED", "FINISHED"],
               [[stage["name"], stage["state"], stage["attempts"], short_time(stage["started_at"]),
                 short_time(stage["finished_at"])] for stage in job["stages"]])
    click.echo("config: " + json.dumps(job["config"], sort_keys=True))


@jobs.command(name="cancel")
@click.argument("job_id")
@with_client
def cancel_job(client: ApiClient, job_id: str) -> None:
    """Cancel a queued job, or ask the worker running it to stop at its next check."""
    job = client.request("POST", f"/v1/jobs/{job_id}/cancel").json()
    suffix = " (the worker stops at its next check)" if job["state"] == "running" else ""
    click.echo(f"job {job['id']}: {job['state']}{suffix}")


@jobs.command(name="retry")
@click.argument("job_id")
@with_client
def retry_job(client: ApiClient, job_id: str) -> None:
    """Queue a failed or cancelled job again; finished stages are kept."""
    job = client.request("POST", f"/v1/jobs/{job_id}/retry").json()
    click.echo(f"job {job['id']}: {job['state']} (retry {job['retry_count']})")


@jobs.command(name="logs")
@click.argument("job_id")
@click.option("--follow", is_flag=True, help="Keep printing new events until the job ends.")
@click.option("--poll-interval", default=2.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds between polls with --follow.")
@json_option
@with_client
def show_job_logs(client: ApiClient, job_id: str, follow: bool, poll_interval: float, as_json: bool) -> None:
    """Print a job's events: state changes, stage results, progress and log lines."""
    after = 0
    while True:
        # Read the state before the events, so no event written before the job ended is missed.
        finished = not follow or client.get_json(f"/v1/jobs/{job_id}")["state"] in TERMINAL_STATES
        after = _echo_events(client, job_id, after, as_json)
        if finished:
            return
        time.sleep(poll_interval)


def _echo_events(client: ApiClient, job_id: str, after: int, as_json: bool) -> int:
    """Print every event after ``after``, page by page; return the id to continue from."""
    while True:
        page = client.get_json(f"/v1/jobs/{job_id}/events", params={"after": after, "limit": 1000})
        for event in page["items"]:
            if as_json:
                click.echo(json.dumps(event, sort_keys=True))
            else:
                stage = f" [{event['stage']}]" if event["stage"] else ""
                click.echo(f"{short_time(event['created_at'])} {event['kind']}{stage} {event['message']}")
        if not page["items"]:
            return after
        after = page["next_after"]
