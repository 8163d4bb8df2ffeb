"""Henan scale (issue 9): the lists' statement, the capped count, the tree cascade, one rounding
rule, and the worker that runs jobs without a fork."""
from __future__ import annotations

import os
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal import access
from portal.extensions import db
from portal.models import Notification, Task, Unit, User
from portal.services import tasks as svc
from tests.conftest import _test_config, api_token, run_worker_burst

TODAY = date(2026, 11, 30)


def _user(name: str) -> User:
    return db.session.scalar(select(User).where(User.username == name))


def _old_task_list(unit, user, *, today, scope="unit", status="", overdue=False):
    """The statement task_list had before issue 9: a join to units ordered by the unit's code,
    and the subtree predicate twice (subtree and visibility)."""
    stmt = select(Task).join(Unit, Unit.id == Task.unit_id)
    if scope == "subtree":
        stmt = stmt.where(Unit.subtree_clause(unit), access.visible_units_clause(user))
    else:
        stmt = stmt.where(Task.unit_id == unit.id)
    if status:
        stmt = stmt.where(Task.status == status)
    if overdue:
        stmt = stmt.where(Task.overdue_clause(today))
    return stmt.order_by(Task.due_date, Unit.code, Task.id)


@pytest.fixture
def many_tasks(tree, people, run_in_app, run_jobs):
    """Tasks across the tree with shared due dates (a cascaded task's instances share one), some
    overdue, some accepted."""
    def make():
        province = _user("office-41")
        root = svc.create_task(Unit.by_code("41"), {"title": "全省任务", "lead_department": "edu",
                                                    "due_date": TODAY - timedelta(days=3)}, by=province)
        for code in ("4102", "4101", "410105", "410102", "410105002", "410105001", "410102001", "42"):
            unit = Unit.by_code(code)
            office = _user(f"office-{code}")
            for n, days in enumerate((-3, -3, 5, 40)):
                task = svc.create_task(unit, {"title": f"{code}任务{n}", "lead_department": "civil" if n else "edu",
                                              "due_date": TODAY + timedelta(days=days)}, by=office)
                if n == 3:
                    task.status = "accepted"
        return root.id
    root_id = run_in_app(make)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, root_id), "tree", by=_user("office-41")))
    run_jobs()
    return root_id


@pytest.mark.parametrize("username,code", [("office-41", "41"), ("viewer-4101", "4101"), ("office-410105", "410105"),
                                           ("edu-410105", "410105"), ("office-410105001", "410105001")])
def test_lists_give_the_same_rows_in_the_same_order_as_before(many_tasks, run_in_app, username, code):
    def compare():
        user, unit = _user(username), Unit.by_code(code)
        for kwargs in ({"scope": "subtree"}, {"scope": "subtree", "overdue": True}, {"scope": "unit"},
                       {"scope": "subtree", "status": "accepted"}):
            new = [t.id for t in db.session.scalars(svc.task_list(unit, user, today=TODAY, **kwargs))]
            old = [t.id for t in db.session.scalars(_old_task_list(unit, user, today=TODAY, **kwargs))]
            assert new == old, kwargs
            assert new or kwargs.get("status"), kwargs  # the comparison is not between two empty lists
    run_in_app(compare)


def test_capped_count_is_exact_below_the_cap_and_says_more_above_it(app, many_tasks):
    from portal.pagination import paginate

    with app.test_request_context("/"):
        unit, user = Unit.by_code("41"), _user("office-41")
        stmt = svc.task_list(unit, user, today=TODAY, scope="subtree")
        rows = len(db.session.scalars(stmt).all())
        assert rows > 12
        exact = paginate(stmt, per_page=1, cap=rows)          # at the cap: exact
        assert (exact.total, exact.capped) == (rows, False)
        above = paginate(stmt, per_page=1, cap=rows - 1)      # one row past the cap
        assert (above.total, above.capped) == (rows - 1, True)
        low = paginate(stmt, per_page=1, cap=5)
        assert (low.total, low.capped, low.has_next, len(low.items)) == (5, True, True, 1)
        # Deep pages still know whether a next page exists.
        deep = paginate(stmt, per_page=2, page=5, cap=3)
        assert deep.capped is True and deep.has_next is True
        last = paginate(stmt, per_page=1, page=rows, cap=3)
        assert last.capped is False and last.has_next is False and last.total == rows
        db.session.remove()


def test_the_only_root_lists_its_subtree_without_a_filter_and_the_same_rows(many_tasks, run_in_app):
    """With 湖北省 moved below 河南省 (its path too), 河南省 is the tree's one root: its subtree list
    has no unit filter, and gives the rows the old statement gives; a city's still filters."""
    def move():
        hubei = Unit.by_code("42")
        hubei.parent_id, hubei.path = Unit.by_code("41").id, "/41/42/"
    run_in_app(move)

    def compare():
        unit, city = Unit.by_code("41"), Unit.by_code("4101")
        for username in ("office-41", "viewer-41"):
            user = _user(username)
            for kwargs in ({"scope": "subtree"}, {"scope": "subtree", "overdue": True}):
                stmt = svc.task_list(unit, user, today=TODAY, **kwargs)
                assert "unit_id" not in str(stmt.whereclause)  # None, or the overdue filter alone
                new = [t.id for t in db.session.scalars(stmt)]
                old = [t.id for t in db.session.scalars(_old_task_list(unit, user, today=TODAY, **kwargs))]
                assert new == old and new, (username, kwargs)
            assert any(t.unit_code == "42" for t in db.session.scalars(svc.task_list(unit, user, today=TODAY,
                                                                                     scope="subtree")))
            city_stmt = svc.task_list(city, user, today=TODAY, scope="subtree")
            assert "unit_id" in str(city_stmt.whereclause)
            assert [t.id for t in db.session.scalars(city_stmt)] == [
                t.id for t in db.session.scalars(_old_task_list(city, user, today=TODAY, scope="subtree"))]
    run_in_app(compare)


def test_a_page_that_is_not_full_gives_the_total_without_a_count(app, many_tasks, monkeypatch):
    import portal.pagination
    from portal.pagination import paginate

    with app.test_request_context("/"):
        stmt = svc.task_list(Unit.by_code("41"), _user("office-41"), today=TODAY, scope="subtree")
        rows = len(db.session.scalars(stmt).all())
        full = paginate(stmt, per_page=rows - 1)  # a full first page: counted
        assert (full.total, full.capped, full.has_next) == (rows, False, True)

        def no_count(*args):
            raise AssertionError("counted")
        monkeypatch.setattr(portal.pagination, "capped_count", no_count)
        last = paginate(stmt, per_page=rows - 1, page=2)
        assert (last.total, last.capped, last.has_next, len(last.items)) == (rows, False, False, 1)
        one = paginate(stmt, per_page=rows + 5)
        assert (one.total, one.capped, one.has_next, one.pages) == (rows, False, False, 1)
        empty = paginate(stmt.where(Task.title == "没有这个任务"))
        assert (empty.total, empty.capped, empty.items) == (0, False, [])


def test_capped_count_counts_joined_and_distinct_statements_as_their_rows(app, many_tasks):
    """The count reads no column of the rows, but keeps their joins, filters and DISTINCT."""
    from portal.pagination import capped_count

    with app.app_context():
        joined = select(Task).join(Unit, Unit.id == Task.unit_id).where(Unit.code == "410105001")
        assert capped_count(joined, 100) == len(db.session.scalars(joined).all()) == 5
        distinct = select(Task.unit_id).distinct()
        assert capped_count(distinct, 100) == len(db.session.scalars(distinct).all()) == 9
        assert capped_count(distinct, 3) == 4  # counted no further than the cap and one


def test_task_page_lists_children_by_unit_code_and_counts_only_what_the_reader_may_open(
        client, tree, people, run_in_app, run_jobs):
    """A reader above sees every child in unit-code order (no filter: the index's order); a
    liaison of a street sees only its own unit's instance, and the count says one."""
    from tests.conftest import Browser

    def make():
        task = svc.create_task(Unit.by_code("410105"), {"title": "区级任务", "lead_department": "edu",
                                                        "due_date": TODAY}, by=_user("office-410105"))
        svc.cascade_task(task, "children", by=_user("office-410105"))
        return task.id
    task_id = run_in_app(make)
    run_jobs()
    children = run_in_app(lambda: [(t.unit_code, t.unit.name) for t in db.session.scalars(
        select(Task).where(Task.parent_id == task_id))])
    assert len(children) >= 2
    in_order = [code for code, _name in sorted(children)]
    for username, expected in (("office-410105", in_order), ("viewer-4101", in_order)):
        shown = run_in_app(lambda: [t.unit_code for t in db.session.scalars(
            access.visible_children(_user(username), db.session.get(Task, task_id)))])
        assert shown == expected, username
    assert run_in_app(lambda: [t.unit_code for t in db.session.scalars(
        access.visible_children(_user("edu-410105"), db.session.get(Task, task_id)))]) == []
    b = Browser(client)
    b.login("office-410105")
    page = b.get(f"/district/410105/tasks/{task_id}/?lang=en").get_data(as_text=True)
    table = page[page.index('id="children-table"'):]
    positions = [table.index(name) for _code, name in sorted(children)]
    assert positions == sorted(positions)


def test_capped_count_on_the_page_and_in_the_api(app, client, many_tasks, monkeypatch):
    import portal.pagination

    monkeypatch.setattr(portal.pagination, "COUNT_CAP", 5)
    headers = api_token(client, "office-41")
    body = client.get("/api/v1/units/41/tasks?scope=subtree&per_page=1", headers=headers).get_json()
    assert body["total_capped"] is True and body["total"] == 5
    body = client.get("/api/v1/units/410105001/tasks?per_page=1", headers=headers).get_json()
    assert body["total_capped"] is False and body["total"] == 5  # the street's own 4 and the tree task's
    from tests.conftest import Browser

    b = Browser(client)
    b.login("office-41")
    monkeypatch.setattr(portal.pagination, "COUNT_CAP", 2)
    monkeypatch.setitem(app.config, "PAGE_SIZE", 5)
    page = b.get("/province/41/tasks/?scope=subtree&lang=en").get_data(as_text=True)
    assert "More than 10 in all, page 1" in page  # 5 a page: counted to the next page's end
    monkeypatch.setattr(portal.pagination, "COUNT_CAP", 10_000)
    page = b.get("/province/41/tasks/?scope=subtree&lang=en").get_data(as_text=True)
    assert "36 in all, page 1 of 8" in page


def test_cascade_down_the_whole_tree_gives_the_instances_of_level_by_level(tree, people, run_in_app, run_jobs):
    def issue(title):
        return svc.create_task(Unit.by_code("41"), {"title": title, "lead_department": "edu",
                                                    "co_departments": ["civil"], "due_date": TODAY}, by=_user("office-41")).id
    by_level, by_tree = run_in_app(lambda: issue("逐级")), run_in_app(lambda: issue("一次到底"))
    frontier = [by_level]
    while frontier:  # each office passes its instance to the units directly below
        nxt = []
        for task_id in frontier:
            task = run_in_app(lambda: (lambda t: (t.unit.code, db.session.scalar(select(func.count(Unit.id)).where(
                Unit.parent_id == t.unit_id))))(db.session.get(Task, task_id)))
            if task[1]:  # a unit with units below it
                run_in_app(lambda: svc.cascade_task(db.session.get(Task, task_id), "children",
                                                    by=_user(f"office-{task[0]}")))
                run_jobs()
                nxt += run_in_app(lambda: list(db.session.scalars(select(Task.id).where(Task.parent_id == task_id))))
        frontier = nxt
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, by_tree), "tree", by=_user("office-41")))
    run_jobs()

    def shape(root_id):
        rows = db.session.scalars(select(Task).where(Task.root_id == root_id)).all()
        by_id = {t.id: t for t in rows}
        return sorted((t.unit.code, by_id[t.parent_id].unit.code if t.parent_id else None, t.status, t.version,
                       t.lead_department_code, tuple(t.co_department_codes), t.due_date, t.unit_code, t.description,
                       t.weight, t.progress, t.target_name, t.target_unit, t.target_value, t.counted_category,
                       t.actual_value, t.decision_id, t.cancel_reason) for t in rows)
    level_shape, tree_shape = run_in_app(lambda: shape(by_level)), run_in_app(lambda: shape(by_tree))
    assert len(tree_shape) == 8  # the province and the 7 units below it in Henan
    assert tree_shape == level_shape
    # Each receiving office and liaison heard of its instance, once.
    def heard():
        return db.session.scalar(select(func.count(Notification.id)).where(
            Notification.kind == "task_assigned", Notification.link == f"/street/410105001/tasks/"
            f"{db.session.scalar(select(Task.id).where(Task.root_id == by_tree, Task.unit_code == '410105001'))}/"))
    assert run_in_app(heard) == 3  # the street's office and its edu and civil liaisons
    # Run again: no second notification.
    from jobs.tasks import _notify_assigned

    def count():
        return db.session.scalar(select(func.count(Notification.id)))
    before = run_in_app(count)
    run_in_app(lambda: _notify_assigned(db.session.get(Task, by_tree),
                                        list(svc.instances_below(db.session.get(Task, by_tree)).values())))
    assert run_in_app(count) == before


def test_rounding_is_half_up_everywhere(tree, people, run_in_app):
    from portal.blueprints.tasks import format_quantity
    from portal.formatting import format_percent, percent_of, round_half_up

    assert round_half_up(Decimal("10.005")) == Decimal("10.01")      # half-to-even gives 10.00
    assert round_half_up(Decimal("0.125")) == Decimal("0.13")
    assert format_percent(Decimal("12.25")) == "12.3%"               # format(…, ".1f") gives 12.2%
    assert format_quantity(Decimal("2.345")) == "2.35"
    assert percent_of(1, 8, scale=100) == 12.5 and percent_of(1, 16) == 6.3

    def rollup_tie():
        office = _user("office-410105")
        parent = svc.create_task(Unit.by_code("410105"), {"title": "取整", "lead_department": "edu",
                                                          "due_date": TODAY}, by=office)
        for code, progress in (("410105001", "10.01"), ("410105002", "10.00")):
            db.session.add(Task(unit_id=Unit.by_code(code).id, parent_id=parent.id, root_id=parent.id, title="取整",
                                lead_department_code="edu", co_department_codes=[], due_date=TODAY,
                                progress=Decimal(progress), actual_value=Decimal(progress), status="in_progress"))
        db.session.flush()
        svc.rollup(parent.id)
        return parent.progress
    assert run_in_app(rollup_tie) == Decimal("10.01")                # (10.01 + 10.00) / 2 = 10.005


# --- the worker: jobs in its own process --------------------------------------------------------

REDIS = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/7"
#: Queue names of this run: two runs on one Redis (CI beside a developer) never take each other's jobs.
RUN = str(os.getpid())


def worker_pid() -> int:
    from jobs import portal_job

    return portal_job(lambda: os.getpid())()


def dirty_then_fail() -> None:
    """A job that leaves the session dirty (a row flushed, on PostgreSQL an aborted transaction) and raises."""
    from jobs import portal_job

    def run():
        db.session.add(Unit(code="999999", name="不应保存", tier="street", path="/999999/"))
        db.session.flush()
        if db.engine.dialect.name == "postgresql":
            from sqlalchemy import text
            db.session.execute(text("SELECT 1/0"))
        raise RuntimeError("poisoned")
    return portal_job(run)()


def clean_read() -> tuple[int, int]:
    from jobs import portal_job

    return portal_job(lambda: (os.getpid(), db.session.scalar(select(func.count(Unit.id)).where(
        Unit.code == "999999"))))()


def hang() -> None:
    import time
    time.sleep(60)


def _queue(name):
    from portal import create_app
    from portal.queue import rq_queue

    app = create_app(dict(_test_config(), REDIS_URL=REDIS, RQ_QUEUE=name))
    queue = rq_queue(app)
    queue.empty()
    for registry in (queue.failed_job_registry, queue.finished_job_registry):
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)
    return queue


def test_worker_runs_jobs_in_its_own_process_and_a_failed_job_does_not_poison_the_next(app, tree):
    queue = _queue("portal-test-nofork-" + RUN)
    first = queue.enqueue("tests.test_scale.worker_pid")
    bad = queue.enqueue("tests.test_scale.dirty_then_fail")
    after = queue.enqueue("tests.test_scale.clean_read")
    result = run_worker_burst({"REDIS_URL": REDIS, "RQ_QUEUE": "portal-test-nofork-" + RUN})
    assert result.returncode == 0, result.stderr[-3000:]
    first.refresh(), bad.refresh(), after.refresh()
    failure = bad.latest_result().exc_string  # PostgreSQL: the aborted transaction; SQLite: the raise
    assert bad.get_status() == "failed" and ("poisoned" in failure or "division by zero" in failure)
    pid, leaked = after.return_value()
    assert pid == first.return_value()       # the same process ran both: no fork per job
    assert leaked == 0                        # the failed job's flushed row was rolled back


def test_worker_stops_a_job_at_its_timeout_and_takes_the_next(app, tree):
    queue = _queue("portal-test-timeout-" + RUN)
    stuck = queue.enqueue("tests.test_scale.hang", job_timeout=2)
    after = queue.enqueue("tests.test_scale.clean_read")
    result = run_worker_burst({"REDIS_URL": REDIS, "RQ_QUEUE": "portal-test-timeout-" + RUN})
    assert result.returncode == 0, result.stderr[-3000:]
    stuck.refresh(), after.refresh()
    assert stuck.get_status() == "failed" and "JobTimeoutException" in stuck.latest_result().exc_string
    assert after.return_value()[1] == 0


def test_worker_recycles_after_max_jobs_and_above_max_memory(app, tree):
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ, REDIS_URL=REDIS, RQ_QUEUE="portal-test-recycle-" + RUN)
    env.setdefault("SECRET_KEY", _test_config()["SECRET_KEY"])
    queue = _queue("portal-test-recycle-" + RUN)
    jobs = [queue.enqueue("tests.test_scale.worker_pid") for _ in range(3)]
    run = subprocess.run([sys.executable, "-m", "jobs.worker", "--burst", "--max-jobs", "2"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stderr[-3000:]     # stopped to be replaced
    assert queue.count == 1                            # the third job waits for the next worker
    run = subprocess.run([sys.executable, "-m", "jobs.worker", "--burst", "--max-memory-mb", "1"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 3 and "stopping to be replaced" in run.stderr, run.stderr[-3000:]
    for job in jobs:
        job.refresh()
    assert [job.get_status() for job in jobs] == ["finished"] * 3


def test_a_stopping_worker_ends_its_listener_thread_at_once(app, monkeypatch):
    """RQ stopped the pub/sub listener thread after its UNSUBSCRIBE and joined it for up to a
    second: a thread that had not started yet (as in a worker that found its queue empty) raised
    its running flag again when it started and then waited 60 s for a subscription, so every such
    worker's exit took a second. The portal's worker lets it start, then stops it."""
    import time

    import redis.client
    from redis import Redis

    from jobs.worker import PortalWorker

    class StartsLate(redis.client.PubSubWorkerThread):
        def run(self):
            time.sleep(0.05)
            super().run()

    for late in (True, False):
        if late:
            monkeypatch.setattr(redis.client, "PubSubWorkerThread", StartsLate)
        else:
            monkeypatch.undo()
        worker = PortalWorker(["portal-test-listener-" + RUN], connection=Redis.from_url(REDIS))
        worker.subscribe()
        if not late:
            time.sleep(0.05)  # listening
        worker.unsubscribe()
        assert not worker.pubsub_thread.is_alive(), "the listener thread outlived its worker"
