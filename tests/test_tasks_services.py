"""Task services: lineage, cascade, report, submit, review, roll-up, refusals."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Task, Unit, User
from portal.services import Conflict, PermissionDenied, ServiceError
from portal.services import tasks as svc

DUE = (date.today() + timedelta(days=60)).isoformat()


def _user(people, name):
    return db.session.get(User, people[name].id)


def _unit(tree, code):
    return db.session.get(Unit, tree[code].id)


def _task(tree, people, code="41", **overrides):
    data = {"title": "社区教育培训", "description": "全年培训", "lead_department": "edu",
            "co_departments": ["civil", "hrss"], "due_date": DUE,
            "target": {"name": "培训人次", "unit": "人次", "value": 500}, "weight": 2}
    data.update(overrides)
    return svc.create_task(_unit(tree, code), data, by=_user(people, f"office-{code}"))


def test_cascade_to_children_then_down_report_and_roll_up(app, tree, people, run_in_app, run_jobs):
    root_id = run_in_app(lambda: _task(tree, people).id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, root_id), "children", by=_user(people, "office-41")))
    run_jobs()
    city = run_in_app(lambda: db.session.scalar(select(Task.id).where(Task.parent_id == root_id,
                                                                      Task.unit_id == tree["4101"].id)))
    assert city is not None
    assert run_in_app(lambda: db.session.scalar(select(func.count(Task.id)).where(Task.parent_id == root_id))) == 2
    # The city passes its instance to its districts, the district to its streets.
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, city), "children", by=_user(people, "office-4101")))
    run_jobs()
    district = run_in_app(lambda: db.session.scalar(select(Task.id).where(Task.parent_id == city,
                                                                          Task.unit_id == tree["410105"].id)))
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, district), "children", by=_user(people, "office-410105")))
    run_jobs()
    streets = run_in_app(lambda: dict(db.session.execute(select(Task.unit_id, Task.id).where(Task.parent_id == district)).all()))
    street = streets[tree["410105001"].id]
    # The street liaison of the lead department reports; the co-operating one may too; others may not.
    run_in_app(lambda: svc.report_progress(db.session.get(Task, street), {"percent": 60, "actual_value": 120,
                                                                          "narrative": "已培训120人次"},
                                           by=_user(people, "edu-410105001")))
    run_jobs()
    with pytest.raises(PermissionDenied):
        run_in_app(lambda: svc.report_progress(db.session.get(Task, street), {"percent": 10},
                                               by=_user(people, "edu-410105002")))  # sibling street
    d = run_in_app(lambda: (db.session.get(Task, district).progress, db.session.get(Task, district).actual_value))
    assert d == (Decimal("30.00"), Decimal("120.00"))  # (60 + 0) / 2 streets
    root = run_in_app(lambda: db.session.get(Task, root_id).progress)
    assert root == Decimal("7.50")  # Zhengzhou (30 + 0 of Zhongyuan) / 2 = 15, averaged with Kaifeng's 0
    # Submit, return, report again, submit, accept.
    run_in_app(lambda: svc.submit_task(db.session.get(Task, street), by=_user(people, "edu-410105001")))
    with pytest.raises(ServiceError):
        run_in_app(lambda: svc.review_task(db.session.get(Task, street), "return", "", by=_user(people, "office-410105")))
    run_in_app(lambda: svc.review_task(db.session.get(Task, street), "return", "请补充照片",
                                       by=_user(people, "office-410105")))
    assert run_in_app(lambda: db.session.get(Task, street).status) == "returned"
    with pytest.raises(PermissionDenied):  # the street cannot review itself
        run_in_app(lambda: svc.review_task(db.session.get(Task, street), "accept", "", by=_user(people, "office-410105001")))
    run_in_app(lambda: svc.report_progress(db.session.get(Task, street), {"percent": 100, "actual_value": 260},
                                           by=_user(people, "office-410105001")))
    run_in_app(lambda: svc.submit_task(db.session.get(Task, street), by=_user(people, "office-410105001")))
    run_in_app(lambda: svc.review_task(db.session.get(Task, street), "accept", "", by=_user(people, "office-410105")))
    other = streets[tree["410105002"].id]
    run_in_app(lambda: svc.report_progress(db.session.get(Task, other), {"percent": 100}, by=_user(people, "civil-410105002")))
    run_in_app(lambda: svc.submit_task(db.session.get(Task, other), by=_user(people, "civil-410105002")))
    run_in_app(lambda: svc.review_task(db.session.get(Task, other), "accept", "好", by=_user(people, "office-410105")))
    run_jobs()
    # Both streets accepted: the district instance is done by itself.
    assert run_in_app(lambda: db.session.get(Task, district).status) == "accepted"
    assert run_in_app(lambda: db.session.get(Task, district).progress) == Decimal("100")


def test_who_may_not_report(app, tree, people, run_in_app, run_jobs):
    task_id = run_in_app(lambda: _task(tree, people, code="410105001").id)
    for name in ("office-410105002", "viewer-41", "civil-410105002"):  # sibling office, viewer, sibling liaison
        with pytest.raises(PermissionDenied):
            run_in_app(lambda: svc.report_progress(db.session.get(Task, task_id), {"percent": 5}, by=_user(people, name)))
    # A department that is neither lead nor co-operating.
    task2 = run_in_app(lambda: _task(tree, people, code="410105001", lead_department="women", co_departments=[]).id)
    with pytest.raises(PermissionDenied):
        run_in_app(lambda: svc.report_progress(db.session.get(Task, task2), {"percent": 5},
                                               by=_user(people, "edu-410105001")))
    # The parent's instance: once cascaded, nobody reports on it directly.
    parent = run_in_app(lambda: _task(tree, people, code="410105").id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, parent), "children", by=_user(people, "office-410105")))
    run_jobs()
    with pytest.raises(ServiceError):
        run_in_app(lambda: svc.report_progress(db.session.get(Task, parent), {"percent": 5},
                                               by=_user(people, "edu-410105")))


@pytest.mark.parametrize("field,value", [("percent", 101), ("percent", -1), ("percent", "abc"),
                                         ("actual_value", -5)])
def test_bad_report_values_name_the_field(app, tree, people, run_in_app, field, value):
    task_id = run_in_app(lambda: _task(tree, people, code="410105001").id)
    data = {"percent": 50, field: value}
    with pytest.raises(ServiceError) as info:
        run_in_app(lambda: svc.report_progress(db.session.get(Task, task_id), data, by=_user(people, "edu-410105001")))
    assert info.value.field == field


@pytest.mark.parametrize("data,field", [({"due_date": "2026/12/31"}, "due_date"), ({"lead_department": "nope"}, "lead_department"),
                                         ({"co_departments": ["edu", "zzz"]}, "co_departments"), ({"title": ""}, "title"),
                                         ({"target": {"name": "人次", "value": "many"}}, "target.value")])
def test_bad_task_definitions_name_the_field(app, tree, people, run_in_app, data, field):
    with pytest.raises(ServiceError) as info:
        run_in_app(lambda: _task(tree, people, **data))
    assert info.value.field == field


def test_stale_review_is_a_conflict(app, tree, people, run_in_app):
    task_id = run_in_app(lambda: _task(tree, people, code="410105001").id)
    run_in_app(lambda: svc.report_progress(db.session.get(Task, task_id), {"percent": 100}, by=_user(people, "edu-410105001")))
    version = run_in_app(lambda: svc.submit_task(db.session.get(Task, task_id), by=_user(people, "edu-410105001")).version)
    run_in_app(lambda: svc.review_task(db.session.get(Task, task_id), "accept", "", by=_user(people, "office-410105001"),
                                       version=version))
    with pytest.raises(Conflict):
        run_in_app(lambda: svc.review_task(db.session.get(Task, task_id), "return", "再改", by=_user(people, "office-410105"),
                                           version=version))
    assert run_in_app(lambda: db.session.get(Task, task_id).status) == "accepted"


def test_an_office_that_reported_on_behalf_cannot_accept_its_own_report(app, tree, people, run_in_app, run_jobs):
    parent = run_in_app(lambda: _task(tree, people, code="410105").id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, parent), "children", by=_user(people, "office-410105")))
    run_jobs()
    street = run_in_app(lambda: db.session.scalar(select(Task.id).where(Task.parent_id == parent,
                                                                        Task.unit_id == tree["410105001"].id)))
    run_in_app(lambda: svc.report_progress(db.session.get(Task, street), {"percent": 100}, by=_user(people, "office-410105")))
    run_in_app(lambda: svc.submit_task(db.session.get(Task, street), by=_user(people, "office-410105")))
    with pytest.raises(PermissionDenied):
        run_in_app(lambda: svc.review_task(db.session.get(Task, street), "accept", "", by=_user(people, "office-410105")))
    run_in_app(lambda: svc.review_task(db.session.get(Task, street), "accept", "", by=_user(people, "staff-410105")))
    assert run_in_app(lambda: db.session.get(Task, street).status) == "accepted"


def test_overdue_is_computed_from_the_due_date(app, tree, people, run_in_app):
    past = (date.today() - timedelta(days=3)).isoformat()
    task_id = run_in_app(lambda: _task(tree, people, code="410105001", due_date=past).id)
    today = date.today()
    assert run_in_app(lambda: db.session.get(Task, task_id).is_overdue(today)) is True
    assert run_in_app(lambda: db.session.scalar(select(func.count(Task.id)).where(Task.overdue_clause(today)))) == 1
    run_in_app(lambda: svc.report_progress(db.session.get(Task, task_id), {"percent": 100}, by=_user(people, "edu-410105001")))
    run_in_app(lambda: svc.submit_task(db.session.get(Task, task_id), by=_user(people, "edu-410105001")))
    run_in_app(lambda: svc.review_task(db.session.get(Task, task_id), "accept", "", by=_user(people, "office-410105001")))
    assert run_in_app(lambda: db.session.get(Task, task_id).is_overdue(today)) is False
    assert run_in_app(lambda: db.session.scalar(select(func.count(Task.id)).where(Task.overdue_clause(today)))) == 0


def test_decision_closes_when_its_task_is_accepted_and_stops_coming_back(app, tree, people, run_in_app):
    from datetime import datetime

    from portal.models import AgendaItem, Decision, Meeting
    from portal.services import meetings as meeting_svc

    def held_meeting():
        office = _user(people, "office-410105")
        unit = _unit(tree, "410105")
        meeting = meeting_svc.create_meeting(unit, {"title": "第一次会议", "starts_at": datetime(2026, 1, 10, 9, 0),
                                                    "invited_departments": ["edu"]}, by=office)
        for to in ("agenda_open", "agenda_locked", "held"):
            meeting_svc.transition(meeting, to, by=office)
        done = meeting_svc.add_decision(meeting, {"text": "建成社区学校", "lead_department": "edu"}, by=office)
        still = meeting_svc.add_decision(meeting, {"text": "开展老年教育", "lead_department": "edu"}, by=office)
        meeting_svc.save_minutes(meeting, "纪要", by=office, base_revision=0)
        meeting_svc.publish_minutes(meeting, by=office)
        task = svc.task_from_decision(done, by=office)
        svc.task_from_decision(still, by=office)
        return task.id, done.id, still.id
    task_id, done_id, still_id = run_in_app(held_meeting)
    run_in_app(lambda: svc.report_progress(db.session.get(Task, task_id), {"percent": 100}, by=_user(people, "edu-410105")))
    run_in_app(lambda: svc.submit_task(db.session.get(Task, task_id), by=_user(people, "edu-410105")))
    run_in_app(lambda: svc.review_task(db.session.get(Task, task_id), "accept", "", by=_user(people, "office-410105")))
    assert run_in_app(lambda: (db.session.get(Decision, done_id).status, db.session.get(Decision, still_id).status)) \
        == ("closed", "open")

    def next_meeting():
        meeting = meeting_svc.create_meeting(_unit(tree, "410105"), {
            "title": "第二次会议", "starts_at": datetime(2026, 4, 10, 9, 0), "invited_departments": ["edu"]},
            by=_user(people, "office-410105"))
        return [i.source_decision_id for i in db.session.scalars(
            select(AgendaItem).where(AgendaItem.meeting_id == meeting.id))]
    assert run_in_app(next_meeting) == [still_id]
    assert run_in_app(lambda: db.session.scalar(select(func.count(Meeting.id)))) == 2


def test_a_refusal_on_a_page_says_why(new_browser, tree, people, run_in_app):
    task_id = run_in_app(lambda: _task(tree, people, code="410105001").id)
    b = new_browser()
    b.login("office-410105001")
    b.get("/notifications/?lang=en")
    url = f"/street/410105001/tasks/{task_id}/"
    b.post_form(url + "report", {"percent": 100}, page=url)
    b.post_form(url + "submit", {"version": run_in_app(lambda: db.session.get(Task, task_id).version)}, page=url)
    refused = b.post_form(url + "review", {"decision": "accept", "comment": "",
                                          "version": run_in_app(lambda: db.session.get(Task, task_id).version)},
                          page=url)
    assert refused.status_code == 403
    assert "You reported this task" in refused.get_data(as_text=True)
