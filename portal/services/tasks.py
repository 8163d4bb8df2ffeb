"""Tasks: creating (on their own or from a decision), cascading down the tiers,
reporting progress, submitting, reviewing, cancelling, supervising, and the
roll-up of progress from children to parents. Writes flush and audit; the
caller commits; fan-out and roll-up run as jobs after the commit."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Iterable, Optional

from flask_babel import gettext as _
from sqlalchemy import case, event, func, select, update
from sqlalchemy.orm import Session, lazyload, selectinload

from portal import access
from portal.extensions import db
from portal.formatting import round_half_up
from portal.metrics import mark_dirty
from portal.models import (Activity, CascadeRun, Decision, MeetingStatus, Membership, Role, SupervisionNotice,
                           Task, TaskEvidence, TaskReport, TaskReview, TaskStatus, Unit, User)
from portal.models._helpers import utcnow
from portal.models.tasks import OPEN_STATES
from portal.queue import enqueue
from portal.schemas import tasks as schemas
from portal.schemas import valid
from portal.services import Conflict, PermissionDenied, ServiceError
from portal.services.audit import record

T = TaskStatus
MAX_TITLE = schemas.MAX_TITLE
#: Fields that belong to the task's definition: set by the issuing unit, the same on every instance.
DEFINITION = ("title", "description", "due_date", "target_name", "target_unit", "target_value", "weight",
              "counted_category", "counted_measure", "counted_department")
#: The part of the definition that decides what a target counted from activities counts.
COUNTED = ("due_date", "counted_category", "counted_measure", "counted_department")


# --- the definition -------------------------------------------------------------

def _definition(data: dict[str, Any]) -> dict[str, Any]:
    """The task's columns from a loaded :class:`~portal.schemas.tasks.TaskIn`."""
    target = data["target"]
    counted = target.get("counted_from") if target else None
    return {
        "title": data["title"], "description": data["description"], "due_date": data["due_date"],
        "weight": data["weight"],
        "target_name": target["name"] if target else None,
        "target_unit": (target["unit"] or None) if target else None,
        "target_value": target["value"] if target else None,
        "counted_category": counted["category"] if counted else None,
        "counted_measure": counted["measure"] if counted else None,
        "counted_department": counted["department"] if counted else None,
    }


# --- creating -------------------------------------------------------------------

def create_task(unit: Unit, data: dict[str, Any], *, by: User, decision: Optional[Decision] = None) -> Task:
    if not access.can(by, access.Permission.ACT, unit):
        raise PermissionDenied(_("Only the office of %(unit)s may issue its tasks.", unit=unit.name))
    data = valid(schemas.TaskIn, data)
    fields = _definition(data)
    lead, co = data["lead_department"], data["co_departments"]
    task = Task(unit_id=unit.id, decision_id=decision.id if decision else None, lead_department_code=lead,
                co_department_codes=co, status=T.ASSIGNED.value, created_by_id=by.id, **fields)
    task.unit = unit
    db.session.add(task)
    db.session.flush()
    task.root_id = task.id
    if task.is_counted:
        task.actual_value = counted_value(task)
    db.session.flush()
    record("task.create", task, by=by, unit=unit, title=task.title, lead=lead, co=co,
           due=task.due_date.isoformat(), decision=decision.id if decision else None,
           counted_from=counted_from_json(task))
    mark_dirty([unit.id])
    enqueue("jobs.tasks.notify_task_assigned", task.id)
    return task


def task_from_decision(decision: Decision, *, by: User, due_date: Any = None) -> Task:
    """One click from a published meeting's decision."""
    meeting = decision.meeting
    if meeting.status != MeetingStatus.MINUTES_PUBLISHED.value:
        raise ServiceError(_("Tasks are issued from decisions of published minutes."))
    existing = db.session.scalar(select(Task).where(Task.decision_id == decision.id, Task.parent_id.is_(None),
                                                    Task.unit_id == meeting.unit_id))
    if existing is not None:
        raise Conflict(_("This decision already has a task: %(title)s.", title=existing.title))
    title = decision.text if len(decision.text) <= MAX_TITLE else decision.text[:MAX_TITLE - 1] + "…"
    due = due_date or decision.due_date or (meeting.starts_at.date() + timedelta(days=90))
    return create_task(meeting.unit, {"title": title, "description": decision.text[:schemas.MAX_TEXT],
                                      "lead_department": decision.lead_department_code,
                                      "co_departments": decision.co_department_codes, "due_date": due},
                       by=by, decision=decision)


def tasks_of_decision(decision: Decision) -> list[Task]:
    return list(db.session.scalars(select(Task).where(Task.decision_id == decision.id, Task.parent_id.is_(None))))


def edit_task(task: Task, data: dict[str, Any], *, by: User, version: int) -> Task:
    """Change the definition: only on the root instance, by its office; every instance follows."""
    if task.parent_id is not None:
        raise PermissionDenied(_("This task was issued by %(unit)s: its definition can only be changed there.",
                                 unit=task.parent.unit.name))
    if not access.can_issue(by, task):
        raise PermissionDenied(_("Only the issuing office may change the task."))
    _check_version(task, version)
    if task.status in (T.ACCEPTED.value, T.CANCELLED.value):
        raise ServiceError(_("An accepted or cancelled task can no longer be changed."))
    data = valid(schemas.TaskIn, data)
    fields = _definition(data)
    changes = {k: v for k, v in fields.items() if getattr(task, k) != v}
    if data["lead_department"] != task.lead_department_code:
        changes["lead_department_code"] = data["lead_department"]
    if data["co_departments"] != list(task.co_department_codes or []):
        changes["co_department_codes"] = data["co_departments"]
    if not changes:
        return task
    for key, value in changes.items():
        setattr(task, key, value)
    definition = {k: v for k, v in changes.items() if k in DEFINITION}
    if definition:
        db.session.execute(update(Task).where(Task.root_id == task.id, Task.id != task.id).values(
            **definition, version=Task.version + 1).execution_options(synchronize_session=False))
    db.session.flush()
    record("task.edit", task, by=by, unit=task.unit, **{k: str(v) for k, v in changes.items()})
    if definition:  # due date and weight count at every instance
        mark_dirty(db.session.scalars(select(Task.unit_id).where(Task.root_id == task.id).distinct()))
    if task.is_counted and any(k in COUNTED for k in changes):  # every instance counts again
        enqueue("jobs.tasks.recount_task", task.id)
    return task


def reassign_departments(task: Task, lead: str, co: list[str], *, by: User, version: Optional[int]) -> Task:
    """The receiving office may give its instance to other departments."""
    if not access.can_issue(by, task):
        raise PermissionDenied(_("Only the office of %(unit)s may reassign its instance.", unit=task.unit.name))
    _check_version(task, version)
    co = [c for c in co if c != lead]
    old = (task.lead_department_code, list(task.co_department_codes or []))
    task.lead_department_code, task.co_department_codes = lead, co
    db.session.flush()
    record("task.reassign", task, by=by, unit=task.unit, old_lead=old[0], old_co=old[1], lead=lead, co=co)
    return task


def _check_version(task: Task, version: Optional[int]) -> None:
    if version is not None and version != task.version:
        raise Conflict(_("Someone else changed this task while you were working on it (now version %(n)d). "
                         "Your input is kept: check the task and send it again.", n=task.version), "version")


# --- cascade -----------------------------------------------------------------------

def cascade_targets(task: Task, to: Any) -> list[Unit]:
    """Resolve "children", "streets", "tree" or a list of unit codes below the task's unit.
    "tree" is every unit below, the upper levels first (each unit after its parent)."""
    unit = task.unit
    if to == "children":
        stmt = select(Unit).where(Unit.parent_id == unit.id)
    elif to == "tree":  # without each unit's parent joined in: only its parent_id is needed
        below = db.session.scalars(select(Unit).options(lazyload(Unit.parent))
                                   .where(Unit.subtree_clause(unit), Unit.id != unit.id)).all()
        return sorted(below, key=lambda u: (u.path.count("/"), u.path))
    elif to == "streets":
        stmt = select(Unit).where(Unit.subtree_clause(unit), Unit.tier == "street", Unit.id != unit.id)
    elif isinstance(to, (list, tuple)) and to and all(isinstance(c, str) for c in to):
        codes = list(dict.fromkeys(c.strip() for c in to))
        found = {u.code: u for u in db.session.scalars(select(Unit).where(Unit.code.in_(codes)))}
        for code in codes:
            if code not in found or found[code].id == unit.id or not found[code].is_within(unit):
                raise ServiceError(_("%(code)s is not a unit below %(unit)s.", code=code, unit=unit.name), "to")
        return sorted(found.values(), key=lambda u: u.path)
    else:
        raise ServiceError(_("Cascade to “children”, “streets”, “tree” or a list of unit codes."), "to")
    return list(db.session.scalars(stmt.options(lazyload(Unit.parent)).order_by(Unit.path)))


def cascade_task(task: Task, to: Any, *, by: User) -> CascadeRun:
    """One action for the user; the job system does the fan-out."""
    if not access.can_issue(by, task):
        raise PermissionDenied(_("Only the office of %(unit)s may pass this task down.", unit=task.unit.name))
    if task.status in (T.ACCEPTED.value, T.CANCELLED.value):
        raise ServiceError(_("An accepted or cancelled task cannot be passed down."))
    if task.unit.tier == "street":
        raise ServiceError(_("A street has no units below it."), "to")
    if task.reports:
        raise ServiceError(_("This task already has progress reports of its own; it cannot be split any more."))
    new = units_to_receive(task, to)
    if not new:
        raise ServiceError(_("Every chosen unit already has this task."), "to")
    run = CascadeRun(task_id=task.id, target=to if isinstance(to, str) else list(to), total=len(new),
                     requested_by_id=by.id)
    db.session.add(run)
    db.session.flush()
    record("task.cascade", task, by=by, unit=task.unit, to=to if isinstance(to, str) else list(to), units=len(new),
           run=run.id)
    enqueue("jobs.tasks.run_cascade", run.id, timeout=1800)
    return run


def units_to_receive(task: Task, to: Any) -> list[Unit]:
    """The chosen units that do not have an instance of the task yet (for "tree": no instance
    anywhere below the task, however it got there)."""
    if to == "tree":
        already = set(instances_below(task))
    else:
        already = set(db.session.scalars(select(Task.unit_id).where(Task.parent_id == task.id)))
    return [u for u in cascade_targets(task, to) if u.id not in already]


def instances_below(task: Task) -> dict[int, int]:
    """{unit id: task id} of every instance below the task (its children, theirs …)."""
    found: dict[int, int] = {}
    frontier = [task.id]
    while frontier:  # one query per level, at most three
        rows = db.session.execute(select(Task.unit_id, Task.id).where(
            unit_in(frontier, Task.parent_id, "parent_ids"))).all()
        found.update(rows)
        frontier = [task_id for _unit, task_id in rows]
    return found


def has_units_to_receive(task: Task) -> bool:
    """Whether some unit below the task's unit has no instance of it yet (one query): when every
    unit below has one, passing down has nothing left to do and the page does not offer it.

    The units holding an instance are read once (the tree by ``ix_tasks_root_id``) and the units
    below looked up in them in memory: as one probe of the tasks a unit (NOT EXISTS), PostgreSQL
    took 1.3 s for a provincial task at every one of the 2,786 units."""
    holding = select(Task.unit_id).where(Task.root_id == (task.root_id or task.id))
    return db.session.scalar(select(Unit.id).where(Unit.subtree_clause(task.unit), Unit.id != task.unit_id,
                                                   Unit.id.not_in(holding)).limit(1)) is not None


def leaf_figures(task: Task) -> tuple[int, int]:
    """(leaf instances below the task that are not cancelled, how many of them have reported): the
    units its rolled-up progress is taken across, in one query ("0.4% across 2,786 units, 12 reported").

    The task's tree (its root's instances, by ``ix_tasks_root_id``) is read once: a leaf is an
    instance that is no other's parent in it (every child of an instance is in its tree), found
    against the tree's parent ids in memory rather than by one index probe per instance. An
    instance still assigned has never reported (the first report makes it in progress, and nothing
    makes it assigned again), so only the others look for a report. Instances of the tree outside
    the task's unit's subtree are not below it; the root's tree is all inside its unit's subtree."""
    root_id = task.root_id or task.id
    tree = select(Task.id, Task.parent_id, Task.status, Task.unit_id).where(Task.root_id == root_id).cte("tree")
    parents = select(tree.c.parent_id).where(tree.c.parent_id.is_not(None))
    reported = select(TaskReport.id).where(TaskReport.task_id == tree.c.id).exists()
    stmt = (select(func.count(), func.coalesce(func.sum(case((tree.c.status == T.ASSIGNED.value, 0), (reported, 1),
                                                              else_=0)), 0))
            .select_from(tree)
            .where(tree.c.id != task.id, tree.c.status != T.CANCELLED.value, tree.c.id.not_in(parents)))
    if task.id != root_id:
        stmt = stmt.join(Unit, Unit.id == tree.c.unit_id).where(Unit.subtree_clause(task.unit))
    total, with_reports = db.session.execute(stmt).one()
    return int(total), int(with_reports)


def insert_instances(task: Task, unit_ids: list[int], *, created_by_id: Optional[int],
                     parent_ids: Optional[list[int]] = None) -> dict[int, int]:
    """Insert the child instances of ``task`` at ``unit_ids`` in one INSERT … SELECT: each keeps
    the task's definition and departments (sent once, as parameters, not once a row) and starts
    as assigned; the unit's id and code come from ``units``. Without ``parent_ids`` every row is
    a child of ``task``; with them (the instances of the units' parent units, one per parent
    unit: a cascade down the whole tree) each instance's parent is its parent unit's instance.
    Returns {unit id: new instance id}."""
    from sqlalchemy import JSON, insert, literal
    from sqlalchemy.orm import aliased

    if not unit_ids:
        return {}
    table = Task.__table__
    definition = {
        "root_id": task.root_id or task.id, "decision_id": task.decision_id, "title": task.title,
        "description": task.description, "lead_department_code": task.lead_department_code,
        "co_department_codes": list(task.co_department_codes or []), "due_date": task.due_date,
        "target_name": task.target_name, "target_unit": task.target_unit, "target_value": task.target_value,
        "counted_category": task.counted_category, "counted_measure": task.counted_measure,
        "counted_department": task.counted_department, "weight": task.weight, "status": T.ASSIGNED.value,
        "progress": Decimal("0"), "created_by_id": created_by_id, "created_at": utcnow(), "version": 1}
    columns = [literal(value, JSON if key == "co_department_codes" else table.c[key].type).label(key)
               for key, value in definition.items()]
    if parent_ids is None:
        rows = (select(Unit.id, Unit.code, literal(task.id, table.c.parent_id.type), *columns)
                .where(unit_in(unit_ids, Unit.id)))
    else:
        parent = aliased(Task)
        rows = (select(Unit.id, Unit.code, parent.id, *columns)
                .join(parent, parent.unit_id == Unit.parent_id)
                .where(unit_in(unit_ids, Unit.id), unit_in(parent_ids, parent.id, "parent_ids")))
    stmt = insert(table).from_select(["unit_id", "unit_code", "parent_id", *definition], rows)
    if db.engine.dialect.insert_returning:
        return dict(db.session.execute(stmt.returning(table.c.unit_id, table.c.id)).all())
    db.session.execute(stmt)
    return dict(db.session.execute(select(Task.unit_id, Task.id).where(
        unit_in(unit_ids), Task.root_id == definition["root_id"],
        Task.parent_id == task.id if parent_ids is None else unit_in(parent_ids, Task.parent_id, "parent_ids"))).all())


# --- reporting and review --------------------------------------------------------------

def _has_children(task: Task) -> bool:
    return db.session.scalar(select(Task.id).where(Task.parent_id == task.id).limit(1)) is not None


def report_progress(task: Task, data: dict[str, Any], *, by: User, files: Iterable = ()) -> TaskReport:
    if not access.can_report(by, task):
        raise PermissionDenied(_("Only the office of %(unit)s and the task's departments there may report on it.",
                                 unit=task.unit.name))
    if task.status in (T.ACCEPTED.value, T.CANCELLED.value):
        raise ServiceError(_("The task is %(state)s: no more reports.", state=task.status_enum.label))
    if task.status == T.SUBMITTED.value:
        raise ServiceError(_("The task is waiting for review; reports resume if it is returned."))
    if _has_children(task):
        raise ServiceError(_("This task is passed down: its progress comes from the units below."))
    data = valid(schemas.ReportIn, data)
    percent, actual, narrative = data["percent"], data["actual_value"], data["narrative"]
    if task.is_counted:
        if actual is not None:
            raise ServiceError(_("actual_value: this target is counted from the activity register; register the "
                                 "activities instead of typing the value."), "actual_value")
        actual = task.actual_value  # the report keeps the count it was made with
    departments = [c for c in access.liaison_departments(by, task.unit) if c in task.departments]
    report = TaskReport(task_id=task.id, department_code=departments[0] if departments else None, percent=percent,
                        actual_value=actual, narrative=narrative, reported_by_id=by.id)
    db.session.add(report)
    db.session.flush()
    from portal.uploads import save_upload

    for upload in files:
        if upload and getattr(upload, "filename", None):
            stored = save_upload(upload)
            db.session.add(TaskEvidence(report_id=report.id, original_name=stored.original_name,
                                        stored_name=stored.stored_name, content_type=stored.content_type,
                                        size=stored.size, sha256=stored.sha256))
    task.progress = percent
    if actual is not None and not task.is_counted:
        task.actual_value = actual
    if task.status in (T.ASSIGNED.value, T.RETURNED.value):
        task.status = T.IN_PROGRESS.value
    db.session.flush()
    record("task.report", task, by=by, unit=task.unit, percent=str(percent),
           actual=str(actual) if actual is not None else None, report=report.id)
    mark_dirty([task.unit_id])
    _rollup_later(task)
    return report


def submit_task(task: Task, *, by: User, version: Optional[int] = None) -> Task:
    if not access.can_report(by, task):
        raise PermissionDenied(_("Only the office of %(unit)s and the task's departments there may submit it.",
                                 unit=task.unit.name))
    _check_version(task, version)
    if task.status not in (T.IN_PROGRESS.value, T.RETURNED.value, T.ASSIGNED.value):
        raise ServiceError(_("A task that is %(state)s cannot be submitted.", state=task.status_enum.label))
    if not task.reports:
        raise ServiceError(_("Report progress before submitting the task for review."))
    task.status = T.SUBMITTED.value
    db.session.flush()
    record("task.submit", task, by=by, unit=task.unit)
    mark_dirty([task.unit_id])
    enqueue("jobs.tasks.notify_task_submitted", task.id)
    _rollup_later(task)
    return task


def review_task(task: Task, decision: str, comment: str, *, by: User, version: Optional[int] = None) -> TaskReview:
    if not access.can_review(by, task):
        raise PermissionDenied(_("Only %(unit)s, which assigned this task, may review it.",
                                 unit=access.assigning_unit(task).name))
    _check_version(task, version)
    if decision not in ("accept", "return"):
        raise ServiceError(_("decision must be “accept” or “return”."), "decision")
    if task.status != T.SUBMITTED.value:
        raise ServiceError(_("Only a submitted task can be reviewed; this one is %(state)s.",
                             state=task.status_enum.label), "decision")
    comment = comment or ""
    latest = task.reports[0] if task.reports else None
    if decision == "accept" and latest is not None and latest.reported_by_id == by.id:
        raise PermissionDenied(_("You reported this task's latest progress yourself: someone else in the assigning "
                                 "office must accept it."))
    if decision == "return" and not comment:
        raise ServiceError(_("Say why the task is returned: the unit will read it."), "comment")
    review = TaskReview(task_id=task.id, decision=decision, comment=comment, reviewed_by_id=by.id)
    db.session.add(review)
    task.status = T.ACCEPTED.value if decision == "accept" else T.RETURNED.value
    db.session.flush()
    record("task.accept" if decision == "accept" else "task.return", task, by=by, unit=task.unit, comment=comment)
    _settle_decision(task)
    mark_dirty([task.unit_id])
    enqueue("jobs.tasks.notify_task_reviewed", review.id)
    _rollup_later(task)
    return review


def cancel_task(task: Task, reason: str, *, by: User) -> Task:
    if not access.can_review(by, task):
        raise PermissionDenied(_("Only %(unit)s, which issued this task, may cancel it.",
                                 unit=access.assigning_unit(task).name))
    if not reason:
        raise ServiceError(_("Say why the task is cancelled."), "reason")
    if task.status in (T.ACCEPTED.value, T.CANCELLED.value):
        raise ServiceError(_("The task is already %(state)s.", state=task.status_enum.label))
    task.status = T.CANCELLED.value
    task.cancel_reason = reason
    # Every instance below is cancelled with it.
    cancelled = _descendant_ids(task)
    if cancelled:
        db.session.execute(update(Task).where(Task.id.in_(cancelled), Task.status != T.ACCEPTED.value)
                           .values(status=T.CANCELLED.value, cancel_reason=reason, version=Task.version + 1)
                           .execution_options(synchronize_session=False))
    db.session.flush()
    record("task.cancel", task, by=by, unit=task.unit, reason=reason, instances_below=len(cancelled))
    mark_dirty([task.unit_id, *(db.session.scalars(select(Task.unit_id).where(Task.id.in_(cancelled)).distinct())
                                if cancelled else [])])
    _rollup_later(task)
    return task


def _descendant_ids(task: Task) -> list[int]:
    ids, frontier = [], [task.id]
    while frontier:  # at most three levels below: one query per level
        frontier = list(db.session.scalars(select(Task.id).where(Task.parent_id.in_(frontier))))
        ids += frontier
    return ids


# --- supervision -----------------------------------------------------------------------

def send_notice(task: Task, text: str, *, by: User) -> SupervisionNotice:
    if not access.can_supervise(by, task):
        raise PermissionDenied(_("Supervision notices come from an office above %(unit)s.", unit=task.unit.name))
    if not text:
        raise ServiceError(_("Write what the notice asks for."), "text")
    notice = SupervisionNotice(task_id=task.id, from_unit_id=access.supervising_unit(by, task).id, text=text,
                               sent_by_id=by.id)
    db.session.add(notice)
    db.session.flush()
    record("task.notice", task, by=by, unit=task.unit, notice=notice.id, text=text[:200])
    mark_dirty([task.unit_id])
    enqueue("jobs.tasks.notify_notice", notice.id)
    return notice


def respond_notice(notice: SupervisionNotice, response: str, *, by: User) -> SupervisionNotice:
    if not access.can_respond(by, notice.task):
        raise PermissionDenied(_("The office of %(unit)s responds to this notice.", unit=notice.task.unit.name))
    if not notice.is_open:
        raise ServiceError(_("This notice has already been answered."))
    if not response:
        raise ServiceError(_("Write the response."), "response")
    notice.response, notice.responded_by_id, notice.responded_at = response, by.id, utcnow()
    db.session.flush()
    record("task.notice_response", notice.task, by=by, unit=notice.task.unit, notice=notice.id)
    mark_dirty([notice.task.unit_id])
    return notice


# --- roll-up -------------------------------------------------------------------------------

def _rollup_later(task: Task) -> None:
    if task.parent_id:
        enqueue("jobs.tasks.rollup", task.parent_id, job_id=f"rollup-{task.parent_id}")


def rollup(task_id: int) -> list[int]:
    """Recompute a cascaded task from its children, then its ancestors: weighted
    progress, summed actual value, done when all children are accepted."""
    touched = []
    current = db.session.get(Task, task_id)
    while current is not None:
        row = db.session.execute(
            select(func.count(Task.id), func.sum(Task.progress * Task.weight), func.sum(Task.weight),
                   func.sum(Task.actual_value),
                   func.sum(case((Task.status == T.ACCEPTED.value, 1), else_=0)))
            .where(Task.parent_id == current.id, Task.status != T.CANCELLED.value)).one()
        count, weighted, weights, actual, accepted = row
        if count:
            current.progress = round_half_up(Decimal(weighted) / Decimal(weights)) if weights else Decimal("0")
            current.actual_value = round_half_up(actual) if actual is not None else None
            if current.status not in (T.CANCELLED.value, T.ACCEPTED.value):
                if accepted == count:
                    current.status = T.ACCEPTED.value
                    current.progress = Decimal("100")
                    _settle_decision(current)
                elif current.status == T.ASSIGNED.value and current.progress > 0:
                    current.status = T.IN_PROGRESS.value
            current.rolled_up_at = utcnow()
            touched.append(current.id)
        current = current.parent
    db.session.flush()
    return touched


# --- targets counted from activities ---------------------------------------------------------
#
# A task whose target is counted from activities (``Task.counted_category`` set) has, at each leaf
# instance, the sum of its measure over the instance's unit's own registered activities of the
# category (organised by the department, if one is given) that start between 1 January of the due
# date's year and the due date. An instance passed down gets its actual value from the roll-up of
# the instances below, as typed values do. The count is refreshed after the commit by a job:
# ``jobs.tasks.recount_activities`` when a unit's activities change, ``jobs.tasks.recount_task``
# when the definition changes, and at the end of a cascade. Only open instances (not accepted or
# cancelled) are counted again: an accepted task keeps the figure it was accepted with.

def counted_from_json(task: Task) -> Optional[dict[str, Any]]:
    if not task.is_counted:
        return None
    return {"category": task.counted_category, "measure": task.counted_measure,
            "department": task.counted_department}


def _measure(measure) -> Any:
    """The value one activity adds; ``measure`` a string or the task's column (set-based)."""
    from sqlalchemy import Numeric, cast, literal

    if isinstance(measure, str):
        return {"count": literal(1), "person_times": Activity.person_times,
                "volunteer_hours": Activity.volunteer_hours, "funds": Activity.funds}[measure]
    return cast(case((measure == "person_times", Activity.person_times),
                     (measure == "volunteer_hours", Activity.volunteer_hours),
                     (measure == "funds", Activity.funds), else_=1), Numeric(14, 2))


def _matching(task_or_row) -> list:
    """The conditions on ``Activity`` for one task (a Task) or, set-based, for the row of the
    UPDATE (the ``Task`` class: the columns of the row being updated)."""
    from sqlalchemy import extract, or_

    if isinstance(task_or_row, Task):
        task = task_or_row
        first, last = task.counted_period()
        department = ([Activity.department_code == task.counted_department] if task.counted_department else [])
        return [Activity.unit_id == task.unit_id, Activity.category_code == task.counted_category,
                Activity.start_date >= first, Activity.start_date <= last, *department]
    return [Activity.unit_id == Task.unit_id, Activity.category_code == Task.counted_category,
            or_(Task.counted_department.is_(None), Activity.department_code == Task.counted_department),
            extract("year", Activity.start_date) == extract("year", Task.due_date),
            Activity.start_date <= Task.due_date]


def matching_activities(task: Task):
    """The activities behind a counted target, newest first."""
    return (select(Activity).where(*_matching(task))
            .order_by(Activity.start_date.desc(), Activity.id.desc()))


def counted_value(task: Task) -> Decimal:
    total = db.session.scalar(select(func.coalesce(func.sum(_measure(task.counted_measure)), 0))
                              .where(*_matching(task)))
    return round_half_up(Decimal(total))


def recount(*, unit_id: Optional[int] = None, root_id: Optional[int] = None) -> list[tuple[int, Optional[int]]]:
    """Count again, in one statement, the open leaf instances with a counted target (of a unit, of
    a task's tree, or all of them); returns (id, parent id) of those whose value changed."""
    from sqlalchemy import exists
    from sqlalchemy.orm import aliased

    child = aliased(Task)
    counted = (select(func.coalesce(func.sum(_measure(Task.counted_measure)), 0)).where(*_matching(Task))
               .correlate(Task).scalar_subquery())
    stmt = update(Task).where(Task.counted_category.is_not(None), Task.status.in_(OPEN_STATES),
                              ~exists().where(child.parent_id == Task.id),
                              Task.actual_value.is_distinct_from(counted))
    if unit_id is not None:
        stmt = stmt.where(Task.unit_id == unit_id)
    if root_id is not None:
        stmt = stmt.where(Task.root_id == root_id)
    rows = db.session.execute(stmt.values(actual_value=counted).returning(Task.id, Task.parent_id)
                              .execution_options(synchronize_session=False)).all()
    return [(row[0], row[1]) for row in rows]


def rollup_actuals(root_id: int) -> None:
    """The actual values of a task's instances passed down, set-based, from the lowest tier up:
    the sum of the instances below (not cancelled), as :func:`rollup` does one chain at a time."""
    from sqlalchemy import exists
    from sqlalchemy.orm import aliased

    from portal.models.units import TIERS

    child = aliased(Task)
    total = (select(func.sum(child.actual_value)).where(child.parent_id == Task.id, child.status != T.CANCELLED.value)
             .correlate(Task).scalar_subquery())
    for tier in reversed(TIERS[:-1]):
        db.session.execute(update(Task).where(
            Task.root_id == root_id, Task.unit_id.in_(select(Unit.id).where(Unit.tier == tier)),
            exists().where(child.parent_id == Task.id)).values(actual_value=total, rolled_up_at=utcnow())
            .execution_options(synchronize_session=False))


def recount_and_roll_up(*, unit_id: Optional[int] = None, root_id: Optional[int] = None) -> int:
    """Count the leaves again and roll the changes up; returns how many leaves changed."""
    changed = recount(unit_id=unit_id, root_id=root_id)
    if root_id is not None:
        rollup_actuals(root_id)
    else:
        for parent_id in sorted({parent for _id, parent in changed if parent is not None}):
            rollup(parent_id)
    return len(changed)


_RECOUNT_CHECKED = "portal_recount_checked"


def recount_later(unit_id: int) -> None:
    """An activity of the unit was registered, changed or deleted: if the unit has an open task
    counted from activities, count it again after the commit (once per unit and transaction)."""
    session = db.session()
    checked = session.info.setdefault(_RECOUNT_CHECKED, set())
    if unit_id in checked:
        return
    checked.add(unit_id)
    if db.session.scalar(select(Task.id).where(Task.unit_id == unit_id, Task.counted_category.is_not(None),
                                               Task.status.in_(OPEN_STATES)).limit(1)) is not None:
        enqueue("jobs.tasks.recount_activities", unit_id)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_recount_checks(session, *args) -> None:
    session.info.pop(_RECOUNT_CHECKED, None)


def _settle_decision(task: Task) -> None:
    """A decision is done when every task issued from it is accepted: it then no
    longer comes back for review at the next meeting."""
    from portal.models import DecisionStatus

    if task.parent_id is not None or task.decision_id is None or task.status != T.ACCEPTED.value:
        return
    decision = db.session.get(Decision, task.decision_id)
    tasks = tasks_of_decision(decision)
    if decision.status == DecisionStatus.OPEN.value and all(t.status == T.ACCEPTED.value for t in tasks):
        decision.status = DecisionStatus.CLOSED.value
        db.session.flush()
        record("decision.status", decision, by=None, unit=task.unit, status=decision.status, task=task.id)
        mark_dirty([decision.meeting.unit_id])


# --- reading: the supervision lists ------------------------------------------------------------

SCOPES = ("unit", "subtree", "mine")


def task_list(unit: Unit, user: User, *, today: date, scope: str = "unit", status: str = "", department: str = "",
              due_within: Optional[int] = None, overdue: bool = False, q: str = ""):
    """The statement behind every task list (pages, Excel, API): the unit's tasks, its subtree's
    (only the units the user may see), or those of the user's own departments, filtered.

    Ordered by (due date, unit code, id), which ``ix_tasks_list_order`` serves: a page of the
    province's subtree reads its rows from the index, with the subtree as a set of unit ids
    (no join, no sort of a whole due-date group). The subtree's unit ids are read first (one
    query on ``units.path``) and passed as one array: the planner then knows how many units the
    list covers whatever the units' statistics say (with ``IN (SELECT … LIKE …)`` it guessed one
    unit on fresh data and sorted all 147,000 rows to show 20), and picks the index's order for a
    province or a city and the unit index for a district; the one root of the tree, read whole by
    the reader, needs no filter at all (every task is in its subtree). A task's unit is loaded with the page
    (one query for its units), its lead department from the session's department catalogue."""
    stmt = select(Task).options(selectinload(Task.unit), lazyload(Task.lead_department))
    if scope == "subtree":
        units = select(Unit.id).where(Unit.subtree_clause(unit))
        if not access.reads_below(user, unit):  # the whole subtree, or (a liaison here) only what it may open
            units = units.where(access.visible_units_clause(user))
            stmt = stmt.where(unit_in(db.session.scalars(units).all()))
        elif not _is_whole_tree(unit):
            stmt = stmt.where(unit_in(db.session.scalars(units).all()))
        # else: the only root (the province), read whole: every task is in its subtree, no filter at all
    elif scope == "mine":
        stmt = stmt.where(Task.unit_id == unit.id, Task.department_clause(access.liaison_departments(user, unit)))
    else:
        stmt = stmt.where(Task.unit_id == unit.id)
    if status:
        stmt = stmt.where(Task.status == status)
    if department:
        stmt = stmt.where(Task.department_clause([department]))
    if due_within is not None:
        stmt = stmt.where(Task.open_clause(), Task.due_date >= today,
                          Task.due_date <= today + timedelta(days=due_within))
    if overdue:
        stmt = stmt.where(Task.overdue_clause(today))
    if q:
        stmt = stmt.where(Task.title.contains(q, autoescape=True))
    return stmt.order_by(Task.due_date, Task.unit_code, Task.id)


def _is_whole_tree(unit: Unit) -> bool:
    """Whether ``unit`` is the one root of the tree (every unit, and so every task, is below it)."""
    return unit.parent_id is None and db.session.scalar(
        select(Unit.id).where(Unit.parent_id.is_(None), Unit.id != unit.id).limit(1)) is None


def unit_in(unit_ids: list[int], column=None, name: str = "unit_ids"):
    """``column`` (``Task.unit_id`` by default) in a list of ids: one array parameter on
    PostgreSQL (one cached statement, its length known to the planner), an IN list on SQLite."""
    from sqlalchemy import Integer, any_, bindparam, false
    from sqlalchemy.dialects.postgresql import ARRAY

    column = Task.unit_id if column is None else column
    if not unit_ids:
        return false()
    if db.engine.dialect.name == "postgresql":
        return column == any_(bindparam(name, list(unit_ids), type_=ARRAY(Integer)))
    return column.in_(list(unit_ids))


# --- who hears about it ----------------------------------------------------------------------

def responsible_user_ids(task: Task) -> list[int]:
    """The office of the task's unit and the liaisons of its departments there."""
    stmt = select(Membership.user_id).join(User, User.id == Membership.user_id).where(
        Membership.unit_id == task.unit_id, User.active.is_(True),
        (Membership.role.in_([Role.OFFICE_ADMIN.value, Role.OFFICE_STAFF.value]))
        | ((Membership.role == Role.LIAISON.value) & Membership.department_code.in_(task.departments)))
    return sorted(set(db.session.scalars(stmt)))


def office_user_ids(unit: Unit) -> list[int]:
    stmt = select(Membership.user_id).join(User, User.id == Membership.user_id).where(
        Membership.unit_id == unit.id, User.active.is_(True),
        Membership.role.in_([Role.OFFICE_ADMIN.value, Role.OFFICE_STAFF.value]))
    return sorted(set(db.session.scalars(stmt)))
