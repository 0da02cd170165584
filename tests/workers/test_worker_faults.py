"""Workers under faults: a killed worker, cancel and retry, failing stages. Uses the fake pipeline."""

from __future__ import annotations

import os
import signal

import pytest

from services.db.models import Tag
from tests.services.fixtures import auth, wait_for
from tests.workers.harness import (
    events,
    read_job,
    run_counts,
    stage_state,
    wait_for_state,
)
from workers.tasks import STAGE_NAMES

pytestmark = pytest.mark.integration


def test_job_runs_every_stage_once(submit_job, start_worker, session_factory, control_dir, fake_api):
    worker = start_worker()
    job_id = submit_job()
    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 60, worker)
    assert job.state == "succeeded", job.error
    assert job.progress == 1.0
    counts = run_counts(control_dir)
    for stage in STAGE_NAMES:
        assert counts[f"start {stage}"] == 1, stage
        assert counts[f"finish {stage}"] == 1, stage
    assert all(stage.attempts == 1 and stage.metrics["loss"] == 0.5 for stage in job.stages)

    kinds = {event.kind for event in events(session_factory, job_id)}
    assert kinds == {"state", "stage", "progress", "log"}
    logs = [event.message for event in events(session_factory, job_id) if event.kind == "log"]
    assert "INFO uniql.fake_pipeline: fake calibrate finished" in logs
    tags = fake_api.get("/v1/namespaces/acme/models/tiny/tags", headers=auth(submit_job.token)).json()["items"]
    assert tags[0]["digest"] == job.manifest_digest


def test_worker_killed_mid_stage_finishes_once(submit_job, start_worker, session_factory, control_dir):
    (control_dir / "hold-quantize").touch()
    first = start_worker()
    job_id = submit_job()
    wait_for(lambda: run_counts(control_dir)["start quantize"] == 1, 60, "quantize did not start")
    assert stage_state(session_factory, job_id, "quantize") == "running"

    first.kill()
    (control_dir / "hold-quantize").unlink()
    second = start_worker()
    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 90, second)
    assert job.state == "succeeded", job.error

    counts = run_counts(control_dir)
    assert counts["start quantize"] == 2
    for stage in STAGE_NAMES:
        assert counts[f"finish {stage}"] == 1, stage
        if stage != "quantize":
            assert counts[f"start {stage}"] == 1, stage
    attempts = {stage.name: stage.attempts for stage in job.stages}
    assert attempts["quantize"] == 2
    succeeded = [event for event in events(session_factory, job_id) if event.message.startswith("job succeeded")]
    assert len(succeeded) == 1
    with session_factory() as session:
        assert session.query(Tag).count() == 1


def test_cancel_running_job_then_retry_resumes(submit_job, start_worker, session_factory, control_dir, fake_api):
    (control_dir / "hold-allocate").touch()
    worker = start_worker()
    job_id = submit_job()
    wait_for(lambda: run_counts(control_dir)["start allocate"] == 1, 60, "allocate did not start")

    response = fake_api.post(f"/v1/jobs/{job_id}/cancel", headers=auth(submit_job.token))
    assert response.status_code == 202
    job = wait_for_state(session_factory, job_id, {"cancelled"}, 30, worker)
    assert stage_state(session_factory, job_id, "sort") == "done"
    assert stage_state(session_factory, job_id, "allocate") == "pending"

    (control_dir / "hold-allocate").unlink()
    assert fake_api.post(f"/v1/jobs/{job_id}/retry", headers=auth(submit_job.token)).status_code == 202
    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 60, worker)
    assert job.state == "succeeded", job.error
    counts = run_counts(control_dir)
    assert counts["start calibrate"] == 1
    assert counts["start sort"] == 1
    assert counts["start allocate"] == 2
    assert counts["finish allocate"] == 1


def test_failing_stage_retries_then_fails_keeping_checkpoints(
    submit_job, start_worker, session_factory, control_dir, fake_api
):
    (control_dir / "fail-finetune").touch()
    worker = start_worker()
    job_id = submit_job()
    job = wait_for_state(session_factory, job_id, {"failed", "succeeded"}, 60, worker)
    assert job.state == "failed"
    assert "simulated crash in finetune (after 1 retries)" in job.error
    assert run_counts(control_dir)["start finetune"] == 2
    assert stage_state(session_factory, job_id, "allocate") == "done"
    assert stage_state(session_factory, job_id, "finetune") == "failed"

    (control_dir / "fail-finetune").unlink()
    fake_api.post(f"/v1/jobs/{job_id}/retry", headers=auth(submit_job.token))
    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 60, worker)
    assert job.state == "succeeded", job.error
    assert run_counts(control_dir)["start allocate"] == 1


def test_bad_input_fails_without_retry(submit_job, start_worker, session_factory, control_dir):
    (control_dir / "reject-sort").touch()
    worker = start_worker()
    job_id = submit_job()
    job = wait_for_state(session_factory, job_id, {"failed", "succeeded"}, 60, worker)
    assert job.state == "failed"
    assert job.error == "simulated bad input in sort"
    assert run_counts(control_dir)["start sort"] == 1
    assert read_job(session_factory, job_id).stages[1].attempts == 1


def test_stage_tasks_cover_the_pipeline():
    """The worker registers a task for every stage of the real pipeline."""
    from uniql.pipeline import STAGES

    assert tuple(STAGES) == STAGE_NAMES


def test_duplicate_delivery_waits_for_live_lease(submit_job, start_worker, session_factory, control_dir):
    """A visibility timeout shorter than the stage makes Redis deliver the message again; it must not run twice."""
    (control_dir / "hold-allocate").touch()
    first = start_worker(fast_restore=True, visibility_timeout_seconds=2)
    second = start_worker(fast_restore=True, visibility_timeout_seconds=2)
    job_id = submit_job()
    wait_for(lambda: run_counts(control_dir)["start allocate"] == 1, 60, "allocate did not start")
    wait_for(lambda: "is running on" in first.log_tail(400) + second.log_tail(400), 60,
             "the message of the running stage was not delivered a second time")

    (control_dir / "hold-allocate").unlink()
    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 60, first)
    assert job.state == "succeeded", job.error
    counts = run_counts(control_dir)
    assert counts["start allocate"] == 1
    assert counts["finish allocate"] == 1


def test_pool_process_killed_mid_stage_finishes_once(submit_job, start_worker, session_factory, control_dir):
    """The kernel's OOM killer takes the process running the stage; the worker's main process survives."""
    (control_dir / "hold-quantize").touch()
    worker = start_worker()
    job_id = submit_job()
    wait_for(lambda: run_counts(control_dir)["start quantize"] == 1, 60, "quantize did not start")
    line = next(line for line in (control_dir / "runs.log").read_text().splitlines() if line.startswith("start quantize"))
    os.kill(int(line.split()[-1]), signal.SIGKILL)
    (control_dir / "hold-quantize").unlink()

    job = wait_for_state(session_factory, job_id, {"succeeded", "failed"}, 90, worker)
    assert job.state == "succeeded", job.error
    counts = run_counts(control_dir)
    assert counts["start quantize"] == 2
    assert counts["finish quantize"] == 1
    assert "WorkerLostError" in worker.log_tail(400)
