"""The page items of issue 12, as a user sees them: the minutes page (the minutes first, the editor
below, the Markdown's headings under the page's own), the task page (the parent task named and
linked, no pass-down form when every unit below has the task, the progress explained by its units),
the meeting page (a decision past its due date marked 逾期, 「完成时限」 kept on one line on a
phone) and the favicon."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Task, Unit, User

D = "/district/410105"
CHROMIUM = Path("/usr/bin/chromium")


def _as(new_browser, name):
    b = new_browser()
    assert b.login(name).status_code == 302, name
    return b


def _user(people, name):
    return db.session.get(User, people[name].id)


def _today(run_in_app):
    from portal.clock import local_today

    return run_in_app(local_today)


# --- the meeting and its minutes ----------------------------------------------------------------------------------

def _meeting(run_in_app, people, *, decisions=(), publish=True, co=("civil",), body="# 会议议定事项\n\n## 一、社区学校\n\n会议同意推进社区学校建设。\n"):
    from portal.services import meetings as msvc

    def build():
        by = _user(people, "office-410105")
        m = msvc.create_meeting(Unit.by_code("410105"), {
            "title": "第一季度联席会议", "starts_at": (datetime.now() - timedelta(days=20)).strftime("%Y-%m-%d 09:00"),
            "location": "区教育局", "invited_departments": ["edu", "civil"]}, by=by)
        for to in ("agenda_open", "agenda_locked", "held"):
            msvc.transition(m, to, by=by)
        msvc.save_minutes(m, body, by=by, base_revision=0)
        for text, due in decisions:
            msvc.add_decision(m, {"text": text, "lead_department": "edu", "co_departments": list(co),
                                  "due_date": due.isoformat()}, by=by)
        if publish:
            msvc.publish_minutes(m, by=by)
        return m.id
    return run_in_app(build)


def test_readers_see_the_minutes_first_with_headings_under_the_pages_own(new_browser, people, run_in_app):
    meeting_id = _meeting(run_in_app, people)
    url = f"{D}/meetings/{meeting_id}/minutes"

    reader = _as(new_browser, "edu-410105").get(url).get_data(as_text=True)
    assert 'id="minutes-body"' in reader and 'id="minutes-form"' not in reader and "<textarea" not in reader
    # The page's title is the h1 (the unit), the meeting an h2, the section an h3: the minutes'
    # own "#" heading comes below them, never as a second h1.
    assert "<h4>会议议定事项</h4>" in reader and "<h5>一、社区学校</h5>" in reader
    assert len(re.findall(r"<h1\b", reader)) == 1

    editor = _as(new_browser, "office-410105").get(url).get_data(as_text=True)
    # The editor (a correction, as the minutes are published) comes after the rendered minutes.
    assert editor.index('id="minutes-body"') < editor.index('id="minutes-form"') < editor.index("<textarea")
    assert "<h4>会议议定事项</h4>" in editor


def test_an_editor_sees_the_saved_draft_rendered_above_the_editor(new_browser, people, run_in_app):
    meeting_id = _meeting(run_in_app, people, publish=False)
    url = f"{D}/meetings/{meeting_id}/minutes"
    editor = _as(new_browser, "office-410105").get(url).get_data(as_text=True)
    assert editor.index('id="minutes-preview"') < editor.index('id="minutes-form"')
    assert "已保存，尚未发布" in editor and "<h4>会议议定事项</h4>" in editor
    # A liaison reads nothing before the minutes are published.
    reader = _as(new_browser, "edu-410105").get(url).get_data(as_text=True)
    assert "会议同意推进社区学校建设" not in reader and "会议纪要尚未发布。" in reader


def test_a_decision_past_its_due_date_and_open_is_marked_overdue(new_browser, people, run_in_app):
    today = _today(run_in_app)
    meeting_id = _meeting(run_in_app, people, decisions=[("逾期的议定事项", today - timedelta(days=3)),
                                                          ("未到期的议定事项", today + timedelta(days=30))])
    page = _as(new_browser, "edu-410105").get(f"{D}/meetings/{meeting_id}/").get_data(as_text=True)
    items = re.findall(r'<li class="list-group-item">\s*<span class="decision-text">(.*?)</span>(.*?)</li>', page, re.S)
    badges = {text: "overdue-badge" in rest for text, rest in items}
    assert badges == {"逾期的议定事项": True, "未到期的议定事项": False}
    assert '<span class="badge bg-danger overdue-badge">逾期</span>' in page
    # The label and the date stay together.
    assert '<span class="text-nowrap decision-due">完成时限：' in page


# --- the task page ------------------------------------------------------------------------------------------------

def _task(run_in_app, people, title="社区学校标准化建设", target=200):
    from portal.services import tasks as tsvc

    today = _today(run_in_app)
    return run_in_app(lambda: tsvc.create_task(Unit.by_code("410105"), {
        "title": title, "lead_department": "edu", "co_departments": [],
        "due_date": (today + timedelta(days=60)).isoformat(),
        "target": {"name": "培训人次", "unit": "人次", "value": target}}, by=_user(people, "office-410105")).id)


def _cascade(run_in_app, run_jobs, people, task_id, to):
    from portal.services import tasks as tsvc

    run_in_app(lambda: tsvc.cascade_task(db.session.get(Task, task_id), to, by=_user(people, "office-410105")))
    run_jobs()
    return run_in_app(lambda: {code: tid for tid, code in db.session.execute(
        select(Task.id, Task.unit_code).where(Task.parent_id == task_id)).all()})


def test_the_pass_down_form_is_offered_only_while_a_unit_below_lacks_the_task(new_browser, people, run_in_app,
                                                                               run_jobs):
    office = _as(new_browser, "office-410105")
    task_id = _task(run_in_app, people)
    url = f"{D}/tasks/{task_id}/"
    assert 'id="cascade-form"' in office.get(url).get_data(as_text=True)
    # One of the two streets has it: the other can still receive it.
    _cascade(run_in_app, run_jobs, people, task_id, ["410105001"])
    assert 'id="cascade-form"' in office.get(url).get_data(as_text=True)
    # Both streets have it: nothing left to pass down, no form.
    children = _cascade(run_in_app, run_jobs, people, task_id, "children")
    assert set(children) == {"410105001", "410105002"}
    page = office.get(url).get_data(as_text=True)
    assert 'id="cascade-form"' not in page and 'id="cascade"' not in page
    # Another task of the district is untouched by that.
    other = _task(run_in_app, people, title="另一项任务")
    assert 'id="cascade-form"' in office.get(f"{D}/tasks/{other}/").get_data(as_text=True)


def test_the_parent_task_is_named_and_linked_and_the_progress_explained(new_browser, people, run_in_app, run_jobs):
    from portal.services import tasks as tsvc

    task_id = _task(run_in_app, people)
    children = _cascade(run_in_app, run_jobs, people, task_id, "children")
    run_in_app(lambda: tsvc.report_progress(db.session.get(Task, children["410105001"]), {
        "percent": 40, "actual_value": 80, "narrative": "开展培训两次"}, by=_user(people, "edu-410105001")))
    run_jobs()

    def lineage(page):
        return re.search(r'<dd class="col-sm-8" id="lineage-parent">(.*?)</dd>', page, re.S).group(1).strip()

    street_url = f"/street/410105001/tasks/{children['410105001']}/"
    # The district office reading its street's instance: the parent task and its unit, both linked.
    above = lineage(_as(new_browser, "office-410105").get(street_url).get_data(as_text=True))
    assert f'href="{D}/tasks/{task_id}/" id="parent-task-link">社区学校标准化建设</a>' in above
    assert f'href="{D}/" id="parent-unit-link">金水区</a>' in above
    # The street office may not open the district's pages: the unit named, not linked, and nothing
    # of the district's own task.
    page = _as(new_browser, "office-410105001").get(street_url).get_data(as_text=True)
    assert lineage(page) == "金水区"

    district = _as(new_browser, "office-410105").get(f"{D}/tasks/{task_id}/").get_data(as_text=True)
    explained = re.search(r'id="progress-explained">(.*?)</div>', district).group(1)
    assert explained == "20.0%：共2个单位，1个已报送"
    # A leaf instance explains nothing of the kind: its percent is its own report.
    assert 'id="progress-explained"' not in page

    # English too.
    english = _as(new_browser, "office-410105")
    text = english.get(f"{D}/tasks/{task_id}/?lang=en").get_data(as_text=True)
    assert "20.0% across 2 units, 1 reported" in text


def test_the_progress_counts_every_unit_below_a_whole_tree_cascade(new_browser, people, run_in_app, run_jobs):
    from portal.services import tasks as tsvc

    def issue():
        return tsvc.create_task(Unit.by_code("4101"), {
            "title": "全市任务", "lead_department": "edu", "co_departments": [],
            "due_date": (_today(run_in_app) + timedelta(days=60)).isoformat()}, by=_user(people, "office-4101")).id
    task_id = run_in_app(issue)
    run_in_app(lambda: tsvc.cascade_task(db.session.get(Task, task_id), "tree", by=_user(people, "office-4101")))
    run_jobs()
    page = _as(new_browser, "office-4101").get(f"/city/4101/tasks/{task_id}/").get_data(as_text=True)
    # Two districts and their three streets received it; the streets are the units it is taken across.
    assert re.search(r'id="progress-explained">0.0%：共3个单位，0个已报送</div>', page)
    assert 'id="cascade-form"' not in page


# --- the favicon --------------------------------------------------------------------------------------------------

def test_the_favicon_is_linked_and_answers_at_favicon_ico(client, browser, people):
    page = client.get("/login")
    html = page.get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.mimetype == "image/vnd.microsoft.icon" and ico.data[:4] == b"\0\0\1\0"
    # The page's own policy lets the browser load it (images from the portal itself).
    assert "img-src 'self'" in page.headers["Content-Security-Policy"]


# --- on a phone ---------------------------------------------------------------------------------------------------

@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed: run `make browser-deps`")
def test_on_a_phone_the_due_label_stays_on_one_line_and_the_icon_loads(app, people, run_in_app):
    import socket
    import threading

    from playwright.sync_api import expect, sync_playwright
    from werkzeug.serving import make_server

    from tests.conftest import PASSWORD

    today = _today(run_in_app)
    meeting_id = _meeting(run_in_app, people, decisions=[
        ("各街道年内建成标准化社区学校，并将建设情况书面报送区社区教育办公室", today - timedelta(days=3))],
        co=["civil", "finance", "women"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    failed = []
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            context = chromium.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
            context.set_default_timeout(10_000)
            page = context.new_page()
            page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
            page.goto(base + "/login")
            page.fill("#username", "edu-410105")
            page.fill("#password", PASSWORD)
            with page.expect_navigation():
                page.click("form button[type=submit]")
            page.goto(f"{base}{D}/meetings/{meeting_id}/")
            due = page.locator(".decision-due").first
            expect(due).to_contain_text("完成时限：")
            expect(page.locator("#decisions .overdue-badge")).to_have_text("逾期")
            # One line box: the label is not broken between 完成 and 时限 (nor from its date).
            lines = due.evaluate("el => el.getClientRects().length")
            assert lines == 1, f"「完成时限」 wraps over {lines} lines at 375 px"
            # Nor are the departments' agency names broken (金水区民政 / 局).
            for name in page.locator("#decisions .small .text-nowrap").all():
                assert name.evaluate("el => el.getClientRects().length") == 1, name.inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "meeting-decisions-375px.png"), full_page=True)
            # The browser got the icon the page links to.
            icon = page.evaluate("document.querySelector('link[rel=icon]').href")
            assert page.request.get(icon).status == 200
            chromium.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert failed == []


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed: run `make browser-deps`")
def test_the_pass_down_progress_still_refreshes_itself_through_data_hx_attributes(app, people, run_in_app):
    """htmx 2 reads ``data-hx-*`` (the form the Nu checker accepts): the progress box polls every
    second while the cascade is queued and shows the end without a reload."""
    import socket
    import threading

    from playwright.sync_api import expect, sync_playwright
    from werkzeug.serving import make_server

    from portal.models import CascadeRun
    from tests.conftest import PASSWORD

    task_id = _task(run_in_app, people)

    def queued():
        run = CascadeRun(task_id=task_id, target="children", total=2, state="queued",
                         requested_by_id=people["office-410105"].id)
        db.session.add(run)
        db.session.flush()
        return run.id
    run_id = run_in_app(queued)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(10_000)
            page.goto(base + "/login")
            page.fill("#username", "office-410105")
            page.fill("#password", PASSWORD)
            with page.expect_navigation():
                page.click("form button[type=submit]")
            polls = []
            page.on("request", lambda r: polls.append(r.url) if r.headers.get("hx-request") == "true" else None)
            page.goto(f"{base}{D}/tasks/{task_id}/cascade/{run_id}")
            expect(page.locator("#cascade-run")).to_have_attribute("data-state", "queued")
            expect(page.locator("#cascade-run")).to_have_attribute("data-hx-trigger", "every 1s")

            def finish():
                run = db.session.get(CascadeRun, run_id)
                run.state, run.done = "finished", 2
            run_in_app(finish)
            expect(page.locator("#cascade-run")).to_have_attribute("data-state", "finished")
            expect(page.locator("#cascade-count")).to_contain_text("2")
            assert polls and all(f"/cascade/{run_id}" in url for url in polls)
            # Finished: no more polling attributes on the swapped-in box.
            assert page.locator("#cascade-run").get_attribute("data-hx-get") is None
            chromium.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_role_is_chosen_not_defaulted_on_the_new_account_form(new_browser, people, run_in_app):
    office = _as(new_browser, "office-410105")
    page = office.get(f"{D}/accounts/new").get_data(as_text=True)
    select = re.search(r'<select class="form-select" id="role" name="role" required>(.*?)</select>', page, re.S).group(1)
    assert re.match(r'\s*<option value="" selected>请选择…</option>', select) and 'value="liaison"' in select
    # Sent without a role: refused, the field named, no account made.
    response = office.post_form(f"{D}/accounts/new", {
        "username": "no-role", "display_name": "无角色", "password": "initial-pass-1",
        "unit_code": "410105001", "role": "", "department": ""})
    text = response.get_data(as_text=True)
    assert response.status_code in (200, 400) and 'id="role" name="role" required' in text
    assert re.search(r'form-select is-invalid" id="role"', text)
    assert run_in_app(lambda: db.session.scalar(select_user("no-role"))) is None


def select_user(name):
    from portal.models import User as Account

    return select(Account.id).where(Account.username == name)
