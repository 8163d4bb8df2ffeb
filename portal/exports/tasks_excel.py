"""Task lists as Excel workbooks, and progress reported back by Excel (进度报送).

:func:`export_tasks` writes a task list the way an office would copy it by
hand: Chinese column titles, real Excel dates and numbers, progress as a
percentage rounded like the pages, a title row (unit, scope, date) above a
frozen header row with an autofilter, printed on A4 one page wide with the
header row on every page (:mod:`portal.exports.sheets`). Its second sheet, 进度报送, is the import template: the open
tasks with their number, unit and title, and empty cells for percent, actual
value and narrative; a task whose target is counted from activities has its actual-value cell
greyed and the note 「实际值由活动登记自动统计，无需填写」, and an upload that fills it is refused.
Departments are named by their agency at the task's unit (金水区教育局), as the unit's office set
them (:mod:`portal.services.agencies`).

:func:`read_progress_sheet` reads such a sheet back (or any sheet with the same
column titles); :func:`apply_progress_sheet` validates every row first and
reports progress only when the whole sheet is valid: all or nothing. It
flushes through :func:`portal.services.tasks.report_progress` and never
commits: the caller commits, or rolls back when the result has errors.

The workbook is always Chinese, like the official documents: nothing in it
depends on the reader's language. Timestamps (``TaskReport.at``) are naive UTC
and are written as Beijing wall-clock times.
"""
from __future__ import annotations

import io
import unicodedata
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Optional

from flask_babel import force_locale
from flask_babel import gettext as _
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy import func, select

from portal import access
from portal.clock import to_local
from portal.extensions import db
from portal.models import OPEN_STATES, Task, TaskReport, TaskStatus, Unit, User
from portal.args import InputError
from portal.schemas import load
from portal.schemas.tasks import ReportIn
from portal.services import ServiceError
from portal.services import tasks as task_services
from portal.services.agencies import agency_names_for
from portal.formatting import round_half_up
from portal.exports.sheets import PERCENT_FORMAT, percent_value, print_setup, title_row, title_text

#: The sheet of the import template, and the sheet an upload is read from.
TEMPLATE_SHEET = "进度报送"
TASKS_SHEET = "任务清单"
#: The workbook is Chinese whatever the reader's language (status labels included).
WORKBOOK_LOCALE = "zh_Hans_CN"

#: (title, width in characters) of the task list.
TASK_COLUMNS = (
    ("任务编号", 10), ("单位代码", 12), ("单位", 16), ("任务名称", 40), ("牵头单位", 16), ("配合单位", 28),
    ("完成时限", 12), ("状态", 12), ("进度(%)", 9), ("目标", 16), ("目标值", 11), ("实际值", 11),
    ("目标值和实际值的含义", 26), ("是否逾期", 9), ("最近报送时间", 18),
)
#: (title, width) of the import template.
TEMPLATE_COLUMNS = (("任务编号", 10), ("单位", 16), ("任务名称", 40), ("进度(%)", 9), ("实际值", 11),
                    ("进展情况", 60), ("说明", 30))
#: The note of a task whose actual value is counted from the activity register.
COUNTED_NOTE = "实际值由活动登记自动统计，无需填写"
#: A cell the uploader does not fill (the counted actual value).
COUNTED_FILL = PatternFill("solid", fgColor="D9D9D9")

#: Column titles an upload may use, after :func:`_normalise_title`: the Chinese titles and English aliases.
HEADER_ALIASES = {
    "task_id": ("任务编号", "task_id", "taskid"),
    "percent": ("进度(%)", "进度", "进度%", "percent"),
    "actual_value": ("实际值", "actual_value", "actualvalue", "actual"),
    "narrative": ("进展情况", "narrative"),
}
#: How far down an upload's header row is looked for (a title row above it is fine).
HEADER_SEARCH_ROWS = 20
#: Rows read from one upload at most.
MAX_ROWS = 10_000
#: Rows scanned at most, blank ones included: a sheet claiming more is refused unread.
MAX_SCAN_ROWS = MAX_ROWS + 2_000
#: Columns read per row (the template has seven).
MAX_COLUMNS = 40
#: An upload unpacked: its parts in all, its shared-strings part, and how many parts.
MAX_INFLATED_BYTES = 60 * 1024 * 1024
MAX_SHARED_STRINGS_BYTES = 20 * 1024 * 1024
MAX_PARTS = 500
#: Ids loaded per query.
CHUNK = 500
#: The largest id a task can have (a bigger number in a sheet is simply not found).
MAX_ID = 2**31 - 1
FIELD_ORDER = {"task_id": 0, "percent": 1, "actual_value": 2, "narrative": 3}

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
HEADER_ALIGNMENT = Alignment(horizontal="center", vertical="center", wrap_text=True)
#: The header row of every exported sheet: row 1 is the title row (unit, scope, date).
HEADER_ROW = 2


@dataclass(frozen=True)
class ProgressRow:
    """One data row of an uploaded sheet, as read: the row number as Excel shows
    it, and the raw cell values (None for an empty cell). A percent shown as a
    percentage (0.6 formatted as 60%, or the text "60%") is read as 60."""

    row_number: int
    task_id: Any = None
    percent: Any = None
    actual_value: Any = None
    narrative: Any = None


@dataclass(frozen=True)
class RowError:
    """A refusal for one row: ``field`` is task_id, percent, actual_value or
    narrative (None when it is about the row as a whole); ``message`` is translated."""

    row_number: int
    field: Optional[str]
    message: str

    def describe(self) -> str:
        return _("Row %(row)d: %(message)s", row=self.row_number, message=self.message)


@dataclass
class ImportResult:
    """How many reports were made; none at all when there are errors."""

    applied: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- export ---------------------------------------------------------------------------

def _clean(text: Optional[str]) -> str:
    """Text as a cell can carry it: characters XML cannot hold are dropped."""
    return ILLEGAL_CHARACTERS_RE.sub("", text or "")


def _text_cell(ws, value: Optional[str]) -> WriteOnlyCell:
    """Always a text cell: a title starting with "=" stays text, never a formula."""
    cell = WriteOnlyCell(ws, value=_clean(value))
    cell.data_type = "s"
    return cell


def _number(value: Optional[Decimal]) -> Optional[float | int]:
    if value is None:
        return None
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _percent_cell(ws, percent) -> WriteOnlyCell:
    """A percent (53.95) as Excel's percentage 54.0%, rounded half up as the pages show it."""
    cell = WriteOnlyCell(ws, value=percent_value(percent))
    cell.number_format = PERCENT_FORMAT
    return cell


def _date_cell(ws, value: Optional[date | datetime], number_format: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    if value is not None:
        cell.number_format = number_format
    return cell


def _header(ws, columns, heading: str) -> None:
    """Column widths, the title row (row 1), the header row (row 2, frozen, repeated on every printed
    page) and the A4 page set-up of a write-only sheet."""
    for index, (_title, width) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = f"A{HEADER_ROW + 1}"
    print_setup(ws, [width for _title, width in columns], header_row=HEADER_ROW)
    ws.append(title_row(ws, heading))
    cells = []
    for title, _width in columns:
        cell = WriteOnlyCell(ws, value=title)
        cell.font, cell.fill, cell.alignment = HEADER_FONT, HEADER_FILL, HEADER_ALIGNMENT
        cells.append(cell)
    ws.append(cells)


def _autofilter(ws, columns, rows: int) -> None:
    ws.auto_filter.ref = f"A{HEADER_ROW}:{get_column_letter(len(columns))}{rows + HEADER_ROW}"




def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _latest_reports(ids: list[int]) -> dict[int, datetime]:
    latest: dict[int, datetime] = {}
    for chunk in _chunks(ids):
        latest.update(db.session.execute(select(TaskReport.task_id, func.max(TaskReport.at))
                                         .where(TaskReport.task_id.in_(chunk))
                                         .group_by(TaskReport.task_id)).all())
    return latest


def _target(task: Task) -> str:
    if not task.target_name:
        return ""
    return f"{task.target_name}（{task.target_unit}）" if task.target_unit else task.target_name


def _instances(ids: list[int], where: tuple) -> dict[int, int]:
    """How many instances below each of the tasks has (those ``where`` lets through)."""
    counts: dict[int, int] = {}
    for chunk in _chunks(ids):
        counts.update(db.session.execute(select(Task.parent_id, func.count()).where(Task.parent_id.in_(chunk), *where)
                                         .group_by(Task.parent_id)).all())
    return counts


def _quantity(value: Optional[Decimal]) -> str:
    return format(round_half_up(value).normalize(), "f") if value is not None else ""


def _meaning(task: Task, instances: int) -> str:
    """What a passed-down task's target and actual value mean: 「合计（24个单位，每单位目标200人）」
    (the actual value is the units' sum, the target each unit's), and 「由活动登记自动统计」 for a
    target counted from activities; empty for a task reported on itself."""
    counted = "实际值由活动登记自动统计" if task.is_counted else ""
    if not instances:
        return counted
    if task.target_value is None:
        meaning = f"合计（{instances}个单位）"
    else:
        meaning = f"合计（{instances}个单位，每单位目标{_quantity(task.target_value)}{task.target_unit or ''}）"
    return f"{meaning}；{counted}" if counted else meaning


def _counted_cell(ws) -> WriteOnlyCell:
    """The empty, greyed actual-value cell of a counted task in the template."""
    cell = WriteOnlyCell(ws, value=None)
    cell.fill = COUNTED_FILL
    return cell


#: The most rows a task list download has (the list's first rows, in its order).
EXPORT_LIMIT = 20_000
#: A download written by a job says how far it is every this many rows.
PROGRESS_EVERY = 500


def list_workbook(unit: Unit, user: User, filters: dict, *, today: date,
                  progress: Optional[Callable[[int, int], None]] = None) -> bytes:
    """The task list download of ``unit`` as ``user`` reads it with ``filters`` (the list's
    scope, status, department, due_within, overdue, q) on ``today``: the one writer of the
    direct download and of the one a job prepares (:mod:`jobs.file_jobs`), so both are the same."""
    stmt = task_services.task_list(unit, user, today=today, scope=filters["scope"], status=filters["status"],
                                   department=filters["department"], due_within=filters["due_within"],
                                   overdue=filters["overdue"], q=filters["q"])
    tasks = db.session.scalars(stmt.limit(EXPORT_LIMIT)).all()  # the latest report dates: one query per chunk
    # A reader of everything below the unit opens every instance below the listed tasks (all in its
    # subtree): no visibility filter on their count then (at the province, ten times faster).
    visible = () if access.reads_below(user, unit) else (access.visible_tasks_clause(user),)
    return export_tasks(tasks, today=today, unit=unit, scope=filters["scope"], visible=visible, progress=progress)


def list_file_name(unit: Unit, today: date) -> str:
    """任务清单-金水区-2026-11-30.xlsx"""
    return f"任务清单-{unit.name}-{today.isoformat()}.xlsx"


def export_tasks(tasks: Iterable[Task], *, today: date, unit: Optional[Unit] = None, scope: Optional[str] = None,
                 visible: tuple = (), progress: Optional[Callable[[int, int], None]] = None) -> bytes:
    """The tasks as an .xlsx: sheet 任务清单, one row per task in the given order,
    and sheet 进度报送, the import template with the open tasks. Each sheet opens with a title row
    naming ``unit``, the list's ``scope`` and ``today``; ``visible`` narrows the instances counted
    below a passed-down task (as its page counts them). ``progress(done, total)`` is called every
    :data:`PROGRESS_EVERY` rows of the list sheet and once at its end."""
    tasks = list(tasks)
    with force_locale(WORKBOOK_LOCALE):
        labels = {status.value: status.label for status in TaskStatus}
    agencies = agency_names_for(task.unit for task in tasks)  # one query for the units not read yet
    latest = _latest_reports([t.id for t in tasks])
    instances = _instances([t.id for t in tasks], visible)
    unit_name = unit.name if unit is not None else ""

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(TASKS_SHEET)
    _header(ws, TASK_COLUMNS, title_text(unit_name, "任务清单", scope, today))
    for done, task in enumerate(tasks, start=1):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, len(tasks))
        reported = latest.get(task.id)
        departments = agencies[task.unit_id]
        co = "、".join(departments.get(code, code) for code in task.co_department_codes or [])
        ws.append([
            task.id,
            _text_cell(ws, task.unit.code),
            _text_cell(ws, task.unit.name),
            _text_cell(ws, task.title),
            _text_cell(ws, departments.get(task.lead_department_code, task.lead_department_code)),
            _text_cell(ws, co),
            _date_cell(ws, task.due_date, DATE_FORMAT),
            _text_cell(ws, labels.get(task.status, task.status)),
            _percent_cell(ws, task.progress),
            _text_cell(ws, _target(task)),
            _number(task.target_value),
            _number(task.actual_value),
            _text_cell(ws, _meaning(task, instances.get(task.id, 0))),
            _text_cell(ws, "是" if task.is_overdue(today) else "否"),
            _date_cell(ws, to_local(reported).replace(microsecond=0) if reported else None, DATETIME_FORMAT),
        ])
    _autofilter(ws, TASK_COLUMNS, len(tasks))
    if progress is not None:
        progress(len(tasks), len(tasks))

    template = wb.create_sheet(TEMPLATE_SHEET)
    _header(template, TEMPLATE_COLUMNS, title_text(unit_name, "任务进度报送", scope, today))
    count = 0
    for task in tasks:
        if task.status not in OPEN_STATES:
            continue
        counted = task.is_counted
        template.append([task.id, _text_cell(template, task.unit.name), _text_cell(template, task.title),
                         None, _counted_cell(template) if counted else None, None,
                         _text_cell(template, COUNTED_NOTE) if counted else None])
        count += 1
    _autofilter(template, TEMPLATE_COLUMNS, count)

    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# --- reading an upload -------------------------------------------------------------------

def _normalise_title(value: Any) -> str:
    """Full-width brackets and percent signs as ASCII, no spaces, lower case."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    return "".join(text.split()).lower()


_TITLES = {_normalise_title(title): key for key, titles in HEADER_ALIASES.items() for title in titles}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _raw(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _percent(cell) -> Any:
    """60 for a cell showing 60%: a number formatted as a percentage, or the text "60%"."""
    value = _raw(cell.value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) \
            and "%" in (getattr(cell, "number_format", None) or ""):
        return Decimal(str(value)) * 100
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if text.endswith("%"):
            return text[:-1].strip()
    return value


def _header_columns(row: tuple) -> Optional[dict[str, int]]:
    """The column index of each known title, when the row has at least 任务编号 and 进度."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(row):
        key = _TITLES.get(_normalise_title(cell.value))
        if key and key not in columns:
            columns[key] = index
    return columns if "task_id" in columns and "percent" in columns else None


def _not_a_workbook() -> ServiceError:
    return ServiceError(_("The file is not an Excel workbook (.xlsx)."), "file")


def _too_large() -> ServiceError:
    return ServiceError(_("The workbook is too large to check (at most %(n)d rows): split it into several files.",
                          n=MAX_ROWS), "file")


def _check_package(data: bytes) -> None:
    """Refuse, before openpyxl parses anything, a file that unpacks to far more
    than its size: a zip bomb, a huge shared-strings table, thousands of parts."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            parts = package.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise _not_a_workbook()
    if len(parts) > MAX_PARTS or sum(p.file_size for p in parts) > MAX_INFLATED_BYTES:
        raise _too_large()
    if any(p.filename.lower().endswith("sharedstrings.xml") and p.file_size > MAX_SHARED_STRINGS_BYTES
           for p in parts):
        raise _too_large()


def _declared_rows(ws) -> int:
    """The sheet's own claim of its size (its dimension), 0 when it makes none."""
    try:
        return int(ws.max_row or 0)
    except (TypeError, ValueError):
        return 0


@contextmanager
def _upload_sheet(data: bytes, sheet: str):
    """The uploaded workbook's sheet ``sheet`` (else its first), opened read-only once its package
    passed the checks: a file that is not a workbook, is damaged or encrypted, or has no sheet is
    refused with the readers' message. Closed when the block ends."""
    _check_package(data)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except Exception:  # not a zip, not a workbook, a damaged or encrypted file
        raise _not_a_workbook()
    try:
        if not wb.worksheets:
            raise _not_a_workbook()
        ws = wb[sheet] if sheet in wb.sheetnames else wb.worksheets[0]
        if not hasattr(ws, "iter_rows"):  # a chart sheet of that name
            ws = wb.worksheets[0]
        yield ws
    finally:
        wb.close()


def declared_sheet_rows(data: bytes, sheet: str) -> int:
    """The rows the upload's sheet ``sheet`` (else its first) says it has, title and header rows
    included (its dimension; 0 when it makes none), without reading a row: enough to tell a
    large upload at once (10,000 rows: 0.01 s, where reading them takes 5-6 s). Refuses what
    the readers refuse before they parse anything."""
    with _upload_sheet(data, sheet) as ws:
        declared = _declared_rows(ws)
        if declared > MAX_SCAN_ROWS:  # the readers refuse it: at once, not in a job
            raise _too_large()
        return declared


def read_upload_rows(data: bytes, sheet: str, header_columns: Callable[[tuple], Optional[dict[str, int]]],
                     expected: str, make: Callable[[int, tuple, dict[str, int]], Any]) -> list:
    """``make(Excel row number, cells, columns)`` for every data row of the upload's sheet ``sheet``
    (else its first), below the header row that ``header_columns`` finds within the first
    :data:`HEADER_SEARCH_ROWS` rows; empty rows skipped. The work is bounded: at most
    :data:`MAX_SCAN_ROWS` rows are scanned, blank ones included, at most :data:`MAX_ROWS` kept, and
    oversized packages are refused before they are parsed. ``expected`` names the header's
    columns in the message for a sheet without one."""
    with _upload_sheet(data, sheet) as ws:
        if _declared_rows(ws) > MAX_SCAN_ROWS:
            raise _too_large()
        columns: Optional[dict[str, int]] = None
        result: list = []
        try:
            # Read-only rows come in order, gaps filled with empty rows: the count is Excel's row number.
            # One row past the cap is read, to tell a sheet at the cap from one beyond it.
            for number, row in enumerate(ws.iter_rows(max_row=MAX_SCAN_ROWS + 1, max_col=MAX_COLUMNS), start=1):
                if number > MAX_SCAN_ROWS:
                    raise _too_large()
                if columns is None:
                    if number > HEADER_SEARCH_ROWS:
                        break
                    columns = header_columns(row)
                    continue
                if all(_blank(cell.value) for cell in row):
                    continue
                if len(result) >= MAX_ROWS:
                    raise ServiceError(_("The sheet has more than %(n)d rows: split it into several files.",
                                         n=MAX_ROWS), "file")
                result.append(make(number, row, columns))
        except ServiceError:
            raise
        except Exception:  # a damaged sheet inside a valid zip
            raise _not_a_workbook()
        if columns is None:
            raise ServiceError(_("The sheet “%(sheet)s” has no header row with the columns %(columns)s.",
                                 sheet=ws.title, columns=expected), "file")
        return result


def read_progress_sheet(data: bytes) -> list[ProgressRow]:
    """The data rows of an uploaded workbook's 进度报送 sheet (else its first
    sheet), below the header row found by its column titles; empty rows skipped;
    bounded as :func:`read_upload_rows` says."""
    def make(number: int, row: tuple, columns: dict[str, int]) -> ProgressRow:
        def value(key: str) -> Any:
            index = columns.get(key)
            if index is None or index >= len(row):
                return None
            return _percent(row[index]) if key == "percent" else _raw(row[index].value)
        return ProgressRow(row_number=number, task_id=value("task_id"), percent=value("percent"),
                           actual_value=value("actual_value"), narrative=value("narrative"))

    return read_upload_rows(data, TEMPLATE_SHEET, _header_columns, "任务编号 (task_id)、进度(%) (percent)", make)


# --- applying the rows -----------------------------------------------------------------------

def _task_id(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else None
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        if text.isascii() and text.isdigit():
            return int(text)
        try:
            number = Decimal(text)
        except (InvalidOperation, ValueError):
            return None
        return int(number) if number.is_finite() and number == number.to_integral_value() else None
    return None


def _narrative(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _load_tasks(unit: Unit, ids: list[int]) -> dict[int, Task]:
    """The tasks of the unit and the units below it, by id."""
    found: dict[int, Task] = {}
    for chunk in _chunks(sorted(set(i for i in ids if 0 < i <= MAX_ID))):
        found.update((t.id, t) for t in db.session.scalars(
            select(Task).join(Unit, Unit.id == Task.unit_id).where(Task.id.in_(chunk), Unit.subtree_clause(unit))))
    return found


def _passed_down(ids: list[int]) -> set[int]:
    """Those of the tasks that have instances below them."""
    parents: set[int] = set()
    for chunk in _chunks(sorted(set(ids))):
        parents.update(db.session.scalars(select(Task.parent_id).where(Task.parent_id.in_(chunk)).distinct()))
    return parents


def _state_error(task: Task, passed_down: set[int]) -> Optional[str]:
    """The refusals of report_progress, with the same messages, checked before anything is written."""
    if task.status in (TaskStatus.ACCEPTED.value, TaskStatus.CANCELLED.value):
        return _("The task is %(state)s: no more reports.", state=task.status_enum.label)
    if task.status == TaskStatus.SUBMITTED.value:
        return _("The task is waiting for review; reports resume if it is returned.")
    if task.id in passed_down:
        return _("This task is passed down: its progress comes from the units below.")
    return None


def apply_progress_sheet(unit: Unit, rows: list[ProgressRow], *, by: User) -> ImportResult:
    """Report progress for every filled row, or for none: every row is checked
    first (task of ``unit`` or below it, reportable by ``by``, once in the sheet,
    open and not passed down; percent 0–100, actual value ≥ 0). With any error
    nothing is reported; the caller rolls back when ``errors`` is not empty and
    commits otherwise. Rows with no percent, actual value and narrative are skipped."""
    errors: list[RowError] = []
    pending: list[tuple[ProgressRow, Optional[int], dict[str, Any]]] = []
    for row in rows:
        if all(_blank(v) for v in (row.percent, row.actual_value, row.narrative)):
            continue
        task_id = None
        if _blank(row.task_id):
            errors.append(RowError(row.row_number, "task_id", _("The task number is missing.")))
        else:
            task_id = _task_id(row.task_id)
            if task_id is None:
                errors.append(RowError(row.row_number, "task_id",
                                       _("The task number must be a whole number: %(value)s",
                                         value=str(row.task_id)[:30])))
        values: dict[str, Any] = {}
        try:  # the row through the same schema as the report form and the API
            values = load(ReportIn, {"percent": row.percent, "actual_value": row.actual_value,
                                     "narrative": _narrative(row.narrative)})
        except InputError as exc:
            errors += [RowError(row.row_number, key, message) for key, message in exc.errors.items()]
        pending.append((row, task_id, values))

    ids = [task_id for _row, task_id, _values in pending if task_id is not None]
    tasks = _load_tasks(unit, ids)
    passed_down = _passed_down(list(tasks))
    first_row: dict[int, int] = {}
    for row, task_id, _values in pending:
        if task_id is None:
            continue
        if task_id in first_row:
            errors.append(RowError(row.row_number, "task_id",
                                   _("Task %(id)d is already in row %(row)d of this sheet: one row per task.",
                                     id=task_id, row=first_row[task_id])))
            continue
        first_row[task_id] = row.row_number
        task = tasks.get(task_id)
        if task is None or not access.can_see_task(by, task):
            # The same words for "does not exist" and "not yours": a row error names nothing the uploader may not open.
            errors.append(RowError(row.row_number, "task_id",
                                   _("There is no task %(id)d among the tasks you may open here.", id=task_id)))
        elif not access.can_report(by, task):
            errors.append(RowError(row.row_number, "task_id",
                                   _("Task %(id)d belongs to %(unit)s: you may not report its progress. Its office, "
                                     "an office above it, or the liaisons of the task's departments there may.",
                                     id=task_id, unit=task.unit.name)))
        else:
            message = _state_error(task, passed_down)
            if message:
                errors.append(RowError(row.row_number, "task_id", message))
            elif task.is_counted and not _blank(row.actual_value):
                errors.append(RowError(row.row_number, "actual_value", _(
                    "Column 实际值: the actual value of task %(id)d is counted from the activity register "
                    "(由活动登记自动统计); leave the cell empty.", id=task_id)))
    if errors:
        return ImportResult(0, sorted(errors, key=lambda e: (e.row_number, FIELD_ORDER.get(e.field or "", 9))))

    applied = 0
    for row, task_id, values in pending:
        try:
            task_services.report_progress(tasks[task_id], values, by=by)
        except ServiceError as exc:  # refused after all (e.g. changed meanwhile): the caller rolls back
            return ImportResult(0, [RowError(row.row_number, exc.field, exc.message)])
        applied += 1
    return ImportResult(applied, [])
