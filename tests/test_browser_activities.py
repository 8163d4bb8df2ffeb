"""Browser test of the activity register on a phone (issue 11): a street liaison registers an
activity with a photo on a phone-sized screen, and the district's figures move: its home's
activities of the year (the stored figures, refreshed after the commit) and the district's
instance of a task whose target is counted from activities (rolled up from its streets).
Screenshots land in the test's tmp dir."""
from __future__ import annotations

import io
import re
from datetime import date

from PIL import Image, ImageDraw
from playwright.sync_api import expect
from sqlalchemy import select

from tests.test_browser import PHONE, _log_in, _new_page, chromium, live_server  # noqa: F401


def _photo(path) -> None:
    image = Image.new("RGB", (2000, 1500), (230, 225, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle([200, 150, 1800, 450], fill=(200, 20, 30))
    for n in range(12):
        draw.ellipse([150 + n * 140, 900, 250 + n * 140, 1000], fill=(230, 190, 160))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    path.write_bytes(buffer.getvalue())


def test_street_liaison_registers_an_activity_on_a_phone_and_the_district_figure_moves(
        app, tree, people, run_in_app, run_jobs, live_server, chromium, tmp_path):  # noqa: F811
    from portal.clock import local_today
    from portal.extensions import db
    from portal.models import Task, Unit, User
    from portal.services import tasks as svc

    today = run_in_app(local_today)
    district_office = lambda: db.session.get(User, people["office-410105"].id)  # noqa: E731
    root = run_in_app(lambda: svc.create_task(Unit.by_code("410105"), {
        "title": "每个街道全年开展法治教育活动不少于12次", "lead_department": "justice", "co_departments": ["edu"],
        "due_date": date(today.year, 12, 31).isoformat(),
        "target": {"name": "法治教育活动", "unit": "次", "value": 12,
                   "counted_from": {"category": "legal", "measure": "count"}}}, by=district_office()).id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, root), "children", by=district_office()))
    run_jobs()
    street_task = run_in_app(lambda: db.session.scalar(select(Task.id).where(Task.parent_id == root,
                                                                             Task.unit_code == "410105001")))
    photo = tmp_path / "现场照片.jpg"
    _photo(photo)

    district_ctx, district = _new_page(chromium, PHONE, is_mobile=True, has_touch=True)
    street_ctx, phone = _new_page(chromium, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    failed = []
    phone.on("response", lambda r: failed.append((r.status, r.url)) if r.status >= 400 else None)
    try:
        # The district office's figures before: nothing registered this year.
        _log_in(district, live_server, "office-410105")
        district.goto(live_server + "/district/410105/")
        expect(district.locator("#figure-activities-count")).to_have_text("0")
        expect(district.locator("#figure-activities-person_times")).to_have_text("0")
        district.goto(f"{live_server}/district/410105/tasks/{root}/")
        expect(district.locator("#target")).to_contain_text("2个单位合计0次")

        # The street's liaison of education, on a phone.
        _log_in(phone, live_server, "edu-410105001")
        phone.goto(live_server + "/street/410105001/activities/new")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "the form scrolls sideways"
        expect(phone.locator("#photos")).to_have_attribute("capture", "environment")
        phone.fill("#title", "青少年法治教育课堂")
        phone.select_option("#category", "legal")
        phone.fill("#place", "经八路街道新时代文明实践站")
        phone.fill("#youth", "36")
        phone.fill("#elders", "4")
        phone.fill("#others", "5")
        expect(phone.locator("#person-times")).to_have_text("45")  # computed as the groups are typed
        phone.fill("#volunteers", "3")
        phone.fill("#volunteer_hours", "6")
        phone.set_input_files("#photos", str(photo))
        phone.screenshot(path=str(tmp_path / "activity-form-phone.png"), full_page=True)
        with phone.expect_navigation():
            phone.click("#save-activity")
        assert re.search(r"/street/410105001/activities/\d+/$", phone.url), phone.url
        expect(phone.locator("body")).to_contain_text("青少年法治教育课堂")
        thumb = phone.locator("img.activity-thumb").first
        expect(thumb).to_be_visible()
        thumb.scroll_into_view_if_needed()
        phone.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
        assert phone.evaluate("img => img.naturalWidth", thumb.element_handle()) <= 320  # the thumbnail
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        phone.screenshot(path=str(tmp_path / "activity-saved-phone.png"), full_page=True)

        run_jobs()  # with Redis: the refresh of the figures and the recount run in a worker
        # The street's task: counted, not typed.
        phone.goto(f"{live_server}/street/410105001/tasks/{street_task}/")
        expect(phone.locator("#counted-value")).to_contain_text("1")
        expect(phone.locator("#actual_value")).to_have_count(0)
        expect(phone.locator("#counted-activities")).to_contain_text("青少年法治教育课堂")
        phone.screenshot(path=str(tmp_path / "task-counted-phone.png"), full_page=True)

        # The district's figures moved.
        district.goto(live_server + "/district/410105/")
        expect(district.locator("#figure-activities-count")).to_have_text("1")
        expect(district.locator("#figure-activities-person_times")).to_have_text("45")
        expect(district.locator("#activity-figures-stale")).to_have_count(0)
        district.screenshot(path=str(tmp_path / "district-home-phone.png"), full_page=True)
        district.click("#figure-activities-count")  # the drill-down: the records behind the figure
        expect(district.locator("#records")).to_contain_text("青少年法治教育课堂")
        district.goto(f"{live_server}/district/410105/tasks/{root}/")
        expect(district.locator("#target")).to_contain_text("2个单位合计1次")
        assert failed == [], failed
    finally:
        street_ctx.close()
        district_ctx.close()
    print("screenshots in", tmp_path)
