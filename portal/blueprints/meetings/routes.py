from __future__ import annotations

import difflib
from datetime import datetime

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import extract, select

from portal import access, args
from portal.clock import local_today
from portal.blueprints.auth.forms import ConfirmForm
from portal.blueprints.meetings import bp
from portal.extensions import db
from portal.models import (AgendaItem, AttendanceStatus, Department, Material, Meeting, MeetingStatus, Unit)
from portal.pagination import paginate
from portal.schemas import load
from portal.schemas import meetings as schemas
from portal.services import PermissionDenied, ServiceError
from portal.services import meetings as svc


def _meeting_or_404(meeting_id: int) -> Meeting:
    meeting = Meeting.get_for_unit_or_404(meeting_id, g.unit)
    if not access.can_see_meeting(current_user, meeting):
        abort(404)
    return meeting


def _item_or_404(meeting: Meeting, item_id: int) -> AgendaItem:
    item = next((i for i in meeting.items if i.id == item_id), None)
    if item is None:
        abort(404)
    return item


def _back(meeting: Meeting, anchor: str = ""):
    return redirect(url_for(".detail", meeting_id=meeting.id) + (f"#{anchor}" if anchor else ""))


def _refusals(exc: ServiceError) -> dict[str, str]:
    """Every field's message of a refused form (the schema's), or the service's one refusal."""
    return dict(getattr(exc, "errors", None) or {exc.field or "_": exc.message})


def _attempt(action, success: str | None = None):
    """Run one service call for a POST: commit and flash, or roll back and show the refusal."""
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "danger")
        return False
    try:
        result = action()
    except PermissionDenied as exc:
        db.session.rollback()
        abort(403, exc.message)
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message, "danger")
        return False
    db.session.commit()
    if success:
        flash(success, "success")
    return result if result is not None else True


@bp.route("/")
def index():
    # Filters the schema refuses are dropped with a message: the unfiltered list is shown.
    try:
        filters = args.query(schemas.MeetingFilter)
    except ServiceError as exc:
        flash(exc.message, "warning")
        filters = load(schemas.MeetingFilter, {})
    q, year, status = filters["q"] or "", filters["year"], filters["status"] or ""
    # The workspace's meetings, and of those only the ones the reader may open.
    stmt = select(Meeting).where(Meeting.visible_from_clause(g.unit), access.visible_meetings_clause(current_user))
    if q:
        stmt = stmt.where(Meeting.title.contains(q, autoescape=True))
    if year:
        stmt = stmt.where(extract("year", Meeting.starts_at) == year)
    if status in {s.value for s in MeetingStatus}:
        stmt = stmt.where(Meeting.status == status)
    meetings = paginate(stmt.order_by(Meeting.starts_at.desc(), Meeting.id.desc()))
    this_year = datetime.now().year
    return render_template("meetings/index.html", meetings=meetings, q=q, year=year, status=status,
                           years=range(this_year + 1, this_year - 6, -1), statuses=list(MeetingStatus),
                           can_convene=access.can_convene(current_user, g.unit))


@bp.route("/new", methods=["GET", "POST"])
def create():
    if not access.can_convene(current_user, g.unit):
        abort(403)
    children = db.session.scalars(select(Unit).where(Unit.parent_id == g.unit.id).order_by(Unit.code)).all()
    departments = Department.all()
    form = ConfirmForm()
    values = request.form if request.method == "POST" else {}
    errors: dict[str, str] = {}
    if request.method == "POST" and form.validate_on_submit():
        try:
            meeting = svc.create_meeting(g.unit, args.form(schemas.MeetingForm), by=current_user)
        except PermissionDenied:
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            errors.update(_refusals(exc))
        else:
            db.session.commit()
            flash(_("The meeting is scheduled as a draft. Open the agenda when the invitations should go out."),
                  "success")
            return redirect(url_for(".detail", meeting_id=meeting.id))
    return render_template("meetings/new.html", form=form, values=values, errors=errors, children=children,
                           departments=departments), 400 if errors else 200


@bp.route("/<int:meeting_id>/edit", methods=["GET", "POST"])
def edit(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    if not access.can_convene(current_user, meeting):
        abort(403)
    fields = ("title", "starts_at", "ends_at", "location", "agenda_closes_at", "notice_number")
    values = {k: getattr(meeting, k) for k in fields}
    for key in ("starts_at", "ends_at", "agenda_closes_at"):
        values[key] = values[key].strftime("%Y-%m-%dT%H:%M") if values[key] else ""
    errors: dict[str, str] = {}
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        values = {k: request.form.get(k, "") for k in fields}  # shown again as typed
        try:
            data = args.form(schemas.MeetingUpdate)
        except ServiceError as exc:
            errors.update(_refusals(exc))
            data = None
        if data is None:
            pass
        elif data.pop("version") != meeting.version:
            errors["_"] = _("Someone else changed this meeting while you were editing. Your input is kept below; "
                            "check the meeting and save again.")
            values["version"] = meeting.version
        else:
            try:
                svc.update_meeting(meeting, data, by=current_user)
            except ServiceError as exc:
                db.session.rollback()
                errors.update(_refusals(exc))
            else:
                db.session.commit()
                flash(_("The meeting is updated."), "success")
                return redirect(url_for(".detail", meeting_id=meeting.id))
    return render_template("meetings/edit.html", meeting=meeting, form=form, values=values, errors=errors,
                           version=values.get("version", meeting.version)), 409 if "_" in errors else (
                               400 if errors else 200)


@bp.route("/<int:meeting_id>/")
def detail(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    convener = access.can_convene(current_user, meeting)
    return render_template(
        "meetings/detail.html", meeting=meeting, convener=convener,
        can_propose=access.can_propose(current_user, meeting) and meeting.status == MeetingStatus.AGENDA_OPEN.value,
        can_publish=access.can_publish(current_user, meeting),
        own_departments=access.liaison_departments(current_user, meeting.unit),
        proposals=[i for i in meeting.items if i.status != "accepted"],
        offers=svc.deferred_offers(meeting) if convener and meeting.status in ("draft", "agenda_open") else [],
        transitions=sorted(svc.TRANSITIONS[meeting.status_enum], key=lambda s: list(MeetingStatus).index(s)),
        attendance={a.department_code: a for a in meeting.attendance},
        attendance_statuses=list(AttendanceStatus), departments=Department.all(),
        is_own_unit=meeting.unit_id == g.unit.id, form=ConfirmForm(),
        decision_tasks=_decision_tasks(meeting), today=local_today(),
    )


def _decision_tasks(meeting: Meeting) -> dict[int, list]:
    """The tasks issued from each decision of published minutes that the reader may open, in one query
    (an invited unit reads the meeting, not the convening unit's tasks)."""
    from portal.models import Task

    if meeting.status != MeetingStatus.MINUTES_PUBLISHED.value or not meeting.decisions:
        return {}
    tasks: dict[int, list] = {d.id: [] for d in meeting.decisions}
    for task in db.session.scalars(select(Task).where(Task.decision_id.in_(list(tasks)), Task.parent_id.is_(None),
                                                      access.visible_tasks_clause(current_user))
                                   .order_by(Task.id)):
        tasks[task.decision_id].append(task)
    return tasks


@bp.route("/<int:meeting_id>/transition", methods=["POST"])
def transition(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)

    def act():
        data = args.form(schemas.TransitionIn)
        return svc.transition(meeting, data["to"], by=current_user, reason=data["reason"])

    done = _attempt(act)
    if done is False and meeting.status != MeetingStatus.CANCELLED.value and request.form.get("to") == "cancelled":
        return redirect(url_for(".cancel", meeting_id=meeting.id))  # the form that asks for the reason
    if done:
        flash(_("The meeting is now: %(state)s.", state=meeting.status_enum.label), "success")
    return _back(meeting)


@bp.route("/<int:meeting_id>/cancel")
def cancel(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    if not access.can_convene(current_user, meeting):
        abort(403)
    return render_template("meetings/cancel.html", meeting=meeting, form=ConfirmForm())


@bp.route("/<int:meeting_id>/items", methods=["POST"])
def propose(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)

    def act():
        data = args.form(schemas.AgendaItemIn)
        item = svc.propose_item(meeting, title=data["title"], description=data["description"],
                                department=data["department"], by=current_user)
        upload = request.files.get("material")
        if upload and upload.filename:
            svc.add_material(item, upload, by=current_user)
        return item

    _attempt(act, _("Your item is proposed. The office will decide whether it goes on the agenda."))
    return _back(meeting, "agenda")


@bp.route("/<int:meeting_id>/items/<int:item_id>/decide", methods=["POST"])
def decide(meeting_id: int, item_id: int):
    meeting = _meeting_or_404(meeting_id)
    item = _item_or_404(meeting, item_id)

    def act():
        data = args.form(schemas.DecideItemForm)
        merge_into = next((i for i in meeting.items if i.id == data["merge_into"]), None)
        return svc.decide_item(item, data["action"], by=current_user, reason=data["reason"], merge_into=merge_into)

    _attempt(act, _("The item is updated."))
    return _back(meeting, "proposals")


@bp.route("/<int:meeting_id>/items/<int:item_id>/move", methods=["POST"])
def move(meeting_id: int, item_id: int):
    meeting = _meeting_or_404(meeting_id)
    item = _item_or_404(meeting, item_id)
    _attempt(lambda: svc.move_item(item, -1 if args.form(schemas.MoveForm)["direction"] == "up" else 1,
                                   by=current_user))
    return _back(meeting, "agenda")


@bp.route("/<int:meeting_id>/items/<int:item_id>/materials", methods=["POST"])
def upload(meeting_id: int, item_id: int):
    meeting = _meeting_or_404(meeting_id)
    item = _item_or_404(meeting, item_id)
    upload_file = request.files.get("material")
    if not upload_file or not upload_file.filename:
        flash(_("Choose a file to upload."), "danger")
        return _back(meeting, "agenda")
    _attempt(lambda: svc.add_material(item, upload_file, by=current_user), _("The material is attached."))
    return _back(meeting, "agenda")


@bp.route("/<int:meeting_id>/materials/<int:material_id>")
def material(meeting_id: int, material_id: int):
    from portal.uploads import send_stored

    meeting = _meeting_or_404(meeting_id)
    found = db.session.scalar(select(Material).join(AgendaItem).where(
        Material.id == material_id, AgendaItem.meeting_id == meeting.id))
    if found is None:
        abort(404)
    return send_stored(found.stored_name, found.original_name, found.content_type)


@bp.route("/<int:meeting_id>/carry/<int:item_id>", methods=["POST"])
def carry(meeting_id: int, item_id: int):
    meeting = _meeting_or_404(meeting_id)
    source = next((i for i in svc.deferred_offers(meeting) if i.id == item_id), None)
    if source is None:
        abort(404)
    _attempt(lambda: svc.carry_over(meeting, source, by=current_user), _("The deferred item is on this agenda."))
    return _back(meeting, "agenda")


@bp.route("/<int:meeting_id>/attendance", methods=["POST"])
def attendance(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    def act():
        data = args.form(schemas.AttendanceForm)
        return svc.record_attendance(meeting, data["department"], data["status"], by=current_user,
                                     attendee_name=data["attendee_name"], delegate_name=data["delegate_name"],
                                     reason=data["reason"])

    _attempt(act, _("Sign-in recorded."))
    return _back(meeting, "attendance")


@bp.route("/<int:meeting_id>/decisions", methods=["POST"])
def add_decision(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    _attempt(lambda: svc.add_decision(meeting, args.form(schemas.DecisionIn), by=current_user),
             _("Decision recorded."))
    return _back(meeting, "decisions")


@bp.route("/<int:meeting_id>/decisions/<int:decision_id>/delete", methods=["GET", "POST"])
def delete_decision(meeting_id: int, decision_id: int):
    meeting = _meeting_or_404(meeting_id)
    decision = next((d for d in meeting.decisions if d.id == decision_id), None)
    if decision is None:
        abort(404)
    if request.method == "POST":
        _attempt(lambda: svc.delete_decision(decision, by=current_user), _("Decision removed."))
        return _back(meeting, "decisions")
    if not access.can_convene(current_user, meeting):
        abort(403)
    return render_template("confirm.html", back_url=url_for(".detail", meeting_id=meeting.id), form=ConfirmForm(),
                           question=_("Remove the decision “%(text)s”?", text=decision.text[:200]),
                           action=url_for(".delete_decision", meeting_id=meeting.id, decision_id=decision.id))


@bp.route("/<int:meeting_id>/minutes", methods=["GET", "POST"])
def minutes(meeting_id: int):
    meeting = _meeting_or_404(meeting_id)
    convener = access.can_convene(current_user, meeting)
    current = meeting.minutes
    body = current.body if current and current.body else None
    base = current.revision if current else 0
    reason = ""
    conflict = None
    status = 200
    if request.method == "POST":
        if not convener:
            abort(403)
        body = request.form.get("body", "")  # shown again as typed
        reason = request.form.get("reason", "")
        base = request.form.get("base_revision", type=int) or 0
        if ConfirmForm().validate_on_submit():
            try:
                data = args.form(schemas.MinutesForm)
                revision = svc.save_minutes(meeting, data["body"], by=current_user, base_revision=data["base_revision"],
                                            reason=data["reason"])
            except PermissionDenied:
                abort(403)
            except ServiceError as exc:
                db.session.rollback()
                meeting = _meeting_or_404(meeting_id)
                current = meeting.minutes
                flash(exc.message, "danger")
                if exc.status == 409:
                    conflict = current
                status = exc.status
            else:
                db.session.commit()
                flash(_("Revision %(n)d saved.", n=revision.number), "success")
                return redirect(url_for(".minutes", meeting_id=meeting.id))
    if body is None:
        body = svc.minutes_skeleton(meeting) if convener else ""
    return render_template("meetings/minutes.html", meeting=meeting, minutes=current, body=body, base=base,
                           reason=reason, conflict=conflict, convener=convener, form=ConfirmForm(),
                           revisions=access.visible_revisions(current_user, meeting),
                           editable=convener and meeting.status in ("held", "minutes_published")), status


@bp.route("/<int:meeting_id>/minutes/revisions/<int:number>")
def revision(meeting_id: int, number: int):
    meeting = _meeting_or_404(meeting_id)
    # A reader who may not see drafts sees only published revisions, diffed against the previous published one.
    revisions = access.visible_revisions(current_user, meeting)
    rev = next((r for r in revisions if r.number == number), None)
    if rev is None:
        abort(404)
    previous = next((r for r in reversed(revisions) if r.number < number), None)
    diff = list(difflib.unified_diff((previous.body if previous else "").splitlines(), rev.body.splitlines(),
                                     lineterm="", n=2))[2:]
    return render_template("meetings/revision.html", meeting=meeting, rev=rev, previous=previous, diff=diff)


def _download(data: bytes, filename: str, ascii_name: str, mimetype: str) -> Response:
    """``filename`` (UTF-8) for current browsers, ``ascii_name`` for the rest: distinct per document."""
    from portal.downloads import attachment

    return attachment(data, mimetype, filename, ascii_name)


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@bp.route("/<int:meeting_id>/notice.docx")
def notice_docx(meeting_id: int):
    from portal.exports.official import notice_docx as build

    meeting = _meeting_or_404(meeting_id)
    return _download(build(meeting), f"{meeting.title}-会议通知.docx", f"meeting-{meeting.id}-notice.docx", DOCX)


@bp.route("/<int:meeting_id>/minutes.docx")
def minutes_docx(meeting_id: int):
    from portal.exports.official import minutes_docx as build

    meeting = _meeting_or_404(meeting_id)
    if meeting.minutes is None or not meeting.minutes.revision:
        abort(404)
    if not meeting.minutes.is_published and not access.can_see_draft_minutes(current_user, meeting):
        abort(404)
    return _download(build(meeting), f"{meeting.title}-会议纪要.docx", f"meeting-{meeting.id}-minutes.docx", DOCX)


@bp.route("/<int:meeting_id>/meeting.ics")
def meeting_ics(meeting_id: int):
    from portal.exports.official import ics

    meeting = _meeting_or_404(meeting_id)
    return _download(ics(meeting), f"{meeting.title}.ics", f"meeting-{meeting.id}.ics", "text/calendar")
