"""Helpers that run beside a stage: lease renewal with the cancel check, progress events and log capture."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.db.base import utcnow
from services.db.models import Job, JobStage
from services.jobs import add_event

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0
MAX_LOG_EVENTS_PER_STAGE = 2000


class LeaseKeeper:
    """Renew the stage's lease from a background thread and watch for a cancel request.

    ``should_cancel()`` turns True when the job is cancelled or when another worker has taken
    the lease over (this one was presumed dead), so the stage stops at its next check.
    """

    def __init__(self, sessions: sessionmaker[Session], job_id: str, stage: str, owner: str, lease_seconds: int):
        self.sessions = sessions
        self.job_id = job_id
        self.stage = stage
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.interval = min(lease_seconds / 3.0, 5.0)
        self.cancel_requested = False
        self.lease_lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}-{stage}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join()

    def should_cancel(self) -> bool:
        return self.cancel_requested or self.lease_lost

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew()
            except SQLAlchemyError as error:
                logger.warning("job %s stage %s: lease renewal failed, will retry: %s", self.job_id, self.stage, error)

    def renew(self) -> None:
        with self.sessions() as session:
            renewed = session.execute(
                update(JobStage)
                .where(JobStage.job_id == self.job_id, JobStage.name == self.stage, JobStage.lease_owner == self.owner)
                .values(lease_expires_at=utcnow() + self.lease)
            ).rowcount
            cancel = session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id))
            session.commit()
        if renewed == 0 and not self.lease_lost:
            logger.warning("job %s stage %s: lease taken over by another worker; stopping", self.job_id, self.stage)
            self.lease_lost = True
        if cancel and not self.cancel_requested:
            logger.info("job %s: cancel requested; stopping stage %s", self.job_id, self.stage)
            self.cancel_requested = True


class ProgressRecorder(logging.Handler):
    """Store the pipeline's progress reports and INFO log lines as job events.

    Progress is written at most once a second (and always at fraction 1), so a stage that
    reports per step does not flood the database.
    """

    def __init__(self, sessions: sessionmaker[Session], job_id: str, stage: str, position: int, stage_count: int):
        super().__init__(level=logging.INFO)
        self.sessions = sessions
        self.job_id = job_id
        self.stage = stage
        self.position = position
        self.stage_count = stage_count
        self._last_write = 0.0
        self._log_events = 0
        self._lock = threading.Lock()

    def on_progress(self, event: Any) -> None:
        """Record a ``uniql.pipeline.ProgressEvent`` (stage, fraction, message, metrics)."""
        now = time.monotonic()
        fraction = min(max(float(event.fraction), 0.0), 1.0)
        if fraction < 1.0 and now - self._last_write < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_write = now
        overall = (self.position + fraction) / self.stage_count
        with self._lock, self.sessions() as session:
            add_event(session, self.job_id, "progress", str(event.message), stage=self.stage, fraction=fraction,
                      metrics=dict(event.metrics) if event.metrics else None)
            session.execute(update(Job).where(Job.id == self.job_id).values(progress=overall))
            session.commit()

    def emit(self, record: logging.LogRecord) -> None:
        if self._log_events >= MAX_LOG_EVENTS_PER_STAGE:
            return
        self._log_events += 1
        message = self.format(record)
        if self._log_events == MAX_LOG_EVENTS_PER_STAGE:
            message = f"{message} (log limit of {MAX_LOG_EVENTS_PER_STAGE} lines reached; later lines are not stored)"
        try:
            with self._lock, self.sessions() as session:
                add_event(session, self.job_id, "log", message, stage=self.stage)
                session.commit()
        except SQLAlchemyError:
            self.handleError(record)

    def __enter__(self) -> ProgressRecorder:
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.getLogger("uniql").addHandler(self)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        logging.getLogger("uniql").removeHandler(self)
