"""The one enqueue call, dispatched after the commit.

Services call :func:`enqueue` with the dotted path of a job function in
``jobs/`` and simple arguments (ids). Nothing is sent until the database
session commits; a rollback drops the pending jobs. Without ``REDIS_URL`` the
same job runs in-process, in an app context of its own, right after the
commit; with it, the job goes to the RQ queue for ``make worker``.

With ``REDIS_URL`` the job is first written to the outbox (``job_outbox``, see
:mod:`portal.models.jobs`) in the write's own transaction. After the commit it
is handed to Redis and its row deleted. If Redis cannot be reached the write
still answers success: the row stays, the failure is logged, ``/healthz``
shows the backlog, and :func:`resend_outbox` (the worker's maintenance job,
the worker's start and the web process's sweep thread) sends it again. Jobs
are written to be safe to run twice, so a job sent twice does no harm; a job
never silently disappears.

RQ jobs carry ``Retry(max=3)``: a job that raises runs again after 10 s, 1 min
and 5 min (the worker's scheduler queues it); a job whose worker was killed is
queued again at once (``jobs.recovery.requeue_abandoned``); after three
retries it stays in RQ's failed registry.
"""
from __future__ import annotations

import importlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any, Optional

from flask import current_app, has_app_context
from sqlalchemy import delete, event, func, insert, select
from sqlalchemy.orm import Session

from portal.extensions import db

log = logging.getLogger(__name__)
_PENDING = "portal_pending_jobs"
DEFAULT_TIMEOUT = 300
#: A job that raises runs again after 10 s, 1 min and 5 min (a database restart or a
#: failover is over by then), then stays in RQ's failed registry.
RETRY_INTERVALS = [10, 60, 300]
#: A row younger than this may still be on its way to Redis from the request that wrote it.
OUTBOX_GRACE_SECONDS = 30

# What this process saw last time it could not reach Redis (shown on /healthz).
_failures = {"count": 0, "last_at": None, "last_error": None}
_failures_lock = threading.Lock()


def enqueue(path: str, *args: Any, job_id: Optional[str] = None, timeout: int = DEFAULT_TIMEOUT) -> None:
    """Queue ``path(*args)`` to run once the current transaction commits."""
    from portal.models.jobs import OutboxJob
    from portal.models._helpers import utcnow

    session = db.session()
    session.connection()  # begin the transaction, so that a rollback drops the job too
    outbox_id = None
    if current_app.config.get("REDIS_URL"):
        result = session.execute(insert(OutboxJob).values(
            path=path, args=list(args), job_id=job_id, timeout=timeout, created_at=utcnow(), attempts=0))
        outbox_id = result.inserted_primary_key[0]
    session.info.setdefault(_PENDING, []).append((path, args, job_id, timeout, outbox_id))


def discard_pending() -> int:
    """Drop the jobs queued so far in the current transaction, with their outbox rows
    (for callers that run the work themselves, e.g. the benchmark). Returns how many."""
    from portal.models.jobs import OutboxJob

    session = db.session()
    jobs = session.info.pop(_PENDING, None) or []
    ids = [job[4] for job in jobs if job[4] is not None]
    if ids:
        session.execute(delete(OutboxJob).where(OutboxJob.id.in_(ids)))
    return len(jobs)


def withdraw(path: str, *args: Any) -> int:
    """Take back the jobs ``path(*args)`` queued so far in the current transaction, with their
    outbox rows, for a caller that runs that job itself right now (the demo seed runs each
    cascade at once: without this the after-commit dispatch would run it a second time).
    Returns how many were taken back."""
    from portal.models.jobs import OutboxJob

    session = db.session()
    jobs = session.info.get(_PENDING) or []
    mine = [job for job in jobs if job[0] == path and tuple(job[1]) == tuple(args)]
    if not mine:
        return 0
    session.info[_PENDING] = [job for job in jobs if job not in mine]
    ids = [job[4] for job in mine if job[4] is not None]
    if ids:
        session.execute(delete(OutboxJob).where(OutboxJob.id.in_(ids)))
    return len(mine)


def backend_name(app=None) -> str:
    app = app or current_app
    return "redis" if app.config.get("REDIS_URL") else "embedded"


def redis_connection(app=None):
    """One connection pool per app and Redis URL (not a new socket per request).
    Connecting gives up after two seconds: a Redis that does not answer must not
    hold a request that has already committed."""
    from redis import Redis

    app = app or current_app
    url = app.config["REDIS_URL"]
    pools = app.extensions.setdefault("portal_redis", {})
    if url not in pools:
        pools[url] = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)
    return pools[url]


def rq_queue(app=None):
    from rq import Queue

    app = app or current_app
    return Queue(app.config["RQ_QUEUE"], connection=redis_connection(app))


def resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def run_inline(path: str, *args: Any) -> Any:
    """Run a job in-process in its own app context (own session)."""
    app = current_app._get_current_object()
    with app.app_context():
        try:
            return resolve(path)(*args)
        except Exception:  # a failed job never breaks the request that queued it
            app.logger.exception("in-process job %s%r failed", path, args)
            db.session.rollback()
        finally:
            db.session.remove()


def _send(queue, path: str, args, job_id: Optional[str], timeout: int):
    from rq import Retry

    return queue.enqueue(path, *args, job_id=job_id, job_timeout=timeout,
                         retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS))


def _note_failure(exc: Exception) -> None:
    with _failures_lock:
        _failures["count"] += 1
        _failures["last_at"] = time.time()
        _failures["last_error"] = exc.__class__.__name__


def _forget(app, outbox_ids: list[int]) -> None:
    """Delete outbox rows that Redis now has (own connection: the session has just committed)."""
    from portal.models.jobs import OutboxJob

    ids = [i for i in outbox_ids if i is not None]
    if not ids:
        return
    try:
        with db.engine.begin() as conn:
            conn.execute(delete(OutboxJob).where(OutboxJob.id.in_(ids)))
    except Exception:  # noqa: BLE001 - the sweep sends them again; jobs are safe to run twice
        log.warning("could not clear %d sent job(s) from the outbox; they will be sent again", len(ids),
                    exc_info=True)


def _dispatch(jobs: list) -> None:
    if not jobs or not has_app_context():
        return
    app = current_app._get_current_object()
    if app.config.get("REDIS_URL"):
        sent: list[int] = []
        try:
            queue = rq_queue(app)
            for path, args, job_id, timeout, outbox_id in jobs:
                job = _send(queue, path, args, job_id, timeout)
                sent.append(outbox_id)
                log.info("enqueued %s%r as %s", path, args, job.id)
        except Exception as exc:  # noqa: BLE001 - the data is committed: never fail the write
            _note_failure(exc)
            log.error("job queue unreachable after commit (%s: %s): %d job(s) kept in the outbox for the sweep",
                      exc.__class__.__name__, exc, len(jobs) - len(sent))
        _forget(app, sent)
    else:
        for path, args, _job_id, _timeout, _outbox_id in jobs:
            run_inline(path, *args)


def resend_outbox(app=None, *, older_than: int = OUTBOX_GRACE_SECONDS, limit: int = 500) -> dict:
    """Send the outbox rows older than ``older_than`` seconds to Redis again.

    Safe to run in several processes at once (rows are claimed with SKIP LOCKED
    on PostgreSQL); a row is deleted only once Redis has taken its job. Returns
    ``{"sent": n, "left": m}``; stops at the first Redis error.
    """
    from portal.models.jobs import OutboxJob
    from portal.models._helpers import utcnow

    app = app or current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        return {"sent": 0, "left": 0}
    sent = 0
    with app.app_context():
        try:
            cutoff = utcnow() - timedelta(seconds=older_than)
            stmt = select(OutboxJob).where(OutboxJob.created_at <= cutoff).order_by(OutboxJob.id).limit(limit)
            if db.engine.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = db.session.scalars(stmt).all()
            if rows:
                queue = rq_queue(app)
                for row in rows:
                    row.attempts += 1
                    row.last_attempt_at = utcnow()
                    try:
                        _send(queue, row.path, row.args, row.job_id, row.timeout)
                    except Exception as exc:  # noqa: BLE001 - try again at the next sweep
                        _note_failure(exc)
                        row.last_error = f"{exc.__class__.__name__}: {exc}"[:200]
                        log.error("outbox sweep: job queue still unreachable (%s); %d job(s) waiting",
                                  exc.__class__.__name__, len(rows) - sent)
                        break
                    db.session.delete(row)
                    sent += 1
            db.session.commit()
            left = db.session.scalar(select(func.count(OutboxJob.id)))
        finally:
            db.session.remove()
    if sent:
        log.warning("outbox sweep: sent %d job(s) that were waiting for the job queue", sent)
    return {"sent": sent, "left": left}


def outbox_status() -> dict:
    """For /healthz: jobs waiting for Redis (all processes) and this process's last failure."""
    from portal.models.jobs import OutboxJob
    from portal.models._helpers import utcnow

    status: dict[str, Any] = {"pending": 0, "oldest_seconds": None}
    if current_app.config.get("REDIS_URL"):
        count, oldest = db.session.execute(select(func.count(OutboxJob.id), func.min(OutboxJob.created_at))).one()
        status["pending"] = count
        if oldest is not None:
            status["oldest_seconds"] = max(0, int((utcnow() - oldest).total_seconds()))
    with _failures_lock:
        status["enqueue_failures"] = _failures["count"]
        if _failures["last_at"] is not None:
            status["last_failure_seconds_ago"] = int(time.time() - _failures["last_at"])
            status["last_error"] = _failures["last_error"]
    # Stuck: something has waited past the grace period and a sweep has not sent it.
    status["ok"] = status["oldest_seconds"] is None or status["oldest_seconds"] <= 5 * OUTBOX_GRACE_SECONDS
    return status


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    jobs = session.info.pop(_PENDING, None)
    if jobs:
        _dispatch(jobs)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING, None)
