"""The unit-scoped parent blueprint, mounted at ``/<tier>/<code>/``.

The unit is resolved once per request: a tier that is not the unit's tier, an
unknown code, or a unit outside the user's scope all answer 404 (anonymous
users go to the login page first). ``g.unit`` holds the unit and ``url_for``
gets it back automatically, so nested feature blueprints never see the code.
"""
from __future__ import annotations

from flask import Blueprint, abort, g
from flask_login import current_user

from portal import access
from portal.extensions import login_manager
from portal.models import TIERS, Unit
from portal.tiers import policy_for

bp = Blueprint("workspace", __name__, url_prefix="/<tier>/<code>")


@bp.url_value_preprocessor
def pull_unit(endpoint, values):
    g.unit_tier = values.pop("tier", None)
    g.unit_code = values.pop("code", None)


@bp.url_defaults
def add_unit(endpoint, values):
    unit = g.get("unit")
    if unit is not None:
        values.setdefault("tier", unit.tier)
        values.setdefault("code", unit.code)


@bp.before_request
def load_unit():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if g.unit_tier not in TIERS:
        abort(404)
    unit = Unit.by_code(g.unit_code)
    if unit is None or unit.tier != g.unit_tier:
        abort(404)
    access.require(current_user, access.Permission.VIEW, unit)
    g.unit = unit
    g.policy = policy_for(unit.tier)
    g.ancestors = unit.ancestors()  # every workspace page shows the breadcrumb


def require_feature(name: str) -> None:
    """A feature the tier does not show answers 404."""
    if name not in g.policy.features:
        abort(404)


from portal.blueprints.workspace import routes  # noqa: E402,F401
from portal.blueprints.accounts import bp as accounts_bp  # noqa: E402
from portal.blueprints.dashboard import bp as dashboard_bp  # noqa: E402
from portal.blueprints.meetings import bp as meetings_bp  # noqa: E402
from portal.blueprints.tasks import bp as tasks_bp  # noqa: E402
from portal.blueprints.activities import bp as activities_bp  # noqa: E402
from portal.blueprints.team import bp as team_bp  # noqa: E402
from portal.blueprints.agencies import bp as agencies_bp  # noqa: E402

bp.register_blueprint(accounts_bp)
bp.register_blueprint(dashboard_bp)
bp.register_blueprint(meetings_bp)
bp.register_blueprint(tasks_bp)
bp.register_blueprint(activities_bp)
bp.register_blueprint(team_bp)
bp.register_blueprint(agencies_bp)
