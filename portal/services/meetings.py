"""The joint-meeting cycle (联席会议): scheduling, the shared agenda, sign-in,
minutes with revisions, decisions. Every write flushes and audits; the caller
commits; notifications go out through jobs after the commit."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from flask_babel import gettext as _
from sqlalchemy import select

from portal import access
from portal.clock import local_now
from portal.extensions import db
from portal.models import (AgendaItem, Attendance, AttendanceStatus, Decision, DecisionStatus, Department,
                           ItemKind, ItemStatus, Material, Meeting, MeetingInvitation, MeetingStatus,
                           MeetingUnitInvitation, Minutes, MinutesRevision, Unit, User)
from portal.models._helpers import utcnow
from portal.metrics import mark_dirty
from portal.queue import enqueue
from portal.schemas import meetings as schemas
from portal.schemas import valid
from portal.services import Conflict, PermissionDenied, ServiceError
from portal.services.audit import record

S = MeetingStatus

#: Which moves the convening office may make, and from where.
TRANSITIONS: dict[MeetingStatus, set[MeetingStatus]] = {
    S.DRAFT: {S.AGENDA_OPEN, S.CANCELLED},
    S.AGENDA_OPEN: {S.AGENDA_LOCKED, S.CANCELLED},
    S.AGENDA_LOCKED: {S.AGENDA_OPEN, S.HELD, S.CANCELLED},
    S.HELD: {S.MINUTES_PUBLISHED},
    S.MINUTES_PUBLISHED: set(),
    S.CANCELLED: set(),
}

MAX_TITLE = schemas.MAX_TITLE


# --- helpers ---------------------------------------------------------------

def _require_convener(meeting_or_unit, by: User) -> None:
    if not access.can_convene(by, meeting_or_unit):
        raise PermissionDenied(_("Only the convening office may do this."))


def _require_status(meeting: Meeting, *allowed: MeetingStatus, message: str) -> None:
    if meeting.status_enum not in allowed:
        raise ServiceError(message)


# --- scheduling --------------------------------------------------------------

def create_meeting(unit: Unit, data: dict[str, Any], *, by: User) -> Meeting:
    """Schedule a meeting of ``unit``; open decisions of the previous meeting
    of the series come onto the agenda as review items. ``data`` as :class:`~portal.schemas.meetings.MeetingIn`
    loads it; invited departments are every member department unless some are chosen."""
    _require_convener(unit, by)
    data = valid(schemas.MeetingIn, data)
    title, starts_at, ends_at = data["title"], data["starts_at"], data["ends_at"]
    if ends_at is not None and ends_at <= starts_at:
        raise ServiceError(_("The meeting must end after it starts."), "ends_at")
    closes = data["agenda_closes_at"]
    if closes is not None and closes > starts_at:
        raise ServiceError(_("The agenda must close before the meeting starts."), "agenda_closes_at")
    departments = data["invited_departments"]
    if departments is None:
        departments = [d.code for d in Department.all()]
    if not departments:
        raise ServiceError(_("Invite at least one department."), "invited_departments")
    invited_units = []
    for code in data["invited_units"]:
        lower = Unit.by_code(code)
        if lower is None or lower.id == unit.id or not lower.is_within(unit):
            raise ServiceError(_("%(code)s is not a unit below %(unit)s.", code=code, unit=unit.name),
                               "invited_units")
        invited_units.append(lower)
    meeting = Meeting(unit_id=unit.id, title=title, starts_at=starts_at, ends_at=ends_at,
                      location=data["location"], agenda_closes_at=closes, series=data["series"],
                      notice_number=data["notice_number"],
                      status=S.DRAFT.value, created_by_id=by.id)
    meeting.unit = unit
    meeting.invitations = [MeetingInvitation(department_code=c) for c in departments]
    meeting.unit_invitations = [MeetingUnitInvitation(unit_id=u.id, unit=u) for u in invited_units]
    db.session.add(meeting)
    db.session.flush()
    _carry_open_decisions(meeting, by=by)
    record("meeting.create", meeting, by=by, unit=unit, title=title, starts_at=starts_at.isoformat(),
           departments=departments, units=[u.code for u in invited_units])
    return meeting


def previous_meeting(meeting: Meeting) -> Optional[Meeting]:
    return db.session.scalar(
        select(Meeting).where(Meeting.unit_id == meeting.unit_id, Meeting.series == meeting.series,
                              Meeting.id != meeting.id, Meeting.starts_at < meeting.starts_at,
                              Meeting.status != S.CANCELLED.value)
        .order_by(Meeting.starts_at.desc()).limit(1))


def _carry_open_decisions(meeting: Meeting, *, by: User) -> None:
    previous = previous_meeting(meeting)
    if previous is None:
        return
    position = 0
    for decision in previous.decisions:
        if decision.status != DecisionStatus.OPEN.value:
            continue
        position += 1
        text = decision.text if len(decision.text) <= 150 else decision.text[:149] + "…"
        db.session.add(AgendaItem(
            meeting_id=meeting.id, title=_("Review of decision: %(text)s", text=text)[:MAX_TITLE],
            description=decision.text, department_code=decision.lead_department_code,
            kind=ItemKind.REVIEW.value, status=ItemStatus.ACCEPTED.value, position=position,
            source_decision_id=decision.id, proposed_by_id=by.id))
    db.session.flush()


def deferred_offers(meeting: Meeting) -> list[AgendaItem]:
    """Items deferred at earlier meetings of the series, not yet carried over."""
    carried = select(AgendaItem.source_item_id).where(AgendaItem.source_item_id.is_not(None))
    return list(db.session.scalars(
        select(AgendaItem).join(Meeting, Meeting.id == AgendaItem.meeting_id)
        .where(Meeting.unit_id == meeting.unit_id, Meeting.series == meeting.series,
               Meeting.id != meeting.id, Meeting.starts_at < meeting.starts_at,
               AgendaItem.status == ItemStatus.DEFERRED.value, AgendaItem.id.not_in(carried))
        .order_by(Meeting.starts_at, AgendaItem.position)))


def carry_over(meeting: Meeting, source: AgendaItem, *, by: User) -> AgendaItem:
    _require_convener(meeting, by)
    _require_status(meeting, S.DRAFT, S.AGENDA_OPEN,
                    message=_("Items can be added only while the agenda is being prepared or open."))
    if source not in deferred_offers(meeting):
        raise ServiceError(_("This item is not a deferred item of an earlier meeting of this series."))
    item = AgendaItem(meeting_id=meeting.id, title=source.title, description=source.description,
                      department_code=source.department_code, kind=ItemKind.CARRIED.value,
                      status=ItemStatus.ACCEPTED.value, position=_next_position(meeting),
                      source_item_id=source.id, proposed_by_id=by.id)
    db.session.add(item)
    db.session.flush()
    record("agenda.carry_over", item, by=by, unit=meeting.unit, source=source.id, meeting=meeting.id)
    return item


UPDATABLE = ("title", "location", "notice_number", "starts_at", "ends_at", "agenda_closes_at")
#: What the calendar entry shows: a change raises its SEQUENCE so that calendar clients update it.
CALENDAR_FIELDS = {"title", "location", "notice_number", "starts_at", "ends_at"}


def update_meeting(meeting: Meeting, data: dict[str, Any], *, by: User) -> Meeting:
    """Change the fields ``data`` holds (as :class:`~portal.schemas.meetings.MeetingUpdate` loads them)."""
    _require_convener(meeting, by)
    _require_status(meeting, S.DRAFT, S.AGENDA_OPEN, S.AGENDA_LOCKED,
                    message=_("A meeting that was held or cancelled can no longer be changed."))
    data = valid(schemas.MeetingUpdate, data, partial=True)
    changes = {key: value for key, value in data.items()
               if key in UPDATABLE and getattr(meeting, key) != value}
    for key, value in changes.items():
        setattr(meeting, key, value)
    if meeting.ends_at and meeting.ends_at <= meeting.starts_at:
        raise ServiceError(_("The meeting must end after it starts."), "ends_at")
    if meeting.agenda_closes_at and meeting.agenda_closes_at > meeting.starts_at:
        raise ServiceError(_("The agenda must close before the meeting starts."), "agenda_closes_at")
    if changes.keys() & CALENDAR_FIELDS:
        meeting.calendar_sequence += 1
    db.session.flush()
    if changes:
        record("meeting.update", meeting, by=by, unit=meeting.unit,
               **{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()})
    return meeting


def transition(meeting: Meeting, to: str, *, by: User, reason: str = "") -> Meeting:
    """Move a meeting to another state; an illegal move is refused saying why."""
    _require_convener(meeting, by)
    try:
        target = MeetingStatus(to)
    except ValueError:
        raise ServiceError(_("Unknown meeting state: %(state)s.", state=to), "to")
    current = meeting.status_enum
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(s.value for s in sorted(TRANSITIONS[current], key=lambda s: s.value)) or _("none")
        raise ServiceError(_("A meeting in state “%(current)s” cannot move to “%(target)s”. "
                             "Possible next states: %(allowed)s.", current=current.label,
                             target=target.label, allowed=allowed), "to")
    if target is S.MINUTES_PUBLISHED:
        return publish_minutes(meeting, by=by)
    if target is S.CANCELLED:
        reason = (reason or "").strip()
        if not reason:
            raise ServiceError(_("Say why the meeting is cancelled."), "reason")
        meeting.cancel_reason = reason[:1000]
    if target is S.HELD and meeting.starts_at > local_now():
        raise ServiceError(_("The meeting starts on %(when)s: it cannot be marked as held before then.",
                             when=meeting.starts_at.strftime("%Y-%m-%d %H:%M")), "to")
    meeting.status = target.value
    if (target is S.AGENDA_OPEN and meeting.notice_issued_on is None) or target is S.AGENDA_LOCKED:
        # The notice goes out with the invitations, and again with the final agenda when it is circulated.
        meeting.notice_issued_on = local_now().date()
    if target in (S.AGENDA_LOCKED, S.CANCELLED) or current is S.AGENDA_LOCKED:
        meeting.calendar_sequence += 1  # the entry's agenda or status changes
    db.session.flush()
    record("meeting.transition", meeting, by=by, unit=meeting.unit, old=current.value, new=target.value,
           reason=reason or None)
    mark_dirty([meeting.unit_id])  # meetings held
    if target is S.AGENDA_OPEN and current is S.DRAFT:
        enqueue("jobs.meetings.notify_invitees", meeting.id, "meeting_invited")
    elif target is S.AGENDA_LOCKED:
        enqueue("jobs.meetings.notify_invitees", meeting.id, "agenda_circulated")
    elif target is S.CANCELLED and current is not S.DRAFT:  # a draft's invitees never heard of it
        enqueue("jobs.meetings.notify_invitees", meeting.id, "meeting_cancelled")
    return meeting



# --- the agenda ----------------------------------------------------------------

def _next_position(meeting: Meeting) -> int:
    return max((i.position for i in meeting.items), default=0) + 1


def propose_item(meeting: Meeting, *, title: str, description: str, by: User,
                 department: Optional[str] = None) -> AgendaItem:
    """A liaison proposes for their department; the office may add items of its own."""
    if not access.can_propose(by, meeting):
        raise PermissionDenied(_("Your department is not invited to this meeting, so it cannot propose items."))
    _require_status(meeting, S.AGENDA_OPEN, message=_("The agenda is not open for proposals."))
    is_office = access.can_convene(by, meeting)
    own = [c for c in access.liaison_departments(by, meeting.unit) if c in meeting.invited_department_codes]
    if department:
        if department not in meeting.invited_department_codes:
            raise ServiceError(_("The department %(code)s is not invited.", code=department), "department")
        if not is_office and department not in own:
            raise PermissionDenied(_("You may propose only for your own department."))
    elif not is_office:
        department = own[0]
    item = AgendaItem(meeting_id=meeting.id, title=title, description=description, department_code=department,
                      kind=ItemKind.OFFICE.value if is_office and not own else ItemKind.PROPOSAL.value,
                      status=ItemStatus.PROPOSED.value, position=_next_position(meeting), proposed_by_id=by.id)
    db.session.add(item)
    db.session.flush()
    meeting.items.append(item)
    record("agenda.propose", item, by=by, unit=meeting.unit, meeting=meeting.id, title=title,
           department=department)
    return item


def decide_item(item: AgendaItem, action: str, *, by: User, reason: str = "",
                merge_into: Optional[AgendaItem] = None) -> AgendaItem:
    """The office accepts, merges, defers or rejects a proposed item."""
    meeting = item.meeting
    _require_convener(meeting, by)
    _require_status(meeting, S.AGENDA_OPEN, message=_("Items can be decided only while the agenda is open."))
    reason = (reason or "").strip()
    targets = {"accept": ItemStatus.ACCEPTED, "merge": ItemStatus.MERGED, "defer": ItemStatus.DEFERRED,
               "reject": ItemStatus.REJECTED}
    if action not in targets:
        raise ServiceError(_("Unknown decision on an item: %(action)s.", action=action), "action")
    if action in ("defer", "reject", "merge") and not reason:
        raise ServiceError(_("Give a reason: the proposing department will read it."), "reason")
    if action == "merge":
        if merge_into is None or merge_into.meeting_id != meeting.id or merge_into.id == item.id \
                or merge_into.status != ItemStatus.ACCEPTED.value:
            raise ServiceError(_("Choose an accepted item of this meeting to merge into."), "merge_into")
        item.merged_into_id = merge_into.id
    else:
        item.merged_into_id = None
    old = item.status
    item.status = targets[action].value
    item.reason = reason or None
    db.session.flush()
    record("agenda." + action, item, by=by, unit=meeting.unit, meeting=meeting.id, old=old,
           reason=reason or None, merge_into=merge_into.id if merge_into else None)
    if item.proposed_by_id and item.proposed_by_id != by.id:
        enqueue("jobs.meetings.notify_item_decided", item.id)
    return item


def reorder_items(meeting: Meeting, ordered_ids: list[int], *, by: User) -> None:
    _require_convener(meeting, by)
    _require_status(meeting, S.DRAFT, S.AGENDA_OPEN, message=_("The agenda is locked: its order is fixed."))
    by_id = {i.id: i for i in meeting.items}
    if sorted(ordered_ids) != sorted(i.id for i in meeting.agenda):
        raise ServiceError(_("The new order must list every accepted item once."), "order")
    for position, item_id in enumerate(ordered_ids, start=1):
        by_id[item_id].position = position
    db.session.flush()
    record("agenda.reorder", meeting, by=by, unit=meeting.unit, order=ordered_ids)


def move_item(item: AgendaItem, direction: int, *, by: User) -> None:
    """Move an accepted item one place up (-1) or down (+1)."""
    agenda = item.meeting.agenda
    ids = [i.id for i in agenda]
    index = ids.index(item.id) if item.id in ids else -1
    if index < 0:
        raise ServiceError(_("Only accepted items have a place on the agenda."))
    other = index + direction
    if 0 <= other < len(ids):
        ids[index], ids[other] = ids[other], ids[index]
    reorder_items(item.meeting, ids, by=by)


def add_material(item: AgendaItem, file_storage, *, by: User) -> Material:
    from portal.uploads import save_upload

    meeting = item.meeting
    is_office = access.can_convene(by, meeting)
    if not is_office and item.department_code not in access.liaison_departments(by, meeting.unit):
        raise PermissionDenied(_("Only the proposing department or the office may attach materials."))
    _require_status(meeting, S.AGENDA_OPEN, S.AGENDA_LOCKED,
                    message=_("Materials can be attached while the agenda is open or circulated."))
    stored = save_upload(file_storage)
    material = Material(item_id=item.id, original_name=stored.original_name, stored_name=stored.stored_name,
                        content_type=stored.content_type, size=stored.size, sha256=stored.sha256,
                        uploaded_by_id=by.id)
    db.session.add(material)
    db.session.flush()
    record("agenda.material", material, by=by, unit=meeting.unit, meeting=meeting.id, item=item.id,
           name=stored.original_name, size=stored.size)
    return material


# --- sign-in -----------------------------------------------------------------

def record_attendance(meeting: Meeting, department_code: str, status: str, *, by: User,
                      attendee_name: str = "", delegate_name: str = "", reason: str = "") -> Attendance:
    _require_convener(meeting, by)
    _require_status(meeting, S.AGENDA_LOCKED, S.HELD,
                    message=_("Sign-in is recorded on the day: after the agenda is locked, before the "
                              "minutes are published."))
    if department_code not in meeting.invited_department_codes:
        raise ServiceError(_("The department %(code)s is not invited.", code=department_code), "department")
    try:
        status_enum = AttendanceStatus(status)
    except ValueError:
        raise ServiceError(_("Unknown attendance: %(status)s.", status=status), "status")
    if status_enum is AttendanceStatus.ABSENT and not reason:
        raise ServiceError(_("Give the reason for the absence."), "reason")
    if status_enum is AttendanceStatus.DELEGATE and not delegate_name:
        raise ServiceError(_("Name the delegate who attended."), "delegate_name")
    row = next((a for a in meeting.attendance if a.department_code == department_code), None)
    if row is None:
        row = Attendance(meeting_id=meeting.id, department_code=department_code, status=status_enum.value)
        meeting.attendance.append(row)
    row.status = status_enum.value
    row.attendee_name = attendee_name if status_enum is AttendanceStatus.PRESENT else ""
    row.delegate_name = delegate_name if status_enum is AttendanceStatus.DELEGATE else ""
    row.reason = reason if status_enum is AttendanceStatus.ABSENT else ""
    row.recorded_by_id = by.id
    row.recorded_at = utcnow()
    db.session.flush()
    record("meeting.attendance", meeting, by=by, unit=meeting.unit, department=department_code,
           status=status_enum.value, delegate=row.delegate_name or None, reason=row.reason or None)
    return row


# --- minutes -------------------------------------------------------------------

def minutes_skeleton(meeting: Meeting) -> str:
    """The first draft: a heading per agenda item (the sign-in is printed from the sign-in itself).
    Always in Chinese: the minutes become an official document."""
    from flask_babel import force_locale

    with force_locale("zh_Hans_CN"):
        return _minutes_skeleton(meeting)


def _minutes_skeleton(meeting: Meeting) -> str:
    # The sign-in is not copied here: the minutes document prints it once, from the sign-in itself, and
    # numbers the headings 一、 and （一） (GB/T 9704-2012 7.3.3).
    lines = [f"# {meeting.title}", "", "## " + _("Discussion"), ""]
    for item in meeting.agenda:
        lines += [f"### {item.title}", "", ""]
    return "\n".join(lines).rstrip() + "\n"


def save_minutes(meeting: Meeting, body: str, *, by: User, base_revision: int, reason: str = "") -> MinutesRevision:
    """Every save is a revision. A save based on an older revision is a conflict;
    a change to published minutes is a correction and needs a reason."""
    _require_convener(meeting, by)
    _require_status(meeting, S.HELD, S.MINUTES_PUBLISHED,
                    message=_("Minutes are written after the meeting has been held."))
    if not body:
        raise ServiceError(_("The minutes are empty."), "body")
    minutes = meeting.minutes
    if minutes is None:
        minutes = Minutes(meeting_id=meeting.id, body="", revision=0)
        meeting.minutes = minutes
        db.session.add(minutes)
        db.session.flush()
    if base_revision != minutes.revision:
        raise Conflict(_("Someone else saved revision %(n)d of these minutes while you were editing. "
                         "Your text is kept below: compare it with the current revision and save again.",
                         n=minutes.revision), "body")
    reason = (reason or "").strip()
    if minutes.is_published and not reason:
        raise ServiceError(_("The minutes are published: a correction needs a reason."), "reason")
    if body == minutes.body:
        raise ServiceError(_("Nothing changed since the last revision."), "body")
    minutes.revision += 1
    minutes.body = body
    revision = MinutesRevision(minutes_id=minutes.id, number=minutes.revision, body=body, author_id=by.id,
                               reason=reason[:500], published=minutes.is_published)
    db.session.add(revision)
    db.session.flush()
    record("minutes.correct" if minutes.is_published else "minutes.save", minutes, by=by, unit=meeting.unit,
           meeting=meeting.id, revision=minutes.revision, reason=reason or None)
    return revision


def publish_minutes(meeting: Meeting, *, by: User) -> Meeting:
    if not access.can_publish(by, meeting):
        raise PermissionDenied(_("Publishing minutes needs an office administrator."))
    _require_status(meeting, S.HELD, message=_("Only the minutes of a held meeting can be published."))
    minutes = meeting.minutes
    if minutes is None or minutes.revision == 0:
        raise ServiceError(_("Write the minutes before publishing them."))
    minutes.published_at = utcnow()
    minutes.published_by_id = by.id
    minutes.revisions[-1].published = True
    meeting.status = S.MINUTES_PUBLISHED.value
    db.session.flush()
    record("minutes.publish", minutes, by=by, unit=meeting.unit, meeting=meeting.id, revision=minutes.revision)
    enqueue("jobs.meetings.notify_invitees", meeting.id, "minutes_published")
    return meeting


# --- decisions -----------------------------------------------------------------

def add_decision(meeting: Meeting, data: dict[str, Any], *, by: User) -> Decision:
    _require_convener(meeting, by)
    _require_status(meeting, S.HELD, message=_("Decisions are recorded after the meeting, before the minutes "
                                               "are published."))
    data = valid(schemas.DecisionIn, data)
    text, lead, co = data["text"], data["lead_department"], data["co_departments"]
    item = None
    if data["item_id"] is not None:
        item = next((i for i in meeting.items if i.id == data["item_id"]), None)
        if item is None:
            raise ServiceError(_("That agenda item is not part of this meeting."), "item_id")
    decision = Decision(meeting_id=meeting.id, item_id=item.id if item else None, text=text,
                        lead_department_code=lead, co_department_codes=co, due_date=data["due_date"],
                        position=max((d.position for d in meeting.decisions), default=0) + 1, created_by_id=by.id)
    db.session.add(decision)
    db.session.flush()
    meeting.decisions.append(decision)
    record("decision.create", decision, by=by, unit=meeting.unit, meeting=meeting.id, lead=lead, co=co)
    mark_dirty([meeting.unit_id])
    return decision


def delete_decision(decision: Decision, *, by: User) -> None:
    meeting = decision.meeting
    _require_convener(meeting, by)
    _require_status(meeting, S.HELD, message=_("Decisions of published minutes cannot be removed."))
    record("decision.delete", decision, by=by, unit=meeting.unit, meeting=meeting.id, text=decision.text[:200])
    meeting.decisions.remove(decision)
    db.session.delete(decision)
    db.session.flush()
    mark_dirty([meeting.unit_id])


# --- who hears about it ------------------------------------------------------

def invitee_user_ids(meeting: Meeting) -> list[int]:
    """Active liaisons of the invited departments at the unit, and the offices of invited units."""
    from portal.models import Membership, Role

    liaisons = select(Membership.user_id).join(User, User.id == Membership.user_id).where(
        Membership.unit_id == meeting.unit_id, Membership.role == Role.LIAISON.value,
        Membership.department_code.in_(meeting.invited_department_codes), User.active.is_(True))
    ids = set(db.session.scalars(liaisons))
    unit_ids = [inv.unit_id for inv in meeting.unit_invitations]
    if unit_ids:
        offices = select(Membership.user_id).join(User, User.id == Membership.user_id).where(
            Membership.unit_id.in_(unit_ids), Membership.role.in_([Role.OFFICE_ADMIN.value, Role.OFFICE_STAFF.value]),
            User.active.is_(True))
        ids |= set(db.session.scalars(offices))
    return sorted(ids)
