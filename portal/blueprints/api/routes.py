from __future__ import annotations

from flask import g, jsonify
from flask_babel import gettext as _
from sqlalchemy import select

from portal import access
from portal.blueprints.api import api_error, body, bp, operation
from portal.extensions import client_address, db
from portal.models import Unit, User
from portal.models._helpers import utcnow
from portal.ratelimits import login_limits, remember_browser
from portal.services.accounts import authenticate
from portal.services.audit import record
from portal.schemas import api as out
from portal.services.tokens import issue_token, revoke_token

TAG = "tokens and units"


def _iso(value) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


@bp.route("/tokens", methods=["POST"])
@operation("Issue a bearer token for a user name and password", tag=TAG, body=out.TokenIn,
           responses={201: out.TokenOut}, errors=(401, 429), public=True)
@login_limits
def create_token():
    data = body()
    # One answer, in about the same time, for an unknown name, a wrong password and a deactivated account.
    user = authenticate(data["username"], data["password"])
    if user is None:
        record("user.login_failed", None, by=None, object_type="users", username=data["username"][:64],
               address=client_address(), via="api")
        db.session.commit()
        return api_error(401, _("Wrong user name or password."))
    clear, row = issue_token(user)
    db.session.commit()
    return remember_browser(jsonify({"token": clear, "expires_at": _iso(row.expires_at)}), user.username), 201


@bp.route("/tokens/current", methods=["DELETE"])
@operation("Revoke the token of this request", tag=TAG, responses={204: None})
def revoke_current_token():
    revoke_token(g.api_token, by=g.api_user)
    db.session.commit()
    return "", 204


@bp.route("/me")
@operation("The token's user and their memberships", tag=TAG, responses={200: out.MeOut})
def me():
    user: User = g.api_user
    g.api_token.last_used_at = utcnow()
    db.session.commit()
    return jsonify({
        "username": user.username,
        "display_name": user.display_name,
        "memberships": [{"unit_code": m.unit.code, "tier": m.unit.tier, "department": m.department_code,
                         "role": m.role} for m in access.memberships_of(user)],
    })


@bp.route("/units/<code>")
@operation("A unit and the units directly below it", tag=TAG, responses={200: out.UnitOut}, errors=(404,))
def unit(code: str):
    unit = access.unit_or_404(g.api_user, code)
    children = db.session.scalars(select(Unit).where(Unit.parent_id == unit.id,
                                                     access.visible_units_clause(g.api_user))
                                  .order_by(Unit.code)).all()
    return jsonify({
        "code": unit.code, "name": unit.name, "tier": unit.tier,
        "parent_code": unit.parent.code if unit.parent else None,
        "children": [{"code": c.code, "name": c.name, "tier": c.tier} for c in children],
    })
