"""Task pages: the supervision list, a task's page with its action forms, the
cascade progress page, and the one click from a meeting's decision.

Every view loads through ``g.unit`` (``Task.get_for_unit_or_404``), checks,
calls one service, and responds. A refused form is shown again with the
user's input and the service's message next to the field (400), or the
conflict message when someone else changed the task first (409).
"""
from __future__ import annotations

from collections import Counter

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal import access, args
from portal.clock import local_today
from portal.access import Permission
from portal.blueprints.tasks import bp
from portal.extensions import db
from portal.models import (ActivityCategory, CascadeRun, Decision, Department, Meeting, SupervisionNotice, Task, TaskEvidence,
                           TaskReport, TaskReview, TaskStatus, Unit)
from portal.models.tasks import OPEN_STATES, REPORTABLE_STATES
from portal.pagination import paginate
from portal.schemas import load
from portal.schemas import tasks as schemas
from portal.services import PermissionDenied, ServiceError
from portal.services import tasks as svc
from portal.tiers import policy_for

CHILDREN_SHOWN = 100
#: What the task page's table of children shows of each (with its unit's name).
CHILD_COLUMNS = (Task.id, Task.status, Task.progress, Task.actual_value, Task.due_date)
#: The activities listed under a target counted from them (the register shows them all).
COUNTED_SHOWN = 20


# --- loading -----------------------------------------------------------------------

def _task_or_404(task_id: int) -> Task:
    """The unit's own instances and its subtree's, and only when the user may see the task's unit
    (a liaison sees its own unit's tasks, not those of the units below)."""
    task = Task.get_for_unit_or_404(task_id, g.unit)
    if not access.can(current_user, Permission.VIEW, task.unit):
        abort(404)
    return task


def _errors(exc: ServiceError) -> dict[str, str]:
    """Every field's message of a refused form (the schema's), or the service's one refusal."""
    return dict(getattr(exc, "errors", None) or {exc.field or "_": exc.message})


def _definition_values(task: Task) -> dict:
    """The edit form's fields, filled from the task."""
    from portal.blueprints.tasks import format_quantity

    return {"title": task.title, "description": task.description, "due_date": task.due_date.isoformat(),
            "weight": format_quantity(task.weight), "lead_department": task.lead_department_code,
            "co_departments": list(task.co_department_codes or []), "target_name": task.target_name or "",
            "target_unit": task.target_unit or "",
            "target_value": format_quantity(task.target_value) if task.target_value is not None else "",
            "counted_category": task.counted_category or "", "counted_measure": task.counted_measure or "",
            "counted_department": task.counted_department or ""}


def _form_values(form) -> dict:
    values = {key: form.get(key, "") for key in ("title", "description", "due_date", "weight", "lead_department",
                                                  "target_name", "target_unit", "target_value", "counted_category",
                                                  "counted_measure", "counted_department")}
    values["co_departments"] = form.getlist("co_departments")
    return values


# --- the supervision list -------------------------------------------------------------

def _list_query():
    """The supervision list's statement and filters, shared by the page and the Excel export.
    Filters the schema refuses are dropped with a message: the unfiltered list is shown."""
    try:
        f = args.query(schemas.TaskFilter)
    except ServiceError as exc:
        flash(exc.message, "warning")
        f = load(schemas.TaskFilter, {})
    scope, status, department, due_within, overdue, q = (f["scope"], f["status"] or "", f["department"] or "",
                                                         f["due_within"], f["overdue"], f["q"])
    today = local_today()
    own_departments = access.liaison_departments(current_user, g.unit)

    stmt = svc.task_list(g.unit, current_user, today=today, scope=scope, status=status, department=department,
                         due_within=due_within, overdue=overdue, q=q)
    return stmt, dict(
        scope=scope, status=status, department=department, due_within=due_within, overdue=overdue, q=q,
        today=today, own_departments=own_departments)


@bp.route("/")
def index():
    stmt, ctx = _list_query()
    scope, status, department, due_within, overdue, q, today, own_departments = (
        ctx["scope"], ctx["status"], ctx["department"], ctx["due_within"], ctx["overdue"], ctx["q"], ctx["today"],
        ctx["own_departments"])
    tasks = paginate(stmt)
    ids = [t.id for t in tasks.items]
    noticed = set(db.session.scalars(select(SupervisionNotice.task_id).where(
        SupervisionNotice.task_id.in_(ids), SupervisionNotice.responded_at.is_(None)))) if ids else set()
    # The filters as they go back into the scope tabs and the pager: only those that are set.
    filters = {key: value for key, value in (("status", status), ("department", department),
                                             ("due_within", due_within), ("overdue", "1" if overdue else None),
                                             ("q", q)) if value not in (None, "")}
    return render_template(
        "tasks/index.html", tasks=tasks, noticed=noticed, today=today, scope=scope, status=status, filters=filters,
        department=department, due_within=due_within, overdue=overdue, q=q, statuses=list(TaskStatus),
        departments=Department.all(), own_departments=own_departments,
        can_create=access.can(current_user, Permission.ACT, g.unit),
        can_import=access.can_report_at(current_user, g.unit))


# --- creating and editing ----------------------------------------------------------------

@bp.route("/new", methods=["GET", "POST"])
def create():
    if not access.can(current_user, Permission.ACT, g.unit):
        abort(403)
    values: dict = {"weight": "1", "co_departments": []}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _form_values(request.form)
        try:
            task = svc.create_task(g.unit, args.form(schemas.TaskIn), by=current_user)
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            errors.update(_errors(exc))
        else:
            task_id = task.id
            db.session.commit()
            flash(_("The task is issued. Pass it down to the units below, or report on it here."), "success")
            return redirect(url_for(".detail", task_id=task_id))
    return render_template("tasks/new.html", values=values, errors=errors, departments=Department.all(),
                           categories=ActivityCategory.all()), 400 if errors else 200


@bp.route("/<int:task_id>/edit", methods=["GET", "POST"])
def edit(task_id: int):
    task = _task_or_404(task_id)
    if task.parent_id is not None or not access.can_issue(current_user, task):
        abort(403)
    values = _definition_values(task)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = _form_values(request.form)
        try:
            svc.edit_task(task, args.form(schemas.TaskIn), by=current_user,
                          version=args.form(schemas.VersionIn)["version"])
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            errors.update(_errors(exc))
            status = exc.status
        else:
            db.session.commit()
            flash(_("The task is updated; every instance below follows."), "success")
            return redirect(url_for(".detail", task_id=task.id))
    # After a conflict the form carries the current version: sending it again is a deliberate overwrite.
    return render_template("tasks/edit.html", task=task, values=values, errors=errors,
                           departments=Department.all(), categories=ActivityCategory.all(),
                           today=local_today()), status


# --- a task's page --------------------------------------------------------------------------

def _render_detail(task: Task, *, failed: str | None = None, error: ServiceError | None = None):
    """The task's page; after a refused form, that form shows the user's input and the message."""
    user = current_user
    reads_below = access.reads_below(user, task.unit)
    # The first children by unit code, straight from ``ix_tasks_parent_order`` (LIMIT on the index's
    # order, in a subquery: whatever the planner guesses of their number), then joined to their units'
    # names: the columns the table shows, as plain rows. (Whole tasks joined to their units, their
    # parents and departments: PostgreSQL sorted all 2,586 children of a provincial task to show 100,
    # and loading them cost more than the rest of the page.)
    first = (access.visible_children(user, task).with_only_columns(*CHILD_COLUMNS, Task.unit_id, Task.unit_code)
             .limit(CHILDREN_SHOWN).subquery())
    children = db.session.execute(
        select(*(first.c[c.key] for c in CHILD_COLUMNS), Unit.name.label("unit_name"))
        .join(Unit, Unit.id == first.c.unit_id).order_by(first.c.unit_code, first.c.id)).all()
    # Passed down or not decides what can be done here; which instances below are shown is the reader's.
    # A reader of the units below sees every child: it is passed down when there is one to show.
    passed_down = bool(children) or (not reads_below and db.session.scalar(
        select(Task.id).where(Task.parent_id == task.id).limit(1)) is not None)
    if not children:
        child_counts = {}
    elif len(children) < CHILDREN_SHOWN:  # every child the reader may open is shown: counted from them
        child_counts = dict(Counter(c.status for c in children))
    else:  # a reader of the units below counts every child (by ``ix_tasks_parent_order``, no subtree filter)
        child_counts = task.child_summary(*(() if reads_below else (access.visible_tasks_clause(user),)))
    reports = db.session.scalars(
        select(TaskReport).where(TaskReport.task_id == task.id)
        .options(selectinload(TaskReport.evidence), selectinload(TaskReport.reported_by))
        .order_by(TaskReport.id.desc())).all()
    reviews = db.session.scalars(
        select(TaskReview).where(TaskReview.task_id == task.id).options(selectinload(TaskReview.reviewed_by))
        .order_by(TaskReview.id.desc())).all()
    notices = db.session.scalars(
        select(SupervisionNotice).where(SupervisionNotice.task_id == task.id)
        .options(selectinload(SupervisionNotice.sent_by), selectinload(SupervisionNotice.responded_by))
        .order_by(SupervisionNotice.id.desc())).all()
    decision = db.session.get(Decision, task.decision_id) if task.decision_id else None
    meeting = decision.meeting if decision else None
    # A target counted from activities: the activities behind a leaf's count (an instance passed
    # down adds up the counts below it).
    counted = None
    if task.is_counted and not passed_down:
        counted_stmt = svc.matching_activities(task)
        first, last = task.counted_period()
        counted = {"activities": db.session.scalars(counted_stmt.limit(COUNTED_SHOWN)).all(),
                   "total": db.session.scalar(select(func.count()).select_from(counted_stmt.order_by(None)
                                                                               .subquery())),
                   "first": first, "last": last,
                   "category": db.session.get(ActivityCategory, task.counted_category),
                   "department": db.session.get(Department, task.counted_department)
                   if task.counted_department else None,
                   "visible": access.can(user, Permission.VIEW, task.unit)}
    is_open = task.status in OPEN_STATES
    may_report = access.can_report(user, task) and not passed_down
    may_issue = access.can_issue(user, task)
    may = {
        "report": may_report and task.status in REPORTABLE_STATES,
        "submit": may_report and task.status in REPORTABLE_STATES and bool(reports),
        "review": access.can_review(user, task) and task.status == TaskStatus.SUBMITTED.value,
        "cascade": (may_issue and is_open and not reports
                    and policy_for(task.unit.tier).child_tier is not None and svc.has_units_to_receive(task)),
        "reassign": may_issue and is_open and task.parent_id is not None,
        "edit": may_issue and is_open and task.parent_id is None,
        "cancel": access.can_review(user, task) and is_open,
        "notice": access.can_supervise(user, task) and is_open,
        "respond": access.can_respond(user, task),
    }
    return render_template(
        "tasks/detail.html", task=task, today=local_today(), children=children, passed_down=passed_down,
        children_total=sum(child_counts.values()), child_counts=child_counts, child_urls=_detail_urls(children),
        status_labels={s.value: s.label for s in TaskStatus}, is_overdue=Task.overdue_on, reports=reports,
        reviews=reviews,
        notices=notices, decision=decision, meeting=meeting,
        meeting_visible=meeting is not None and access.can_see_meeting(user, meeting),
        meeting_unit=access.meeting_workspace(user, meeting) if meeting is not None else None,
        parent=task.parent, parent_visible=task.parent is not None and access.can(user, Permission.VIEW,
                                                                                 task.parent.unit),
        may=may, may_report=may_report, departments=Department.all(), statuses=TaskStatus,
        streets_below=policy_for(task.unit.tier).child_tier not in (None, "street"),
        failed=failed, error=error, kept=request.form if failed else {}, counted=counted,
        counted_category=(db.session.get(ActivityCategory, task.counted_category) if task.is_counted else None),
        leaf_figures=svc.leaf_figures(task) if passed_down else None,
    ), (error.status if error is not None else 200)


def _detail_urls(tasks) -> dict[int, str]:
    """{id: the task's page} in this workspace, from one ``url_for`` (not one a row: a task's
    page lists 100 children)."""
    if not tasks:
        return {}
    zero = url_for(".detail", task_id=0)
    if not zero.endswith("/0/"):  # another shape of the rule: one url_for a row
        return {t.id: url_for(".detail", task_id=t.id) for t in tasks}
    head = zero[:-2]
    return {t.id: f"{head}{t.id}/" for t in tasks}


@bp.route("/<int:task_id>/")
def detail(task_id: int):
    return _render_detail(_task_or_404(task_id))


def _act(task: Task, form_name: str, action, success, then=None):
    """One service call for a POST: commit, flash and redirect; or roll back and show the
    form again with the input kept (400, or 409 on a conflict); a refusal is a 403."""
    try:
        result = action()
    except PermissionDenied as exc:
        db.session.rollback()
        abort(403, exc.message)
    except ServiceError as exc:
        db.session.rollback()
        return _render_detail(task, failed=form_name, error=exc)
    target = then(result) if then else url_for(".detail", task_id=task.id)
    message = success(result) if callable(success) else success
    db.session.commit()
    flash(message, "success")
    return redirect(target)


@bp.route("/<int:task_id>/report", methods=["POST"])
def report(task_id: int):
    task = _task_or_404(task_id)
    return _act(task, "report", lambda: svc.report_progress(task, args.form(schemas.ReportIn), by=current_user,
                                                            files=request.files.getlist("evidence")),
                _("Progress reported."))


@bp.route("/<int:task_id>/submit", methods=["POST"])
def submit(task_id: int):
    task = _task_or_404(task_id)
    return _act(task, "submit", lambda: svc.submit_task(task, by=current_user,
                                                        version=args.form(schemas.VersionIn)["version"]),
                _("The task is submitted for review."))


@bp.route("/<int:task_id>/review", methods=["POST"])
def review(task_id: int):
    task = _task_or_404(task_id)

    def act():
        data = args.form(schemas.ReviewIn)
        return svc.review_task(task, data["decision"], data["comment"], by=current_user, version=data["version"])

    return _act(task, "review", act, lambda review: _("The task is accepted.") if review.decision == "accept"
                else _("The task is returned with your comment."))


@bp.route("/<int:task_id>/cascade", methods=["POST"])
def cascade(task_id: int):
    task = _task_or_404(task_id)
    return _act(task, "cascade", lambda: svc.cascade_task(task, args.form(schemas.CascadeForm)["to"], by=current_user),
                _("The task is being passed down."),
                then=lambda run: url_for(".cascade_run", task_id=task.id, run_id=run.id))


@bp.route("/<int:task_id>/cascade/<int:run_id>")
def cascade_run(task_id: int, run_id: int):
    task = _task_or_404(task_id)
    run = db.session.scalar(select(CascadeRun).where(CascadeRun.id == run_id, CascadeRun.task_id == task.id))
    if run is None:
        abort(404)
    template = "tasks/_cascade_run.html" if request.headers.get("HX-Request") else "tasks/cascade.html"
    return render_template(template, task=task, run=run, today=local_today())


@bp.route("/<int:task_id>/reassign", methods=["POST"])
def reassign(task_id: int):
    task = _task_or_404(task_id)

    def act():
        data = args.form(schemas.ReassignForm)
        return svc.reassign_departments(task, data["lead_department"], data["co_departments"], by=current_user,
                                        version=data["version"])

    return _act(task, "reassign", act, _("The departments of this instance are changed."))


@bp.route("/<int:task_id>/notices", methods=["POST"])
def notice(task_id: int):
    task = _task_or_404(task_id)
    return _act(task, "notice", lambda: svc.send_notice(task, args.form(schemas.NoticeForm)["text"], by=current_user),
                _("The supervision notice is sent."))


@bp.route("/<int:task_id>/notices/<int:notice_id>/respond", methods=["POST"])
def respond(task_id: int, notice_id: int):
    task = _task_or_404(task_id)
    found = db.session.scalar(select(SupervisionNotice).where(SupervisionNotice.id == notice_id,
                                                              SupervisionNotice.task_id == task.id))
    if found is None:
        abort(404)
    return _act(task, f"respond-{found.id}",
                lambda: svc.respond_notice(found, args.form(schemas.RespondForm)["response"], by=current_user),
                _("Your response is sent."))


@bp.route("/<int:task_id>/cancel", methods=["GET", "POST"])
def cancel(task_id: int):
    task = _task_or_404(task_id)
    if not access.can_review(current_user, task):
        abort(403)
    error = None
    if request.method == "POST":
        try:
            svc.cancel_task(task, args.form(schemas.CancelForm)["reason"], by=current_user)
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            error = exc
        else:
            db.session.commit()
            flash(_("The task is cancelled, with every instance below it."), "success")
            return redirect(url_for(".detail", task_id=task.id))
    return render_template("tasks/cancel.html", task=task, error=error,
                           reason=request.form.get("reason", "")), error.status if error else 200


@bp.route("/<int:task_id>/evidence/<int:evidence_id>")
def evidence(task_id: int, evidence_id: int):
    from portal.uploads import StoredFileNotFound, send_stored

    task = _task_or_404(task_id)
    found = db.session.scalar(select(TaskEvidence).join(TaskReport, TaskReport.id == TaskEvidence.report_id)
                              .where(TaskEvidence.id == evidence_id, TaskReport.task_id == task.id))
    if found is None:
        abort(404)
    try:
        return send_stored(found.stored_name, found.original_name, found.content_type)
    except StoredFileNotFound:
        abort(404)


# --- from a meeting's decision -------------------------------------------------------------

@bp.route("/from-decision/<int:decision_id>", methods=["POST"])
def from_decision(decision_id: int):
    decision = db.session.get(Decision, decision_id)
    if decision is None:
        abort(404)
    meeting = Meeting.get_for_unit_or_404(decision.meeting_id, g.unit)
    if meeting.unit_id != g.unit.id:  # an invited unit sees the meeting but issues nothing from it
        abort(404)
    back = url_for("workspace.meetings.detail", meeting_id=meeting.id) + "#decisions"
    try:
        task = svc.task_from_decision(decision, by=current_user)
    except PermissionDenied:
        db.session.rollback()
        abort(403)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return redirect(back)
    task_id = task.id
    db.session.commit()
    flash(_("The decision is issued as a task. Check the due date and pass it down."), "success")
    return redirect(url_for(".detail", task_id=task_id))


# --- Excel: export of the list, all-or-nothing import of progress ---------------------------

EXPORT_LIMIT = 20_000
from portal.downloads import XLSX  # noqa: E402


#: The list's filters a task list download is written with (the direct one and a job's).
LIST_FILTERS = ("scope", "status", "department", "due_within", "overdue", "q")


@bp.route("/export.xlsx", methods=["GET", "POST"])
def export():
    """The list as Excel. Up to ``EXPORT_INLINE_MAX_ROWS`` rows it is written now; a longer list is
    prepared by a job (asked for with a form: a link followed is no request for work), and the job's
    page shows its progress and then the same file."""
    from flask import current_app

    from portal.downloads import attachment
    from portal.exports.tasks_excel import list_file_name, list_workbook
    from portal.pagination import capped_count
    from portal.services import file_jobs

    stmt, ctx = _list_query()
    filters = {key: ctx[key] for key in LIST_FILTERS}
    inline_max = current_app.config["EXPORT_INLINE_MAX_ROWS"]
    if capped_count(stmt, inline_max) > inline_max:
        if request.method == "POST":
            job = file_jobs.request_file_job("tasks_export", g.unit, by=current_user,
                                             params={"filters": filters, "today": ctx["today"].isoformat()},
                                             file_name=list_file_name(g.unit, ctx["today"]))
            job_id = job.id
            db.session.commit()
            return redirect(url_for(".export_job", job_id=job_id))
        return render_template("file_jobs/ask.html", title=_("Task list (Excel)"), limit=inline_max,
                               action=request.full_path, back_url=url_for(".index", **request.args),
                               back_label=_("Tasks"))
    if request.method == "POST":  # the list has become short meanwhile: its file at once
        return redirect(url_for(".export", **request.args))
    data = list_workbook(g.unit, current_user, filters, today=ctx["today"])
    return attachment(data, XLSX, list_file_name(g.unit, ctx["today"]), "tasks.xlsx")


@bp.route("/export/<int:job_id>")
def export_job(job_id: int):
    from portal.exports.file_job_view import job_or_404, job_page

    job = job_or_404(job_id, "tasks_export")
    return job_page(job, title=_("Task list (Excel)"), page_url=url_for(".export_job", job_id=job.id),
                    back_url=url_for(".index"), back_label=_("Tasks"),
                    download_url=url_for(".export_job_file", job_id=job.id))


@bp.route("/export/<int:job_id>/download")
def export_job_file(job_id: int):
    from portal.exports.file_job_view import job_or_404, send_job_file

    return send_job_file(job_or_404(job_id, "tasks_export"), "tasks.xlsx")


@bp.route("/import", methods=["GET", "POST"])
def import_progress():
    from portal.exports.tasks_excel import apply_progress_sheet, read_progress_sheet
    from portal.exports.upload_view import all_or_nothing_upload

    # Before anything of the upload is read: parsing a workbook is work a reader may not cause.
    if not access.can_report_at(current_user, g.unit):
        abort(403, _("Only the office and the department liaisons of this unit report progress here."))
    return all_or_nothing_upload(
        read=read_progress_sheet, apply=lambda rows: apply_progress_sheet(g.unit, rows, by=current_user),
        max_bytes=EXPORT_LIMIT * 1024, template="tasks/import.html",
        refused=lambda n: _("Nothing was applied: %(n)d problems in the sheet. Correct them and upload it again.",
                            n=n),
        done=lambda n: _("%(n)d progress reports applied.", n=n), done_url=lambda: url_for(".index"))
