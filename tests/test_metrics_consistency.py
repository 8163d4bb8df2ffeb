"""Stored figures always equal a recomputation from the rows: a property-based test over
random sequences of writes and day changes, and the write that lands while a refresh of
the same unit is running."""
from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text

from portal import create_app, metrics
from portal.extensions import db
from portal.models import Membership, Meeting, Role, SupervisionNotice, Task, Unit, User
from portal.services import ServiceError
from portal.services import meetings as msvc
from portal.services import tasks as svc
from tests.conftest import KEEP_TABLES, _test_config

ON_POSTGRES = (os.environ.get("DATABASE_URL") or "").startswith("postgres")
EXAMPLES = int(os.environ.get("METRICS_EXAMPLES", "25"))
CODES = [("41", None, "province"), ("4101", "41", "city"), ("4102", "41", "city"),
         ("410105", "4101", "district"), ("410105001", "410105", "street"), ("410105002", "410105", "street"),
         ("410201", "4102", "district")]


def _wipe():
    db.session.remove()
    with db.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("PRAGMA foreign_keys=OFF"))
        for table in reversed(db.metadata.sorted_tables):
            if table.name not in KEEP_TABLES:
                conn.execute(delete(table))


def _small_tree():
    units = {}
    for code, parent, tier in CODES:
        p = units.get(parent)
        units[code] = Unit(code=code, name=code, tier=tier, parent_id=p.id if p else None,
                           path=(p.path if p else "/") + code + "/")
        db.session.add(units[code])
        db.session.flush()
        user = User(username=f"o{code}", display_name=code, active=True)
        user.set_password("correct-horse-1")
        db.session.add(user)
        db.session.flush()
        db.session.add(Membership(user_id=user.id, unit_id=units[code].id, role=Role.OFFICE_ADMIN.value))
    db.session.commit()


def _office(unit_id):
    return db.session.scalar(select(User).join(Membership, Membership.user_id == User.id)
                             .where(Membership.unit_id == unit_id))


def _expected_table():
    """Every figure recomputed from the rows: own values, and subtree sums over the paths."""
    own = metrics.engine.own_values()
    paths = dict(db.session.execute(select(Unit.id, Unit.path)).all())
    table = {}
    for (unit_id, key, period), value in own.items():
        table.setdefault((unit_id, key, period), [Decimal(0), Decimal(0)])[0] += value
        for ancestor, path in paths.items():
            if paths[unit_id].startswith(path):
                table.setdefault((ancestor, key, period), [Decimal(0), Decimal(0)])[1] += value
    return {k: (o.quantize(Decimal("0.0001")), s.quantize(Decimal("0.0001"))) for k, (o, s) in table.items()}


# The task lifecycle is listed twice: sequences then reach acceptance more often.
OPS = st.lists(st.tuples(st.sampled_from(["create", "cascade", "report", "submit", "review"] * 2 + [
    "cancel", "due", "meeting", "decision", "notice", "respond", "day",
    "activity", "activity", "activity_edit", "activity_delete", "member", "member_leave"]),
    st.integers(0, 50), st.integers(0, 100)), min_size=1, max_size=20)
#: Always tried: a provincial task down to the streets, reported, submitted, accepted and returned,
#: a local task cancelled, a meeting with a decision, a notice answered, and the calendar moving on.
LIFECYCLE = [("create", 0, 1), ("cascade", 0, 1), ("cascade", 1, 1), ("report", 0, 60), ("report", 1, 30),
             ("submit", 0, 0), ("submit", 0, 0), ("review", 0, 1), ("review", 0, 0), ("create", 4, 2),
             ("notice", 0, 0), ("respond", 0, 0), ("meeting", 3, 0), ("decision", 0, 0), ("cancel", 3, 0),
             ("day", 0, 5), ("due", 0, 3),
             ("activity", 4, 7), ("activity", 5, 40), ("activity_edit", 0, 3), ("activity_delete", 1, 0),
             ("member", 4, 1), ("member", 4, 2), ("member", 4, 3), ("member", 4, 4), ("member", 4, 5),
             ("member_leave", 0, 0)]


@pytest.fixture(scope="module")
def inline_app():
    """The configured database with jobs in-process, so each write's refresh runs at its commit."""
    return create_app(dict(_test_config(), REDIS_URL=None))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
@example(ops=LIFECYCLE)
@example(ops=LIFECYCLE[:8])
def test_stored_figures_equal_a_recomputation_after_any_writes(inline_app, monkeypatch, ops):
    import portal.clock as clock

    real_now = clock.local_now
    shift = {"days": 0}
    monkeypatch.setattr(clock, "local_now", lambda: real_now() + timedelta(days=shift["days"]))
    with inline_app.app_context():
        _wipe()
        _small_tree()
    for op, a, b in ops:
        with inline_app.app_context():
            try:
                _apply(op, a, b, shift)
                db.session.commit()
            except ServiceError:
                db.session.rollback()
            finally:
                db.session.remove()
    with inline_app.app_context():
        try:
            assert metrics.dirty_unit_ids() == []
            assert metrics.stored_values() == _expected_table()
        finally:
            db.session.remove()


def _pick(rows, n):
    return rows[n % len(rows)] if rows else None


def _apply(op, a, b, shift):
    units = list(db.session.scalars(select(Unit).order_by(Unit.id)))
    tasks = list(db.session.scalars(select(Task).order_by(Task.id)))
    parents = {t.parent_id for t in tasks}
    # Each write picks among the tasks it can apply to, so that sequences reach every state.
    eligible = {
        "cascade": [t for t in tasks if t.status not in ("accepted", "cancelled") and not t.reports
                    and t.unit.tier != "street"],
        "report": [t for t in tasks if t.id not in parents and t.status in ("assigned", "in_progress", "returned")],
        "submit": [t for t in tasks if t.status in ("in_progress", "returned") and t.reports],
        "review": [t for t in tasks if t.status == "submitted" and t.parent_id is not None],
        "cancel": [t for t in tasks if t.status not in ("accepted", "cancelled")],
        "due": [t for t in tasks if t.parent_id is None and t.status not in ("accepted", "cancelled")],
        "notice": [t for t in tasks if t.parent_id is not None and t.status != "cancelled"],
    }
    task = _pick(eligible.get(op, tasks), a)
    if op == "create":
        unit = _pick(units, a)
        svc.create_task(unit, {"title": f"t{a}", "lead_department": "edu", "weight": 1 + b % 3,
                               "due_date": (datetime.now().date() + timedelta(days=b % 7 - 3)).isoformat()},
                        by=_office(unit.id))
    elif op == "cascade" and task is not None:
        svc.cascade_task(task, "children" if b % 2 else "streets", by=_office(task.unit_id))
    elif op == "report" and task is not None:
        svc.report_progress(task, {"percent": b}, by=_office(task.unit_id))
    elif op == "submit" and task is not None:
        svc.submit_task(task, by=_office(task.unit_id))
    elif op == "review" and task is not None and task.parent_id is not None:
        reviewer = _office(db.session.get(Task, task.parent_id).unit_id)
        svc.review_task(task, "accept" if b % 2 else "return", "请补充", by=reviewer)
    elif op == "cancel" and task is not None:
        reviewer = _office((db.session.get(Task, task.parent_id) or task).unit_id if task.parent_id else task.unit_id)
        svc.cancel_task(task, "取消", by=reviewer)
    elif op == "due" and task is not None and task.parent_id is None:
        svc.edit_task(task, {"title": task.title, "lead_department": task.lead_department_code,
                             "due_date": (task.due_date + timedelta(days=b % 5 - 2)).isoformat(),
                             "weight": 1 + b % 4}, by=_office(task.unit_id), version=task.version)
    elif op == "meeting":
        unit = _pick(units, a)
        office = _office(unit.id)
        m = msvc.create_meeting(unit, {"title": "会", "starts_at": (datetime.now() - timedelta(days=b % 40, hours=1))
                                       .strftime("%Y-%m-%dT%H:%M")}, by=office)
        for to in ("agenda_open", "agenda_locked", "held"):
            msvc.transition(m, to, by=office)
    elif op == "decision":
        m = _pick(list(db.session.scalars(select(Meeting).where(Meeting.status == "held").order_by(Meeting.id))), a)
        if m is not None:
            msvc.add_decision(m, {"text": f"d{b}", "lead_department": "edu"}, by=_office(m.unit_id))
    elif op == "notice" and task is not None and task.parent_id is not None:
        svc.send_notice(task, "督办", by=_office(db.session.get(Task, task.parent_id).unit_id))
    elif op == "respond":
        notice = _pick(list(db.session.scalars(select(SupervisionNotice).order_by(SupervisionNotice.id))), a)
        if notice is not None:
            svc.respond_notice(notice, "已办", by=_office(notice.task.unit_id))
    elif op == "activity":  # activities across months and categories, at any unit
        from portal.models import CATEGORY_CODES
        from portal.services import activities as asvc

        unit = _pick(units, a)
        asvc.create_activity(unit, {
            "title": f"a{a}", "category": CATEGORY_CODES[b % len(CATEGORY_CODES)], "lead_department": "edu",
            "start_date": (datetime.now().date() - timedelta(days=b * 3)).isoformat(),
            "participants": {"youth": b, "elders": a, "others": 1}, "volunteers": 1, "volunteer_hours": b / 4,
            "funds": b * 10}, by=_office(unit.id))
    elif op in ("activity_edit", "activity_delete"):
        from portal.models import Activity
        from portal.services import activities as asvc

        activity = _pick(list(db.session.scalars(select(Activity).order_by(Activity.id))), a)
        if activity is not None and op == "activity_edit":
            asvc.update_activity(activity, {"participants": {"elders": b}, "category": "care",
                                            "start_date": (activity.start_date - timedelta(days=31)).isoformat()},
                                 by=_office(activity.unit_id), version=activity.version, partial=True)
        elif activity is not None:
            asvc.delete_activity(activity, "重复", by=_office(activity.unit_id))
    elif op == "member":
        from portal.services import activities as asvc

        unit = _pick(units, a)
        asvc.add_member(unit, {"name": f"m{b}", "role": "volunteer" if b % 2 else "member", "kind": "veteran",
                               "joined_on": (datetime.now().date() - timedelta(days=b % 3)).isoformat()},
                        by=_office(unit.id))
    elif op == "member_leave":
        from portal.models import TeamMember
        from portal.services import activities as asvc

        member = _pick(list(db.session.scalars(select(TeamMember).where(TeamMember.left_on.is_(None))
                                               .order_by(TeamMember.id))), a)
        if member is not None:
            asvc.edit_member(member, {"name": member.name, "role": member.role, "kind": member.kind,
                                      "joined_on": member.joined_on.isoformat(),
                                      "left_on": (datetime.now().date() + timedelta(days=b % 3)).isoformat()},
                             by=_office(member.unit_id), version=member.version)
    elif op == "day":
        shift["days"] += 1 + b % 20  # midnight passes: the daily job runs
        from jobs.metrics import daily_overdue

        daily_overdue()


# --- a write lands while a refresh of the same unit is running --------------------------------

def test_a_write_during_a_running_refresh_is_not_lost(app, tree, people, run_in_app, run_jobs, monkeypatch):
    from portal.metrics import engine

    street = tree["410105001"].id
    task_id = run_in_app(lambda: svc.create_task(db.session.get(Unit, street), {
        "title": "街道任务", "lead_department": "edu", "due_date": "2099-01-01"},
        by=db.session.get(User, people["office-410105001"].id)).id)
    run_jobs()
    run_in_app(lambda: metrics.mark_dirty([street]))  # a write whose refresh is about to run ...
    computed, go = threading.Event(), threading.Event()
    original = engine.own_values
    refresher = {}

    def paused_own_values(*args, **kwargs):
        values = original(*args, **kwargs)
        if threading.current_thread().name == "refresher":
            computed.set()  # ... has read the rows and waits here, before writing its figures
            assert go.wait(30)
        return values
    monkeypatch.setattr(engine, "own_values", paused_own_values)

    def refresh():
        with app.app_context():
            metrics.claim([street])
            db.session.commit()
            metrics.refresh_chain(street)
            db.session.commit()
            refresher["dirty_after"] = metrics.is_dirty(street)
            db.session.remove()
    writer_done = threading.Event()

    def write():  # the street reports progress while the refresh runs
        run_in_app(lambda: svc.report_progress(db.session.get(Task, task_id), {"percent": 50},
                                               by=db.session.get(User, people["edu-410105001"].id)))
        writer_done.set()
    r = threading.Thread(target=refresh, name="refresher")
    r.start()
    assert computed.wait(30)
    w = threading.Thread(target=write, name="writer")
    w.start()
    landed_during_refresh = writer_done.wait(3)
    go.set()
    r.join(30)
    w.join(30)
    assert writer_done.is_set()
    if ON_POSTGRES:
        # The write committed while the refresh was running; the refresh left the unit dirty.
        assert landed_during_refresh and refresher["dirty_after"] is True
    run_jobs()
    figures = run_in_app(lambda: metrics.read(db.session.get(Unit, tree["41"].id)))
    assert figures["metrics"]["reports.received"] == 1 and figures["metrics"]["tasks.progress_weighted"] == 50
    assert figures["stale"] is False
    assert run_in_app(metrics.stored_values) == run_in_app(_expected_table)


# --- the chain refresh sums only what changed ------------------------------------------------

def _street_task(run_in_app, run_jobs, people, tree):
    """A provincial task passed down to the streets, and an activity at the district (figures of
    the province that a street's report leaves alone); every figure refreshed."""
    from portal.clock import local_today
    from portal.services import activities as asvc

    office = lambda: db.session.get(User, people["office-41"].id)  # noqa: E731
    root = run_in_app(lambda: svc.create_task(db.session.get(Unit, tree["41"].id), {
        "title": "全省任务", "lead_department": "edu", "weight": 2, "due_date": "2099-01-01"}, by=office()).id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, root), "streets", by=office()))
    run_in_app(lambda: asvc.create_activity(db.session.get(Unit, tree["410105"].id), {
        "title": "讲座", "category": "care", "lead_department": "edu",
        "start_date": local_today().isoformat(), "participants": {"youth": 3, "elders": 4, "others": 1},
        "volunteers": 1, "volunteer_hours": 2, "funds": 30}, by=db.session.get(User, people["office-410105"].id)))
    run_jobs()
    return run_in_app(lambda: db.session.scalar(select(Task.id).where(
        Task.root_id == root, Task.unit_id == tree["410105001"].id)))


def _changes(before: dict, after: dict) -> dict:
    """{unit_id: {(metric, period)}} of the stored figures that differ."""
    out: dict = {}
    for unit_id, key, period in set(before) | set(after):
        if before.get((unit_id, key, period)) != after.get((unit_id, key, period)):
            out.setdefault(unit_id, set()).add((key, period))
    return out


def test_a_street_report_reaches_every_ancestor_and_changes_nothing_else(app, tree, people, run_in_app,
                                                                          run_jobs):
    from portal.queue import discard_pending

    street = tree["410105001"].id
    chain = [street, tree["410105"].id, tree["4101"].id, tree["41"].id]
    instance = _street_task(run_in_app, run_jobs, people, tree)
    before = run_in_app(metrics.stored_values)
    assert before == run_in_app(_expected_table)
    province_before = run_in_app(lambda: metrics.read(db.session.get(Unit, tree["41"].id)))

    def report():
        svc.report_progress(db.session.get(Task, instance), {"percent": 40},
                            by=db.session.get(User, people["edu-410105001"].id))
        discard_pending()  # its refresh runs below
    run_in_app(report)
    assert run_in_app(metrics.dirty_unit_ids) == [street]
    touched = run_in_app(lambda: metrics.refresh_chain(street))
    after = run_in_app(metrics.stored_values)
    # Every stored figure equals a recomputation: the province's progress moved with the street's ...
    assert after == run_in_app(_expected_table)
    province = run_in_app(lambda: metrics.read(db.session.get(Unit, tree["41"].id)))
    assert province["metrics"]["tasks.progress_weighted"] == province_before["metrics"]["tasks.progress_weighted"] + 80
    assert province["metrics"]["reports.received"] == province_before["metrics"]["reports.received"] + 1
    assert province["metrics"]["activities.count"] == province_before["metrics"]["activities.count"] == 1
    # ... the same figures changed at the street and each of its ancestors, nothing anywhere else;
    # each written once as the street's own and once per level as a subtree.
    changes = _changes(before, after)
    assert set(changes) == set(chain)
    assert ("tasks.progress_weighted", "current") in changes[street]
    assert all(changes[unit_id] == changes[street] for unit_id in chain)
    assert touched == len(changes[street]) * (1 + len(chain))


def test_figures_gone_to_zero_at_a_street_leave_its_ancestors(app, tree, people, run_in_app, run_jobs):
    from portal.queue import discard_pending

    street = tree["410105001"].id
    instance = _street_task(run_in_app, run_jobs, people, tree)
    before = run_in_app(metrics.stored_values)
    assert before[(tree["41"].id, "tasks.total", "current")][1] == 3

    def cancel():
        svc.cancel_task(db.session.get(Task, instance), "撤销", by=db.session.get(User, people["office-41"].id))
        discard_pending()
    run_in_app(cancel)
    run_in_app(lambda: metrics.refresh_chain(street))
    after = run_in_app(metrics.stored_values)
    assert after == run_in_app(_expected_table)
    # The street's task figures are gone (zero), each ancestor counts one task fewer.
    assert (street, "tasks.total", "current") not in after
    assert after[(tree["41"].id, "tasks.total", "current")][1] == 2
    assert after[(tree["410105"].id, "tasks.total", "current")][1] == 1
    assert run_in_app(lambda: metrics.read(db.session.get(Unit, tree["4101"].id)))["metrics"]["tasks.total"] == 2


def test_a_refresh_with_nothing_changed_writes_and_sums_no_figure(app, tree, people, run_in_app, run_jobs):
    from sqlalchemy import event, update

    from portal.models import MetricState, MetricValue
    from portal.queue import discard_pending

    street = tree["410105001"].id
    chain = {street, tree["410105"].id, tree["4101"].id, tree["41"].id}
    _street_task(run_in_app, run_jobs, people, tree)
    mv, ms = MetricValue.__table__, MetricState.__table__
    rows = lambda: run_in_app(lambda: set(db.session.execute(select(mv)).all()))  # noqa: E731
    before = rows()
    assert before

    def mark():  # a write that changes no figure (as an edit of a task's title)
        metrics.mark_dirty([street])
        discard_pending()
        db.session.execute(update(ms).values(refreshed_at=datetime(2001, 1, 1)))
    run_in_app(mark)
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if "metric_values" in statement and not statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            touched = metrics.refresh_chain(street)
            db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
            db.session.remove()
    assert touched == 0 and statements == []
    assert rows() == before  # no figure rewritten: every computed_at as it was
    # The state is kept all the same: the street is no longer dirty, the chain says when it was refreshed.
    assert run_in_app(metrics.dirty_unit_ids) == []
    refreshed = dict(run_in_app(lambda: db.session.execute(select(ms.c.unit_id, ms.c.refreshed_at)).all()))
    assert {u for u, at in refreshed.items() if at != datetime(2001, 1, 1)} == chain
