"""Browser test of the consolidated view: the province's map and charts are drawn, a click walks
down to a city, a district and a street, and the page switches to English. Screenshots land in
``test-artifacts/`` (dashboard-*.png)."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.test_browser import DESKTOP, PHONE, _log_in, _new_page, artifacts, chromium, live_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent

#: Non-blank pixels of a chart's canvas (ECharts draws into a 2D canvas).
DRAWN = """(id) => {
  const canvas = document.querySelector('#' + id + ' canvas');
  if (!canvas) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) { if (data[i] !== 0) n++; }
  return n;
}"""


@pytest.fixture
def henan(app, tree, people, create_unit, run_in_app, run_jobs):
    """The small tree plus every other city of Henan (the map's 18 shapes), a provincial task at
    the three streets and one of each other city's own, with some progress."""
    from portal.clock import local_today
    from portal.extensions import db
    from portal.models import Task, Unit, User
    from portal.services import tasks as svc

    units = json.loads((ROOT / "data" / "divisions-41-henan.json").read_text())["units"]
    for u in units:
        if u["tier"] == "city" and u["code"] not in tree:
            create_unit(u["code"], u["name"], "city", tree["41"])

    def office():
        return db.session.get(User, people["office-41"].id)

    future = (run_in_app(local_today) + timedelta(days=30)).isoformat()
    a = run_in_app(lambda: svc.create_task(Unit.by_code("41"), {"title": "培训覆盖", "lead_department": "edu",
                                                                "due_date": future}, by=office()).id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, a), "streets", by=office()))
    run_jobs()

    def city_tasks():
        cities = select(Unit).where(Unit.tier == "city", Unit.code != "4101").order_by(Unit.code)
        for n, city in enumerate(db.session.scalars(cities)):
            task = svc.create_task(city, {"title": "城市任务", "lead_department": "civil", "due_date": future},
                                   by=office())
            if n % 3:
                svc.report_progress(task, {"percent": 20 * (n % 5) + 10}, by=office())
        street = db.session.scalar(select(Task).where(Task.root_id == a, Task.unit.has(code="410105001")))
        svc.report_progress(street, {"percent": 70}, by=office())
    run_in_app(city_tasks)
    run_jobs()


def test_the_province_walks_down_to_a_street_through_the_consolidated_views(
        henan, live_server, chromium, artifacts):  # noqa: F811
    context, page = _new_page(chromium, DESKTOP)
    failed = []
    page.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        _log_in(page, live_server, "office-41")
        page.goto(live_server + "/province/41/dashboard/")
        expect(page.locator("#ranking tbody tr")).to_have_count(18)
        # The map of the 18 cities and the charts are drawn: a canvas with pixels in each.
        charts = ("chart-map", "chart-children", "chart-monthly", "chart-monthly-tasks", "chart-activities")
        for chart in charts:
            expect(page.locator(f"#{chart}[data-drawn='1'] canvas")).to_have_count(1)
        page.wait_for_timeout(300)
        for chart in charts:
            assert page.evaluate(DRAWN, chart) > 1000, f"{chart} is blank"
        # The key figures say what they are: the running month's task figures as of now, with a trend.
        expect(page.locator("#figure-completion_rate .as-of")).to_have_text("截至目前")
        expect(page.locator("#figure-tasks-overdue .trend")).to_contain_text("上期")
        expect(page.locator("#activity-ranking tbody tr")).to_have_count(18)
        page.screenshot(path=str(artifacts / "dashboard-province-zh.png"), full_page=True)

        # The ranking's row opens the city, then its district, then a street.
        with page.expect_navigation():
            page.click("#ranking tr[data-code='4101'] a.drill")
        assert "/city/4101/dashboard/" in page.url
        expect(page.locator("#unit-name")).to_have_text("郑州市")
        with page.expect_navigation():
            page.click("#ranking tr[data-code='410105'] a.drill")
        with page.expect_navigation():
            page.click("#ranking tr[data-code='410105001'] a.drill")
        assert "/street/410105001/dashboard/" in page.url
        expect(page.locator("#ranking")).to_have_count(0)  # a street ranks nobody
        expect(page.locator("#figure-progress .figure-value")).to_have_text("70.0%")
        expect(page.locator("#breadcrumb")).to_contain_text("金水区")
        page.screenshot(path=str(artifacts / "dashboard-street-zh.png"), full_page=True)

        # English, back up at the province through the breadcrumb.
        with page.expect_navigation():
            page.click("#lang-switch")
        expect(page.locator("#dashboard-tab")).to_have_text("Consolidated view")
        with page.expect_navigation():
            page.click("#breadcrumb a:has-text('河南省')")
        with page.expect_navigation():
            page.click("#dashboard-tab")
        expect(page.locator("#key-figures")).to_contain_text("Completion rate")
        expect(page.locator("#chart-map[data-drawn='1'] canvas")).to_have_count(1)
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "dashboard-province-en.png"), full_page=True)
        assert not errors, errors
        assert not failed, failed
    finally:
        context.close()

    # On a phone: the ranking scrolls inside its box, the page does not.
    context, page = _new_page(chromium, PHONE, is_mobile=True, has_touch=True)
    try:
        _log_in(page, live_server, "office-41")
        page.goto(live_server + "/province/41/dashboard/")
        expect(page.locator("#chart-children[data-drawn='1'] canvas")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(artifacts / "dashboard-province-phone.png"), full_page=True)
    finally:
        context.close()
