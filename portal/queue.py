"""The one enqueue call, dispatched after the commit.

Services call :func:`enqueue` with the dotted path of a job function in
``jobs/`` and simple arguments (ids). Nothing is sent until the database
session commits; a rollback drops the pending jobs. Without ``REDIS_URL`` the
same job runs in-process, in an app context of its own, right after the
commit; with it, the job goes to the RQ queue for ``make worker``.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any, Optional

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import db

log = logging.getLogger(__name__)
_PENDING = "portal_pending_jobs"
DEFAULT_TIMEOUT = 300


def enqueue(path: str, *args: Any, job_id: Optional[str] = None, timeout: int = DEFAULT_TIMEOUT) -> None:
    """Queue ``path(*args)`` to run once the current transaction commits."""
    session = db.session()
    session.connection()  # begin the transaction, so that a rollback drops the job too
    session.info.setdefault(_PENDING, []).append((path, args, job_id, timeout))


def backend_name(app=None) -> str:
    app = app or current_app
    return "redis" if app.config.get("REDIS_URL") else "embedded"


def redis_connection(app=None):
    from redis import Redis

    app = app or current_app
    return Redis.from_url(app.config["REDIS_URL"])


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


def _dispatch(jobs: list) -> None:
    if not jobs or not has_app_context():
        return
    app = current_app._get_current_object()
    if app.config.get("REDIS_URL"):
        queue = rq_queue(app)
        for path, args, job_id, timeout in jobs:
            job = queue.enqueue(path, *args, job_id=job_id, job_timeout=timeout)
            log.info("enqueued %s%r as %s", path, args, job.id)
    else:
        for path, args, _job_id, _timeout in jobs:
            run_inline(path, *args)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    jobs = session.info.pop(_PENDING, None)
    if jobs:
        _dispatch(jobs)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING, None)
