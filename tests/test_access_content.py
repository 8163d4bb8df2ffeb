"""The content-level access matrix: no response shows an object its reader may not open.

A victim subtree (the district 410105 and its streets, under the city 4101) holds
one object of every kind, each carrying a unique marker ("MKR-<kind>-<hex>").
Every account kind then requests every route of ``app.url_map``: every GET, and
for the writes the refusal or error body of a POST with empty or bogus data. The
URL parameters are filled with the victim's objects (at their own unit, at the
units invited to them, at the district above) and with the account's own
workspace (where lists, counts and searches leak). Downloads are decoded first
(.docx/.xlsx are unzipped, .ics is unfolded). A response that contains a marker
the account may not open is a leak.

Which markers an account may open is written out below from the rules in
docs/domain.md and docs/architecture.md, not taken from ``portal/access.py``: a test that asked
the code under test could not fail.

The test also fails when a route or a table is not in the lists at the top:
decide how a new one is filled (and which marker a new table carries) there.
"""
from __future__ import annotations

import io
import re
import secrets
import time
import zipfile
from collections import defaultdict
from datetime import date, datetime, timedelta
from urllib.parse import unquote, urlencode

import pytest

from tests.conftest import api_token

# --- coverage lists: extend these when you add a route or a table ----------------------------

#: Every endpoint of app.url_map. The URL parameters are filled by their names
#: (see ``_fillings``); the note says what the route shows. A route missing here
#: fails ``test_every_route_and_table_is_in_the_matrix``.
ENDPOINTS = {
    # public
    "static": "files", "auth.index": "redirect", "auth.login": "form", "health.healthz": "probe",
    "health.favicon": "the icon",
    "api.create_token": "token", "api.docs": "API documentation", "api.openapi": "OpenAPI description",
    # the user's own
    "auth.logout": "skipped: ends the session", "auth.choose": "landing units", "auth.account": "preferences",
    "auth.password": "password form", "auth.tokens": "own tokens", "auth.revoke": "token_id",
    "notifications.index": "own notifications", "notifications.read": "note_id",
    "notifications.read_all": "own notifications", "api.me": "own memberships",
    "api.revoke_current_token": "skipped: ends the token",
    # a unit's workspace: lists, counts, searches, exports
    "workspace.home": "counts, upcoming meetings, units below, people",
    "workspace.meetings.index": "list + search", "workspace.meetings.create": "form",
    "workspace.tasks.index": "list + search + scopes", "workspace.tasks.create": "form",
    "workspace.tasks.export": "xlsx", "workspace.tasks.import_progress": "row errors",
    "workspace.accounts.index": "list + search", "workspace.accounts.create": "form",
    "workspace.accounts.audit": "audit trail",
    # accounts
    "workspace.accounts.detail": "user_id", "workspace.accounts.grant": "user_id",
    "workspace.accounts.password": "user_id", "workspace.accounts.activation": "user_id",
    "workspace.accounts.revoke": "user_id, membership_id",
    # meetings
    "workspace.meetings.detail": "meeting", "workspace.meetings.edit": "meeting",
    "workspace.meetings.cancel": "meeting", "workspace.meetings.transition": "meeting",
    "workspace.meetings.propose": "meeting", "workspace.meetings.decide": "item",
    "workspace.meetings.move": "item", "workspace.meetings.upload": "item",
    "workspace.meetings.material": "material download", "workspace.meetings.carry": "item",
    "workspace.meetings.attendance": "meeting", "workspace.meetings.add_decision": "meeting",
    "workspace.meetings.delete_decision": "decision", "workspace.meetings.minutes": "minutes",
    "workspace.meetings.revision": "revision + diff", "workspace.meetings.notice_docx": "docx",
    "workspace.meetings.minutes_docx": "docx", "workspace.meetings.meeting_ics": "ics",
    # tasks
    "workspace.tasks.detail": "task", "workspace.tasks.edit": "task", "workspace.tasks.cancel": "task",
    "workspace.tasks.report": "task", "workspace.tasks.submit": "task", "workspace.tasks.review": "task",
    "workspace.tasks.cascade": "task", "workspace.tasks.cascade_run": "run (+ htmx fragment)",
    "workspace.tasks.reassign": "task", "workspace.tasks.notice": "task",
    "workspace.tasks.respond": "notice", "workspace.tasks.evidence": "evidence download",
    "workspace.tasks.from_decision": "decision",
    # the API
    "api.unit": "code", "api.list_tasks": "code + scopes", "api.create_task": "code",
    "api.create_meeting": "code", "api.get_meeting": "meeting", "api.propose_item": "meeting",
    "api.transition": "meeting", "api.get_task": "task", "api.cascade": "task",
    "api.cascade_state": "run", "api.report": "task", "api.submit": "task", "api.review": "task",
    "api.unit_metrics": "code: figures",
    # activities and work teams
    "workspace.activities.index": "list + search + scopes", "workspace.activities.month_calendar": "calendar",
    "workspace.activities.create": "form", "workspace.activities.detail": "activity + history",
    "workspace.activities.edit": "activity", "workspace.activities.delete": "activity",
    "workspace.activities.file": "file download", "workspace.activities.thumbnail": "photo thumbnail",
    "workspace.activities.delete_file": "file", "workspace.activities.export": "xlsx",
    "workspace.activities.import_register": "row errors", "workspace.team.index": "roster (+ phones)",
    "workspace.team.edit": "member", "workspace.agencies.index": "agency names form (the unit's own admins)",
    "api.create_activity": "code", "api.list_activities": "code + scopes",
    "api.get_activity": "activity", "api.update_activity": "activity", "api.delete_activity": "activity", "api.metric_records": "code, key: the records behind a figure",
    # the consolidated view
    "workspace.dashboard.index": "figures, ranking of the units below, charts' data",
    "workspace.dashboard.records": "key: the records behind a figure",
    "workspace.dashboard.reporting": "units below that owe reports",
    "workspace.dashboard.remind": "the reminder to the units that have not reported",
    "workspace.dashboard.owed": "child_code: the tasks a unit below owes reports on",
    "workspace.dashboard.export": "xlsx of the view's tables",
    "api.children_metrics": "code: the figures of the units below", "api.reporting": "code: who has reported",
    # briefings (工作简报)
    "workspace.dashboard.briefings": "the briefings issued", "workspace.dashboard.request_briefing": "form",
    "workspace.dashboard.briefing": "briefing_id: the job's progress (+ htmx fragment)",
    "workspace.dashboard.download_briefing": "briefing_id: docx", "api.create_briefing": "code",
    "api.get_briefing": "briefing_id",
    # background files (后台文件): their requester's only
    "workspace.tasks.export_job": "job_id: a task list download's progress (+ htmx fragment)",
    "workspace.tasks.export_job_file": "job_id: the prepared xlsx",
    "workspace.activities.import_job": "job_id: a register upload's progress and row errors (+ htmx fragment)",
}

#: (endpoint, method) pairs not requested, with the reason.
SKIPPED = {
    ("auth.logout", "POST"): "ends the session the walk uses",
    ("api.revoke_current_token", "DELETE"): "ends the token the walk uses",
    ("auth.login", "POST"): "logs in; counted by the login rate limit",
    ("api.create_token", "POST"): "logs in; counted by the login rate limit",
}

#: Every table, with the marker kinds its rows carry into responses, or why it carries none.
TABLES = {
    "meetings": ["meeting", "meeting-draft", "meeting-street"],
    "agenda_items": ["item"], "materials": ["material"], "decisions": ["decision"],
    "attendance": ["attendance"], "minutes": ["minutes-published", "minutes-draft"],
    "minutes_revisions": ["minutes-published", "minutes-draft", "minutes-draft2"],
    "tasks": ["task-district", "task-street"], "task_reports": ["report-district", "report-street"],
    "task_evidence": ["evidence"], "task_reviews": ["review"],
    "supervision_notices": ["notice", "notice-response"], "cascade_runs": ["run-city", "run-district"],
    "notifications": ["notification"], "users": ["account-district", "account-street", "account-two-seats"],
    "audit_log": ["audit-district", "audit-street"],
    "activities": ["activity-district", "activity-street"], "activity_files": ["activity-file"],
    "team_members": ["member-district", "phone-district"],
    "activity_volunteers": "hours, shown with the activity and the roster",
    "activity_categories": "the shared catalogue",
    # No text of their own that a page shows:
    "units": ["unit-code", "unit-name"],
    "departments": "the shared catalogue",
    "department_agencies": ["agency"],
    "memberships": "roles, shown with the accounts (users)",
    "meeting_invitations": "department codes", "meeting_unit_invitations": "unit links",
    "api_tokens": "hashes and dates", "job_outbox": "internal job queue", "alembic_version": "schema",
    "metric_values": "numbers per unit; the records behind them are the marked rows above",
    "metric_state": "bookkeeping of the roll-ups", "metric_reconciles": "bookkeeping of the roll-ups",
    "sessions": "server-side sessions (if present): never rendered",
    "briefings": ["briefing-error", "briefing-file"],
    "file_jobs": ["file-job-name", "file-job-file", "file-job-error", "file-job-result"],
}

VICTIM_UNITS = ["4101", "410105", "410105001"]  # the parent, the victim district, its street with the marked objects
TIER = {"41": "province", "42": "province", "4101": "city", "4102": "city", "410105": "district",
        "410102": "district", "410105001": "street", "410105002": "street", "410102001": "street"}
PARENT = {"41": None, "42": None, "4101": "41", "4102": "41", "410105": "4101", "410102": "4101",
          "410105001": "410105", "410105002": "410105", "410102001": "410102"}

#: The accounts that walk the routes, and what kind of reader each is.
ACCOUNTS = {
    "office-410102": "sibling office (district)",
    "civil-410105": "liaison of another department at the victim district",
    "viewer-41": "viewer above",
    "edu-4101": "liaison of the parent (city)",
    "office-410105001": "child office (street)",
    "civil-410105001": "liaison at the child street (invited to the district's meetings as a unit)",
    None: "anonymous",
    # (Anonymous reads only: every write answers the login page, as the status matrix checks.)
    # The control, GET only: with the readers above, every marker must show up for someone allowed
    # to open it, or the walk proves nothing.
    "office-410105": "the victim district's office",
}
CONTROLS = {"office-410105"}

#: The accounts' memberships as the rules see them: (role, unit code).
MEMBERSHIPS = {
    "office-410102": [("office_admin", "410102")],
    "civil-410105": [("liaison", "410105")], "viewer-41": [("viewer", "41")], "edu-4101": [("liaison", "4101")],
    "office-410105001": [("office_admin", "410105001")], "civil-410105001": [("liaison", "410105001")], None: [],
    "office-410105": [("office_admin", "410105")], "office-4101": [("office_admin", "4101")],  # (rule checks)
}


# --- the rules, written out ---------------------------------------------------------------

def _chain(code):
    while code is not None:
        yield code
        code = PARENT[code]


def _subtree(code: str) -> set[str]:
    return {c for c in PARENT if code in _chain(c)}


def _units(username, roles) -> set[str]:
    out: set[str] = set()
    for role, code in MEMBERSHIPS[username]:
        if role in roles:
            out |= _subtree(code)
    return out


def _readable_units(username) -> set[str]:
    """Offices and viewers read their unit and below; a liaison only its own unit."""
    out = _units(username, {"office_admin", "office_staff", "viewer"})
    out |= {code for role, code in MEMBERSHIPS[username] if role == "liaison"}
    return out


def may_open(username, marker: dict) -> bool:
    rule, unit = marker["rule"], marker["unit"]
    if rule == "unit":          # units; tasks and their reports, notices, reviews, runs; accounts seated there
        return unit in _readable_units(username)
    if rule == "any":           # an account seated at several units: readers of any of them
        return bool(set(marker["units"]) & _readable_units(username))
    if rule == "meeting":       # the convening unit's readers, and offices/viewers over an invited unit
        return unit in _readable_units(username) or bool(
            set(marker["invited"]) & _units(username, {"office_admin", "office_staff", "viewer"}))
    if rule == "draft":         # drafts of minutes: the convening office and the offices above it
        return unit in _units(username, {"office_admin", "office_staff"})
    if rule == "admin":         # the audit trail: office administrators of the unit or above
        return unit in _units(username, {"office_admin"})
    if rule == "own-office":    # a team member's phone: the office of exactly that unit
        return any(code == unit and role in ("office_admin", "office_staff") for role, code in MEMBERSHIPS[username])
    if rule == "owner":         # a notification: its recipient only
        return username == marker["owner"]
    if rule == "below":         # a briefing: the offices and viewers over the unit (a liaison sees no unit below)
        return unit in _units(username, {"office_admin", "office_staff", "viewer"})
    if rule == "requester":     # a background file: its requester only, while they may open its unit
        return username == marker["requester"] and unit in _readable_units(username)
    raise AssertionError(rule)


# --- the victim's objects ------------------------------------------------------------------

def _marker(markers: dict, kind: str, rule: str, unit: str, **extra) -> str:
    text = f"MKR-{kind}-{secrets.token_hex(4)}"
    markers[text] = dict(kind=kind, rule=rule, unit=unit, **extra)
    return text


@pytest.fixture
def victim(app, tree, people, create_user, create_unit, run_in_app, monkeypatch):
    from portal.extensions import db
    from portal.models import (AgendaItem, Attendance, AuditLog, CascadeRun, Decision, Material, Meeting,
                               MeetingInvitation, MeetingUnitInvitation, Minutes, MinutesRevision, Notification,
                               SupervisionNotice, Task, TaskEvidence, TaskReport, TaskReview, User)
    from portal.models import ApiToken, Membership, Role
    from portal.models._helpers import utcnow
    from portal.uploads import upload_folder

    create_user("edu-4101", tree["4101"], Role.LIAISON, "edu")
    markers: dict[str, dict] = {}
    m = lambda kind, rule, unit, **extra: _marker(markers, kind, rule, unit, **extra)  # noqa: E731
    # A street whose code and name are markers: every list of units or of task instances shows them.
    code = f"MKR-u-{secrets.token_hex(4)}"
    markers[code] = dict(kind="unit-code", rule="unit", unit=code)
    for key, table, value in ((code, TIER, "street"), (code, PARENT, "410105")):
        monkeypatch.setitem(table, key, value)
    marked_street = create_unit(code, m("unit-name", "unit", code), "street", tree["410105"])

    def make():
        ids: dict = {}
        unit = {code: tree[code].id for code in tree}
        author = people["office-410105"].id

        def stored(name: str) -> str:
            stored_name = f"{secrets.token_hex(16)}.pdf"
            with open(f"{upload_folder()}/{stored_name}", "wb") as fh:
                fh.write(b"%PDF-1.4\n%%EOF\n")
            return stored_name

        # Accounts seated in the victim subtree (the liaisons' names are on the unit's home page).
        for code, kind in (("410105", "account-district"), ("410105001", "account-street")):
            user = User(username=f"victim-{code}", display_name=m(kind, "unit", code), active=True,
                        home_unit_id=unit[code])
            user.set_password("x" * 12)
            db.session.add(user)
            db.session.flush()
            db.session.add(Membership(user_id=user.id, unit_id=unit[code], role="liaison", department_code="women"))
            ids[f"user-{code}"] = user.id
        # A liaison seated at a street of the victim and at the sibling district too: the sibling's
        # administrators manage the account, but its seat in the victim's subtree is not theirs to see.
        two = User(username="victim-two-seats", display_name=m("account-two-seats", "any", None,
                                                                units=[code, "410102"]), active=True,
                   home_unit_id=unit["410102"])
        two.set_password("x" * 12)
        db.session.add(two)
        db.session.flush()
        db.session.add_all([Membership(user_id=two.id, unit_id=seat, role="liaison", department_code="women")
                            for seat in (marked_street.id, unit["410102"])])
        ids["user-two"] = two.id
        db.session.flush()
        ids["membership"] = db.session.query(Membership).filter_by(user_id=ids["user-410105"]).one().id

        # The district's meeting: invited street, agenda, material, sign-in, decision, a draft then published minutes.
        invited = ["410105001"]
        mk = dict(rule="meeting", unit="410105", invited=invited)
        meeting = Meeting(unit_id=unit["410105"], title=m("meeting", **mk), starts_at=datetime(2026, 1, 5, 9, 0),
                          location="区教育局", status="minutes_published",
                          invitations=[MeetingInvitation(department_code="edu")],
                          unit_invitations=[MeetingUnitInvitation(unit_id=unit["410105001"])])
        db.session.add(meeting)
        db.session.flush()
        item = AgendaItem(meeting_id=meeting.id, title=m("item", **mk), description="", status="accepted",
                          department_code="edu")
        db.session.add(item)
        db.session.flush()
        material = Material(item_id=item.id, original_name=m("material", **mk) + ".pdf",
                            stored_name=stored("m"), content_type="application/pdf", size=15, sha256="0" * 64)
        decision = Decision(meeting_id=meeting.id, text=m("decision", **mk), lead_department_code="edu",
                            due_date=date(2026, 12, 31))
        attendance = Attendance(meeting_id=meeting.id, department_code="edu", status="delegate",
                                attendee_name="", delegate_name=m("attendance", **mk))
        published = m("minutes-published", **mk)
        minutes = Minutes(meeting_id=meeting.id, body=f"## 纪要\n\n{published}\n", revision=2,
                          published_at=utcnow(), published_by_id=author)
        db.session.add_all([material, decision, attendance, minutes])
        db.session.flush()
        draft = m("minutes-draft", rule="draft", unit="410105")
        db.session.add_all([
            MinutesRevision(minutes_id=minutes.id, number=1, body=f"## 纪要\n\n{draft}\n", author_id=author),
            MinutesRevision(minutes_id=minutes.id, number=2, body=minutes.body, author_id=author, published=True)])
        ids["meetings"] = [dict(id=meeting.id, unit="410105", invited=invited, item=item.id, material=material.id,
                                decision=decision.id, numbers=[1, 2])]

        # An upcoming meeting of the district, the street invited, its minutes a draft.
        mk2 = dict(rule="meeting", unit="410105", invited=invited)
        upcoming = Meeting(unit_id=unit["410105"], title=m("meeting-draft", **mk2),
                           starts_at=datetime.now().replace(microsecond=0) + timedelta(days=3), status="held",
                           invitations=[MeetingInvitation(department_code="civil")],
                           unit_invitations=[MeetingUnitInvitation(unit_id=unit["410105001"])])
        db.session.add(upcoming)
        db.session.flush()
        draft2 = m("minutes-draft2", rule="draft", unit="410105")
        minutes2 = Minutes(meeting_id=upcoming.id, body=draft2, revision=1)
        db.session.add(minutes2)
        db.session.flush()
        db.session.add(MinutesRevision(minutes_id=minutes2.id, number=1, body=draft2, author_id=author))
        ids["meetings"].append(dict(id=upcoming.id, unit="410105", invited=invited, numbers=[1]))

        # The street's own meeting.
        street_meeting = Meeting(unit_id=unit["410105001"], starts_at=datetime.now() + timedelta(days=4),
                                 title=m("meeting-street", rule="meeting", unit="410105001", invited=[]),
                                 status="agenda_open")
        db.session.add(street_meeting)
        db.session.flush()
        ids["meetings"].append(dict(id=street_meeting.id, unit="410105001", invited=[], numbers=[]))

        # Tasks at every level: a city task passed down to the district and on to both streets,
        # and a task of the district's own and of the street's own.
        def task(code, title, parent=None, **kw):
            row = Task(unit_id=unit[code], title=title, lead_department_code="edu", co_department_codes=["civil"],
                       due_date=kw.pop("due", date(2030, 12, 31)), parent_id=parent.id if parent else None,
                       root_id=(parent.root_id or parent.id) if parent else None, created_by_id=author, **kw)
            db.session.add(row)
            db.session.flush()
            return row

        city = task("4101", "社区教育任务", status="in_progress", progress=50)
        district = task("410105", "社区教育任务", city, status="in_progress", progress=50)
        street = task("410105001", "社区教育任务", district, status="submitted", progress=60)
        street2 = task("410105002", "社区教育任务", district, status="in_progress", progress=40)
        db.session.add(Task(unit_id=marked_street.id, title="社区教育任务", lead_department_code="edu",
                            co_department_codes=[], due_date=date(2030, 12, 31), parent_id=district.id,
                            root_id=city.id, status="assigned"))
        # The district's task issued from the decision of its meeting, and the street's instance of it.
        own = task("410105", m("task-district", "unit", "410105"), status="in_progress", due=date(2020, 1, 1),
                   decision_id=decision.id)
        street_own = task("410105001", m("task-street", "unit", "410105001"), own, status="assigned",
                          decision_id=decision.id)
        runs = {}
        for t, code, kind in ((city, "4101", "run-city"), (district, "410105", "run-district")):
            run = CascadeRun(task_id=t.id, target="children", state="failed", error=m(kind, "unit", code))
            db.session.add(run)
            db.session.flush()
            runs[t.id] = run.id
        report = TaskReport(task_id=street.id, percent=60, narrative=m("report-street", "unit", "410105001"),
                            reported_by_id=people["office-410105001"].id, department_code="edu")
        own_report = TaskReport(task_id=own.id, percent=20, narrative=m("report-district", "unit", "410105"),
                                reported_by_id=author, department_code="edu")
        db.session.add_all([report, own_report])
        db.session.flush()
        evidence = TaskEvidence(report_id=report.id, original_name=m("evidence", "unit", "410105001") + ".pdf",
                                stored_name=stored("e"), content_type="application/pdf", size=15, sha256="0" * 64)
        notice = SupervisionNotice(task_id=street.id, from_unit_id=unit["410105"], sent_by_id=author,
                                   text=m("notice", "unit", "410105001"),
                                   response=m("notice-response", "unit", "410105001"), responded_at=utcnow(),
                                   responded_by_id=people["office-410105001"].id)
        review = TaskReview(task_id=street.id, decision="return", comment=m("review", "unit", "410105001"),
                            reviewed_by_id=author)
        db.session.add_all([evidence, notice, review])
        db.session.flush()
        ids["tasks"] = [dict(id=t.id, unit=code, run=runs.get(t.id), notice=notice.id if t is street else None,
                             evidence=evidence.id if t is street else None)
                        for t, code in ((city, "4101"), (district, "410105"), (street, "410105001"),
                                        (own, "410105"), (street_own, "410105001"))]
        ids["decision"] = decision.id

        # A notification of the district's office, and the audit trail of the district and the street.
        note = Notification(user_id=author, kind="meeting_invited", dedupe_key=secrets.token_hex(8),
                            params={"unit": "金水区", "title": m("notification", "owner", "410105",
                                                                 owner="office-410105"), "when": "2026-01-05"},
                            link="/district/410105/")
        db.session.add(note)
        for code, kind in (("410105", "audit-district"), ("410105001", "audit-street")):
            db.session.add(AuditLog(actor_id=author, unit_id=unit[code], action="meeting.create",
                                    object_type="meetings", object_id="1", details={"title": m(kind, "admin", code)}))
        db.session.flush()
        ids["note"] = note.id
        token = ApiToken(user_id=author, token_hash=secrets.token_hex(32), expires_at=utcnow())
        db.session.add(token)
        db.session.flush()
        ids["token"] = token.id

        # Activities of the district and the street (this month: the calendar shows them), a file, a roster entry.
        from portal.models import Activity, ActivityFile, TeamMember

        ids["activities"] = []
        for code, kind in (("410105", "activity-district"), ("410105001", "activity-street")):
            activity = Activity(unit_id=unit[code], title=m(kind, "unit", code), category_code="legal",
                                department_code="edu", co_department_codes=[], start_date=date.today(),
                                end_date=date.today(), youth=1, person_times=1)
            db.session.add(activity)
            db.session.flush()
            entry = dict(id=activity.id, unit=code, file=None)
            if code == "410105001":
                attachment = ActivityFile(activity_id=activity.id, original_name=m("activity-file", "unit", code) + ".pdf",
                                          stored_name=stored("a"), content_type="application/pdf", size=15,
                                          sha256="0" * 64)
                db.session.add(attachment)
                db.session.flush()
                entry["file"] = attachment.id
            ids["activities"].append(entry)
        member = TeamMember(unit_id=unit["410105"], name=m("member-district", "unit", "410105"), role="member",
                            kind="veteran", phone=m("phone-district", "own-office", "410105"),
                            joined_on=date(2026, 1, 1))
        db.session.add(member)
        db.session.flush()
        ids["member"] = member.id
        # The district's own name of its education bureau: on its pages, its Excel files and its meetings'
        # pages and documents (which the offices over an invited street open too).
        from portal.models import DepartmentAgency

        db.session.add(DepartmentAgency(unit_id=unit["410105"], department_code="edu",
                                        name=m("agency", "meeting", "410105", invited=invited)))
        db.session.flush()

        # The district's briefings (工作简报): one failed with its reason, one done with its document.
        from docx import Document as WordDocument

        from portal.models import Briefing

        document = WordDocument()
        document.add_paragraph(m("briefing-file", "below", "410105"))
        buffer = io.BytesIO()
        document.save(buffer)
        briefing_file = f"{secrets.token_hex(16)}.docx"
        with open(f"{upload_folder()}/{briefing_file}", "wb") as fh:
            fh.write(buffer.getvalue())
        failed = Briefing(unit_id=unit["410105"], period="2026-01", year=2026, number=1, state="failed",
                          error=m("briefing-error", "below", "410105"), requested_by_id=author)
        done = Briefing(unit_id=unit["410105"], period="2026-01", year=2026, number=2, state="done",
                        stored_name=briefing_file, requested_by_id=author)
        db.session.add_all([failed, done])
        db.session.flush()
        ids["briefings"] = [dict(id=failed.id, unit="410105"), dict(id=done.id, unit="410105")]

        # Background files (后台文件): the district office's task list download, done (its file on
        # disk) and failed (with its reason); a street liaison's register upload, done and refused
        # with its row errors. No one but the requester sees them, not even the offices over the unit.
        from openpyxl import Workbook

        from portal.models import FileJob

        def rq(code, requester):
            return dict(rule="requester", unit=code, requester=requester)

        workbook = Workbook()
        workbook.active.append([m("file-job-file", **rq("410105", "office-410105"))])
        buffer = io.BytesIO()
        workbook.save(buffer)
        job_file = f"{secrets.token_hex(16)}.xlsx"
        with open(f"{upload_folder()}/{job_file}", "wb") as fh:
            fh.write(buffer.getvalue())
        export_done = FileJob(kind="tasks_export", unit_id=unit["410105"], user_id=author, state="done",
                              params={}, stored_name=job_file, progress_done=1, progress_total=1,
                              file_name=m("file-job-name", **rq("410105", "office-410105")) + ".xlsx",
                              size=len(buffer.getvalue()), finished_at=utcnow())
        export_failed = FileJob(kind="tasks_export", unit_id=unit["410105"], user_id=author, state="failed",
                                params={}, error=m("file-job-error", **rq("410105", "office-410105")),
                                finished_at=utcnow())
        import_done = FileJob(kind="activities_import", unit_id=unit["410105001"],
                              user_id=people["civil-410105001"].id, state="done", params={},
                              file_name="活动登记.xlsx", progress_done=2, progress_total=2, finished_at=utcnow(),
                              result={"applied": 0, "errors": [{"row_number": 2, "field": "title", "message":
                                      m("file-job-result", **rq("410105001", "civil-410105001"))}]})
        db.session.add_all([export_done, export_failed, import_done])
        db.session.flush()
        ids["file_jobs"] = [dict(id=job.id, unit=code) for job, code in
                            ((export_done, "410105"), (export_failed, "410105"), (import_done, "410105001"))]
        return ids

    ids = run_in_app(make)
    return ids, markers


# --- walking the routes ---------------------------------------------------------------------

def _build(rule, values: dict) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = re.sub(r"<(?:[^:<>]+:)?%s>" % re.escape(arg), str(values[arg]), url)
    assert "<" not in url, url
    return url


def _own_units(username) -> list[str]:
    return [code for _role, code in MEMBERSHIPS[username]]


def _fillings(rule, ids, username, method):
    """Every set of URL values a route is requested with, by the names of its parameters. Reads go
    through the object's unit, the units it reaches (invited units, the district above) and the
    reader's own workspace; writes through the object's own unit."""
    args = set(rule.arguments)
    own = _own_units(username)

    def at(codes):
        # An object is read where it can be reached (its unit, an invited unit, the district above);
        # written through its own unit. Through the reader's own workspace go the lists (below): that
        # an object is refused through a foreign workspace is the status matrix's (test_access_matrix.py).
        codes = codes if method == "GET" else codes[:1]
        for code in dict.fromkeys(codes):
            yield {"tier": TIER[code], "code": code}

    def having(objects, needs):
        """The objects that have every sub-object the route names."""
        return [o for o in objects if all(o.get(key) for arg, key in needs.items() if arg in args)]

    if "meeting_id" in args:
        for meeting in having(ids["meetings"], {"item_id": "item", "material_id": "material",
                                                "decision_id": "decision", "number": "numbers"}):
            for number in (meeting["numbers"] if "number" in args else [None]):
                base = dict(meeting_id=meeting["id"], item_id=meeting.get("item"), number=number,
                            material_id=meeting.get("material"), decision_id=meeting.get("decision"))
                for unit in (at([meeting["unit"], *meeting["invited"]]) if "code" in args else [{}]):
                    yield dict(base, **unit)
    elif "task_id" in args:
        for task in having(ids["tasks"], {"run_id": "run", "notice_id": "notice", "evidence_id": "evidence"}):
            base = dict(task_id=task["id"], run_id=task["run"], notice_id=task["notice"], evidence_id=task["evidence"])
            for unit in (at([task["unit"], "410105"]) if "code" in args else [{}]):
                yield dict(base, **unit)
    elif "activity_id" in args:
        for activity in [a for a in ids["activities"] if a["file"] or "file_id" not in args]:
            base = dict(activity_id=activity["id"], file_id=activity["file"])
            for unit in (at([activity["unit"], "410105"]) if "code" in args else [{}]):
                yield dict(base, **unit)
    elif "member_id" in args:
        for unit in at(["410105"]):
            yield dict(unit, member_id=ids["member"])
    elif "decision_id" in args:
        for unit in at(["410105"]):
            yield dict(unit, decision_id=ids["decision"])
    elif "briefing_id" in args:  # a briefing: through its unit's workspace, and over the API
        for briefing in ids["briefings"]:
            for unit in (at([briefing["unit"]]) if "code" in args else [{}]):
                yield dict(unit, briefing_id=briefing["id"])
    elif "job_id" in args:  # a background file: through its unit's workspace and the district above
        for job in ids["file_jobs"]:
            for unit in at([job["unit"], "410105"]):
                yield dict(unit, job_id=job["id"])
    elif "user_id" in args:
        for code, user in (("410105", "user-410105"), ("410105001", "user-410105001"), ("410102", "user-two")):
            for unit in at([code]):
                yield dict(unit, user_id=ids[user], membership_id=ids["membership"], action="deactivate")
    elif "note_id" in args:
        yield {"note_id": ids["note"]}
    elif "token_id" in args:
        yield {"token_id": ids["token"]}
    elif "filename" in args:
        yield {"filename": "portal.css"}
    elif "child_code" in args:  # the reports a unit below owes: asked at the units above it and at the reader's own
        for code in dict.fromkeys(["4101", "410105", *own]):
            for child in ("410105", "410105001"):
                yield {"tier": TIER[code], "code": code, "child_code": child}
    elif "tier" in args and "key" in args:  # a figure's records on the consolidated view: the reader's own
        from portal import metrics                # (the API's twin below asks at the victim district)

        for key in metrics.REGISTRY:
            for code in own or ["410105"]:
                yield {"tier": TIER[code], "code": code, "key": key}
    elif "tier" in args:
        for code in dict.fromkeys([*VICTIM_UNITS, *own]):
            yield {"tier": TIER[code], "code": code}
    elif "key" in args:  # a figure's records over the API: every figure, at the victim district
        from portal import metrics

        for key in metrics.REGISTRY:
            yield {"code": "410105", "key": key}
    elif "code" in args:  # the API's units
        for code in dict.fromkeys([*VICTIM_UNITS, *own]):
            yield {"code": code}
    else:
        assert not args, f"{rule.endpoint}: fill {args} in _fillings"
        yield {}


#: Query strings each list is also requested with: searches for the markers, and the scopes.
QUERIES = {
    "workspace.home": [{"q": "MKR"}],
    "workspace.meetings.index": [{"q": "MKR"}],
    "workspace.accounts.index": [{"q": "MKR"}],
    "workspace.tasks.index": [{"scope": "subtree", "q": "MKR"}, {"scope": "mine"}, {"scope": "subtree", "overdue": "1"}],
    "workspace.tasks.export": [{"scope": "subtree"}],
    "workspace.dashboard.index": [{"sort": "progress"}],
    "workspace.dashboard.reporting": [{"show": "all"}],
    "api.list_tasks": [{"scope": "subtree"}, {"scope": "subtree", "q": "MKR"}],
    "workspace.activities.index": [{"scope": "subtree", "q": "MKR"}, {"scope": "unit"}],
    "workspace.activities.export": [{"scope": "subtree"}],
    "api.list_activities": [{"scope": "subtree"}, {"scope": "subtree", "q": "MKR"}],
}
#: Query strings a route is requested with instead of none: the figures of the year the victim's meeting is in.
BASE_QUERY = {"api.unit_metrics": {"period": "2026"}, "api.metric_records": {"period": "2026"},
              "api.children_metrics": {"period": "2026"}, "api.reporting": {"period": "2026"},
              **{f"workspace.dashboard.{view}": {"period": "2026"}
                 for view in ("index", "records", "reporting", "owed", "export")}}
#: htmx fragments: also requested as htmx does.
HTMX = {"workspace.home", "workspace.tasks.cascade_run", "workspace.dashboard.briefing", "workspace.tasks.export_job",
        "workspace.activities.import_job"}


def _texts(response) -> str:
    """Everything a reader gets: headers that carry names, and the body, unpacked."""
    parts = [unquote(response.headers.get(h, "")) for h in ("Location", "Content-Disposition")]
    data = response.get_data()
    if data[:2] == b"PK":  # .docx / .xlsx: the text lives in the XML parts
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            parts += [zf.read(n).decode("utf-8", "replace") for n in zf.namelist() if n.endswith((".xml", ".rels"))]
    else:
        text = data.decode("utf-8", "replace")
        parts.append(re.sub(r"\r?\n[ \t]", "", text))  # .ics folds long lines
    return "\n".join(parts)


def _walk(app, client, username, ids, csrf, headers, crashes: list, *, writes: bool):
    """Request every route; return {marker text: [where it was seen]} and the count of requests."""
    seen: dict[str, list[str]] = defaultdict(list)
    requests = 0
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if (rule.endpoint, method) in SKIPPED or (method != "GET" and not writes):
                continue
            for values in _fillings(rule, ids, username, method):
                url = _build(rule, values)
                api = rule.endpoint.startswith("api.")
                variants = [(BASE_QUERY.get(rule.endpoint, {}), {})]
                if method == "GET":
                    variants += [(q, {}) for q in QUERIES.get(rule.endpoint, [])]
                    if rule.endpoint in HTMX:
                        variants.append(({}, {"HX-Request": "true"}))
                for query, extra in variants:
                    full = url + ("?" + urlencode(query) if query else "")
                    requests += 1
                    try:
                        if api:
                            response = client.open(full, method=method, headers={**headers, **extra},
                                                   json={} if method != "GET" else None)
                        else:
                            response = client.open(full, method=method, headers=extra,
                                                   data={"csrf_token": csrf} if method != "GET" else None)
                    except Exception as exc:  # noqa: BLE001 - a crash shows nothing, but is reported below
                        crashes.append(f"{username} {method} {full}: {exc!r}"[:300])
                        continue
                    if response.status_code >= 500:
                        crashes.append(f"{username} {method} {full}: {response.status_code}")
                    for found in set(re.findall(r"MKR-[a-z0-9-]+?-[0-9a-f]{8}", _texts(response))):
                        seen[found].append(f"{method} {full}")
    return seen, requests


def _session(app, new_browser, username):
    if username is None:
        client = app.test_client()
        return client, "", {}
    b = new_browser()
    assert b.login(username).status_code == 302
    return b.client, b.csrf("/notifications/"), api_token(b.client, username)


def test_no_response_shows_a_marker_its_reader_may_not_open(app, new_browser, people, victim):
    ids, markers = victim
    leaks, crashes, found_by_allowed, total, timings = [], [], set(), 0, {}
    for username, kind in ACCOUNTS.items():
        started = time.perf_counter()
        client, csrf, headers = _session(app, new_browser, username)
        seen, requests = _walk(app, client, username, ids, csrf, headers, crashes,
                               writes=username not in CONTROLS and username is not None)
        total += requests
        timings[username] = (requests, round(time.perf_counter() - started, 1))
        for text, where in seen.items():
            assert text in markers, f"an unknown marker {text}: seeded twice?"
            if may_open(username, markers[text]):
                found_by_allowed.add(text)
            else:
                leaks.append(f"{username or 'anonymous'} ({kind}) sees {markers[text]['kind']} "
                             f"at {sorted(set(w.split('?')[0] for w in where))[:8]}")
    assert not leaks, "\n".join(leaks)
    # The walk reaches every object: each marker is shown to someone who may open it.
    unseen = sorted(markers[t]["kind"] for t in set(markers) - found_by_allowed)
    assert not unseen, f"never shown to anyone, so never tested: {unseen}"
    assert total > 1000
    # Not a leak, but an empty or bogus form is refused, never a server error (checked after the leaks).
    assert not crashes, "server errors during the walk:\n" + "\n".join(crashes)
    print(f"content matrix: {total} requests, {len(markers)} markers, {timings}")


def test_the_rules_of_this_matrix_are_what_the_domain_says():
    """The hand-written rules, spot-checked: a wrong rule would hide leaks."""
    meeting = dict(rule="meeting", unit="410105", invited=["410105001"])
    assert may_open("office-410105001", meeting)          # the invited street's office
    assert not may_open("edu-4101", meeting)              # the parent's liaison
    assert may_open("civil-410105", meeting)              # any liaison of the convening unit
    assert not may_open("civil-410105", dict(rule="draft", unit="410105"))
    assert not may_open("viewer-41", dict(rule="draft", unit="410105"))
    assert may_open("office-4101", dict(rule="draft", unit="410105"))
    assert not may_open("office-410102", dict(rule="unit", unit="410105"))
    assert not may_open("office-410105001", dict(rule="unit", unit="410105"))
    assert not may_open("civil-410105", dict(rule="unit", unit="410105001"))
    assert not may_open("viewer-41", dict(rule="admin", unit="410105"))
    assert not may_open(None, dict(rule="unit", unit="410105001"))
    job = dict(rule="requester", unit="410105", requester="office-410105")
    assert may_open("office-410105", job)
    assert not may_open("viewer-41", job)                 # reads the unit, did not ask for the file
    assert not may_open("civil-410105", job)
    assert not may_open("office-410105001", dict(rule="requester", unit="410105", requester="office-410105001"))


def test_every_route_and_table_is_in_the_matrix(app):
    from portal.extensions import db

    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert not endpoints - set(ENDPOINTS), f"add to ENDPOINTS (and fill their parameters): {endpoints - set(ENDPOINTS)}"
    tables = set(db.metadata.tables)
    assert not tables - set(TABLES), \
        f"seed a marker for these tables or say why they show nothing: {tables - set(TABLES)}"
