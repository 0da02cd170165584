"""Worker life-cycle hooks: fresh database connections per pool process, recovery loop in the main one."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown

from workers import context
from workers.recovery import RecoveryLoop

logger = logging.getLogger(__name__)

_loop: RecoveryLoop | None = None


@worker_process_init.connect
def on_worker_process_init(**_: Any) -> None:
    context.reset_after_fork()


@worker_ready.connect
def on_worker_ready(**_: Any) -> None:
    global _loop
    _loop = RecoveryLoop(context.settings().recovery_interval_seconds)
    _loop.start()
    logger.info("worker ready: recovery loop every %.0f s", context.settings().recovery_interval_seconds)


@worker_shutdown.connect
def on_worker_shutdown(**_: Any) -> None:
    if _loop is not None:
        _loop.stop()
