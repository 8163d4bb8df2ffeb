"""The main pages of every module pass the Nu HTML Checker and axe-core (issue 12).

A small tree is seeded (a district task passed down to its streets, a street's report, a held
meeting with published minutes and a decision past its due date, an activity, a team member,
notifications), and the pages are fetched logged in as the office, a liaison and a viewer:

* the Nu HTML Checker (``vnu-jar`` from npm, run with the machine's Java) reads every page in
  ONE invocation (the JVM starts slowly) and must report zero errors (warnings are allowed);
* axe-core (from npm) is run by Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright)
  on the same pages served by a live server: no serious or critical violation.

A failure names the page, the rule and the element. The tests are skipped when Java, the
npm packages or Chromium are really missing (``make test`` installs them: ``make vendor``'s
``npm ci`` and ``make browser-deps``), and on a ``DATABASE_URL`` backend: the markup checked
here does not depend on the database, so the checks run once, in the embedded default's pass
(CI's first), and the PostgreSQL pass is spared their three minutes; the pages' behaviour on
PostgreSQL is covered by the other tests that fetch the same pages.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

#: Nu checker messages that are not errors of ours, each with its reason. Empty today: every
#: error found is fixed in the templates. (Warnings are not counted at all.)
VNU_IGNORED: list[tuple[str, str]] = []

#: axe impacts that fail the test.
AXE_FAILING = ("serious", "critical")

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="markup checks run on the embedded default only (DATABASE_URL unset): the pages' markup is "
           "the same on every backend, and this pass covers the same pages' behaviour in the other tests")


# --- the seeded tree ----------------------------------------------------------------------------------------------

def _seed(run_in_app, run_jobs, people) -> dict:
    from portal.clock import local_today
    from portal.extensions import db
    from portal.models import Task, Unit, User
    from portal.services import activities as asvc
    from portal.services import meetings as msvc
    from portal.services import tasks as tsvc

    def user(name):
        return db.session.get(User, people[name].id)

    today = run_in_app(local_today)
    ids: dict = {}

    def tasks():
        task = tsvc.create_task(Unit.by_code("410105"), {
            "title": "社区学校标准化建设", "description": "全年培训居民", "lead_department": "edu",
            "co_departments": ["civil"], "due_date": (today + timedelta(days=60)).isoformat(),
            "target": {"name": "培训人次", "unit": "人次", "value": 200}}, by=user("office-410105"))
        db.session.flush()
        tsvc.cascade_task(task, "children", by=user("office-410105"))
        return task.id
    ids["task"] = run_in_app(tasks)
    run_jobs()
    ids["street_task"] = run_in_app(lambda: db.session.scalar(
        select(Task.id).where(Task.parent_id == ids["task"], Task.unit_code == "410105001")))
    run_in_app(lambda: tsvc.report_progress(db.session.get(Task, ids["street_task"]), {
        "percent": 40, "actual_value": 80, "narrative": "开展培训两次"}, by=user("edu-410105001")))
    run_in_app(lambda: tsvc.send_notice(db.session.get(Task, ids["street_task"]), "请补充培训照片。",
                                        by=user("office-410105")))
    run_jobs()

    def meeting():
        by = user("office-410105")
        m = msvc.create_meeting(Unit.by_code("410105"), {
            "title": "第一季度联席会议", "starts_at": (datetime.now() - timedelta(days=20)).strftime("%Y-%m-%d 09:00"),
            "location": "区教育局", "invited_departments": ["edu", "civil"]}, by=by)
        for to in ("agenda_open", "agenda_locked", "held"):
            msvc.transition(m, to, by=by)
        msvc.save_minutes(m, "# 会议议定事项\n\n## 一、社区学校\n\n- 各街道建成标准化社区学校\n", by=by, base_revision=0)
        msvc.add_decision(m, {"text": "各街道建成标准化社区学校", "lead_department": "edu", "co_departments": ["civil"],
                              "due_date": (today - timedelta(days=3)).isoformat()}, by=by)
        msvc.publish_minutes(m, by=by)
        return m.id
    ids["meeting"] = run_in_app(meeting)

    ids["activity"] = run_in_app(lambda: asvc.create_activity(Unit.by_code("410105001"), {
        "title": "普法讲座进社区", "category": "legal", "start_date": today.isoformat(), "place": "社区会议室",
        "lead_department": "edu", "co_departments": [], "participants": {"youth": 12, "elders": 30, "others": 8},
        "volunteers": 5, "volunteer_hours": 10, "funds": 300, "narrative": "讲解民法典"},
        by=user("office-410105001")).id)
    ids["member"] = run_in_app(lambda: asvc.add_member(Unit.by_code("410105001"), {
        "name": "张老师", "role": "member", "kind": "veteran", "phone": "13812345678",
        "joined_on": (today - timedelta(days=30)).isoformat(), "left_on": None}, by=user("office-410105001")).id)
    run_jobs()
    ids["liaison_id"] = people["edu-410105"].id
    ids["year"] = today.year
    ids["month"] = today.strftime("%Y-%m")
    return ids


def _pages(ids: dict) -> list[tuple[str | None, str, str, int]]:
    """(account or None, page name, URL, expected status)."""
    d, s = "/district/410105", "/street/410105001"
    m, t = f"{d}/meetings/{ids['meeting']}", f"{d}/tasks/{ids['task']}"
    return [
        (None, "login", "/login", 200),
        ("office-410105", "workspace home", f"{d}/", 200),
        ("office-410105", "unit search", f"{d}/?q=经八路", 200),
        ("office-410105", "task list", f"{d}/tasks/", 200),
        ("office-410105", "task page (passed down)", f"{t}/", 200),
        ("office-410105", "new task form", f"{d}/tasks/new", 200),
        ("edu-410105001", "task page with the report form", f"{s}/tasks/{ids['street_task']}/", 200),
        ("office-410105", "meeting list", f"{d}/meetings/", 200),
        ("office-410105", "meeting page", f"{m}/", 200),
        ("edu-410105", "meeting page (liaison)", f"{m}/", 200),
        ("office-410105", "minutes page (editor)", f"{m}/minutes", 200),
        ("edu-410105", "minutes page (reader)", f"{m}/minutes", 200),
        ("office-410105", "meeting edit", f"{m}/edit", 200),
        ("office-410105", "new meeting form", f"{d}/meetings/new", 200),
        ("edu-410105001", "notifications", "/notifications/", 200),
        ("office-410105", "account page", "/account", 200),
        ("office-410105", "accounts admin", f"{d}/accounts/", 200),
        ("office-410105", "account detail", f"{d}/accounts/{ids['liaison_id']}", 200),
        ("office-410105", "new account form", f"{d}/accounts/new", 200),
        ("office-410105", "audit", f"{d}/accounts/audit", 200),
        ("office-410105001", "activities register", f"{s}/activities/", 200),
        ("office-410105001", "activity page", f"{s}/activities/{ids['activity']}/", 200),
        ("office-410105001", "activity form", f"{s}/activities/new", 200),
        ("office-410105001", "activity calendar", f"{s}/activities/calendar?month={ids['month']}", 200),
        ("office-410105001", "team roster", f"{s}/team/", 200),
        ("office-410105", "consolidated view", f"{d}/dashboard/", 200),
        ("office-410105", "consolidated reporting", f"{d}/dashboard/reporting", 200),
        ("office-410105", "consolidated records", f"{d}/dashboard/records/tasks.total", 200),
        ("office-410105", "task edit", f"{t}/edit", 200),
        ("office-410105", "task progress upload", f"{d}/tasks/import", 200),
        ("office-410105", "minutes revision", f"{m}/minutes/revisions/1", 200),
        ("office-410105001", "activity edit", f"{s}/activities/{ids['activity']}/edit", 200),
        ("office-410105001", "activity register upload", f"{s}/activities/import", 200),
        ("office-410105", "password form", "/account/password", 200),
        ("office-410105", "API tokens", "/account/tokens", 200),
        ("office-410105", "agency names", f"{d}/agencies/", 200),
        ("office-410105", "briefings", f"{d}/dashboard/briefings/", 200),
        ("viewer-41", "workspace home (viewer)", "/province/41/", 200),
        ("office-410105", "API docs", "/api/v1/docs", 200),
        ("edu-410105001", "error page 403", f"{s}/accounts/", 403),
        ("office-410105001", "error page 404", "/street/410105002/", 404),
    ]


def _fetch_all(app, ids) -> list[tuple[str, str, str]]:
    """(page name, URL, HTML) of every page, each fetched by its account with the test client."""
    from tests.conftest import Browser

    browsers: dict = {}
    fetched = []
    for account, name, url, status in _pages(ids):
        if account not in browsers:
            browsers[account] = Browser(app.test_client())
            if account:
                assert browsers[account].login(account).status_code == 302, account
        response = browsers[account].get(url)
        assert response.status_code == status, (name, url, response.status_code)
        fetched.append((name, url, response.get_data(as_text=True)))
    # The pages carry what the checks are about: several unread notifications (each with its own
    # form, where the CSRF field's id was repeated), the minutes and a decision past its due date.
    pages = {name: html for name, _url, html in fetched}
    assert pages["notifications"].count("list-group-item-warning") >= 2
    assert 'id="minutes-body"' in pages["minutes page (reader)"] and "overdue-badge" in pages["meeting page"]
    return fetched


# --- the Nu HTML Checker ----------------------------------------------------------------------------------------

def _java() -> str | None:
    java = shutil.which("java")
    if java is None:
        return None
    probe = subprocess.run([java, "-version"], capture_output=True, text=True)
    return java if probe.returncode == 0 else None


def test_every_main_page_passes_the_nu_html_checker(app, people, run_in_app, run_jobs, tmp_path):
    java = _java()
    if java is None:
        pytest.skip("no Java runtime (java -version fails): the Nu HTML Checker needs one")
    if not VNU_JAR.exists():
        pytest.skip(f"{VNU_JAR.relative_to(ROOT)} is missing: run `make vendor` (npm ci installs vnu-jar)")
    ids = _seed(run_in_app, run_jobs, people)
    pages = _fetch_all(app, ids)
    files = {}
    for n, (name, url, html) in enumerate(pages):
        path = tmp_path / f"page-{n:02d}.html"
        path.write_text(html, encoding="utf-8")
        files[path.name] = (name, url)
    result = subprocess.run([java, "-Xss8m", "-jar", str(VNU_JAR), "--format", "json", "--stdout", *map(str, sorted(
        tmp_path.glob("page-*.html")))], capture_output=True, text=True, timeout=180)
    report = json.loads(result.stdout or result.stderr)
    checked = {m.get("url", "").rsplit("/", 1)[-1] for m in report["messages"]}
    errors = []
    for message in report["messages"]:
        if message.get("type") != "error" and message.get("subType") != "fatal":
            continue
        if any(pattern in message.get("message", "") for pattern, _reason in VNU_IGNORED):
            continue
        name, url = files.get(message.get("url", "").rsplit("/", 1)[-1], (message.get("url"), ""))
        errors.append(f"{name} ({url}) line {message.get('lastLine')}: {message.get('message')}\n"
                      f"    {message.get('extract', '').strip()}")
    assert not errors, f"{len(errors)} Nu HTML Checker errors:\n" + "\n".join(errors)
    # The checker really read the pages (a page without messages is absent from the report).
    assert len(pages) == len(files) and checked <= set(files) | {""}


# --- axe-core in Chromium -----------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="html-checks-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _axe_violations(page) -> list[dict]:
    return page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary || ''}))}));
    }""")


def test_every_main_page_has_no_serious_axe_violation(app, people, run_in_app, run_jobs, served):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: run `make browser-deps` (make test does)")
    if not AXE_JS.exists():
        pytest.skip(f"{AXE_JS.relative_to(ROOT)} is missing: run `make vendor` (npm ci installs axe-core)")
    from playwright.sync_api import sync_playwright

    from tests.conftest import PASSWORD

    ids = _seed(run_in_app, run_jobs, people)
    axe = AXE_JS.read_text(encoding="utf-8")
    problems, checked = [], 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        contexts: dict = {}
        try:
            for account, name, url, status in _pages(ids):
                if url.startswith("/api/v1/docs"):
                    continue  # Swagger UI's own page (a vendor bundle): the Nu checker reads our shell of it
                if account not in contexts:
                    context = browser.new_context(viewport={"width": 1280, "height": 900})
                    context.set_default_timeout(10_000)
                    page = context.new_page()
                    if account:
                        page.goto(served + "/login")
                        page.fill("#username", account)
                        page.fill("#password", PASSWORD)
                        with page.expect_navigation():
                            page.click("form button[type=submit]")
                    contexts[account] = (context, page)
                page = contexts[account][1]
                response = page.goto(served + url)
                assert response.status == status, (name, url, response.status)
                page.evaluate(axe)  # through the DevTools protocol: the page's CSP does not apply
                for v in _axe_violations(page):
                    if v["impact"] in AXE_FAILING:
                        for node in v["nodes"]:
                            problems.append(f"{name} ({url}): {v['id']} [{v['impact']}] {v['help']}\n"
                                            f"    {node['target']}: {node['summary'].strip().splitlines()[-1] if node['summary'] else ''}")
                checked += 1
        finally:
            for context, _page in contexts.values():
                context.close()
            browser.close()
    assert checked >= len(_pages(ids)) - 1
    assert not problems, f"{len(problems)} serious or critical axe violations:\n" + "\n".join(problems)
