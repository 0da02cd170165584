"""The Celery application of the workers, configured from ``services.settings.Settings``.

Reliability settings: a task is acknowledged only after it finishes (``acks_late``), and it is
requeued when its pool process dies (``reject_on_worker_lost``). Each worker process reserves
one message at a time. The Redis visibility timeout exceeds the longest stage, and the stage
lease in the database stops a redelivered message from running a stage twice.
"""

from __future__ import annotations

from celery import Celery

from services.settings import Settings
from workers import context


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("uniql", broker=settings.broker_url, include=["workers.tasks", "workers.signals"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=settings.queue_name,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_seconds},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


celery_app = create_celery_app(context.settings())
