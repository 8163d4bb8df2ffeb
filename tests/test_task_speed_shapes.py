"""The task page and the supervision list read less at scale (issue 9) and show the same: the
children's table (its rows, order, links, states and overdue marks) and their counts by state
whether every child is shown or only the first ``CHILDREN_SHOWN``, "passed down" for a reader who
sees none of the children, the leaf figures of a root task and of an instance below it (a report
of 0 % counts as reported, a cancelled leaf does not count), and the overdue and due-soon lists'
rows and order."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Task, Unit, User
from portal.services import tasks as tsvc

STREETS = {"410102001": "林山寨街道", "410105001": "经八路街道", "410105002": "花园路街道"}


def _as(new_browser, name):
    b = new_browser()
    assert b.login(name).status_code == 302, name
    return b


def _user(people, name):
    return db.session.get(User, people[name].id)


def _today(run_in_app):
    from portal.clock import local_today

    return run_in_app(local_today)


def _issue(run_in_app, people, code, *, due, title="速度测试任务"):
    return run_in_app(lambda: tsvc.create_task(Unit.by_code(code), {
        "title": title, "lead_department": "edu", "co_departments": [], "due_date": due.isoformat()},
        by=_user(people, f"office-{code}")).id)


def _cascade(run_in_app, run_jobs, people, task_id, to, by):
    run_in_app(lambda: tsvc.cascade_task(db.session.get(Task, task_id), to, by=_user(people, by)))
    run_jobs()
    return run_in_app(lambda: {code: tid for tid, code in db.session.execute(
        select(Task.id, Unit.code).join(Unit, Unit.id == Task.unit_id).where(Task.root_id == task_id, Task.id != task_id)).all()})


def _rows(page):
    """(link, unit name, overdue badge shown, state) of each row of the children's table, in order."""
    table = re.search(r'<table[^>]*id="children-table">(.*?)</table>', page, re.S).group(1)
    return [(link, name, "逾期" in cell or "Overdue" in cell, state.strip()) for link, name, cell, state in re.findall(
        r'<tr>\s*<td><a href="([^"]+)">([^<]+)</a>(.*?)</td>\s*<td>([^<]*)</td>', table, re.S)]


@pytest.fixture
def province_task(run_in_app, run_jobs, people):
    """A provincial task due yesterday passed to the three streets: 410105002 reported 0 %, the
    instance of 410102001 cancelled, 410105001 still assigned."""
    task_id = _issue(run_in_app, people, "41", due=_today(run_in_app) - timedelta(days=1))
    instances = _cascade(run_in_app, run_jobs, people, task_id, "streets", "office-41")
    assert set(instances) == set(STREETS)
    run_in_app(lambda: tsvc.report_progress(db.session.get(Task, instances["410105002"]), {"percent": 0},
                                            by=_user(people, "office-410105002")))
    run_in_app(lambda: tsvc.cancel_task(db.session.get(Task, instances["410102001"]), "调整",
                                        by=_user(people, "office-41")))
    run_jobs()
    return task_id, instances


def test_the_children_table_and_its_counts_whether_all_children_are_shown_or_not(
        new_browser, province_task, monkeypatch):
    from portal.blueprints.tasks import routes

    task_id, instances = province_task
    office = _as(new_browser, "office-41")
    url = f"/province/41/tasks/{task_id}/?lang=en"
    page = office.get(url).get_data(as_text=True)
    expected = [(f"/province/41/tasks/{instances[code]}/", name, overdue, state) for code, name, overdue, state in (
        ("410102001", STREETS["410102001"], False, "Cancelled"),  # cancelled: not overdue
        ("410105001", STREETS["410105001"], True, "Assigned"),
        ("410105002", STREETS["410105002"], True, "In progress"))]
    assert _rows(page) == expected
    assert "Passed down to 3 units" in page
    assert "Assigned: 1 · In progress: 1 · Cancelled: 1" in page
    assert "The first" not in page
    # The leaves not cancelled, and those that reported (0 % is a report).
    assert re.search(r'id="progress-explained">[0-9.]+% across 2 units, 1 reported</div>', page)

    # Only the first two shown: the counts are still over all three (the grouped count).
    monkeypatch.setattr(routes, "CHILDREN_SHOWN", 2)
    page = office.get(url).get_data(as_text=True)
    assert _rows(page) == expected[:2]
    assert "Passed down to 3 units" in page
    assert "Assigned: 1 · In progress: 1 · Cancelled: 1" in page
    assert "The first 2 of 3 units, by code." in page


def test_a_liaison_who_sees_none_of_the_children_still_sees_the_task_passed_down(
        new_browser, run_in_app, run_jobs, people):
    task_id = _issue(run_in_app, people, "410105", due=_today(run_in_app) + timedelta(days=30))
    _cascade(run_in_app, run_jobs, people, task_id, "children", "office-410105")
    page = _as(new_browser, "edu-410105").get(f"/district/410105/tasks/{task_id}/").get_data(as_text=True)
    assert 'id="children-table"' not in page  # the streets' instances are not the liaison's to open
    assert "该任务已逐级分解下发，其进度由下级单位汇总。" in page
    assert 'id="report-form"' not in page

    # A task of the district not passed down: the liaison reports on it.
    own = _issue(run_in_app, people, "410105", due=_today(run_in_app) + timedelta(days=30), title="本级任务")
    page = _as(new_browser, "edu-410105").get(f"/district/410105/tasks/{own}/").get_data(as_text=True)
    assert 'id="report-form"' in page and "该任务已逐级分解下发" not in page


def test_the_leaf_figures_of_an_instance_below_count_only_its_own_subtree(new_browser, run_in_app, run_jobs, people):
    task_id = _issue(run_in_app, people, "4101", due=_today(run_in_app) + timedelta(days=30))
    instances = _cascade(run_in_app, run_jobs, people, task_id, "tree", "office-4101")
    assert set(instances) == {"410105", "410102", *STREETS}
    run_in_app(lambda: tsvc.report_progress(db.session.get(Task, instances["410105001"]), {"percent": 30},
                                            by=_user(people, "office-410105001")))
    run_jobs()
    office = _as(new_browser, "office-4101")
    city = office.get(f"/city/4101/tasks/{task_id}/?lang=en").get_data(as_text=True)
    assert re.search(r'id="progress-explained">[0-9.]+% across 3 units, 1 reported</div>', city)
    district = office.get(f"/district/410105/tasks/{instances['410105']}/?lang=en").get_data(as_text=True)
    assert re.search(r'id="progress-explained">[0-9.]+% across 2 units, 1 reported</div>', district)
    other = office.get(f"/district/410102/tasks/{instances['410102']}/?lang=en").get_data(as_text=True)
    assert re.search(r'id="progress-explained">0.0% across 1 units, 0 reported</div>', other)
    # The district's children: its two streets, by code, with their states.
    assert [(name, state) for _link, name, _overdue, state in _rows(district)] == [
        (STREETS["410105001"], "In progress"), (STREETS["410105002"], "Assigned")]


def test_the_overdue_and_due_soon_lists_keep_their_rows_and_order(new_browser, run_in_app, run_jobs, people):
    """Tasks in every state, due before and after today, at several units: the subtree list filtered
    to the overdue ones (open and past due) and to those due within 7 days, ordered by due date,
    unit code and id, as the province's office sees them."""
    today = _today(run_in_app)
    plan = [("410105001", -3), ("410105", -3), ("4101", -10), ("410105002", -1), ("41", -3), ("410102001", 2),
            ("410105", 5), ("41", 0), ("4102", -20), ("410105001", 9)]
    ids = [_issue(run_in_app, people, code, due=today + timedelta(days=days), title=f"列表{i}")
           for i, (code, days) in enumerate(plan)]
    # Some leave the open states: accepted (reported, submitted, accepted) and cancelled.

    def close(task_id, how):
        def act():
            task = db.session.get(Task, task_id)
            office = _user(people, f"office-{task.unit.code}")
            if how == "cancel":
                tsvc.cancel_task(task, "不再执行", by=office)
                return
            reporter = _user(people, f"edu-{task.unit.code}")  # the office reviews what its liaison reported
            tsvc.report_progress(task, {"percent": 100}, by=reporter)
            tsvc.submit_task(task, by=reporter)
            if how == "accept":
                tsvc.review_task(task, "accept", "", by=office)
        run_in_app(act)
    close(ids[1], "accept")   # due 3 days ago, accepted: not overdue
    close(ids[2], "cancel")   # due 10 days ago, cancelled: not overdue
    close(ids[3], "submit")   # submitted and waiting for review: still open, overdue
    run_jobs()

    def expected(keep):
        rows = run_in_app(lambda: [(t.due_date, t.unit_code, t.id) for t in db.session.scalars(select(Task))
                                   if t.id in ids and keep(t)])
        return [task_id for _due, _code, task_id in sorted(rows)]

    overdue = expected(lambda t: t.is_overdue(today))
    soon = expected(lambda t: t.status in ("assigned", "in_progress", "submitted", "returned")
                    and today <= t.due_date <= today + timedelta(days=7))
    assert len(overdue) == 4 and len(soon) == 3

    office = _as(new_browser, "office-41")

    def listed(query):
        page = office.get(f"/province/41/tasks/?scope=subtree&{query}").get_data(as_text=True)
        return [int(i) for i in re.findall(r'class="task-row" data-task-id="(\d+)"', page)]

    assert listed("overdue=1") == overdue
    assert listed("due_within=7") == soon
    assert listed("overdue=1&page=2") == []
