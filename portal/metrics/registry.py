"""The metric registry: every figure of the portal, declared once.

A **metric** is additive (a count or a sum), so that a unit's subtree value is
its own value plus its children's subtree values. It is a *stock* (as of now,
stored under the period ``current``) or a *flow* (per calendar month on the
Beijing calendar, stored under ``YYYY-MM``; a quarter, half-year or year is
the sum of its months). Metrics come in **families**: one SQL statement yields
``(unit_id, period, <one column per metric>)`` for the units' **own** records,
and one drill-down statement per metric yields the records behind a value.

An **indicator** is a numerator metric over a denominator metric, divided at
read time (rates are never stored: they do not add up).

Adding a figure is one declaration here, never a new table, job or page.

Definitions (each is pinned by a test in tests/test_metrics.py):

Task figures count **leaf task instances**: instances not passed down any
further (no child instances), where the work is done. A cascaded task
therefore counts once per receiving unit and never again at the units that
passed it down, so a subtree sum counts nothing twice.

* ``tasks.total``: leaf instances that are not cancelled.
* ``tasks.open``: leaf instances assigned, in progress, submitted or returned.
* ``tasks.accepted``: leaf instances accepted (验收) by the assigning unit.
* ``tasks.overdue``: open leaf instances whose due date is before today
  (Beijing calendar); refreshed every day just after midnight.
* ``tasks.accepted_on_time``: accepted leaf instances whose acceptance (the
  latest "accept" review) fell on or before the due date, Beijing calendar.
* ``tasks.progress_weighted`` and ``tasks.weight``: Σ progress × weight and
  Σ weight over the leaf instances that are not cancelled (progress is the
  latest reported percent).

Task figures also have a **history**: for every month that has ended (since the
earliest task), the same figures *as of the end of that month* (its last day,
Beijing calendar), stored under the period ``YYYY-MM`` next to ``current``. They
are evaluated from the rows' own timestamps, never copied from a snapshot, so a
past month is recomputable like any other figure (rebuild, reconcile and the
property test cover it). As of a month's end, with ``until`` the first instant
of the next month:

* an instance *exists* when it was created before ``until``, is not cancelled
  (the portal keeps no per-instance cancellation time, so a cancelled instance
  drops out of every month, the rule ``reports.expected`` already follows) and
  is a leaf then (no child instance created before ``until``);
* it is *accepted* when it is accepted and its latest "accept" review came
  before ``until`` (acceptance is final; an accepted instance without a review
  record counts from its creation), *open* otherwise;
* *overdue*: open with a due date before the month's last day (the page as it
  stood on that day); *accepted on time*: accepted then, by the rule above;
* its *progress* is the percent of its latest report before ``until`` (0
  without one), weighted by its weight.

A write recomputes its unit's own history too (one unit's tasks × the months:
a cancellation or an edited weight or due date changes past months under these
rules, and a stored figure must always equal a recomputation); only figures
that changed are written. A new month appears when the daily job runs after
the month boundary (the task family is ``dated``) or at a rebuild.
* ``reports.expected`` (flow): every leaf instance that is not cancelled is
  expected to report at least once in every month it is open: from the month
  it was created to the month it was accepted, or to the current month while
  it is not accepted.
* ``reports.received`` (flow): leaf instances (not cancelled) with at least
  one progress report dated in the month (Beijing calendar); one per instance
  and month however many reports.
* ``meetings.held`` (flow): the unit's joint meetings that were held (held or
  minutes published), in the month they started (local time).
* ``decisions.open`` / ``decisions.closed``: decisions (议定事项) of the unit's
  meetings, by state.
* ``notices.open``: supervision notices (督办单) on the unit's task instances
  (not cancelled) that have not been answered.

Activities (活动登记), flows by the month the activity started (its start date):

* ``activities.count``: registered activities; ``activities.count.<category>``
  the same for one category (``legal``, ``festival`` …).
* ``activities.person_times``: Σ person-times (youth + elders + others);
  ``activities.person_times.<category>`` for one category;
  ``activities.youth`` and ``activities.elders``: Σ of those groups.
* ``activities.volunteers``: Σ volunteers; ``activities.volunteer_hours``: Σ hours.
* ``activities.funds``: Σ funds spent, yuan.

Work teams (工作队伍), stocks as of today (refreshed daily, as joining and
leaving dates pass):

* ``teams.members``: roster members active today (joined on or before today,
  not yet left); ``teams.volunteers``: those of them with the role volunteer.
* ``teams.complete``: 1 for a unit whose team has at least 5 active members,
  so the subtree value is the number of units with a complete team.

* ``departments.<code>.total`` / ``.accepted`` / ``.overdue``: for each of the 16 member
  departments, the leaf instances counted by ``tasks.total``, ``tasks.accepted`` and
  ``tasks.overdue`` whose lead or a co-operating department it is (the department view).

Indicators (percent, 0–100, one decimal, rounded half up; ``null`` when the
denominator is 0):

* ``completion_rate`` = tasks.accepted / tasks.total
* ``on_time_rate`` = tasks.accepted_on_time / tasks.accepted
* ``progress`` = tasks.progress_weighted / tasks.weight (already a percent)
* ``reporting_rate`` = reports.received / reports.expected
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable, Optional

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, DateTime, String, and_, case, exists, func, literal, null, or_, select, union_all
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.metrics import sql
from portal.models import (Activity, Decision, Meeting, MeetingStatus, SupervisionNotice, Task, TaskReport,
                           TaskReview, TeamMember, Unit)
from portal.models.activities import CATEGORY_CODES, COMPLETE_TEAM
from portal.models.tasks import OPEN_STATES, TaskStatus

STOCK, FLOW = "stock", "flow"
CURRENT = "current"
#: A filter on the column holding the unit id (``None``: every unit).
UnitFilter = Optional[Callable]


def _where_units(units: UnitFilter, column):
    return units(column) if units is not None else literal(True)


@dataclass(frozen=True)
class Metric:
    key: str
    label: object
    kind: str
    family: str
    #: Counts are integers; sums keep their decimals.
    integer: bool = True

    @property
    def column(self) -> str:
        return self.key.replace(".", "_")

    def own_sql(self, units: UnitFilter = None, today: Optional[date] = None):
        """``(unit_id, period, value)`` of the units' own records."""
        stmt = FAMILIES[self.family].statement(units, today or _today()).subquery()
        return select(stmt.c.unit_id, stmt.c.period, stmt.c[self.column].label("value"))

    def drilldown(self, units: UnitFilter, periods: Optional[list[str]] = None, today: Optional[date] = None):
        """The records behind the value: ``(kind, id, unit_id, title, status, day, period, value)``;
        for a flow, ``periods`` are the months asked for; for a stock, ``[month]`` asks for its value at
        the end of that (ended) month, ``None`` or ``[current]`` for now."""
        family = FAMILIES[self.family]
        if self.kind == STOCK and periods and periods[0] != CURRENT and family.history:
            # A stock's value at the end of an ended month: the records as they stood then.
            rows = family.history_drill(self.key, units, today or _today(), periods[0]).subquery()
        else:
            rows = family.drill(self.key, units, today or _today()).subquery()
        stmt = select(rows)
        if self.kind == FLOW and periods is not None:
            stmt = stmt.where(rows.c.period.in_(periods))
        return stmt.order_by(rows.c.period, rows.c.unit_id, rows.c.id)


@dataclass(frozen=True)
class Family:
    key: str
    kind: str
    statement: Callable  # (units, today) -> Select(unit_id, period, <metric columns>)
    drill: Callable      # (metric key, units, today) -> Select(record columns)
    metrics: tuple[Metric, ...]
    #: Its values change with the date alone: refreshed by the daily job.
    dated: bool = False
    #: A stock with a history: ``(metric key, units, today, month)`` -> the records behind its value at the
    #: end of a month that has ended (its statement also yields those months' rows, period ``YYYY-MM``).
    history_drill: Optional[Callable] = None

    @property
    def history(self) -> bool:
        return self.history_drill is not None


@dataclass(frozen=True)
class Indicator:
    key: str
    label: object
    numerator: str
    denominator: str
    #: 100 for a rate; 1 when the quotient already is a percent (weighted progress).
    scale: int = 100


def _today() -> date:
    from portal.clock import local_today

    return local_today()


# --- the records every figure comes from --------------------------------------------------

def _leaf():
    child = aliased(Task)
    return ~exists().where(child.parent_id == Task.id)


def _accepted_at():
    return (select(func.max(TaskReview.at)).where(TaskReview.task_id == Task.id, TaskReview.decision == "accept")
            .scalar_subquery())


def _count(condition):
    return func.sum(case((condition, 1), else_=0))


CANCELLED = TaskStatus.CANCELLED.value
ACCEPTED = TaskStatus.ACCEPTED.value


def _task_conditions(today: date) -> dict:
    live = Task.status != CANCELLED
    accepted = Task.status == ACCEPTED
    return {
        "tasks.total": live,
        "tasks.open": Task.status.in_(OPEN_STATES),
        "tasks.accepted": accepted,
        "tasks.overdue": and_(Task.status.in_(OPEN_STATES), Task.due_date < today),
        "tasks.accepted_on_time": and_(accepted, sql.local_date(_accepted_at()) <= Task.due_date),
    }


def _task_sums() -> dict:
    live = Task.status != CANCELLED
    return {"tasks.progress_weighted": case((live, Task.progress * Task.weight), else_=0),
            "tasks.weight": case((live, Task.weight), else_=0)}


def tasks_statement(units: UnitFilter, today: date):
    """The task figures as of now (``current``) and at the end of every month that has ended."""
    columns = [_count(cond).label(key.replace(".", "_")) for key, cond in _task_conditions(today).items()]
    columns += [func.round(func.sum(expr), 4).label(key.replace(".", "_")) for key, expr in _task_sums().items()]
    now = (select(Task.unit_id.label("unit_id"), literal(CURRENT, String).label("period"), *columns)
           .where(_leaf(), _where_units(units, Task.unit_id)).group_by(Task.unit_id))
    history = _tasks_history(units, today)
    return union_all(now, history) if history is not None else now


# The task figures at the end of each month that has ended (see the module's docstring).

def _ended_months(units: UnitFilter, today: date, only: Optional[str] = None):
    """(period, until, last_day) of the months before the current one from the units' earliest task
    (or only the month ``only``); ``until`` is the first instant of the next month in Beijing as a
    naive UTC timestamp, like the stored ones. ``None`` when there is none."""
    from datetime import datetime, timezone

    from portal.clock import local_zone

    current = date(today.year, today.month, 1)
    if only is not None:
        start = date(int(only[:4]), int(only[5:7]), 1)
        if start >= current:
            return None
        end = start
    else:
        first = db.session.scalar(select(func.min(Task.created_at)).where(_where_units(units, Task.unit_id)))
        if first is None:
            return None
        # Beijing is ahead of UTC: a task's local month is never before its UTC month.
        start = date(first.year, first.month, 1)
        if start >= current:
            return None
        end = date(current.year - (current.month == 1), 12 if current.month == 1 else current.month - 1, 1)
    zone, months, month = local_zone(), [], start
    while month <= end:
        following = date(month.year + (month.month == 12), 1 if month.month == 12 else month.month + 1, 1)
        until = (datetime(following.year, following.month, 1, tzinfo=zone).astimezone(timezone.utc)
                 .replace(tzinfo=None))
        months.append(select(literal(month.strftime("%Y-%m"), String).label("period"),
                             literal(until, DateTime).label("until"),
                             literal(following - timedelta(days=1), Date).label("last_day")))
        month = following
    return union_all(*months).subquery("ended") if len(months) > 1 else months[0].subquery("ended")


def _history_pairs(units: UnitFilter, today: date, only: Optional[str] = None):
    """One row per (leaf instance as of a month's end, ended month), with its state then."""
    months = _ended_months(units, today, only)
    if months is None:
        return None
    accepted_at = _accepted_at()
    tasks = (select(Task.id, Task.unit_id, Task.title, Task.status, Task.due_date, Task.weight, Task.created_at,
                    case((Task.status == ACCEPTED, func.coalesce(accepted_at, Task.created_at)), else_=null())
                    .label("accepted_at"),
                    case((and_(Task.status == ACCEPTED, sql.local_date(accepted_at) <= Task.due_date), 1), else_=0)
                    .label("on_time"))
             .where(Task.status != CANCELLED, _where_units(units, Task.unit_id)).subquery("history_tasks"))
    child = aliased(Task)
    percent = (select(TaskReport.percent).where(TaskReport.task_id == tasks.c.id, TaskReport.at < months.c.until)
               .order_by(TaskReport.at.desc(), TaskReport.id.desc()).limit(1).scalar_subquery())
    accepted = case((tasks.c.accepted_at < months.c.until, 1), else_=0)
    return (select(tasks.c.id, tasks.c.unit_id, tasks.c.title, tasks.c.status, tasks.c.due_date, tasks.c.weight,
                   months.c.period, months.c.last_day, tasks.c.on_time, accepted.label("accepted"),
                   func.coalesce(percent, 0).label("percent"))
            .select_from(tasks.join(months, tasks.c.created_at < months.c.until))
            .where(~exists().where(child.parent_id == tasks.c.id, child.created_at < months.c.until))
            .subquery("history_pairs"))


def _history_conditions(pairs) -> dict:
    return {"tasks.total": literal(True), "tasks.open": pairs.c.accepted == 0, "tasks.accepted": pairs.c.accepted == 1,
            "tasks.overdue": and_(pairs.c.accepted == 0, pairs.c.due_date < pairs.c.last_day),
            "tasks.accepted_on_time": and_(pairs.c.accepted == 1, pairs.c.on_time == 1)}


def _history_sums(pairs) -> dict:
    return {"tasks.progress_weighted": pairs.c.percent * pairs.c.weight, "tasks.weight": pairs.c.weight}


def _tasks_history(units: UnitFilter, today: date):
    pairs = _history_pairs(units, today)
    if pairs is None:
        return None
    columns = [_count(cond).label(key.replace(".", "_")) for key, cond in _history_conditions(pairs).items()]
    columns += [func.round(func.sum(expr), 4).label(key.replace(".", "_"))
                for key, expr in _history_sums(pairs).items()]
    return select(pairs.c.unit_id, pairs.c.period, *columns).group_by(pairs.c.unit_id, pairs.c.period)


def tasks_history_drill(key: str, units: UnitFilter, today: date, month: str):
    pairs = _history_pairs(units, today, only=month)
    if pairs is None:  # not an ended month: nothing is stored under it
        return select(literal("task", String).label("kind"), Task.id.label("id"), Task.unit_id.label("unit_id"),
                      Task.title.label("title"), Task.status.label("status"), Task.due_date.label("day"),
                      literal(month, String).label("period"), literal(1).label("value")).where(literal(False))
    sums = _history_sums(pairs)
    where = _history_conditions(pairs).get(key, literal(True))
    value = sums[key] if key in sums else literal(1)
    return select(literal("task", String).label("kind"), pairs.c.id.label("id"), pairs.c.unit_id.label("unit_id"),
                  pairs.c.title.label("title"), pairs.c.status.label("status"), pairs.c.due_date.label("day"),
                  pairs.c.period.label("period"), value.label("value")).where(where)


def tasks_drill(key: str, units: UnitFilter, today: date):
    conditions, sums = _task_conditions(today), _task_sums()
    where = conditions.get(key, Task.status != CANCELLED)
    value = sums[key] if key in sums else literal(1)
    return select(literal("task", String).label("kind"), Task.id.label("id"), Task.unit_id.label("unit_id"),
                  Task.title.label("title"), Task.status.label("status"), Task.due_date.label("day"),
                  literal(CURRENT, String).label("period"), value.label("value")).where(
        _leaf(), where, _where_units(units, Task.unit_id))


# Reports: expected per (leaf instance, month it is open), received per (leaf instance, month it reported in).

def _month_table(units: UnitFilter, today: date):
    """The months from the earliest task of the units to the current month: (period, first_day, last_day)."""
    first = db.session.scalar(select(func.min(Task.created_at)).where(_where_units(units, Task.unit_id)))
    end = date(today.year, today.month, 1)
    # Beijing is ahead of UTC: a task's local month is never before its UTC month.
    start = min(date(first.year, first.month, 1), end) if first is not None else end
    months, month = [], start
    while month <= end:
        following = date(month.year + (month.month == 12), 1 if month.month == 12 else month.month + 1, 1)
        months.append(select(literal(month.strftime("%Y-%m"), String).label("period"),
                             literal(month, Date).label("first_day"),
                             literal(following - timedelta(days=1), Date).label("last_day")))
        month = following
    return union_all(*months).subquery("months") if len(months) > 1 else months[0].subquery("months")


def _expected_pairs(units: UnitFilter, today: date):
    live = (select(Task.id.label("task_id"), Task.unit_id.label("unit_id"),
                   sql.local_date(Task.created_at).label("from_day"),
                   case((Task.status == ACCEPTED, sql.local_date(_accepted_at())), else_=null()).label("to_day"))
            .where(_leaf(), Task.status != CANCELLED, _where_units(units, Task.unit_id)).subquery("live"))
    months = _month_table(units, today)
    return (select(live.c.task_id, live.c.unit_id, months.c.period)
            .select_from(live.join(months, and_(live.c.from_day <= months.c.last_day,
                                                or_(live.c.to_day.is_(None), live.c.to_day >= months.c.first_day)))))


def _received_pairs(units: UnitFilter):
    reported = (select(TaskReport.task_id.label("task_id"), Task.unit_id.label("unit_id"),
                       sql.local_month(TaskReport.at).label("period"))
                .join(Task, Task.id == TaskReport.task_id)
                .where(_leaf(), Task.status != CANCELLED, _where_units(units, Task.unit_id)).subquery("reported"))
    return select(reported.c.task_id, reported.c.unit_id, reported.c.period).distinct()


def reports_statement(units: UnitFilter, today: date):
    expected = _expected_pairs(units, today).subquery("expected")
    received = _received_pairs(units).subquery("received")
    both = union_all(
        select(expected.c.unit_id, expected.c.period, literal(1).label("e"), literal(0).label("r")),
        select(received.c.unit_id, received.c.period, literal(0).label("e"), literal(1).label("r")),
    ).subquery("pairs")
    return (select(both.c.unit_id, both.c.period, func.sum(both.c.e).label("reports_expected"),
                   func.sum(both.c.r).label("reports_received"))
            .group_by(both.c.unit_id, both.c.period))


def reports_drill(key: str, units: UnitFilter, today: date):
    pairs = (_expected_pairs(units, today) if key == "reports.expected" else _received_pairs(units)).subquery()
    return (select(literal("task", String).label("kind"), Task.id.label("id"), Task.unit_id.label("unit_id"),
                   Task.title.label("title"), Task.status.label("status"), Task.due_date.label("day"),
                   pairs.c.period.label("period"), literal(1).label("value"))
            .join(Task, Task.id == pairs.c.task_id))


# Meetings held, by the month they started.

HELD = (MeetingStatus.HELD.value, MeetingStatus.MINUTES_PUBLISHED.value)


def _held(units: UnitFilter):
    return (select(Meeting.id.label("id"), Meeting.unit_id.label("unit_id"), Meeting.title.label("title"),
                   Meeting.status.label("status"), Meeting.starts_at.label("starts_at"),
                   sql.wall_month(Meeting.starts_at).label("period"))
            .where(Meeting.status.in_(HELD), _where_units(units, Meeting.unit_id)).subquery("held"))


def meetings_statement(units: UnitFilter, today: date):
    held = _held(units)
    return (select(held.c.unit_id, held.c.period, func.count().label("meetings_held"))
            .group_by(held.c.unit_id, held.c.period))


def meetings_drill(key: str, units: UnitFilter, today: date):
    held = _held(units)
    return select(literal("meeting", String).label("kind"), held.c.id, held.c.unit_id, held.c.title,
                  held.c.status, held.c.starts_at.label("day"), held.c.period, literal(1).label("value"))


# Decisions of the unit's meetings, open and closed.

def decisions_statement(units: UnitFilter, today: date):
    return (select(Meeting.unit_id.label("unit_id"), literal(CURRENT, String).label("period"),
                   _count(Decision.status == "open").label("decisions_open"),
                   _count(Decision.status == "closed").label("decisions_closed"))
            .join(Meeting, Meeting.id == Decision.meeting_id)
            .where(_where_units(units, Meeting.unit_id)).group_by(Meeting.unit_id))


def decisions_drill(key: str, units: UnitFilter, today: date):
    status = key.rpartition(".")[2]
    return (select(literal("decision", String).label("kind"), Decision.id.label("id"),
                   Meeting.unit_id.label("unit_id"), func.substr(Decision.text, 1, 200).label("title"),
                   Decision.status.label("status"), Decision.due_date.label("day"),
                   literal(CURRENT, String).label("period"), literal(1).label("value"))
            .join(Meeting, Meeting.id == Decision.meeting_id)
            .where(Decision.status == status, _where_units(units, Meeting.unit_id)))


# Supervision notices not yet answered.

def _open_notices(units: UnitFilter):
    return (SupervisionNotice.responded_at.is_(None), Task.status != CANCELLED, _where_units(units, Task.unit_id))


def notices_statement(units: UnitFilter, today: date):
    return (select(Task.unit_id.label("unit_id"), literal(CURRENT, String).label("period"),
                   func.count(SupervisionNotice.id).label("notices_open"))
            .join(Task, Task.id == SupervisionNotice.task_id).where(*_open_notices(units)).group_by(Task.unit_id))


def notices_drill(key: str, units: UnitFilter, today: date):
    return (select(literal("notice", String).label("kind"), SupervisionNotice.id.label("id"),
                   Task.unit_id.label("unit_id"), Task.title.label("title"), literal("open", String).label("status"),
                   SupervisionNotice.sent_at.label("day"), literal(CURRENT, String).label("period"),
                   literal(1).label("value"))
            .join(Task, Task.id == SupervisionNotice.task_id).where(*_open_notices(units)))


# Activities, by the month they started.

def _activity_month():
    return sql.wall_month(Activity.start_date)


def _activity_values() -> dict:
    values = {"activities.count": literal(1), "activities.person_times": Activity.person_times,
              "activities.youth": Activity.youth, "activities.elders": Activity.elders,
              "activities.volunteers": Activity.volunteers, "activities.volunteer_hours": Activity.volunteer_hours,
              "activities.funds": Activity.funds}
    for code in CATEGORY_CODES:
        values[f"activities.count.{code}"] = case((Activity.category_code == code, 1), else_=0)
        values[f"activities.person_times.{code}"] = case((Activity.category_code == code, Activity.person_times),
                                                         else_=0)
    return values


def activities_statement(units: UnitFilter, today: date):
    month = _activity_month()
    columns = [func.sum(expr).label(key.replace(".", "_")) for key, expr in _activity_values().items()]
    return (select(Activity.unit_id.label("unit_id"), month.label("period"), *columns)
            .where(_where_units(units, Activity.unit_id)).group_by(Activity.unit_id, month))


def activities_drill(key: str, units: UnitFilter, today: date):
    value = _activity_values()[key]
    where = [_where_units(units, Activity.unit_id)]
    category = key.split(".")[2] if key.count(".") == 2 else None
    if category:
        where.append(Activity.category_code == category)
    return select(literal("activity", String).label("kind"), Activity.id.label("id"),
                  Activity.unit_id.label("unit_id"), Activity.title.label("title"),
                  Activity.category_code.label("status"), Activity.start_date.label("day"),
                  _activity_month().label("period"), value.label("value")).where(*where)


# Work teams as of today.

def _active_members(units: UnitFilter, today: date):
    return (TeamMember.joined_on <= today, or_(TeamMember.left_on.is_(None), TeamMember.left_on > today),
            _where_units(units, TeamMember.unit_id))


def teams_statement(units: UnitFilter, today: date):
    active = func.count(TeamMember.id)
    return (select(TeamMember.unit_id.label("unit_id"), literal(CURRENT, String).label("period"),
                   active.label("teams_members"),
                   _count(TeamMember.role == "volunteer").label("teams_volunteers"),
                   case((active >= COMPLETE_TEAM, 1), else_=0).label("teams_complete"))
            .where(*_active_members(units, today)).group_by(TeamMember.unit_id))


def teams_drill(key: str, units: UnitFilter, today: date):
    if key == "teams.complete":
        complete = (select(TeamMember.unit_id).where(*_active_members(units, today)).group_by(TeamMember.unit_id)
                    .having(func.count(TeamMember.id) >= COMPLETE_TEAM))
        return select(literal("unit", String).label("kind"), Unit.id.label("id"), Unit.id.label("unit_id"),
                      Unit.name.label("title"), literal("complete", String).label("status"),
                      literal(None, Date).label("day"), literal(CURRENT, String).label("period"),
                      literal(1).label("value")).where(Unit.id.in_(complete))
    where = list(_active_members(units, today))
    if key == "teams.volunteers":
        where.append(TeamMember.role == "volunteer")
    return select(literal("team_member", String).label("kind"), TeamMember.id.label("id"),
                  TeamMember.unit_id.label("unit_id"), TeamMember.name.label("title"),
                  TeamMember.role.label("status"), TeamMember.joined_on.label("day"),
                  literal(CURRENT, String).label("period"), literal(1).label("value")).where(*where)


_CATEGORY_LABELS = {"moral": _l("ideological and moral education"), "legal": _l("legal education"),
                    "skills": _l("skills and science training"), "festival": _l("festival and memorial events"),
                    "care": _l("care and assistance"), "volunteer": _l("volunteer service"),
                    "elder": _l("elder education"), "family": _l("family education"), "other": _l("other")}


def _activity_metrics() -> list:
    metrics = [
        ("activities.count", _l("Activities held"), True),
        ("activities.person_times", _l("Person-times"), True),
        ("activities.youth", _l("Person-times of young people"), True),
        ("activities.elders", _l("Person-times of elders"), True),
        ("activities.volunteers", _l("Volunteers"), True),
        ("activities.volunteer_hours", _l("Volunteer hours"), False),
        ("activities.funds", _l("Activity funds (yuan)"), False),
    ]
    for code in CATEGORY_CODES:
        metrics.append((f"activities.count.{code}", _l("Activities: %(category)s", category=_CATEGORY_LABELS[code]),
                        True))
        metrics.append((f"activities.person_times.{code}",
                        _l("Person-times: %(category)s", category=_CATEGORY_LABELS[code]), True))
    return metrics


# Tasks by member department (the department view): leaf instances whose lead or a co-operating
# department is the department, by the same rules as the task figures above.

#: The department catalogue's codes (migration 0002 seeds the ``departments`` rows with them).
DEPARTMENT_CODES = ("edu", "propaganda", "civil", "culture", "hrss", "justice", "health", "agri", "finance", "sci",
                    "youth", "union", "women", "ggw", "aging", "police")
DEPARTMENT_MEASURES = ("total", "accepted", "overdue")


def _department_condition(code: str, measure: str, today: date):
    involved = Task.department_clause([code])
    return and_(involved, {"total": Task.status != CANCELLED, "accepted": Task.status == ACCEPTED,
                           "overdue": and_(Task.status.in_(OPEN_STATES), Task.due_date < today)}[measure])


def departments_statement(units: UnitFilter, today: date):
    columns = [_count(_department_condition(code, measure, today)).label(f"departments_{code}_{measure}")
               for code in DEPARTMENT_CODES for measure in DEPARTMENT_MEASURES]
    return (select(Task.unit_id.label("unit_id"), literal(CURRENT, String).label("period"), *columns)
            .where(_leaf(), _where_units(units, Task.unit_id)).group_by(Task.unit_id))


def departments_drill(key: str, units: UnitFilter, today: date):
    _family_key, code, measure = key.split(".")
    return select(literal("task", String).label("kind"), Task.id.label("id"), Task.unit_id.label("unit_id"),
                  Task.title.label("title"), Task.status.label("status"), Task.due_date.label("day"),
                  literal(CURRENT, String).label("period"), literal(1).label("value")).where(
        _leaf(), _department_condition(code, measure, today), _where_units(units, Task.unit_id))


class _DepartmentLabel:
    """A figure's label naming the department in the reader's language (from the catalogue)."""

    def __init__(self, code: str, text):
        self.code, self.text = code, text

    def __str__(self) -> str:
        from portal.models import Department

        department = db.session.get(Department, self.code)
        return str(self.text) % {"department": department.name if department else self.code}


def _department_metrics() -> list:
    texts = {"total": _l("%(department)s: tasks"), "accepted": _l("%(department)s: accepted tasks"),
             "overdue": _l("%(department)s: overdue tasks")}
    return [(f"departments.{code}.{measure}", _DepartmentLabel(code, texts[measure]), True)
            for code in DEPARTMENT_CODES for measure in DEPARTMENT_MEASURES]


# --- the declarations -------------------------------------------------------------------------

def _family(key, kind, statement, drill, metrics, dated=False, history_drill=None) -> Family:
    return Family(key, kind, statement, drill,
                  tuple(Metric(k, label, kind, key, integer) for k, label, integer in metrics), dated, history_drill)


FAMILIES: dict[str, Family] = {f.key: f for f in (
    _family("tasks", STOCK, tasks_statement, tasks_drill, [
        ("tasks.total", _l("Tasks"), True),
        ("tasks.open", _l("Open tasks"), True),
        ("tasks.accepted", _l("Accepted tasks"), True),
        ("tasks.overdue", _l("Overdue tasks"), True),
        ("tasks.accepted_on_time", _l("Tasks accepted on time"), True),
        ("tasks.progress_weighted", _l("Weighted progress points"), False),
        ("tasks.weight", _l("Task weight"), False),
    ], dated=True, history_drill=tasks_history_drill),
    _family("reports", FLOW, reports_statement, reports_drill, [
        ("reports.expected", _l("Reports expected"), True),
        ("reports.received", _l("Reports received"), True),
    ], dated=True),
    _family("meetings", FLOW, meetings_statement, meetings_drill, [
        ("meetings.held", _l("Meetings held"), True),
    ]),
    _family("decisions", STOCK, decisions_statement, decisions_drill, [
        ("decisions.open", _l("Open decisions"), True),
        ("decisions.closed", _l("Closed decisions"), True),
    ]),
    _family("notices", STOCK, notices_statement, notices_drill, [
        ("notices.open", _l("Open supervision notices"), True),
    ]),
    _family("departments", STOCK, departments_statement, departments_drill, _department_metrics(), dated=True),
    _family("activities", FLOW, activities_statement, activities_drill, _activity_metrics()),
    _family("teams", STOCK, teams_statement, teams_drill, [
        ("teams.members", _l("Active team members"), True),
        ("teams.volunteers", _l("Active volunteers on the rosters"), True),
        ("teams.complete", _l("Units with a complete team"), True),
    ], dated=True),
)}

REGISTRY: dict[str, Metric] = {m.key: m for f in FAMILIES.values() for m in f.metrics}

INDICATORS: dict[str, Indicator] = {i.key: i for i in (
    Indicator("completion_rate", _l("Completion rate"), "tasks.accepted", "tasks.total"),
    Indicator("on_time_rate", _l("On-time rate"), "tasks.accepted_on_time", "tasks.accepted"),
    Indicator("progress", _l("Weighted progress"), "tasks.progress_weighted", "tasks.weight", scale=1),
    Indicator("reporting_rate", _l("Reporting rate"), "reports.received", "reports.expected"),
)}
