"""The reporting reminder (催报): notify the responsible people of every lagging unit."""
from __future__ import annotations

from sqlalchemy import select

from jobs import log, portal_job
from portal.extensions import db
from portal.models import Membership, Role, Task, Unit, User


def recipients(unit: Unit, period: str) -> set[int]:
    """The unit's office accounts, and its liaisons of the lead departments of the tasks it owes reports on."""
    from portal import consolidated as cv

    owed = [r.id for r in db.session.execute(cv.owed_tasks(unit, period)).mappings()]
    departments = set(db.session.scalars(select(Task.lead_department_code).where(Task.id.in_(owed)))) if owed else set()
    seats = db.session.execute(
        select(Membership.user_id, Membership.role, Membership.department_code)
        .join(User, User.id == Membership.user_id)
        .where(Membership.unit_id == unit.id, User.active.is_(True))).all()
    return {user_id for user_id, role, department in seats
            if role in (Role.OFFICE_ADMIN.value, Role.OFFICE_STAFF.value)
            or (role == Role.LIAISON.value and department in departments)}


@portal_job
def send_reporting_reminders(unit_id: int, period: str, sender_id: int, batch: str) -> int:
    """One notification per responsible person of each unit below that has not reported; safe to run twice
    (one notification per batch, unit and person)."""
    from portal import access
    from portal import consolidated as cv
    from portal.services.notifications import notify
    from portal.workspace_urls import workspace_url

    unit, sender = db.session.get(Unit, unit_id), db.session.get(User, sender_id)
    if unit is None or sender is None:
        return 0
    sent = 0
    for row in cv.reporting(unit, period, access.visible_units_clause(sender)):
        if row.reported:
            continue
        for user_id in sorted(recipients(row.unit, period)):
            note = notify(user_id, "reporting_reminder",
                          params={"sender": unit.name, "unit": row.unit.name, "period": period, "owed": row.owed},
                          link=workspace_url(row.unit) + "tasks/",
                          dedupe_key=f"reporting_reminder:{batch}:{row.unit.id}:{user_id}")
            sent += note is not None
    db.session.commit()
    log.info("reporting reminder %s for %s %s: %d notifications", batch, unit.code, period, sent)
    return sent
