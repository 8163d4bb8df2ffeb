"""Access by content where it used to leak: draft meetings seen by their invitees before the
invitations went out, notifications that kept their text after the reader lost the unit.
(/healthz's details are tested in tests/test_sessions.py.)"""
from __future__ import annotations

from datetime import datetime, timedelta

from portal.extensions import db
from portal.models import Membership
from tests.conftest import api_token

FUTURE = (datetime.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
DISTRICT = "/district/410105/meetings"
STREET = "/street/410105001/meetings"
TITLE = "金水区草稿联席会议甲"


def _as(new_browser, name):
    b = new_browser()
    assert b.login(name).status_code == 302
    return b


def _schedule(office, title=TITLE):
    response = office.post_form(f"{DISTRICT}/new", {
        "title": title, "starts_at": FUTURE, "location": "区教育局三楼会议室", "series": "regular",
        "departments": ["edu", "civil"], "units": ["410105001"]})
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _move(office, meeting_id, to, **extra):
    response = office.post_form(f"{DISTRICT}/{meeting_id}/transition", dict(to=to, **extra),
                                page=f"{DISTRICT}/{meeting_id}/")
    assert response.status_code == 302, response.get_data(as_text=True)[-1500:]


def _sees(b, client_headers, base, meeting_id, title):
    """What the reader notices of the meeting: the list, the workspace home, the page, the .ics, the API."""
    listed = title in b.get(f"{base}/").get_data(as_text=True)
    home = title in b.get(base.rsplit("/meetings", 1)[0] + "/").get_data(as_text=True)
    page = b.get(f"{base}/{meeting_id}/").status_code
    ics = b.get(f"{base}/{meeting_id}/meeting.ics").status_code
    api = b.client.get(f"/api/v1/meetings/{meeting_id}", headers=client_headers).status_code
    return listed, home, page, ics, api


def test_a_draft_meeting_is_the_convening_office_s_until_the_invitations_go_out(new_browser, people, run_jobs):
    office = _as(new_browser, "office-410105")
    meeting_id = _schedule(office)
    street = _as(new_browser, "office-410105001")
    liaison = _as(new_browser, "edu-410105")
    viewer = _as(new_browser, "viewer-4101")
    above = _as(new_browser, "office-4101")
    tokens = {name: api_token(b.client, name) for name, b in (("office-410105001", street), ("edu-410105", liaison),
                                                              ("viewer-4101", viewer), ("office-4101", above))}

    # A draft: the invited street office, the invited department's liaison and a leader above see nothing
    # of it, and its page, calendar entry and API answer 404 as for a meeting that does not exist.
    assert _sees(street, tokens["office-410105001"], STREET, meeting_id, TITLE) == (False, False, 404, 404, 404)
    assert _sees(liaison, tokens["edu-410105"], DISTRICT, meeting_id, TITLE) == (False, False, 404, 404, 404)
    assert _sees(viewer, tokens["viewer-4101"], DISTRICT, meeting_id, TITLE) == (False, False, 404, 404, 404)
    # The convening office and the office above it (which may edit it) do.
    assert _sees(above, tokens["office-4101"], DISTRICT, meeting_id, TITLE)[2:] == (200, 200, 200)
    assert TITLE in above.get(f"{DISTRICT}/").get_data(as_text=True)

    # The invitations go out: every invitee sees it now.
    _move(office, meeting_id, "agenda_open")
    run_jobs()
    assert _sees(street, tokens["office-410105001"], STREET, meeting_id, TITLE) == (True, True, 200, 200, 200)
    assert _sees(liaison, tokens["edu-410105"], DISTRICT, meeting_id, TITLE)[0::2] == (True, 200, 200)
    assert _sees(viewer, tokens["viewer-4101"], DISTRICT, meeting_id, TITLE)[2:] == (200, 200, 200)


def test_a_meeting_cancelled_as_a_draft_never_reaches_its_invitees(new_browser, people, run_jobs):
    office = _as(new_browser, "office-410105")
    meeting_id = _schedule(office, title="金水区草稿联席会议乙")
    _move(office, meeting_id, "cancelled", reason="日程冲突")
    run_jobs()
    street = _as(new_browser, "office-410105001")
    token = api_token(street.client, "office-410105001")
    assert _sees(street, token, STREET, meeting_id, "金水区草稿联席会议乙") == (False, False, 404, 404, 404)
    assert "金水区草稿联席会议乙" not in street.get("/notifications/").get_data(as_text=True)
    assert office.get(f"{DISTRICT}/{meeting_id}/").status_code == 200



def test_an_invited_street_reads_who_else_is_invited_and_nothing_of_theirs(new_browser, people, run_jobs):
    """A joint meeting's attendees know each other (docs/domain.md: a higher tier invites lower-tier offices):
    the invited street reads the names of the other invited streets, as on the printed notice, and no link
    to them; agenda items, materials and sign-in belong to the convening unit's departments, none to a street."""
    office = _as(new_browser, "office-410105")
    response = office.post_form(f"{DISTRICT}/new", {
        "title": "金水区联席会议丁", "starts_at": FUTURE, "location": "区教育局三楼会议室", "series": "regular",
        "departments": ["edu"], "units": ["410105001", "410105002"]})
    meeting_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    _move(office, meeting_id, "agenda_open")
    street = _as(new_browser, "office-410105001")
    page = street.get(f"{STREET}/{meeting_id}/").get_data(as_text=True)
    assert "花园路街道" in page and "/street/410105002/" not in page
    assert street.get(f"/street/410105002/meetings/{meeting_id}/").status_code == 404


# --- notifications after a membership is revoked ----------------------------------

TASK_TITLE = "开展社区老年教育甲"


def test_notifications_about_a_unit_withhold_their_text_once_its_membership_is_revoked(
        new_browser, client, people, tree, create_user, run_in_app, run_jobs):
    from portal.models import Role

    two = create_user("two-seats", tree["410105001"], Role.OFFICE_STAFF)
    run_in_app(lambda: db.session.add(Membership(user_id=two.id, unit_id=tree["410105002"].id,
                                                 role=Role.OFFICE_STAFF.value)))
    office = _as(new_browser, "office-410105")
    meeting_id = _schedule(office, title="金水区联席会议丙")
    _move(office, meeting_id, "agenda_open")
    district = api_token(client, "office-410105")
    task_id = client.post("/api/v1/units/410105/tasks", headers=district, json={
        "title": TASK_TITLE, "description": "", "lead_department": "edu", "co_departments": [],
        "due_date": (datetime.now() + timedelta(days=30)).date().isoformat(), "weight": 1}).get_json()["id"]
    assert client.post(f"/api/v1/tasks/{task_id}/cascade", headers=district, json={"to": "children"}).status_code == 202
    run_jobs()

    reader = _as(new_browser, "two-seats")

    def listed():
        page = reader.get("/notifications/").get_data(as_text=True)
        return page.split('id="notifications"', 1)[1].split("</ul>", 1)[0]

    page = listed()
    assert "金水区联席会议丙" in page and page.count(TASK_TITLE) == 2 and "已无权查看" not in page

    # The seat at 410105001 is revoked: what was about 410105001 keeps neither its text nor its link;
    # what is about 410105002 is untouched.
    run_in_app(lambda: db.session.query(Membership).filter_by(user_id=two.id, unit_id=tree["410105001"].id).delete())
    page = listed()
    assert "金水区联席会议丙" not in page and page.count(TASK_TITLE) == 1
    assert page.count("该通知涉及您已无权查看的内容") == 2
    # Opening a withheld note marks it read and does not lead to what the reader may not open.
    from portal.models import Notification
    withheld = run_in_app(lambda: [n.id for n in db.session.query(Notification).filter_by(user_id=two.id)
                                   if "/410105001/" in (n.link or "")])
    assert len(withheld) == 2
    response = reader.post_form(f"/notifications/{withheld[0]}/read", page="/notifications/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/notifications/")
    other = run_in_app(lambda: next(n.id for n in db.session.query(Notification).filter_by(user_id=two.id)
                                    if "/410105002/" in (n.link or "")))
    response = reader.post_form(f"/notifications/{other}/read", page="/notifications/")
    assert "/street/410105002/tasks/" in response.headers["Location"]
    response = reader.post_form(f"/notifications/{withheld[1]}/read", page="/notifications/")
    assert response.headers["Location"].endswith("/notifications/")
    page = listed()  # all read now: the readable note links to its task, the withheld ones link nowhere
    assert "/street/410105002/tasks/" in page and "/street/410105001/" not in page
    assert page.count("该通知涉及您已无权查看的内容") == 2


def test_the_notification_page_checks_access_in_one_query_whatever_the_number_of_notes(
        new_browser, people, run_in_app, app):
    from sqlalchemy import event

    from portal.models import Notification

    user_id = people["office-410105"].id

    def add(n, start):
        def build():
            for i in range(start, start + n):
                kind = ("meetings", "tasks")[i % 2]
                db.session.add(Notification(user_id=user_id, kind="meeting_reminder" if kind == "meetings"
                                            else "task_assigned", link=f"/street/41010500{1 + i % 2}/{kind}/{i}/",
                                            params={"title": f"通知{i}", "unit": "金水区", "when": "2026-12-01 09:00",
                                                    "due": "2026-12-31"}, dedupe_key=f"test:{i}"))
        run_in_app(build)

    reader = _as(new_browser, "office-410105")
    with app.app_context():
        engine = db.engine
    counts = []
    for n, start in ((2, 0), (17, 2)):  # 19 notes: still one page, not full (no count query)
        add(n, start)
        statements: list[str] = []

        def count(conn, cursor, statement, *args):
            statements.append(statement)
        event.listen(engine, "before_cursor_execute", count)
        try:
            page = reader.get("/notifications/").get_data(as_text=True)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(len(statements))
    # The notes name tasks and meetings that do not exist: nothing to open, so every one is withheld.
    assert page.count("该通知涉及您已无权查看的内容") == 19 and "通知7" not in page
    assert counts[0] == counts[1], counts
