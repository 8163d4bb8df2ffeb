"""The work team (工作队伍) roster of a unit, nested under the workspace: /<tier>/<code>/team/."""
from __future__ import annotations

from flask import Blueprint

from portal.blueprints.workspace import require_feature

bp = Blueprint("team", __name__, url_prefix="/team")


@bp.before_request
def feature_enabled():
    require_feature("team")


from portal.blueprints.team import routes  # noqa: E402,F401
