"""Leaks of objects through the pages of other objects: what a reader is shown
is exactly what the reader may open (lists, counts, diffs, API bodies, errors)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.conftest import api_token

PAST = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
FUTURE = (datetime.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
DISTRICT = "/district/410105/meetings"
SECRET = "机密草稿：拟撤并花园路社区学校"


def _as(new_browser, name):
    b = new_browser()
    assert b.login(name).status_code == 302
    return b


def _schedule(b, base=DISTRICT, **overrides):
    data = {"title": "区联席会议", "starts_at": PAST, "location": "区教育局", "series": "regular",
            "departments": ["edu", "civil"], "units": ["410105001"]}
    data.update(overrides)
    response = b.post_form(f"{base}/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _move(b, meeting_id, to, base=DISTRICT):
    response = b.post_form(f"{base}/{meeting_id}/transition", {"to": to}, page=f"{base}/{meeting_id}/")
    assert response.status_code == 302
    return response


# --- 1. draft minutes through the published revision's diff ------------------------------

@pytest.fixture
def published_after_a_draft(new_browser, people):
    """Revision 1 is a draft with confidential text, revision 2 replaces it, then the minutes are published."""
    office = _as(new_browser, "office-410105")
    meeting_id = _schedule(office)
    for to in ("agenda_open", "agenda_locked", "held"):
        _move(office, meeting_id, to)
    url = f"{DISTRICT}/{meeting_id}/minutes"
    assert office.post_form(url, {"body": f"## 议题\n\n{SECRET}\n", "base_revision": 0}).status_code == 302
    assert office.post_form(url, {"body": "## 议题\n\n会议同意推进社区学校建设。\n", "base_revision": 1}).status_code == 302
    _move(office, meeting_id, "minutes_published")
    return office, meeting_id


@pytest.mark.parametrize("reader,workspace", [
    ("viewer-41", "/district/410105"),           # a viewer above
    ("edu-410105", "/district/410105"),          # a liaison at the convening unit
    ("office-410105001", "/street/410105001"),   # the invited street office
])
def test_draft_minutes_do_not_show_through_the_published_diff(published_after_a_draft, new_browser, reader,
                                                              workspace):
    _office, meeting_id = published_after_a_draft
    b = _as(new_browser, reader)
    base = f"{workspace}/meetings/{meeting_id}"
    assert b.get(f"{base}/minutes/revisions/1").status_code == 404
    page = b.get(f"{base}/minutes/revisions/2")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "会议同意推进社区学校建设" in text
    assert SECRET not in text
    assert "修订 1" not in text and "revisions/1" not in text   # not even named as the diff's base
    minutes = b.get(f"{base}/minutes").get_data(as_text=True)
    assert SECRET not in minutes and "revisions/1\"" not in minutes


def test_published_corrections_diff_against_the_previous_published_revision(published_after_a_draft, new_browser):
    office, meeting_id = published_after_a_draft
    url = f"{DISTRICT}/{meeting_id}/minutes"
    assert office.post_form(url, {"body": "## 议题\n\n会议同意推进社区学校建设，年内完成。\n", "base_revision": 2,
                                  "reason": "补充时限"}).status_code == 302
    edu = _as(new_browser, "edu-410105")
    text = edu.get(f"{url}/revisions/3").get_data(as_text=True)
    assert "-会议同意推进社区学校建设。" in text and "+会议同意推进社区学校建设，年内完成。" in text
    assert SECRET not in text


def test_the_convening_office_still_sees_its_drafts(published_after_a_draft):
    office, meeting_id = published_after_a_draft
    text = office.get(f"{DISTRICT}/{meeting_id}/minutes/revisions/2").get_data(as_text=True)
    assert f"-{SECRET}" in text  # its own diff, against its own draft
    assert SECRET in office.get(f"{DISTRICT}/{meeting_id}/minutes/revisions/1").get_data(as_text=True)


# --- 2. meeting lists and home-page counts show what the reader may open ---------------------

def test_a_liaison_of_an_invited_street_does_not_see_the_district_meeting(new_browser, people):
    office = _as(new_browser, "office-410105")
    meeting_id = _schedule(office, title="金水区联席会议MKR", starts_at=FUTURE)
    _move(office, meeting_id, "agenda_open")
    street = "/street/410105001"
    liaison = _as(new_browser, "edu-410105001")
    assert liaison.get(f"{street}/meetings/{meeting_id}/").status_code == 404
    headers = api_token(liaison.client, "edu-410105001")
    assert liaison.client.get(f"/api/v1/meetings/{meeting_id}", headers=headers).status_code == 404
    for url in (f"{street}/meetings/", f"{street}/meetings/?q=MKR", f"{street}/"):
        response = liaison.get(url)
        assert response.status_code == 200
        assert "金水区联席会议MKR" not in response.get_data(as_text=True), url
    # The invited street's office opens it, and so it is on its list and its home page.
    street_office = _as(new_browser, "office-410105001")
    assert street_office.get(f"{street}/meetings/{meeting_id}/").status_code == 200
    for url in (f"{street}/meetings/", f"{street}/meetings/?q=MKR", f"{street}/"):
        assert "金水区联席会议MKR" in street_office.get(url).get_data(as_text=True), url


def test_home_page_counts_only_tasks_the_reader_may_open(new_browser, people, tree, run_in_app):
    from datetime import date

    from portal.extensions import db
    from portal.models import Task

    def make():
        db.session.add(Task(unit_id=tree["410105001"].id, title="街道逾期任务", lead_department_code="edu",
                            co_department_codes=[], due_date=date(2020, 1, 1)))
    run_in_app(make)
    from portal.metrics import rebuild_all

    run_in_app(rebuild_all)  # written past the services: the stored figures count it after a rebuild
    liaison = _as(new_browser, "edu-410105")   # a liaison at the district: the street's task is not theirs
    page = liaison.get("/district/410105/").get_data(as_text=True)
    assert 'id="count-overdue-below"' not in page   # no count of what lies below, where nothing below is theirs
    office = _as(new_browser, "office-410105")
    assert 'id="count-overdue-below">1<' in office.get("/district/410105/").get_data(as_text=True)


# --- 3. a task's children: the page and the API list the instances the reader may open -----

@pytest.fixture
def passed_down(tree, run_in_app):
    """A district task passed down to two streets."""
    from datetime import date

    from portal.extensions import db
    from portal.models import Task

    def make():
        parent = Task(unit_id=tree["410105"].id, title="社区学校建设", lead_department_code="edu",
                      co_department_codes=[], due_date=date(2030, 12, 31), status="in_progress")
        db.session.add(parent)
        db.session.flush()
        children = [Task(unit_id=tree[code].id, parent_id=parent.id, root_id=parent.id, title="社区学校建设",
                         lead_department_code="edu", co_department_codes=[], due_date=date(2030, 12, 31),
                         progress=percent, status="in_progress")
                    for code, percent in (("410105001", 40), ("410105002", 70))]
        db.session.add_all(children)
        db.session.flush()
        return parent.id, [c.id for c in children]
    return run_in_app(make)


def test_the_api_lists_only_child_instances_the_caller_may_open(client, people, passed_down):
    parent_id, child_ids = passed_down
    liaison = api_token(client, "edu-410105")
    body = client.get(f"/api/v1/tasks/{parent_id}", headers=liaison).get_json()
    assert body["id"] == parent_id and body["children"] == []
    for child_id in child_ids:
        assert client.get(f"/api/v1/tasks/{child_id}", headers=liaison).status_code == 404
    office = api_token(client, "office-410105")
    body = client.get(f"/api/v1/tasks/{parent_id}", headers=office).get_json()
    assert [c["unit_code"] for c in body["children"]] == ["410105001", "410105002"]


def test_the_task_page_lists_only_child_instances_the_reader_may_open(new_browser, people, passed_down):
    parent_id, child_ids = passed_down
    url = f"/district/410105/tasks/{parent_id}/"
    liaison = _as(new_browser, "edu-410105")
    text = liaison.get(url).get_data(as_text=True)
    assert "经八路街道" not in text and "花园路街道" not in text
    assert 'id="children-table"' not in text and "2 个单位" not in text
    assert f"tasks/{child_ids[0]}/" not in text
    assert 'id="report-form"' not in text and 'name="percent"' not in text  # still passed down: no report form
    office = _as(new_browser, "office-410105")
    text = office.get(url).get_data(as_text=True)
    assert "经八路街道" in text and "花园路街道" in text


# --- 4. the Excel upload's row errors name nothing the uploader may not open --------------------

def _workbook(rows):
    import io

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "进度报送"
    ws.append(["任务编号", "单位", "任务名称", "进度(%)", "实际值", "进展情况"])
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    return out


def test_excel_row_errors_are_the_same_for_missing_and_not_yours(new_browser, people, passed_down):
    import re

    _parent_id, child_ids = passed_down
    missing = child_ids[-1] + 1000
    liaison = _as(new_browser, "edu-410105")   # gets 404 on the streets' instances
    url = "/district/410105/tasks/import"
    response = liaison.post_form(url + "?lang=en", {"file": (_workbook([[child_ids[0], "", "", 50, None, ""],
                                                                         [missing, "", "", 50, None, ""]]), "进度.xlsx")},
                                 page=url, content_type="multipart/form-data")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    messages = dict(re.findall(r"<tr><td>(\d+)</td><td><code>task_id</code></td><td>([^<]*)</td></tr>", page))
    assert set(messages) == {"2", "3"}
    assert messages["2"].replace(str(child_ids[0]), "#") == messages["3"].replace(str(missing), "#")
    for name in ("经八路街道", "花园路街道"):
        assert name not in page


# --- 5. found by the content matrix ----------------------------------------------------------

def test_a_liaison_is_not_shown_the_units_below_it_cannot_open(new_browser, client, people):
    """The units-below list, its search (and its htmx fragment), and the API's unit body."""
    username, workspace = "civil-410105", "/district/410105"
    b = _as(new_browser, username)
    for url, headers in ((f"{workspace}/", {}), (f"{workspace}/?q=街道", {}), (f"{workspace}/?q=4101", {}),
                         (f"{workspace}/?q=街道", {"HX-Request": "true"})):
        text = b.get(url, headers=headers).get_data(as_text=True)
        assert "经八路街道" not in text and "410105002" not in text, url
    assert b.get("/street/410105001/").status_code == 404
    body = client.get("/api/v1/units/410105", headers=api_token(client, username)).get_json()
    assert body["code"] == "410105" and body["children"] == []
    office = _as(new_browser, "office-410105")
    assert "经八路街道" in office.get(f"{workspace}/").get_data(as_text=True)
    body = client.get("/api/v1/units/410105", headers=api_token(client, "office-410105")).get_json()
    assert [c["code"] for c in body["children"]] == ["410105001", "410105002"]


@pytest.fixture
def decision_task(tree, people, run_in_app):
    """Published minutes of the district with a decision, the street invited; the district's task
    issued from the decision, and the street's instance of it."""
    from datetime import date

    from portal.extensions import db
    from portal.models import Decision, Meeting, MeetingUnitInvitation, Task

    def make():
        meeting = Meeting(unit_id=tree["410105"].id, title="金水区第一次联席会议", starts_at=datetime(2026, 1, 5, 9),
                          status="minutes_published",
                          unit_invitations=[MeetingUnitInvitation(unit_id=tree["410105001"].id)])
        db.session.add(meeting)
        db.session.flush()
        decision = Decision(meeting_id=meeting.id, text="年内建成标准化社区学校", lead_department_code="edu")
        db.session.add(decision)
        db.session.flush()
        district = Task(unit_id=tree["410105"].id, title="区级督办：社区学校", lead_department_code="edu",
                        co_department_codes=[], due_date=date(2030, 1, 1), decision_id=decision.id)
        db.session.add(district)
        db.session.flush()
        street = Task(unit_id=tree["410105001"].id, parent_id=district.id, root_id=district.id, title="街道实例",
                      lead_department_code="edu", co_department_codes=[], due_date=date(2030, 1, 1),
                      decision_id=decision.id)
        db.session.add(street)
        db.session.flush()
        return meeting.id, district.id, street.id
    return run_in_app(make)


def test_an_invited_office_does_not_see_the_conveners_tasks_on_the_meeting_page(new_browser, decision_task):
    meeting_id, district_task, _street_task = decision_task
    street_office = _as(new_browser, "office-410105001")
    text = street_office.get(f"/street/410105001/meetings/{meeting_id}/").get_data(as_text=True)
    assert "年内建成标准化社区学校" in text          # the decision is the meeting's
    assert "区级督办：社区学校" not in text           # the district's task is not the street's
    assert street_office.get(f"/district/410105/tasks/{district_task}/").status_code == 404
    office = _as(new_browser, "office-410105")
    assert "区级督办：社区学校" in office.get(f"/district/410105/meetings/{meeting_id}/").get_data(as_text=True)


def test_a_task_names_its_decision_and_meeting_only_to_those_who_may_open_the_meeting(new_browser, decision_task):
    meeting_id, _district_task, street_task = decision_task
    url = f"/street/410105001/tasks/{street_task}/"
    liaison = _as(new_browser, "civil-410105001")   # sees the street's task, not the district's meeting
    assert liaison.get(f"/street/410105001/meetings/{meeting_id}/").status_code == 404
    text = liaison.get(url).get_data(as_text=True)
    assert "金水区第一次联席会议" not in text and "年内建成标准化社区学校" not in text
    assert 'id="lineage-decision"' in text and "金水区联席会议的议定事项" in text
    office = _as(new_browser, "office-410105001")  # the invited office opens the meeting: the link is there
    text = office.get(url).get_data(as_text=True)
    assert "金水区第一次联席会议" in text and "年内建成标准化社区学校" in text
    link = f"/street/410105001/meetings/{meeting_id}/"      # through its own workspace, which it may open
    assert f'href="{link}"' in text and office.get(link).status_code == 200


def test_an_account_page_shows_only_the_seats_its_reader_may_open(new_browser, tree, people, create_user,
                                                                  run_in_app):
    from portal.extensions import db
    from portal.models import Membership

    user = create_user("two-seats", tree["410102"], "liaison", "women")
    run_in_app(lambda: db.session.add(Membership(user_id=user.id, unit_id=tree["410105001"].id, role="liaison",
                                                 department_code="women")))
    sibling = _as(new_browser, "office-410102")    # administers the seat at 中原区, not the one at 经八路街道
    for url in ("/district/410102/accounts/", f"/district/410102/accounts/{user.id}",
                "/district/410102/accounts/?q=two"):
        text = sibling.get(url).get_data(as_text=True)
        assert "TWO-SEATS" in text and "中原区 ·" in text, url
        assert "经八路街道" not in text, url
    office = _as(new_browser, "office-410105")
    assert "经八路街道 ·" in office.get(f"/district/410105/accounts/{user.id}").get_data(as_text=True)


def test_the_api_does_not_tell_others_that_draft_minutes_exist(client, new_browser, people):
    office = _as(new_browser, "office-410105")
    meeting_id = _schedule(office)
    for to in ("agenda_open", "agenda_locked", "held"):
        _move(office, meeting_id, to)
    url = f"{DISTRICT}/{meeting_id}/minutes"
    office.post_form(url, {"body": f"{SECRET}\n", "base_revision": 0})
    office.post_form(url, {"body": "第二稿\n", "base_revision": 1})
    for reader in ("edu-410105", "viewer-41", "office-410105001"):
        body = client.get(f"/api/v1/meetings/{meeting_id}", headers=api_token(client, reader)).get_json()
        assert body["minutes"] == {"state": "none", "revision": 0}, reader
    body = client.get(f"/api/v1/meetings/{meeting_id}", headers=api_token(client, "office-410105")).get_json()
    assert body["minutes"] == {"state": "draft", "revision": 2}
    _move(office, meeting_id, "minutes_published")
    body = client.get(f"/api/v1/meetings/{meeting_id}", headers=api_token(client, "edu-410105")).get_json()
    assert body["minutes"] == {"state": "published", "revision": 2}


def test_the_sql_rules_for_lists_agree_with_the_rules_for_pages(app, tree, people, passed_down, decision_task,
                                                                  run_in_app):
    """Lists filter in SQL, pages check one object in Python: both must say the same for everyone."""
    from sqlalchemy import select

    from portal import access
    from portal.extensions import db
    from portal.models import Meeting, Task, Unit, User

    def check():
        meetings = db.session.scalars(select(Meeting)).all()
        tasks = db.session.scalars(select(Task)).all()
        units = db.session.scalars(select(Unit)).all()
        assert meetings and tasks
        for user in db.session.scalars(select(User)).all():
            with app.test_request_context():
                listed = set(db.session.scalars(select(Meeting.id).where(access.visible_meetings_clause(user))))
                assert listed == {m.id for m in meetings if access.can_see_meeting(user, m)}, user.username
                listed = set(db.session.scalars(select(Task.id).where(access.visible_tasks_clause(user))))
                assert listed == {t.id for t in tasks if access.can_see_task(user, t)}, user.username
                listed = set(db.session.scalars(select(Unit.id).where(access.visible_units_clause(user))))
                assert listed == {u.id for u in units if access.can(user, access.Permission.VIEW, u)}, user.username
    run_in_app(check)
