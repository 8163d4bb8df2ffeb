"""The RQ worker entry point: ``make worker`` or ``python -m jobs.worker``.

Creates the app once, then works the portal queue with the scheduler.
``--burst`` stops when the queue is empty (used by the tests).
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
    from portal.queue import redis_connection, rq_queue

    app = worker_app()
    if not app.config.get("REDIS_URL"):
        print("REDIS_URL is not set: without it jobs run in-process and no worker is needed.",
              file=sys.stderr)
        return 2
    if not args.burst:
        # The reminder sweep reschedules itself; start the chain (same job id: no duplicates).
        from jobs.meetings import REMINDER_SWEEP_ID

        rq_queue(app).enqueue("jobs.meetings.send_reminders", True, job_id=REMINDER_SWEEP_ID)
    worker = Worker([rq_queue(app)], connection=redis_connection(app))
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
