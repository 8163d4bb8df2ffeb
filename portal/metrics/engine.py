"""The roll-up engine: dirty markers, the chain refresh, the set-based rebuild,
the reconcile, and reading stored figures.

Concurrency. A counted write marks its unit dirty in its own transaction
(:func:`mark_dirty`: ``generation + 1``) and, unless a refresh job for the
unit is already queued and not yet started (``pending``), queues one after the
commit. The job clears ``pending`` first (so any later write queues a new
job), then refreshes: it reads the generation, recomputes, and records that
generation as ``done``. A write that lands while the refresh runs raises the
generation past it, so the unit stays dirty and that write's own job runs
after it: no update is lost. On PostgreSQL refreshes take a transaction-level
advisory lock per unit, deepest units first (so they never deadlock), and a
shared global lock that the rebuild and the reconcile take exclusively; on
SQLite the refresh's first statement is a write, which serialises it with
every other writer.
"""
from __future__ import annotations

import logging
import re
import time
from datetime import date, timedelta
from decimal import Decimal
from typing import Iterable, Optional

from sqlalchemy import (Column, DateTime, Integer, MetaData, Numeric, PrimaryKeyConstraint, String, Table,
                        and_, bindparam, delete, exists, func, literal, or_, select, text, union_all, update)

from portal import figcache
from portal.extensions import db
from portal.formatting import percent_of, round_half_up
from portal.metrics import sql
from portal.metrics.registry import CURRENT, FAMILIES, FLOW, INDICATORS, REGISTRY, STOCK
from portal.models import MetricReconcile, MetricState, MetricValue, Unit
from portal.models._helpers import utcnow
from portal.queue import enqueue

log = logging.getLogger("portal.metrics")

#: More units than this in one write: one set-based refresh of every dirty unit instead of a job per unit.
BULK_UNITS = 20
#: A refresh queued this long ago and not started is presumed lost: the next write queues another.
PENDING_STALE = timedelta(minutes=10)
LOCK_GLOBAL, LOCK_UNIT = 41_0002, 41_0003  # advisory-lock namespaces (PostgreSQL)
PERIOD_RE = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4])|-H([12]))?$")
FIGURE_PLACES = Decimal("0.0001")

MV = MetricValue.__table__
MS = MetricState.__table__


# --- periods ---------------------------------------------------------------------------------

def current_month(today: Optional[date] = None) -> str:
    from portal.clock import local_today

    return (today or local_today()).strftime("%Y-%m")


def months_of(period: str) -> list[str]:
    """The months a period is the sum of: ``2026-11``, ``2026-Q4``, ``2026-H2``, ``2026``."""
    match = PERIOD_RE.match(period or "")
    if not match:
        raise ValueError(period)
    year, month, quarter, half = match.groups()
    if month:
        numbers = [int(month)]
    elif quarter:
        numbers = list(range(3 * int(quarter) - 2, 3 * int(quarter) + 1))
    elif half:
        numbers = list(range(6 * int(half) - 5, 6 * int(half) + 1))
    else:
        numbers = list(range(1, 13))
    return [f"{year}-{n:02d}" for n in numbers]


def ended_month(period: str, today: Optional[date] = None) -> Optional[str]:
    """The period's last month when it has ended (before the current month), else ``None``: the
    period is still running (or has not begun)."""
    last = months_of(period)[-1]
    return last if last < current_month(today) else None


def has_history(key: str) -> bool:
    """Whether a stock keeps its values at the end of every ended month (the task figures)."""
    metric = REGISTRY[key]
    return metric.kind == STOCK and FAMILIES[metric.family].history


def stored_period(key: str, period: str, today: Optional[date] = None) -> Optional[str]:
    """Where a stock's figure for a period is stored: at the end of the period for a stock with a
    history when the period has ended, else ``current`` (as of now). ``None`` for a flow, which is
    the sum of the period's months."""
    if REGISTRY[key].kind == FLOW:
        return None
    if has_history(key):
        return ended_month(period, today) or CURRENT
    return CURRENT


def pick(by_period: dict, period: str, today: Optional[date] = None) -> dict:
    """{metric: value} for a period out of {(metric, stored period): value}: a flow sums the
    period's months; a stock takes its one stored period (:func:`stored_period`)."""
    months = set(months_of(period))
    ended = ended_month(period, today)
    out = {key: Decimal("0") for key in REGISTRY}
    for (key, stored), value in by_period.items():
        metric = REGISTRY.get(key)
        if metric is None:
            continue
        if metric.kind == FLOW:
            wanted = stored in months
        elif ended is not None and FAMILIES[metric.family].history:
            wanted = stored == ended
        else:
            wanted = stored == CURRENT
        if wanted:
            out[key] += value
    return out


def _figure(value) -> Decimal:
    if value is None:
        return Decimal("0")
    return round_half_up(value, FIGURE_PLACES)


def _number(metric_key: str, value: Decimal):
    return int(value) if REGISTRY[metric_key].integer else float(value.normalize())


# --- marking dirty (inside the write's transaction) -------------------------------------------

def mark_dirty(unit_ids: Iterable[Optional[int]]) -> None:
    """Mark units dirty in the current transaction and queue their refresh after the commit
    (one job per unit, coalesced while queued; one set-based job for a bulk write)."""
    ids = sorted({int(i) for i in unit_ids if i is not None})
    if not ids:
        return
    # The views of these units and of every unit above say "updating…" from the commit on.
    figcache.changed(None if len(ids) > BULK_UNITS else
                     db.session.scalars(select(Unit.path).where(Unit.id.in_(ids))).all())
    now = utcnow()
    if sql.dialect() == "postgresql":  # the ids as one array: a cascade's 2,786 units in one cached statement
        from sqlalchemy import false
        from sqlalchemy.dialects.postgresql import ARRAY

        marked = select(func.unnest(bindparam("unit_ids", ids, type_=ARRAY(Integer))).label("unit_id"),
                        literal(1), literal(0), false(), literal(now, MS.c.marked_at.type))
        stmt = sql.insert(MS).from_select(["unit_id", "generation", "done", "pending", "marked_at"], marked)
    else:  # SQLite: a multi-row VALUES (compiled per call, about a millisecond a row)
        stmt = sql.insert(MS).values([{"unit_id": i, "generation": 1, "done": 0, "pending": False,
                                       "marked_at": now} for i in ids])
    stmt = stmt.on_conflict_do_update(index_elements=[MS.c.unit_id],
                                      set_={"generation": MS.c.generation + 1, "marked_at": now})
    rows = db.session.execute(stmt.returning(MS.c.unit_id, MS.c.generation, MS.c.pending,
                                             MS.c.pending_since)).all()
    due = [(unit_id, generation) for unit_id, generation, pending, since in rows
           if not pending or since is None or since < now - PENDING_STALE]
    if not due:
        return  # a queued refresh will see these writes
    db.session.execute(update(MS).where(MS.c.unit_id.in_([u for u, _g in due]))
                       .values(pending=True, pending_since=now))
    if len(due) > BULK_UNITS:
        enqueue("jobs.metrics.refresh_dirty", job_id=f"metrics-refresh-dirty-{now:%Y%m%d%H%M%S%f}", timeout=1800)
    else:
        for unit_id, generation in sorted(due):
            enqueue("jobs.metrics.refresh_unit", unit_id, job_id=f"metrics-refresh-{unit_id}-{generation}")


def claim(unit_ids: Optional[list[int]] = None) -> None:
    """A refresh job starts: writes from now on queue a job of their own."""
    stmt = update(MS).values(pending=False, pending_since=None)
    if unit_ids is not None:
        stmt = stmt.where(MS.c.unit_id.in_(unit_ids))
    db.session.execute(stmt.where(MS.c.pending.is_(True)))


def _dirty_clause():
    return MS.c.generation > MS.c.done


def is_dirty(unit_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(MS.c.unit_id == unit_id, _dirty_clause()))))


def dirty_unit_ids() -> list[int]:
    return list(db.session.scalars(select(MS.c.unit_id).where(_dirty_clause()).order_by(MS.c.unit_id)))


# --- locks ------------------------------------------------------------------------------------

def _global_lock(exclusive: bool) -> None:
    if sql.dialect() == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        db.session.execute(text(f"SELECT {fn}(:ns, 0)"), {"ns": LOCK_GLOBAL})


def _unit_locks(unit_ids: list[int]) -> None:
    if sql.dialect() == "postgresql":
        for unit_id in sorted(unit_ids):
            db.session.execute(text("SELECT pg_advisory_xact_lock(:ns, :id)"), {"ns": LOCK_UNIT, "id": unit_id})


def _ensure_state(unit_ids: list[int]) -> None:
    """State rows for the units; on SQLite this first write also takes the database's write lock."""
    if not unit_ids:
        return
    stmt = sql.insert(MS).values([{"unit_id": i, "generation": 0, "done": 0, "pending": False}
                                  for i in sorted(unit_ids)])
    db.session.execute(stmt.on_conflict_do_nothing(index_elements=[MS.c.unit_id]))


# --- own values -------------------------------------------------------------------------------

def own_values(unit_ids: Optional[list[int]] = None, today: Optional[date] = None) -> dict:
    """{(unit_id, metric, period): value} computed now from the source rows (non-zero only)."""
    from portal.clock import local_today

    today = today or local_today()
    units = (lambda column: column.in_(unit_ids)) if unit_ids is not None else None
    values = {}
    for family in FAMILIES.values():
        for row in db.session.execute(family.statement(units, today)).mappings():
            for metric in family.metrics:
                value = _figure(row[metric.column])
                if value:
                    values[(row["unit_id"], metric.key, row["period"])] = value
    return values


def _write_own(unit_ids: list[int], now, today: date) -> set[tuple[int, str, str]]:
    """Write the units' own values that differ from the stored ones; returns the (unit, metric,
    period) written: a value changed, new at the unit, or gone to zero (kept as a zero row)."""
    new = own_values(unit_ids, today)
    stored = {(u, m, p): _figure(v) for u, m, p, v in db.session.execute(
        select(MV.c.unit_id, MV.c.metric, MV.c.period, MV.c.own).where(MV.c.unit_id.in_(unit_ids)))}
    rows = [{"unit_id": u, "metric": m, "period": p, "own": new.get((u, m, p), Decimal("0")),
             "subtree": Decimal("0"), "computed_at": now}
            for (u, m, p) in sorted(set(new) | set(stored)) if new.get((u, m, p), Decimal("0")) != stored.get((u, m, p))
            and not ((u, m, p) not in stored and not new.get((u, m, p)))]
    if not rows:
        return set()
    stmt = sql.insert(MV)
    stmt = stmt.on_conflict_do_update(index_elements=[MV.c.unit_id, MV.c.metric, MV.c.period],
                                      set_={"own": stmt.excluded.own, "computed_at": stmt.excluded.computed_at})
    db.session.execute(stmt, rows)
    return {(row["unit_id"], row["metric"], row["period"]) for row in rows}


#: Written out, not built: SQLAlchemy compiles a dialect's INSERT ... ON CONFLICT anew on every
#: execution (its construct has no cache key), tens of milliseconds per level; a text is compiled once.
#: The metrics and periods give index conditions on (unit_id, metric, period); "WHERE true" lets
#: SQLite tell the SELECT's end from the ON CONFLICT clause.
_SUBTREE_STEP = text("""
INSERT INTO metric_values (unit_id, metric, period, own, subtree, computed_at)
SELECT parts.uid, parts.metric, parts.period, 0, round(sum(parts.v), 4), :now
FROM (SELECT mv.unit_id AS uid, mv.metric AS metric, mv.period AS period, mv.own AS v
      FROM metric_values AS mv
      WHERE mv.unit_id IN :units AND mv.metric IN :metrics AND mv.period IN :periods
      UNION ALL
      SELECT child_unit.parent_id, mv.metric, mv.period, mv.subtree
      FROM metric_values AS mv JOIN units AS child_unit ON child_unit.id = mv.unit_id
      WHERE child_unit.parent_id IN :units AND mv.metric IN :metrics AND mv.period IN :periods) AS parts
WHERE true
GROUP BY parts.uid, parts.metric, parts.period
ON CONFLICT (unit_id, metric, period) DO UPDATE SET subtree = excluded.subtree, computed_at = excluded.computed_at
WHERE metric_values.subtree != excluded.subtree
RETURNING unit_id, metric, period
""").bindparams(bindparam("units", expanding=True), bindparam("metrics", expanding=True),
                bindparam("periods", expanding=True), bindparam("now", type_=DateTime))


def _subtree_step(unit_ids: list[int], now, wanted: set[tuple[int, str, str]]) -> set[tuple[int, str, str]]:
    """Subtree = own + Σ children's subtree, for units whose children are already up to date, of
    the (unit, metric, period) ``wanted`` only: those whose own value or a child's subtree changed
    in this refresh (no other can have changed). Summed for the units with a pair wanted, over the
    metrics and periods wanted (a small superset when several metrics or periods are: every pair
    is summed whole, so an extra one is rewritten only if it was wrong). Returns the (unit, metric,
    period) whose subtree was written (changed, or new at the unit)."""
    units = sorted({u for u, _m, _p in wanted} & set(unit_ids))
    if not units:
        return set()
    metrics = sorted({m for u, m, _p in wanted if u in units})
    periods = sorted({p for u, _m, p in wanted if u in units})
    params = {"units": units, "metrics": metrics, "periods": periods, "now": now}
    return {(u, m, p) for u, m, p in db.session.execute(_SUBTREE_STEP, params)}


# --- the chain refresh ------------------------------------------------------------------------

def refresh_units(unit_ids: Iterable[int]) -> int:
    """Recompute the units' own values and the subtree values of them and their ancestors,
    level by level from the deepest; returns the figures (rows) written. The caller commits.

    Only what changed is summed: at each level the subtree of the (unit, metric, period) whose own
    value changed in this refresh or whose child's subtree changed at the level below; a level
    where nothing changed leaves the ones above nothing to do (their locks and state are still
    taken and recorded). Sound as long as the stored figures were consistent before (every
    refresh, the rebuild and the reconcile leave them so; the reconcile repairs any other drift)."""
    from portal.clock import local_today

    ids = set(unit_ids)
    if not ids:
        return 0
    paths = db.session.execute(select(Unit.id, Unit.path).where(Unit.id.in_(ids))).all()
    figcache.changed([path for _id, path in paths])  # these units' figures and their ancestors'
    codes = {code for _id, path in paths for code in path.strip("/").split("/")}
    chain, parent = {}, {}
    for unit_id, path, parent_id in db.session.execute(
            select(Unit.id, Unit.path, Unit.parent_id).where(Unit.code.in_(codes))).all():
        chain[unit_id], parent[unit_id] = path.count("/") - 1, parent_id
    ids &= set(chain)
    _ensure_state(list(chain))
    bulk = len(chain) > BULK_UNITS * 4
    _global_lock(exclusive=bulk)
    now, today = utcnow(), local_today()
    generations: dict[int, int] = {}
    touched = 0
    changed: set[tuple[int, str, str]] = set()  # subtree figures written at the level below
    for depth in sorted(set(chain.values()), reverse=True):
        level = sorted(u for u, d in chain.items() if d == depth)
        if not bulk:
            _unit_locks(level)
        wanted = {(parent[u], m, p) for u, m, p in changed if parent.get(u) is not None}
        own = [u for u in level if u in ids]
        if own:
            generations.update(db.session.execute(select(MS.c.unit_id, MS.c.generation)
                                                  .where(MS.c.unit_id.in_(own))).all())
            written = _write_own(own, now, today)
            touched += len(written)
            wanted |= written
        changed = _subtree_step(level, now, wanted) if wanted else set()
        touched += len(changed)
    for unit_id, generation in generations.items():
        db.session.execute(update(MS).where(MS.c.unit_id == unit_id, MS.c.done < generation).values(done=generation))
    db.session.execute(update(MS).where(MS.c.unit_id.in_(list(chain))).values(refreshed_at=now))
    return touched


def refresh_chain(unit_id: int) -> int:
    """Recompute the unit's own values and its ancestors' subtree values; returns rows touched."""
    return refresh_units([unit_id])


# --- the set-based rebuild -------------------------------------------------------------------

def _fill(target: Table, families, now, today: date, timings: dict) -> None:
    """Own values, one statement per family, then every subtree in one statement (ancestor closure)."""
    columns = ["unit_id", "metric", "period", "own", "subtree", "computed_at"]
    for family in families:
        started = time.perf_counter()
        # Materialized: the statement runs once, not once per metric reading it (SQLite and PostgreSQL 12+).
        fam = family.statement(None, today).cte(f"family_{family.key}").prefix_with("MATERIALIZED")
        parts = [select(fam.c.unit_id, literal(m.key, String), fam.c.period, fam.c[m.column], literal(0),
                        literal(now, DateTime)).where(fam.c[m.column] != 0) for m in family.metrics]
        db.session.execute(target.insert().from_select(columns, union_all(*parts) if len(parts) > 1 else parts[0]))
        timings[f"own.{family.key}"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    keys = [m.key for f in families for m in f.metrics]
    closure = sql.closure()
    source = (select(closure.c.ancestor_id, target.c.metric, target.c.period, literal(0),
                     func.round(func.sum(target.c.own), 4), literal(now, DateTime))
              .join(closure, closure.c.unit_id == target.c.unit_id)
              .where(target.c.metric.in_(keys))
              .group_by(closure.c.ancestor_id, target.c.metric, target.c.period))
    stmt = sql.insert(target).from_select(columns, source)
    stmt = stmt.on_conflict_do_update(index_elements=[target.c.unit_id, target.c.metric, target.c.period],
                                      set_={"subtree": stmt.excluded.subtree})
    db.session.execute(stmt)
    timings["subtree"] = round(time.perf_counter() - started, 3)


def _settle_state(now) -> None:
    """Every unit has a state row; what was written until now is covered by what follows."""
    missing = select(Unit.id, literal(0), literal(0), literal(False), literal(now, DateTime)).where(
        ~exists().where(MS.c.unit_id == Unit.id))
    db.session.execute(MS.insert().from_select(["unit_id", "generation", "done", "pending", "refreshed_at"], missing))
    db.session.execute(update(MS).where(MS.c.done < MS.c.generation).values(done=MS.c.generation))


def rebuild_all(families: Optional[Iterable[str]] = None) -> dict:
    """Recompute every stored figure set-based (or only those of the named families). Commits."""
    from portal.clock import local_today

    started = time.perf_counter()
    chosen = [FAMILIES[k] for k in families] if families is not None else list(FAMILIES.values())
    keys = [m.key for f in chosen for m in f.metrics]
    now, today, timings = utcnow(), local_today(), {}
    _global_lock(exclusive=True)
    _settle_state(now)
    db.session.execute(delete(MV).where(MV.c.metric.in_(keys)))
    _fill(MV, chosen, now, today, timings)
    db.session.execute(update(MS).values(refreshed_at=now))
    figures = db.session.scalar(select(func.count()).select_from(MV).where(MV.c.metric.in_(keys)))
    figcache.changed()
    db.session.commit()
    result = {"figures": figures, "families": [f.key for f in chosen], "timings": timings,
              "seconds": round(time.perf_counter() - started, 3)}
    log.info("metrics rebuilt: %(figures)d figures in %(seconds).3f s", result)
    return result


# --- reconcile --------------------------------------------------------------------------------

def _fresh_table() -> Table:
    return Table("metric_fresh", MetaData(),
                 Column("unit_id", Integer, nullable=False), Column("metric", String(64), nullable=False),
                 Column("period", String(7), nullable=False), Column("own", Numeric(20, 4), nullable=False),
                 Column("subtree", Numeric(20, 4), nullable=False), Column("computed_at", DateTime),
                 PrimaryKeyConstraint("unit_id", "metric", "period"), prefixes=["TEMPORARY"])


def reconcile() -> dict:
    """Recompute everything into a scratch table, compare with the stored figures, repair the
    ones that differ, and record how many had drifted. Commits."""
    from portal.clock import local_today

    started = time.perf_counter()
    now, today, timings = utcnow(), local_today(), {}
    _global_lock(exclusive=True)
    dirty = db.session.scalar(select(func.count()).select_from(MS).where(_dirty_clause()))
    _settle_state(now)
    fresh = _fresh_table()
    connection = db.session.connection()
    fresh.create(connection)
    try:
        _fill(fresh, list(FAMILIES.values()), now, today, timings)
        same_key = and_(MV.c.unit_id == fresh.c.unit_id, MV.c.metric == fresh.c.metric,
                        MV.c.period == fresh.c.period)
        differs = or_(MV.c.own != fresh.c.own, MV.c.subtree != fresh.c.subtree)
        changed = db.session.scalar(select(func.count()).select_from(MV).where(
            exists().where(same_key, differs)))
        missing = db.session.scalar(select(func.count()).select_from(fresh).where(~exists().where(same_key)))
        extra_clause = and_(or_(MV.c.own != 0, MV.c.subtree != 0), ~exists().where(same_key))
        extra = db.session.scalar(select(func.count()).select_from(MV).where(extra_clause))
        if changed:
            db.session.execute(update(MV).where(exists().where(same_key, differs)).values(
                own=select(fresh.c.own).where(same_key).scalar_subquery(),
                subtree=select(fresh.c.subtree).where(same_key).scalar_subquery(), computed_at=now))
        if missing:
            db.session.execute(MV.insert().from_select(
                ["unit_id", "metric", "period", "own", "subtree", "computed_at"],
                select(fresh.c.unit_id, fresh.c.metric, fresh.c.period, fresh.c.own, fresh.c.subtree,
                       literal(now, DateTime)).where(~exists().where(same_key))))
        if extra:
            db.session.execute(update(MV).where(extra_clause).values(own=0, subtree=0, computed_at=now))
        figures = db.session.scalar(select(func.count()).select_from(fresh))
    finally:
        fresh.drop(connection)
    db.session.execute(update(MS).values(refreshed_at=now))
    drifted = changed + missing + extra
    seconds = round(time.perf_counter() - started, 3)
    db.session.add(MetricReconcile(at=now, seconds=Decimal(str(seconds)), figures=figures, drifted=drifted,
                                   dirty_units=dirty))
    figcache.changed()
    db.session.commit()
    result = {"figures": figures, "drifted": drifted, "changed": changed, "missing": missing, "extra": extra,
              "dirty_units": dirty, "seconds": seconds, "timings": timings}
    (log.warning if drifted else log.info)(
        "metrics reconcile: %(drifted)d of %(figures)d figures had drifted and were repaired "
        "(%(dirty_units)d units were waiting for a refresh), %(seconds).3f s", result)
    return result


def last_reconcile() -> Optional[MetricReconcile]:
    return db.session.scalar(select(MetricReconcile).order_by(MetricReconcile.at.desc(),
                                                              MetricReconcile.id.desc()).limit(1))


# --- reading ----------------------------------------------------------------------------------

def indicators(metrics: dict) -> dict:
    return {key: percent_of(metrics.get(i.numerator), metrics.get(i.denominator), scale=i.scale)
            for key, i in INDICATORS.items()}


def read(unit: Unit, period: Optional[str] = None, scope: str = "subtree") -> dict:
    """The stored figures of a unit for a period (``None``: the current month), its own or its
    subtree's, with the indicators, ``computed_at`` and whether a refresh is still to come
    (kept for the figures' epoch: :mod:`portal.figcache`)."""
    period = period or current_month()
    return figcache.remember("read", (unit.id, unit.path, period, scope), lambda: _read(unit, period, scope),
                             units=[unit])


def _read(unit: Unit, period: str, scope: str) -> dict:
    months = months_of(period)
    column = MV.c.subtree if scope == "subtree" else MV.c.own
    rows = db.session.execute(
        select(MV.c.metric, MV.c.period, column).where(
            MV.c.unit_id == unit.id, or_(MV.c.period == CURRENT, MV.c.period.in_(months)))).all()
    # A flow sums the months; a stock takes "current" or, with a history, the end of an ended period.
    raw = {key: _figure(value) for key, value in pick({(m, p): v for m, p, v in rows}, period).items()}
    state = db.session.execute(select(MS.c.refreshed_at).where(MS.c.unit_id == unit.id)).scalar()
    computed_at = state or db.session.scalar(select(func.max(MV.c.computed_at)).where(MV.c.unit_id == unit.id))
    if scope == "subtree":
        stale_clause = exists().where(MS.c.unit_id == Unit.id, _dirty_clause(), Unit.subtree_clause(unit))
    else:
        stale_clause = exists().where(MS.c.unit_id == unit.id, _dirty_clause())
    stale = bool(db.session.scalar(select(stale_clause)))
    return {"unit_code": unit.code, "period": period, "scope": scope, "computed_at": computed_at, "stale": stale,
            "metrics": {key: _number(key, value) for key, value in raw.items()},
            "indicators": indicators(raw)}


def recompute(unit_id: int, period: Optional[str] = None, scope: str = "subtree") -> dict:
    """The figures computed now, straight from the source rows (no stored value is read)."""
    period = period or current_month()
    if scope == "subtree":
        unit = db.session.get(Unit, unit_id)
        ids = list(db.session.scalars(select(Unit.id).where(Unit.subtree_clause(unit))))
    else:
        ids = [unit_id]
    by_period: dict = {}
    for (_unit, key, p), value in own_values(ids).items():
        by_period[(key, p)] = by_period.get((key, p), Decimal("0")) + value
    totals = pick(by_period, period)
    return {key: (int(v) if REGISTRY[key].integer else v) for key, v in totals.items()}


def stored_values() -> dict:
    """{(unit_id, metric, period): (own, subtree)} of every non-zero stored figure (for checks)."""
    return {(u, m, p): (_figure(o), _figure(s)) for u, m, p, o, s in db.session.execute(
        select(MV.c.unit_id, MV.c.metric, MV.c.period, MV.c.own, MV.c.subtree)) if o or s}


def drilldown(unit: Unit, key: str, period: Optional[str], scope: str, visible_units):
    """The statement of the records behind a figure (paginated by the caller): the unit's own,
    or its subtree's restricted to the units the reader may see (``visible_units``: a clause on Unit)."""
    metric = REGISTRY[key]
    period = period or current_month()
    stored = stored_period(key, period)
    if scope == "subtree":
        units = lambda column: column.in_(select(Unit.id).where(Unit.subtree_clause(unit), visible_units))  # noqa: E731
    else:
        units = lambda column: column == unit.id  # noqa: E731
    return metric.drilldown(units, months_of(period) if metric.kind == FLOW else [stored])
