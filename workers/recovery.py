"""Re-sending jobs whose messages were lost: broker outages, broker data loss, dead workers.

Every worker runs this loop in its main process. Sending a job twice is harmless, because
stage claims in the database decide who runs what.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from services.db.base import utcnow
from services.db.models import Job, JobStage
from services.settings import Settings
from workers import context

logger = logging.getLogger(__name__)


def stalled_job_ids(session: Session, settings: Settings) -> list[str]:
    """Return jobs that no message is likely to move on.

    - queued and never sent (broker down at creation), or sent longer ago than the requeue age;
    - running with a stage whose lease expired more than a lease period ago (its worker died);
    - running with no stage running and no change for the requeue age (a message between stages was lost).
    """
    now = utcnow()
    requeue_before = now - timedelta(seconds=settings.requeue_after_seconds)
    lease = timedelta(seconds=settings.stage_lease_seconds)
    not_recently_sent = or_(Job.enqueued_at.is_(None), Job.enqueued_at < now - lease)

    queued = select(Job.id).where(
        Job.state == "queued", or_(Job.enqueued_at.is_(None), Job.enqueued_at < requeue_before)
    )
    dead_stage = select(Job.id).join(JobStage, JobStage.job_id == Job.id).where(
        Job.state == "running", JobStage.state == "running", JobStage.lease_expires_at < now - lease, not_recently_sent
    )
    running_stage = select(JobStage.job_id).where(JobStage.state == "running")
    idle = select(Job.id).where(
        Job.state == "running", Job.updated_at < requeue_before, Job.id.not_in(running_stage), not_recently_sent
    )
    ids: list[str] = []
    for query in (queued, dead_stage, idle):
        ids.extend(job_id for job_id in session.scalars(query) if job_id not in ids)
    return ids


def recover_jobs() -> int:
    """Send ``uniql.job.advance`` for every stalled job; return how many were sent."""
    from workers.tasks import ADVANCE_TASK, send_task

    sent = 0
    with context.session_factory()() as session:
        for job_id in stalled_job_ids(session, context.settings()):
            send_task(ADVANCE_TASK, job_id)
            job = session.get(Job, job_id)
            if job is not None:
                job.enqueued_at = utcnow()
            session.commit()
            sent += 1
            logger.info("recovery: sent stalled job %s to the workers again", job_id)
    return sent


class RecoveryLoop:
    """Run ``recover_jobs`` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="uniql-recovery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                recover_jobs()
            except (SQLAlchemyError, OSError) as error:
                logger.warning("recovery pass failed, will try again in %.0f s: %s", self.interval, error)
            except Exception as error:  # noqa: BLE001 (kombu raises its own errors while the broker is down)
                logger.warning("recovery pass failed, will try again in %.0f s: %r", self.interval, error)
            if self._stop.wait(self.interval):
                return
