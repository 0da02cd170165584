"""Compression jobs: create (with ``Idempotency-Key``), list, read, events, cancel and retry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.auth import SubmitPrincipal
from services.db.models import JobEvent
from services.deps import QueueDep, SessionDep, SettingsDep, StoreDep
from services.jobs import (
    cancel_job,
    create_job,
    enqueue_job,
    get_job,
    list_jobs,
    retry_job,
    to_public,
)
from services.naming import ID_PATTERN, NAME_MAX_LENGTH, NAME_PATTERN
from services.schemas.jobs import (
    JobCreate,
    JobEventList,
    JobEventPublic,
    JobList,
    JobPublic,
    JobState,
)

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[str, Path(pattern=ID_PATTERN)]
IdempotencyKey = Annotated[
    str | None,
    Header(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
           description="Client-chosen key; a retried POST with the same key and body returns the same job."),
]


@router.post("", response_model=JobPublic, status_code=201,
             responses={200: {"model": JobPublic, "description": "Replay of an earlier request with the same key"}})
def create_compression_job(
    body: JobCreate,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    queue: QueueDep,
    principal: SubmitPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Validate the pipeline config and the source model, then queue the job.

    Nothing is queued when validation fails (422 names the bad setting). A replay with the same
    ``Idempotency-Key`` and body returns 200 with the original job. The same key with another
    body returns 422.
    """
    job, created = create_job(session, principal, body, idempotency_key, settings, store)
    if job.enqueued_at is None and job.state == "queued":
        enqueue_job(session, queue, job)
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return JSONResponse(to_public(job).model_dump(mode="json"), status_code=201 if created else 200, headers=headers)


@router.get("", response_model=JobList)
def list_compression_jobs(
    session: SessionDep,
    principal: SubmitPrincipal,
    state: JobState | None = None,
    namespace: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)] = None,
    model: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JobList:
    """List jobs, newest first, filtered by state, namespace and registry model name."""
    jobs, total = list_jobs(session, principal, state, namespace, model, limit, offset)
    return JobList(items=[to_public(job) for job in jobs], total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobPublic)
def read_compression_job(job_id: JobId, session: SessionDep, principal: SubmitPrincipal) -> JobPublic:
    return to_public(get_job(session, principal, job_id))


@router.get("/{job_id}/events", response_model=JobEventList)
def list_job_events(
    job_id: JobId,
    session: SessionDep,
    principal: SubmitPrincipal,
    after: Annotated[int, Query(ge=0, le=2**62, description="Return events with an id above this.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JobEventList:
    """Return progress events, log lines, stage results and state changes in order; poll with ``after``."""
    get_job(session, principal, job_id)
    rows = list(session.scalars(
        select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after).order_by(JobEvent.id).limit(limit)
    ))
    return JobEventList(
        items=[JobEventPublic.model_validate(row) for row in rows], next_after=rows[-1].id if rows else after
    )


@router.post("/{job_id}/cancel", response_model=JobPublic, status_code=202)
def cancel_compression_job(job_id: JobId, session: SessionDep, principal: SubmitPrincipal) -> JobPublic:
    """Cancel a queued job now, or a running one at its next cancellation check (409 for finished jobs)."""
    return to_public(cancel_job(session, principal, job_id))


@router.post("/{job_id}/retry", response_model=JobPublic, status_code=202)
def retry_compression_job(
    job_id: JobId, session: SessionDep, queue: QueueDep, principal: SubmitPrincipal
) -> JobPublic:
    """Queue a failed or cancelled job again from its last finished stage (409 for other states)."""
    job = retry_job(session, principal, job_id)
    enqueue_job(session, queue, job)
    return to_public(job)
