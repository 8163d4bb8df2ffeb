"""Tasks of a unit (任务督办), nested under the workspace: /<tier>/<code>/tasks/."""
from __future__ import annotations

from typing import Any

from flask import Blueprint

from portal.blueprints.workspace import require_feature

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


@bp.before_request
def feature_enabled():
    require_feature("tasks")


def format_quantity(value: Any) -> str:
    """A target or actual value without the storage's trailing zeros: 120, 12.5."""
    if value is None:
        return "—"
    from portal.formatting import round_half_up

    return format(round_half_up(value).normalize(), "f")


@bp.app_context_processor
def task_helpers() -> dict[str, Any]:
    from portal.formatting import format_percent

    return {"format_quantity": format_quantity,
            "format_percent": format_percent}


from portal.blueprints.tasks import routes  # noqa: E402,F401
