"""Compression jobs: creation with idempotency keys, listing, cancel, retry and row locking.

Job states: ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``. A failed or
cancelled job can be retried; it then resumes after its last finished stage.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth import Principal, accessible_namespace_ids, resolve_namespace
from services.db.base import utcnow
from services.db.models import Job, JobEvent, JobStage, SourceModel
from services.errors import ConflictError, NotFoundError, UnprocessableError
from services.pipeline_contract import stage_names, validate_config, validate_model
from services.queue import JobQueue
from services.schemas.jobs import JobCreate, JobPublic, JobStagePublic
from services.settings import Settings
from services.sources import materialize_source
from services.store import ArtifactStore

logger = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
RETRYABLE_STATES = frozenset({"failed", "cancelled"})


def lock_job(session: Session, job_id: str) -> Job | None:
    """Lock the job's row until the transaction ends, on PostgreSQL and SQLite alike, and return it.

    The UPDATE takes PostgreSQL's row lock and SQLite's database write lock, which a plain
    ``SELECT ... FOR UPDATE`` would not do on SQLite.
    """
    result = session.execute(update(Job).where(Job.id == job_id).values(lock_version=Job.lock_version + 1))
    if result.rowcount == 0:
        return None
    return session.scalar(select(Job).where(Job.id == job_id).execution_options(populate_existing=True))


def add_event(
    session: Session,
    job_id: str,
    kind: str,
    message: str,
    stage: str | None = None,
    fraction: float | None = None,
    metrics: dict[str, Any] | None = None,
) -> None:
    session.add(JobEvent(job_id=job_id, kind=kind, message=message, stage=stage, fraction=fraction, metrics=metrics))


def request_fingerprint(body: JobCreate, namespace_id: int) -> str:
    canonical = json.dumps({"namespace_id": namespace_id, **body.model_dump(exclude={"namespace"})}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def create_job(
    session: Session,
    principal: Principal,
    body: JobCreate,
    idempotency_key: str | None,
    settings: Settings,
    store: ArtifactStore,
) -> tuple[Job, bool]:
    """Validate and insert a job; return it and whether it is new (False: an idempotent replay)."""
    namespace = resolve_namespace(session, principal, body.namespace)
    fingerprint = request_fingerprint(body, namespace.id)
    if idempotency_key is not None:
        existing = _find_by_key(session, namespace.id, idempotency_key, fingerprint)
        if existing is not None:
            return existing, False

    source = session.get(SourceModel, body.source_model_id)
    if source is None or source.namespace_id != namespace.id:
        raise NotFoundError(f"source model {body.source_model_id} not found in namespace {namespace.name!r}; upload it first")
    compress_config = validate_config(body.config, settings.allow_text_paths)
    # NOTE: this unpacks the whole source model on the API host. On the S3 backend a large model
    # is downloaded here once, and the unpacked copy is cached.
    validate_model(materialize_source(store, source.id, source.root, settings.local_cache_path), compress_config)

    job = Job(
        namespace_id=namespace.id,
        source_model_id=source.id,
        model_name=body.model,
        tag=body.tag,
        config=compress_config.to_dict(),
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        stages=[JobStage(position=index, name=name) for index, name in enumerate(stage_names())],
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        # A concurrent request with the same key won the race, so return its job.
        session.rollback()
        existing = _find_by_key(session, namespace.id, idempotency_key or "", fingerprint)
        if existing is None:
            raise
        return existing, False
    add_event(session, job.id, "state", f"job created: {namespace.name}/{job.model_name}:{job.tag}, queued")
    session.commit()
    logger.info("job %s created in namespace %s for %s:%s", job.id, namespace.name, job.model_name, job.tag)
    return job, True


def _find_by_key(session: Session, namespace_id: int, key: str, fingerprint: str) -> Job | None:
    job = session.scalar(select(Job).where(Job.namespace_id == namespace_id, Job.idempotency_key == key))
    if job is not None and job.request_hash != fingerprint:
        raise UnprocessableError(
            f"Idempotency-Key {key!r} was already used for job {job.id} with a different request body; "
            "send a new key for a new job, or the same body to get that job back"
        )
    return job


def enqueue_job(session: Session, queue: JobQueue, job: Job) -> None:
    """Send the job to the workers and record when; a broker outage leaves it for the recovery loop."""
    if queue.send_advance(job.id):
        session.execute(update(Job).where(Job.id == job.id).values(enqueued_at=utcnow()))
        session.commit()


def get_job(session: Session, principal: Principal, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or not principal.can_access(job.namespace_id):
        raise NotFoundError(f"job {job_id} not found; list jobs with GET /v1/jobs")
    return job


def list_jobs(
    session: Session,
    principal: Principal,
    state: str | None,
    namespace: str | None,
    model: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Job], int]:
    """Return one page of jobs, newest first, and the total count matching the filters."""
    query = select(Job)
    namespace_ids = accessible_namespace_ids(session, principal, namespace)
    if namespace_ids is not None:
        query = query.where(Job.namespace_id.in_(namespace_ids))
    if state is not None:
        query = query.where(Job.state == state)
    if model is not None:
        query = query.where(Job.model_name == model)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset))
    return list(items), total


def cancel_job(session: Session, principal: Principal, job_id: str) -> Job:
    """Cancel a queued job at once, or ask the worker running it to stop at its next check."""
    get_job(session, principal, job_id)
    job = lock_job(session, job_id)
    assert job is not None
    if job.state in TERMINAL_STATES:
        session.rollback()
        raise ConflictError(f"job {job_id} is {job.state}; only queued or running jobs can be cancelled")
    if job.state == "queued":
        job.state = "cancelled"
        job.finished_at = utcnow()
        add_event(session, job.id, "state", "job cancelled before it started")
    else:
        job.cancel_requested = True
        add_event(session, job.id, "state", f"cancel requested during stage {job.current_stage}")
    session.commit()
    logger.info("job %s: cancel requested (state %s)", job_id, job.state)
    return job


def retry_job(session: Session, principal: Principal, job_id: str) -> Job:
    """Queue a failed or cancelled job again; finished stages are kept and not run again."""
    get_job(session, principal, job_id)
    job = lock_job(session, job_id)
    assert job is not None
    if job.state not in RETRYABLE_STATES:
        session.rollback()
        raise ConflictError(f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried")
    job.state = "queued"
    job.cancel_requested = False
    job.error = None
    job.finished_at = None
    job.enqueued_at = None
    job.retry_count += 1
    for stage in job.stages:
        if stage.state != "done":
            stage.state = "pending"
            stage.attempts = 0
            stage.lease_owner = None
            stage.lease_expires_at = None
    done = [stage.name for stage in job.stages if stage.state == "done"]
    add_event(session, job.id, "state", f"job retried (retry {job.retry_count}); finished stages kept: {done}")
    session.commit()
    return job


def to_public(job: Job) -> JobPublic:
    return JobPublic(
        id=job.id,
        namespace=job.namespace.name,
        source_model_id=job.source_model_id,
        model=job.model_name,
        tag=job.tag,
        reference=f"{job.namespace.name}/{job.model_name}:{job.tag}",
        config=job.config,
        state=job.state,  # type: ignore[arg-type]
        current_stage=job.current_stage,
        progress=job.progress,
        cancel_requested=job.cancel_requested,
        error=job.error,
        retry_count=job.retry_count,
        manifest_digest=job.manifest_digest,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        stages=[JobStagePublic.model_validate(stage) for stage in job.stages],
    )
