"""The RQ worker entry point: ``make worker`` or ``python -m jobs.worker``.

Creates the app once, then works the portal queue with the scheduler.
``--burst`` stops when the queue is empty (used by the tests).

Jobs run in the worker's own process (:class:`PortalWorker`, RQ's
``SimpleWorker``): no fork per job, so the app, its imports, compiled
statements and the database pool stay warm from one job to the next. What
forking gave is kept another way:

* a job that hangs is stopped by its timeout (RQ's SIGALRM death penalty in
  the main thread); a job stuck where the alarm cannot reach it (inside a C
  call) is caught by the watchdog thread, which ends the whole process
  ``HARD_KILL_GRACE`` seconds after the timeout, so the supervisor starts a
  fresh worker and the recovery below queues the job again;
* a job that leaks memory, or state, is bounded by recycling: after
  ``--max-jobs`` jobs (``RQ_MAX_JOBS``, 1000) or once the process holds more
  than ``--max-memory-mb`` (``RQ_MAX_MEMORY_MB``, 512) the worker finishes
  its job and exits with status 3, and the supervisor (or ``make worker``'s
  loop) starts a new one;
* every job gets a fresh app context and database session, rolled back and
  removed when the job ends, whether it succeeded or raised (``jobs.portal_job``).

Before it takes its first job the worker requeues jobs abandoned by a killed
worker and re-sends the job outbox (jobs/recovery.py); without ``--burst`` it
also starts the self-rescheduling maintenance job that repeats this every
minute. The watchdog thread heartbeats a running job every
``RQ_HEARTBEAT_SECONDS`` (10 s); a job without a heartbeat for
``RQ_ABANDONED_AFTER`` seconds (3 heartbeats, at least 6 s) counts as
abandoned. ``--fork`` runs RQ's forking worker instead (one process per job).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Optional

from rq import SimpleWorker

log = logging.getLogger(__name__)

#: Exit status of a worker that stopped to be replaced (after --max-jobs, or above --max-memory-mb).
RECYCLE_STATUS = 3
#: Seconds after a job's timeout at which the watchdog ends a process the alarm could not interrupt.
HARD_KILL_GRACE = int(os.environ.get("RQ_HARD_KILL_GRACE", "30"))


def rss_mb() -> float:
    """The process's resident memory now (not its peak), in MB."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except OSError:  # not Linux: the peak is the best we have
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PortalWorker(SimpleWorker):
    """RQ's SimpleWorker (jobs in this process) with a heartbeat and watchdog thread per
    job and a memory check after each job."""

    max_memory_mb: Optional[float] = None
    recycle_reason: Optional[str] = None
    jobs_run = 0

    def execute_job(self, job, queue):
        self.jobs_run += 1
        done = threading.Event()
        watchdog = threading.Thread(target=self._watch, args=(job, queue, done), name="job-watchdog", daemon=True)
        watchdog.start()
        try:
            super().execute_job(job, queue)
        finally:
            done.set()
            watchdog.join()
            self._after_job()

    def _watch(self, job, queue, done: threading.Event) -> None:
        """Heartbeat the running job (the main thread is busy with it) and end the
        process if the job outlives its timeout by HARD_KILL_GRACE seconds."""
        timeout = job.timeout or queue.DEFAULT_TIMEOUT
        deadline = time.monotonic() + timeout + HARD_KILL_GRACE if timeout and timeout > 0 else None
        while not done.wait(self.job_monitoring_interval):
            if deadline is not None and time.monotonic() > deadline:
                log.critical("job %s outlived its timeout of %s s by %s s: the worker exits so that it is "
                             "replaced and the job queued again", job.id, timeout, HARD_KILL_GRACE)
                logging.shutdown()
                os._exit(RECYCLE_STATUS)
            try:
                self.maintain_heartbeats(job)
            except Exception:  # noqa: BLE001 - Redis away for a moment: the next beat tries again
                log.warning("heartbeat of job %s failed", job.id, exc_info=True)

    def unsubscribe(self):
        """RQ sends UNSUBSCRIBE and then stops its listener thread (redis-py's PubSubWorkerThread),
        which by then may be waiting up to 60 s for a subscription again, or may not have started
        yet (it raises its running flag when it starts, undoing a stop that came first): a worker
        that found the queue empty waited the full second RQ gives the join at every exit. Here the
        thread is let start, then stopped, so it ends on the UNSUBSCRIBE's own reply."""
        thread = self.pubsub_thread
        if thread:
            deadline = time.monotonic() + 1
            while thread.is_alive() and not thread._running.is_set() and time.monotonic() < deadline:
                time.sleep(0.001)
            thread.stop()
        super().unsubscribe()

    def _after_job(self) -> None:
        if self.max_memory_mb is not None:
            used = rss_mb()
            if used > self.max_memory_mb:
                self.recycle_reason = f"memory {used:.0f} MB > {self.max_memory_mb:.0f} MB"
                log.warning("worker %s: %s, stopping to be replaced", self.name, self.recycle_reason)
                self._stop_requested = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--max-jobs", type=int, default=int(os.environ.get("RQ_MAX_JOBS", "1000")),
                        help="exit (status 3) after this many jobs, to be replaced (RQ_MAX_JOBS, 1000; 0: never)")
    parser.add_argument("--max-memory-mb", type=float, default=float(os.environ.get("RQ_MAX_MEMORY_MB", "512")),
                        help="exit (status 3) after a job that leaves the process above this size "
                             "(RQ_MAX_MEMORY_MB, 512; 0: never)")
    parser.add_argument("--fork", action="store_true", help="RQ's forking worker: a process per job")
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
        db.engine.dispose()  # no pooled connection may be shared with forked processes (the scheduler)
    if not args.burst:
        # The reminder sweep and the maintenance reschedule themselves; start the chains
        # (same job ids: no duplicates).
        from jobs.meetings import REMINDER_SWEEP_ID

        queue = rq_queue(app)
        queue.enqueue("jobs.meetings.send_reminders", True, job_id=REMINDER_SWEEP_ID)
        schedule_maintenance(app)
        from jobs.metrics import schedule as schedule_metrics

        schedule_metrics(app)  # the metrics reconcile every hour, the daily refresh after midnight
    worker_class = Worker if args.fork else PortalWorker
    worker = worker_class([rq_queue(app)], connection=redis_connection(app),
                          job_monitoring_interval=HEARTBEAT_SECONDS)
    if isinstance(worker, PortalWorker) and args.max_memory_mb > 0:
        worker.max_memory_mb = args.max_memory_mb
    max_jobs = args.max_jobs if args.max_jobs > 0 else None
    worker.work(burst=args.burst, with_scheduler=True, max_jobs=max_jobs)
    if isinstance(worker, PortalWorker) and (worker.recycle_reason or (
            max_jobs is not None and worker.jobs_run >= max_jobs)):
        return RECYCLE_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())
