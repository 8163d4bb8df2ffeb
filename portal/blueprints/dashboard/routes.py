"""Consolidated-view pages: the view itself, the records behind a figure, reporting
completeness with the reminder, and the Excel download.

Who sees what: a unit's view covers its own subtree only (the workspace has already
answered 404 for a unit outside the reader's scope). Readers of the units below
(offices and viewers) get the subtree's figures and the ranking of the children; a
liaison, who opens no unit below its own, gets its unit's own figures and no ranking.
A street has no children, so it never sees a ranking of its siblings.
"""
from __future__ import annotations

import json
from typing import Optional

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup
from flask_login import current_user
from sqlalchemy import func, select

from portal import access, consolidated as cv, figcache
from portal.blueprints.dashboard import bp
from portal.clock import local_today
from portal.extensions import db
from portal.metrics import INDICATORS, REGISTRY, current_month
from portal.models import Unit
from portal.pagination import page_number

#: Where the province's map comes from, by the province's code.
MAPS = {"41": "vendor/echarts/map/henan.json"}
RECORDS_PER_PAGE = 50


def _period() -> str:
    return cv.valid_period(request.args.get("period")) or current_month()


def _reads_below() -> bool:
    return access.reads_below(current_user, g.unit)


def _department() -> Optional[str]:
    """The department view's department (``?department=edu``): any for the readers of the units
    below; a liaison only its own department(s) at its unit."""
    from portal.metrics.registry import DEPARTMENT_CODES

    asked = request.args.get("department") or None
    if asked not in DEPARTMENT_CODES:
        return None
    if not _reads_below() and asked not in access.liaison_departments(current_user, g.unit):
        return None
    return asked


def _departments_offered() -> list:
    from portal.models import Department

    if _reads_below():
        return Department.all()
    own = set(access.liaison_departments(current_user, g.unit))
    return [d for d in Department.all() if d.code in own]


def _columns(department: Optional[str]):
    return cv.DEPARTMENT_COLUMNS if department else cv.RANKING_COLUMNS


def _sortable(department: Optional[str]):
    """Every column the ranking tables sort by (the activity table's too, outside a department view)."""
    return _columns(department) + (() if department else cv.ACTIVITY_COLUMNS)


def _sort(department: Optional[str] = None) -> tuple[str, bool]:
    sort = request.args.get("sort", "name")
    if sort != "name" and sort not in dict(_sortable(department)):
        sort = "name"
    descending = request.args.get("dir", "desc" if sort != "name" else "asc") == "desc"
    return sort, descending


def _ranking_rows(period: str, sort: str = "name", descending: bool = False,
                  department: Optional[str] = None) -> list:
    if not (g.policy.child_tier and _reads_below()):
        return []
    children = cv.children_of(g.unit, access.visible_units_clause(current_user))
    return cv.ranking(children, period, sort, descending, department)


def _chart_data(unit: Unit, period: str, rows: list, months: list, department: Optional[str],
                lagging: list) -> dict:
    """What the charts draw (also in the tables of the page, for readers without scripts)."""
    from portal.workspace_urls import workspace_url

    columns = _columns(department)
    return {
        "period": cv.period_label(period),
        "labels": {**{k: cv.label(k) for k, _i in columns}, "reporting_rate": cv.label("reporting_rate"),
                   "children": _("The units below compared"), "monthly": _("Month by month"),
                   "map": _("Map of the units below"), "rate": _("Rate, percent"), "count": _("Count"),
                   "expected": str(REGISTRY["reports.expected"].label),
                   "received": str(REGISTRY["reports.received"].label),
                   "held": str(REGISTRY["meetings.held"].label), "no_data": _("No figure"),
                   "overdue_share": cv.label("overdue_share"), "tasks": cv.label("tasks.total"),
                   "overdue": cv.label("tasks.overdue"), "completion_rate": cv.label("completion_rate"),
                   "progress": cv.label("progress"), "activities": cv.label("activities.count"),
                   "person_times": cv.label("activities.person_times"),
                   "activities_compared": _("Activities of the units below"),
                   "tasks_monthly": _("Task figures at each month's end")},
        "rates": [k for k, is_ind in columns if is_ind],
        "children": [{"code": r.unit.code, "name": r.unit.name,
                      "url": workspace_url(r.unit, "workspace.dashboard.index", period=period,
                                           **({"department": department} if department else {})),
                      **{k: r.value(k) for k, _i in columns},
                      **({} if department else {"activities": r.value("activities.count"),
                                                "person_times": r.value("activities.person_times")})}
                     for r in rows],
        "monthly": [{"label": m["label"], "reporting_rate": m["reporting_rate"],
                     "expected": m["metrics"]["reports.expected"], "received": m["metrics"]["reports.received"],
                     "held": m["metrics"]["meetings.held"],
                     "completion_rate": m["indicators"]["completion_rate"], "progress": m["indicators"]["progress"],
                     "overdue": m["metrics"]["tasks.overdue"], "activities": m["metrics"]["activities.count"],
                     "person_times": m["metrics"]["activities.person_times"]}
                    for m in months] if not department else [],
        "departments": [{**d, "url": url_for(".index", period=period, department=d["code"])} for d in lagging],
        "map": url_for("static", filename=MAPS[unit.code]) if unit.code in MAPS and rows else None,
    }


@bp.route("/")
def index():
    unit, period, department = g.unit, _period(), _department()
    below = _reads_below()
    sort, descending = _sort(department)

    def body() -> str:
        return str(render_template("dashboard/_body.html", **_view(unit, period, department, below, sort, descending)))
    if below:
        # The same for every reader of the units below (what they may open is the whole subtree):
        # kept for the figures' epoch, with everything it depends on in the key.
        html = figcache.remember("dashboard-body", (unit.id, unit.path, period, department, sort, descending,
                                                    str(get_locale()), request.script_root), body, units=[unit])
    else:
        html = body()
    return render_template("dashboard/index.html", unit=unit, period=period, department=department,
                           body=Markup(html))


def _view(unit: Unit, period: str, department: Optional[str], below: bool, sort: str, descending: bool) -> dict:
    """What the view's body shows."""
    # A liaison's department view sums its department's work below its unit (figures only, no names).
    scope = "subtree" if below or department else "own"
    whole = cv.read_one(unit, period, scope)
    figures = whole.for_department(department)
    previous = cv.read_one(unit, cv.previous_period(period), scope).for_department(department)
    rows = _ranking_rows(period, sort, descending, department)
    months = cv.monthly(unit, int(period[:4]), scope) if not department else []
    lagging_departments = cv.departments_lagging(whole.metrics) if not department and below else []
    completeness = None
    if g.policy.child_tier and below and not department:
        # A reader of the units below reads the whole subtree: no visibility filter (None).
        completeness = _tier_counts(cv.lagging_by_tier(unit, period, None))
    return dict(
        unit=unit, period=period, scope=scope, figures=figures, previous=previous,
        previous_period=cv.previous_period(period), rows=rows, sort=sort, descending=descending, months=months,
        completeness=completeness, has_map=unit.code in MAPS and bool(rows), department=department,
        departments=_departments_offered(), lagging_departments=lagging_departments,
        key_figures=cv.DEPARTMENT_KEY_FIGURES if department else cv.KEY_FIGURES, columns=_columns(department),
        activity_figures=() if department else cv.ACTIVITY_FIGURES,
        activity_columns=() if department else cv.ACTIVITY_COLUMNS,
        ranking_columns=[("name", _("Unit"))] + [(k, cv.label(k)) for k, _i in _columns(department)],
        activity_ranking_columns=[("name", _("Unit"))] + [(k, cv.label(k)) for k, _i in cv.ACTIVITY_COLUMNS],
        chart_data=_json(_chart_data(unit, period, rows, months, department, lagging_departments)),
        choices=cv.period_choices(local_today(), period), cv=cv)


def _json(data) -> str:
    """JSON for a <script type="application/json"> element: nothing in it can close the element."""
    return (json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def _tier_counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """{tier: units} → [(the tier's noun, units)]: streets first, then from the top down."""
    rank = {"street": 0, "city": 1, "district": 2}
    return [(cv.tier_noun(tier), n) for tier, n in sorted(counts.items(), key=lambda t: (rank.get(t[0], 3), t[0]))]


# --- the records behind a figure ---------------------------------------------------------------

@bp.route("/records/<key>")
def records(key: str):
    if key not in REGISTRY:
        abort(404)
    unit, period = g.unit, _period()
    department = key.split(".")[1] if key.startswith("departments.") else None
    scope = "subtree" if _reads_below() or (department and department in access.liaison_departments(
        current_user, unit)) else "own"
    from portal.metrics import drilldown

    stmt = drilldown(unit, key, period, scope, access.visible_units_clause(current_user))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = page_number()
    items = db.session.execute(stmt.limit(RECORDS_PER_PAGE).offset((page - 1) * RECORDS_PER_PAGE)).mappings().all()
    units = {u.id: u for u in db.session.scalars(select(Unit).where(Unit.id.in_({r["unit_id"] for r in items})))}
    return render_template("dashboard/records.html", unit=unit, period=period, scope=scope, key=key,
                           metric=REGISTRY[key], items=items, units=units, total=total, page=page,
                           pages=max((total + RECORDS_PER_PAGE - 1) // RECORDS_PER_PAGE, 1), cv=cv,
                           choices=cv.period_choices(local_today(), period))


# --- reporting completeness (报送情况) and the reminder (催报) ----------------------------------------

def _require_completeness() -> None:
    if not (g.policy.child_tier and _reads_below()):
        abort(404)


@bp.route("/reporting")
def reporting():
    _require_completeness()
    unit, period = g.unit, _period()
    show = request.args.get("show", "lagging")
    visible = None  # a reader of the units below (required above) reads the whole subtree
    # The counts cover every unit; only the page's rows are loaded.
    counts = cv.reporting_counts(unit, period, visible)
    expected = sum(n for n, _lagging in counts.values())
    lagging = sum(n for _n, n in counts.values())
    only = {"lagging": False, "reported": True}.get(show)
    total = {False: lagging, True: expected - lagging}.get(only, expected)
    page, per_page = page_number(), 50
    rows = cv.reporting(unit, period, visible, reported=only, offset=(page - 1) * per_page, limit=per_page)
    return render_template(
        "dashboard/reporting.html", unit=unit, period=period, rows=rows,
        total=total, expected=expected, reported=expected - lagging, lagging=lagging,
        by_tier=_tier_counts({tier: n for tier, (_n, n) in counts.items() if n}), show=show, page=page,
        pages=max((total + per_page - 1) // per_page, 1),
        can_remind=access.can(current_user, access.Permission.ACT, unit), cv=cv,
        choices=cv.period_choices(local_today(), period))


@bp.route("/reporting/remind", methods=["POST"])
def remind():
    _require_completeness()
    from portal.services import reporting as svc
    from portal.services import PermissionDenied

    from portal import args
    from portal.schemas.consolidated import RemindIn

    period = args.form(RemindIn).get("period") or current_month()
    try:
        svc.remind_laggards(g.unit, period, by=current_user)
    except PermissionDenied:
        db.session.rollback()
        abort(403)
    db.session.commit()
    flash(_("The reminder is on its way to the responsible people of every unit that has not reported."), "success")
    return redirect(url_for(".reporting", period=period))


@bp.route("/reporting/<child_code>")
def owed(child_code: str):
    """The tasks one unit below still owes reports on in the period."""
    _require_completeness()
    child = Unit.by_code(child_code)
    if child is None or child.id == g.unit.id or not child.is_within(g.unit) \
            or not access.can(current_user, access.Permission.VIEW, child):
        abort(404)
    period = _period()
    items = db.session.execute(cv.owed_tasks(child, period).limit(200)).mappings().all()
    return render_template("dashboard/owed.html", unit=g.unit, child=child, period=period, items=items, cv=cv)


# --- Excel ------------------------------------------------------------------------------------------

@bp.route("/export.xlsx")
def export():
    from portal.downloads import XLSX, attachment
    from portal.exports.dashboard_excel import workbook
    from portal.models import Department

    unit, period, department = g.unit, _period(), _department()
    below = _reads_below()

    def build() -> bytes:
        scope = "subtree" if below or department else "own"
        whole = cv.read_one(unit, period, scope)
        previous = cv.read_one(unit, cv.previous_period(period), scope).for_department(department)
        rows = _ranking_rows(period, department=department)
        reporting_rows = (cv.reporting(unit, period, None)  # below: the whole subtree
                          if g.policy.child_tier and below and not department else None)
        return workbook(unit, period, whole.for_department(department), previous, rows, reporting_rows,
                        cv.monthly(unit, int(period[:4]), scope) if not department else [],
                        department=db.session.get(Department, department) if department else None,
                        departments=cv.departments_lagging(whole.metrics) if below and not department else None)
    # The same file for every reader of the units below: kept for the figures' epoch (figcache).
    data = (figcache.remember("dashboard-xlsx", (unit.id, unit.path, period, department, str(get_locale())), build,
                              units=[unit])
            if below else build())
    name = f"{unit.name}-{_('Consolidated view')}-{period}-{local_today():%Y%m%d}.xlsx"
    ascii_name = f"dashboard-{unit.code}-{period}-{local_today():%Y%m%d}.xlsx"
    return attachment(data, XLSX, name, ascii_name)


def record_link(row, units) -> str | None:
    """The page of a record behind a figure, in its own unit's workspace."""
    from portal.workspace_urls import workspace_url

    unit = units.get(row["unit_id"])
    if unit is None or not access.can(current_user, access.Permission.VIEW, unit):
        return None
    if row["kind"] == "task":
        return workspace_url(unit, "workspace.tasks.detail", task_id=row["id"])
    if row["kind"] == "meeting":
        return workspace_url(unit, "workspace.meetings.detail", meeting_id=row["id"])
    if row["kind"] == "activity":
        return workspace_url(unit, "workspace.activities.detail", activity_id=row["id"])
    if row["kind"] == "unit":
        return workspace_url(unit, "workspace.dashboard.index")
    return None


@bp.app_context_processor
def dashboard_helpers() -> dict:
    return {"record_link": record_link, "format_figure": format_figure}


def format_figure(key: str, value) -> str:
    if value is None:
        return "—"
    if cv.is_indicator(key):
        return f"{value:.1f}%"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"

