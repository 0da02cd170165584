"""Sending job messages to the workers through the Celery broker, by task name only.

The API never imports the worker code: it sends ``uniql.job.advance`` with the job id, and the
worker that receives it runs the job's next unfinished stage.
"""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

ADVANCE_TASK = "uniql.job.advance"
# With this policy, publishing to a broker that is down gives up after about 2 s. The job then
# stays queued, and a worker's recovery loop sends it later.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


class JobQueue:
    def __init__(self, broker_url: str, queue_name: str, visibility_timeout_seconds: int):
        self.queue_name = queue_name
        self.app = Celery("uniql-api", broker=broker_url, set_as_current=False)
        self.app.conf.update(
            broker_transport_options={
                "visibility_timeout": visibility_timeout_seconds,
                "socket_connect_timeout": 2,
                "socket_timeout": 5,
            },
            broker_connection_retry_on_startup=False,
            task_ignore_result=True,
        )

    def send_advance(self, job_id: str) -> bool:
        """Ask a worker to run the job's next stage; return False (and log) when the broker is unreachable."""
        try:
            self.app.send_task(
                ADVANCE_TASK, args=[job_id], queue=self.queue_name, retry=True, retry_policy=PUBLISH_RETRY_POLICY
            )
        except (OperationalError, OSError) as error:
            logger.warning("job %s stays queued: the broker is unreachable (%s); a worker will enqueue it later", job_id, error)
            return False
        return True

    def ping(self) -> bool:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except (OperationalError, OSError) as error:
            logger.warning("broker ping failed: %s", error)
            return False
        return True

    def close(self) -> None:
        self.app.close()
