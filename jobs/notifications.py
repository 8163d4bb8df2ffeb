"""Notification fan-out jobs."""
from __future__ import annotations

from portal.extensions import db
from portal.models import Membership
from portal.services.notifications import notify

from jobs import portal_job


@portal_job
def notify_membership_granted(membership_id: int) -> bool:
    """Tell a user about a role they were granted. Safe to run twice."""
    membership = db.session.get(Membership, membership_id)
    if membership is None:  # revoked before the job ran: nothing to say
        return False
    from portal.workspace_urls import workspace_url

    note = notify(membership.user_id, "membership_granted",
                  params={"role": membership.role, "unit": membership.unit.name,
                          "department": membership.department_code},
                  link=workspace_url(membership.unit),
                  dedupe_key=f"membership_granted:{membership.id}")
    db.session.commit()
    return note is not None
