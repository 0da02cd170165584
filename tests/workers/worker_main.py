"""Start a worker for the tests: ``python -m tests.workers.worker_main [--fake-pipeline] [--fast-restore] [options]``."""

from __future__ import annotations

import logging
import sys


def main() -> None:
    args = sys.argv[1:]
    if "--fake-pipeline" in args:
        args.remove("--fake-pipeline")
        from workers import context

        context.PIPELINE_MODULE = "tests.workers.fake_pipeline"
    if "--fast-restore" in args:
        # Sweep for messages past the visibility timeout every second (kombu's default is ~100 s).
        args.remove("--fast-restore")
        from workers.celery_app import celery_app

        celery_app.conf.broker_transport_options.update(unacked_restore_interval=1, unacked_restore_throttle=1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    from workers.cli import worker

    worker.main(args=args, prog_name="worker")


if __name__ == "__main__":
    main()
