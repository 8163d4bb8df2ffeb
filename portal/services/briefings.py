"""Briefings (工作简报): an office asks for the briefing of its unit for a period; a job builds it.

The request takes the unit's next issue number of the year (第N期, Beijing calendar) under a
lock of the unit's row, so that two offices asking at once get two numbers; ``(unit, year,
number)`` is unique besides. The job (:mod:`jobs.briefings`) is queued after the commit.
Who may ask and read is decided in :mod:`portal.access` (``can_request_briefing``,
``can_read_briefings``): offices and viewers over a unit with units below; a street has none.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import access
from portal.clock import local_today
from portal.extensions import db
from portal.models import Briefing, Unit, User
from portal.queue import enqueue
from portal.schemas import valid
from portal.schemas.briefings import BriefingIn
from portal.services import PermissionDenied, ServiceError
from portal.services.audit import record

#: How long the job may take (a province's briefing reads a few hundred stored figures).
JOB_TIMEOUT = 600


def next_number(unit: Unit, year: int) -> int:
    """The next issue number of the unit in the year; call with the unit's row locked."""
    return (db.session.scalar(select(func.max(Briefing.number))
                              .where(Briefing.unit_id == unit.id, Briefing.year == year)) or 0) + 1


def request_briefing(unit: Unit, data, *, by: User) -> Briefing:
    """Number a new briefing of ``unit`` for ``data["period"]`` and queue the job that builds it."""
    from portal.metrics import current_month, months_of

    if not access.can_request_briefing(by, unit):
        raise PermissionDenied(_("Only the unit's office issues briefings."))
    period = valid(BriefingIn, data)["period"]
    if months_of(period)[0] > current_month():
        raise ServiceError(_("%(field)s: %(period)s has not begun yet; a briefing reports on a period that has.",
                             field="period", period=period), field="period")
    # One numbering per unit: the unit's row is the lock (PostgreSQL: FOR UPDATE; SQLite
    # serialises writers), and the unique constraint stands behind it.
    db.session.execute(select(Unit.id).where(Unit.id == unit.id).with_for_update())
    year = local_today().year
    briefing = Briefing(unit_id=unit.id, period=period, year=year, number=next_number(unit, year),
                        state="queued", requested_by_id=by.id)
    db.session.add(briefing)
    db.session.flush()
    record("briefing.request", briefing, by=by, unit=unit, period=period, year=year, number=briefing.number)
    enqueue("jobs.briefings.build_briefing", briefing.id, job_id=f"briefing-{briefing.id}", timeout=JOB_TIMEOUT)
    return briefing


def store_document(data: bytes) -> str:
    """Write a generated .docx with the uploads (a random name, never under static); returns its name."""
    from portal.uploads import store_generated

    return store_generated(data, "docx")


def download_name(briefing: Briefing) -> str:
    """金水区工作简报2026年第3期.docx"""
    return f"{briefing.unit.name}工作简报{briefing.year}年第{briefing.number}期.docx"


def ascii_download_name(briefing: Briefing) -> str:
    """briefing-410105-2026-3.docx, for clients that do not read RFC 5987 names."""
    return f"briefing-{briefing.unit.code}-{briefing.year}-{briefing.number}.docx"
