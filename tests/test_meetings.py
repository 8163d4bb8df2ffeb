"""The joint-meeting cycle through the pages and through the API, and its refusals."""
from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AgendaItem, AuditLog, Meeting, MinutesRevision, Notification
from tests.conftest import api_token

PAST = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
FUTURE = (datetime.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
BASE = "/district/410105/meetings"


def _schedule(b, **overrides):
    data = {"title": "2026年第一季度社区教育联席会议", "starts_at": PAST, "location": "区教育局三楼会议室",
            "series": "regular", "departments": ["edu", "civil", "women"]}
    data.update(overrides)
    response = b.post_form(f"{BASE}/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _move(b, meeting_id, to, **extra):
    return b.post_form(f"{BASE}/{meeting_id}/transition", dict(to=to, **extra), page=f"{BASE}/{meeting_id}/")


def _status(run_in_app, meeting_id):
    return run_in_app(lambda: db.session.get(Meeting, meeting_id).status)


def _items(run_in_app, meeting_id):
    return run_in_app(lambda: [(i.title, i.status, i.department_code, i.kind) for i in
                               db.session.scalars(select(AgendaItem).where(AgendaItem.meeting_id == meeting_id)
                                                  .order_by(AgendaItem.position, AgendaItem.id))])


@pytest.fixture
def office(new_browser, people):
    b = new_browser()
    assert b.login("office-410105").status_code == 302
    return b


def _as(new_browser, name):
    b = new_browser()
    assert b.login(name).status_code == 302
    return b


def test_whole_cycle_through_the_pages(office, new_browser, people, run_in_app, run_jobs):
    meeting_id = _schedule(office, units=["410105001"])
    assert _status(run_in_app, meeting_id) == "draft"
    assert _move(office, meeting_id, "agenda_open").status_code == 302
    run_jobs()
    # Invitees hear of it: the liaisons of invited departments and the invited street office.
    recipients = run_in_app(lambda: sorted(n.user_id for n in db.session.scalars(
        select(Notification).where(Notification.kind == "meeting_invited"))))
    assert recipients == sorted([people["edu-410105"].id, people["civil-410105"].id, people["office-410105001"].id])

    edu = _as(new_browser, "edu-410105")
    page = edu.get(f"{BASE}/{meeting_id}/").get_data(as_text=True)
    assert 'id="propose"' in page
    pdf = (io.BytesIO(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"), "社区学校建设方案.pdf")
    response = edu.post_form(f"{BASE}/{meeting_id}/items", {"title": "推进社区学校标准化建设",
                                                          "description": "请审议建设方案", "material": pdf},
                             page=f"{BASE}/{meeting_id}/", content_type="multipart/form-data")
    assert response.status_code == 302
    civil = _as(new_browser, "civil-410105")
    civil.post_form(f"{BASE}/{meeting_id}/items", {"title": "社区老年教育场地", "description": ""},
                    page=f"{BASE}/{meeting_id}/")
    civil.post_form(f"{BASE}/{meeting_id}/items", {"title": "老年大学分校", "description": ""},
                    page=f"{BASE}/{meeting_id}/")
    items = run_in_app(lambda: {i.title: i.id for i in db.session.scalars(select(AgendaItem))})
    page_url = f"{BASE}/{meeting_id}/"
    office.post_form(f"{BASE}/{meeting_id}/items/{items['推进社区学校标准化建设']}/decide", {"action": "accept"}, page=page_url)
    office.post_form(f"{BASE}/{meeting_id}/items/{items['社区老年教育场地']}/decide", {"action": "accept"}, page=page_url)
    office.post_form(f"{BASE}/{meeting_id}/items/{items['老年大学分校']}/decide",
                     {"action": "merge", "merge_into": items["社区老年教育场地"], "reason": "同一事项"}, page=page_url)
    # Reorder: the elder-education item goes first.
    office.post_form(f"{BASE}/{meeting_id}/items/{items['社区老年教育场地']}/move", {"direction": "up"}, page=page_url)
    assert [t for t, s, _d, _k in _items(run_in_app, meeting_id) if s == "accepted"] == ["社区老年教育场地", "推进社区学校标准化建设"]

    assert _move(office, meeting_id, "agenda_locked").status_code == 302
    # The shared agenda is the same for an invitee, the street office invited, and the city above.
    for name, base in (("edu-410105", BASE), ("office-410105001", "/street/410105001/meetings"),
                       ("office-4101", "/district/410105/meetings")):
        shared = _as(new_browser, name).get(f"{base}/{meeting_id}/").get_data(as_text=True)
        agenda = shared[shared.index('id="agenda-items"'):shared.index("</ol>", shared.index('id="agenda-items"'))]
        assert agenda.index("社区老年教育场地") < agenda.index("推进社区学校标准化建设"), name
        assert "社区学校建设方案.pdf" in agenda
    # Sign-in on the day.
    for dept, status, extra in (("edu", "present", {"attendee_name": "张三"}),
                                ("civil", "delegate", {"delegate_name": "李四"}),
                                ("women", "absent", {"reason": "出差"})):
        assert office.post_form(f"{BASE}/{meeting_id}/attendance", dict(department=dept, status=status, **extra),
                                page=page_url).status_code == 302
    assert _move(office, meeting_id, "held").status_code == 302
    # Minutes: the first draft carries a heading per agenda item; not the sign-in, which the minutes
    # document prints once from the sign-in itself.
    editor = office.get(f"{BASE}/{meeting_id}/minutes").get_data(as_text=True)
    draft = editor[editor.index("<textarea"):editor.index("</textarea>")]
    assert "### 社区老年教育场地" in draft and "### 推进社区学校标准化建设" in draft and "李四" not in draft
    body = "## 出席情况\n\n- 教育：出席\n\n## 议题讨论\n\n会议同意推进社区学校建设。\n"
    assert office.post_form(f"{BASE}/{meeting_id}/minutes", {"body": body, "base_revision": 0}).status_code == 302
    assert office.post_form(f"{BASE}/{meeting_id}/minutes", {"body": body + "\n补充。\n", "base_revision": 1}).status_code == 302
    office.post_form(f"{BASE}/{meeting_id}/decisions", {"text": "各街道年内建成标准化社区学校", "lead_department": "edu",
                                                        "co_departments": ["civil", "finance"], "due_date": "2026-12-31"},
                     page=page_url)
    assert _move(office, meeting_id, "minutes_published").status_code == 302
    assert _status(run_in_app, meeting_id) == "minutes_published"
    published = edu.get(f"{BASE}/{meeting_id}/minutes").get_data(as_text=True)
    assert "会议同意推进社区学校建设" in published and 'id="minutes-form"' not in published
    revisions = run_in_app(lambda: [(r.number, r.author.username) for r in db.session.scalars(
        select(MinutesRevision).order_by(MinutesRevision.number))])
    assert revisions == [(1, "office-410105"), (2, "office-410105")]
    diff = edu.get(f"{BASE}/{meeting_id}/minutes/revisions/2").get_data(as_text=True)
    assert "+补充。" in diff
    # Downloads work for an invitee; each has its own plain-ASCII fallback name.
    names = set()
    for path in ("notice.docx", "minutes.docx", "meeting.ics"):
        response = edu.get(f"{BASE}/{meeting_id}/{path}")
        assert response.status_code == 200, path
        fallback = response.headers["Content-Disposition"].split('filename="')[1].split('"')[0]
        assert fallback.isascii() and fallback.endswith(path.rsplit(".", 1)[1])
        names.add(fallback)
    assert len(names) == 3
    ics = edu.get(f"{BASE}/{meeting_id}/meeting.ics")
    assert ics.status_code == 200 and b"BEGIN:VCALENDAR" in ics.data
    # The calendar entry's UID is the UUID kept with the meeting, not built from the Host header.
    uid = run_in_app(lambda: db.session.get(Meeting, meeting_id).uid)
    assert str(Calendar.from_ical(ics.data).walk("VEVENT")[0]["UID"]) == uid
    # Every step is audited.
    actions = run_in_app(lambda: set(db.session.scalars(select(AuditLog.action))))
    assert {"meeting.create", "meeting.transition", "agenda.propose", "agenda.accept", "agenda.merge",
            "meeting.attendance", "minutes.save", "decision.create", "minutes.publish"} <= actions


def test_refusals(office, new_browser, people, run_in_app, tree, create_user):
    meeting_id = _schedule(office, departments=["edu"])
    page_url = f"{BASE}/{meeting_id}/"
    # Before the invitations go out, an invited department's liaison sees nothing of the draft.
    edu = _as(new_browser, "edu-410105")
    edu.get("/notifications/?lang=en")  # read the refusal in English
    assert edu.get(page_url).status_code == 404
    assert edu.post_form(f"{BASE}/{meeting_id}/items", {"title": "太早"}, page="/notifications/").status_code == 404
    _move(office, meeting_id, "agenda_open")
    # A department that was not invited does not get to propose.
    civil = _as(new_browser, "civil-410105")
    page = civil.get(page_url).get_data(as_text=True)
    assert 'id="propose"' not in page
    assert civil.post_form(f"{BASE}/{meeting_id}/items", {"title": "未受邀"}, page=page_url).status_code == 403
    # A sibling district sees nothing, a street not invited neither.
    assert _as(new_browser, "office-410102").get(f"/district/410102/meetings/{meeting_id}/").status_code == 404
    assert _as(new_browser, "office-410102").get(page_url).status_code == 404
    assert _as(new_browser, "office-410105002").get(f"/street/410105002/meetings/{meeting_id}/").status_code == 404
    # A liaison cannot move the meeting nor publish.
    assert _move(edu, meeting_id, "agenda_locked").status_code == 403
    # Illegal transition: from agenda_open straight to held.
    illegal = _move(office, meeting_id, "held")
    assert illegal.status_code == 302 and _status(run_in_app, meeting_id) == "agenda_open"
    # Cancel needs a reason.
    _move(office, meeting_id, "cancelled")
    assert _status(run_in_app, meeting_id) == "agenda_open"
    assert _items(run_in_app, meeting_id) == []
    assert illegal.headers["Location"].endswith(f"/meetings/{meeting_id}/")


def test_office_staff_cannot_publish(new_browser, people, run_in_app):
    staff = _as(new_browser, "staff-410105")
    meeting_id = _schedule(staff, departments=["edu"])
    for to in ("agenda_open", "agenda_locked", "held"):
        assert _move(staff, meeting_id, to).status_code == 302
    staff.post_form(f"{BASE}/{meeting_id}/minutes", {"body": "纪要正文", "base_revision": 0})
    assert _move(staff, meeting_id, "minutes_published").status_code == 403
    assert _status(run_in_app, meeting_id) == "held"


def test_minutes_conflict_keeps_the_losers_text(office, new_browser, people, run_in_app):
    meeting_id = _schedule(office, departments=["edu"])
    for to in ("agenda_open", "agenda_locked", "held"):
        _move(office, meeting_id, to)
    other = _as(new_browser, "office-4101")  # the city office edits the same minutes
    url = f"/district/410105/meetings/{meeting_id}/minutes"
    assert other.post_form(url, {"body": "城市办公室的版本", "base_revision": 0}).status_code == 302
    loser = office.post_form(url, {"body": "区办公室的版本", "base_revision": 0})
    assert loser.status_code == 409
    text = loser.get_data(as_text=True)
    assert "区办公室的版本" in text and "城市办公室的版本" in text  # both kept on screen
    assert run_in_app(lambda: db.session.scalar(select(func.count(MinutesRevision.id)))) == 1


def test_published_minutes_need_a_reason_to_correct(office, people, run_in_app):
    meeting_id = _schedule(office, departments=["edu"])
    for to in ("agenda_open", "agenda_locked", "held"):
        _move(office, meeting_id, to)
    url = f"{BASE}/{meeting_id}/minutes"
    office.post_form(url, {"body": "原文", "base_revision": 0})
    _move(office, meeting_id, "minutes_published")
    assert office.post_form(url, {"body": "更正后", "base_revision": 1}).status_code == 400
    assert office.post_form(url, {"body": "更正后", "base_revision": 1, "reason": "错别字"}).status_code == 302
    rows = run_in_app(lambda: [(r.number, r.reason, r.published) for r in db.session.scalars(
        select(MinutesRevision).order_by(MinutesRevision.number))])
    assert rows == [(1, "", True), (2, "错别字", True)]


def test_open_decisions_and_deferred_items_carry_over(office, new_browser, people, run_in_app):
    first = _schedule(office, departments=["edu", "civil"], starts_at=(datetime.now() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"))
    _move(office, first, "agenda_open")
    edu = _as(new_browser, "edu-410105")
    edu.post_form(f"{BASE}/{first}/items", {"title": "延后的议题"}, page=f"{BASE}/{first}/")
    item_id = run_in_app(lambda: db.session.scalar(select(AgendaItem.id)))
    office.post_form(f"{BASE}/{first}/items/{item_id}/decide", {"action": "defer", "reason": "材料不全"},
                     page=f"{BASE}/{first}/")
    for to in ("agenda_locked", "held"):
        _move(office, first, to)
    office.post_form(f"{BASE}/{first}/decisions", {"text": "完善社区教育经费保障", "lead_department": "finance"},
                     page=f"{BASE}/{first}/")
    second = _schedule(office, title="第二季度联席会议", departments=["edu", "civil"], starts_at=FUTURE)
    items = _items(run_in_app, second)
    assert items[0][1:] == ("accepted", "finance", "review") and "完善社区教育经费保障" in items[0][0]
    page = office.get(f"{BASE}/{second}/").get_data(as_text=True)
    assert 'id="offers"' in page and "延后的议题" in page
    offer_id = item_id
    assert office.post_form(f"{BASE}/{second}/carry/{offer_id}", page=f"{BASE}/{second}/").status_code == 302
    assert ("延后的议题", "accepted", "edu", "carried") in _items(run_in_app, second)
    # Offered once only.
    assert 'id="offers"' not in office.get(f"{BASE}/{second}/").get_data(as_text=True)


def test_disguised_and_oversized_uploads_are_refused(office, new_browser, people, run_in_app, app, monkeypatch):
    meeting_id = _schedule(office, departments=["edu"])
    _move(office, meeting_id, "agenda_open")
    edu = _as(new_browser, "edu-410105")
    page_url = f"{BASE}/{meeting_id}/"
    disguised = (io.BytesIO(b"<html><script>alert(1)</script></html>"), "方案.pdf")
    response = edu.post_form(f"{BASE}/{meeting_id}/items", {"title": "伪装文件", "material": disguised},
                             page=page_url, content_type="multipart/form-data", follow_redirects=True)
    assert run_in_app(lambda: db.session.scalar(select(func.count(AgendaItem.id)))) == 0  # nothing half-saved
    assert "方案.pdf" in response.get_data(as_text=True)  # the message names the file
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 1024)
    big = (io.BytesIO(b"%PDF-1.4\n" + b"0" * 4096), "big.pdf")
    edu.post_form(f"{BASE}/{meeting_id}/items", {"title": "大文件", "material": big}, page=page_url,
                  content_type="multipart/form-data")
    assert run_in_app(lambda: db.session.scalar(select(func.count(AgendaItem.id)))) == 0


def test_meeting_list_search_filter_and_pagination(office, people):
    for i in range(23):
        _schedule(office, title=f"专题会议{i:02d}", departments=["edu"])
    _schedule(office, title="年度总结会", departments=["edu"], starts_at="2025-12-20T09:00")
    page1 = office.get(f"{BASE}/").get_data(as_text=True)
    assert "24" in page1 and "page=2" in page1
    assert "年度总结会" in office.get(f"{BASE}/?q=总结").get_data(as_text=True)
    assert "专题会议" not in office.get(f"{BASE}/?q=总结").get_data(as_text=True)
    only_2025 = office.get(f"{BASE}/?year=2025").get_data(as_text=True)
    assert "年度总结会" in only_2025 and "专题会议01" not in only_2025
    assert "专题会议" not in office.get(f"{BASE}/?status=held").get_data(as_text=True)


# --- API ---------------------------------------------------------------------

def test_cycle_through_the_api(client, people):
    office = api_token(client, "office-410105")
    created = client.post("/api/v1/units/410105/meetings", headers=office, json={
        "title": "API 联席会议", "starts_at": PAST, "location": "线上", "invited_departments": ["edu", "civil"]})
    assert created.status_code == 201, created.get_json()
    meeting_id = created.get_json()["id"]
    assert client.post(f"/api/v1/meetings/{meeting_id}/transitions", headers=office,
                       json={"to": "agenda_open"}).get_json()["status"] == "agenda_open"
    edu = api_token(client, "edu-410105")
    item = client.post(f"/api/v1/meetings/{meeting_id}/agenda-items", headers=edu,
                       json={"title": "社区教育经费", "description": "说明"})
    assert item.status_code == 201 and item.get_json()["department"] == "edu"
    body = client.get(f"/api/v1/meetings/{meeting_id}", headers=edu).get_json()
    assert body["status"] == "agenda_open"
    assert body["agenda"][0] == {"id": item.get_json()["id"], "title": "社区教育经费", "department": "edu",
                                 "status": "proposed", "position": 1, "kind": "proposal"}
    assert body["minutes"] == {"state": "none", "revision": 0}
    illegal = client.post(f"/api/v1/meetings/{meeting_id}/transitions", headers=office, json={"to": "held"})
    assert illegal.status_code == 400 and illegal.get_json()["error"]["field"] == "to"
    assert client.post(f"/api/v1/meetings/{meeting_id}/transitions", headers=edu,
                       json={"to": "agenda_locked"}).status_code == 403


def test_api_refusals(client, people):
    office = api_token(client, "office-410105")
    meeting_id = client.post("/api/v1/units/410105/meetings", headers=office, json={
        "title": "受限会议", "starts_at": FUTURE, "invited_departments": ["edu"]}).get_json()["id"]
    client.post(f"/api/v1/meetings/{meeting_id}/transitions", headers=office, json={"to": "agenda_open"})
    civil = api_token(client, "civil-410105")
    refused = client.post(f"/api/v1/meetings/{meeting_id}/agenda-items", headers=civil, json={"title": "x"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    sibling = api_token(client, "office-410102")
    assert client.get(f"/api/v1/meetings/{meeting_id}", headers=sibling).status_code == 404
    assert client.post(f"/api/v1/meetings/{meeting_id}/transitions", headers=sibling,
                       json={"to": "cancelled", "reason": "x"}).status_code == 404
    assert client.post("/api/v1/units/410105/meetings", headers=sibling,
                       json={"title": "x", "starts_at": FUTURE}).status_code == 404
    bad = client.post("/api/v1/units/410105/meetings", headers=office, json={"title": "x", "starts_at": "明天"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "starts_at"
    unknown = client.post("/api/v1/units/410105/meetings", headers=office,
                          json={"title": "x", "starts_at": FUTURE, "invited_departments": ["nope"]})
    assert unknown.status_code == 400 and "nope" in unknown.get_json()["error"]["message"]
    liaison_creates = client.post("/api/v1/units/410105/meetings", headers=api_token(client, "edu-410105"),
                                  json={"title": "x", "starts_at": FUTURE})
    assert liaison_creates.status_code == 403


def test_times_with_one_digit_hours_are_understood(client, people):
    office = api_token(client, "office-410105")
    created = client.post("/api/v1/units/410105/meetings", headers=office,
                          json={"title": "九点的会", "starts_at": "2030-12-10 9:00", "invited_departments": ["edu"]})
    assert created.status_code == 201 and created.get_json()["starts_at"] == "2030-12-10T09:00"


def test_simultaneous_transitions_do_not_overwrite(people, run_in_app, app):
    """Two offices move the same meeting at once: the second gets a conflict, not a silent overwrite."""
    from sqlalchemy.orm.exc import StaleDataError

    from portal.models import Unit, User
    from portal.services import meetings as svc

    def schedule():
        office = db.session.get(User, people["office-410105"].id)
        return svc.create_meeting(db.session.get(Unit, office.home_unit_id), {
            "title": "并发", "starts_at": FUTURE, "invited_departments": ["edu"]}, by=office).id
    meeting_id = run_in_app(schedule)
    with app.app_context():
        first = db.session.get(Meeting, meeting_id)
        first_office = db.session.get(User, people["office-410105"].id)
        with app.app_context():  # a second request, with its own session, commits first
            svc.transition(db.session.get(Meeting, meeting_id), "cancelled", reason="取消",
                           by=db.session.get(User, people["office-4101"].id))
            db.session.commit()
            db.session.remove()
        with pytest.raises(StaleDataError):
            svc.transition(first, "agenda_open", by=first_office)
            db.session.commit()
        db.session.rollback()
        db.session.remove()
    assert run_in_app(lambda: db.session.get(Meeting, meeting_id).status) == "cancelled"


def test_edit_with_a_stale_version_keeps_the_input(office, new_browser, people, run_in_app):
    meeting_id = _schedule(office, starts_at=FUTURE, departments=["edu"])
    url = f"{BASE}/{meeting_id}/edit"
    version = run_in_app(lambda: db.session.get(Meeting, meeting_id).version)
    ok = office.post_form(url, {"title": "改期后的会议", "starts_at": FUTURE, "location": "新会场", "version": version})
    assert ok.status_code == 302
    stale = office.post_form(url, {"title": "我的旧输入", "starts_at": FUTURE, "location": "旧会场", "version": version})
    assert stale.status_code == 409 and "我的旧输入" in stale.get_data(as_text=True)
    assert run_in_app(lambda: db.session.get(Meeting, meeting_id).title) == "改期后的会议"
    assert _as(new_browser, "edu-410105").get(url).status_code == 404  # a draft: not even seen
    _move(office, meeting_id, "agenda_open")
    assert _as(new_browser, "edu-410105").get(url).status_code == 403


def test_the_notice_keeps_its_issue_date_and_the_calendar_entry_its_uid_with_a_rising_sequence(
        people, tree, run_in_app, monkeypatch):
    """Issued when the invitations go out, re-issued when the agenda is circulated; downloaded later it
    still carries that date. A change of time or place raises SEQUENCE; the UID stays."""
    from datetime import date, datetime

    from portal.exports import official
    from portal.models import Meeting, Unit, User
    from portal.services import meetings as svc

    days = iter([datetime(2026, 9, 1, 10), datetime(2026, 9, 8, 10)])
    monkeypatch.setattr(svc, "local_now", lambda: next(days))

    def entry(meeting):
        event = Calendar.from_ical(official.ics(meeting)).walk("VEVENT")[0]
        return str(event["UID"]), int(event["SEQUENCE"])

    def build():
        office = db.session.get(User, people["office-410105"].id)
        meeting = svc.create_meeting(db.session.get(Unit, tree["410105"].id), {
            "title": "专题会议", "starts_at": "2026-09-21 14:30", "invited_departments": ["edu"]}, by=office)
        assert meeting.notice_issued_on is None
        first = entry(meeting)
        svc.transition(meeting, "agenda_open", by=office)
        assert meeting.notice_issued_on == date(2026, 9, 1)
        svc.update_meeting(meeting, {"location": "区政务服务中心"}, by=office)
        second = entry(meeting)
        svc.update_meeting(meeting, {"notice_number": "金社教〔2026〕9号"}, by=office)
        third = entry(meeting)
        svc.transition(meeting, "agenda_locked", by=office)
        assert meeting.notice_issued_on == date(2026, 9, 8)
        fourth = entry(meeting)
        return first, second, third, fourth, meeting.id

    first, second, third, fourth, meeting_id = run_in_app(build)
    assert len({uid for uid, _ in (first, second, third, fourth)}) == 1
    assert first[1] < second[1] < third[1] < fourth[1]

    def download():
        import docx
        import io

        document = docx.Document(io.BytesIO(official.notice_docx(db.session.get(Meeting, meeting_id))))
        return [p.text for p in document.paragraphs if p.style.name == "Official Signature"]

    assert run_in_app(download) == ["金水区社区教育办公室", "2026年9月8日"]
