"""Upward aggregation: each metric's definition on a hand-built example, the API and
its access rules, the daily refresh, and the rounding rule."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal import metrics
from portal.clock import local_now, local_today
from portal.extensions import db
from portal.formatting import percent_of
from portal.models import Meeting, Task, Unit, User
from portal.services import meetings as msvc
from portal.services import tasks as svc
from tests.conftest import api_token


def _user(people, name):
    return db.session.get(User, people[name].id)


def _unit(code):
    return Unit.by_code(code)


def _instance(task_id, code):
    return db.session.scalar(select(Task).where(Task.root_id == task_id, Task.unit_id == _unit(code).id))


@pytest.fixture
def example(small_tasks, people, run_in_app, run_jobs):
    """The hand-built example every definition is pinned on:

    * task A (weight 2) from the province straight to its three streets: 410105001 reports 60 %, submits
      and is accepted; 410105002 reports 40 % and has an open supervision notice; 410102001 does nothing;
    * task B (weight 1) of district 410105 itself, due yesterday: overdue;
    * task C of district 410105, cancelled: counted nowhere;
    * a meeting of 410105 held an hour ago, with one open decision.
    """
    made = small_tasks(titles=("A", "B"), b_co_departments=())
    today, a = made["today"], made["a"]
    c = run_in_app(lambda: svc.create_task(_unit("410105"), {"title": "C", "lead_department": "edu", "due_date": (
        today + timedelta(days=30)).isoformat()}, by=_user(people, "office-410105")).id)
    run_in_app(lambda: svc.cancel_task(db.session.get(Task, c), "不再需要", by=_user(people, "office-410105")))
    run_in_app(lambda: svc.send_notice(_instance(a, "410105002"), "请加快进度", by=_user(people, "office-41")))

    def meeting():
        starts = local_now() - timedelta(hours=1)
        m = msvc.create_meeting(_unit("410105"), {"title": "联席会议", "starts_at": starts.strftime("%Y-%m-%dT%H:%M")},
                                by=_user(people, "office-410105"))
        for to in ("agenda_open", "agenda_locked", "held"):
            msvc.transition(m, to, by=_user(people, "office-410105"))
        msvc.add_decision(m, {"text": "建立社区学校", "lead_department": "edu"}, by=_user(people, "office-410105"))
        return m.starts_at.strftime("%Y-%m")
    month = run_in_app(meeting)
    run_jobs()
    return {"a": a, "meeting_month": month, "today": today}


def _get(client, token, url):
    response = client.get(url, headers=token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_each_definition_on_the_hand_built_example(client, example):
    office = api_token(client, "office-41")
    body = _get(client, office, "/api/v1/units/41/metrics")
    assert body["unit_code"] == "41" and body["scope"] == "subtree" and body["stale"] is False
    assert body["period"] == example["today"].strftime("%Y-%m") and body["computed_at"].endswith("Z")
    m = body["metrics"]
    # Leaves: A at three streets and B; the cascaded root of A and the cancelled C count nowhere.
    assert m["tasks.total"] == 4
    assert m["tasks.open"] == 3          # A@410105002 in progress, A@410102001 assigned, B assigned
    assert m["tasks.accepted"] == 1 and m["tasks.accepted_on_time"] == 1
    assert m["tasks.overdue"] == 1       # B
    assert m["tasks.progress_weighted"] == 60 * 2 + 40 * 2 and m["tasks.weight"] == 2 + 2 + 2 + 1
    assert m["reports.expected"] == 4 and m["reports.received"] == 2
    assert m["decisions.open"] == 1 and m["decisions.closed"] == 0 and m["notices.open"] == 1
    assert body["indicators"] == {"completion_rate": 25.0, "on_time_rate": 100.0, "progress": 28.6,
                                  "reporting_rate": 50.0}
    held = _get(client, office, f"/api/v1/units/41/metrics?period={example['meeting_month']}")
    assert held["metrics"]["meetings.held"] == 1
    # A flow is per month: the year holds it, another year does not. The task figures of an ended period
    # are their values at its end (no task existed in 2001); other stocks answer as of now whatever the period.
    year = example["meeting_month"][:4]
    assert _get(client, office, f"/api/v1/units/41/metrics?period={year}")["metrics"]["meetings.held"] == 1
    other = _get(client, office, "/api/v1/units/41/metrics?period=2001-Q1")["metrics"]
    assert other["meetings.held"] == 0 and other["reports.expected"] == 0 and other["tasks.total"] == 0
    assert other["decisions.open"] == 1 and other["notices.open"] == 1

    # Own and subtree: the province's own figures are empty (its task is passed down) ...
    own = _get(client, office, "/api/v1/units/41/metrics?scope=own")["metrics"]
    assert own["tasks.total"] == 0 and own["tasks.weight"] == 0
    # ... the district's own are B; its subtree adds its two streets; Kaifeng has nothing.
    assert _get(client, office, "/api/v1/units/410105/metrics?scope=own")["metrics"]["tasks.total"] == 1
    district = _get(client, office, "/api/v1/units/410105/metrics")["metrics"]
    assert district["tasks.total"] == 3 and district["tasks.overdue"] == 1 and district["notices.open"] == 1
    assert _get(client, office, "/api/v1/units/4102/metrics")["metrics"]["tasks.total"] == 0


def test_every_figure_drills_down_to_its_records(client, example):
    office = api_token(client, "office-41")
    figures = _get(client, office, "/api/v1/units/41/metrics")["metrics"]
    for key, value in figures.items():
        body = _get(client, office, f"/api/v1/units/41/metrics/{key}/records?per_page=200")
        assert sum(item["value"] for item in body["items"]) == pytest.approx(value), key
        if metrics.REGISTRY[key].integer:
            assert body["total"] == value, key
    overdue = _get(client, office, "/api/v1/units/41/metrics/tasks.overdue/records")
    assert [(i["kind"], i["unit_code"], i["title"]) for i in overdue["items"]] == [("task", "410105", "B")]
    received = _get(client, office, "/api/v1/units/41/metrics/reports.received/records?per_page=1&page=2")
    assert received["total"] == 2 and len(received["items"]) == 1 and received["page"] == 2
    assert {i["unit_code"] for i in _get(client, office, "/api/v1/units/41/metrics/reports.received/records")
            ["items"]} == {"410105001", "410105002"}


def test_metrics_follow_the_units_access_rules(client, example):
    liaison = api_token(client, "edu-410105")
    # A liaison reads its own unit's own figures, never the units below it.
    body = _get(client, liaison, "/api/v1/units/410105/metrics?scope=subtree")
    assert body["scope"] == "own" and body["metrics"]["tasks.total"] == 1
    records = _get(client, liaison, "/api/v1/units/410105/metrics/tasks.total/records")
    assert records["scope"] == "own" and {i["unit_code"] for i in records["items"]} == {"410105"}
    for url in ("/api/v1/units/410105001/metrics", "/api/v1/units/4101/metrics",
                "/api/v1/units/410105001/metrics/tasks.total/records"):
        assert client.get(url, headers=liaison).status_code == 404
    city_viewer = api_token(client, "viewer-4101")
    assert client.get("/api/v1/units/41/metrics", headers=city_viewer).status_code == 404
    assert client.get("/api/v1/units/4102/metrics", headers=city_viewer).status_code == 404
    assert _get(client, city_viewer, "/api/v1/units/4101/metrics")["metrics"]["tasks.total"] == 4
    sibling = api_token(client, "office-4102")
    assert client.get("/api/v1/units/4101/metrics/tasks.total/records", headers=sibling).status_code == 404
    assert client.get("/api/v1/units/4101/metrics").status_code == 401
    office = api_token(client, "office-41")
    assert client.get("/api/v1/units/41/metrics/tasks.nonsense/records", headers=office).status_code == 404
    for bad in ("2026-13", "26-11", "2026-Q5", "1999", "2026-11-01", "subtree"):
        refused = client.get(f"/api/v1/units/41/metrics?period={bad}", headers=office)
        assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "period", bad
    assert client.get("/api/v1/units/41/metrics?scope=all", headers=office).status_code == 400


def test_overdue_follows_the_calendar_through_the_daily_job(app, tree, people, run_in_app, monkeypatch):
    from jobs.metrics import daily_overdue

    today = run_in_app(local_today)
    run_in_app(lambda: svc.create_task(_unit("410105001"), {"title": "今天到期", "lead_department": "edu",
                                                            "due_date": today.isoformat()},
                                       by=_user(people, "office-410105001")))
    read = lambda: run_in_app(lambda: metrics.read(_unit("41"))["metrics"]["tasks.overdue"])  # noqa: E731
    assert read() == 0
    real = run_in_app(local_now)
    monkeypatch.setattr("portal.clock.local_now", lambda: real + timedelta(days=1))
    assert read() == 0  # stored: nothing was written since
    with app.app_context():
        daily_overdue()
        db.session.remove()
    assert read() == 1


def test_indicators_round_half_up_to_one_decimal():
    assert percent_of(1, 16) == 6.3      # 6.25: half up, not to even
    assert percent_of(1, 8) == 12.5
    assert percent_of(200, 7, scale=1) == 28.6
    assert percent_of(2, 3) == 66.7
    assert percent_of(0, 5) == 0.0 and percent_of(3, 0) is None


def test_periods_are_sums_of_months():
    assert metrics.months_of("2026-11") == ["2026-11"]
    assert metrics.months_of("2026-Q4") == ["2026-10", "2026-11", "2026-12"]
    assert metrics.months_of("2026-H1") == [f"2026-{m:02d}" for m in range(1, 7)]
    assert len(metrics.months_of("2026")) == 12


def test_rebuild_and_reconcile_from_the_command_line(app, example, run_in_app):
    runner = app.test_cli_runner()
    before = run_in_app(metrics.stored_values)
    result = runner.invoke(args=["metrics", "rebuild"])
    assert result.exit_code == 0, result.output
    assert run_in_app(metrics.stored_values) == before
    # A figure that drifted (a lost job, a hand edit) is found, counted and repaired.
    from portal.models import MetricValue

    def drift():
        row = db.session.scalar(select(MetricValue).where(MetricValue.unit_id == _unit("41").id,
                                                          MetricValue.metric == "tasks.total"))
        row.subtree = 99
    run_in_app(drift)
    result = runner.invoke(args=["metrics", "reconcile"])
    assert result.exit_code == 0 and "1" in result.output, result.output
    assert run_in_app(metrics.stored_values) == before
    assert run_in_app(lambda: metrics.last_reconcile().drifted) == 1


# --- the task figures at the end of each month (their history) ---------------------------------

def _month(today: date, back: int) -> date:
    """The first day of the month ``back`` months before today's."""
    index = today.year * 12 + today.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _utc_noon(day: date) -> datetime:
    """Noon in Beijing of a day, as the naive UTC timestamps are stored."""
    return datetime(day.year, day.month, day.day, 4, 0)


def build_dated_history(run_in_app, people, run_jobs) -> dict:
    """Tasks whose events are dated in the three months before this one (M-3, M-2, M-1), by editing
    the rows' timestamps after the services wrote them, then a rebuild:

    * X at street 410105001 (weight 2, due M-2's 25th): created M-3's 10th, reports 30 % (M-3's 15th) and
      70 % (M-2's 15th), accepted M-1's 20th: late;
    * Y at the same street (weight 1, due far ahead): created M-2's 5th, silent;
    * Z at the province (weight 1, due far ahead): created M-3's 10th, passed down to its three streets on
      M-1's 3rd.
    """
    from portal.models import TaskReport, TaskReview

    today = run_in_app(local_today)
    m3, m2, m1 = (_month(today, n) for n in (3, 2, 1))
    street = "410105001"

    def create(code, title, weight, due):
        return svc.create_task(_unit(code), {"title": title, "lead_department": "edu", "weight": weight,
                                             "due_date": due.isoformat()}, by=_user(people, f"office-{code}")).id
    x = run_in_app(lambda: create("410105", "X", 2, m2.replace(day=25)))
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, x), [street], by=_user(people, "office-410105")))
    run_jobs()
    x_street = run_in_app(lambda: _instance(x, street).id)
    y = run_in_app(lambda: create(street, "Y", 1, today + timedelta(days=400)))
    z = run_in_app(lambda: create("41", "Z", 1, today + timedelta(days=400)))
    for percent in (30, 70):
        run_in_app(lambda: svc.report_progress(db.session.get(Task, x_street), {"percent": percent},
                                               by=_user(people, f"edu-{street}")))
    run_in_app(lambda: svc.submit_task(db.session.get(Task, x_street), by=_user(people, f"edu-{street}")))
    run_in_app(lambda: svc.review_task(db.session.get(Task, x_street), "accept", "", by=_user(people, "office-410105")))
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, z), "streets", by=_user(people, "office-41")))
    run_jobs()

    def backdate():
        db.session.get(Task, x).created_at = _utc_noon(m3.replace(day=9))
        db.session.get(Task, x_street).created_at = _utc_noon(m3.replace(day=10))
        db.session.get(Task, y).created_at = _utc_noon(m2.replace(day=5))
        db.session.get(Task, z).created_at = _utc_noon(m3.replace(day=10))
        for child in db.session.scalars(select(Task).where(Task.parent_id == z)):
            child.created_at = _utc_noon(m1.replace(day=3))
        reports = list(db.session.scalars(select(TaskReport).where(TaskReport.task_id == x_street)
                                          .order_by(TaskReport.id)))
        reports[0].at, reports[1].at = _utc_noon(m3.replace(day=15)), _utc_noon(m2.replace(day=15))
        for review in db.session.scalars(select(TaskReview).where(TaskReview.task_id == x_street)):
            review.at = _utc_noon(m1.replace(day=20))
    run_in_app(backdate)
    run_in_app(metrics.rebuild_all)
    return {"today": today, "months": [m.strftime("%Y-%m") for m in (m3, m2, m1)], "x": x_street, "y": y, "z": z}


def test_task_figures_at_each_months_end_equal_a_recomputation(app, tree, people, run_in_app, run_jobs):
    from tests.test_metrics_consistency import _expected_table

    h = build_dated_history(run_in_app, people, run_jobs)
    m3, m2, m1 = h["months"]

    def figures(code, period, scope="subtree"):
        return run_in_app(lambda: metrics.read(_unit(code), period, scope))["metrics"]

    street = {p: figures("410105001", p, "own") for p in (m3, m2, m1)}
    # M-3's end: X alone (30 %, weight 2), open, not yet due.
    assert (street[m3]["tasks.total"], street[m3]["tasks.open"], street[m3]["tasks.overdue"]) == (1, 1, 0)
    assert street[m3]["tasks.progress_weighted"] == 60 and street[m3]["tasks.weight"] == 2
    # M-2's end: X (70 %, past its due date: overdue) and Y.
    assert (street[m2]["tasks.total"], street[m2]["tasks.open"], street[m2]["tasks.overdue"]) == (2, 2, 1)
    assert street[m2]["tasks.progress_weighted"] == 140 and street[m2]["tasks.weight"] == 3
    # M-1's end: X accepted (late), Y open; Z's street instance (created that month) too.
    assert (street[m1]["tasks.total"], street[m1]["tasks.accepted"], street[m1]["tasks.accepted_on_time"],
            street[m1]["tasks.overdue"]) == (3, 1, 0, 0)
    # Z counts at the province while it was a leaf (M-3, M-2), at its three streets from M-1.
    assert figures("41", m2, "own")["tasks.total"] == 1 and figures("41", m1, "own")["tasks.total"] == 0
    assert figures("41", m3)["tasks.total"] == 2 and figures("41", m2)["tasks.total"] == 3
    assert figures("41", m1)["tasks.total"] == 2 + 3
    # A quarter or a year that has ended is its last month's end; the running one is as of now.
    now = figures("41", h["today"].strftime("%Y-%m"))
    assert now["tasks.total"] == 5 and now["tasks.accepted"] == 1
    # Every stored figure, past months included, equals a recomputation from the rows ...
    assert run_in_app(metrics.stored_values) == run_in_app(_expected_table)
    for code in ("41", "410105", "410105001"):
        for period in (m3, m2, m1):
            assert run_in_app(lambda: metrics.recompute(_unit(code).id, period)) == figures(code, period)
    # ... and stays so after writes that change the past: Y's weight edited, Z's street instance cancelled.
    run_in_app(lambda: svc.edit_task(db.session.get(Task, h["y"]), {
        "title": "Y", "lead_department": "edu", "weight": 3,
        "due_date": (h["today"] + timedelta(days=400)).isoformat()},
        by=_user(people, "office-410105001"), version=db.session.get(Task, h["y"]).version))
    run_in_app(lambda: svc.cancel_task(_instance(h["z"], "410102001"), "撤销", by=_user(people, "office-41")))
    run_jobs()
    assert run_in_app(metrics.dirty_unit_ids) == []
    assert run_in_app(metrics.stored_values) == run_in_app(_expected_table)
    assert figures("410105001", m2, "own")["tasks.weight"] == 2 + 3
    assert figures("41", m1)["tasks.total"] == 2 + 2
    # The records behind a past month's figure are the instances as they stood then.
    office = api_token(app.test_client(), "office-41")
    body = app.test_client().get(f"/api/v1/units/41/metrics/tasks.total/records?period={m2}", headers=office)
    assert body.status_code == 200, body.get_json()
    titles = sorted(item["title"] for item in body.get_json()["items"])
    assert titles == ["X", "Y", "Z"]
