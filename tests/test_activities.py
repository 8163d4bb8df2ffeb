"""The activity register and the work teams: registering on the page and over the API,
refusals that name the field and keep the input, photos without their GPS tags, editing
with history and a version check, deletion with a reason, access (a sibling street
neither reads nor edits), masked phone numbers, the figures and the Excel import."""
from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from openpyxl import Workbook, load_workbook
from PIL import Image
from sqlalchemy import select

from portal import metrics
from portal.extensions import db
from portal.models import Activity, AuditLog, TeamMember, Unit, User
from portal.services import activities as svc
from tests.conftest import api_token

STREET = "/street/410105001/activities"


def local_today() -> date:
    """Today on the Beijing calendar (the portal's), without an app context."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _body(**over):
    body = {"title": "普法讲座进社区", "category": "legal", "start_date": local_today().isoformat(),
            "place": "社区会议室", "lead_department": "edu", "co_departments": ["justice"],
            "participants": {"youth": 12, "elders": 30, "others": 8}, "volunteers": 5, "volunteer_hours": 10,
            "funds": 300, "narrative": "讲解民法典"}
    body.update(over)
    return body


def _form(**over):
    form = {"title": "重阳节走访慰问老人", "category": "festival", "start_date": local_today().isoformat(),
            "end_date": "", "place": "经八路社区", "lead_department": "edu", "youth": "3", "elders": "40",
            "others": "2", "volunteers": "6", "volunteer_hours": "12", "funds": "800", "donated_goods": "1500",
            "narrative": "走访高龄老人"}
    form.update(over)
    return form


def _jpeg_with_gps(size=(2400, 1800)) -> bytes:
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = {1: "N", 2: (34.0, 45.0, 30.0), 3: "E", 4: (113.0, 39.0, 10.0)}
    exif[0x8825] = gps
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def _figure(run_in_app, code, key, period=None):
    return run_in_app(lambda: metrics.read(Unit.by_code(code), period)["metrics"].get(key, 0))


# --- registering on the page ---------------------------------------------------------------------------

def test_a_street_liaison_registers_an_activity_with_a_photo_and_the_district_counts_it(
        new_browser, people, run_in_app, run_jobs):
    b = new_browser()
    b.login("edu-410105001")
    assert b.get(f"{STREET}/new").status_code == 200
    before = _figure(run_in_app, "410105", "activities.person_times")
    data = dict(_form(), csrf_token=b.csrf(f"{STREET}/new"),
                photos=(io.BytesIO(_jpeg_with_gps()), "现场.jpg"))
    response = b.client.post(f"{STREET}/new", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    run_jobs()
    page = b.get(response.headers["Location"]).get_data(as_text=True)
    assert "重阳节走访慰问老人" in page and ">45<" in page  # 3 + 40 + 2, computed
    assert _figure(run_in_app, "410105", "activities.person_times") == before + 45
    assert _figure(run_in_app, "4101", "activities.count.festival") == 1
    assert _figure(run_in_app, "41", "activities.elders") == 40

    def stored_photo():
        activity = db.session.scalar(select(Activity))
        photo = activity.photos[0]
        return activity.id, photo.id, photo.width, photo.height
    activity_id, photo_id, width, height = run_in_app(stored_photo)
    assert max(width, height) == 1600  # shrunk from 2400
    photo = b.get(f"{STREET}/{activity_id}/files/{photo_id}")
    assert photo.status_code == 200
    image = Image.open(io.BytesIO(photo.get_data()))
    assert not image.getexif(), "EXIF (with the GPS position) must be stripped"
    assert b"PhoneMaker" not in photo.get_data()
    thumb = b.get(f"{STREET}/{activity_id}/files/{photo_id}/thumbnail")
    assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.get_data())).size) <= 320


@pytest.mark.parametrize("field,value,named,kept", [
    ("elders", "-3", "elders", "-3"),
    ("youth", "2.5", "youth", "2.5"),
    ("end_date", "2000-01-01", "end_date", "2000-01-01"),
    ("volunteers", "500", "volunteers", "500"),
    ("title", "", "title", None),
])
def test_a_refused_form_names_the_field_and_keeps_the_input(new_browser, people, run_in_app, field, value, named,
                                                            kept):
    b = new_browser()
    b.login("office-410105001")
    response = b.post_form(f"{STREET}/new", _form(**{field: value, "place": "保留的地点"}), page=f"{STREET}/new")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'data-field="{named}"' in page
    assert "保留的地点" in page  # the rest of the input is kept
    if kept is not None:
        assert f'value="{kept}"' in page
    assert run_in_app(lambda: db.session.scalar(select(db.func.count(Activity.id)))) == 0


def test_a_file_that_is_not_what_its_name_says_and_a_photo_over_the_limit(app, new_browser, people, run_in_app,
                                                                          monkeypatch):
    b = new_browser()
    b.login("office-410105001")
    fake = dict(_form(place="保留的地点"), csrf_token=b.csrf(f"{STREET}/new"),
                photos=(io.BytesIO(b"MZ\x90\x00 this is a program" * 50), "photo.jpg"))
    response = b.client.post(f"{STREET}/new", data=fake, content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'data-field="photos"' in page and "photo.jpg" in page
    assert "保留的地点" in page
    monkeypatch.setitem(app.config, "UPLOAD_MAX_BYTES", 20_000)
    big = dict(_form(), csrf_token=b.csrf(f"{STREET}/new"), photos=(io.BytesIO(_jpeg_with_gps()), "big.jpg"))
    response = b.client.post(f"{STREET}/new", data=big, content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'data-field="photos"' in page and "big.jpg" in page
    assert run_in_app(lambda: db.session.scalar(select(db.func.count(Activity.id)))) == 0


def test_a_liaison_registers_only_for_their_own_department(new_browser, people, run_in_app):
    b = new_browser()
    b.login("edu-410105001")
    response = b.post_form(f"{STREET}/new", _form(lead_department="civil"), page=f"{STREET}/new")
    assert response.status_code == 400 and 'data-field="lead_department"' in response.get_data(as_text=True)
    assert run_in_app(lambda: db.session.scalar(select(db.func.count(Activity.id)))) == 0


# --- edit, history, delete --------------------------------------------------------------------------------

def _create(run_in_app, people, code="410105001", by="office-410105001", **over):
    return run_in_app(lambda: svc.create_activity(Unit.by_code(code), _body(**over),
                                                  by=db.session.get(User, people[by].id)).id)


def test_edit_keeps_a_history_checks_the_version_and_delete_keeps_the_record(new_browser, people, run_in_app,
                                                                             run_jobs):
    activity_id = _create(run_in_app, people)
    b = new_browser()
    b.login("edu-410105001")
    form = _form(title="普法讲座进社区", category="legal", youth="20", elders="30", others="8", version="1")
    response = b.post_form(f"{STREET}/{activity_id}/edit", form, page=f"{STREET}/{activity_id}/edit")
    assert response.status_code == 302
    page = b.get(f"{STREET}/{activity_id}/").get_data(as_text=True)
    assert "youth" in page and "12 → 20" in page  # who changed what
    # A second edit from the same stale version is a conflict, with the input kept.
    response = b.post_form(f"{STREET}/{activity_id}/edit", dict(form, place="另一个地点"),
                           page=f"{STREET}/{activity_id}/edit")
    assert response.status_code == 409 and "另一个地点" in response.get_data(as_text=True)
    # Deleting needs a reason.
    response = b.post_form(f"{STREET}/{activity_id}/delete", {"reason": ""}, page=f"{STREET}/{activity_id}/")
    assert response.status_code == 400 and 'data-field="reason"' in response.get_data(as_text=True)
    response = b.post_form(f"{STREET}/{activity_id}/delete", {"reason": "重复登记"}, page=f"{STREET}/{activity_id}/")
    assert response.status_code == 302
    run_jobs()
    assert b.get(f"{STREET}/{activity_id}/").status_code == 404

    def trail():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "activity.delete"))
        return entry.details
    details = run_in_app(trail)
    assert details["reason"] == "重复登记" and details["record"]["title"] == "普法讲座进社区"
    assert _figure(run_in_app, "410105", "activities.count") == 0


# --- access ----------------------------------------------------------------------------------------------------

def test_a_sibling_street_can_neither_read_nor_edit(new_browser, people, run_in_app, client):
    activity_id = _create(run_in_app, people)
    b = new_browser()
    b.login("office-410105002")
    for url in (f"{STREET}/{activity_id}/", f"{STREET}/", f"/street/410105002/activities/{activity_id}/",
                f"/street/410105002/activities/{activity_id}/edit"):
        assert b.get(url).status_code == 404, url
    assert "普法讲座" not in b.get("/street/410105002/activities/").get_data(as_text=True)
    headers = api_token(b.client, "office-410105002")
    assert b.client.get(f"/api/v1/activities/{activity_id}", headers=headers).status_code == 404
    assert b.client.patch(f"/api/v1/activities/{activity_id}", headers=headers,
                          json={"title": "x", "version": 1}).status_code == 404
    assert b.client.delete(f"/api/v1/activities/{activity_id}", headers=headers,
                           json={"reason": "x"}).status_code == 404
    # The district above reads it and links to its unit.
    d = new_browser()
    d.login("office-410105")
    page = d.get("/district/410105/activities/").get_data(as_text=True)
    assert "普法讲座进社区" in page and "/street/410105001/activities/" in page


# --- the API ------------------------------------------------------------------------------------------------

def test_api_create_list_get_patch_delete(client, people, run_in_app, run_jobs):
    headers = api_token(client, "edu-410105001")
    response = client.post("/api/v1/units/410105001/activities", headers=headers, json=_body())
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["person_times"] == 50 and created["unit_code"] == "410105001"
    refused = client.post("/api/v1/units/410105001/activities", headers=headers,
                          json=_body(participants={"youth": -1, "elders": 0, "others": 0}))
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "participants.youth"
    refused = client.post("/api/v1/units/410105001/activities", headers=headers,
                          json=_body(start_date="2026-05-02", end_date="2026-05-01"))
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "end_date"
    refused = client.post("/api/v1/units/410105001/activities", headers=headers, json=_body(volunteers=51))
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "volunteers"

    office = api_token(client, "office-410105")
    listed = client.get("/api/v1/units/410105/activities?scope=subtree&category=legal", headers=office).get_json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == created["id"]
    assert client.get("/api/v1/units/410105/activities?scope=unit", headers=office).get_json()["total"] == 0
    assert client.get("/api/v1/units/410105/activities?scope=subtree&category=care",
                      headers=office).get_json()["total"] == 0
    period = local_today().strftime("%Y-%m")
    assert client.get(f"/api/v1/units/410105/activities?period={period}", headers=office).get_json()["total"] == 1

    patched = client.patch(f"/api/v1/activities/{created['id']}", headers=headers,
                           json={"participants": {"elders": 40}, "version": created["version"]})
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["person_times"] == 60 and patched.get_json()["title"] == created["title"]
    stale = client.patch(f"/api/v1/activities/{created['id']}", headers=headers,
                         json={"title": "新标题", "version": created["version"]})
    assert stale.status_code == 409
    run_jobs()
    assert _figure(run_in_app, "4101", "activities.person_times") == 60
    gone = client.delete(f"/api/v1/activities/{created['id']}", headers=headers, json={})
    assert gone.status_code == 400 and gone.get_json()["error"]["field"] == "reason"
    assert client.delete(f"/api/v1/activities/{created['id']}", headers=headers,
                         json={"reason": "登记错误"}).status_code == 204
    run_jobs()
    assert _figure(run_in_app, "4101", "activities.person_times") == 0


# --- the figures ----------------------------------------------------------------------------------------------------

def test_activity_figures_by_month_and_their_records(client, people, run_in_app, run_jobs):
    today = local_today()
    last_year = date(today.year - 1, 6, 15)
    _create(run_in_app, people, start_date=last_year.isoformat(), category="care")
    _create(run_in_app, people, code="410105002", by="office-410105002")
    run_jobs()
    assert _figure(run_in_app, "410105", "activities.count") == 1  # this month
    assert _figure(run_in_app, "410105", "activities.count", str(last_year.year)) == 1
    assert _figure(run_in_app, "410105", "activities.count.care", str(last_year.year)) == 1
    assert _figure(run_in_app, "410105", "activities.funds", str(last_year.year)) == 300
    headers = api_token(client, "office-4101")
    records = client.get(f"/api/v1/units/4101/metrics/activities.person_times/records?period={last_year.year}",
                         headers=headers).get_json()
    assert records["total"] == 1 and records["items"][0]["kind"] == "activity"
    assert records["items"][0]["value"] == 50
    assert run_in_app(metrics.stored_values) == run_in_app(lambda: _recomputed())


def _recomputed():
    from tests.test_metrics_consistency import _expected_table

    return _expected_table()


# --- the work team ------------------------------------------------------------------------------------------------

def _member(run_in_app, people, name, phone="13812345678", left_on=None, role="member"):
    return run_in_app(lambda: svc.add_member(Unit.by_code("410105001"), {
        "name": name, "role": role, "kind": "veteran", "phone": phone,
        "joined_on": (local_today() - timedelta(days=30)).isoformat(), "left_on": left_on},
        by=db.session.get(User, people["office-410105001"].id)).id)


def test_phones_are_masked_except_to_the_units_own_office(new_browser, people, run_in_app):
    _member(run_in_app, people, "张老师", phone="13812345678")
    own = new_browser()
    own.login("office-410105001")
    page = own.get("/street/410105001/team/").get_data(as_text=True)
    assert "13812345678" in page
    for username in ("office-410105", "edu-410105001", "viewer-41"):
        other = new_browser()
        other.login(username)
        page = other.get("/street/410105001/team/").get_data(as_text=True)
        assert "张老师" in page and "138****5678" in page and "13812345678" not in page, username
    sibling = new_browser()
    sibling.login("office-410105002")
    assert sibling.get("/street/410105001/team/").status_code == 404


def test_a_complete_team_is_counted_and_leaving_is_a_date(new_browser, people, run_in_app, run_jobs):
    ids = [_member(run_in_app, people, f"队员{i}", role="volunteer" if i == 0 else "member") for i in range(5)]
    run_jobs()
    assert _figure(run_in_app, "41", "teams.complete") == 1
    assert _figure(run_in_app, "410105", "teams.volunteers") == 1
    b = new_browser()
    b.login("office-410105001")
    form = {"name": "队员1", "role": "member", "kind": "veteran", "phone": "13812345678",
            "joined_on": (local_today() - timedelta(days=30)).isoformat(),
            "left_on": (local_today() - timedelta(days=40)).isoformat(), "version": "1"}
    response = b.post_form(f"/street/410105001/team/{ids[1]}/edit", form, page="/street/410105001/team/")
    assert response.status_code == 400 and 'data-field="left_on"' in response.get_data(as_text=True)
    form["left_on"] = local_today().isoformat()
    assert b.post_form(f"/street/410105001/team/{ids[1]}/edit", form,
                       page="/street/410105001/team/").status_code == 302
    run_jobs()
    assert _figure(run_in_app, "41", "teams.complete") == 0
    assert run_in_app(lambda: db.session.get(TeamMember, ids[1]).left_on) == local_today()  # kept, not deleted


def test_named_volunteers_accumulate_hours(new_browser, people, run_in_app):
    member = _member(run_in_app, people, "李志愿", role="volunteer")
    for hours in ("3", "4.5"):
        b = new_browser()
        b.login("office-410105001")
        response = b.post_form(f"{STREET}/new", _form(**{f"hours_{member}": hours}), page=f"{STREET}/new")
        assert response.status_code == 302
    assert run_in_app(lambda: svc.volunteer_hours([member]))[member] == 7.5
    page = b.get("/street/410105001/team/").get_data(as_text=True)
    assert "7.5" in page


# --- Excel -----------------------------------------------------------------------------------------------------------

def _sheet(rows) -> bytes:
    from portal.exports.activities_excel import COLUMNS

    wb = Workbook()
    ws = wb.active
    ws.title = "活动登记"
    ws.append([title for _key, title, _w in COLUMNS])
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def test_a_register_upload_marks_the_units_figures_once_and_counts_every_row(new_browser, people, run_in_app,
                                                                             run_jobs, monkeypatch):
    """A year's register is thousands of rows: the unit's figures are marked dirty once for the
    whole upload, not once a row, and every row is counted."""
    from portal.services import activities as activities_service

    calls = []
    real = activities_service.mark_dirty
    monkeypatch.setattr(activities_service, "mark_dirty", lambda ids: (calls.append(list(ids)), real(ids)))
    row = ["2026-03-05", None, "清明祭扫", "节日纪念活动", "烈士陵园", "教育", "共青团", 40, 5, 0, 3, 6, 200, 0, ""]
    b = new_browser()
    b.login("office-410105001")
    page = "/street/410105001/activities/import"
    response = b.client.post(page, data={"csrf_token": b.csrf(page),
                                         "file": (io.BytesIO(_sheet([row] * 7)), "登记.xlsx")},
                             content_type="multipart/form-data")
    assert response.status_code == 302
    assert len(calls) == 1
    run_jobs()
    assert _figure(run_in_app, "410105", "activities.count", "2026-03") == 7
    assert _figure(run_in_app, "410105", "activities.person_times", "2026-03") == 7 * 45


def test_the_register_upload_is_all_or_nothing(new_browser, people, run_in_app, run_jobs):
    good = ["2026-03-05", None, "清明祭扫", "节日纪念活动", "烈士陵园", "教育", "共青团", 40, 5, 0, 3, 6, 200, 0, "带学生祭扫"]
    bad_end = ["2026-03-10", "2026-03-01", "技能培训", "skills", "", "edu", "", 10, 0, 0, 0, 0, 0, 0, ""]
    bad_count = ["2026-04-01", None, "法治讲座", "legal", "", "edu", "", -5, 0, 0, 0, 0, 0, 0, ""]
    b = new_browser()
    b.login("office-410105001")
    page = "/street/410105001/activities/import"
    response = b.client.post(page, data={"csrf_token": b.csrf(page),
                                         "file": (io.BytesIO(_sheet([good, bad_end, bad_count])), "登记.xlsx")},
                             content_type="multipart/form-data")
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<td>3</td><td><code>end_date</code>" in text and "<td>4</td><td><code>youth</code>" in text
    assert run_in_app(lambda: db.session.scalar(select(db.func.count(Activity.id)))) == 0  # nothing saved
    response = b.client.post(page, data={"csrf_token": b.csrf(page),
                                         "file": (io.BytesIO(_sheet([good, good])), "登记.xlsx")},
                             content_type="multipart/form-data")
    assert response.status_code == 302
    run_jobs()
    assert _figure(run_in_app, "410105", "activities.person_times", "2026-03") == 90
    # The download lists them, with the template as its second sheet.
    data = b.get("/street/410105001/activities/export.xlsx?period=2026").get_data()
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames[:2] == ["活动清单", "活动登记"]
    assert [c.value for c in wb["活动清单"]["E"]][2:] == ["清明祭扫", "清明祭扫"]  # below the title and the header
    today = local_today()
    assert wb["活动清单"]["A1"].value == f"经八路街道活动登记清单（本单位及下级单位） · {today.year}年{today.month}月{today.day}日"
    for name, orientation in (("活动清单", "landscape"), ("活动登记", "landscape"), ("类别和部门", "portrait")):
        ws = wb[name]
        assert ws["A1"].value.startswith("经八路街道") and ws.freeze_panes == "A3"
        assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == orientation
        assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True and ws.print_title_rows == "$2:$2"
    # The downloaded template, filled in, reads back: its header row is found below the title row.
    from portal.exports.activities_excel import read_register_sheet

    wb["活动登记"].append(good)
    buffer = io.BytesIO()
    wb.save(buffer)
    rows = run_in_app(lambda: read_register_sheet(buffer.getvalue()))
    assert [r.row_number for r in rows] == [3] and rows[0].values["title"] == "清明祭扫"
