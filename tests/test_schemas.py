"""The input boundary: what the schemas refuse, on the API and on the page forms, with a 400 that
names the field in the user's language; and that nothing refused reaches the database."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Meeting, Task
from tests.conftest import api_token

FUTURE = (datetime.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
DUE = (datetime.now() + timedelta(days=30)).date().isoformat()
DIST = "/district/410105"


def _count(run_in_app, model) -> int:
    return run_in_app(lambda: db.session.scalar(select(func.count(model.id))))


def _task_body(**overrides) -> dict:
    body = {"title": "社区老年教育", "lead_department": "edu", "due_date": DUE,
            "target": {"name": "培训人次", "unit": "人次", "value": 500}}
    body.update(overrides)
    return body


@pytest.mark.parametrize("overrides,field", [
    ({"title": 12.5}, "title"),                                   # a number where text is expected
    ({"title": ["a"]}, "title"),
    ({"description": {"a": 1}}, "description"),
    ({"lead_department": True}, "lead_department"),
    ({"lead_department": ""}, "lead_department"),                 # empty: a foreign-key violation before
    ({"lead_department": "nope"}, "lead_department"),
    ({"co_departments": "edu"}, "co_departments"),                # not a list
    ({"title": "a\x00b"}, "title"),                               # PostgreSQL cannot store NUL
    ({"target": {"name": "人次", "value": 1e12}}, "target.value"),   # beyond Numeric(14, 2)
    ({"target": {"name": "人次", "value": "1e400"}}, "target.value"),
    ({"target": 5}, "target"),
    ({"weight": True}, "weight"),
    ({"due_date": "9999-12-31"}, "due_date"),
    ({"due_date": 20261231}, "due_date"),
    ({"colour": "red"}, "colour"),                                # unknown fields are refused
])
def test_api_refuses_wrong_input_naming_the_field(client, people, run_in_app, overrides, field):
    office = api_token(client, "office-410105")
    response = client.post("/api/v1/units/410105/tasks", headers=office, json=_task_body(**overrides))
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and error["field"] == field
    assert field in error["message"]
    assert _count(run_in_app, Task) == 0


def test_messages_are_in_the_users_language(client, people):
    office = api_token(client, "office-410105")
    chinese = client.post("/api/v1/units/410105/tasks", headers=office, json=_task_body(title=3))
    assert chinese.get_json()["error"]["message"] == "title必须为文本。"
    unknown = client.post("/api/v1/units/410105/tasks", headers=office, json=_task_body(lead_department="xyz"))
    assert unknown.get_json()["error"]["message"] == "lead_department：未知部门xyz。"
    english = client.post("/api/v1/units/410105/tasks?lang=en", headers=office, json=_task_body(title=3))
    assert english.get_json()["error"]["message"] == "title must be text."


@pytest.mark.parametrize("raw", [
    b'{"title": "\\ud800", "lead_department": "edu", "due_date": "2030-01-01"}',   # a lone surrogate
    b'{"title": "x", "lead_department": "edu", "due_date": "2030-01-01", "weight": NaN}',
    b'{"title": "x", "lead_department": "edu", "due_date": "2030-01-01", "weight": Infinity}',
    b'{"title": "x", "lead_department": "edu", "due_date": "2030-01-01", "weight": 1e309}',
    b"[" * 5000 + b"]" * 5000,                                                       # nested thousands deep
    b'{"title": ',                                                                   # not JSON at all
    b'"just a string"',
])
def test_api_refuses_bodies_json_cannot_carry_safely(client, people, run_in_app, raw):
    office = api_token(client, "office-410105")
    response = client.post("/api/v1/units/410105/tasks", headers=dict(office, **{"Content-Type": "application/json"}),
                           data=raw)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert _count(run_in_app, Task) == 0


def test_deep_json_is_refused_before_any_view_reads_it(client, people):
    """The token endpoint's throttle reads the body too: the depth cap is the app's JSON provider's."""
    deep = b"[" * 100_000 + b"]" * 100_000
    response = client.post("/api/v1/tokens", data=deep, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 413)


def test_a_body_larger_than_the_cap_is_413(app, client, people):
    office = api_token(client, "office-410105")
    huge = _task_body(description="长" * 400_000)  # 1.2 MB of UTF-8
    response = client.post("/api/v1/units/410105/tasks", headers=office, json=huge)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "payload_too_large"


def test_version_and_reasons_must_have_their_types(client, people):
    office = api_token(client, "office-410105")
    task_id = client.post("/api/v1/units/410105/tasks", headers=office, json=_task_body()).get_json()["id"]
    bad = client.post(f"/api/v1/tasks/{task_id}/submit", headers=office, json={"version": "v2"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "version"
    report = client.post(f"/api/v1/tasks/{task_id}/reports", headers=office, json={"percent": 10,
                                                                                "actual_value": 10**12})
    assert report.status_code == 400 and report.get_json()["error"]["field"] == "actual_value"
    meeting = client.post("/api/v1/units/410105/meetings", headers=office,
                          json={"title": "会", "starts_at": FUTURE, "invited_departments": ["edu"]}).get_json()
    cancel = client.post(f"/api/v1/meetings/{meeting['id']}/transitions", headers=office,
                         json={"to": "cancelled", "reason": 42})
    assert cancel.status_code == 400 and cancel.get_json()["error"]["field"] == "reason"
    for body, field in (({"series": 7}, "series"), ({"invited_units": "410105001"}, "invited_units"),
                        ({"starts_at": "9999-12-31T09:00"}, "starts_at")):
        response = client.post("/api/v1/units/410105/meetings", headers=office,
                               json=dict({"title": "会", "starts_at": FUTURE}, **body))
        assert response.status_code == 400 and response.get_json()["error"]["field"] == field, body


def test_whitespace_is_stripped_once_for_every_field(client, people):
    office = api_token(client, "office-410105")
    created = client.post("/api/v1/units/410105/tasks", headers=office,
                          json=_task_body(title="  社区教育  ", lead_department=" edu ", co_departments=[" civil"]))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["title"] == "社区教育" and created.get_json()["co_departments"] == ["civil"]


# --- page forms -------------------------------------------------------------------------------------

@pytest.fixture
def office(new_browser, people):
    b = new_browser()
    assert b.login("office-410105").status_code == 302
    return b


def _meeting(run_in_app, people) -> int:
    from portal.models import Unit, User
    from portal.services import meetings as svc

    def make():
        user = db.session.get(User, people["office-410105"].id)
        return svc.create_meeting(db.session.get(Unit, user.home_unit_id), {
            "title": "联席会议", "starts_at": FUTURE, "invited_departments": ["edu"]}, by=user).id
    return run_in_app(make)


def test_meeting_edit_refuses_a_notice_number_longer_than_the_column(office, people, run_in_app):
    meeting_id = _meeting(run_in_app, people)
    version = run_in_app(lambda: db.session.get(Meeting, meeting_id).version)
    response = office.post_form(f"{DIST}/meetings/{meeting_id}/edit", {
        "title": "保留我的标题", "starts_at": FUTURE, "notice_number": "豫" * 100, "version": version})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "notice_number不能超过64个字符。" in page and "保留我的标题" in page
    assert run_in_app(lambda: db.session.get(Meeting, meeting_id).notice_number) == ""


def test_meeting_form_refuses_dates_outside_the_calendar(office, people, run_in_app):
    response = office.post_form(f"{DIST}/meetings/new", {"title": "万年会议", "starts_at": "9999-12-31T09:00",
                                                          "departments": ["edu"]})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "starts_at必须介于2000-01-01与2100-12-31之间。" in page
    assert "万年会议" in page
    assert _count(run_in_app, Meeting) == 0


def test_decision_with_a_non_numeric_item_is_refused_with_a_message(office, people, run_in_app):
    meeting_id = _meeting(run_in_app, people)
    run_in_app(lambda: setattr(db.session.get(Meeting, meeting_id), "status", "held"))
    response = office.post_form(f"{DIST}/meetings/{meeting_id}/decisions",
                                {"text": "决定", "lead_department": "edu", "item_id": "abc"},
                                page=f"{DIST}/meetings/{meeting_id}/", follow_redirects=True)
    assert response.status_code == 200
    assert "item_id必须为整数。" in response.get_data(as_text=True)
    assert run_in_app(lambda: len(db.session.get(Meeting, meeting_id).decisions)) == 0


def test_task_form_keeps_the_input_and_names_the_field(office, people, run_in_app):
    response = office.post_form(f"{DIST}/tasks/new", {
        "title": "保留我的标题", "lead_department": "edu", "due_date": DUE, "weight": "1",
        "target_name": "人次", "target_value": "1e12"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'data-field="target.value"' in page and "保留我的标题" in page
    nul = office.post_form(f"{DIST}/tasks/new", {"title": "a\x00b", "lead_department": "edu", "due_date": DUE})
    assert nul.status_code == 400 and 'data-field="title"' in nul.get_data(as_text=True)
    assert _count(run_in_app, Task) == 0


def test_report_form_refuses_not_a_number(office, people, run_in_app):
    from portal.models import Unit, User
    from portal.services import tasks as svc

    def make():
        user = db.session.get(User, people["office-410105"].id)
        return svc.create_task(db.session.get(Unit, user.home_unit_id), _task_body(), by=user).id
    task_id = run_in_app(make)
    response = office.post_form(f"{DIST}/tasks/{task_id}/report", {"percent": "NaN", "narrative": "保留"},
                                page=f"{DIST}/tasks/{task_id}/")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'data-field="percent"' in page and "percent必须为数字。" in page and "保留" in page


def test_list_filters_the_schema_refuses_give_the_unfiltered_list(office, people):
    response = office.get(f"{DIST}/tasks/?department=nope&due_within=soon")
    assert response.status_code == 200
    assert "未知部门nope" in response.get_data(as_text=True)
