"""Briefings (工作简报) of a unit, under its consolidated view: /<tier>/<code>/dashboard/briefings/.

The list of every briefing issued (newest first, paginated) with the form to ask for one;
after asking, the briefing's page shows the job's progress (htmx polls it; without scripts,
reloading does) and then the download. Readers: the offices and viewers over a unit with
units below (``access.can_read_briefings``); issuing: its office (``access.can_request_briefing``).
"""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from portal import access, args
from portal import consolidated as cv
from portal.blueprints.dashboard import bp
from portal.clock import local_today
from portal.extensions import db
from portal.metrics import current_month
from portal.models import Briefing
from portal.pagination import page_number
from portal.schemas.briefings import BriefingIn
from portal.services import ServiceError
from portal.services import briefings as svc

PER_PAGE = 20


def _require_readable() -> None:
    if not access.can_read_briefings(current_user, g.unit):
        abort(404)


def _briefing_or_404(briefing_id: int) -> Briefing:
    _require_readable()
    briefing = db.session.scalar(select(Briefing).where(Briefing.id == briefing_id, Briefing.unit_id == g.unit.id))
    if briefing is None:
        abort(404)
    return briefing


def _list(*, period: str, error: str | None = None, status: int = 200):
    unit = g.unit
    total = db.session.scalar(select(func.count(Briefing.id)).where(Briefing.unit_id == unit.id))
    pages = max((total + PER_PAGE - 1) // PER_PAGE, 1)
    page = min(page_number(), pages)
    items = db.session.scalars(select(Briefing).where(Briefing.unit_id == unit.id)
                               .order_by(Briefing.created_at.desc(), Briefing.id.desc())
                               .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return render_template("dashboard/briefings.html", unit=unit, period=period, items=items, total=total,
                           page=page, pages=pages, error=error, cv=cv,
                           can_request=access.can_request_briefing(current_user, unit),
                           choices=cv.period_choices(local_today(), period)), status


@bp.route("/briefings/")
def briefings():
    _require_readable()
    return _list(period=cv.valid_period(request.args.get("period")) or current_month())


@bp.route("/briefings/", methods=["POST"])
def request_briefing():
    _require_readable()
    if not access.can_request_briefing(current_user, g.unit):
        abort(403)
    asked = (request.form.get("period") or "").strip()
    try:
        briefing = svc.request_briefing(g.unit, args.form(BriefingIn), by=current_user)
    except ServiceError as exc:  # the schema's refusal (InputError) included: the form again, with the reason
        db.session.rollback()
        return _list(period=cv.valid_period(asked) or current_month(), error=exc.message, status=exc.status)
    db.session.commit()
    flash(_("Briefing No. %(number)d of %(year)d is being prepared.", number=briefing.number, year=briefing.year),
          "success")
    return redirect(url_for(".briefing", briefing_id=briefing.id))


@bp.route("/briefings/<int:briefing_id>")
def briefing(briefing_id: int):
    found = _briefing_or_404(briefing_id)
    template = "dashboard/_briefing_state.html" if request.headers.get("HX-Request") else "dashboard/briefing.html"
    return render_template(template, unit=g.unit, briefing=found, period=found.period, cv=cv,
                           name=svc.download_name(found))


@bp.route("/briefings/<int:briefing_id>/download")
def download_briefing(briefing_id: int):
    from portal.downloads import DOCX, stored_attachment

    found = _briefing_or_404(briefing_id)
    if found.state != "done":
        abort(404)
    return stored_attachment(found.stored_name, DOCX, svc.download_name(found), svc.ascii_download_name(found))
