"""File jobs (后台文件): one way to run a large Excel download or upload as a job.

A request that would take too long for a web request (the province's 20,000-row task list,
a year's register of 10,000 activities) makes a :class:`~portal.models.FileJob` instead: the
list's filters, or the uploaded sheet stored with the uploads, and the job
(:mod:`jobs.file_jobs`) queued after the commit (in-process without ``REDIS_URL``, on the RQ
worker with it). The job says how far it is (:class:`Progress`) in short commits of its own;
its page polls them (:mod:`portal.exports.file_job_view`). Only the requester sees the job,
and only while they may still open its unit.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import update

from portal.extensions import db
from portal.models import FileJob, Unit, User
from portal.queue import enqueue
from portal.services.audit import record

#: How long a job may take (the province's 20,000-row list takes about 15 s to write; a
#: 10,000-row register a few minutes).
JOB_TIMEOUT = 1800
#: The job's progress is written at most once every this many rows.
PROGRESS_EVERY = 200


def request_file_job(kind: str, unit: Unit, *, by: User, params: Optional[dict[str, Any]] = None,
                     upload: Optional[bytes] = None, file_name: Optional[str] = None,
                     total: Optional[int] = None) -> FileJob:
    """Record a file job of ``kind`` for ``unit`` asked by ``by`` and queue it (sent after the
    commit). ``upload``: the sheet to process, stored with the uploads until the job has read it."""
    from portal.uploads import store_generated

    job = FileJob(kind=kind, unit_id=unit.id, user_id=by.id, params=dict(params or {}), state="queued",
                  progress_done=0, progress_total=total, file_name=file_name)
    if upload is not None:
        job.stored_name, job.size = store_generated(upload, "xlsx"), len(upload)
    db.session.add(job)
    db.session.flush()
    record("file_job.request", job, by=by, unit=unit, kind=kind, rows=total)
    enqueue("jobs.file_jobs.run_file_job", job.id, job_id=f"file-job-{job.id}", timeout=JOB_TIMEOUT)
    return job


class Progress:
    """How far a job is, written in a short transaction of its own (another connection), so that
    the job's own session keeps its rows and its transaction, and the page sees it at once.

    On SQLite a writer holds the whole database: while the job's session has written rows and not
    committed (an upload being saved), a second connection would wait for it, so ``paused`` stops
    the writes then."""

    def __init__(self, job_id: int, *, every: Optional[int] = None):
        self.job_id, self.every, self.paused, self._last = job_id, every or PROGRESS_EVERY, False, None
        #: The latest figures told (written or not).
        self.done, self.total = 0, None

    def __call__(self, done: int, total: Optional[int] = None, *, stage: Optional[str] = None,
                 force: bool = False) -> None:
        self.done, self.total = done, total if total is not None else self.total
        if self.paused and db.engine.dialect.name == "sqlite":
            return
        if not force and self._last is not None and done - self._last < self.every and done != total:
            return
        values: dict[str, Any] = {"progress_done": done}
        if total is not None:
            values["progress_total"] = total
        if stage is not None:
            values["stage"] = stage
        with db.engine.begin() as conn:
            conn.execute(update(FileJob).where(FileJob.id == self.job_id).values(**values))
        self._last = done
