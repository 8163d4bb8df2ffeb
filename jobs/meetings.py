"""Joint-meeting jobs: telling invitees, and the reminder sweep."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from jobs import portal_job
from portal.clock import local_now
from portal.extensions import db
from portal.models import AgendaItem, Meeting, MeetingStatus, Membership, Role, User
from portal.services.notifications import notify

log = logging.getLogger(__name__)
REMINDER_SWEEP_ID = "meeting-reminder-sweep"
SWEEP_EVERY = timedelta(minutes=10)


def _meeting_link(meeting: Meeting, user_id: int) -> str:
    """The meeting as seen from the recipient's own workspace."""
    unit = meeting.unit
    if not db.session.scalar(select(Membership.id).where(Membership.user_id == user_id,
                                                         Membership.unit_id == meeting.unit_id).limit(1)):
        invited = {inv.unit_id: inv.unit for inv in meeting.unit_invitations}
        seat = db.session.scalar(select(Membership.unit_id).where(Membership.user_id == user_id,
                                                                  Membership.unit_id.in_(list(invited))).limit(1))
        unit = invited.get(seat, unit)
    return f"/{unit.tier}/{unit.code}/meetings/{meeting.id}/"


def _params(meeting: Meeting) -> dict:
    return {"title": meeting.title, "unit": meeting.unit.name,
            "when": meeting.starts_at.strftime("%Y-%m-%d %H:%M"), "reason": meeting.cancel_reason or ""}


@portal_job
def notify_invitees(meeting_id: int, kind: str) -> int:
    """One notification per invitee and kind; safe to run twice."""
    from portal.services.meetings import invitee_user_ids

    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None:
        return 0
    sent = 0
    for user_id in invitee_user_ids(meeting):
        if notify(user_id, kind, params=_params(meeting), link=_meeting_link(meeting, user_id),
                  dedupe_key=f"{kind}:{meeting.id}:{user_id}"):
            sent += 1
    db.session.commit()
    return sent


@portal_job
def notify_item_decided(item_id: int) -> bool:
    item = db.session.get(AgendaItem, item_id)
    if item is None or item.proposed_by_id is None:
        return False
    meeting = item.meeting
    note = notify(item.proposed_by_id, "item_decided",
                  params=dict(_params(meeting), item=item.title, status=item.status, reason=item.reason or ""),
                  link=_meeting_link(meeting, item.proposed_by_id),
                  dedupe_key=f"item_decided:{item.id}:{item.status}:{item.version}")
    db.session.commit()
    return note is not None


@portal_job
def send_reminders(reschedule: bool = False) -> dict:
    """Invitees hear one day before the meeting; departments that proposed
    nothing hear two days before the agenda closes. Each once."""
    now = local_now()
    counts = {"meeting_reminder": 0, "agenda_nudge": 0}
    upcoming = db.session.scalars(select(Meeting).where(
        Meeting.status.in_([MeetingStatus.AGENDA_OPEN.value, MeetingStatus.AGENDA_LOCKED.value]),
        Meeting.starts_at > now, Meeting.starts_at <= now + timedelta(days=1)))
    from portal.services.meetings import invitee_user_ids

    for meeting in upcoming:
        for user_id in invitee_user_ids(meeting):
            if notify(user_id, "meeting_reminder", params=_params(meeting), link=_meeting_link(meeting, user_id),
                      dedupe_key=f"meeting_reminder:{meeting.id}:{user_id}"):
                counts["meeting_reminder"] += 1
    closing = db.session.scalars(select(Meeting).where(
        Meeting.status == MeetingStatus.AGENDA_OPEN.value, Meeting.agenda_closes_at.is_not(None),
        Meeting.agenda_closes_at > now, Meeting.agenda_closes_at <= now + timedelta(days=2)))
    for meeting in closing:
        proposed = {i.department_code for i in meeting.items if i.department_code}
        silent = [c for c in meeting.invited_department_codes if c not in proposed]
        if not silent:
            continue
        liaisons = db.session.execute(select(Membership.user_id, Membership.department_code)
                                      .join(User, User.id == Membership.user_id)
                                      .where(Membership.unit_id == meeting.unit_id,
                                             Membership.role == Role.LIAISON.value,
                                             Membership.department_code.in_(silent), User.active.is_(True)))
        for user_id, dept in liaisons:
            params = dict(_params(meeting), closes=meeting.agenda_closes_at.strftime("%Y-%m-%d %H:%M"))
            if notify(user_id, "agenda_nudge", params=params, link=_meeting_link(meeting, user_id),
                      dedupe_key=f"agenda_nudge:{meeting.id}:{dept}:{user_id}"):
                counts["agenda_nudge"] += 1
    db.session.commit()
    log.info("reminder sweep: %s", counts)
    if reschedule:
        schedule_reminder_sweep()
    return counts


def schedule_reminder_sweep() -> None:
    """On RQ: run the sweep again in SWEEP_EVERY (the worker's scheduler enqueues it)."""
    from flask import current_app

    from portal.queue import rq_queue

    if current_app.config.get("REDIS_URL"):
        rq_queue().enqueue_in(SWEEP_EVERY, "jobs.meetings.send_reminders", True, job_id=REMINDER_SWEEP_ID)
