"""The agency names of the member departments at a unit, nested under the workspace:
/<tier>/<code>/agencies/ (the unit's own office administrators set them)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("agencies", __name__, url_prefix="/agencies")


@bp.app_template_global("agency")
def agency_template_global(code, unit=None) -> str:
    """``{{ agency(task.lead_department_code, task.unit) }}``: the department's agency at the unit
    (the page's unit when none is given), from one query per unit and request."""
    from flask import g

    from portal.services.agencies import agency_name

    return agency_name(unit if unit is not None else g.get("unit"), code)


@bp.app_template_global("load_agencies")
def load_agencies_template_global(units) -> str:
    """``{{ load_agencies(rows|map(attribute='unit')) }}`` before a list naming departments at many
    units: their agency names in one query (it prints nothing)."""
    from portal.services.agencies import agency_names_for

    agency_names_for(units)
    return ""


from portal.blueprints.agencies import routes  # noqa: E402,F401
