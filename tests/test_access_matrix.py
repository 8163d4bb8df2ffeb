"""Every route, walked from ``app.url_map``: anonymous users are sent to log in
(pages) or get 401 (API); a sibling unit's user is refused with 404."""
from __future__ import annotations

import pytest

from tests.conftest import api_token

PUBLIC = {"static", "auth.login", "auth.index", "health.healthz", "health.favicon", "api.create_token",
          "api.openapi", "api.docs"}  # the API's description and its documentation page
# Routes that belong to the user, not to a unit: the sibling test uses another user's objects.
PERSONAL = {"auth.logout", "auth.choose", "auth.account", "auth.password", "auth.tokens", "auth.revoke",
            "notifications.index", "notifications.read", "notifications.read_all", "api.me",
            "api.revoke_current_token"}

SIBLINGS = {  # tier: (the user's unit, the sibling unit whose pages are tried)
    "province": ("42", "41"),
    "city": ("4102", "4101"),
    "district": ("410102", "410105"),
    "street": ("410105002", "410105001"),
}


def _routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def _build(rule, values):
    url = rule.rule
    for arg in rule.arguments:
        url = url.replace(f"<{arg}>", str(values[arg]))
        for conv in ("int:", "any(deactivate, activate):"):
            url = url.replace(f"<{conv}{arg}>", str(values[arg]))
    assert "<" not in url, url
    return url


def _meeting_objects(db, unit_id: int, user_id: int) -> dict:
    """A meeting with an item, a material, a decision and a minutes revision at one unit."""
    from datetime import datetime

    from portal.models import AgendaItem, Decision, Material, Meeting, MeetingInvitation, Minutes, MinutesRevision

    meeting = Meeting(unit_id=unit_id, title="matrix", starts_at=datetime(2026, 1, 5, 9, 0), status="held",
                      invitations=[MeetingInvitation(department_code="edu")])
    db.session.add(meeting)
    db.session.flush()
    item = AgendaItem(meeting_id=meeting.id, title="item", status="accepted", department_code="edu")
    db.session.add(item)
    db.session.flush()
    material = Material(item_id=item.id, original_name="a.pdf", stored_name=f"{unit_id:032x}", content_type="application/pdf",
                        size=1, sha256="0" * 64)
    decision = Decision(meeting_id=meeting.id, text="decision", lead_department_code="edu")
    minutes = Minutes(meeting_id=meeting.id, body="text", revision=1)
    db.session.add_all([material, decision, minutes])
    db.session.flush()
    db.session.add(MinutesRevision(minutes_id=minutes.id, number=1, body="text", author_id=user_id, published=True))
    db.session.flush()
    ids = {"meeting_id": meeting.id, "item_id": item.id, "material_id": material.id, "decision_id": decision.id,
           "number": 1}
    ids.update(_task_objects(db, unit_id, user_id))
    ids.update(_activity_objects(db, unit_id, user_id))
    ids.update(_briefing_objects(db, unit_id, user_id))
    ids.update(_file_job_objects(db, unit_id, user_id))
    return ids


def _file_job_objects(db, unit_id: int, user_id: int) -> dict:
    """A task list download (后台文件) of the unit, done, its file on disk, asked for by ``user_id``."""
    from portal.models import FileJob
    from portal.uploads import upload_folder

    stored_name = f"{unit_id + 3000:032x}.xlsx"
    with open(f"{upload_folder()}/{stored_name}", "wb") as fh:
        fh.write(b"PK")
    job = FileJob(kind="tasks_export", unit_id=unit_id, user_id=user_id, state="done", params={},
                  stored_name=stored_name, file_name="tasks.xlsx", progress_done=1, progress_total=1)
    db.session.add(job)
    db.session.flush()
    return {"job_id": job.id}


def _briefing_objects(db, unit_id: int, user_id: int) -> dict:
    """A briefing (工作简报) of the unit, done, its file on disk."""
    from portal.models import Briefing
    from portal.uploads import upload_folder

    stored_name = f"{unit_id + 2000:032x}.docx"
    with open(f"{upload_folder()}/{stored_name}", "wb") as fh:
        fh.write(b"PK")
    briefing = Briefing(unit_id=unit_id, period="2026-01", year=2026, number=1, state="done",
                        stored_name=stored_name, requested_by_id=user_id)
    db.session.add(briefing)
    db.session.flush()
    return {"briefing_id": briefing.id}


def _activity_objects(db, unit_id: int, user_id: int) -> dict:
    """An activity with a photo, and a team member, at one unit."""
    from datetime import date

    from portal.models import Activity, ActivityFile, TeamMember

    activity = Activity(unit_id=unit_id, title="matrix", category_code="legal", department_code="edu",
                        co_department_codes=[], start_date=date(2026, 1, 5), end_date=date(2026, 1, 5))
    member = TeamMember(unit_id=unit_id, name="matrix", role="member", kind="veteran", phone="13800000000",
                        joined_on=date(2026, 1, 1))
    db.session.add_all([activity, member])
    db.session.flush()
    photo = ActivityFile(activity_id=activity.id, is_photo=True, original_name="p.jpg",
                         stored_name=f"{unit_id:032x}.jpg", thumb_name=f"{unit_id + 1000:032x}.jpg",
                         content_type="image/jpeg", size=1, sha256="0" * 64)
    db.session.add(photo)
    db.session.flush()
    return {"activity_id": activity.id, "file_id": photo.id, "member_id": member.id}


def _task_objects(db, unit_id: int, user_id: int) -> dict:
    """A task with a cascade run, a supervision notice and a report with an evidence file at one unit."""
    from datetime import date

    from portal.models import CascadeRun, SupervisionNotice, Task, TaskEvidence, TaskReport

    task = Task(unit_id=unit_id, title="matrix", lead_department_code="edu", co_department_codes=[],
                due_date=date(2026, 12, 31))
    db.session.add(task)
    db.session.flush()
    run = CascadeRun(task_id=task.id, target="children")
    notice = SupervisionNotice(task_id=task.id, from_unit_id=unit_id, text="notice")
    report = TaskReport(task_id=task.id, percent=10, reported_by_id=user_id)
    db.session.add_all([run, notice, report])
    db.session.flush()
    evidence = TaskEvidence(report_id=report.id, original_name="e.pdf", stored_name=f"{unit_id:032x}.pdf",
                            content_type="application/pdf", size=1, sha256="0" * 64)
    db.session.add(evidence)
    db.session.flush()
    return {"task_id": task.id, "run_id": run.id, "notice_id": notice.id, "evidence_id": evidence.id}


@pytest.fixture
def objects(tree, people, run_in_app):
    """Ids of real objects at the target unit, so that a refusal is not just a missing row."""
    from portal.extensions import db
    from portal.models import ApiToken, Membership, Notification
    from portal.models._helpers import utcnow

    def make():
        target_user = people["edu-410105001"]
        membership = db.session.query(Membership).filter_by(user_id=target_user.id).one()
        note = Notification(user_id=target_user.id, kind="membership_granted", dedupe_key="t1",
                            params={"role": "liaison", "unit": "x", "department": "edu"})
        token = ApiToken(user_id=target_user.id, token_hash="x" * 64, expires_at=utcnow())
        db.session.add_all([note, token])
        db.session.flush()
        common = {"user_id": target_user.id, "membership_id": membership.id, "note_id": note.id,
                  "token_id": token.id, "action": "deactivate", "filename": "portal.css",
                  "key": "tasks.total", "child_code": "410105001"}
        by_unit = {code: _meeting_objects(db, tree[code].id, target_user.id)
                   for code in ("41", "4101", "410105", "410105001")}
        return {"common": common, "by_unit": by_unit}
    return run_in_app(make)


def _values(objects, tier: str, code: str) -> dict:
    return dict(objects["common"], **objects["by_unit"][code], tier=tier, code=code)


def test_every_route_is_covered_by_this_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    unit_scoped = {e for e in endpoints if e.startswith("workspace.")}
    api = {e for e in endpoints if e.startswith("api.")}
    uncovered = endpoints - PUBLIC - PERSONAL - unit_scoped - api
    assert not uncovered, f"decide how these are protected: {uncovered}"


def test_anonymous_is_sent_to_login_or_gets_401(app, browser, tree, objects):
    token = browser.csrf("/login")
    checked = 0
    for rule, method in _routes(app):
        if rule.endpoint in PUBLIC:
            continue
        values = _values(objects, "street", "410105001")
        url = _build(rule, values)
        response = browser.client.open(url, method=method, data={"csrf_token": token})
        if rule.endpoint.startswith("api."):
            assert response.status_code == 401, (method, url)
            assert response.get_json()["error"]["code"] == "unauthorized"
        else:
            assert response.status_code == 302, (method, url, response.status_code)
            assert "/login" in response.headers["Location"], (method, url)
        checked += 1
    assert checked > 15


@pytest.mark.parametrize("tier", list(SIBLINGS))
def test_sibling_office_admin_is_refused_everywhere(app, new_browser, tree, people, objects, tier):
    own, sibling = SIBLINGS[tier]
    b = new_browser()
    assert b.login(f"office-{own}").status_code == 302
    token = b.csrf("/notifications/")
    headers = api_token(b.client, f"office-{own}")
    sibling_tier = tier
    checked = 0
    for rule, method in _routes(app):
        if rule.endpoint in PUBLIC or rule.endpoint in ("auth.logout",):
            continue
        if rule.endpoint in PERSONAL and not rule.arguments:
            continue  # the user's own pages: nothing of the sibling's is on them
        values = _values(objects, sibling_tier, sibling)
        url = _build(rule, values)
        if rule.endpoint.startswith("api."):
            response = b.client.open(url, method=method, headers=headers, json={})
        else:
            response = b.client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 404, (tier, method, url, response.status_code)
        checked += 1
    assert checked >= 10
    # And the user's own workspace answers, so the refusals above are not an accident.
    assert b.get(f"/{tier}/{own}/").status_code == 200


@pytest.mark.parametrize("username,url,status", [
    ("edu-410105001", "/street/410105001/", 200),
    ("edu-410105001", "/district/410105/", 404),      # a liaison stays in the own unit
    ("edu-410105001", "/street/410105001/accounts/", 403),  # sees the unit, may not manage
    ("viewer-41", "/street/410105001/", 200),          # viewers read the subtree
    ("viewer-41", "/street/410105001/accounts/", 403),
    ("viewer-4101", "/province/41/", 404),             # not upwards
    ("office-410105", "/street/410105002/", 200),       # offices act below
    ("office-410105", "/city/4101/", 404),
    ("staff-410105", "/district/410105/accounts/", 403),  # only admins manage accounts
    ("office-41", "/city/410105/", 404),               # tier in the URL must be the unit's tier
    ("office-41", "/street/999999999/", 404),
    ("office-410105", "/district/410105/agencies/", 200),  # agency names: the unit's own office admin only
    ("office-4101", "/district/410105/agencies/", 403),
    ("staff-410105", "/district/410105/agencies/", 403),
    ("edu-410105", "/district/410105/agencies/", 403),
    ("viewer-41", "/district/410105/agencies/", 403),
    ("office-410102", "/district/410105/agencies/", 404),
])
def test_role_rules(new_browser, people, username, url, status):
    b = new_browser()
    b.login(username)
    assert b.get(url).status_code == status


@pytest.mark.parametrize("username,status", [
    ("edu-410105001", 200),      # the requester
    ("office-410105001", 404),   # the unit's own office did not ask for it
    ("office-410105", 404),      # nor did the office above
    ("viewer-41", 404),
])
def test_a_file_job_is_its_requesters_only(new_browser, objects, username, status):
    job_id = objects["by_unit"]["410105001"]["job_id"]
    b = new_browser()
    assert b.login(username).status_code == 302
    page = b.get(f"/street/410105001/tasks/export/{job_id}")
    assert page.status_code == status
    download = b.get(f"/street/410105001/tasks/export/{job_id}/download")
    assert download.status_code == status
    if status == 200:
        assert download.get_data() == b"PK"  # the stored file itself
    # Through another unit's workspace it is not there, even for its requester.
    assert b.get(f"/district/410105/tasks/export/{job_id}").status_code == 404
