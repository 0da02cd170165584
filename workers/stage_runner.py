"""Claiming, running and finishing one pipeline stage of a job, exactly once.

A stage runs only after its worker has *claimed* it in the database while holding the job's row
lock: the stage must be pending, or running under a lease that has expired because its worker
died. The worker renews the lease while it runs and marks the stage done only if it still owns
the lease. A duplicate message therefore finds the stage done (and moves on) or leased by a live
worker (and waits), and never runs a finished stage again.

NOTE: a worker that is alive but cannot reach the database for longer than the lease looks dead,
so another worker takes the stage over while the first one still runs it until its next renewal.
The pipeline writes checkpoints atomically, so the result stays consistent, but the work is done twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from services.db.base import utcnow
from services.db.models import Job, JobStage
from services.jobs import TERMINAL_STATES, add_event, lock_job
from services.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A stage this worker now owns, with what it needs to run it."""

    job_id: str
    stage: str
    position: int
    stage_count: int
    attempt: int
    config: dict[str, Any]
    source_model_id: str


@dataclass(frozen=True)
class Skip:
    """A reason not to run the stage for this message. With ``dispatch``, the job is sent on to its next stage."""

    reason: str
    dispatch: bool = False
    wait_seconds: float | None = None  # set when another live worker owns the stage


def _stage(job: Job, name: str) -> JobStage | None:
    return next((stage for stage in job.stages if stage.name == name), None)


def claim_stage(session: Session, job_id: str, name: str, owner: str, settings: Settings) -> Claim | Skip:
    """Take ownership of stage ``name`` of the job, or return the reason this message must not run it."""
    job = lock_job(session, job_id)
    if job is None:
        return Skip(f"job {job_id} does not exist")
    if job.state in TERMINAL_STATES:
        session.rollback()
        return Skip(f"job {job_id} is {job.state}")
    if job.cancel_requested:
        mark_cancelled(session, job, name)
        return Skip(f"job {job_id} was cancelled")
    stage = _stage(job, name)
    if stage is None:
        session.rollback()
        return Skip(f"job {job_id} has no stage {name!r}")
    if stage.state == "done":
        session.rollback()
        return Skip(f"stage {name} of job {job_id} is already done", dispatch=True)
    if any(earlier.state != "done" for earlier in job.stages if earlier.position < stage.position):
        session.rollback()
        return Skip(f"stage {name} of job {job_id} has unfinished earlier stages", dispatch=True)

    now = utcnow()
    if stage.state == "running" and stage.lease_expires_at is not None and stage.lease_expires_at > now:
        session.rollback()
        wait = (stage.lease_expires_at - now).total_seconds()
        return Skip(f"stage {name} of job {job_id} is running on {stage.lease_owner}", wait_seconds=wait)
    if stage.attempts >= settings.max_stage_attempts:
        mark_failed(session, job, name, (
            f"stage {name} started {stage.attempts} times without finishing (worker crashes or lost workers); "
            "check the worker logs and memory, then retry the job"
        ))
        return Skip(f"stage {name} of job {job_id} ran out of attempts")

    if stage.state == "running":
        logger.warning("job %s stage %s: lease of %s expired; taking over", job_id, name, stage.lease_owner)
    stage.state = "running"
    stage.attempts += 1
    stage.lease_owner = owner
    stage.lease_expires_at = now + timedelta(seconds=settings.stage_lease_seconds)
    stage.started_at = stage.started_at or now
    stage.error = None
    job.state = "running"
    job.current_stage = name
    job.started_at = job.started_at or now
    add_event(session, job.id, "stage", f"stage {name} started (attempt {stage.attempts})", stage=name)
    claim = Claim(job_id, name, stage.position, len(job.stages), stage.attempts, dict(job.config), job.source_model_id)
    session.commit()
    return claim


def finish_stage(session: Session, claim: Claim, owner: str, metrics: dict[str, Any], seconds: float) -> bool:
    """Mark the stage done if this worker still owns it; return False when the lease was lost."""
    job = lock_job(session, claim.job_id)
    stage = _stage(job, claim.stage) if job is not None else None
    if job is None or stage is None or stage.state != "running" or stage.lease_owner != owner:
        session.rollback()
        logger.warning("job %s stage %s: finished, but the lease was lost; not recording it", claim.job_id, claim.stage)
        return False
    stage.state = "done"
    stage.finished_at = utcnow()
    stage.metrics = _json_safe(metrics)
    stage.lease_owner = None
    stage.lease_expires_at = None
    job.progress = (claim.position + 1) / claim.stage_count
    add_event(session, job.id, "stage", f"stage {claim.stage} finished in {seconds:.1f} s", stage=claim.stage,
              fraction=1.0, metrics=stage.metrics)
    session.commit()
    return True


def release_stage(session: Session, claim: Claim, owner: str, error: str) -> None:
    """Give the stage back after an error that will be retried, so the retry can claim it at once."""
    job = lock_job(session, claim.job_id)
    stage = _stage(job, claim.stage) if job is not None else None
    if job is not None and stage is not None and stage.lease_owner == owner:
        stage.state = "pending"
        stage.lease_owner = None
        stage.lease_expires_at = None
        stage.error = error
        add_event(session, job.id, "log", f"stage {claim.stage} failed, will retry: {error}", stage=claim.stage)
    session.commit()


def mark_failed(session: Session, job: Job, stage_name: str, error: str) -> None:
    """Fail the job (its row must be locked); finished stages and checkpoints are kept for a retry."""
    stage = _stage(job, stage_name)
    if stage is not None and stage.state != "done":
        stage.state = "failed"
        stage.error = error
        stage.lease_owner = None
        stage.lease_expires_at = None
    job.state = "failed"
    job.error = error
    job.finished_at = utcnow()
    add_event(session, job.id, "state", f"job failed in stage {stage_name}: {error}", stage=stage_name)
    session.commit()
    logger.error("job %s failed in stage %s: %s", job.id, stage_name, error)


def mark_cancelled(session: Session, job: Job, stage_name: str) -> None:
    stage = _stage(job, stage_name)
    if stage is not None and stage.state == "running":
        stage.state = "pending"
        stage.lease_owner = None
        stage.lease_expires_at = None
    job.state = "cancelled"
    job.finished_at = utcnow()
    add_event(session, job.id, "state", f"job cancelled during stage {stage_name}", stage=stage_name)
    session.commit()
    logger.info("job %s cancelled during stage %s", job.id, stage_name)


def next_stage(session: Session, job_id: str) -> tuple[str | None, bool]:
    """Return the first unfinished stage of a live job (None when all are done) and whether the job is live."""
    job = session.get(Job, job_id)
    if job is None or job.state in TERMINAL_STATES:
        return None, False
    pending = [stage.name for stage in job.stages if stage.state != "done"]
    return (pending[0] if pending else None), True


def _json_safe(metrics: dict[str, Any]) -> dict[str, Any]:
    """Keep the metrics that JSON can store; numpy scalars become Python numbers."""
    safe: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, (str, int, float, bool, list, dict)) or value is None:
            safe[str(key)] = value
        else:
            safe[str(key)] = repr(value)
    return safe


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
