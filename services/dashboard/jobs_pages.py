"""Dashboard pages of compression jobs: the list, one job's timeline and log, cancel and retry.

The list polls its fragment URL (``?fragment=1``) every 2 seconds, and a job page polls until the
job ends, so progress shows without reloading. A fragment is the template that its page includes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from services.dashboard.session import (
    PREFIX,
    CsrfUserDep,
    UserDep,
    render,
    render_error,
)
from services.db.models import JobEvent
from services.deps import QueueDep, SessionDep
from services.errors import ServiceError
from services.jobs import (
    TERMINAL_STATES,
    cancel_job,
    enqueue_job,
    get_job,
    list_jobs,
    retry_job,
    to_public,
)
from services.naming import ID_PATTERN
from services.schemas.jobs import JobPublic, JobState

router = APIRouter()

JobId = Annotated[str, Path(pattern=ID_PATTERN)]
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
LOG_EVENT_LIMIT = 500


def stage_rows(job: JobPublic) -> list[dict[str, Any]]:
    """Return one row per stage with its duration in seconds (None until it has started and ended)."""
    rows = []
    for stage in job.stages:
        rows.append({"stage": stage, "seconds": _seconds_between(stage.started_at, stage.finished_at)})
    return rows


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@router.get("/jobs", response_class=HTMLResponse)
def read_jobs_page(
    request: Request,
    session: SessionDep,
    user: UserDep,
    state: JobState | None = None,
    fragment: Annotated[bool, Query(description="Return only the table, for polling.")] = False,
) -> HTMLResponse:
    try:
        user.require("submit")
        jobs, total = list_jobs(session, user.principal, state, None, None, 100, 0)
    except ServiceError as error:
        return render_error(request, user, error)
    items = [to_public(job) for job in jobs]
    live = any(job.state not in TERMINAL_STATES for job in items)
    template = "jobs_table.html" if fragment else "jobs.html"
    return render(request, template, user, jobs=items, total=total, state=state, states=JOB_STATES, live=live)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def read_job_page(
    request: Request,
    job_id: JobId,
    session: SessionDep,
    user: UserDep,
    fragment: Annotated[bool, Query(description="Return only the live part, for polling.")] = False,
) -> HTMLResponse:
    try:
        user.require("submit")
        job = to_public(get_job(session, user.principal, job_id))
    except ServiceError as error:
        return render_error(request, user, error)
    events = list(session.scalars(
        select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc()).limit(LOG_EVENT_LIMIT)
    ))
    events.reverse()
    total_seconds = _seconds_between(job.started_at, job.finished_at)
    template = "job_live.html" if fragment else "job.html"
    return render(
        request, template, user, job=job, stages=stage_rows(job), events=events, total_seconds=total_seconds,
        live=job.state not in TERMINAL_STATES, can_cancel=job.state in ("queued", "running"),
        can_retry=job.state in ("failed", "cancelled"),
    )


@router.post("/jobs/{job_id}/cancel", response_model=None)
def cancel_job_from_page(
    request: Request, job_id: JobId, session: SessionDep, user: CsrfUserDep
) -> HTMLResponse | RedirectResponse:
    try:
        user.require("submit")
        cancel_job(session, user.principal, job_id)
    except ServiceError as error:
        return render_error(request, user, error)
    return RedirectResponse(f"{PREFIX}/jobs/{job_id}", status_code=303)


@router.post("/jobs/{job_id}/retry", response_model=None)
def retry_job_from_page(
    request: Request, job_id: JobId, session: SessionDep, queue: QueueDep, user: CsrfUserDep
) -> HTMLResponse | RedirectResponse:
    try:
        user.require("submit")
        job = retry_job(session, user.principal, job_id)
    except ServiceError as error:
        return render_error(request, user, error)
    enqueue_job(session, queue, job)
    return RedirectResponse(f"{PREFIX}/jobs/{job_id}", status_code=303)
