"""The RQ worker entry point: ``make worker`` or ``python -m jobs.worker``.

Creates the app once, then works the portal queue with the scheduler.
``--burst`` stops when the queue is empty (used by the tests).

Before it takes its first job the worker requeues jobs abandoned by a killed
worker and re-sends the job outbox (jobs/recovery.py); without ``--burst`` it
also starts the self-rescheduling maintenance job that repeats this every
minute. It heartbeats a running job every ``RQ_HEARTBEAT_SECONDS`` (10 s); a
job without a heartbeat for ``RQ_ABANDONED_AFTER`` seconds (3 heartbeats, at
least 6 s) counts as abandoned.
"""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from rq import Worker

    from jobs import worker_app
    from jobs.recovery import HEARTBEAT_SECONDS, run_maintenance, schedule_maintenance
    from portal.extensions import db
    from portal.queue import redis_connection, rq_queue

    app = worker_app()
    if not app.config.get("REDIS_URL"):
        print("REDIS_URL is not set: without it jobs run in-process and no worker is needed.",
              file=sys.stderr)
        return 2
    run_maintenance(app)
    with app.app_context():
        db.engine.dispose()  # no pooled connection may be shared with the forked work horses
    if not args.burst:
        # The reminder sweep and the maintenance reschedule themselves; start the chains
        # (same job ids: no duplicates).
        from jobs.meetings import REMINDER_SWEEP_ID

        queue = rq_queue(app)
        queue.enqueue("jobs.meetings.send_reminders", True, job_id=REMINDER_SWEEP_ID)
        schedule_maintenance(app)
        from jobs.metrics import schedule as schedule_metrics

        schedule_metrics(app)  # the metrics reconcile every hour, the daily refresh after midnight
    worker = Worker([rq_queue(app)], connection=redis_connection(app), job_monitoring_interval=HEARTBEAT_SECONDS)
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
