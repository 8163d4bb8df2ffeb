"""The pages of a file job (:mod:`portal.services.file_jobs`), shared by the task list
download and the activity register upload: the job's page (htmx polls its state every
second; without scripts, reloading does) and the prepared file's download.

Only the requester sees them, and only while they may open the unit: anyone else, and the
requester once they may not, gets 404 (as for a page that is not there).
"""
from __future__ import annotations

from flask import Response, abort, g, render_template, request
from flask_login import current_user
from sqlalchemy import select

from portal import access
from portal.access import Permission
from portal.downloads import XLSX
from portal.extensions import db
from portal.models import FileJob


def job_or_404(job_id: int, kind: str) -> FileJob:
    """The current user's own job of ``kind`` at the workspace's unit, or 404."""
    if not access.can(current_user, Permission.VIEW, g.unit):
        abort(404)
    job = db.session.scalar(select(FileJob).where(FileJob.id == job_id, FileJob.kind == kind,
                                                  FileJob.unit_id == g.unit.id,
                                                  FileJob.user_id == current_user.id))
    if job is None:
        abort(404)
    return job


def job_page(job: FileJob, *, title: str, page_url: str, back_url: str, back_label: str,
             download_url: str | None = None, done_url: str | None = None, done_label: str | None = None):
    """The job's page; its state alone (the part htmx swaps) when htmx asks."""
    template = "file_jobs/_state.html" if request.headers.get("HX-Request") else "file_jobs/job.html"
    return render_template(template, job=job, title=title, page_url=page_url, back_url=back_url,
                           back_label=back_label, download_url=download_url, done_url=done_url,
                           done_label=done_label)


def send_job_file(job: FileJob, ascii_name: str) -> Response:
    """The prepared file, under its name (任务清单-金水区-2026-11-30.xlsx); 404 until it is there."""
    from portal.downloads import stored_attachment

    if job.state != "done":
        abort(404)
    return stored_attachment(job.stored_name, XLSX, job.file_name or ascii_name, ascii_name)
