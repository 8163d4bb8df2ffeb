"""A deterministic Henan-scale year of tasks, reports and meetings, written set-based.

``python -m bench.generate`` (or :func:`generate` inside an app context) fills the
configured database with one year of work on the real network of 2,786 units, as
docs/domain.md's "Scale to design for" sizes it:

- an office administrator and the liaisons of the 16 member departments at every
  unit (``bench-office-<code>``, ``bench-<dept>-<code>``; about 47,000 accounts and
  seats; they share one password hash and cannot log in with a known password);
- about 30 provincial tasks, each cascaded tier by tier to every unit (the
  province to its cities, each city to its districts, each district to its
  streets: an instance at every unit, 83,580 in all, with their cascade runs);
- about 20 local tasks per unit (55,720), some issued from the decisions of
  published minutes;
- about 10 progress reports per leaf task (a street's instance or a local task),
  dated over the months the task was open (about 1.3 million);
- leaf tasks accepted, submitted, returned, cancelled (one whole provincial task
  and a few single instances), still in progress or not started, many of them
  overdue; the reviews that accepted or returned them; supervision notices from
  the office above on overdue tasks, half of them answered;
- the cascaded instances rolled up from their children exactly as
  ``portal.services.tasks.rollup`` does (weighted progress, summed actual value,
  accepted when every child is);
- four joint meetings per unit over the year: held (with sign-in of the 16
  departments, three accepted agenda items, two decisions, minutes, most of them
  published), a few cancelled, a few still open for proposals.

Rows are the services' rows: the same columns, statuses, parent and root links,
units, dates and versions (one version per ORM update the services would have
made; a cascaded instance counts one roll-up per write below it). Not written:
audit entries and notifications (they feed no figure), evidence files and
agenda materials. Every timestamp lies before today (Beijing); the year is the
365 days up to ``today`` (``BENCH_TODAY=YYYY-MM-DD`` pins it, the default is
the local date). The same seed, scale and day give the same rows.

Writing: PostgreSQL through ``COPY … FROM STDIN`` (psycopg), SQLite through
``executemany`` of pre-converted tuples; ids are chosen here and the sequences
are moved past them afterwards. ``BENCH_SCALE`` (default 1.0) keeps that share
of the streets (in the order of their codes) and their ancestors: 0.01 is one
city's worth for a smoke check. The network itself is imported through
``portal.services.units.import_units`` when it is not there yet.
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Iterable, Optional

from sqlalchemy import func, select, text

PROVINCIAL_TASKS = 30
LOCAL_TASKS_PER_UNIT = 20
REPORTS_PER_LEAF = (8, 14)  # uniform: 11, about 10 once unstarted and cancelled tasks are counted
MEETINGS_PER_UNIT = 4
DECISIONS_PER_MEETING = 2
ITEMS_PER_MEETING = 3
CANCELLED_PROVINCIAL = 7  # the index of the provincial task cancelled half-way
UTC_OFFSET = timedelta(hours=8)  # Asia/Shanghai has had no daylight saving since 1991
CHUNK = 20_000

NARRATIVES = ("按计划推进", "已召开专题推进会", "完成阶段性目标", "组织社区培训", "开展入户宣传",
              "整理佐证材料", "协调相关部门落实", "推进中，暂无困难", "已完成过半", "查漏补缺")
TOPICS = ("社区教育进万家", "老年大学扩容", "终身学习品牌建设", "学习型社区创建", "家庭教育指导",
          "数字素养提升", "社区学院标准化", "农民夜校", "青少年校外教育", "全民阅读推广",
          "职业技能培训", "社区教育志愿服务", "非遗进社区", "法治宣传教育", "健康知识普及")


def _env_scale() -> float:
    return float(os.environ.get("BENCH_SCALE", "1.0"))


def _env_today() -> Optional[date]:
    value = os.environ.get("BENCH_TODAY")
    return date.fromisoformat(value) if value else None


def _utc(local: datetime) -> datetime:
    return local - UTC_OFFSET


# --- writing -------------------------------------------------------------------------------

class Writer:
    """Bulk rows into one table at a time, on the session's connection (one transaction)."""

    def __init__(self, conn):
        self.conn = conn
        self.dialect = conn.dialect.name
        self.counts: dict[str, int] = {}
        self.filled: list[str] = []  # columns filled from the model's defaults
        from portal.extensions import db

        self.tables = db.metadata.tables
        # PostgreSQL checks every row's foreign keys with a trigger; a superuser can skip them for
        # the load (session_replication_role) and have them checked set-based at the end instead.
        # SQLite, as the portal configures it, checks none.
        self.fk_deferred = True
        if self.dialect == "postgresql":
            self.fk_deferred = bool(conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
                                    .scalar())
            if self.fk_deferred:
                conn.execute(text("SET LOCAL session_replication_role = replica"))

    def _model_defaults(self, table: str, columns: tuple[str, ...]) -> list[tuple[str, Callable]]:
        """Required columns the generator does not know (added to the schema since): their model's default."""
        extra = []
        for col in self.tables[table].c:
            if col.name in columns or col.primary_key or col.nullable or col.server_default is not None:
                continue
            default = col.default
            if default is None or not (default.is_scalar or default.is_callable):
                raise RuntimeError(f"bench/generate.py does not fill {table}.{col.name}, which has no default")
            make = (lambda v=default.arg: v) if default.is_scalar else (lambda f=default.arg: f(None))
            make()  # a default that needs the statement's context fails here, not half-way through
            extra.append((col.name, make))
        if extra:
            self.filled.extend(f"{table}.{name}" for name, _ in extra)
        return extra

    def write(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> int:
        n = 0
        extra = self._model_defaults(table, columns)
        if extra:
            columns = columns + tuple(name for name, _ in extra)
            rows = (row + tuple(make() for _, make in extra) for row in rows)
        if self.dialect == "postgresql":
            raw = self.conn.connection.driver_connection
            with raw.cursor() as cur:
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        n += 1
        else:
            cols = self.tables[table].c
            procs = [cols[c].type._cached_bind_processor(self.conn.dialect) for c in columns]
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            batch: list[tuple] = []
            for row in rows:
                batch.append(tuple(p(v) if p is not None and v is not None else v for p, v in zip(procs, row)))
                if len(batch) >= CHUNK:
                    self.conn.exec_driver_sql(sql, batch)
                    n += len(batch)
                    batch = []
            if batch:
                self.conn.exec_driver_sql(sql, batch)
                n += len(batch)
        self.counts[table] = self.counts.get(table, 0) + n
        return n

    def next_id(self, table: str) -> int:
        return (self.conn.execute(text(f"SELECT MAX(id) FROM {table}")).scalar() or 0) + 1

    def check_foreign_keys(self) -> None:
        """Every foreign key of the written tables, checked set-based (one anti-join per key)."""
        for name in self.counts:
            table = self.tables[name]
            for fk in table.foreign_key_constraints:
                cols = [c.name for c in fk.columns]
                ref = fk.referred_table.name
                ref_cols = [e.column.name for e in fk.elements]
                on = " AND ".join(f"r.{rc} = t.{c}" for c, rc in zip(cols, ref_cols))
                present = " AND ".join(f"t.{c} IS NOT NULL" for c in cols)
                missing = self.conn.exec_driver_sql(
                    f"SELECT COUNT(*) FROM {name} t WHERE {present} "
                    f"AND NOT EXISTS (SELECT 1 FROM {ref} r WHERE {on})").scalar()
                if missing:
                    raise RuntimeError(f"{missing} rows of {name} break {fk.name or cols} -> {ref}")

    def finish(self) -> None:
        """Check the foreign keys, move PostgreSQL's sequences past the ids chosen here, and
        refresh the planner's statistics."""
        if self.dialect != "postgresql":
            self.check_foreign_keys()
            self.conn.exec_driver_sql("ANALYZE")
            return
        if self.fk_deferred:
            self.conn.execute(text("SET LOCAL session_replication_role = origin"))
            self.check_foreign_keys()
        for table in self.counts:
            self.conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))
        for table in self.counts:
            self.conn.exec_driver_sql(f"ANALYZE {table}")


def _json(value: Any, dialect: str) -> Any:
    """A JSON column's value: text for COPY; SQLite's bind processor serialises it itself."""
    return json.dumps(value) if dialect == "postgresql" else value


# --- the plan --------------------------------------------------------------------------------

@dataclass
class UnitRow:
    id: int
    code: str
    tier: str
    parent_id: Optional[int]
    path: str
    name: str
    children: list["UnitRow"] = field(default_factory=list)


@dataclass
class TaskRow:
    id: int
    unit: UnitRow
    parent: Optional["TaskRow"]
    root_id: int
    decision_id: Optional[int]
    title: str
    description: str
    lead: str
    co: list[str]
    due: date
    target: Optional[tuple[str, str, Decimal]]
    weight: int
    created_local: datetime
    created_by_id: Optional[int]
    children: list["TaskRow"] = field(default_factory=list)
    index: int = 0  # the order of planning: seeds the task's own random stream, whatever the ids
    cancelled_on: Optional[date] = None  # the whole provincial task cancelled that day
    # filled by the leaf's plan or the roll-up
    status: str = "assigned"
    progress: Any = 0
    actual: Optional[Decimal] = None
    version: int = 1
    writes: int = 0
    last_write: Optional[datetime] = None  # UTC
    rolled_up_at: Optional[datetime] = None
    cancel_reason: Optional[str] = None
    last_cancel: Optional[datetime] = None


@dataclass
class LeafPlan:
    status: str
    reports: list[tuple[datetime, int, Optional[Decimal], str]]  # (UTC at, percent, actual, narrative)
    submitted: Optional[datetime] = None  # UTC
    review: Optional[tuple[str, datetime]] = None  # ("accept" | "return", UTC at)
    cancelled: Optional[datetime] = None  # UTC
    cancel_reason: Optional[str] = None


class Generator:
    def __init__(self, conn, *, scale: float, seed: int, today: date, log: Callable[[str], None]):
        self.conn = conn
        self.scale = scale
        self.seed = seed
        self.today = today
        self.start = today - timedelta(days=365)
        self.rng = random.Random(seed)
        self.log = log
        self.w = Writer(conn)
        self.dialect = self.w.dialect

    # -- time helpers
    def _day_time(self, rng: random.Random, day: date) -> datetime:
        """A local wall-clock moment in office hours on ``day`` (never today or later)."""
        day = min(day, self.today - timedelta(days=1))
        return datetime(day.year, day.month, day.day, 8, 0) + timedelta(seconds=rng.randrange(10 * 3600))

    def _day_between(self, rng: random.Random, first: date, last: date) -> date:
        last = min(last, self.today - timedelta(days=1))
        if last <= first:
            return min(first, last)
        return first + timedelta(days=rng.randrange((last - first).days + 1))

    # -- units and people
    def load_units(self) -> None:
        from portal.models import Unit

        rows = self.conn.execute(select(Unit.id, Unit.code, Unit.tier, Unit.parent_id, Unit.path, Unit.name)
                                 .order_by(Unit.path)).all()
        units = {r.id: UnitRow(r.id, r.code, r.tier, r.parent_id, r.path, r.name) for r in rows}
        streets = [u for u in units.values() if u.tier == "street"]
        keep = max(1, math.ceil(len(streets) * self.scale)) if self.scale < 1 else len(streets)
        chosen: dict[int, UnitRow] = {}
        for street in streets[:keep]:
            u: Optional[UnitRow] = street
            while u is not None and u.id not in chosen:
                chosen[u.id] = u
                u = units.get(u.parent_id) if u.parent_id else None
        if self.scale >= 1:  # every unit, also any without streets below
            chosen = dict(units)
        self.units = sorted(chosen.values(), key=lambda u: u.path)
        for u in self.units:
            if u.parent_id in chosen:
                chosen[u.parent_id].children.append(u)
        roots = [u for u in self.units if u.parent_id not in chosen]
        if len(roots) != 1:
            raise RuntimeError(f"expected one root unit, found {len(roots)}")
        self.root = roots[0]
        self.departments = list(self.conn.execute(text("SELECT code FROM departments ORDER BY position")).scalars())

    def people(self) -> None:
        """An office administrator and one liaison per department at every unit."""
        from werkzeug.security import generate_password_hash
        from flask import current_app

        pw = generate_password_hash(f"bench-{self.rng.getrandbits(64):x}",
                                    method=current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))
        uid, mid = self.w.next_id("users"), self.w.next_id("memberships")
        when = _utc(datetime.combine(self.start, datetime.min.time()) + timedelta(hours=9))
        self.office: dict[int, int] = {}
        self.liaison: dict[tuple[int, str], int] = {}
        users, seats = [], []
        for u in self.units:
            for dept in [None, *self.departments]:
                name = f"bench-office-{u.code}" if dept is None else f"bench-{dept}-{u.code}"
                users.append((uid, name, f"{u.name}{'办公室' if dept is None else dept}", pw, True, None, u.id,
                              when, when, f"{self.rng.getrandbits(128):032x}"))
                seats.append((mid, uid, u.id, dept, "office_admin" if dept is None else "liaison", when, None))
                if dept is None:
                    self.office[u.id] = uid
                else:
                    self.liaison[(u.id, dept)] = uid
                uid += 1
                mid += 1
        self.w.write("users", ("id", "username", "display_name", "password_hash", "active", "locale",
                               "home_unit_id", "created_at", "password_changed_at", "session_key"), users)
        self.w.write("memberships", ("id", "user_id", "unit_id", "department_code", "role", "created_at",
                                     "granted_by_id"), seats)

    # -- meetings
    def meetings(self) -> None:
        rng = random.Random(self.seed * 7 + 1)
        ids = {t: self.w.next_id(t) for t in ("meetings", "meeting_invitations", "agenda_items", "attendance",
                                              "minutes", "minutes_revisions", "decisions")}
        rows: dict[str, list[tuple]] = {t: [] for t in ids}
        self.published_decisions: dict[int, list[tuple[int, date, str, date, datetime]]] = {}
        n_dept = len(self.departments)
        for u in self.units:
            office = self.office[u.id]
            for q in range(MEETINGS_PER_UNIT):
                day = self.start + timedelta(days=45 + (365 // MEETINGS_PER_UNIT) * q + rng.randint(-20, 20))
                if q == MEETINGS_PER_UNIT - 1 and rng.random() < 0.1:  # the next one, not held yet
                    day = self.today + timedelta(days=rng.randint(3, 10))
                starts = datetime(day.year, day.month, day.day, rng.choice((9, 10, 14, 15)), rng.choice((0, 30)))
                created = _utc(starts - timedelta(days=rng.randint(12, 20), hours=rng.randint(0, 5)))
                past = day < self.today
                fate = rng.random()
                if not past:
                    status, version = "agenda_open", 2
                elif fate < 0.05:
                    status, version = "cancelled", 3
                elif fate < 0.30:
                    status, version = "held", 4
                else:
                    status, version = "minutes_published", 5
                mid = ids["meetings"]
                ids["meetings"] += 1
                rows["meetings"].append((
                    mid, u.id, "regular", f"{day.year}年第{q + 1}次社区教育联席会议", starts,
                    starts + timedelta(hours=2), "办公楼三楼会议室", starts - timedelta(days=3),
                    f"{u.code}教联〔{day.year}〕{q + 1}号", status,
                    "时间冲突，另行通知" if status == "cancelled" else None, office, created, version))
                for dept in self.departments:
                    rows["meeting_invitations"].append((ids["meeting_invitations"], mid, dept))
                    ids["meeting_invitations"] += 1
                items = []
                for pos in range(1, ITEMS_PER_MEETING + 1):
                    dept = self.departments[rng.randrange(n_dept)]
                    iid = ids["agenda_items"]
                    ids["agenda_items"] += 1
                    items.append((iid, dept))
                    rows["agenda_items"].append((
                        iid, mid, f"{rng.choice(TOPICS)}工作推进", "", dept, "proposal", "accepted", None, pos,
                        None, None, None, self.liaison[(u.id, dept)],
                        self._before_today(created + timedelta(days=rng.randint(1, 5), seconds=rng.randrange(36000))),
                        2))
                if status not in ("held", "minutes_published"):
                    continue
                signed = _utc(starts) - timedelta(minutes=rng.randint(0, 20))
                for dept in self.departments:
                    r = rng.random()
                    kind = "present" if r < 0.85 else "delegate" if r < 0.95 else "absent"
                    rows["attendance"].append((
                        ids["attendance"], mid, dept, kind, "联络员" if kind == "present" else "",
                        "代参会人员" if kind == "delegate" else "", "公务冲突" if kind == "absent" else "",
                        office, signed))
                    ids["attendance"] += 1
                ended = _utc(starts + timedelta(hours=2))
                published = status == "minutes_published"
                if published or rng.random() < 0.5:
                    body = f"# {u.name}社区教育联席会议纪要\n\n会议研究了{ITEMS_PER_MEETING}项议题。"
                    pub_at = ended + timedelta(days=rng.randint(1, 6)) if published else None
                    if pub_at is not None and pub_at.date() >= self.today - timedelta(days=1):
                        pub_at = _utc(self._day_time(rng, self.today - timedelta(days=1)))
                    min_id = ids["minutes"]
                    ids["minutes"] += 1
                    rows["minutes"].append((min_id, mid, body, 1, pub_at, office if published else None))
                    saved = self._before_today(ended + timedelta(hours=20))
                    if pub_at is not None:
                        saved = min(saved, pub_at - timedelta(hours=1))
                    rows["minutes_revisions"].append((ids["minutes_revisions"], min_id, 1, body, office, saved, "",
                                                      published))
                    ids["minutes_revisions"] += 1
                for pos in range(1, DECISIONS_PER_MEETING + 1):
                    item_id, dept = items[pos - 1]
                    did = ids["decisions"]
                    ids["decisions"] += 1
                    due = day + timedelta(days=rng.randint(45, 120))
                    text_ = f"落实{rng.choice(TOPICS)}，由牵头部门制定方案并按期报送进展"
                    # the status is settled once the tasks are planned (closed when its task is accepted)
                    rows["decisions"].append([did, mid, item_id, text_, dept, _json([], self.dialect), due, "open",
                                              pos, office, ended + timedelta(hours=1)])
                    if published:
                        self.published_decisions.setdefault(u.id, []).append((did, pub_at, text_, due, dept))
        self.meeting_rows = rows

    def write_meetings(self) -> None:
        rows = self.meeting_rows
        w = self.w.write
        columns = ("id", "unit_id", "series", "title", "starts_at", "ends_at", "location", "agenda_closes_at",
                   "notice_number", "status", "cancel_reason", "created_by_id", "created_at", "version")
        meetings = rows["meetings"]
        have = self.w.tables["meetings"].c
        if "uid" in have:  # the calendar entry's UID, from the seed (not uuid4) so the year stays the same
            rng = random.Random(self.seed * 7 + 4)
            columns += ("uid",)
            meetings = [m + (str(uuid.UUID(int=rng.getrandbits(128), version=4)),) for m in meetings]
        if "notice_issued_on" in have:  # the invitations went out the day it was created (Beijing)
            columns += ("notice_issued_on",)
            meetings = [m + ((m[12] + UTC_OFFSET).date(),) for m in meetings]
        w("meetings", columns, meetings)
        w("meeting_invitations", ("id", "meeting_id", "department_code"), rows["meeting_invitations"])
        w("agenda_items", ("id", "meeting_id", "title", "description", "department_code", "kind", "status", "reason",
                           "position", "merged_into_id", "source_decision_id", "source_item_id", "proposed_by_id",
                           "created_at", "version"), rows["agenda_items"])
        w("attendance", ("id", "meeting_id", "department_code", "status", "attendee_name", "delegate_name", "reason",
                         "recorded_by_id", "recorded_at"), rows["attendance"])
        w("minutes", ("id", "meeting_id", "body", "revision", "published_at", "published_by_id"), rows["minutes"])
        w("minutes_revisions", ("id", "minutes_id", "number", "body", "author_id", "at", "reason", "published"),
          rows["minutes_revisions"])
        w("decisions", ("id", "meeting_id", "item_id", "text", "lead_department_code", "co_department_codes",
                        "due_date", "status", "position", "created_by_id", "created_at"),
          [tuple(r) for r in rows["decisions"]])
        self.meeting_rows = {}

    # -- tasks
    def _new_task(self, unit: UnitRow, parent: Optional[TaskRow], **kw) -> TaskRow:
        tid = self.next_task
        self.next_task += 1
        if parent is not None:
            kw = dict(title=parent.title, description=parent.description, lead=parent.lead, co=parent.co,
                      due=parent.due, target=parent.target, weight=parent.weight, decision_id=parent.decision_id,
                      **kw)
        task = TaskRow(id=tid, unit=unit, parent=parent, root_id=parent.root_id if parent else tid, **kw)
        if parent is not None:
            parent.children.append(task)
        task.index = len(self.tasks)
        self.tasks.append(task)
        return task

    def _definition(self, rng: random.Random) -> dict:
        lead = self.departments[rng.randrange(len(self.departments))]
        co = sorted(set(rng.sample(self.departments, rng.choice((0, 0, 1, 2)))) - {lead})
        target = None
        if rng.random() < 0.4:
            target = ("培训人次", "人次", Decimal(rng.choice((200, 500, 1000, 2000))))
        return dict(lead=lead, co=co, target=target, weight=rng.choice((1, 1, 1, 2, 3)))

    def plan_tasks(self) -> None:
        rng = random.Random(self.seed * 7 + 2)
        self.next_task = self.w.next_id("tasks")
        self.tasks: list[TaskRow] = []
        self.runs: list[tuple] = []
        run_id = self.w.next_id("cascade_runs")
        latest_issue = self.today - timedelta(days=30)
        for p in range(PROVINCIAL_TASKS):
            day = self._day_between(rng, self.start, latest_issue)
            root = self._new_task(self.root, None, decision_id=None,
                                  title=f"{rng.choice(TOPICS)}专项任务（{p + 1}）",
                                  description="全省统一部署，逐级分解落实。", due=day + timedelta(days=rng.randint(60, 240)),
                                  created_local=self._day_time(rng, day), created_by_id=self.office[self.root.id],
                                  **self._definition(rng))
            if p == CANCELLED_PROVINCIAL:
                root.cancelled_on = min(day + timedelta(days=rng.randint(40, 90)), self.today - timedelta(days=1))
            frontier = [root]
            while frontier:
                nxt = []
                for task in frontier:
                    if not task.unit.children:
                        continue
                    when = task.created_local + timedelta(days=rng.randint(1, 5), seconds=rng.randrange(3600))
                    when = min(when, self._day_time(rng, self.today - timedelta(days=1)))
                    by = self.office[task.unit.id]
                    for child in task.unit.children:
                        nxt.append(self._new_task(child, task, created_local=when, created_by_id=by))
                    n = len(task.unit.children)
                    self.runs.append((run_id, task.id, _json("children", self.dialect), n, n, "finished", None, by,
                                      _utc(when), _utc(when) + timedelta(seconds=0.02 * n + 0.2)))
                    run_id += 1
                frontier = nxt
        # local tasks: from the decisions of published minutes first, then the unit's own
        for u in self.units:
            from_decisions = self.published_decisions.get(u.id, [])
            for k in range(LOCAL_TASKS_PER_UNIT):
                if k < len(from_decisions) and from_decisions[k][1] is not None:
                    did, pub_at, text_, due, dept = from_decisions[k]
                    created = pub_at + UTC_OFFSET + timedelta(days=rng.randint(0, 5), seconds=rng.randrange(3600))
                    created = max(min(created, self._day_time(rng, self.today - timedelta(days=1))),
                                  pub_at + UTC_OFFSET + timedelta(minutes=10))
                    definition = self._definition(rng)
                    definition["lead"] = dept
                    definition["co"] = []
                    self._new_task(u, None, decision_id=did, title=text_, description=text_, due=due,
                                   created_local=created, created_by_id=self.office[u.id], **definition)
                    continue
                day = self._day_between(rng, self.start, self.today - timedelta(days=5))
                self._new_task(u, None, decision_id=None, title=f"{rng.choice(TOPICS)}（{u.name}）",
                               description="", due=day + timedelta(days=rng.randint(20, 180)),
                               created_local=self._day_time(rng, day), created_by_id=self.office[u.id],
                               **self._definition(rng))

    def _leaf_rng(self, task: TaskRow) -> random.Random:
        return random.Random(self.seed * 1_000_003 + task.index)

    def _root(self, task: TaskRow) -> TaskRow:
        while task.parent is not None:
            task = task.parent
        return task

    def _before_today(self, at: datetime) -> datetime:
        """A UTC moment clamped to before today (local midnight)."""
        limit = _utc(datetime.combine(self.today, datetime.min.time())) - timedelta(minutes=5)
        return min(at, limit)

    def plan_leaf(self, task: TaskRow) -> LeafPlan:
        """A leaf's year: its reports, submission, review or cancellation. Deterministic per task
        (its own random stream), so the reports can be planned again while they are written."""
        rng = self._leaf_rng(task)
        yesterday = self.today - timedelta(days=1)
        created_day = task.created_local.date()
        created_utc = _utc(task.created_local)
        end = min(yesterday, task.due + timedelta(days=20))
        root = self._root(task)
        cancelled_on = root.cancelled_on
        if cancelled_on is None and rng.random() < 0.01 and task.unit.parent_id is not None:
            cancelled_on = self._day_between(rng, created_day + timedelta(days=10), yesterday)
        r = rng.random()
        if task.due < self.today:
            fate = ("accepted" if r < 0.55 else "submitted" if r < 0.65 else "returned" if r < 0.68
                    else "assigned" if r < 0.71 else "in_progress")
        else:
            fate = ("accepted" if r < 0.15 else "submitted" if r < 0.25 else "returned" if r < 0.27
                    else "assigned" if r < 0.32 else "in_progress")
        if end <= created_day + timedelta(days=3):
            fate = "assigned" if r < 0.3 else "in_progress"
        last_day = end
        sub_day = None
        if fate in ("accepted", "submitted", "returned"):
            span = (end - created_day).days
            sub_day = min(created_day + timedelta(days=max(1, int(span * (0.6 + 0.4 * rng.random())))),
                          yesterday - timedelta(days=1))
            last_day = sub_day
        n = 0 if fate == "assigned" or last_day < created_day else rng.randint(*REPORTS_PER_LEAF)
        final = 100 if fate in ("accepted", "submitted") else rng.randint(max(n, 20), 95) if n else 0
        if fate == "returned" and n:
            final = rng.randint(max(n, 85), 100)
        percents = sorted(rng.sample(range(1, final), n - 1)) + [final] if n else []
        # office hours (08:00-18:00 local) on days from the creation to the last report day
        span = max(0, (min(last_day, yesterday) - created_day).days) + 1
        base = datetime(created_day.year, created_day.month, created_day.day) + timedelta(hours=8) - UTC_OFFSET
        ats = sorted(base + timedelta(days=rng.randrange(span), seconds=rng.randrange(36000)) for _ in range(n))
        ats = [at if at > created_utc else created_utc + timedelta(minutes=5 + i) for i, at in enumerate(ats)]
        target = task.target
        reports = [(at, pct, (target[2] * pct / 100).quantize(Decimal("0.01")) if target else None,
                    NARRATIVES[rng.randrange(len(NARRATIVES))]) for at, pct in zip(ats, percents)]
        plan = LeafPlan(status=fate if reports or fate == "assigned" else "assigned", reports=reports)
        if plan.status in ("accepted", "submitted", "returned"):
            plan.submitted = self._before_today(max(reports[-1][0] + timedelta(hours=1),
                                                    _utc(self._day_time(rng, sub_day))))
            if plan.status != "submitted":
                review_at = self._before_today(plan.submitted + timedelta(days=rng.randint(1, 6),
                                                                          seconds=rng.randrange(3600)))
                plan.review = ("accept" if plan.status == "accepted" else "return", max(review_at, plan.submitted))
        elif plan.status == "in_progress" and not reports:
            plan.status = "assigned"
        if cancelled_on is not None:
            cancelled = _utc(self._day_time(rng, cancelled_on))
            if not (plan.review and plan.review[0] == "accept" and plan.review[1] < cancelled):
                # cancelled by the assigning office (or with the whole task): the rest of its year never happens
                plan.status = "cancelled"
                plan.reports = [rep for rep in plan.reports if rep[0] < cancelled]
                plan.submitted = plan.review = None
                plan.cancelled = cancelled
                plan.cancel_reason = "全省统一调整部署" if root.cancelled_on else "任务调整，不再执行"
        return plan

    def settle_leaves(self) -> None:
        """Plan every leaf (keeping only what its row needs) and roll the cascaded instances up. When
        the database checks no foreign keys during the load, the reports are written in the same pass;
        otherwise after the tasks, planned a second time (the plans are deterministic)."""
        self.leaves = [t for t in self.tasks if not t.children]
        self.reviews: list[tuple] = []
        self.notices: list[tuple] = []
        self.ids = {"review": self.w.next_id("task_reviews"), "notice": self.w.next_id("supervision_notices")}
        self.notice_rng = random.Random(self.seed * 7 + 3)
        self.reports_written = self.w.fk_deferred
        if self.reports_written:
            self.write_reports(settle=True)
        else:
            for task in self.leaves:
                self._settle_leaf(task, self.plan_leaf(task))
        self._rollup()

    def write_reports(self, settle: bool = False) -> None:
        first = self.w.next_id("task_reports")

        def rows():
            rid = first
            for task in self.leaves:
                plan = self.plan_leaf(task)
                if settle:
                    self._settle_leaf(task, plan)
                by = self.liaison[(task.unit.id, task.lead)]
                for at, pct, actual, narrative in plan.reports:
                    yield (rid, task.id, task.lead, pct, actual, narrative, by, at)
                    rid += 1

        self.w.write("task_reports", ("id", "task_id", "department_code", "percent", "actual_value", "narrative",
                                      "reported_by_id", "at"), rows())

    def _settle_leaf(self, task: TaskRow, plan: LeafPlan) -> None:
        rng = self.notice_rng
        yesterday = self.today - timedelta(days=1)
        task.status = plan.status
        writes = len(plan.reports)
        times = [r[0] for r in plan.reports]
        if plan.reports:
            task.progress = plan.reports[-1][1]
            actuals = [r[2] for r in plan.reports if r[2] is not None]
            task.actual = actuals[-1] if actuals else None
        if plan.submitted:
            writes += 1
            times.append(plan.submitted)
        assigning = task.parent.unit if task.parent else task.unit
        if plan.review:
            writes += 1
            times.append(plan.review[1])
            self.reviews.append((self.ids["review"], task.id, plan.review[0],
                                 "" if plan.review[0] == "accept" else "请补充佐证材料后再次提交",
                                 self.office[assigning.id], plan.review[1]))
            self.ids["review"] += 1
        if plan.cancelled:
            task.cancel_reason = plan.cancel_reason
            task.last_cancel = plan.cancelled
        task.writes = writes  # each of them enqueued one roll-up of the instances above
        task.version = 1 + writes + (1 if plan.cancelled else 0)
        if plan.cancelled and self._root(task).cancelled_on is None:
            writes += 1  # cancelled on its own: that enqueued a roll-up too
            times.append(plan.cancelled)
            task.writes = writes
        task.last_write = max(times) if times else None
        # a supervision notice from the office above on some overdue tasks
        accepted_on = plan.review[1].date() if plan.review and plan.review[0] == "accept" else None
        late = task.due < yesterday and (accepted_on is None or accepted_on > task.due)
        if late and task.unit.parent_id is not None and task.status != "cancelled" and rng.random() < 0.3:
            sent_day = task.due + timedelta(days=rng.randint(1, 20))
            if sent_day < self.today and (accepted_on is None or sent_day < accepted_on):
                sent = _utc(self._day_time(rng, sent_day))
                answered = rng.random() < 0.5
                resp_at = sent + timedelta(days=rng.randint(1, 5)) if answered else None
                if resp_at is not None and resp_at >= _utc(datetime.combine(self.today, datetime.min.time())):
                    resp_at = None
                self.notices.append((self.ids["notice"], task.id, task.unit.parent_id,
                                     "请说明逾期原因并限期完成", self.office[task.unit.parent_id], sent,
                                     "已制定整改计划，近期完成" if resp_at else None,
                                     self.office[task.unit.id] if resp_at else None, resp_at))
                self.ids["notice"] += 1

    def _rollup(self) -> None:
        # the roll-up, bottom-up (children were appended after their parents): what the last
        # run of services.tasks.rollup left; one version per roll-up a write below enqueued
        for task in reversed(self.tasks):
            if not task.children:
                continue
            task.status = "in_progress"  # the fan-out moved it from assigned
            task.writes = sum(c.writes for c in task.children)
            task.version = 2 + task.writes
            task.last_write = max((c.last_write for c in task.children if c.last_write), default=None)
            task.rolled_up_at = task.last_write
            cancelled_tree = self._root(task).cancelled_on is not None
            # a cancelled tree keeps the figures of its last roll-up before the cancellation
            live = task.children if cancelled_tree else [c for c in task.children if c.status != "cancelled"]
            if live and task.rolled_up_at is not None:
                weights = sum(Decimal(c.weight) for c in live)
                weighted = sum(Decimal(c.progress) * Decimal(c.weight) for c in live)
                task.progress = (weighted / weights).quantize(Decimal("0.01")) if weights else Decimal("0")
                actuals = [c.actual for c in live if c.actual is not None]
                task.actual = Decimal(sum(actuals)).quantize(Decimal("0.01")) if actuals else None
                if all(c.status == "accepted" for c in live):
                    task.status, task.progress = "accepted", Decimal("100")
            if cancelled_tree and task.status != "accepted":
                task.status, task.cancel_reason = "cancelled", "全省统一调整部署"
                task.version += 1
        # a decision is closed once its task is accepted
        accepted = {t.decision_id for t in self.tasks if t.decision_id and t.parent is None and t.status == "accepted"}
        for row in self.meeting_rows["decisions"]:
            if row[0] in accepted:
                row[7] = "closed"

    def write_tasks(self) -> None:
        d = self.dialect
        # The unit's code copied onto the task (the task lists' order), where the schema has it.
        with_code = "unit_code" in self.w.tables["tasks"].c

        def task_rows():
            for t in self.tasks:
                target = t.target
                row = (t.id, t.unit.id, t.parent.id if t.parent else None, t.root_id, t.decision_id, t.title,
                       t.description, t.lead, _json(t.co, d), t.due, target[0] if target else None,
                       target[1] if target else None, target[2] if target else None, t.weight, t.status,
                       t.progress, t.actual, t.rolled_up_at, t.cancel_reason, t.created_by_id,
                       _utc(t.created_local), t.version)
                yield row + (t.unit.code,) if with_code else row

        self.w.write("tasks", ("id", "unit_id", "parent_id", "root_id", "decision_id", "title", "description",
                               "lead_department_code", "co_department_codes", "due_date", "target_name",
                               "target_unit", "target_value", "weight", "status", "progress", "actual_value",
                               "rolled_up_at", "cancel_reason", "created_by_id", "created_at", "version")
                     + (("unit_code",) if with_code else ()), task_rows())
        self.w.write("cascade_runs", ("id", "task_id", "target", "total", "done", "state", "error",
                                      "requested_by_id", "created_at", "finished_at"), self.runs)
        self.w.write("task_reviews", ("id", "task_id", "decision", "comment", "reviewed_by_id", "at"), self.reviews)
        self.w.write("supervision_notices", ("id", "task_id", "from_unit_id", "text", "sent_by_id", "sent_at",
                                             "response", "responded_by_id", "responded_at"), self.notices)
        if not self.reports_written:
            self.write_reports()


def generate(*, scale: Optional[float] = None, seed: int = 41, today: Optional[date] = None,
             log: Callable[[str], None] = print) -> dict:
    """Fill the app's database (in an app context) with a year of work; commit; answer counts and seconds.
    The network is imported first when the database has no units."""
    from portal.clock import local_today
    from portal.cli import DEFAULT_DIVISIONS
    from portal.extensions import db
    from portal.models import Unit
    from portal.services.units import import_units, load_file

    scale = _env_scale() if scale is None else scale
    today = today or _env_today() or local_today()
    started = time.perf_counter()
    if not db.session.scalar(select(func.count(Unit.id))):
        import_units(load_file(DEFAULT_DIVISIONS))
        db.session.commit()
    conn = db.session.connection()
    gen = Generator(conn, scale=scale, seed=seed, today=today, log=log)
    steps: dict[str, float] = {}

    def step(name, fn):
        t0 = time.perf_counter()
        fn()
        steps[name] = round(time.perf_counter() - t0, 2)
        log(f"  generate: {name:<14s} {steps[name]:7.2f} s")

    step("units", gen.load_units)
    step("people", gen.people)
    step("meetings", gen.meetings)
    step("tasks", gen.plan_tasks)
    step("leaves", gen.settle_leaves)
    step("write meetings", gen.write_meetings)
    step("write tasks", gen.write_tasks)
    step("finish", gen.w.finish)
    db.session.commit()
    seconds = round(time.perf_counter() - started, 2)
    result = {"seconds": seconds, "scale": scale, "seed": seed, "today": today.isoformat(),
              "units": len(gen.units), "leaf_tasks": len(gen.leaves), "rows": dict(gen.w.counts), "steps": steps}
    log(f"generated a year on {len(gen.units)} units in {seconds} s: "
        + ", ".join(f"{k} {v:,}" for k, v in gen.w.counts.items()))
    if gen.w.filled:
        log("  columns the generator does not know yet, filled from the models' defaults: " + ", ".join(gen.w.filled))
        result["filled_from_model_defaults"] = gen.w.filled
    return result


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m bench.generate``: on the configured database, which must hold the schema."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=None, help="share of Henan (BENCH_SCALE, default 1.0)")
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="the year's last day + 1 (BENCH_TODAY)")
    args = parser.parse_args(argv)
    from portal import create_app

    app = create_app()
    with app.app_context():
        generate(scale=args.scale, seed=args.seed, today=args.today)
    return 0


if __name__ == "__main__":
    sys.exit(main())
