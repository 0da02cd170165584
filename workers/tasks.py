"""Celery tasks: one per pipeline stage (``uniql.stage.<name>``), plus advance and publish.

Each task takes only a job id. ``uniql.job.advance`` sends the job's first unfinished stage, and
each stage task sends the next one when it finishes. After the last stage, ``uniql.job.publish``
copies the artifact into the registry and marks the job succeeded.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from celery import Task

from services.db.base import utcnow
from services.db.models import Job, SourceModel
from services.jobs import add_event, lock_job
from services.registry import publish_artifact
from services.sources import materialize_source
from uniql.errors import UniqlError
from workers import context
from workers.celery_app import celery_app
from workers.progress import LeaseKeeper, ProgressRecorder
from workers.stage_runner import (
    Claim,
    Skip,
    claim_stage,
    finish_stage,
    mark_cancelled,
    mark_failed,
    next_stage,
    release_stage,
)

logger = logging.getLogger(__name__)

# The stages of uniql.pipeline.STAGES, listed here so that the worker's main process does not
# import torch before it forks. A test checks that the lists agree; a job whose stage has no task
# here fails with a clear error.
STAGE_NAMES = ("calibrate", "sort", "allocate", "finetune", "quantize", "package", "evaluate")
ADVANCE_TASK = "uniql.job.advance"
PUBLISH_TASK = "uniql.job.publish"


def stage_task_name(stage: str) -> str:
    return f"uniql.stage.{stage}"


def send_task(name: str, job_id: str, countdown: float | None = None) -> None:
    celery_app.send_task(name, args=[job_id], queue=context.settings().queue_name, countdown=countdown)


def dispatch_next(job_id: str) -> None:
    """Send the task for the job's first unfinished stage, or the publish task when all are done."""
    with context.session_factory()() as session:
        stage, live = next_stage(session, job_id)
        if not live:
            return
        if stage is not None and stage not in STAGE_NAMES:
            job = lock_job(session, job_id)
            if job is not None:
                mark_failed(session, job, stage, f"this worker has no task for stage {stage!r}; upgrade the workers")
            return
    send_task(stage_task_name(stage) if stage else PUBLISH_TASK, job_id)


def run_stage_task(task: Task, job_id: str, stage: str) -> None:
    """Claim the stage, run it through ``uniql.pipeline.run_stage``, record it and send the job on."""
    settings = context.settings()
    sessions = context.session_factory()
    owner = context.worker_identity(task.request.id or "local")
    with sessions() as session:
        claim = claim_stage(session, job_id, stage, owner, settings)
    if isinstance(claim, Skip):
        _handle_skip(job_id, stage, claim)
        return

    logger.info("job %s: stage %s started (attempt %d)", job_id, stage, claim.attempt)
    started = time.monotonic()
    pipeline = context.pipeline()
    try:
        metrics = _run_pipeline_stage(pipeline, claim, owner, settings.stage_lease_seconds)
    except pipeline.Cancelled:
        with sessions() as session:
            job = lock_job(session, job_id)
            if job is not None:
                mark_cancelled(session, job, stage)
        return
    except UniqlError as error:
        # Bad input or an unsupported model: retrying cannot help.
        with sessions() as session:
            job = lock_job(session, job_id)
            if job is not None:
                mark_failed(session, job, stage, str(error))
        return
    except Exception as error:  # noqa: BLE001 (any other failure is retried, then fails the job)
        _retry_or_fail(task, claim, owner, error)
        return

    seconds = time.monotonic() - started
    with sessions() as session:
        recorded = finish_stage(session, claim, owner, metrics, seconds)
    if recorded:
        logger.info("job %s: stage %s finished in %.1f s", job_id, stage, seconds)
        dispatch_next(job_id)


def _run_pipeline_stage(pipeline: Any, claim: Claim, owner: str, lease_seconds: int) -> dict[str, Any]:
    store = context.store()
    settings = context.settings()
    sessions = context.session_factory()
    with sessions() as session:
        source = session.get(SourceModel, claim.source_model_id)
        root = source.root if source else ""
    model_dir = materialize_source(store, claim.source_model_id, root, settings.local_cache_path)
    workdir = store.open_workdir(claim.job_id)
    config = pipeline.CompressConfig.from_dict(claim.config)
    with LeaseKeeper(sessions, claim.job_id, claim.stage, owner, lease_seconds) as keeper, \
            ProgressRecorder(sessions, claim.job_id, claim.stage, claim.position, claim.stage_count) as recorder:
        metrics = pipeline.run_stage(
            claim.stage, model_dir, workdir, config, progress=recorder.on_progress, should_cancel=keeper.should_cancel
        )
    if keeper.lease_lost:
        raise RuntimeError(f"lease of stage {claim.stage} was taken over by another worker")
    store.save_workdir(claim.job_id, workdir)
    return dict(metrics or {})


def _handle_skip(job_id: str, stage: str, skip: Skip) -> None:
    if skip.wait_seconds is not None:
        # Another worker holds a live lease; look again when it would expire, so a dead holder is
        # replaced and a live one is left alone.
        delay = min(skip.wait_seconds + 1.0, float(context.settings().stage_lease_seconds))
        logger.info("%s; checking again in %.0f s", skip.reason, delay)
        send_task(stage_task_name(stage), job_id, countdown=delay)
        return
    logger.info("%s; skipping this message", skip.reason)
    if skip.dispatch:
        dispatch_next(job_id)


def _retry_or_fail(task: Task, claim: Claim, owner: str, error: Exception) -> None:
    settings = context.settings()
    retries = task.request.retries
    message = f"{type(error).__name__}: {error}"
    logger.exception("job %s: stage %s failed (retry %d of %d)", claim.job_id, claim.stage, retries,
                     settings.task_max_retries)
    with context.session_factory()() as session:
        if retries >= settings.task_max_retries:
            job = lock_job(session, claim.job_id)
            if job is not None:
                mark_failed(session, job, claim.stage, f"{message} (after {retries} retries)")
            return
        release_stage(session, claim, owner, message)
    backoff = min(settings.retry_backoff_seconds * 2**retries, settings.retry_backoff_max_seconds)
    raise task.retry(countdown=backoff * random.uniform(0.8, 1.2), max_retries=settings.task_max_retries)


def _make_stage_task(stage: str) -> Task:
    def run(self: Task, job_id: str) -> None:
        run_stage_task(self, job_id, stage)

    run.__name__ = run.__qualname__ = stage
    run.__doc__ = f"Run the {stage} stage of a job (only the job id travels in the message)."
    return celery_app.task(name=stage_task_name(stage), bind=True)(run)


STAGE_TASKS = {stage: _make_stage_task(stage) for stage in STAGE_NAMES}


@celery_app.task(name=ADVANCE_TASK)
def advance(job_id: str) -> None:
    """Send the job's next unfinished stage (what the API sends for a new or retried job)."""
    dispatch_next(job_id)


@celery_app.task(name=PUBLISH_TASK, bind=True, max_retries=3)
def publish(self: Task, job_id: str) -> None:
    """Copy the finished artifact into the registry under NAMESPACE/MODEL:TAG and mark the job succeeded."""
    sessions = context.session_factory()
    store = context.store()
    with sessions() as session:
        stage, live = next_stage(session, job_id)
        job = session.get(Job, job_id)
        if not live or stage is not None or job is None:
            logger.info("job %s: nothing to publish (finished, cancelled or stages left)", job_id)
            return
        namespace_id, model, tag = job.namespace_id, job.model_name, job.tag
    artifact_dir = store.open_workdir(job_id) / "artifact"
    try:
        with sessions() as session:
            digest = publish_artifact(session, store, artifact_dir, namespace_id, model, tag, job_id)
            session.commit()
    except UniqlError as error:
        with sessions() as session:
            job = lock_job(session, job_id)
            if job is not None:
                mark_failed(session, job, "publish", f"the artifact cannot be published: {error}")
        return
    _mark_succeeded(job_id, digest)


def _mark_succeeded(job_id: str, digest: str) -> None:
    with context.session_factory()() as session:
        job = lock_job(session, job_id)
        if job is None or job.state != "running":
            session.rollback()
            return
        job.state = "succeeded"
        job.manifest_digest = digest
        job.progress = 1.0
        job.current_stage = None
        job.finished_at = utcnow()
        reference = f"{job.namespace.name}/{job.model_name}:{job.tag}"
        add_event(session, job.id, "state", f"job succeeded: published {reference} ({digest})")
        session.commit()
    logger.info("job %s succeeded: published %s (%s)", job_id, reference, digest)
