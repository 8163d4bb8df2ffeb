"""Background files (后台文件): a large Excel download prepared by a job, or a large upload
processed by one, with its progress and its outcome.

One row per request. Only its requester sees it, and only while they may still open the
unit (:mod:`portal.exports.file_job_view`). A download's file, once written, and an upload's
sheet, while it waits for the job, live with the uploads (instance folder, random name),
never under static; the upload's sheet is deleted once the job has read it to the end.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models._helpers import utcnow
from portal.models.accounts import User
from portal.models.units import Unit

#: A file job's states, in order: queued → running → done | failed.
FILE_JOB_STATES = ("queued", "running", "done", "failed")
#: What a file job does: the task list as Excel, or an activity register upload.
FILE_JOB_KINDS = ("tasks_export", "activities_import")


class FileJob(db.Model):
    __tablename__ = "file_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    #: The requester: the only one who sees the job's page and its file.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: What the job needs besides: a list's filters and date, an upload's original file name.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    #: Which pass the job is in ("checking", "saving", "writing"), for the page's wording.
    stage: Mapped[Optional[str]] = mapped_column(String(16))
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[Optional[int]]
    #: The stored file (random name under the upload folder): the download written, or the upload to read.
    stored_name: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    #: The download's file name (任务清单-金水区-2026-11-30.xlsx), or the upload's as sent.
    file_name: Mapped[Optional[str]] = mapped_column(String(255))
    size: Mapped[Optional[int]]
    #: An upload's outcome: {"applied": n, "errors": [{"row_number", "field", "message"}...]}.
    result: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON)
    error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[datetime]]

    unit: Mapped[Unit] = relationship()
    user: Mapped[User] = relationship()

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")
