"""Metric jobs: the coalesced refresh of a unit's ancestor chain, the set-based
refresh of every dirty unit (bulk writes), the reconcile and the daily refresh
of the figures that change with the date alone (overdue, reports expected)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from jobs import current_job_id, portal_job
from portal.extensions import db

log = logging.getLogger(__name__)
RECONCILE_ID = "metrics-reconcile"
DAILY_ID = "metrics-daily"
#: How often the scheduled reconcile runs (RQ's scheduler, or the embedded thread).
RECONCILE_EVERY = timedelta(hours=1)
#: The daily refresh runs this long after midnight, Beijing time.
DAILY_AFTER_MIDNIGHT = timedelta(minutes=5)


@portal_job
def refresh_unit(unit_id: int) -> int:
    """Refresh a unit's own figures and its ancestors' subtree figures; a no-op when another
    refresh already covered every write (a coalesced duplicate)."""
    from portal import metrics

    metrics.claim([unit_id])
    db.session.commit()
    if not metrics.is_dirty(unit_id):
        return 0
    touched = metrics.refresh_chain(unit_id)
    db.session.commit()
    log.info("job %s: metrics of unit %s refreshed, %d figures written", current_job_id(), unit_id, touched)
    return touched


@portal_job
def refresh_dirty() -> int:
    """Refresh every dirty unit set-based (after a write that touched many units)."""
    from portal import metrics

    metrics.claim()
    db.session.commit()
    ids = metrics.dirty_unit_ids()
    touched = metrics.refresh_units(ids) if ids else 0
    db.session.commit()
    log.info("job %s: metrics of %d dirty units refreshed, %d figures written", current_job_id(), len(ids), touched)
    return touched


@portal_job
def reconcile() -> dict:
    """Compare every stored figure with the source rows, repair and count what had drifted."""
    from portal import metrics

    return metrics.reconcile()


@portal_job
def daily_overdue() -> dict:
    """Just after midnight, Beijing time: the figures that change with the date alone."""
    from portal import metrics

    return metrics.rebuild_all([key for key, family in metrics.FAMILIES.items() if family.dated])


def next_daily_run(now_local: datetime) -> datetime:
    """The next local time just after midnight."""
    midnight = datetime.combine(now_local.date() + timedelta(days=1), datetime.min.time())
    return midnight + DAILY_AFTER_MIDNIGHT


# --- scheduling on RQ (the worker starts the chains; each run schedules the next) ---------------

def schedule(app) -> None:
    """Start the reconcile and daily chains on RQ's scheduler (idempotent: fixed job ids)."""
    from portal.clock import aware_local, local_now
    from portal.queue import rq_queue

    queue = rq_queue(app)
    with app.app_context():
        daily_at = aware_local(next_daily_run(local_now()))
    queue.enqueue_at(daily_at, "jobs.metrics.scheduled_daily", job_id=DAILY_ID)
    queue.enqueue_in(RECONCILE_EVERY, "jobs.metrics.scheduled_reconcile", job_id=RECONCILE_ID)


@portal_job
def scheduled_reconcile() -> dict:
    from flask import current_app

    from portal.queue import rq_queue

    try:
        return reconcile()
    finally:
        rq_queue(current_app).enqueue_in(RECONCILE_EVERY, "jobs.metrics.scheduled_reconcile", job_id=RECONCILE_ID)


@portal_job
def scheduled_daily() -> dict:
    from flask import current_app

    from portal.clock import aware_local, local_now
    from portal.queue import rq_queue

    try:
        return daily_overdue()
    finally:
        rq_queue(current_app).enqueue_at(aware_local(next_daily_run(local_now())), "jobs.metrics.scheduled_daily",
                                         job_id=DAILY_ID)
