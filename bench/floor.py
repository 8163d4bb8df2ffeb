"""The SQL floor: every stored figure by one plain SQL aggregation, written by hand.

One statement computes, for every unit, metric and period, the own value and
the subtree value, straight from the source rows and the metric definitions of
``portal.metrics.registry`` (its docstring): leaf task instances, the Beijing
calendar, the months a leaf is open, the task figures as of each ended month's
end (the month-end history, periods ``YYYY-MM``, reckoned by Beijing months
rather than the registry's per-month cut-off instants), an ancestor closure of
the unit tree. It
shares no code with the engine, so the benchmark can check the stored figures
against it, and what the engine's rebuild costs compared with the least a
database must do to produce the same numbers (``CREATE TEMPORARY TABLE … AS``
the statement: the figures are written, without the engine's upserts, keys and
bookkeeping).
"""
from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

from sqlalchemy import text

ZONE = "Asia/Shanghai"
#: The engine's metric families the floor computes (the figures of issue 8), and their metrics.
FAMILIES = ("tasks", "reports", "meetings", "decisions", "notices")
METRICS = frozenset({
    "tasks.total", "tasks.open", "tasks.accepted", "tasks.overdue", "tasks.accepted_on_time",
    "tasks.progress_weighted", "tasks.weight", "reports.expected", "reports.received", "meetings.held",
    "decisions.open", "decisions.closed", "notices.open"})
PLACES = Decimal("0.0001")


def _local_date(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"CAST(timezone('{ZONE}', timezone('UTC', {column})) AS date)"
    return f"date({column}, '+480 minutes')"


def _local_month(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"to_char(timezone('{ZONE}', timezone('UTC', {column})), 'YYYY-MM')"
    return f"strftime('%Y-%m', {column}, '+480 minutes')"


def _wall_month(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"to_char({column}, 'YYYY-MM')"
    return f"strftime('%Y-%m', {column})"


def _history_months(dialect: str) -> str:
    """``hmonths(period, last_day)``: every month before the current one (Beijing calendar) from the
    month of the earliest task (any task: the registry's rule), with its last day."""
    if dialect == "postgresql":
        return f"""
        hmonths AS (
            SELECT to_char(m, 'YYYY-MM') AS period,
                   CAST(m + interval '1 month' - interval '1 day' AS date) AS last_day
            FROM generate_series((SELECT date_trunc('month', MIN(timezone('{ZONE}', timezone('UTC', created_at))))
                                  FROM tasks),
                                 date_trunc('month', CAST(:today AS timestamp)) - interval '1 month',
                                 interval '1 month') AS m
        ),"""
    return """
        hfirst(first_day) AS (
            SELECT date(MIN(created_at), '+480 minutes', 'start of month') FROM tasks
            UNION ALL SELECT date(first_day, '+1 month') FROM hfirst
            WHERE first_day < date(:today, 'start of month', '-1 month')
        ),
        hmonths AS (
            SELECT strftime('%Y-%m', first_day) AS period, date(first_day, '+1 month', '-1 day') AS last_day
            FROM hfirst WHERE first_day < date(:today, 'start of month')
        ),"""


def statement(dialect: str) -> str:
    """``(unit_id, metric, period, own, subtree)`` of every non-zero figure; parameter ``:today``.

    The task figures come twice: as of now (``current``) and as of the end of every month that has
    ended (``YYYY-MM``, the registry's month-end history). The history is reckoned by months here:
    a timestamp is before a month's end exactly when its Beijing month is that month or earlier, so
    an instance counts in the months from its creation's month to the month before its first child
    instance's creation (it is a leaf then), it is accepted from the month of its latest "accept"
    review (of its creation without one), and its progress in a month is the percent of the last
    report of the latest month with a report up to that month.
    """
    if dialect == "postgresql":
        expected = """
        expected AS (
            SELECT lt.unit_id, to_char(m, 'YYYY-MM') AS period
            FROM lt CROSS JOIN LATERAL generate_series(date_trunc('month', lt.from_day),
                                                       date_trunc('month', COALESCE(lt.acc_day, CAST(:today AS date))),
                                                       interval '1 month') AS m
            WHERE lt.status <> 'cancelled'
        ),"""
    else:
        expected = """
        months(first_day) AS (
            SELECT date(MIN(from_day), 'start of month') FROM lt
            UNION ALL SELECT date(first_day, '+1 month') FROM months
            WHERE first_day < date(:today, 'start of month')
        ),
        expected AS (
            SELECT lt.unit_id, strftime('%Y-%m', m.first_day) AS period
            FROM lt JOIN months m ON lt.from_day <= date(m.first_day, '+1 month', '-1 day')
                                 AND (lt.acc_day IS NULL OR lt.acc_day >= m.first_day)
            WHERE lt.status <> 'cancelled'
        ),"""
    open_states = "('assigned', 'in_progress', 'submitted', 'returned')"
    return f"""
    WITH RECURSIVE
    acc AS (
        SELECT task_id, MAX(at) AS at FROM task_reviews WHERE decision = 'accept' GROUP BY task_id
    ),
    lt AS (
        SELECT t.id, t.unit_id, t.status, t.due_date, t.progress, t.weight,
               {_local_date('t.created_at', dialect)} AS from_day,
               CASE WHEN t.status = 'accepted' THEN {_local_date('acc.at', dialect)} END AS acc_day
        FROM tasks t LEFT JOIN acc ON acc.task_id = t.id
        WHERE NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = t.id)
    ),
    task_figures AS (
        SELECT unit_id,
               SUM(CASE WHEN status <> 'cancelled' THEN 1 ELSE 0 END) AS total,
               SUM(CASE WHEN status IN {open_states} THEN 1 ELSE 0 END) AS open_,
               SUM(CASE WHEN status = 'accepted' THEN 1 ELSE 0 END) AS accepted,
               SUM(CASE WHEN status IN {open_states} AND due_date < :today THEN 1 ELSE 0 END) AS overdue,
               SUM(CASE WHEN status = 'accepted' AND acc_day <= due_date THEN 1 ELSE 0 END) AS on_time,
               SUM(CASE WHEN status <> 'cancelled' THEN progress * weight ELSE 0 END) AS weighted,
               SUM(CASE WHEN status <> 'cancelled' THEN weight ELSE 0 END) AS weight
        FROM lt GROUP BY unit_id
    ),{expected}{_history_months(dialect)}
    first_child AS (
        SELECT parent_id AS id, MIN(created_at) AS at FROM tasks WHERE parent_id IS NOT NULL GROUP BY parent_id
    ),
    ht AS (
        SELECT t.id, t.unit_id, t.due_date, t.weight,
               {_local_month('t.created_at', dialect)} AS from_month,
               {_local_month('fc.at', dialect)} AS parent_month,
               CASE WHEN t.status = 'accepted' THEN {_local_month('COALESCE(acc.at, t.created_at)', dialect)} END
                   AS acc_month,
               CASE WHEN t.status = 'accepted' AND {_local_date('acc.at', dialect)} <= t.due_date THEN 1 ELSE 0 END
                   AS on_time
        FROM tasks t LEFT JOIN acc ON acc.task_id = t.id LEFT JOIN first_child fc ON fc.id = t.id
        WHERE t.status <> 'cancelled'
    ),
    month_last_report AS (
        SELECT task_id, month, percent, LEAD(month) OVER (PARTITION BY task_id ORDER BY month) AS next_month
        FROM (SELECT task_id, percent, {_local_month('at', dialect)} AS month,
                     ROW_NUMBER() OVER (PARTITION BY task_id, {_local_month('at', dialect)}
                                        ORDER BY at DESC, id DESC) AS rn
              FROM task_reports) r
        WHERE rn = 1
    ),
    hpairs AS (
        SELECT ht.unit_id, hm.period, ht.weight, ht.on_time,
               CASE WHEN ht.acc_month <= hm.period THEN 1 ELSE 0 END AS accepted,
               CASE WHEN ht.due_date < hm.last_day THEN 1 ELSE 0 END AS past_due,
               COALESCE(mr.percent, 0) AS percent
        FROM ht JOIN hmonths hm ON hm.period >= ht.from_month
                               AND (ht.parent_month IS NULL OR hm.period < ht.parent_month)
        LEFT JOIN month_last_report mr ON mr.task_id = ht.id AND mr.month <= hm.period
                                      AND (mr.next_month IS NULL OR hm.period < mr.next_month)
    ),
    history AS (
        SELECT unit_id, period, COUNT(*) AS total,
               SUM(1 - accepted) AS open_,
               SUM(accepted) AS accepted,
               SUM(CASE WHEN accepted = 0 AND past_due = 1 THEN 1 ELSE 0 END) AS overdue,
               SUM(CASE WHEN accepted = 1 AND on_time = 1 THEN 1 ELSE 0 END) AS on_time,
               SUM(percent * weight) AS weighted,
               SUM(weight) AS weight
        FROM hpairs GROUP BY unit_id, period
    ),
    received AS (
        SELECT DISTINCT r.task_id, lt.unit_id, {_local_month('r.at', dialect)} AS period
        FROM task_reports r JOIN lt ON lt.id = r.task_id
        WHERE lt.status <> 'cancelled'
    ),
    own AS (
        SELECT unit_id, 'tasks.total' AS metric, 'current' AS period, total AS value FROM task_figures
        UNION ALL SELECT unit_id, 'tasks.open', 'current', open_ FROM task_figures
        UNION ALL SELECT unit_id, 'tasks.accepted', 'current', accepted FROM task_figures
        UNION ALL SELECT unit_id, 'tasks.overdue', 'current', overdue FROM task_figures
        UNION ALL SELECT unit_id, 'tasks.accepted_on_time', 'current', on_time FROM task_figures
        UNION ALL SELECT unit_id, 'tasks.progress_weighted', 'current', weighted FROM task_figures
        UNION ALL SELECT unit_id, 'tasks.weight', 'current', weight FROM task_figures
        UNION ALL SELECT unit_id, 'tasks.total', period, total FROM history
        UNION ALL SELECT unit_id, 'tasks.open', period, open_ FROM history
        UNION ALL SELECT unit_id, 'tasks.accepted', period, accepted FROM history
        UNION ALL SELECT unit_id, 'tasks.overdue', period, overdue FROM history
        UNION ALL SELECT unit_id, 'tasks.accepted_on_time', period, on_time FROM history
        UNION ALL SELECT unit_id, 'tasks.progress_weighted', period, weighted FROM history
        UNION ALL SELECT unit_id, 'tasks.weight', period, weight FROM history
        UNION ALL SELECT unit_id, 'reports.expected', period, COUNT(*) FROM expected GROUP BY unit_id, period
        UNION ALL SELECT unit_id, 'reports.received', period, COUNT(*) FROM received GROUP BY unit_id, period
        UNION ALL SELECT unit_id, 'meetings.held', {_wall_month('starts_at', dialect)}, COUNT(*) FROM meetings
            WHERE status IN ('held', 'minutes_published') GROUP BY unit_id, {_wall_month('starts_at', dialect)}
        UNION ALL SELECT m.unit_id, 'decisions.open', 'current', COUNT(*) FROM decisions d
            JOIN meetings m ON m.id = d.meeting_id WHERE d.status = 'open' GROUP BY m.unit_id
        UNION ALL SELECT m.unit_id, 'decisions.closed', 'current', COUNT(*) FROM decisions d
            JOIN meetings m ON m.id = d.meeting_id WHERE d.status = 'closed' GROUP BY m.unit_id
        UNION ALL SELECT t.unit_id, 'notices.open', 'current', COUNT(*) FROM supervision_notices n
            JOIN tasks t ON t.id = n.task_id WHERE n.responded_at IS NULL AND t.status <> 'cancelled'
            GROUP BY t.unit_id
    ),
    closure(unit_id, ancestor_id) AS (
        SELECT id, id FROM units
        UNION ALL SELECT c.unit_id, u.parent_id FROM closure c JOIN units u ON u.id = c.ancestor_id
        WHERE u.parent_id IS NOT NULL
    )
    SELECT c.ancestor_id AS unit_id, o.metric, o.period,
           SUM(CASE WHEN c.unit_id = c.ancestor_id THEN o.value ELSE 0 END) AS own,
           SUM(o.value) AS subtree
    FROM own o JOIN closure c ON c.unit_id = o.unit_id
    WHERE o.value <> 0
    GROUP BY c.ancestor_id, o.metric, o.period
    """


def _figure(value) -> Decimal:
    if isinstance(value, float):
        value = Decimal(repr(value))
    return Decimal(value or 0).quantize(PLACES)


def run(session, today: date) -> tuple[float, dict]:
    """Run the floor into a temporary table: (seconds, {(unit, metric, period): (own, subtree)})."""
    dialect = session.get_bind().dialect.name
    session.execute(text("DROP TABLE IF EXISTS bench_floor"))
    started = time.perf_counter()
    param = today if dialect == "postgresql" else today.isoformat()
    session.execute(text("CREATE TEMPORARY TABLE bench_floor AS " + statement(dialect)), {"today": param})
    seconds = time.perf_counter() - started
    rows = session.execute(text("SELECT unit_id, metric, period, own, subtree FROM bench_floor")).all()
    session.execute(text("DROP TABLE bench_floor"))
    session.commit()
    figures = {(u, m, p): (_figure(o), _figure(s)) for u, m, p, o, s in rows if _figure(o) or _figure(s)}
    return seconds, figures


def compare(floor: dict, stored: dict) -> dict:
    """How the stored figures of the floor's metrics differ from the floor's."""
    stored = {k: v for k, v in stored.items() if k[1] in METRICS}
    keys = set(floor) | set(stored)
    differ = sorted(k for k in keys if floor.get(k) != stored.get(k))
    history = sum(1 for k in floor if k[1].startswith("tasks.") and k[2] != "current")
    return {"figures": len(floor), "history": history, "stored": len(stored), "differ": len(differ),
            "examples": [{"key": list(k), "floor": [str(v) for v in floor.get(k, ())],
                          "stored": [str(v) for v in stored.get(k, ())]} for k in differ[:5]]}
