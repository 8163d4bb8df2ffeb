"""File jobs (后台文件): a large task list download written, a large register upload saved.

:func:`run_file_job` runs the job of a :class:`~portal.models.FileJob` by its kind, as its
requester: a requester who may no longer open the unit gets nothing (the job fails, saying so).
Safe to run twice: a job finished is left alone. Any failure leaves it ``failed`` with the
reason, for its page to show.
"""
from __future__ import annotations

from datetime import date
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import event

from jobs import log, portal_job
from portal import access
from portal.access import Permission
from portal.extensions import db
from portal.models import Activity, FileJob
from portal.models._helpers import utcnow
from portal.services import ServiceError


class _Refused(Exception):
    """The job cannot be done as asked; its message is the page's."""


def _tasks_export(job: FileJob, progress) -> None:
    from portal.exports.tasks_excel import list_file_name, list_workbook
    from portal.uploads import store_generated

    if not access.can(job.user, Permission.VIEW, job.unit):
        raise _Refused(_("You may no longer open this unit."))
    today = date.fromisoformat(job.params["today"])
    progress(0, None, stage="writing", force=True)
    data = list_workbook(job.unit, job.user, job.params["filters"], today=today, progress=progress)
    job.stored_name, job.size = store_generated(data, "xlsx"), len(data)
    job.file_name = list_file_name(job.unit, today)


class _CountedRows(list):
    """The upload's rows; reading them through (the check of every row) tells the progress."""

    def __init__(self, rows, progress):
        super().__init__(rows)
        self.progress = progress

    def __iter__(self):
        total = len(self)
        for done, row in enumerate(super().__iter__(), start=1):
            yield row
            self.progress(done, total)
        # Every row is checked; saving them (if all are right) comes next. From the first row saved
        # the job's session holds written rows until its commit (see Progress.paused).
        self.progress(0, total, stage="saving", force=True)
        self.progress.paused = True


def _activities_import(job: FileJob, progress) -> Optional[str]:
    from portal.exports.activities_excel import apply_register_sheet, read_register_sheet
    from portal.uploads import open_stored

    if not access.can(job.user, Permission.VIEW, job.unit) or not access.can_register_activity(job.user, job.unit):
        raise _Refused(_("You may no longer register activities of this unit."))
    with open(open_stored(job.stored_name), "rb") as fh:
        data = fh.read()
    try:
        rows = read_register_sheet(data)
    except ServiceError as exc:
        raise _Refused(exc.message)
    total = len(rows)
    progress(0, total, stage="checking", force=True)
    saved = [0]
    session = db.session()

    def count_saved(session, _context):
        # The rows of the upload are saved one activity at a time (each flushed): count them.
        added = sum(1 for obj in session.new if isinstance(obj, Activity))
        if added:
            saved[0] += added
            progress(saved[0], total)

    event.listen(session, "after_flush", count_saved)
    try:
        result = apply_register_sheet(job.unit, _CountedRows(rows, progress), by=job.user)
    finally:
        event.remove(session, "after_flush", count_saved)
        progress.paused = False
    errors = [{"row_number": e.row_number, "field": e.field, "message": e.message} for e in result.errors]
    if errors or not result.applied:
        db.session.rollback()  # all or nothing, as the upload page
    job = db.session.get(FileJob, job.id)
    job.result = {"applied": 0 if errors else result.applied, "errors": errors, "rows": total}
    job.progress_done, job.progress_total = total, total
    return job.stored_name


@portal_job
def run_file_job(job_id: int) -> str:
    """Run the file job ``job_id``; returns its final state ("gone" when it was deleted)."""
    from portal.services.file_jobs import Progress
    from portal.uploads import delete_stored

    job = db.session.get(FileJob, job_id)
    if job is None:
        return "gone"
    if job.finished:
        return job.state
    job.state, job.error, job.finished_at = "running", None, None
    db.session.commit()
    progress = Progress(job_id)
    consumed = None
    try:
        if job.kind == "tasks_export":
            _tasks_export(job, progress)
        elif job.kind == "activities_import":
            consumed = _activities_import(job, progress)
        else:
            raise _Refused(f"unknown kind {job.kind!r}")
    except Exception as exc:  # noqa: BLE001 - the job says it failed; the job itself ends
        db.session.rollback()
        if not isinstance(exc, _Refused):
            log.exception("file job %s (%s) failed", job_id, job.kind)
        job = db.session.get(FileJob, job_id)
        input_file = job.stored_name if job.kind == "activities_import" else None
        job.state, job.finished_at = "failed", utcnow()
        job.error = (str(exc) if isinstance(exc, _Refused) else f"{exc.__class__.__name__}: {exc}")[:500]
        if input_file:
            job.stored_name = None
        db.session.commit()
        if input_file:
            delete_stored(input_file)
        return "failed"
    job = db.session.get(FileJob, job_id)
    if consumed:  # the upload is read and its outcome kept: its sheet is no longer needed
        job.stored_name = None
    if job.kind == "tasks_export":
        job.progress_done, job.progress_total = progress.done, progress.total
    job.state, job.finished_at = "done", utcnow()
    db.session.commit()
    if consumed:
        delete_stored(consumed)
    log.info("file job %s (%s) of unit %s done", job_id, job.kind, job.unit_id)
    return "done"
