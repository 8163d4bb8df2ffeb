"""Task targets counted from activities (issue 11): the actual value of a leaf instance is the sum
over its unit's registered activities of the category (and department) within the task's period;
it follows the creation, edit and deletion of matching and non-matching activities, passes down
with the cascade (to the children and down the whole tree) and rolls up; the unit no longer types it."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Activity, Task, Unit, User
from portal.services import ServiceError
from portal.services import activities as acts
from portal.services import tasks as svc
from tests.conftest import api_token

TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
DUE = date(TODAY.year, 12, 31)


def _user(people, name):
    return db.session.get(User, people[name].id)


def _unit(tree, code):
    return db.session.get(Unit, tree[code].id)


def _activity(**over):
    body = {"title": "民法典进社区宣讲", "category": "legal", "start_date": TODAY.isoformat(), "place": "社区会议室",
            "lead_department": "edu", "co_departments": [], "participants": {"youth": 10, "elders": 20, "others": 5},
            "volunteers": 3, "volunteer_hours": 6, "funds": 200, "narrative": ""}
    body.update(over)
    return body


def _counted_task(tree, people, code="41", *, measure="count", category="legal", department=None, **over):
    data = {"title": "每个街道全年开展法治教育活动不少于12次", "lead_department": "justice", "due_date": DUE.isoformat(),
            "target": {"name": "法治教育活动", "unit": "次", "value": 12,
                       "counted_from": {"category": category, "measure": measure, "department": department}}}
    data.update(over)
    return svc.create_task(_unit(tree, code), data, by=_user(people, f"office-{code}"))


def _actuals(run_in_app, root_id):
    """{unit code: actual value} of every instance of the task."""
    rows = run_in_app(lambda: db.session.execute(select(Task.unit_code, Task.actual_value)
                                                 .where(Task.root_id == root_id)).all())
    return {code: (value if value is None else Decimal(value)) for code, value in rows}


def test_target_follows_activities_and_passes_down_the_whole_tree(app, tree, people, run_in_app, run_jobs):
    # One matching activity exists before the task is issued; the cascade counts it.
    run_in_app(lambda: acts.create_activity(_unit(tree, "410105001"), _activity(), by=_user(people, "edu-410105001")))
    root_id = run_in_app(lambda: _counted_task(tree, people).id)
    assert _actuals(run_in_app, root_id) == {"41": Decimal("0")}  # the province registered nothing itself
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, root_id), "tree", by=_user(people, "office-41")))
    run_jobs()
    counted = run_in_app(lambda: db.session.execute(select(Task.counted_category, Task.counted_measure,
                                                           Task.counted_department).where(Task.root_id == root_id)
                                                    .distinct()).all())
    assert counted == [("legal", "count", None)]  # every instance carries the definition
    expected = {"41": 1, "4101": 1, "4102": 0, "410105": 1, "410102": 0, "410105001": 1, "410105002": 0,
                "410102001": 0}
    assert _actuals(run_in_app, root_id) == {k: Decimal(v) for k, v in expected.items()}

    def check(**changes):
        expected.update(changes)
        run_jobs()
        assert _actuals(run_in_app, root_id) == {k: Decimal(v) for k, v in expected.items()}

    # A matching activity at the sibling street: its instance, the district, the city and the province.
    second = run_in_app(lambda: acts.create_activity(_unit(tree, "410105002"), _activity(),
                                                     by=_user(people, "office-410105002")).id)
    check(**{"410105002": 1, "410105": 2, "4101": 2, "41": 2})
    # Non-matching: another category, last year, after the due date's year; nothing moves.
    other = run_in_app(lambda: acts.create_activity(_unit(tree, "410105001"), _activity(category="festival"),
                                                    by=_user(people, "edu-410105001")).id)
    run_in_app(lambda: acts.create_activity(_unit(tree, "410105001"), _activity(
        start_date=date(TODAY.year - 1, 6, 1).isoformat()), by=_user(people, "edu-410105001")))
    check()
    # An activity of the district itself counts for the district's instance only while it is a leaf:
    # passed down, the district adds up its streets.
    run_in_app(lambda: acts.create_activity(_unit(tree, "410105"), _activity(), by=_user(people, "office-410105")))
    check()
    # Edits: the non-matching one becomes legal education (counts), the matching one festival (no longer).
    run_in_app(lambda: acts.update_activity(db.session.get(Activity, other), _activity(), by=_user(
        people, "edu-410105001"), version=None))
    check(**{"410105001": 2, "410105": 3, "4101": 3, "41": 3})
    run_in_app(lambda: acts.update_activity(db.session.get(Activity, second), _activity(category="care"), by=_user(
        people, "office-410105002"), version=None))
    check(**{"410105002": 0, "410105": 2, "4101": 2, "41": 2})
    # An edit of a non-counted field of a matching activity changes nothing.
    run_in_app(lambda: acts.update_activity(db.session.get(Activity, other), _activity(title="宪法日宣传"), by=_user(
        people, "edu-410105001"), version=None))
    check()
    # Deletions: the non-matching one (nothing), then a matching one.
    run_in_app(lambda: acts.delete_activity(db.session.get(Activity, second), "重复登记",
                                            by=_user(people, "office-410105002")))
    check()
    run_in_app(lambda: acts.delete_activity(db.session.get(Activity, other), "登记错误",
                                            by=_user(people, "edu-410105001")))
    check(**{"410105001": 1, "410105": 1, "4101": 1, "41": 1})
    # The street reports its percent; it cannot type the actual value, and the report keeps the count.
    street = run_in_app(lambda: db.session.scalar(select(Task.id).where(Task.root_id == root_id,
                                                                        Task.unit_code == "410105001")))
    with pytest.raises(ServiceError) as refused:
        run_in_app(lambda: svc.report_progress(db.session.get(Task, street), {"percent": 10, "actual_value": 99},
                                               by=_user(people, "office-410105001")))
    assert refused.value.field == "actual_value"
    report = run_in_app(lambda: svc.report_progress(db.session.get(Task, street), {"percent": 10},
                                                    by=_user(people, "office-410105001")).actual_value)
    assert report == Decimal("1")
    check()
    # The definition changes at the root: every instance counts the new category.
    root_version = run_in_app(lambda: db.session.get(Task, root_id).version)
    run_in_app(lambda: svc.edit_task(db.session.get(Task, root_id), {
        "title": "节庆活动", "lead_department": "justice", "due_date": DUE.isoformat(),
        "target": {"name": "节庆活动", "value": 4, "counted_from": {"category": "festival", "measure": "count"}}},
        by=_user(people, "office-41"), version=root_version))
    check(**{"410105001": 0, "410105": 0, "4101": 0, "41": 0})


def test_measure_department_and_cascade_to_children(app, tree, people, run_in_app, run_jobs):
    # person-times of legal education organised by justice, issued by the district, passed to its streets
    root_id = run_in_app(lambda: _counted_task(tree, people, "410105", measure="person_times",
                                               department="justice").id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, root_id), "children", by=_user(people, "office-410105")))
    run_jobs()
    assert _actuals(run_in_app, root_id) == {"410105": 0, "410105001": 0, "410105002": 0}
    office = "office-410105001"
    run_in_app(lambda: acts.create_activity(_unit(tree, "410105001"), _activity(lead_department="justice"),
                                            by=_user(people, office)))
    run_in_app(lambda: acts.create_activity(_unit(tree, "410105001"), _activity(lead_department="edu",
                                                                                co_departments=["justice"]),
                                            by=_user(people, office)))  # only co-operating: not counted
    run_jobs()
    assert _actuals(run_in_app, root_id) == {"410105": 35, "410105001": 35, "410105002": 0}
    # Volunteer hours and funds are summed the same way (the own instance of a street task).
    hours_id = run_in_app(lambda: _counted_task(tree, people, "410105001", measure="volunteer_hours").id)
    funds_id = run_in_app(lambda: _counted_task(tree, people, "410105001", measure="funds").id)
    assert _actuals(run_in_app, hours_id) == {"410105001": Decimal("12")}
    assert _actuals(run_in_app, funds_id) == {"410105001": Decimal("400")}
    # An accepted task keeps the figure it was accepted with.
    run_in_app(lambda: svc.report_progress(db.session.get(Task, hours_id), {"percent": 100},
                                           by=_user(people, office)))
    run_in_app(lambda: svc.submit_task(db.session.get(Task, hours_id), by=_user(people, office)))
    run_in_app(lambda: svc.review_task(db.session.get(Task, hours_id), "accept", "",
                                       by=_user(people, "office-410105")))
    run_in_app(lambda: acts.create_activity(_unit(tree, "410105001"), _activity(volunteer_hours="2.5"),
                                            by=_user(people, office)))
    run_jobs()
    assert _actuals(run_in_app, hours_id) == {"410105001": Decimal("12")}
    assert _actuals(run_in_app, funds_id) == {"410105001": Decimal("600")}


def test_api_declares_and_returns_the_counted_target(client, tree, people, run_in_app, run_jobs):
    headers = api_token(client, "office-410105001")
    body = {"title": "法治教育活动", "lead_department": "justice", "due_date": DUE.isoformat(),
            "target": {"name": "活动次数", "unit": "次", "value": 12,
                       "counted_from": {"category": "legal", "measure": "count"}}}
    bad = client.post("/api/v1/units/410105001/tasks", headers=headers, json={
        **body, "target": {**body["target"], "counted_from": {"category": "legal", "measure": "people"}}})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "target.counted_from.measure"
    bad = client.post("/api/v1/units/410105001/tasks", headers=headers, json={
        **body, "target": {**body["target"], "counted_from": {"category": "sports", "measure": "count"}}})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "target.counted_from.category"
    created = client.post("/api/v1/units/410105001/tasks", headers=headers, json=body)
    assert created.status_code == 201, created.get_json()
    task = created.get_json()
    assert task["target"]["counted_from"] == {"category": "legal", "measure": "count", "department": None}
    assert task["actual_value"] == 0
    made = client.post("/api/v1/units/410105001/activities", headers=headers, json=_activity())
    assert made.status_code == 201
    run_jobs()
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=headers).get_json()["actual_value"] == 1
    typed = client.post(f"/api/v1/tasks/{task['id']}/reports", headers=headers,
                        json={"percent": 50, "actual_value": 5})
    assert typed.status_code == 400 and typed.get_json()["error"]["field"] == "actual_value"
    plain = client.post("/api/v1/units/410105001/tasks", headers=headers, json={**body, "target": {
        "name": "培训人次", "value": 5}}).get_json()
    assert plain["target"]["counted_from"] is None


def test_pages_issue_a_counted_target_and_show_the_activities_behind_it(browser, tree, people, run_in_app, run_jobs):
    run_in_app(lambda: acts.create_activity(_unit(tree, "410105001"), _activity(title="宪法宣传日活动"),
                                            by=_user(people, "office-410105001")))
    browser.login("office-410105")
    form = {"title": "全年法治教育活动", "description": "", "lead_department": "justice", "due_date": DUE.isoformat(),
            "weight": "1", "target_name": "法治教育活动", "target_unit": "次", "target_value": "12",
            "counted_measure": "count", "counted_category": "", "counted_department": ""}
    refused = browser.post_form("/district/410105/tasks/new", form)
    assert refused.status_code == 400
    assert 'data-field="target.counted_from.category"' in refused.get_data(as_text=True)
    created = browser.post_form("/district/410105/tasks/new", dict(form, counted_category="legal"))
    assert created.status_code == 302
    task_id = int(re.search(r"/tasks/(\d+)/", created.headers["Location"]).group(1))
    edit = browser.get(f"/district/410105/tasks/{task_id}/edit").get_data(as_text=True)
    assert re.search(r'<option value="legal"\s+selected', edit) and re.search(r'<option value="count"\s+selected', edit)
    cascaded = browser.post_form(f"/district/410105/tasks/{task_id}/cascade", {"to": "children"},
                                 page=f"/district/410105/tasks/{task_id}/")
    assert cascaded.status_code == 302
    run_jobs()
    street = run_in_app(lambda: db.session.scalar(select(Task.id).where(Task.parent_id == task_id,
                                                                        Task.unit_code == "410105001")))
    browser.logout()
    browser.login("office-410105001")
    page = browser.get(f"/street/410105001/tasks/{street}/").get_data(as_text=True)
    assert 'id="report-form"' in page and 'name="actual_value"' not in page
    assert re.search(r'id="counted-value"><strong>1</strong>', page)
    assert "宪法宣传日活动" in page and 'id="counted-register-link"' in page
    # The district's page adds up its streets and lists no activities of its own.
    browser.logout()
    browser.login("office-410105")
    district = browser.get(f"/district/410105/tasks/{task_id}/").get_data(as_text=True)
    assert 'id="counted-rule"' in district and 'id="counted-activities"' not in district
    # The district's home: this year's activities of its subtree, from the stored figures.
    home = browser.get("/district/410105/").get_data(as_text=True)
    assert re.search(r'id="figure-activities-count">1<', home)
    assert f'/district/410105/dashboard/records/activities.count?period={TODAY.year}' in home
