"""The consolidated views over the API: the figures of the units below (a ranking's data), and
reporting completeness. Same access rules as the pages: only readers of the units below
(offices and viewers) get them; a liaison, who opens no unit below its own, gets 404."""
from __future__ import annotations

from flask import abort, g, jsonify

from portal import access
from portal import consolidated as cv
from portal.blueprints.api import bp, operation, query
from portal.metrics import current_month
from portal.schemas import consolidated as schemas

TAG = "figures"


def _iso(at) -> str | None:
    return at.replace(microsecond=0).isoformat() + "Z" if at else None


def _unit_below_readable(code: str):
    unit = access.unit_or_404(g.api_user, code)
    if not access.reads_below(g.api_user, unit):
        abort(404)
    return unit


@bp.route("/units/<code>/children/metrics")
@operation("The figures of every unit directly below, for a period (and a department)", tag=TAG,
           query=schemas.ChildrenQuery, responses={200: schemas.ChildrenOut}, errors=(404,))
def children_metrics(code: str):
    unit = _unit_below_readable(code)
    q = query()
    period = q["period"] or current_month()
    children = cv.children_of(unit, access.visible_units_clause(g.api_user))
    page, per_page = q["page"], q["per_page"]
    shown = children[(page - 1) * per_page:page * per_page]
    rows = cv.ranking(shown, period, "name", False, q["department"])
    return jsonify({"unit_code": unit.code, "period": period, "department": q["department"], "page": page,
                    "per_page": per_page, "total": len(children),
                    "items": [{**f.as_dict(), "computed_at": _iso(f.computed_at)} for f in rows]})


@bp.route("/units/<code>/reporting")
@operation("Reporting completeness: the units below that owe reports in a period, and who has reported", tag=TAG,
           query=schemas.ReportingQuery, responses={200: schemas.ReportingOut}, errors=(404,))
def reporting(code: str):
    unit = _unit_below_readable(code)
    q = query()
    period = q["period"] or current_month()
    rows = cv.reporting(unit, period, access.visible_units_clause(g.api_user))
    shown = rows if q["reported"] is None else [r for r in rows if r.reported == (q["reported"] == "true")]
    page, per_page = q["page"], q["per_page"]
    return jsonify({
        "unit_code": unit.code, "period": period, "units_expected": len(rows),
        "units_reported": sum(r.reported for r in rows), "page": page, "per_page": per_page, "total": len(shown),
        "items": [{"unit_code": r.unit.code, "name": r.unit.name, "reported": r.reported, "tasks_owed": r.owed,
                   "reports_expected": r.expected, "reports_received": r.received}
                  for r in shown[(page - 1) * per_page:page * per_page]]})
