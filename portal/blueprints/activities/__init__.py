"""The activity register (活动登记) of a unit, nested under the workspace: /<tier>/<code>/activities/."""
from __future__ import annotations

from flask import Blueprint

from portal.blueprints.workspace import require_feature

bp = Blueprint("activities", __name__, url_prefix="/activities")


@bp.before_request
def feature_enabled():
    require_feature("activities")


from portal.blueprints.activities import routes  # noqa: E402,F401
