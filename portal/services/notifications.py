"""The notification centre: creating, reading, and rendering notifications."""
from __future__ import annotations

from typing import Any, Optional

from flask import g, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, joinedload

from portal.extensions import db
from portal.models import Department, Notification, Role, User
from portal.models._helpers import utcnow

#: Notification kinds and their texts, rendered in the reader's language.
MESSAGES = {
    "membership_granted": _l("You were granted the role “%(role)s” at %(unit)s%(department)s."),
    "meeting_invited": _l("%(unit)s invites you to “%(title)s” on %(when)s. The agenda is open for proposals."),
    "agenda_circulated": _l("The agenda of “%(title)s” (%(when)s) is locked and circulated."),
    "meeting_cancelled": _l("“%(title)s” of %(unit)s on %(when)s is cancelled: %(reason)s"),
    "minutes_published": _l("The minutes of “%(title)s” of %(unit)s are published."),
    "item_decided": _l("Your item “%(item)s” for “%(title)s”: %(status)s. %(reason)s"),
    "meeting_reminder": _l("Reminder: “%(title)s” of %(unit)s starts on %(when)s."),
    "task_assigned": _l("New task from %(unit)s: “%(title)s”, due %(due)s."),
    "task_submitted": _l("“%(title)s” of %(unit)s is submitted for your review."),
    "task_reviewed": _l("“%(title)s”: %(decision)s. %(comment)s"),
    "task_notice": _l("Supervision notice from %(sender)s on “%(title)s”: %(text)s"),
    "agenda_nudge": _l("The agenda of “%(title)s” closes on %(closes)s and your department has proposed nothing yet."),
    "reporting_reminder": _l("Reminder from %(sender)s: %(unit)s still owes %(owed)s progress reports for %(period)s. "
                             "Please report."),
}


def notify(user_id: int, kind: str, *, params: dict[str, Any], dedupe_key: str,
           link: Optional[str] = None) -> Optional[Notification]:
    """Create a notification once per ``dedupe_key`` (jobs may run twice)."""
    if db.session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key)):
        return None
    note = Notification(user_id=user_id, kind=kind, params=params, link=link, dedupe_key=dedupe_key)
    _forget_unread()
    db.session.add(note)
    db.session.flush()
    return note


def render(note: Notification) -> str:
    params = dict(note.params or {})
    if note.kind == "membership_granted":
        params["role"] = Role(params["role"]).label
        dept = db.session.get(Department, params["department"]) if params.get("department") else None
        params["department"] = _(" (%(name)s)", name=dept.name) if dept else ""
    if note.kind == "item_decided":
        from portal.models import ItemStatus

        params["status"] = ItemStatus(params["status"]).label
    if note.kind == "reporting_reminder":
        from portal.consolidated import period_label

        params["period"] = period_label(params["period"])
    if note.kind == "task_reviewed":
        params["decision"] = _("accepted") if params.get("decision") == "accept" else _("returned")
    template = MESSAGES.get(note.kind)
    return str(template) % params if template else note.kind


def _unread_of(user_id):
    return select(func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))


def load_with_unread(user_id: int) -> Optional[User]:
    """The account for a request, with its memberships (and their units) and its unread count,
    in one statement: every page needs all three (access checks, the header's badge). The count
    is kept for the request until a notification is written or read, or anything is committed."""
    row = db.session.execute(
        select(User, _unread_of(User.id).scalar_subquery()).where(User.id == user_id)
        .options(joinedload(User.memberships))).unique().first()
    if row is None:
        return None
    user, unread = row
    if has_request_context():
        g._unread = (user.id, unread or 0)
    return user


def unread_count(user: User) -> int:
    kept = g.get("_unread") if has_request_context() else None
    if kept is not None and kept[0] == user.id:
        return kept[1]
    return db.session.scalar(_unread_of(user.id)) or 0


def _forget_unread() -> None:
    if has_request_context():
        g.pop("_unread", None)


@event.listens_for(Session, "after_commit")
def _unread_after_commit(session: Session) -> None:
    _forget_unread()


def mark_read(note: Notification, *, by: User) -> None:
    if note.read_at is None:
        _forget_unread()
        note.read_at = utcnow()
        db.session.flush()


def mark_all_read(user: User) -> int:
    _forget_unread()
    result = db.session.execute(update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)).values(read_at=utcnow()))
    return result.rowcount or 0
