"""The activity register and the work teams: registering, editing (every change in
the audit trail with its old and new value), deleting with a reason (the
record's last state stays in the audit trail), photos and attachments, and the
team roster. Writes flush and audit; the caller commits; every counted write
marks its unit dirty for the figures."""
from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Optional

from flask_babel import gettext as _
from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from portal import access, photos, uploads
from portal.extensions import db
from portal.metrics import mark_dirty
from portal.models import Activity, ActivityFile, ActivityVolunteer, TeamMember, Unit, User
from portal.models._helpers import utcnow
from portal.schemas import activities as schemas
from portal.schemas import load, valid
from portal.services import Conflict, PermissionDenied, ServiceError
from portal.services.audit import record
from portal.services.tasks import recount_later

#: At most this many photos and attachments on one activity.
MAX_FILES = 30
#: The columns an edit may change, and how the audit trail writes them.
TRACKED = ("title", "category_code", "start_date", "end_date", "place", "department_code", "co_department_codes",
           "youth", "elders", "others", "person_times", "volunteers", "volunteer_hours", "funds", "donated_goods",
           "narrative")


def _columns(data: dict[str, Any]) -> dict[str, Any]:
    """The activity's columns from loaded :class:`~portal.schemas.activities.ActivityIn` data."""
    people = data["participants"]
    return {
        "title": data["title"], "category_code": data["category"], "start_date": data["start_date"],
        "end_date": data["end_date"], "place": data["place"], "department_code": data["lead_department"],
        "co_department_codes": data["co_departments"], "youth": people["youth"], "elders": people["elders"],
        "others": people["others"], "person_times": people["youth"] + people["elders"] + people["others"],
        "volunteers": data["volunteers"], "volunteer_hours": data["volunteer_hours"], "funds": data["funds"],
        "donated_goods": data["donated_goods"], "narrative": data["narrative"],
    }


def as_input(activity: Activity) -> dict[str, Any]:
    """The activity as an :class:`ActivityIn` body: what an edit starts from."""
    return {
        "title": activity.title, "category": activity.category_code, "start_date": activity.start_date,
        "end_date": activity.end_date, "place": activity.place, "lead_department": activity.department_code,
        "co_departments": list(activity.co_department_codes or []),
        "participants": {"youth": activity.youth, "elders": activity.elders, "others": activity.others},
        "volunteers": activity.volunteers, "volunteer_hours": activity.volunteer_hours, "funds": activity.funds,
        "donated_goods": activity.donated_goods, "narrative": activity.narrative,
        "volunteer_members": [{"member_id": v.member_id, "hours": v.hours} for v in activity.volunteer_links],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, (date,)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def _named_volunteers(unit: Unit, named: list[dict], today: Optional[date] = None) -> list[tuple[TeamMember, Decimal]]:
    """Roster members of the activity's unit, by id; anything else is refused."""
    if not named:
        return []
    ids = [n["member_id"] for n in named]
    found = {m.id: m for m in db.session.scalars(select(TeamMember).where(TeamMember.id.in_(ids),
                                                                          TeamMember.unit_id == unit.id))}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise ServiceError(_("volunteer_members: %(ids)s is not on the team roster of %(unit)s.",
                             ids=", ".join(missing[:5]), unit=unit.name), "volunteer_members")
    return [(found[n["member_id"]], n["hours"]) for n in named]


def _set_volunteers(activity: Activity, named: list[tuple[TeamMember, Decimal]]) -> None:
    activity.volunteer_links = [ActivityVolunteer(member_id=m.id, hours=hours) for m, hours in named]


def _check_files(activity: Optional[Activity], files: Iterable) -> list:
    chosen = [f for f in files or () if f is not None and getattr(f, "filename", "")]
    present = len(activity.files) if activity is not None else 0
    if present + len(chosen) > MAX_FILES:
        raise ServiceError(_("An activity has at most %(n)d photos and attachments.", n=MAX_FILES), "photos")
    return chosen


def add_files(activity: Activity, *, by: User, photo_files: Iterable = (), attachment_files: Iterable = ()) -> list:
    """Photos (re-encoded, EXIF stripped, thumbnails) and attachments (checked by content)."""
    photo_files = _check_files(activity, photo_files)
    attachment_files = _check_files(activity, attachment_files)
    if len(activity.files) + len(photo_files) + len(attachment_files) > MAX_FILES:
        raise ServiceError(_("An activity has at most %(n)d photos and attachments.", n=MAX_FILES), "photos")
    added = []
    for storage in photo_files:
        stored = photos.save_photo(storage)
        added.append(ActivityFile(is_photo=True, original_name=stored.original_name, stored_name=stored.stored_name,
                                  thumb_name=stored.thumb_name, content_type=stored.content_type, size=stored.size,
                                  sha256=stored.sha256, width=stored.width, height=stored.height,
                                  uploaded_by_id=by.id))
    for storage in attachment_files:
        try:
            stored = uploads.save_upload(storage)
        except ServiceError as exc:
            raise ServiceError(exc.message, "attachments") from None
        added.append(ActivityFile(is_photo=False, original_name=stored.original_name,
                                  stored_name=stored.stored_name, content_type=stored.content_type,
                                  size=stored.size, sha256=stored.sha256, uploaded_by_id=by.id))
    for row in added:
        activity.files.append(row)
    if added:
        db.session.flush()
        record("activity.files", activity, by=by, unit=activity.unit, added=[f.original_name for f in added])
    return added


def create_activity(unit: Unit, data: dict[str, Any], *, by: User, photo_files: Iterable = (),
                    attachment_files: Iterable = (), counted: bool = True) -> Activity:
    """Register one activity. ``counted=False`` leaves marking the unit's figures dirty and
    recounting its counted tasks to the caller, who registers many in one transaction (the
    register upload) and does it once for all of them (:func:`count_registered`)."""
    data = valid(schemas.ActivityIn, data)
    if not access.can_register_activity(by, unit, data["lead_department"]):
        if access.liaison_departments(by, unit):
            raise ServiceError(_("lead_department: as a liaison you register activities of your own department "
                                 "only."), "lead_department")
        raise PermissionDenied(_("Only the office of %(unit)s or its department liaisons may register its "
                                 "activities.", unit=unit.name))
    named = _named_volunteers(unit, data["volunteer_members"])
    activity = Activity(unit_id=unit.id, created_by_id=by.id, **_columns(data))
    activity.unit = unit
    _set_volunteers(activity, named)
    db.session.add(activity)
    db.session.flush()
    if photo_files or attachment_files:
        add_files(activity, by=by, photo_files=photo_files, attachment_files=attachment_files)
    record("activity.create", activity, by=by, unit=unit, title=activity.title, category=activity.category_code,
           start=activity.start_date.isoformat(), person_times=activity.person_times)
    if counted:
        count_registered(unit)
    return activity


def count_registered(unit: Unit) -> None:
    """Activities of ``unit`` were registered in this transaction: its figures are marked dirty
    and its counted tasks recounted after the commit."""
    mark_dirty([unit.id])
    recount_later(unit.id)


def _check_version(activity: Activity, version: Optional[int]) -> None:
    if version is not None and version != activity.version:
        raise Conflict(_("Someone else changed this activity while you were working on it (now version %(n)d). "
                         "Your input is kept: check the activity and send it again.", n=activity.version), "version")


def _may_edit(by: User, activity: Activity) -> None:
    if not access.can_edit_activity(by, activity):
        raise PermissionDenied(_("Only the office of %(unit)s or the liaison of the organising department may "
                                 "change this activity.", unit=activity.unit.name))


def update_activity(activity: Activity, data: dict[str, Any], *, by: User, version: Optional[int],
                    partial: bool = False, photo_files: Iterable = (), attachment_files: Iterable = ()) -> Activity:
    """Change the activity: the whole form (``partial=False``) or only the fields given (a PATCH).
    Every changed field goes into the audit trail as [old, new]."""
    _may_edit(by, activity)
    _check_version(activity, version)
    if partial:
        merged = as_input(activity)
        for key, value in data.items():
            if key == "participants":
                merged["participants"] = {**merged["participants"], **value}
            elif key != "version":
                merged[key] = value
        data = load(schemas.ActivityIn, {k: _plain(v) if not isinstance(v, (dict, list)) else v
                                         for k, v in merged.items()})
    else:
        data = valid(schemas.ActivityIn, data)
    if data["lead_department"] != activity.department_code and not access.can_register_activity(
            by, activity.unit, data["lead_department"]):
        raise ServiceError(_("lead_department: as a liaison you register activities of your own department only."),
                           "lead_department")
    columns = _columns(data)
    changes = {key: [_plain(getattr(activity, key)), _plain(value)] for key, value in columns.items()
               if getattr(activity, key) != value}
    named = _named_volunteers(activity.unit, data["volunteer_members"])
    before = sorted((v.member_id, _plain(v.hours)) for v in activity.volunteer_links)
    after = sorted((m.id, _plain(h)) for m, h in named)
    if before != after:
        changes["volunteer_members"] = [before, after]
        _set_volunteers(activity, named)
    for key in changes:
        if key in columns:
            setattr(activity, key, columns[key])
    added = add_files(activity, by=by, photo_files=photo_files, attachment_files=attachment_files)
    if not changes and not added:
        return activity
    activity.updated_by_id, activity.updated_at = by.id, utcnow()
    db.session.flush()
    if changes:
        record("activity.edit", activity, by=by, unit=activity.unit, changes=changes)
        mark_dirty([activity.unit_id])
        recount_later(activity.unit_id)
    return activity


def delete_activity(activity: Activity, reason: str, *, by: User, version: Optional[int] = None) -> None:
    """Delete with a reason; the audit trail keeps the reason and the record as it was."""
    _may_edit(by, activity)
    _check_version(activity, version)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("reason: say why the activity is deleted."), "reason")
    snapshot = {key: _plain(getattr(activity, key)) for key in TRACKED}
    snapshot["files"] = [f.original_name for f in activity.files]
    names = [n for f in activity.files for n in (f.stored_name, f.thumb_name) if n]
    record("activity.delete", activity, by=by, unit=activity.unit, reason=reason, record=snapshot)
    unit_id = activity.unit_id
    db.session.delete(activity)
    db.session.flush()
    _delete_after_commit(names)
    mark_dirty([unit_id])
    recount_later(unit_id)


def delete_file(activity: Activity, file: ActivityFile, *, by: User) -> None:
    _may_edit(by, activity)
    record("activity.file_delete", activity, by=by, unit=activity.unit, file=file.original_name)
    names = [n for n in (file.stored_name, file.thumb_name) if n]
    activity.files.remove(file)
    db.session.flush()
    _delete_after_commit(names)


# Files of deleted rows go once the deletion is committed (a rollback keeps them).
_TO_DELETE = "portal_activity_files_to_delete"


def _delete_after_commit(names: list[str]) -> None:
    db.session().info.setdefault(_TO_DELETE, []).extend(names)


@event.listens_for(Session, "after_commit")
def _delete_files(session: Session) -> None:
    for name in session.info.pop(_TO_DELETE, []):
        try:
            uploads.delete_stored(name)
        except (ServiceError, RuntimeError, OSError):
            pass


@event.listens_for(Session, "after_soft_rollback")
def _keep_files(session: Session, previous_transaction) -> None:
    session.info.pop(_TO_DELETE, None)


# --- lists ----------------------------------------------------------------------------------------

def activity_list(unit: Unit, user: User, *, scope: str = "subtree", period: Optional[str] = None,
                  category: Optional[str] = None, department: Optional[str] = None, below: Optional[str] = None,
                  q: str = ""):
    """The register's statement: the unit's activities (``scope="unit"``) or its subtree's, only of units
    the user may open, newest first. ``below`` narrows to one unit below (and its subtree)."""
    from portal.metrics import months_of

    from portal.services.tasks import _is_whole_tree, unit_in

    # As the task lists: a reader of everything below the unit needs no visibility filter, the subtree
    # is one array of unit ids (known to the planner), and the tree's one root read whole no filter.
    stmt = select(Activity)
    whole = access.reads_below(user, unit)
    if not whole:
        stmt = stmt.where(access.visible_activities_clause(user))
    if below:
        sub = Unit.by_code(below)
        if sub is None or not sub.is_within(unit):
            raise ServiceError(_("unit: %(code)s is not a unit below %(unit)s.", code=below[:16], unit=unit.name),
                               "unit")
    if scope == "unit":
        stmt = stmt.where(Activity.unit_id == unit.id)
    elif below or not whole or not _is_whole_tree(unit):
        top = sub if below else unit
        stmt = stmt.where(unit_in(db.session.scalars(select(Unit.id).where(Unit.subtree_clause(top))).all(),
                                  Activity.unit_id))
    if period:
        months = months_of(period)
        first = date.fromisoformat(months[0] + "-01")
        last_month = date.fromisoformat(months[-1] + "-01")
        last = date(last_month.year + (last_month.month == 12), last_month.month % 12 + 1, 1)
        stmt = stmt.where(Activity.start_date >= first, Activity.start_date < last)
    if category:
        stmt = stmt.where(Activity.category_code == category)
    if department:
        stmt = stmt.where(department_clause([department]))
    if q:
        for word in q.split()[:5]:
            stmt = stmt.where(or_(Activity.title.contains(word, autoescape=True),
                                  Activity.place.contains(word, autoescape=True),
                                  Activity.narrative.contains(word, autoescape=True)))
    return stmt.order_by(Activity.start_date.desc(), Activity.id.desc())


def department_clause(codes: list[str]):
    from sqlalchemy import String, cast

    co_text = cast(Activity.co_department_codes, String)
    return or_(Activity.department_code.in_(codes),
               *[co_text.contains(f'"{code}"', autoescape=True) for code in codes])


# --- the work team --------------------------------------------------------------------------------

def _may_manage_team(by: User, unit: Unit) -> None:
    if not access.can_manage_team(by, unit):
        raise PermissionDenied(_("Only the office of %(unit)s may change its team roster.", unit=unit.name))


def add_member(unit: Unit, data: dict[str, Any], *, by: User) -> TeamMember:
    _may_manage_team(by, unit)
    data = valid(schemas.TeamMemberIn, data)
    member = TeamMember(unit_id=unit.id, **{k: data[k] for k in ("name", "role", "kind", "phone", "joined_on",
                                                                  "left_on", "note")})
    member.unit = unit
    db.session.add(member)
    db.session.flush()
    record("team.add", member, by=by, unit=unit, name=member.name, role=member.role, kind=member.kind,
           joined=member.joined_on.isoformat())
    mark_dirty([unit.id])
    return member


def edit_member(member: TeamMember, data: dict[str, Any], *, by: User, version: Optional[int]) -> TeamMember:
    """Change a roster entry (leaving is a date, never a deletion: the history stays)."""
    _may_manage_team(by, member.unit)
    if version is not None and version != member.version:
        raise Conflict(_("Someone else changed this entry while you were working on it (now version %(n)d). "
                         "Your input is kept: check it and send it again.", n=member.version), "version")
    data = valid(schemas.TeamMemberIn, {k: v for k, v in data.items() if k != "version"})
    changes = {}
    for key in ("name", "role", "kind", "phone", "joined_on", "left_on", "note"):
        if getattr(member, key) != data[key]:
            # A phone number is never written into the audit trail in full.
            old, new = getattr(member, key), data[key]
            if key == "phone":
                old, new = bool(old), bool(new)
            changes[key] = [_plain(old), _plain(new)]
            setattr(member, key, data[key])
    if changes:
        db.session.flush()
        record("team.edit", member, by=by, unit=member.unit, name=member.name, changes=changes)
        mark_dirty([member.unit_id])
    return member


def volunteer_hours(member_ids: list[int]) -> dict[int, Decimal]:
    """The hours each roster member has accumulated on the activities that name them."""
    from sqlalchemy import func

    if not member_ids:
        return {}
    rows = db.session.execute(select(ActivityVolunteer.member_id, func.sum(ActivityVolunteer.hours))
                              .where(ActivityVolunteer.member_id.in_(member_ids))
                              .group_by(ActivityVolunteer.member_id)).all()
    return {member_id: Decimal(hours or 0) for member_id, hours in rows}
