"""Activity register pages: the filtered list, the month calendar, registering and
editing (phone-friendly, with the camera), an activity's page with its photos and
history, deletion with a reason, and Excel both ways.

Every view loads through ``g.unit`` (``Activity.get_for_unit_or_404``), checks,
calls one service, and responds. A refused form is shown again with the input
kept and the message next to the field (400; 409 on a conflict).
"""
from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Optional

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import access, args
from portal.access import Permission
from portal.blueprints.activities import bp
from portal.clock import local_today
from portal.downloads import XLSX
from portal.extensions import db
from portal.models import Activity, ActivityCategory, ActivityFile, AuditLog, Department, TeamMember
from portal.pagination import paginate
from portal.schemas import activities as schemas
from portal.schemas import load
from portal.services import PermissionDenied, ServiceError
from portal.services import activities as svc

EXPORT_LIMIT = 20_000
FORM_FIELDS = ("title", "category", "start_date", "end_date", "place", "lead_department", "youth", "elders",
               "others", "volunteers", "volunteer_hours", "funds", "donated_goods", "narrative")


def _activity_or_404(activity_id: int) -> Activity:
    activity = Activity.get_for_unit_or_404(activity_id, g.unit)
    if not access.can(current_user, Permission.VIEW, activity.unit):
        abort(404)
    return activity


def _errors(exc: ServiceError) -> dict[str, str]:
    errors = dict(getattr(exc, "errors", None) or {exc.field or "_": exc.message})
    # Nested participants are shown next to their own inputs.
    return {key.replace("participants.", ""): value for key, value in errors.items()}


# --- the register ---------------------------------------------------------------------------

def _filters():
    try:
        f = args.query(schemas.ActivityFilter)
    except ServiceError as exc:
        flash(exc.message, "warning")
        f = load(schemas.ActivityFilter, {})
    return f


def _list(f):
    try:
        return svc.activity_list(g.unit, current_user, scope=f["scope"], period=f["period"] or None,
                                 category=f["category"], department=f["department"], below=f["unit"] or None,
                                 q=f["q"])
    except ServiceError as exc:
        flash(exc.message, "warning")
        return svc.activity_list(g.unit, current_user, scope=f["scope"])


def _set_filters(f) -> dict:
    return {key: f[key] for key in ("period", "category", "department", "unit", "q") if f.get(key)}


@bp.route("/")
def index():
    f = _filters()
    stmt = _list(f)
    activities = paginate(stmt.options(selectinload(Activity.files)))
    filters = _set_filters(f)
    return render_template(
        "activities/index.html", activities=activities, f=f, filters=filters, scope=f["scope"],
        categories=ActivityCategory.all(), departments=Department.all(),
        can_create=access.can_register_activity(current_user, g.unit),
        reads_below=access.reads_below(current_user, g.unit) and g.policy.child_tier is not None)


@bp.route("/calendar")
def month_calendar():
    try:
        q = args.query(schemas.CalendarQuery)
    except ServiceError as exc:
        flash(exc.message, "warning")
        q = load(schemas.CalendarQuery, {})
    today = local_today()
    first = date.fromisoformat(q["month"] + "-01") if q["month"] else today.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    stmt = svc.activity_list(g.unit, current_user, scope=q["scope"]).where(
        Activity.in_range_clause(first, last)).limit(2000)
    by_day: dict[date, list[Activity]] = {}
    for activity in db.session.scalars(stmt):
        day = max(activity.start_date, first)
        while day <= min(activity.end_date, last):
            by_day.setdefault(day, []).append(activity)
            day += timedelta(days=1)
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month)
    previous = (first - timedelta(days=1)).strftime("%Y-%m")
    following = (last + timedelta(days=1)).strftime("%Y-%m")
    return render_template("activities/calendar.html", weeks=weeks, by_day=by_day, first=first, today=today,
                           previous=previous, following=following, scope=q["scope"])


# --- registering and editing --------------------------------------------------------------------

def _form_values(form) -> dict:
    values = {key: form.get(key, "") for key in FORM_FIELDS}
    values["co_departments"] = form.getlist("co_departments")
    values["hours"] = {key[6:]: form.get(key) for key in form if key.startswith("hours_")}
    return values


def _values_of(activity: Activity) -> dict:
    from portal.blueprints.tasks import format_quantity

    values = {"title": activity.title, "category": activity.category_code,
              "start_date": activity.start_date.isoformat(), "end_date": activity.end_date.isoformat(),
              "place": activity.place, "lead_department": activity.department_code,
              "co_departments": list(activity.co_department_codes or []), "youth": activity.youth,
              "elders": activity.elders, "others": activity.others, "volunteers": activity.volunteers,
              "volunteer_hours": format_quantity(activity.volunteer_hours), "funds": format_quantity(activity.funds),
              "donated_goods": format_quantity(activity.donated_goods), "narrative": activity.narrative}
    values["hours"] = {str(v.member_id): format_quantity(v.hours) for v in activity.volunteer_links}
    return values


def _form_context(values: dict, errors: dict, activity: Activity | None = None) -> dict:
    unit = activity.unit if activity is not None else g.unit
    own = access.liaison_departments(current_user, unit)
    office = access.can(current_user, Permission.ACT, unit)
    departments = Department.all()
    lead_choices = departments if office else [d for d in departments if d.code in own]
    roster = db.session.scalars(select(TeamMember).where(
        TeamMember.unit_id == unit.id, TeamMember.active_clause(local_today())).order_by(TeamMember.name)).all()
    return dict(values=values, errors=errors, categories=ActivityCategory.all(), departments=departments,
                lead_choices=lead_choices, roster=roster, activity=activity)


@bp.route("/new", methods=["GET", "POST"])
def create():
    if not access.can_register_activity(current_user, g.unit):
        abort(403)
    own = access.liaison_departments(current_user, g.unit)
    values: dict = {"start_date": local_today().isoformat(), "co_departments": [], "youth": 0, "elders": 0,
                    "others": 0, "volunteers": 0, "lead_department": own[0] if own else "", "hours": {}}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _form_values(request.form)
        try:
            activity = svc.create_activity(g.unit, args.form(schemas.ActivityIn), by=current_user,
                                           photo_files=request.files.getlist("photos"),
                                           attachment_files=request.files.getlist("attachments"))
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            errors.update(_errors(exc))
        else:
            activity_id = activity.id
            db.session.commit()
            flash(_("The activity is registered: %(n)d person-times.", n=activity.person_times), "success")
            return redirect(url_for(".detail", activity_id=activity_id))
    return render_template("activities/new.html", **_form_context(values, errors)), 400 if errors else 200


@bp.route("/<int:activity_id>/edit", methods=["GET", "POST"])
def edit(activity_id: int):
    activity = _activity_or_404(activity_id)
    if not access.can_edit_activity(current_user, activity):
        abort(403)
    values = _values_of(activity)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = _form_values(request.form)
        try:
            svc.update_activity(activity, args.form(schemas.ActivityIn), by=current_user,
                                version=args.form(schemas.VersionIn)["version"],
                                photo_files=request.files.getlist("photos"),
                                attachment_files=request.files.getlist("attachments"))
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            errors.update(_errors(exc))
            status = exc.status
        else:
            db.session.commit()
            flash(_("The activity is updated."), "success")
            return redirect(url_for(".detail", activity_id=activity.id))
    return render_template("activities/edit.html", **_form_context(values, errors, activity)), status


# --- an activity's page ---------------------------------------------------------------------------

def _history(activity: Activity) -> list[AuditLog]:
    return list(db.session.scalars(
        select(AuditLog).where(AuditLog.object_type == "activities", AuditLog.object_id == str(activity.id))
        .options(selectinload(AuditLog.actor)).order_by(AuditLog.id.desc()).limit(100)))


def _render_detail(activity: Activity, error: ServiceError | None = None):
    return render_template(
        "activities/detail.html", activity=activity, history=_history(activity),
        department_names={d.code: d.name for d in Department.all()},
        may_edit=access.can_edit_activity(current_user, activity),
        unit_visible=access.can(current_user, Permission.VIEW, activity.unit),
        error=error, kept=request.form if error else {}), (error.status if error else 200)


@bp.route("/<int:activity_id>/")
def detail(activity_id: int):
    return _render_detail(_activity_or_404(activity_id))


@bp.route("/<int:activity_id>/delete", methods=["POST"])
def delete(activity_id: int):
    activity = _activity_or_404(activity_id)
    try:
        data = args.form(schemas.DeleteIn)
        svc.delete_activity(activity, data["reason"], by=current_user, version=data["version"])
    except PermissionDenied:
        db.session.rollback()
        abort(403)
    except ServiceError as exc:
        db.session.rollback()
        return _render_detail(activity, exc)
    db.session.commit()
    flash(_("The activity is deleted; the audit trail keeps it with your reason."), "success")
    return redirect(url_for(".index"))


def _file_or_404(activity: Activity, file_id: int) -> ActivityFile:
    found = db.session.scalar(select(ActivityFile).where(ActivityFile.id == file_id,
                                                         ActivityFile.activity_id == activity.id))
    if found is None:
        abort(404)
    return found


@bp.route("/<int:activity_id>/files/<int:file_id>")
def file(activity_id: int, file_id: int):
    from portal.uploads import StoredFileNotFound, send_stored

    found = _file_or_404(_activity_or_404(activity_id), file_id)
    try:
        return send_stored(found.stored_name, found.original_name, found.content_type)
    except StoredFileNotFound:
        abort(404)


@bp.route("/<int:activity_id>/files/<int:file_id>/thumbnail")
def thumbnail(activity_id: int, file_id: int):
    from flask import send_file

    from portal.uploads import StoredFileNotFound, open_stored

    found = _file_or_404(_activity_or_404(activity_id), file_id)
    if not found.thumb_name:
        abort(404)
    try:
        path = open_stored(found.thumb_name)
    except StoredFileNotFound:
        abort(404)
    response = send_file(path, mimetype="image/jpeg", max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/<int:activity_id>/files/<int:file_id>/delete", methods=["POST"])
def delete_file(activity_id: int, file_id: int):
    activity = _activity_or_404(activity_id)
    found = _file_or_404(activity, file_id)
    if not access.can_edit_activity(current_user, activity):
        abort(403)
    svc.delete_file(activity, found, by=current_user)
    db.session.commit()
    flash(_("The file is removed."), "success")
    return redirect(url_for(".detail", activity_id=activity.id))


# --- Excel -------------------------------------------------------------------------------------------

@bp.route("/export.xlsx")
def export():
    from portal.downloads import attachment
    from portal.exports.activities_excel import export_activities

    f = _filters()
    rows = db.session.scalars(_list(f).limit(EXPORT_LIMIT)).all()
    today = local_today()
    data = export_activities(rows, departments=Department.all(), categories=ActivityCategory.all(), today=today,
                             unit=g.unit, scope=f["scope"])
    name = f"活动登记-{g.unit.name}-{today.isoformat()}.xlsx"
    return attachment(data, XLSX, name, "activities.xlsx")


@bp.route("/import", methods=["GET", "POST"])
def import_register():
    from portal.exports.activities_excel import TEMPLATE_SHEET, apply_register_sheet, read_register_sheet
    from portal.exports.tasks_excel import declared_sheet_rows
    from portal.exports.upload_view import all_or_nothing_upload

    # Before anything of the upload is read: parsing a workbook is work a reader may not cause.
    if not access.can_register_activity(current_user, g.unit):
        abort(403, _("Only the office and the department liaisons of this unit register its activities."))
    return all_or_nothing_upload(
        read=read_register_sheet, apply=lambda rows: apply_register_sheet(g.unit, rows, by=current_user),
        max_bytes=EXPORT_LIMIT * 1024, template="activities/import.html",
        refused=lambda n: _("Nothing was saved: %(n)d problems in the sheet. Correct them and upload it again.",
                            n=n),
        done=lambda n: _("%(n)d activities registered.", n=n), done_url=lambda: url_for(".index", scope="unit"),
        background=_import_in_background,
        declared_rows=lambda data: declared_sheet_rows(data, TEMPLATE_SHEET))


def _import_in_background(data: bytes, rows: Optional[int], filename: str) -> str:
    """A large register upload: stored, and checked and saved by a job (all or nothing, as here)."""
    from portal.services import file_jobs
    from portal.uploads import sanitize_filename

    job = file_jobs.request_file_job("activities_import", g.unit, by=current_user, upload=data,
                                     file_name=sanitize_filename(filename), total=rows)
    return url_for(".import_job", job_id=job.id)


@bp.route("/import/<int:job_id>")
def import_job(job_id: int):
    """A large register upload's page: its progress, then rows saved or the row errors."""
    from portal.exports.file_job_view import job_or_404, job_page

    job = job_or_404(job_id, "activities_import")
    return job_page(job, title=_("Upload a register (Excel)"), page_url=url_for(".import_job", job_id=job.id),
                    back_url=url_for(".import_register"), back_label=_("Upload a register (Excel)"),
                    done_url=url_for(".index", scope="unit"), done_label=_("Activity register"))
