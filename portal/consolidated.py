"""The read side of the consolidated views (汇总视图): the stored figures of a unit and of
its children for a period, the previous period for trends, the months of a year, and
reporting completeness (报送情况).

Periods. A flow (reports, meetings, activities) is the sum of the period's months. A
task figure is a stock: for a period that has ended it is its value at the period's end
(the registry's month-end history, recomputable from the rows' timestamps), for the
running period its value as of now; so every key figure has a trend against the previous
period. Other stocks (decisions, notices, teams) are as of now whatever the period.

Everything here reads the stored roll-ups (``metric_values`` / ``metric_state``) of
:mod:`portal.metrics`, never the source rows: a page costs a few indexed reads
whatever the size of the subtree. The one exception is the list of tasks a single
unit still owes reports on, which is a drill-down (the registry's statements).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterable, Optional

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, or_, select

from portal import figcache
from portal.extensions import db
from portal.metrics import INDICATORS, REGISTRY, current_month, months_of, pick
from portal.metrics.engine import MS, MV, _dirty_clause, _figure, _number, indicators
from portal.metrics.registry import CURRENT
from portal.models import Unit

#: The period kinds a page offers, in menu order.
PERIOD_KINDS = {"month": _l("Month"), "quarter": _l("Quarter"), "half": _l("Half-year"), "year": _l("Year")}

#: The key figures at the top of a view: (key, is it an indicator, is lower better).
KEY_FIGURES = (
    ("completion_rate", True, False),
    ("on_time_rate", True, False),
    ("progress", True, False),
    ("reporting_rate", True, False),
    ("tasks.overdue", False, True),
    ("meetings.held", False, False),
)

#: The activity figures (活动与队伍) under the key figures: (key, is it an indicator, is lower better).
ACTIVITY_FIGURES = (
    ("activities.count", False, False), ("activities.person_times", False, False),
    ("activities.youth", False, False), ("activities.elders", False, False),
    ("activities.volunteer_hours", False, False), ("activities.funds", False, False),
    ("teams.complete", False, False),
)

#: The ranking's columns: (key, is it an indicator). Every one sorts.
RANKING_COLUMNS = (
    ("completion_rate", True), ("on_time_rate", True), ("progress", True), ("reporting_rate", True),
    ("tasks.total", False), ("tasks.overdue", False), ("reports.expected", False), ("reports.received", False),
    ("meetings.held", False), ("notices.open", False),
)
#: The activity ranking's columns (a table of their own, sorted like the ranking).
ACTIVITY_COLUMNS = tuple((key, False) for key, _i, _l in ACTIVITY_FIGURES)

#: The department view: its key figures and ranking columns (the registry's ``departments.*``).
DEPARTMENT_KEY_FIGURES = (("completion_rate", True, False), ("overdue_share", True, True),
                          ("tasks.total", False, False), ("tasks.overdue", False, True))
DEPARTMENT_COLUMNS = (("completion_rate", True), ("overdue_share", True), ("tasks.total", False),
                      ("tasks.accepted", False), ("tasks.overdue", False))
#: A view figure of the department view → the registry's measure.
DEPARTMENT_MEASURE = {"tasks.total": "total", "tasks.accepted": "accepted", "tasks.overdue": "overdue"}


def records_key(key: str, department: Optional[str] = None) -> str:
    """The metric whose records are behind a figure of the view (indicators open their numerator's)."""
    if department:
        key = {"completion_rate": "tasks.accepted", "overdue_share": "tasks.overdue"}.get(key, key)
        return f"departments.{department}.{DEPARTMENT_MEASURE[key]}"
    return INDICATORS[key].numerator if key in INDICATORS else key


def label(key: str) -> str:
    if key == "overdue_share":
        return _("Overdue share")
    return str(INDICATORS[key].label if key in INDICATORS else REGISTRY[key].label)


def is_indicator(key: str) -> bool:
    return key in INDICATORS or key == "overdue_share"


def is_flow(key: str) -> bool:
    """Whether the figure is a sum over the period's months (a flow); a stock is a value at one
    moment (:func:`as_of` says which)."""
    if key == "overdue_share":
        return False
    if key in INDICATORS:
        return REGISTRY[INDICATORS[key].numerator].kind == "flow"
    return REGISTRY[key].kind == "flow"


def has_trend(key: str, department: Optional[str] = None) -> bool:
    """Whether the figure has a value per period to compare with the previous one: the flows, and
    the task figures (their value at the end of an ended period). A department view's figures
    (``departments.*``) are as of now."""
    from portal.metrics import has_history

    if key == "overdue_share" or department:
        return False
    if key in INDICATORS:
        key = INDICATORS[key].numerator
    return REGISTRY[key].kind == "flow" or has_history(key)


def at_period_end(key: str, period: str, department: Optional[str] = None) -> bool:
    """Whether a stock's figure for the period is its value at the period's end (a task figure of
    an ended period) rather than as of now."""
    from portal.metrics import ended_month, has_history

    if key == "overdue_share" or department or is_flow(key):
        return False
    base = INDICATORS[key].numerator if key in INDICATORS else key
    return has_history(base) and ended_month(period) is not None


def as_of(key: str, period: str, department: Optional[str] = None) -> Optional[str]:
    """What a stock's figure for the period is, in words: its value at the end of an ended period
    (2026年10月末), or as of now; ``None`` for a flow (the period's sum)."""
    if is_flow(key):
        return None
    if at_period_end(key, period, department):
        return _("at the end of %(period)s", period=period_label(period))
    return _("as of now")


def department_figures(metrics: dict, code: str) -> tuple[dict, dict]:
    """One department's share of a unit's figures: (metrics, indicators) under the view's keys."""
    from portal.formatting import percent_of

    values = {key: metrics.get(f"departments.{code}.{measure}", 0) for key, measure in DEPARTMENT_MEASURE.items()}
    return values, {"completion_rate": percent_of(values["tasks.accepted"], values["tasks.total"]),
                    "overdue_share": percent_of(values["tasks.overdue"], values["tasks.total"])}


def departments_lagging(metrics: dict) -> list[dict]:
    """Every department with tasks at the unit: tasks, overdue and the overdue share, most lagging first."""
    from portal.metrics.registry import DEPARTMENT_CODES
    from portal.models import Department

    names = {d.code: d.name for d in Department.all()}
    rows = []
    for code in DEPARTMENT_CODES:
        values, rates = department_figures(metrics, code)
        if values["tasks.total"]:
            rows.append({"code": code, "name": names.get(code, code), "total": values["tasks.total"],
                         "overdue": values["tasks.overdue"], "overdue_share": rates["overdue_share"],
                         "completion_rate": rates["completion_rate"]})
    return sorted(rows, key=lambda r: (-(r["overdue_share"] or 0), -r["total"], r["code"]))


# --- periods -------------------------------------------------------------------------------

def period_kind(period: str) -> str:
    if "-Q" in period:
        return "quarter"
    if "-H" in period:
        return "half"
    return "month" if "-" in period else "year"


def valid_period(period: Optional[str]) -> Optional[str]:
    try:
        months_of(period or "")
    except ValueError:
        return None
    return period


def previous_period(period: str) -> str:
    """The period before: 2026-11 → 2026-10, 2026-Q1 → 2025-Q4, 2026-H1 → 2025-H2, 2026 → 2025."""
    kind, year = period_kind(period), int(period[:4])
    if kind == "year":
        return str(year - 1)
    if kind == "month":
        month = int(period[5:7])
        return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
    letter, number, count = period[5], int(period[6]), 4 if kind == "quarter" else 2
    return f"{year - 1}-{letter}{count}" if number == 1 else f"{year}-{letter}{number - 1}"


def period_of_kind(kind: str, today: date) -> str:
    """The period of a kind that holds today."""
    if kind == "quarter":
        return f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    if kind == "half":
        return f"{today.year}-H{1 if today.month <= 6 else 2}"
    if kind == "year":
        return str(today.year)
    return today.strftime("%Y-%m")


def period_label(period: str) -> str:
    """2026年11月 · 2026年第四季度 · 2026年下半年 · 2026年 (Nov 2026, 2026 Q4, 2026 H2, 2026 in English)."""
    kind, year = period_kind(period), int(period[:4])
    english = get_locale() is not None and get_locale().language == "en"
    if kind == "month":
        month = int(period[5:7])
        if english:
            return date(year, month, 1).strftime("%b %Y")
        return f"{year}年{month}月"
    if kind == "quarter":
        number = int(period[6])
        return f"{year} Q{number}" if english else f"{year}年第{'一二三四'[number - 1]}季度"
    if kind == "half":
        number = int(period[6])
        return f"{year} H{number}" if english else f"{year}年{'上下'[number - 1]}半年"
    return str(year) if english else f"{year}年"


def period_choices(today: date, selected: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The periods a page offers, grouped by kind: this year and last year, newest first."""
    groups = []
    for kind, name in PERIOD_KINDS.items():
        options = []
        for year in (today.year, today.year - 1):
            if kind == "month":
                values = [f"{year}-{m:02d}" for m in range(12, 0, -1)]
            elif kind == "quarter":
                values = [f"{year}-Q{q}" for q in range(4, 0, -1)]
            elif kind == "half":
                values = [f"{year}-H2", f"{year}-H1"]
            else:
                values = [str(year)]
            options += [(v, period_label(v)) for v in values if months_of(v)[0] <= today.strftime("%Y-%m")]
        groups.append((str(name), options))
    if not any(selected == v for _name, options in groups for v, _l2 in options):
        groups.insert(0, ("", [(selected, period_label(selected))]))
    return groups


# --- stored figures -------------------------------------------------------------------------

@dataclass
class Figures:
    unit: Unit
    period: str
    metrics: dict
    indicators: dict
    computed_at: object
    stale: bool

    def value(self, key: str):
        return self.indicators.get(key) if is_indicator(key) else self.metrics.get(key)

    def for_department(self, code: Optional[str]) -> "Figures":
        """The same unit's figures for one department's tasks (lead or co-operating)."""
        if not code:
            return self
        values, rates = department_figures(self.metrics, code)
        return Figures(self.unit, self.period, values, rates, self.computed_at, self.stale)

    def as_dict(self) -> dict:
        return {"unit_code": self.unit.code, "name": self.unit.name, "computed_at": self.computed_at,
                "stale": self.stale, "metrics": self.metrics, "indicators": self.indicators}


def _dirty_paths() -> list[str]:
    """The paths of the units whose figures are waiting for a refresh (few at any time)."""
    return list(db.session.scalars(select(Unit.path).join(MS, MS.c.unit_id == Unit.id).where(_dirty_clause())))


def read_many(units: Iterable[Unit], period: str, scope: str = "subtree") -> dict[int, Figures]:
    """The stored figures of several units at once (three statements whatever their number, or
    none when the figures cache holds them for the current epoch)."""
    units = list(units)
    if not units:
        return {}
    key = (tuple((u.id, u.path) for u in units), period, scope)
    stored = figcache.remember("read_many", key, lambda: _stored_many(units, period, scope), units=units)
    return {unit.id: Figures(unit, period, *stored[unit.id]) for unit in units}


def _stored_many(units: list[Unit], period: str, scope: str) -> dict[int, tuple]:
    """{unit id: (metrics, indicators, computed_at, stale)} read from the stored figures."""
    ids = [u.id for u in units]
    column = MV.c.subtree if scope == "subtree" else MV.c.own
    months = months_of(period)
    stored: dict[int, dict] = {u: {} for u in ids}
    for unit_id, metric, stored_period, value in db.session.execute(
            select(MV.c.unit_id, MV.c.metric, MV.c.period, column)
            .where(MV.c.unit_id.in_(ids), or_(MV.c.period == CURRENT, MV.c.period.in_(months)))):
        stored[unit_id][(metric, stored_period)] = value
    # A flow sums the months; a stock takes "current" or, with a history, the end of an ended period.
    values = {u: {k: _figure(v) for k, v in pick(stored[u], period).items()} for u in ids}
    computed = dict(db.session.execute(select(MS.c.unit_id, MS.c.refreshed_at).where(MS.c.unit_id.in_(ids))).all())
    dirty = _dirty_paths()
    out = {}
    for unit in units:
        raw = {key: values[unit.id].get(key, Decimal("0")) for key in REGISTRY}
        if scope == "subtree":
            stale = any(path.startswith(unit.path) for path in dirty)
        else:
            stale = unit.path in dirty
        out[unit.id] = ({k: _number(k, v) for k, v in raw.items()}, indicators(raw), computed.get(unit.id), stale)
    return out


def read_one(unit: Unit, period: str, scope: str = "subtree") -> Figures:
    return read_many([unit], period, scope)[unit.id]


def children_of(unit: Unit, visible_clause) -> list[Unit]:
    return list(db.session.scalars(select(Unit).where(Unit.parent_id == unit.id, visible_clause)
                                   .order_by(Unit.code)))


def ranking(children: list[Unit], period: str, sort: str, descending: bool,
            department: Optional[str] = None) -> list[Figures]:
    """The children's figures (of one department's tasks), sorted by a column (units without a
    value last, then by code)."""
    rows = [f.for_department(department) for f in read_many(children, period).values()]

    def key(f: Figures):
        value = f.value(sort) if sort != "name" else None
        if sort == "name":
            return (0, f.unit.code)
        if value is None:
            return (1, f.unit.code)
        return (0, -value if descending else value, f.unit.code)
    return sorted(rows, key=key)


def monthly(unit: Unit, year: int, scope: str = "subtree") -> list[dict]:
    """Month by month of a year (up to the current month): the flows, the task figures at each
    month's end (as of now for the current month), and their indicators (kept for the epoch:
    figcache)."""
    return figcache.remember("monthly", (unit.id, year, scope, str(get_locale())),
                             lambda: _monthly(unit, year, scope), units=[unit])


def _monthly(unit: Unit, year: int, scope: str) -> list[dict]:
    from portal.metrics import has_history

    last = current_month()
    months = [m for m in months_of(str(year)) if m <= last]
    column = MV.c.subtree if scope == "subtree" else MV.c.own
    keys = [k for k, m in REGISTRY.items() if m.kind == "flow" or has_history(k)]
    found: dict[str, dict] = {m: {} for m in months}
    for period, metric, value in db.session.execute(
            select(MV.c.period, MV.c.metric, column)
            .where(MV.c.unit_id == unit.id, MV.c.metric.in_(keys),
                   MV.c.period.in_(months + ([CURRENT] if last in months else [])))):
        found[last if period == CURRENT else period].setdefault(metric, Decimal("0"))
        found[last if period == CURRENT else period][metric] += _figure(value)
    series = []
    for month in months:
        raw = {k: found[month].get(k, Decimal("0")) for k in keys}
        rates = indicators({**{k: Decimal("0") for k in REGISTRY}, **raw})
        series.append({"period": month, "label": period_label(month),
                       "metrics": {k: _number(k, v) for k, v in raw.items()}, "reporting_rate": rates["reporting_rate"],
                       "indicators": rates})
    return series


# --- reporting completeness (报送情况) -----------------------------------------------------------

@dataclass
class ReportingRow:
    unit: Unit
    expected: int
    received: int

    @property
    def owed(self) -> int:
        # A report is only possible while a task is open, so every report received is one expected.
        return max(self.expected - self.received, 0)

    @property
    def reported(self) -> bool:
        return self.owed == 0


def _owing(unit: Unit, period: str, visible_clause, include_self: bool = False):
    """(select of Unit joined to its stored own report figures of the period grouped by unit,
    expected, received): the grouped read behind :func:`reporting` and its counts."""
    months = months_of(period)
    expected = func.sum(case((MV.c.metric == "reports.expected", MV.c.own), else_=0))
    received = func.sum(case((MV.c.metric == "reports.received", MV.c.own), else_=0))
    where = [Unit.subtree_clause(unit)] + ([visible_clause] if visible_clause is not None else [])
    if not include_self:
        where.append(Unit.id != unit.id)
    stmt = (select(Unit.id).join(MV, MV.c.unit_id == Unit.id)
            .where(*where, MV.c.metric.in_(("reports.expected", "reports.received")), MV.c.period.in_(months))
            .group_by(Unit.id).having(expected > 0))
    return stmt, expected, received


def reporting(unit: Unit, period: str, visible_clause, *, include_self: bool = False,
              reported: Optional[bool] = None, offset: int = 0, limit: Optional[int] = None) -> list[ReportingRow]:
    """Every unit below that owes reports in the period (its own tasks), with what arrived;
    one grouped read of the stored own figures. ``reported`` keeps the units that have (or
    have not) reported; ``offset``/``limit`` give one page of the list (in path order).
    ``visible_clause`` None: a reader of the whole subtree (the answer is then kept for the
    figures' epoch, figcache)."""
    def read() -> list[tuple[int, int, int]]:
        stmt, expected, received = _owing(unit, period, visible_clause, include_self)
        stmt = stmt.with_only_columns(Unit.id, expected, received).order_by(Unit.path)
        if reported is True:
            stmt = stmt.having(expected <= received)
        elif reported is False:
            stmt = stmt.having(expected > received)
        if offset:
            stmt = stmt.offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [(int(u), int(e), int(r)) for u, e, r in db.session.execute(stmt).all()]

    if visible_clause is None:
        rows = figcache.remember("reporting", (unit.id, unit.path, period, include_self, reported, offset, limit),
                                 read, units=[unit])
    else:
        rows = read()
    units = {u.id: u for u in db.session.scalars(select(Unit).where(Unit.id.in_([r[0] for r in rows])))} \
        if rows else {}
    return [ReportingRow(units[u], e, r) for u, e, r in rows if u in units]


def reporting_counts(unit: Unit, period: str, visible_clause) -> dict[str, tuple[int, int]]:
    """{tier: (units below owing reports in the period, those of them not reported)}: the counts
    of :func:`reporting`'s rows, without loading the units (kept for the epoch when
    ``visible_clause`` is None, a reader of the whole subtree)."""
    def read() -> dict[str, tuple[int, int]]:
        stmt, expected, received = _owing(unit, period, visible_clause)
        per_unit = stmt.with_only_columns(Unit.tier.label("tier"), case((expected > received, 1), else_=0)
                                          .label("lagging")).group_by(Unit.tier).subquery()
        return {tier: (int(n), int(lagging or 0)) for tier, n, lagging in db.session.execute(
            select(per_unit.c.tier, func.count(), func.sum(per_unit.c.lagging)).group_by(per_unit.c.tier)).all()}

    if visible_clause is None:
        return figcache.remember("reporting_counts", (unit.id, unit.path, period), read, units=[unit])
    return read()


def lagging_by_tier(unit: Unit, period: str, visible_clause) -> dict[str, int]:
    """How many units below have not reported in the period, by tier."""
    return {tier: lagging for tier, (_n, lagging) in reporting_counts(unit, period, visible_clause).items() if lagging}


def owed_tasks(unit: Unit, period: str):
    """The unit's own tasks expected to report in the period with no report yet: the registry's
    drill-down of ``reports.expected`` less that of ``reports.received``."""
    from portal.metrics import drilldown
    from sqlalchemy import false

    expected = drilldown(unit, "reports.expected", period, "own", false()).subquery()
    received = drilldown(unit, "reports.received", period, "own", false()).subquery()
    return (select(expected).where(~select(received.c.id).where(
        and_(received.c.id == expected.c.id, received.c.period == expected.c.period)).exists())
        .order_by(expected.c.period, expected.c.id))


def tier_noun(tier: Optional[str]) -> str:
    return {"city": _("cities"), "district": _("districts / counties"), "street": _("streets / townships")}.get(
        tier or "", _("units"))
