"""The one place that answers "may this user do X at this unit?".

Rules (docs/domain.md, "The management network"):

* office roles (office_admin, office_staff) act on their unit and everything
  below it; viewers read the same subtree;
* liaisons act only within their own unit and their own department;
* nobody sees a sibling's records: a unit outside every membership's scope
  answers 404, so its existence is not even confirmed;
* only office admins manage accounts, and only inside their subtree: nobody
  can grant a role at a unit above their own scope.
"""
from __future__ import annotations

import enum
import re
from typing import Optional

from flask import abort, g, has_request_context
from sqlalchemy import false, or_, select

from portal.extensions import db
from portal.models import Membership, Role, Unit, User


class Permission(str, enum.Enum):
    VIEW = "view"                      # read the unit's workspace
    MANAGE_ACCOUNTS = "manage_accounts"  # create users, grant memberships
    ACT = "act"                        # write as the office (convene, issue)
    PUBLISH = "publish"                # office admins: publish minutes and official documents


def memberships_of(user: User) -> list[Membership]:
    """The user's memberships, loaded once per request."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    if has_request_context():
        cache = g.setdefault("_memberships", {})
        if user.id not in cache:
            cache[user.id] = list(user.memberships)
        return cache[user.id]
    return list(user.memberships)


def _office_or_viewer_over(m: Membership, unit: Unit) -> bool:
    return m.role != Role.LIAISON.value and unit.is_within(m.unit)


def can(user: User, permission: Permission, unit: Unit, department: Optional[str] = None) -> bool:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    for m in memberships_of(user):
        role = m.role_enum
        if permission is Permission.VIEW:
            if _office_or_viewer_over(m, unit) or (role is Role.LIAISON and m.unit_id == unit.id):
                return True
        elif permission in (Permission.MANAGE_ACCOUNTS, Permission.PUBLISH):
            if role is Role.OFFICE_ADMIN and unit.is_within(m.unit):
                return True
        elif permission is Permission.ACT:
            if role.is_office and unit.is_within(m.unit):
                return True
    return False


def require(user: User, permission: Permission, unit: Unit, department: Optional[str] = None) -> None:
    """Abort 404 when the unit is not visible at all, 403 when it is but the act is not allowed."""
    if not can(user, Permission.VIEW, unit):
        abort(404)
    if permission is not Permission.VIEW and not can(user, permission, unit, department):
        abort(403)


def can_grant(actor: User, unit: Unit, role: Role) -> bool:
    """An office admin grants any role at its unit or below; nobody grants above their scope."""
    return can(actor, Permission.MANAGE_ACCOUNTS, unit)


def can_manage_user(actor: User, target: User) -> bool:
    """The actor administers the target when the target's home unit and every
    membership lie inside the actor's account-management scope."""
    if target.id == actor.id:
        return False
    units = [m.unit for m in target.memberships]
    if target.home_unit is not None:
        units.append(target.home_unit)
    return bool(units) and all(can(actor, Permission.MANAGE_ACCOUNTS, u) for u in units)


def reads_below(user: User, unit: Unit) -> bool:
    """Whether the user may open any unit below ``unit`` (offices and viewers; a liaison never)."""
    return any(_office_or_viewer_over(m, unit) for m in memberships_of(user))


def visible_units_clause(user: User, permission: Permission = Permission.VIEW):
    """A SQL clause on ``Unit`` selecting the units the user may see (or manage)."""
    clauses = []
    for m in memberships_of(user):
        role = m.role_enum
        if permission is Permission.MANAGE_ACCOUNTS and role is not Role.OFFICE_ADMIN:
            continue
        if role is Role.LIAISON:
            clauses.append(Unit.id == m.unit_id)
        else:
            clauses.append(Unit.subtree_clause(m.unit))
    return or_(*clauses) if clauses else false()


def landing_units(user: User) -> list[Unit]:
    """Distinct units of the user's memberships, top-most first."""
    seen: dict[int, Unit] = {}
    for m in memberships_of(user):
        seen.setdefault(m.unit_id, m.unit)
    return sorted(seen.values(), key=lambda u: (u.path.count("/"), u.code))


def unit_or_404(user: User, code: str, permission: Permission = Permission.VIEW) -> Unit:
    """Load a unit by code through the access rules (used by the API)."""
    unit = db.session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        abort(404)
    require(user, permission, unit)
    return unit


# --- joint meetings -------------------------------------------------------

def meeting_issued(meeting) -> bool:
    """Whether the meeting has left its draft: until the invitations go out (draft -> agenda
    open), a meeting is the convening office's alone, like draft minutes. A meeting cancelled
    while still a draft (no notice was ever issued) stays the office's."""
    from portal.models import MeetingStatus

    if meeting.status == MeetingStatus.DRAFT.value:
        return False
    return not (meeting.status == MeetingStatus.CANCELLED.value and meeting.notice_issued_on is None)


def _meeting_issued_clause():
    from portal.models import Meeting, MeetingStatus

    return Meeting.status.not_in([MeetingStatus.DRAFT.value, MeetingStatus.CANCELLED.value]) | (
        (Meeting.status == MeetingStatus.CANCELLED.value) & Meeting.notice_issued_on.is_not(None))


def can_see_meeting(user: User, meeting) -> bool:
    """The convening unit's readers (and the offices above it), and the
    offices of the lower units invited to the meeting. A draft only the
    convening office (and the offices above it)."""
    if not meeting_issued(meeting):
        return can_convene(user, meeting)
    if can(user, Permission.VIEW, meeting.unit):
        return True
    return any(can(user, Permission.ACT, inv.unit) or _viewer_over(user, inv.unit)
               for inv in meeting.unit_invitations)


def visible_meetings_clause(user: User):
    """A SQL clause on ``Meeting`` selecting the meetings the user may open: the
    same rule as ``can_see_meeting``, for lists and counts."""
    from portal.models import Meeting, MeetingUnitInvitation

    clauses = []
    issued = _meeting_issued_clause()
    for m in memberships_of(user):
        if m.role_enum is Role.LIAISON:
            clauses.append(issued & (Meeting.unit_id == m.unit_id))
            continue
        # Offices and viewers: meetings convened in their subtree (drafts: offices only), and
        # those a unit of their subtree is invited to, once the invitations went out.
        convened = Meeting.unit_id.in_(select(Unit.id).where(Unit.subtree_clause(m.unit)))
        clauses.append(convened if m.role_enum.is_office else issued & convened)
        clauses.append(issued & Meeting.id.in_(
            select(MeetingUnitInvitation.meeting_id).join(Unit, Unit.id == MeetingUnitInvitation.unit_id)
            .where(Unit.subtree_clause(m.unit))))
    return or_(*clauses) if clauses else false()


def meeting_workspace(user: User, meeting) -> Optional[Unit]:
    """The workspace through which the user opens the meeting: the convening unit's, or that
    of an invited unit the user reads (an invited office does not see the convening unit)."""
    if not meeting_issued(meeting):
        return meeting.unit if can_convene(user, meeting) else None
    if can(user, Permission.VIEW, meeting.unit):
        return meeting.unit
    return next((inv.unit for inv in meeting.unit_invitations
                 if can(user, Permission.ACT, inv.unit) or _viewer_over(user, inv.unit)), None)


def _viewer_over(user: User, unit: Unit) -> bool:
    return any(m.role == Role.VIEWER.value and unit.is_within(m.unit) for m in memberships_of(user))


def liaison_departments(user: User, unit: Unit) -> list[str]:
    """The departments the user is a liaison of, at exactly this unit."""
    return [m.department_code for m in memberships_of(user)
            if m.role == Role.LIAISON.value and m.unit_id == unit.id and m.department_code]


def can_convene(user: User, meeting_or_unit) -> bool:
    unit = getattr(meeting_or_unit, "unit", meeting_or_unit)
    return can(user, Permission.ACT, unit)


def can_propose(user: User, meeting) -> bool:
    """The convening office, or a liaison of an invited department of the unit."""
    if can_convene(user, meeting):
        return True
    invited = set(meeting.invited_department_codes)
    return any(code in invited for code in liaison_departments(user, meeting.unit))


def can_publish(user: User, meeting) -> bool:
    return can(user, Permission.PUBLISH, meeting.unit)


def can_see_draft_minutes(user: User, meeting) -> bool:
    """Until minutes are published, their drafts belong to the convening office
    and those it lets edit (the offices above it). Everyone else who may see
    the meeting reads only published revisions."""
    return can_convene(user, meeting)


def visible_revisions(user: User, meeting) -> list:
    """The minutes revisions the user may open, oldest first."""
    revisions = list(meeting.minutes.revisions) if meeting.minutes else []
    if can_see_draft_minutes(user, meeting):
        return revisions
    return [r for r in revisions if r.published]


def meeting_or_404(user: User, meeting_id: int):
    """Load a meeting for the API: 404 unless the user may see it."""
    from portal.models import Meeting

    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None or not can_see_meeting(user, meeting):
        abort(404)
    return meeting


# --- notifications ----------------------------------------------------------

_NOTE_LINK = re.compile(r"^/[a-z]+/(\d{1,12})/(?:(meetings|tasks)/(\d{1,12})/)?")


def notifications_out_of_reach(user: User, notes) -> set[int]:
    """The ids of the notifications (of one page) whose subject the user may no longer open:
    the workspace their link opens, and the meeting or task in it (a membership revoked, a
    meeting no longer visible). Their text and link are withheld when read. One query."""
    from sqlalchemy import String, cast, literal, union_all

    from portal.models import Meeting, Task

    subjects = {}
    for note in notes:
        match = _NOTE_LINK.match(note.link or "")
        if match:
            subjects[note.id] = (match.group(1), match.group(2), int(match.group(3) or 0))
    if not subjects:
        return set()
    codes = {code for code, _kind, _id in subjects.values()}
    meetings = {i for _code, kind, i in subjects.values() if kind == "meetings"}
    tasks = {i for _code, kind, i in subjects.values() if kind == "tasks"}
    parts = [select(literal("units", String).label("kind"), Unit.code.label("key"))
             .where(Unit.code.in_(codes), visible_units_clause(user))]
    if meetings:
        parts.append(select(literal("meetings", String), cast(Meeting.id, String))
                     .where(Meeting.id.in_(meetings), visible_meetings_clause(user)))
    if tasks:
        parts.append(select(literal("tasks", String), cast(Task.id, String))
                     .where(Task.id.in_(tasks), visible_tasks_clause(user)))
    reachable = {(kind, key) for kind, key in db.session.execute(union_all(*parts))}
    return {note_id for note_id, (code, kind, i) in subjects.items()
            if ("units", code) not in reachable or (kind and (kind, str(i)) not in reachable)}


# --- tasks ------------------------------------------------------------------

def _office_at(user: User, unit: Unit) -> bool:
    """An office role at exactly this unit (not above it)."""
    return any(m.role_enum.is_office and m.unit_id == unit.id for m in memberships_of(user))


def can_report(user: User, task) -> bool:
    """The office of the task's unit (or an office above it, reporting on its
    behalf: a district enters its streets' figures), and the liaisons of the
    task's lead and co-operating departments at that unit."""
    if can(user, Permission.ACT, task.unit):
        return True
    return any(code in task.departments for code in liaison_departments(user, task.unit))


def can_report_at(user: User, unit: Unit) -> bool:
    """Anyone who may report on some task of the unit: its office (or one above
    it) and its liaisons. Checked before an upload of reports is even read."""
    return can(user, Permission.ACT, unit) or bool(liaison_departments(user, unit))


def assigning_unit(task) -> Unit:
    """A cascaded instance is assigned by the parent's unit; a task of its own by its unit's office."""
    return task.parent.unit if task.parent_id else task.unit


def can_review(user: User, task) -> bool:
    return can(user, Permission.ACT, assigning_unit(task))


def can_issue(user: User, task) -> bool:
    """Cascade further, reassign departments: the office of the task's unit (or above)."""
    return can(user, Permission.ACT, task.unit)


def can_supervise(user: User, task) -> bool:
    """Send a supervision notice: an office strictly above the task's unit."""
    parent = task.unit.parent
    return parent is not None and can(user, Permission.ACT, parent)


def supervising_unit(user: User, task) -> Unit:
    """The office a supervision notice comes from: the user's office nearest above the task's unit."""
    offices = [m.unit for m in memberships_of(user) if m.role_enum.is_office and m.unit_id != task.unit_id
               and task.unit.is_within(m.unit)]
    return max(offices, key=lambda unit: unit.path.count("/"))


def can_respond(user: User, task) -> bool:
    return _office_at(user, task.unit)


def can_see_task(user: User, task) -> bool:
    """A task instance is open to whoever may see its unit (a liaison: its own unit only)."""
    return can(user, Permission.VIEW, task.unit)


def visible_tasks_clause(user: User):
    """A SQL clause on ``Task``: the instances the user may open (``can_see_task`` for lists and counts)."""
    from portal.models import Task

    return Task.unit_id.in_(select(Unit.id).where(visible_units_clause(user)))


def visible_children(user: User, task):
    """The statement of a task's child instances that the user may open, by unit code:
    the one rule for the task page and the API. A reader of the units below the task's unit
    opens every child: no filter then, and the order is ``ix_tasks_parent_order``'s (the first
    100 of a task passed to 2,586 streets come from the index, not from a sort of them all)."""
    from portal.models import Task

    stmt = select(Task).where(Task.parent_id == task.id)
    if not reads_below(user, task.unit):
        stmt = stmt.where(Task.unit_id.in_(select(Unit.id).where(visible_units_clause(user))))
    return stmt.order_by(Task.unit_code, Task.id)


def task_or_404(user: User, task_id: int):
    """Load a task for the API: 404 unless the user may see the task's unit."""
    from portal.models import Task

    task = db.session.get(Task, task_id)
    if task is None or not can_see_task(user, task):
        abort(404)
    return task


# --- activities and work teams -------------------------------------------------

def can_register_activity(user: User, unit: Unit, department: Optional[str] = None) -> bool:
    """The unit's office (or one above it) for any department; a liaison of the unit for its own
    department (with no department given: for some department)."""
    if can(user, Permission.ACT, unit):
        return True
    own = liaison_departments(user, unit)
    return bool(own) if department is None else department in own


def can_edit_activity(user: User, activity) -> bool:
    """Change or delete: the office of the activity's unit (or above), the liaison of its organising department."""
    return can_register_activity(user, activity.unit, activity.department_code)


def can_see_activity(user: User, activity) -> bool:
    return can(user, Permission.VIEW, activity.unit)


def visible_activities_clause(user: User):
    """A SQL clause on ``Activity``: those the user may open (``can_see_activity`` for lists and counts)."""
    from portal.models import Activity

    return Activity.unit_id.in_(select(Unit.id).where(visible_units_clause(user)))


def activity_or_404(user: User, activity_id: int):
    """Load an activity for the API: 404 unless the user may see its unit."""
    from portal.models import Activity

    activity = db.session.get(Activity, activity_id)
    if activity is None or not can_see_activity(user, activity):
        abort(404)
    return activity


def can_manage_team(user: User, unit: Unit) -> bool:
    """The team roster is kept by the unit's office (or an office above it)."""
    return can(user, Permission.ACT, unit)


def can_see_phones(user: User, unit: Unit) -> bool:
    """Team members' phone numbers: the unit's own office only; everyone else sees them masked."""
    return _office_at(user, unit)


# --- agency names ----------------------------------------------------------------------------

def can_name_agencies(user: User, unit: Unit) -> bool:
    """The agency names of the member departments at a unit (金水区教育局) are set by the unit's
    own office administrators: not by an office above it, a liaison or a viewer."""
    return any(m.role_enum is Role.OFFICE_ADMIN and m.unit_id == unit.id for m in memberships_of(user))


# --- briefings (工作简报) ----------------------------------------------------------

def can_read_briefings(user: User, unit: Unit) -> bool:
    """A unit's briefings (list, progress, download): the readers of its units below (its offices and
    viewers, and those above it), as for the consolidated view's ranking and reporting completeness.
    Only at a tier with units below whose workspace has the consolidated view: a street's view ranks
    nothing (it has no units below, and never sees its siblings), so a street has no briefing."""
    from portal.tiers import policy_for

    policy = policy_for(unit.tier)
    return policy.child_tier is not None and "dashboard" in policy.features and reads_below(user, unit)


def can_request_briefing(user: User, unit: Unit) -> bool:
    """Issuing a briefing takes the unit's next issue number (第N期): its office (or one above it).
    Viewers read and download the briefings issued."""
    return can_read_briefings(user, unit) and can(user, Permission.ACT, unit)


def briefing_or_404(user: User, briefing_id: int):
    """Load a briefing for the API: 404 unless the user may read its unit's briefings."""
    from portal.models import Briefing

    briefing = db.session.get(Briefing, briefing_id)
    if briefing is None or not can_read_briefings(user, briefing.unit):
        abort(404)
    return briefing
