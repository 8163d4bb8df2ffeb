"""RQ jobs: plain module-level functions taking ids, safe to run twice.

``portal_job`` gives a job an app context when it runs on a worker; run
in-process (no ``REDIS_URL``) it already has one, of its own, from
``portal.queue.run_inline``.
"""
from __future__ import annotations

import functools
import logging

from flask import has_app_context

log = logging.getLogger("jobs")
_app = None


def worker_app():
    """The app of this worker process, created once (before RQ forks)."""
    global _app
    if _app is None:
        from portal import create_app

        _app = create_app()
    return _app


def current_job_id() -> str:
    try:
        from rq import get_current_job

        job = get_current_job()
    except Exception:  # noqa: BLE001 - not on a worker
        job = None
    return job.id if job is not None else "inline"


def portal_job(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if has_app_context():
            log.info("job %s %s%r", current_job_id(), fn.__name__, args)
            return fn(*args, **kwargs)
        from portal.extensions import db

        with worker_app().app_context():
            log.info("job %s %s%r", current_job_id(), fn.__name__, args)
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper
