"""Bounded work: no list, id or upload can make the server do unbounded work or
answer 500. Huge page numbers, years and day counts give an empty or unfiltered
page; ids beyond the database's integer range are simply not found; an Excel
upload is refused before it is parsed when its sender may not report, and
refused unread when it unpacks to far more than it weighs."""
from __future__ import annotations

import io
import re
import zipfile

import pytest
from flask_babel import force_locale
from openpyxl import Workbook

from portal.exports import tasks_excel
from portal.exports.tasks_excel import MAX_SCAN_ROWS, read_progress_sheet
from portal.services import ServiceError
from tests.conftest import api_token

HUGE = "99999999999999999999"
DIST = "/district/410105"


def _login(new_browser, name):
    b = new_browser()
    assert b.login(name).status_code == 302
    return b


@pytest.mark.parametrize("query", ["page=4611686018427387904", "page=-3", "page=abc", "page=" + "9" * 5000,
                                   "year=" + HUGE, "year=-1", "due_within=999999999", "due_within=-999999999",
                                   "due_within=" + HUGE])
@pytest.mark.parametrize("path", ["/tasks/", "/meetings/"])
def test_list_parameters_out_of_range(people, new_browser, path, query):
    b = _login(new_browser, "office-410105")
    response = b.get(f"{DIST}{path}?{query}&scope=subtree")
    assert response.status_code in (200, 400), response.status_code


@pytest.mark.parametrize("path", [f"{DIST}/tasks/{HUGE}/", f"{DIST}/meetings/{HUGE}/", f"{DIST}/tasks/0/",
                                  f"{DIST}/meetings/2147483648/minutes", f"{DIST}/tasks/export/{HUGE}",
                                  f"{DIST}/tasks/export/2147483648/download", f"{DIST}/activities/import/{HUGE}",
                                  f"{DIST}/tasks/export/0"])
def test_ids_beyond_the_integer_range_are_not_found(people, new_browser, path):
    b = _login(new_browser, "office-410105")
    assert b.get(path).status_code == 404


@pytest.mark.parametrize("path", [f"/api/v1/tasks/{HUGE}", "/api/v1/meetings/2147483648",
                                  f"/api/v1/tasks/{HUGE}/cascade/1"])
def test_api_ids_beyond_the_integer_range_are_not_found(people, client, path):
    response = client.get(path, headers=api_token(client, "office-410105"))
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_largest_id_is_still_looked_up(people, new_browser):
    b = _login(new_browser, "office-410105")
    assert b.get(f"{DIST}/tasks/2147483647/").status_code == 404  # looked up, not found
    assert b.get(f"{DIST}/tasks/export/2147483647").status_code == 404
    assert b.get(f"{DIST}/activities/import/2147483647").status_code == 404


# --- the Excel progress upload ------------------------------------------------------------------

def _workbook(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "进度报送"
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _replace_part(data: bytes, name: str, content: bytes, *, extra: dict | None = None) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, content if item.filename == name else source.read(item.filename))
        for extra_name, extra_content in (extra or {}).items():
            target.writestr(extra_name, extra_content)
    return out.getvalue()


SHEET = "xl/worksheets/sheet1.xml"
NS = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
HEADER_ROW = (b'<row r="1"><c r="A1" t="inlineStr"><is><t>task_id</t></is></c>'
              b'<c r="B1" t="inlineStr"><is><t>percent</t></is></c></row>')


def _sheet(rows: bytes, dimension: bytes = b"") -> bytes:
    return NS + dimension + b"<sheetData>" + HEADER_ROW + rows + b"</sheetData></worksheet>"


def test_a_sheet_claiming_a_million_rows_is_refused_unread(app):
    data = _replace_part(_workbook([["task_id", "percent"]]), SHEET,
                         _sheet(b'<row r="1000000"/>', b'<dimension ref="A1:B1000000"/>'))
    with app.app_context(), force_locale("en"), pytest.raises(ServiceError) as info:
        read_progress_sheet(data)
    assert "too large" in info.value.message and info.value.field == "file"


def test_blank_rows_count_against_the_cap(app):
    # No dimension to go by: the rows are scanned, blank ones included, and the scan stops at the cap.
    blank = b"".join(b'<row r="%d"/>' % n for n in range(2, MAX_SCAN_ROWS + 50))
    data = _replace_part(_workbook([["task_id", "percent"]]), SHEET, _sheet(blank))
    with app.app_context(), force_locale("en"), pytest.raises(ServiceError) as info:
        read_progress_sheet(data)
    assert "too large" in info.value.message


def test_a_sheet_at_the_cap_is_read(app):
    blank = b"".join(b'<row r="%d"/>' % n for n in range(2, MAX_SCAN_ROWS - 1))
    filled = b'<row r="%d"><c r="A%d"><v>7</v></c><c r="B%d"><v>50</v></c></row>' % ((MAX_SCAN_ROWS,) * 3)
    data = _replace_part(_workbook([["task_id", "percent"]]), SHEET, _sheet(blank + filled))
    with app.app_context():
        rows = read_progress_sheet(data)
    assert [(r.row_number, r.task_id) for r in rows] == [(MAX_SCAN_ROWS, 7)]


def test_a_zip_bomb_is_refused_before_parsing(app, monkeypatch):
    bomb = b"<!-- " + b"0" * (tasks_excel.MAX_INFLATED_BYTES + 1) + b" -->"
    data = _replace_part(_workbook([["task_id", "percent"]]), "xl/sharedStrings.xml", b"",
                         extra={"xl/padding.xml": bomb})
    assert len(data) < 1024 * 1024  # it weighs little
    monkeypatch.setattr(tasks_excel, "load_workbook", lambda *a, **k: pytest.fail("parsed"))
    with app.app_context(), force_locale("en"), pytest.raises(ServiceError) as info:
        read_progress_sheet(data)
    assert "too large" in info.value.message


def test_a_reader_cannot_make_the_server_parse_an_upload(people, new_browser, monkeypatch):
    calls = []
    monkeypatch.setattr(tasks_excel, "read_progress_sheet", lambda data: calls.append(data) or [])
    for name in ("viewer-41", "viewer-4101"):
        b = _login(new_browser, name)
        assert b.get(f"{DIST}/tasks/import").status_code == 403
        page = b.get(f"{DIST}/tasks/").get_data(as_text=True)
        assert 'id="import-progress"' not in page
        response = b.post_form(f"{DIST}/tasks/import", {"file": (io.BytesIO(b"x" * 1000), "a.xlsx")},
                               page=f"{DIST}/tasks/", content_type="multipart/form-data")
        assert response.status_code == 403
    assert calls == []
    # The district's liaison and office may upload.
    for name in ("edu-410105", "office-410105", "office-4101"):
        b = _login(new_browser, name)
        assert b.get(f"{DIST}/tasks/import").status_code == 200


@pytest.mark.parametrize("query, field", [("year=1999", "year"), ("status=bogus", "status")])
def test_meeting_list_filters_go_through_the_schema(people, new_browser, query, field):
    b = _login(new_browser, "office-410105")
    response = b.get(f"{DIST}/meetings/?lang=en&{query}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200        # the unfiltered list, with the reason
    alert = re.search(r'class="alert alert-warning[^"]*"[^>]*>(.*?)</div>', page, re.S)
    assert alert and field in alert.group(1), page[:3000]


@pytest.mark.parametrize("path", ["/", "/accounts/", "/dashboard/", "/tasks/", "/meetings/", "/activities/",
                                  "/team/"])
@pytest.mark.parametrize("query", ["q=%00", "period=%00", "department=a%00b", "sort=%00", "x%00=1"])
def test_characters_no_database_stores_are_refused_everywhere(people, new_browser, path, query):
    # PostgreSQL refuses NUL in text: a search box or filter read outside a schema answered 500.
    b = _login(new_browser, "office-410105")
    response = b.get(f"{DIST}{path}?lang=en&{query}")
    assert response.status_code == 400
    assert "cannot be stored" in response.get_data(as_text=True)


def test_a_unit_code_with_nul_is_refused(people, new_browser, client):
    b = _login(new_browser, "office-410105")
    assert b.get("/district/4101%0005/").status_code == 400
    response = client.get("/api/v1/units/41%0001", headers=api_token(client, "office-410105"))
    assert response.status_code in (400, 404) and response.get_json()["error"]

