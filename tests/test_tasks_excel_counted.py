"""The progress upload template marks a task whose target is counted from activities (issue 11):
its actual-value cell is greyed with the note 「实际值由活动登记自动统计，无需填写」, and an upload
that fills it is refused with the row and the column named, nothing of the sheet applied."""
from __future__ import annotations

import io
from datetime import date, datetime
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Task, TaskReport, Unit, User
from portal.services import tasks as svc

TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
STREET = "/street/410105001"


def _tasks(run_in_app, tree, people):
    def make():
        unit = db.session.get(Unit, tree["410105001"].id)
        office = db.session.get(User, people["office-410105001"].id)
        counted = svc.create_task(unit, {
            "title": "法治教育活动", "lead_department": "justice", "due_date": date(TODAY.year, 12, 31).isoformat(),
            "target": {"name": "法治教育活动", "unit": "次", "value": 12,
                       "counted_from": {"category": "legal", "measure": "count"}}}, by=office)
        typed = svc.create_task(unit, {
            "title": "社区教育培训", "lead_department": "edu", "due_date": date(TODAY.year, 12, 31).isoformat(),
            "target": {"name": "培训人次", "unit": "人次", "value": 500}}, by=office)
        db.session.flush()
        return counted.id, typed.id
    return run_in_app(make)


def _reports(run_in_app) -> int:
    return run_in_app(lambda: db.session.scalar(select(func.count(TaskReport.id))))


def _upload(b, wb):
    buffer = io.BytesIO()
    wb.save(buffer)
    token = b.csrf(f"{STREET}/tasks/import")
    return b.client.post(f"{STREET}/tasks/import", data={"csrf_token": token,
                                                         "file": (io.BytesIO(buffer.getvalue()), "进度.xlsx")},
                         content_type="multipart/form-data")


def test_the_template_marks_a_counted_task_and_an_upload_filling_it_is_refused(new_browser, tree, people,
                                                                               run_in_app):
    counted, typed = _tasks(run_in_app, tree, people)
    b = new_browser()
    b.login("office-410105001")
    wb = load_workbook(io.BytesIO(b.get(f"{STREET}/tasks/export.xlsx").data))
    # The task list says what the counted actual value is.
    listed = {row[0].value: row for row in wb["任务清单"].iter_rows(min_row=3)}
    assert listed[counted][12].value == "实际值由活动登记自动统计"
    assert listed[typed][12].value is None
    # The template: the counted task's actual-value cell greyed, with the note; the other untouched.
    template = wb["进度报送"]
    assert [c.value for c in template[2]][4:] == ["实际值", "进展情况", "说明"]
    rows = {row[0].value: row for row in template.iter_rows(min_row=3)}
    assert rows[counted][4].fill.fgColor.rgb.endswith("D9D9D9") and rows[counted][4].value is None
    assert rows[counted][6].value == "实际值由活动登记自动统计，无需填写"
    assert rows[typed][4].fill.fill_type is None and rows[typed][6].value is None

    # An upload that fills the counted task's actual value: refused, row and column named, nothing applied.
    rows[typed][3].value, rows[typed][4].value = 40, 200
    rows[counted][3].value, rows[counted][4].value = 50, 6
    counted_row = rows[counted][0].row
    response = _upload(b, wb)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    errors = page.split('id="import-errors"', 1)[1].split("</table>", 1)[0]
    assert f"<td>{counted_row}</td>" in errors and "actual_value" in errors
    assert f"任务{counted}的实际值由活动登记自动统计" in errors
    assert errors.count("<tr>") == 2  # the header and the one error: the typed task's row is fine
    assert _reports(run_in_app) == 0  # all or nothing: the typed task's row is not applied either

    # Left empty, the same sheet goes through: both reported, the counted value kept.
    rows[counted][4].value = None
    assert _upload(b, wb).status_code == 302
    assert _reports(run_in_app) == 2
    values = run_in_app(lambda: dict(db.session.execute(select(Task.id, Task.actual_value)
                                                        .where(Task.id.in_([counted, typed]))).all()))
    assert values[typed] == 200 and values[counted] == 0
