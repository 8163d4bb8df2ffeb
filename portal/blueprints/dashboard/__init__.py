"""The consolidated view of a unit (汇总视图), nested under the workspace: /<tier>/<code>/dashboard/.

Key figures with their trend, the ranking of the children, charts and the map, the
records behind every figure, reporting completeness (报送情况) with the reminder (催报),
and the Excel download. Everything reads the stored roll-ups (portal/consolidated.py).
"""
from __future__ import annotations

from flask import Blueprint

from portal.blueprints.workspace import require_feature

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.before_request
def feature_enabled():
    require_feature("dashboard")


from portal.blueprints.dashboard import briefings, routes  # noqa: E402,F401
