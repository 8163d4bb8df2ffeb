"""Figures over the API: the stored roll-ups of a unit and the records behind each."""
from __future__ import annotations

from datetime import date, datetime

from flask import abort, g, jsonify
from sqlalchemy import select

from portal import access, metrics
from portal.blueprints.api import bp, operation, query
from portal.extensions import db
from portal.models import Unit
from portal.schemas import metrics as schemas

TAG = "figures"


def _scope(unit: Unit, asked: str) -> str:
    # Subtree figures would tell a reader about units it may not open.
    return asked if asked == "own" or access.reads_below(g.api_user, unit) else "own"


def _iso(value):
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    return value.isoformat() if isinstance(value, date) else str(value)


@bp.route("/units/<code>/metrics")
@operation("The unit's figures and indicators for a period (stored roll-ups)", tag=TAG,
           query=schemas.MetricsQuery, responses={200: schemas.MetricsOut}, errors=(404,))
def unit_metrics(code: str):
    unit = access.unit_or_404(g.api_user, code)
    q = query()
    figures = metrics.read(unit, q["period"] or None, _scope(unit, q["scope"]))
    at = figures["computed_at"]
    figures["computed_at"] = at.replace(microsecond=0).isoformat() + "Z" if at else None
    return jsonify(figures)


@bp.route("/units/<code>/metrics/<key>/records")
@operation("The records behind one of the unit's figures, paginated", tag=TAG, query=schemas.RecordsQuery,
           responses={200: schemas.RecordsOut}, errors=(404,))
def metric_records(code: str, key: str):
    unit = access.unit_or_404(g.api_user, code)
    if key not in metrics.REGISTRY:
        abort(404)
    q = query()
    period = q["period"] or metrics.current_month()
    scope = _scope(unit, q["scope"])
    stmt = metrics.drilldown(unit, key, period, scope, access.visible_units_clause(g.api_user))
    page, per_page = q["page"], q["per_page"]
    rows = stmt.subquery()
    total = db.session.scalar(select(db.func.count()).select_from(rows))
    items = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).mappings().all()
    codes = dict(db.session.execute(select(Unit.id, Unit.code).where(Unit.id.in_({r["unit_id"] for r in items}))).all())
    return jsonify({
        "unit_code": unit.code, "metric": key, "period": period, "scope": scope, "page": page, "per_page": per_page,
        "total": total,
        "items": [{"kind": r["kind"], "id": r["id"], "unit_code": codes[r["unit_id"]], "title": r["title"],
                   "status": r["status"], "date": _iso(r["day"]), "period": r["period"], "value": float(r["value"])}
                  for r in items],
    })
