"""Briefings (工作简报): a Word document of a unit's work in a period, built by a job.

Every briefing issued is kept. Its issue number (第N期) counts per unit and
calendar year of issue (Beijing calendar), from 1: ``(unit_id, year, number)``
is unique, and the service assigns it under a lock of the unit's row.
The file lives with the uploads (instance folder, random name), never under static.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models._helpers import utcnow
from portal.models.accounts import User
from portal.models.units import Unit

#: A briefing's states, in order: queued → running → done | failed.
BRIEFING_STATES = ("queued", "running", "done", "failed")


class Briefing(db.Model):
    __tablename__ = "briefings"
    __table_args__ = (UniqueConstraint("unit_id", "year", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    #: The period it covers, as the consolidated view's: YYYY-MM, YYYY-Qn, YYYY-Hn or YYYY.
    period: Mapped[str] = mapped_column(String(7))
    #: The year of issue (Beijing calendar) and the issue number within it: 第N期.
    year: Mapped[int]
    number: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[Optional[str]] = mapped_column(Text)
    #: The generated .docx under the upload folder (random name), once done.
    stored_name: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    size: Mapped[Optional[int]]
    requested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[datetime]]
    #: When the stored figures the briefing quotes were computed (the unit's roll-up).
    computed_at: Mapped[Optional[datetime]]

    unit: Mapped[Unit] = relationship()
    requested_by: Mapped[Optional[User]] = relationship()

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")
