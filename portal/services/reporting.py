"""Reporting completeness (报送情况): the reminder (催报) to the units that have not reported.

The office of a unit sends one reminder for a period; a job then notifies the
responsible people of every unit below (that the sender may see) which still owes
reports in that period: the unit's office accounts and the liaisons there of the
lead departments of the tasks it owes reports on.
"""
from __future__ import annotations

import secrets

from flask_babel import gettext as _

from portal import access
from portal.models import Unit, User
from portal.queue import enqueue
from portal.services import PermissionDenied
from portal.services.audit import record


def remind_laggards(unit: Unit, period: str, *, by: User) -> str:
    """Queue the reminder for the period; returns the reminder's batch key."""
    if not access.can(by, access.Permission.ACT, unit):
        raise PermissionDenied(_("Only the unit's office sends reminders."))
    batch = secrets.token_hex(8)
    record("reporting.remind", by=by, unit=unit, object_type="units", object_id=unit.id, period=period, batch=batch)
    enqueue("jobs.reporting.send_reporting_reminders", unit.id, period, by.id, batch,
            job_id=f"reporting-remind-{unit.id}-{batch}", timeout=1800)
    return batch
