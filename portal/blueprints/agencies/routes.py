"""The form: each member department's agency name at the unit, its default next to it."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal import access, args
from portal.blueprints.agencies import bp
from portal.extensions import db
from portal.models import AuditLog
from portal.schemas.agencies import AGENCY_NAME_MAX, AgencyNamesIn
from portal.services import PermissionDenied, ServiceError
from portal.services import agencies as svc

#: Changes of the names shown under the form.
HISTORY = 20


@bp.route("/", methods=["GET", "POST"])
def index():
    unit = g.unit
    if not access.can_name_agencies(current_user, unit):
        abort(403)
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {key[len("names."):]: value for key, value in request.form.items() if key.startswith("names.")}
        try:
            changes = svc.set_agency_names(unit, args.form(AgencyNamesIn), by=current_user)
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            errors = dict(getattr(exc, "errors", None) or {exc.field or "_": exc.message})
            status = exc.status
        else:
            db.session.commit()
            if changes:
                flash(_("Agency names saved: %(n)d changed.", n=len(changes)), "success")
            else:
                flash(_("Nothing changed."), "info")
            return redirect(url_for(".index"))
    rows = svc.agency_rows(unit)
    history = db.session.scalars(
        select(AuditLog).where(AuditLog.unit_id == unit.id, AuditLog.action == "unit.agency_name")
        .order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(HISTORY)).all()
    fields = {f"names.{r['code']}" for r in rows}
    other_errors = [message for key, message in errors.items() if key not in fields]
    return render_template("agencies/index.html", rows=rows, values=values, errors=errors, history=history,
                           other_errors=other_errors, max_length=AGENCY_NAME_MAX), status
