"""The work team roster: who is on the unit's team and since when, who left and
when (nothing is deleted), phone numbers masked for everyone but the unit's own
office, and the volunteer hours each member has accumulated."""
from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal import access, args
from portal.blueprints.team import bp
from portal.clock import local_today
from portal.extensions import db
from portal.models import TeamMember
from portal.models.activities import COMPLETE_TEAM, TEAM_KIND_LABELS, TEAM_KINDS, TEAM_ROLE_LABELS, TEAM_ROLES
from portal.schemas import activities as schemas
from portal.services import PermissionDenied, ServiceError
from portal.services import activities as svc

FIELDS = ("name", "role", "kind", "phone", "joined_on", "left_on", "note")


def _choices() -> dict:
    return dict(roles=[(r, TEAM_ROLE_LABELS[r]) for r in TEAM_ROLES],
                kinds=[(k, TEAM_KIND_LABELS[k]) for k in TEAM_KINDS])


@bp.route("/", methods=["GET", "POST"])
def index():
    today = local_today()
    may_manage = access.can_manage_team(current_user, g.unit)
    values: dict = {"joined_on": today.isoformat(), "role": "member", "kind": "volunteer"}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not may_manage:
            abort(403)
        values = {key: request.form.get(key, "") for key in FIELDS}
        try:
            member = svc.add_member(g.unit, args.form(schemas.TeamMemberIn), by=current_user)
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            errors = dict(getattr(exc, "errors", None) or {exc.field or "_": exc.message})
            status = 400
        else:
            name = member.name
            db.session.commit()
            flash(_("%(name)s is on the team.", name=name), "success")
            return redirect(url_for(".index"))
    members = db.session.scalars(select(TeamMember).where(TeamMember.unit_id == g.unit.id)
                                 .order_by(TeamMember.left_on.is_not(None), TeamMember.joined_on,
                                           TeamMember.id)).all()
    active = [m for m in members if m.is_active(today)]
    return render_template(
        "team/index.html", members=members, active=active, today=today, complete=len(active) >= COMPLETE_TEAM,
        complete_at=COMPLETE_TEAM, hours=svc.volunteer_hours([m.id for m in members]),
        show_phones=access.can_see_phones(current_user, g.unit), may_manage=may_manage, values=values,
        errors=errors, **_choices()), status


@bp.route("/<int:member_id>/edit", methods=["GET", "POST"])
def edit(member_id: int):
    member = TeamMember.get_for_unit_or_404(member_id, g.unit)
    if not access.can_manage_team(current_user, g.unit):
        abort(403)
    show_phones = access.can_see_phones(current_user, g.unit)
    values = {key: getattr(member, key) for key in FIELDS}
    values["joined_on"] = member.joined_on.isoformat()
    values["left_on"] = member.left_on.isoformat() if member.left_on else ""
    if not show_phones:
        values["phone"] = member.masked_phone
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {key: request.form.get(key, "") for key in FIELDS}
        try:
            data = dict(args.form(schemas.TeamMemberEdit))
            if not show_phones and data.get("phone") == member.masked_phone:
                data["phone"] = member.phone  # the masked number sent back unchanged keeps the number
            svc.edit_member(member, data, by=current_user, version=data.get("version"))
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except ServiceError as exc:
            db.session.rollback()
            errors = dict(getattr(exc, "errors", None) or {exc.field or "_": exc.message})
            status = exc.status
        else:
            db.session.commit()
            flash(_("The roster is updated."), "success")
            return redirect(url_for(".index"))
    return render_template("team/edit.html", member=member, values=values, errors=errors, show_phones=show_phones,
                           **_choices()), status
