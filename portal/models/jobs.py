"""The job outbox: jobs written in the same transaction as the data they follow.

With ``REDIS_URL`` every :func:`portal.queue.enqueue` also inserts a row here,
inside the write's transaction. After the commit the row is handed to Redis and
deleted. If Redis cannot be reached the row stays, the failure is logged and
counted on ``/healthz``, and the outbox sweep sends it again later. A job is
therefore never lost between "the data is saved" and "the job is queued";
at worst it runs twice, which every job is written to survive.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._helpers import utcnow


class OutboxJob(db.Model):
    __tablename__ = "job_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Dotted path of the job function in ``jobs/``.
    path: Mapped[str] = mapped_column(String(200))
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: The RQ job id asked for (deduplicated jobs), or none.
    job_id: Mapped[Optional[str]] = mapped_column(String(128))
    timeout: Mapped[int] = mapped_column(default=300)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[Optional[datetime]]
    last_error: Mapped[Optional[str]] = mapped_column(String(200))
