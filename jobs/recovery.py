"""Recovery of jobs when something died: the worker's own maintenance.

* :func:`requeue_abandoned`: a job whose worker was killed (SIGKILL, OOM, the
  machine went away) stays in RQ's StartedJobRegistry. RQ itself notices only
  when the entry's expiry passes (the job monitoring interval plus 60 s) and a
  worker next cleans its registries (at its start and every 10 minutes). The
  portal does not wait that long: a started job whose worker has not sent a
  heartbeat for ``abandoned_after`` seconds has its entry expired now, and RQ's
  own abandoned-job handling runs at once: with retries left (every portal job
  has ``Retry(max=3)``) the job is queued again, at once (not after the retry
  interval: the worker died, not the job), otherwise it goes to the failed
  registry. Jobs are idempotent, so the re-run gives the same result.
* :func:`maintenance`: a self-rescheduling job (every ``MAINTENANCE_EVERY``
  seconds) that runs the check above and re-sends the job outbox
  (``portal.queue.resend_outbox``). ``python -m jobs.worker`` also runs both
  once when it starts, before it takes its first job.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timezone

from jobs import portal_job

log = logging.getLogger(__name__)
MAINTENANCE_ID = "portal-maintenance"
MAINTENANCE_EVERY = int(os.environ.get("PORTAL_MAINTENANCE_SECONDS", "60"))
#: How often the worker heartbeats a running job (RQ's job_monitoring_interval).
HEARTBEAT_SECONDS = int(os.environ.get("RQ_HEARTBEAT_SECONDS", "10"))
#: A started job without a heartbeat for this long is abandoned.
ABANDONED_AFTER = int(os.environ.get("RQ_ABANDONED_AFTER", str(max(3 * HEARTBEAT_SECONDS, 6))))


def requeue_abandoned(queue, abandoned_after: int = ABANDONED_AFTER) -> list[str]:
    """Hand started jobs that lost their worker to RQ's abandoned-job handling now."""
    from rq.exceptions import NoSuchJobError
    from rq.executions import Execution
    from rq.job import Job
    from rq.utils import parse_composite_key

    registry = queue.started_job_registry
    connection = queue.connection
    now = datetime.now(timezone.utc)
    expired = []
    for entry in connection.zrange(registry.key, 0, -1):
        entry = entry.decode() if isinstance(entry, bytes) else entry
        job_id, execution_id = parse_composite_key(entry)
        try:
            Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            continue
        # The execution's heartbeat: set when the worker takes the job, renewed by the worker
        # every RQ_HEARTBEAT_SECONDS while it runs (a retried job's own fields are from its
        # last run, so they are not used). A missing execution has long expired.
        try:
            beat = Execution.fetch(execution_id, job_id, connection).last_heartbeat
        except ValueError:
            beat = None
        if beat is None or (now - beat).total_seconds() > abandoned_after:
            connection.zadd(registry.key, {entry: 1}, xx=True)  # expired long ago, in RQ's terms
            expired.append(job_id)
    if expired:
        registry.cleanup()  # RQ: retry (scheduled after the retry interval) or failed registry
        # The worker died, not the job: no reason to wait out the retry interval.
        scheduled = queue.scheduled_job_registry
        for job_id in expired:
            if job_id in scheduled.get_job_ids(cleanup=False):
                scheduled.remove(job_id)
                queue.enqueue_job(Job.fetch(job_id, connection=connection), at_front=True)
        log.warning("abandoned jobs (no worker heartbeat for %d s) handed back to RQ: %s", abandoned_after,
                    ", ".join(expired))
    return expired


def run_maintenance(app) -> dict:
    """Requeue abandoned jobs and re-send the outbox; never raises."""
    from portal.queue import resend_outbox, rq_queue

    result: dict = {}
    try:
        result["requeued"] = requeue_abandoned(rq_queue(app))
    except Exception:  # noqa: BLE001 - logged; the next run tries again
        log.exception("abandoned-job check failed")
    try:
        result["outbox"] = resend_outbox(app)
    except Exception:  # noqa: BLE001
        log.exception("outbox sweep failed")
    return result


def schedule_maintenance(app, delay: int = MAINTENANCE_EVERY) -> None:
    from datetime import timedelta

    from portal.queue import rq_queue

    rq_queue(app).enqueue_in(timedelta(seconds=delay), "jobs.recovery.maintenance", job_id=MAINTENANCE_ID)


@portal_job
def maintenance() -> dict:
    from flask import current_app

    app = current_app._get_current_object()
    result = run_maintenance(app)
    schedule_maintenance(app)
    return result
