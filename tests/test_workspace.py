"""Each tier's workspace: the unit, breadcrumb, children (paginated, searchable), departments and liaisons."""
from __future__ import annotations


def test_district_home_shows_breadcrumb_children_departments_and_liaisons(new_browser, people):
    b = new_browser()
    b.login("office-410105")
    page = b.get("/district/410105/").get_data(as_text=True)
    crumbs = page[page.index('id="breadcrumb"'):page.index("</ol>")]
    assert crumbs.index("河南省") < crumbs.index("郑州市") < crumbs.index("金水区")
    children = page[page.index('id="child-list"'):]
    assert "经八路街道" in children and "花园路街道" in children and "林山寨街道" not in children
    departments = page[page.index('id="departments"'):]
    assert "EDU-410105" in departments and "CIVIL-410105" in departments
    assert "EDU-410105001" not in departments  # a street's liaison is not the district's


def test_street_home_has_no_child_list(new_browser, people):
    b = new_browser()
    b.login("edu-410105001")
    page = b.get("/street/410105001/").get_data(as_text=True)
    assert 'id="child-list"' not in page and 'id="departments"' in page
    assert "/accounts/" not in page  # no menu entry for what the liaison may not use


def test_children_are_paginated(new_browser, people, create_unit, tree):
    for i in range(1, 31):
        create_unit(f"4101059{i:02d}", f"测试街道{i:02d}", "street", tree["410105"])
    b = new_browser()
    b.login("office-410105")
    first = b.get("/district/410105/").get_data(as_text=True)
    second = b.get("/district/410105/?page=2").get_data(as_text=True)
    assert "测试街道01" in first and "测试街道30" not in first
    assert "测试街道30" in second
    assert "32" in first  # the total is shown


def test_search_finds_units_anywhere_below_but_not_beside(new_browser, people):
    b = new_browser()
    b.login("office-41")
    found = b.get("/province/41/?q=经八路").get_data(as_text=True)
    assert "经八路街道" in found and "郑州市</span>" not in found
    partial = b.get("/province/41/?q=花园", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in partial and "花园路街道" in partial
    district = new_browser()
    district.login("office-410102")
    assert "经八路街道" not in district.get("/district/410102/?q=经八路").get_data(as_text=True)
    # Wildcards typed by a user are literal text, not patterns.
    assert "No units found" in b.get("/province/41/?q=%25&lang=en").get_data(as_text=True)


def test_english_workspace(new_browser, people):
    b = new_browser()
    b.login("office-4101")
    page = b.get("/city/4101/?lang=en").get_data(as_text=True)
    assert "Units below" in page and "Member departments and liaisons" in page and "Education" in page
    page_zh = b.get("/city/4101/?lang=zh_Hans_CN").get_data(as_text=True)
    assert "下级单位" in page_zh and "教育" in page_zh


def test_error_pages_in_both_languages(new_browser, people):
    b = new_browser()
    b.login("edu-410105001")
    assert "404" in b.get("/street/410105002/").get_data(as_text=True)
    en = b.get("/street/410105002/?lang=en")
    assert en.status_code == 404 and "not yours to see" in en.get_data(as_text=True)
    forbidden = b.get("/street/410105001/accounts/?lang=en")
    assert forbidden.status_code == 403 and "not allowed" in forbidden.get_data(as_text=True)


def test_migrations_match_the_models(app):
    """`flask db check` finds nothing to generate after `flask db upgrade`."""
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_home_summarises_tasks_and_upcoming_meetings(new_browser, people, run_in_app, run_jobs):
    from datetime import timedelta

    from portal.clock import local_now
    from portal.extensions import db
    from portal.models import Unit, User
    from portal.services import meetings as meeting_svc
    from portal.services import tasks as task_svc

    def make():
        office = db.session.get(User, people["office-410105"].id)
        district = db.session.get(Unit, office.home_unit_id)
        today = local_now().date()
        task_svc.create_task(district, {"title": "逾期任务", "lead_department": "edu",
                                        "due_date": today - timedelta(days=2)}, by=office)
        task_svc.create_task(district, {"title": "本周到期", "lead_department": "edu",
                                        "due_date": today + timedelta(days=3)}, by=office)
        street_office = db.session.get(User, people["office-410105001"].id)
        task_svc.create_task(db.session.get(Unit, street_office.home_unit_id), {
            "title": "街道逾期", "lead_department": "edu", "due_date": today - timedelta(days=1)}, by=street_office)
        meeting_svc.create_meeting(district, {"title": "下周联席会议", "starts_at": local_now() + timedelta(days=5),
                                              "invited_departments": ["edu"]}, by=office)
    run_in_app(make)
    run_jobs()  # the figures' refresh (the count below is a stored figure)
    b = new_browser()
    b.login("office-410105")
    page = b.get("/district/410105/").get_data(as_text=True)
    assert 'id="count-open">2<' in page and 'id="count-overdue">1<' in page and 'id="count-due-soon">1<' in page
    assert 'id="count-overdue-below">1<' in page
    assert "下周联席会议" in page[page.index('id="upcoming-meetings"'):]
    # The street sees its own figures only.
    street = new_browser()
    street.login("office-410105001")
    street_page = street.get("/street/410105001/").get_data(as_text=True)
    assert 'id="count-overdue">1<' in street_page and 'id="count-overdue-below"' not in street_page
