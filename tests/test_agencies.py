"""Agency names (issue 12, item 6): each unit's office administrator names its member
departments' agencies; the names show on the pages, in the Excel exports and in the documents."""
from __future__ import annotations

import io
from datetime import date, datetime

from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from portal.extensions import db

URL = "/district/410105/agencies/"


def _form(b, names: dict, url: str = URL):
    return b.post_form(url, {f"names.{code}": name for code, name in names.items()})


def test_office_sets_a_name_sees_the_default_and_blank_goes_back(new_browser, people):
    b = new_browser()
    b.login("office-410105")
    home = b.get("/district/410105/").get_data(as_text=True)
    assert 'id="edit-agencies"' in home and "金水区教育局" in home  # the default, on the home page
    page = b.get(URL).get_data(as_text=True)
    assert "金水区教育局" in page and "中共金水区委宣传部" in page  # the defaults next to each field
    response = _form(b, {"edu": "  金水区教育体育局 ", "civil": ""})
    assert response.status_code == 302
    page = b.get(URL).get_data(as_text=True)
    assert 'value="金水区教育体育局"' in page  # trimmed
    assert "金水区教育局 → 金水区教育体育局" in page  # the change, with who made it
    assert "OFFICE-410105" in page
    home = b.get("/district/410105/").get_data(as_text=True)
    assert "金水区教育体育局" in home
    # The audit trail has it: who, old and new.
    audit = b.get("/district/410105/accounts/audit").get_data(as_text=True)
    assert "unit.agency_name" in audit and "old=金水区教育局" in audit and "new=金水区教育体育局" in audit
    # Blank: back to the default.
    assert _form(b, {"edu": ""}).status_code == 302
    page = b.get(URL).get_data(as_text=True)
    assert 'value="金水区教育体育局"' not in page
    assert "金水区教育体育局 → 金水区教育局" in page
    # Nothing else changed: only edu's two changes are in the trail.
    assert b.get("/district/410105/accounts/audit").get_data(as_text=True).count("unit.agency_name") == 2


def test_bad_input_is_refused_with_the_field_named_and_kept(new_browser, people):
    b = new_browser()
    b.login("office-410105")
    for name, words in (("金水区\n教育局", "控制字符"), ("金水区\t教育局", "控制字符"), ("局" * 101, "不能超过100个字符")):
        response = _form(b, {"edu": name, "civil": "金水区民政局（新）"})
        body = response.get_data(as_text=True)
        assert response.status_code == 400, name
        assert "names.edu" in body and words in body
        assert "is-invalid" in body and "金水区民政局（新）" in body  # the input kept
    response = _form(b, {"nosuch": "某某局"})
    assert response.status_code == 400 and "nosuch" in response.get_data(as_text=True)
    # Nothing was saved by the refused forms.
    assert "金水区民政局（新）" not in b.get("/district/410105/").get_data(as_text=True)
    # Malformed: no names at all, or without a CSRF token: a 400, never a 5xx.
    assert b.post_form(URL, {}).status_code == 400
    assert b.client.post(URL, data={"names.edu": "x"}).status_code == 400


def test_only_the_units_own_office_admin(new_browser, people):
    for username, status in (("office-410102", 404),   # a sibling district
                             ("edu-410105", 403), ("civil-410105", 403),  # liaisons of the unit
                             ("viewer-41", 403), ("staff-410105", 403),
                             ("office-4101", 403),     # an office above names its own departments, not these
                             ("office-410105", 200)):
        b = new_browser()
        b.login(username)
        assert b.get(URL).status_code == status, username
        if status != 200:
            token = b.csrf("/notifications/")
            response = b.client.post(URL, data={"csrf_token": token, "names.edu": "某某局"})
            assert response.status_code == status, username
            home = b.get("/district/410105/")
            assert 'id="edit-agencies"' not in home.get_data(as_text=True)
    b = new_browser()
    b.login("office-410105")
    assert "某某局" not in b.get(URL).get_data(as_text=True)


def _named(run_in_app, tree, people):
    """金水区 names its education bureau 金水区教育体育局 and its civil affairs 金水区民政局（测试）."""
    from portal.models import User
    from portal.services.agencies import set_agency_names

    def make():
        office = db.session.get(User, people["office-410105"].id)
        unit = db.session.merge(tree["410105"])
        set_agency_names(unit, {"names": {"edu": "金水区教育体育局", "civil": "金水区民政局（测试）"}}, by=office)
    run_in_app(make)


def test_task_page_and_excel_name_the_agencies(new_browser, tree, people, run_in_app):
    from portal.models import User
    from portal.services import tasks as svc

    _named(run_in_app, tree, people)

    def make():
        office = db.session.get(User, people["office-410105"].id)
        task = svc.create_task(db.session.merge(tree["410105"]), {
            "title": "社区学校标准化建设", "lead_department": "edu", "co_departments": ["civil", "finance"],
            "due_date": date(2026, 12, 31)}, by=office)
        db.session.flush()
        svc.report_progress(task, {"percent": 30, "narrative": "已启动"},
                            by=db.session.get(User, people["civil-410105"].id))
        return task.id
    task_id = run_in_app(make)
    b = new_browser()
    b.login("office-410105")
    page = b.get(f"/district/410105/tasks/{task_id}/").get_data(as_text=True)
    definition = page.split('id="definition"', 1)[1].split("</section>", 1)[0]
    assert "金水区教育体育局" in definition and "金水区民政局（测试）" in definition and "金水区财政局" in definition
    reports = page.split('id="reports"', 1)[1].split("</section>", 1)[0]
    assert "金水区民政局（测试）" in reports  # the reporting liaison's department
    sheet = load_workbook(io.BytesIO(b.get("/district/410105/tasks/export.xlsx").data))["任务清单"]
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row]
    assert "金水区教育体育局" in cells and "金水区民政局（测试）、金水区财政局" in cells
    assert "教育" not in cells


def test_meeting_page_names_the_agencies(new_browser, tree, people, run_in_app):
    from portal.models import Attendance, Decision, Meeting, MeetingInvitation

    _named(run_in_app, tree, people)

    def make():
        meeting = Meeting(unit_id=tree["410105"].id, title="联席会议", starts_at=datetime(2026, 1, 5, 9, 0),
                          status="held", invitations=[MeetingInvitation(department_code="edu"),
                                                      MeetingInvitation(department_code="civil")])
        db.session.add(meeting)
        db.session.flush()
        db.session.add_all([Attendance(meeting_id=meeting.id, department_code="civil", status="present",
                                       attendee_name="张三"),
                            Decision(meeting_id=meeting.id, text="决定事项", lead_department_code="edu",
                                     co_department_codes=["civil"])])
        return meeting.id
    meeting_id = run_in_app(make)
    b = new_browser()
    b.login("office-410105")
    page = b.get(f"/district/410105/meetings/{meeting_id}/").get_data(as_text=True)
    for section in ('id="invited"', 'id="attendance"', 'id="decisions"'):
        assert section in page, section
    invited = page.split('id="invited"', 1)[1].split("</p>", 1)[0]
    assert "金水区教育体育局" in invited and "金水区民政局（测试）" in invited
    decisions = page.split('id="decisions"', 1)[1]
    assert "金水区教育体育局" in decisions.split("</section>", 1)[0]
    attendance = page.split('id="attendance"', 1)[1].split("</table>", 1)[0]
    assert "金水区民政局（测试）" in attendance


def test_activity_page_and_register_excel_name_the_agencies(new_browser, tree, people, run_in_app):
    """The register's download names the organising department by its agency at the activity's unit,
    lists the unit's agency names next to the codes, and an upload may use those names."""
    from portal.exports.activities_excel import COLUMNS
    from portal.models import Activity

    _named(run_in_app, tree, people)
    b = new_browser()
    b.login("office-410105")
    row = ["2026-03-05", None, "清明祭扫", "节日纪念活动", "烈士陵园", "金水区教育体育局", "金水区民政局（测试）、共青团",
           40, 5, 0, 3, 6, 200, 0, "带学生祭扫"]
    wb = Workbook()
    wb.active.title = "活动登记"
    wb.active.append([title for _key, title, _w in COLUMNS])
    wb.active.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    page = "/district/410105/activities/import"
    response = b.client.post(page, data={"csrf_token": b.csrf(page), "file": (io.BytesIO(buffer.getvalue()), "a.xlsx")},
                             content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    activity_id, lead, co = run_in_app(lambda: db.session.execute(
        select(Activity.id, Activity.department_code, Activity.co_department_codes)).one())
    assert (lead, list(co)) == ("edu", ["civil", "youth"])
    detail = b.get(f"/district/410105/activities/{activity_id}/").get_data(as_text=True)
    assert "金水区教育体育局" in detail and "金水区民政局（测试）" in detail and "共青团金水区委员会" in detail
    wb = load_workbook(io.BytesIO(b.get("/district/410105/activities/export.xlsx?period=2026").data))
    listed = [c.value for c in next(wb["活动清单"].iter_rows(min_row=3, max_row=3))]
    assert "金水区教育体育局" in listed and "金水区民政局（测试）、共青团金水区委员会" in listed
    names = [c.value for c in wb["类别和部门"]["E"]]
    assert names[1] == "本单位机构名称" and "金水区教育体育局" in names


def test_lists_name_each_rows_agency_from_one_query(app, new_browser, tree, people, run_in_app):
    """The subtree task list and activity register name each row's department by its agency at the
    row's unit (金水区教育体育局, 经八路街道教育办, 花园路街道教育办), read in one query for the page."""
    from sqlalchemy import event

    from portal.models import User
    from portal.services import activities as acts
    from portal.services import tasks as svc

    _named(run_in_app, tree, people)

    def make():
        for code in ("410105", "410105001", "410105002"):
            unit = db.session.merge(tree[code])
            office = db.session.get(User, people[f"office-{code}"].id)
            svc.create_task(unit, {"title": f"任务{code}", "lead_department": "edu", "due_date": date(2026, 12, 31)},
                            by=office)
            acts.create_activity(unit, {"title": f"活动{code}", "category": "legal", "start_date": "2026-03-05",
                                        "lead_department": "edu", "participants": {"youth": 1}}, by=office)
    run_in_app(make)
    b = new_browser()
    b.login("office-410105")
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if "department_agencies" in statement:
            statements.append(statement)
    with app.app_context():
        from portal.extensions import db as database

        engine = database.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        tasks = b.get("/district/410105/tasks/?scope=subtree").get_data(as_text=True)
        assert len(statements) == 1
        activities = b.get("/district/410105/activities/?scope=subtree&period=2026").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 2  # one per page
    for page in (tasks, activities):
        for name in ("金水区教育体育局", "经八路街道教育办", "花园路街道教育办"):
            assert name in page, name
