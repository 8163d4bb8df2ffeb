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
def example(app, tree, people, run_in_app, run_jobs):
    """The hand-built example every definition is pinned on:

    * task A (weight 2) from the province straight to its three streets: 410105001 reports 60 %, submits
      and is accepted; 410105002 reports 40 % and has an open supervision notice; 410102001 does nothing;
    * task B (weight 1) of district 410105 itself, due yesterday: overdue;
    * task C of district 410105, cancelled: counted nowhere;
    * a meeting of 410105 held an hour ago, with one open decision.
    """
    today = run_in_app(local_today)
    future = (today + timedelta(days=30)).isoformat()
    a = run_in_app(lambda: svc.create_task(_unit("41"), {"title": "A", "lead_department": "edu", "weight": 2,
                                                         "due_date": future}, by=_user(people, "office-41")).id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, a), "streets", by=_user(people, "office-41")))
    run_jobs()
    run_in_app(lambda: svc.create_task(_unit("410105"), {
        "title": "B", "lead_department": "edu", "due_date": (today - timedelta(days=1)).isoformat()},
        by=_user(people, "office-410105")))
    c = run_in_app(lambda: svc.create_task(_unit("410105"), {"title": "C", "lead_department": "edu",
                                                             "due_date": future}, by=_user(people, "office-410105")).id)
    run_in_app(lambda: svc.cancel_task(db.session.get(Task, c), "不再需要", by=_user(people, "office-410105")))
    run_in_app(lambda: svc.report_progress(_instance(a, "410105001"), {"percent": 60},
                                           by=_user(people, "edu-410105001")))
    run_in_app(lambda: svc.submit_task(_instance(a, "410105001"), by=_user(people, "edu-410105001")))
    run_in_app(lambda: svc.review_task(_instance(a, "410105001"), "accept", "", by=_user(people, "office-41")))
    run_in_app(lambda: svc.report_progress(_instance(a, "410105002"), {"percent": 40},
                                           by=_user(people, "edu-410105002")))
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
    # A flow is per month: the year holds it, another year does not; stocks answer whatever the period.
    year = example["meeting_month"][:4]
    assert _get(client, office, f"/api/v1/units/41/metrics?period={year}")["metrics"]["meetings.held"] == 1
    other = _get(client, office, "/api/v1/units/41/metrics?period=2001-Q1")["metrics"]
    assert other["meetings.held"] == 0 and other["reports.expected"] == 0 and other["tasks.total"] == 4

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
