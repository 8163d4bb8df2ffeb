"""Browser tests: the real app served over HTTP, driven by Debian's Chromium.

Playwright's sync API with ``/usr/bin/chromium`` (never ``playwright install``).
Screenshots land in ``test-artifacts/`` at the repository root (git-ignored).
"""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.conftest import PASSWORD  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
TIMEOUT_MS = 10_000

assert Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed: run `make browser-deps` (make test does)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(app):
    """The session's app over HTTP on 127.0.0.1, in a background thread."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", _free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _new_page(chromium, viewport: dict, **kw):
    context = chromium.new_context(viewport=viewport, **kw)
    context.set_default_timeout(TIMEOUT_MS)
    return context, context.new_page()


def _log_in(page, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("form button[type=submit]")


def _assert_assets_loaded(page) -> None:
    """Bootstrap's CSS and htmx are really there (portal/static/vendor filled by make vendor)."""
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"
    assert page.evaluate("typeof window.bootstrap") == "object", "bootstrap's JS did not load"
    # Bootstrap's navbar colour comes from the stylesheet: without it the nav is transparent.
    bg = page.evaluate("getComputedStyle(document.querySelector('nav.navbar')).backgroundColor")
    assert bg not in ("rgba(0, 0, 0, 0)", "transparent"), "bootstrap.min.css did not load"


def test_liaison_on_a_phone_logs_in_switches_language_and_stays_in_own_street(
        people, live_server, chromium, artifacts):
    context, page = _new_page(chromium, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    failed = []
    page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    try:
        # Login page, Chinese by default.
        response = page.goto(live_server + "/login")
        assert response.status == 200
        assert page.get_attribute("html", "lang") == "zh-CN"
        page.screenshot(path=str(artifacts / "login-zh.png"), full_page=True)

        _log_in(page, live_server, "edu-410105001")
        assert page.url == live_server + "/street/410105001/"
        assert page.get_attribute("html", "lang") == "zh-CN"
        expect(page.locator("#unit-name")).to_have_text("经八路街道")
        expect(page.locator("body")).to_contain_text("经八路街道")
        _assert_assets_loaded(page)
        # Nothing wider than the phone: no horizontal scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "workspace-zh.png"), full_page=True)

        # On a phone the navbar is collapsed: the switch is behind the menu button
        # (which needs Bootstrap's JS to open).
        switch = page.locator("#lang-switch")
        expect(switch).to_be_hidden()
        page.click("button.navbar-toggler")
        expect(page.locator("#mainnav.collapse.show")).to_be_visible()  # the slide-down has ended
        expect(switch).to_be_visible()
        page.screenshot(path=str(artifacts / "workspace-zh-menu.png"))
        expect(switch).to_have_text("English")
        with page.expect_navigation():
            switch.click()
        assert page.get_attribute("html", "lang") == "en"
        assert page.url.startswith(live_server + "/street/410105001/")
        expect(page.locator("#unit-name")).to_have_text("经八路街道")
        expect(page.locator("#lang-switch")).to_have_text("中文", use_inner_text=False)
        expect(page.locator("body")).to_contain_text("Overview")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "workspace-en.png"), full_page=True)

        # The sibling street is someone else's: typed in the address bar it is a 404.
        response = page.goto(live_server + "/street/410105002/")
        assert response.status == 404
        assert "花园路街道" not in page.content()
        page.screenshot(path=str(artifacts / "sibling-404-en.png"), full_page=True)

        # Apart from that deliberate 404, nothing failed (assets included).
        assert [f for f in failed if not f[1].endswith("/street/410105002/")] == []
    finally:
        context.close()


def test_province_office_lists_and_searches_units_below(people, live_server, chromium, artifacts):
    context, page = _new_page(chromium, DESKTOP)
    try:
        _log_in(page, live_server, "office-41")
        assert page.url == live_server + "/province/41/"
        expect(page.locator("#unit-name")).to_have_text("河南省")
        _assert_assets_loaded(page)

        child_list = page.locator("#child-list")
        expect(child_list).to_contain_text("郑州市")
        expect(child_list).to_contain_text("开封市")
        expect(child_list).not_to_contain_text("经八路街道")  # only the direct children
        page.screenshot(path=str(artifacts / "province-zh.png"), full_page=True)

        # Typing searches the whole subtree; htmx swaps the list in place.
        with page.expect_response(lambda r: "q=" in r.url and r.request.headers.get("hx-request") == "true"):
            page.locator("#child-search").press_sequentially("经八路", delay=30)
        expect(page.locator("#child-list")).to_contain_text("经八路街道")
        expect(page.locator("#child-list")).not_to_contain_text("郑州市")
        # A partial swap, not a page load: still one navbar, one search box.
        assert page.locator("nav.navbar").count() == 1
        assert page.locator("#child-search").count() == 1
        assert page.url.startswith(live_server + "/province/41/?q=")  # hx-push-url
        page.screenshot(path=str(artifacts / "province-search-zh.png"), full_page=True)

        # The result links to the street's workspace.
        with page.expect_navigation():
            page.locator("#child-list a", has_text="经八路街道").click()
        assert page.url == live_server + "/street/410105001/"
    finally:
        context.close()


def test_liaison_proposes_an_item_and_reads_the_shared_agenda(people, live_server, chromium, artifacts, run_in_app):
    from datetime import datetime, timedelta

    from portal.extensions import db
    from portal.models import Unit, User
    from portal.services import meetings as svc

    def schedule():
        office = db.session.get(User, people["office-410105"].id)
        meeting = svc.create_meeting(db.session.get(Unit, people["office-410105"].home_unit_id), {
            "title": "第一季度联席会议", "starts_at": datetime.now() + timedelta(days=7),
            "location": "区教育局", "invited_departments": ["edu", "civil"]}, by=office)
        svc.transition(meeting, "agenda_open", by=office)
        return meeting.id
    meeting_id = run_in_app(schedule)
    url = f"{live_server}/district/410105/meetings/{meeting_id}/"

    liaison_ctx, liaison = _new_page(chromium, PHONE, is_mobile=True, has_touch=True)
    office_ctx, office = _new_page(chromium, DESKTOP)
    try:
        _log_in(liaison, live_server, "edu-410105")
        liaison.goto(url)
        liaison.fill("#item-title", "推进社区学校标准化建设")
        liaison.fill("#item-description", "请审议2026年建设方案。")
        with liaison.expect_navigation():
            liaison.click("#propose-submit")
        expect(liaison.locator(".alert-success")).to_be_visible()
        expect(liaison.locator("#proposals")).to_contain_text("推进社区学校标准化建设")
        liaison.screenshot(path=str(artifacts / "meeting-proposed-phone.png"), full_page=True)

        _log_in(office, live_server, "office-410105")
        office.goto(url)
        with office.expect_navigation():
            office.locator("#proposals form button[type=submit]").first.click()  # "accept" is preselected
        with office.expect_navigation():
            office.click("button[data-to=agenda_locked]")
        expect(office.locator("#meeting-status")).to_have_text("议程已锁定")

        liaison.goto(url)
        expect(liaison.locator("#agenda-items")).to_contain_text("推进社区学校标准化建设")
        assert liaison.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        liaison.screenshot(path=str(artifacts / "meeting-agenda-phone.png"), full_page=True)
    finally:
        liaison_ctx.close()
        office_ctx.close()


def test_street_liaison_reports_progress_on_a_phone(people, live_server, chromium, artifacts, run_in_app, run_jobs):
    from datetime import date, timedelta

    from sqlalchemy import select

    from portal.extensions import db
    from portal.models import Task, TaskReport, Unit, User
    from portal.services import tasks as task_svc

    def issue():
        office = db.session.get(User, people["office-410105"].id)
        task = task_svc.create_task(db.session.get(Unit, office.home_unit_id), {
            "title": "社区老年课堂", "lead_department": "edu", "due_date": date.today() + timedelta(days=30),
            "target": {"name": "开班期数", "unit": "期", "value": 12}}, by=office)
        task_svc.cascade_task(task, "children", by=office)
        return task.id
    parent_id = run_in_app(issue)
    run_jobs()
    street_task = run_in_app(lambda: db.session.scalar(select(Task.id).join(Unit, Unit.id == Task.unit_id).where(
        Task.parent_id == parent_id, Unit.code == "410105001")))

    context, page = _new_page(chromium, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        _log_in(page, live_server, "edu-410105001")
        page.goto(f"{live_server}/street/410105001/tasks/")
        with page.expect_navigation():
            page.locator("a", has_text="社区老年课堂").first.click()
        assert page.url.endswith(f"/street/410105001/tasks/{street_task}/")
        # A bad percent is refused with a message, and what was typed stays.
        page.fill("#percent", "150")
        page.fill("#narrative", "已开班6期，参与老人180人次。")
        page.evaluate("document.getElementById('percent').removeAttribute('max')")  # as a hand-made request would
        with page.expect_navigation():
            page.click("#report-submit")
        expect(page.locator("#report-form .invalid-feedback")).to_be_visible()
        expect(page.locator("#narrative")).to_have_value("已开班6期，参与老人180人次。")
        page.fill("#percent", "50")
        page.fill("#actual_value", "6")
        with page.expect_navigation():
            page.click("#report-submit")
        expect(page.locator("#reports")).to_contain_text("已开班6期")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "task-report-phone.png"), full_page=True)
        with page.expect_navigation():
            page.click("#submit-form button[type=submit]")
        expect(page.locator("#submit-form")).to_have_count(0)  # waiting for the district's review now
        page.screenshot(path=str(artifacts / "task-submitted-phone.png"), full_page=True)
    finally:
        context.close()
    assert run_in_app(lambda: db.session.scalar(select(TaskReport.percent).where(TaskReport.task_id == street_task))) == 50
    assert run_in_app(lambda: db.session.get(Task, street_task).status) == "submitted"
