"""Joint meetings of a unit, nested under the workspace: /<tier>/<code>/meetings/."""
from flask import Blueprint

from portal.blueprints.workspace import require_feature

bp = Blueprint("meetings", __name__, url_prefix="/meetings")


@bp.before_request
def feature_enabled():
    require_feature("meetings")


from portal.blueprints.meetings import routes  # noqa: E402,F401
