"""Task lists as Excel, and progress reported back by Excel (进度报送).

Tasks are created, cascaded and reported on through the services; the exported
bytes are read back with openpyxl; uploads are workbooks built here with openpyxl.
"""
from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from flask_babel import force_locale
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from portal.exports.tasks_excel import (ImportResult, ProgressRow, RowError, apply_progress_sheet, export_tasks,
                                        read_progress_sheet)
from portal.extensions import db
from portal.models import Task, TaskReport, TaskStatus, Unit, User
from portal.services import ServiceError
from portal.services import tasks as svc

TODAY = date.today()
DUE = TODAY + timedelta(days=60)
PAST = TODAY - timedelta(days=3)
HEADER = ["任务编号", "单位代码", "单位", "任务名称", "牵头单位", "配合单位", "完成时限", "状态", "进度(%)", "目标",
          "目标值", "实际值", "目标值和实际值的含义", "是否逾期", "最近报送时间"]
TEMPLATE_HEADER = ["任务编号", "单位", "任务名称", "进度(%)", "实际值", "进展情况", "说明"]


def _user(people, name):
    return db.session.get(User, people[name].id)


def _unit(tree, code):
    return db.session.get(Unit, tree[code].id)


def _task(tree, people, code, title="社区教育培训", due=DUE, **overrides):
    data = {"title": title, "description": "全年培训", "lead_department": "edu", "co_departments": ["civil"],
            "due_date": due.isoformat(), "target": {"name": "培训人次", "unit": "人次", "value": 500}}
    data.update(overrides)
    return svc.create_task(_unit(tree, code), data, by=_user(people, f"office-{code}"))


def _reports() -> int:
    return db.session.scalar(select(func.count(TaskReport.id)))


def _upload(rows, *, header=TEMPLATE_HEADER, sheet="进度报送", extra_first_sheet=True) -> bytes:
    """A workbook as an office would send it back: a note sheet first, then the template."""
    wb = Workbook()
    if extra_first_sheet:
        wb.active.title = "说明"
        wb.active.append(["请在“进度报送”表中填写", "进度(%)"])
        ws = wb.create_sheet(sheet)
    else:
        ws = wb.active
        ws.title = sheet
    ws.append(header)
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def import_as(app):
    """Read and apply an upload like the upload view: roll back on errors, commit otherwise."""
    def run(data: bytes, unit: Unit, username_id: int) -> ImportResult:
        with app.app_context(), force_locale("en"):
            try:
                result = apply_progress_sheet(db.session.get(Unit, unit.id), read_progress_sheet(data),
                                              by=db.session.get(User, username_id))
                if result.errors:
                    db.session.rollback()
                else:
                    db.session.commit()
                return result
            finally:
                db.session.remove()
    return run


# --- export ---------------------------------------------------------------------------

def test_export_a_task_list(app, tree, people, run_in_app, run_jobs):
    district = run_in_app(lambda: _task(tree, people, "410105").id)
    late = run_in_app(lambda: _task(tree, people, "410105", title="=逾期的任务", due=PAST, target=None).id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, district), "children", by=_user(people, "office-410105")))
    run_jobs()
    streets = run_in_app(lambda: dict(db.session.execute(select(Task.unit_id, Task.id)
                                                         .where(Task.parent_id == district)).all()))
    reported = streets[tree["410105001"].id]
    run_in_app(lambda: svc.report_progress(db.session.get(Task, reported),
                                           {"percent": 60, "actual_value": 120, "narrative": "已培训120人次"},
                                           by=_user(people, "edu-410105001")))
    run_jobs()

    def export():
        tasks = db.session.scalars(select(Task).join(Unit, Unit.id == Task.unit_id)
                                   .where(Unit.subtree_clause(_unit(tree, "410105"))).order_by(Task.id)).all()
        with force_locale("zh_Hans_CN"):
            in_progress = TaskStatus.IN_PROGRESS.label
        return (export_tasks(tasks, today=TODAY, unit=_unit(tree, "410105"), scope="subtree"),
                [t.id for t in tasks], in_progress)

    data, ids, in_progress = run_in_app(export)
    assert ids == [district, late, *sorted(streets.values())]
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["任务清单", "进度报送"]
    ws = wb["任务清单"]
    day = f"{TODAY.year}年{TODAY.month}月{TODAY.day}日"
    assert ws["A1"].value == f"金水区任务清单（本单位及下级单位） · {day}" and ws["A1"].font.b
    assert [c.value for c in ws[2]] == HEADER
    assert ws.max_row == 2 + 4
    assert ws.freeze_panes == "A3"
    assert ws.auto_filter.ref == "A2:O6"
    assert ws.column_dimensions["D"].width >= 30
    _assert_prints_on_a4(ws, "landscape")
    rows = {row[0].value: row for row in ws.iter_rows(min_row=3)}
    assert set(rows) == set(ids)

    parent = rows[district]
    assert parent[1].value == "410105" and parent[2].value == "金水区"
    assert parent[3].value == "社区教育培训"
    assert (parent[4].value, parent[5].value) == ("金水区教育局", "金水区民政局")  # the agencies at the unit
    assert parent[6].is_date and parent[6].value.date() == DUE
    assert parent[7].value == in_progress  # cascaded: in progress, in the Chinese label
    assert parent[9].value == "培训人次（人次）" and parent[10].value == 500
    assert parent[13].value == "否"
    # passed down to the streets: the actual value is their sum, the target each street's
    assert parent[12].value == f"合计（{len(streets)}个单位，每单位目标500人次）"

    street = rows[reported]
    assert street[8].value == 0.6 and street[8].data_type == "n" and street[8].number_format == "0.0%"
    assert street[11].value == 120 and street[12].value is None  # reported on itself: nothing to explain
    assert street[14].is_date and isinstance(street[14].value, datetime)
    assert rows[streets[tree["410105002"].id]][14].value is None

    overdue = rows[late]
    assert overdue[13].value == "是"
    assert overdue[3].value == "=逾期的任务" and overdue[3].data_type == "s"  # text, never a formula
    assert overdue[9].value is None and overdue[10].value is None

    template = wb["进度报送"]
    assert template["A1"].value == f"金水区任务进度报送（本单位及下级单位） · {day}"
    assert [c.value for c in template[2]] == TEMPLATE_HEADER  # the columns of the template keep their order
    assert template.freeze_panes == "A3"
    _assert_prints_on_a4(template, "landscape")
    prefilled = list(template.iter_rows(min_row=3, values_only=True))
    assert sorted(r[0] for r in prefilled) == sorted(ids)  # all four are open
    street_row = next(r for r in prefilled if r[0] == reported)
    assert street_row[1:3] == ("经八路街道", "社区教育培训")
    assert all(r[3] is None and r[4] is None and r[5] is None and r[6] is None for r in prefilled)

    # The untouched template reads back as rows with nothing to report.
    run_in_app(lambda: _assert_template_reads_back(data, tree, people, len(ids)))


def _assert_prints_on_a4(ws, orientation):
    """Read back from the saved file: A4, one page wide, as long as needed, the header row on every page."""
    assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation == orientation
    assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True
    assert ws.print_title_rows == "$2:$2"


def test_percent_ties_round_up_on_the_page_and_in_the_sheet(app, tree, people, run_in_app):
    """53.95 is 54.0% on the task page and 54.0% (0.54) in the sheet: one rule, half up."""
    from portal.formatting import format_percent

    task_id = run_in_app(lambda: _task(tree, people, "410105001").id)

    def export():
        task = db.session.get(Task, task_id)
        task.progress = Decimal("53.95")
        db.session.flush()
        return export_tasks([task], today=TODAY), format_percent(task.progress)

    data, shown = run_in_app(export)
    cell = load_workbook(io.BytesIO(data))["任务清单"]["I3"]
    assert shown == "54.0%"
    assert cell.value == 0.54 and cell.number_format == "0.0%"
    assert f"{cell.value:.1%}" == shown


def _assert_template_reads_back(data, tree, people, count):
    rows = read_progress_sheet(data)
    assert len(rows) == count and [r.row_number for r in rows] == list(range(3, count + 3))  # below the title
    result = apply_progress_sheet(_unit(tree, "410105"), rows, by=_user(people, "office-410105"))
    assert (result.applied, result.errors) == (0, [])


def test_closed_tasks_are_listed_but_not_in_the_template(app, tree, people, run_in_app):
    task_id = run_in_app(lambda: _task(tree, people, "410105001").id)
    run_in_app(lambda: svc.cancel_task(db.session.get(Task, task_id), "重复下达", by=_user(people, "office-410105001")))
    data = run_in_app(lambda: export_tasks([db.session.get(Task, task_id)], today=TODAY))
    wb = load_workbook(io.BytesIO(data))
    assert wb["任务清单"].max_row == 3 and wb["任务清单"]["N3"].value == "否"  # cancelled: never overdue
    assert wb["进度报送"].max_row == 2


# --- import -------------------------------------------------------------------------------

def test_import_is_all_or_nothing(app, tree, people, run_in_app, import_as):
    first = run_in_app(lambda: _task(tree, people, "410105001", title="老年学习点建设").id)
    second = run_in_app(lambda: _task(tree, people, "410105001", title="全民终身学习活动周").id)
    office = people["office-410105001"]
    before = run_in_app(_reports)

    bad = _upload([[first, "经八路街道", "老年学习点建设", 50, 10, "已建成2个"],
                   [second, "经八路街道", "全民终身学习活动周", 150, None, "筹备中"]])
    result = import_as(bad, tree["410105001"], office.id)
    assert result.applied == 0 and not result.ok
    assert [(e.row_number, e.field) for e in result.errors] == [(3, "percent")]
    assert "between 0 and 100" in result.errors[0].message
    assert result.errors[0].describe().startswith("Row 3: ")
    assert run_in_app(_reports) == before
    assert run_in_app(lambda: db.session.get(Task, first).progress) == Decimal("0")

    good = _upload([[first, "经八路街道", "老年学习点建设", 50, 10, "已建成2个"],
                    [],  # an empty row in between is skipped
                    [second, "经八路街道", "全民终身学习活动周", "80", None, "筹备中"]])
    result = import_as(good, tree["410105001"], office.id)
    assert (result.applied, result.errors) == (2, [])
    assert run_in_app(_reports) == before + 2
    tasks = run_in_app(lambda: [(t.progress, t.actual_value, t.status) for t in
                                (db.session.get(Task, first), db.session.get(Task, second))])
    assert tasks == [(Decimal("50.00"), Decimal("10.00"), "in_progress"), (Decimal("80.00"), None, "in_progress")]
    narrative = run_in_app(lambda: db.session.scalar(select(TaskReport.narrative).where(TaskReport.task_id == first)))
    assert narrative == "已建成2个"


def test_rows_the_office_may_not_report(app, tree, people, run_in_app, run_jobs, import_as):
    own = run_in_app(lambda: _task(tree, people, "410105001").id)
    sibling = run_in_app(lambda: _task(tree, people, "410105002").id)
    office = people["office-410105001"]
    before = run_in_app(_reports)

    # A sibling street's task is not found from here, whether it exists or not.
    result = import_as(_upload([[own, "", "", 40, None, ""], [sibling, "", "", 40, None, ""],
                                [own, "", "", 45, None, "again"], ["abc", "", "", 10, None, ""],
                                [None, "", "", 10, None, ""], [own, "", "", None, -3, ""]]),
                       tree["410105001"], office.id)
    assert result.applied == 0
    errors = {(e.row_number, e.field): e.message for e in result.errors}
    assert set(errors) == {(3, "task_id"), (4, "task_id"), (5, "task_id"), (6, "task_id"), (7, "task_id"),
                           (7, "percent"), (7, "actual_value")}
    assert errors[(3, "task_id")] == f"There is no task {sibling} among the tasks you may open here."
    assert "row 2" in errors[(4, "task_id")]
    assert "whole number" in errors[(5, "task_id")]
    assert "missing" in errors[(6, "task_id")]
    assert "at least 0" in errors[(7, "actual_value")]
    assert run_in_app(_reports) == before

    # A liaison of a department that is neither lead nor co-operating may not report the task.
    edu_only = run_in_app(lambda: _task(tree, people, "410105001", title="仅教育", co_departments=[]).id)
    result = import_as(_upload([[edu_only, "", "", 40, None, ""]]), tree["410105001"], people["civil-410105001"].id)
    assert [(e.row_number, e.field) for e in result.errors] == [(2, "task_id")]
    assert "may not report" in result.errors[0].message and "经八路街道" in result.errors[0].message
    assert run_in_app(_reports) == before
    # The district office enters the figures of its street (on its behalf; the report records who).
    result = import_as(_upload([[own, "", "", 40, None, "区办代报"]]), tree["410105"], people["office-410105"].id)
    assert result.applied == 1 and not result.errors
    before += 1

    # A passed-down task reports through the units below it.
    parent = run_in_app(lambda: _task(tree, people, "410105").id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, parent), "children", by=_user(people, "office-410105")))
    run_jobs()
    result = import_as(_upload([[parent, "", "", 40, None, ""]]), tree["410105"], people["office-410105"].id)
    assert [(e.row_number, e.field) for e in result.errors] == [(2, "task_id")]
    assert "passed down" in result.errors[0].message
    assert run_in_app(_reports) == before


def test_reading_an_upload(app):
    # English titles on the first sheet, below a title row; percentages as Excel shows them.
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["2026年社区教育任务进度"])
    ws.append(["Task_ID", "Percent", "actual_value", "narrative", "remarks"])
    ws.append([7, 0.6, 12.5, "  done  ", None])
    ws["B3"].number_format = "0%"
    ws.append([None, None, None, None, None])
    ws.append(["8", "75%", None, None, "x"])
    ws.append([None, None, None, None, "only a remark"])
    buffer = io.BytesIO()
    wb.save(buffer)
    with app.app_context():
        rows = read_progress_sheet(buffer.getvalue())
    assert rows[0] == ProgressRow(3, 7, Decimal("60.0"), 12.5, "done")
    assert rows[1] == ProgressRow(5, "8", "75", None, None)
    assert rows[2] == ProgressRow(6, None, None, None, None)  # not empty: skipped when applied, not here


@pytest.mark.parametrize("data", [b"not a workbook", b"PK\x03\x04broken zip", b""])
def test_an_upload_that_is_not_xlsx(app, data):
    with app.app_context(), force_locale("en"), pytest.raises(ServiceError) as info:
        read_progress_sheet(data)
    assert "not an Excel workbook" in info.value.message


def test_an_upload_without_the_columns(app):
    data = _upload([[1, "经八路街道", "任务"]], header=["任务编号", "单位", "任务名称"], extra_first_sheet=False)
    with app.app_context(), force_locale("en"), pytest.raises(ServiceError) as info:
        read_progress_sheet(data)
    assert "进度报送" in info.value.message and "任务编号" in info.value.message
    assert info.value.field == "file"


def test_row_error_is_a_plain_value():
    assert RowError(3, "percent", "x") == RowError(3, "percent", "x")
    assert ImportResult().ok
