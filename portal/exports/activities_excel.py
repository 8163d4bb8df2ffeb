"""The activity register as an Excel workbook, and a year's register uploaded back.

:func:`export_activities` writes the filtered register (sheet 活动清单) and, as
its second sheet, the import template 活动登记 (the same columns, empty), and
a third sheet listing the category and department names the template accepts. Departments are
named by their agency at the activity's unit (金水区教育局, :mod:`portal.services.agencies`); an
upload accepts the agency names at its unit as well as the catalogue's names and codes.

:func:`read_register_sheet` reads such a sheet (or any with the same column
titles) with the bounds of the task progress import (the package checked
before it is parsed, at most ``MAX_ROWS`` rows); :func:`apply_register_sheet`
checks every row through the same schema as the form and the API and registers
the activities only when the whole sheet is right: all or nothing. It never
commits: the caller commits, or rolls back when the result has errors.
"""
from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Optional

from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from portal import access
from portal.args import InputError
from portal.exports.tasks_excel import (ImportResult, RowError, _autofilter, _date_cell, _header, _normalise_title,
                                        _number, _raw, _text_cell, read_upload_rows)
from portal.clock import local_today
from portal.exports.sheets import title_text
from portal.models import Activity, ActivityCategory, Department, Unit, User
from portal.schemas import load
from portal.schemas.activities import ActivityIn
from portal.services import ServiceError
from portal.services import activities as services
from portal.services.agencies import agency_names_for

LIST_SHEET = "活动清单"
TEMPLATE_SHEET = "活动登记"
CODES_SHEET = "类别和部门"
DATE_FORMAT = "yyyy-mm-dd"

#: (key, title, width) of the template's columns, in order; the list sheet adds 编号, 单位 and 总人次.
COLUMNS = (
    ("start_date", "开始日期", 12), ("end_date", "结束日期", 12), ("title", "活动主题", 36),
    ("category", "活动类别", 14), ("place", "活动地点", 20), ("lead_department", "牵头部门", 12),
    ("co_departments", "配合部门", 20), ("youth", "青少年(人次)", 10), ("elders", "老年人(人次)", 10),
    ("others", "其他(人次)", 10), ("volunteers", "志愿者(人)", 10), ("volunteer_hours", "志愿服务时长(小时)", 12),
    ("funds", "经费(元)", 12), ("donated_goods", "捐赠物资(元)", 12), ("narrative", "活动简述", 40),
)
TITLES = {key: title for key, title, _w in COLUMNS}
HEADER_ALIASES = {key: (title, key) for key, title, _w in COLUMNS}
HEADER_ALIASES["start_date"] += ("活动日期", "日期")
HEADER_ALIASES["title"] += ("活动名称", "主题")
HEADER_ALIASES["category"] += ("类别",)
_TITLES = {_normalise_title(t): key for key, titles in HEADER_ALIASES.items() for t in titles}
FIELD_ORDER = {key: i for i, (key, _t, _w) in enumerate(COLUMNS)}
#: The schema's field names, as the column they come from.
SCHEMA_FIELD = {"participants.youth": "youth", "participants.elders": "elders", "participants.others": "others"}


@dataclass(frozen=True)
class RegisterRow:
    row_number: int
    values: dict = field(default_factory=dict)


# --- export -----------------------------------------------------------------------------------------

def export_activities(activities: Iterable[Activity], *, departments: list[Department],
                      categories: list[ActivityCategory], today: Optional[date] = None, unit: Optional[Unit] = None,
                      scope: Optional[str] = None) -> bytes:
    """The register, the empty template and the names it accepts; every sheet opens with a title row
    naming ``unit``, the list's ``scope`` and ``today`` (the template's header row is found below it)."""
    today = today or local_today()
    unit_name = unit.name if unit is not None else ""
    cat_names = {c.code: c.name_zh for c in categories}
    activities = list(activities)
    agencies = agency_names_for([*(a.unit for a in activities), *([unit] if unit is not None else [])])
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(LIST_SHEET)
    columns = [("编号", 8), ("单位", 16)] + [(t, w) for _k, t, w in COLUMNS] + [("总人次", 10)]
    _header(ws, columns, title_text(unit_name, "活动登记清单", scope, today))
    count = 0
    for a in activities:
        dept_names = agencies[a.unit_id]
        ws.append([
            a.id, _text_cell(ws, a.unit.name), _date_cell(ws, a.start_date, DATE_FORMAT),
            _date_cell(ws, a.end_date, DATE_FORMAT), _text_cell(ws, a.title),
            _text_cell(ws, cat_names.get(a.category_code, a.category_code)), _text_cell(ws, a.place),
            _text_cell(ws, dept_names.get(a.department_code, a.department_code)),
            _text_cell(ws, "、".join(dept_names.get(c, c) for c in a.co_department_codes or [])),
            a.youth, a.elders, a.others, a.volunteers, _number(a.volunteer_hours), _number(a.funds),
            _number(a.donated_goods), _text_cell(ws, a.narrative), a.person_times,
        ])
        count += 1
    _autofilter(ws, columns, count)
    template = wb.create_sheet(TEMPLATE_SHEET)
    _header(template, [(t, w) for _k, t, w in COLUMNS], title_text(unit_name, "活动登记表", None, today))
    codes = wb.create_sheet(CODES_SHEET)
    own = agencies.get(unit.id, {}) if unit is not None else {}
    _header(codes, [("活动类别", 18), ("代码", 12), ("部门", 24), ("代码", 12), ("本单位机构名称", 28)],
            title_text(unit_name, "活动类别和部门", None, today))
    for i in range(max(len(categories), len(departments))):
        c = categories[i] if i < len(categories) else None
        d = departments[i] if i < len(departments) else None
        codes.append([_text_cell(codes, c.name_zh if c else ""), _text_cell(codes, c.code if c else ""),
                      _text_cell(codes, d.name_zh if d else ""), _text_cell(codes, d.code if d else ""),
                      _text_cell(codes, own.get(d.code, "") if d else "")])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


# --- reading -------------------------------------------------------------------------------------------

def _header_columns(row: tuple) -> Optional[dict[str, int]]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(row):
        key = _TITLES.get(_normalise_title(cell.value))
        if key and key not in columns:
            columns[key] = index
    return columns if {"start_date", "title", "category"} <= set(columns) else None


def read_register_sheet(data: bytes) -> list[RegisterRow]:
    """The data rows of the 活动登记 sheet (else the first sheet), below the header row found by its
    titles; empty rows skipped; bounded like the progress import."""
    return read_upload_rows(
        data, TEMPLATE_SHEET, _header_columns, "开始日期、活动主题、活动类别",
        lambda number, row, columns: RegisterRow(number, {key: _raw(row[i].value) if i < len(row) else None
                                                          for key, i in columns.items()}))


# --- applying ---------------------------------------------------------------------------------------------

def _date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        match = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text)
        if match:
            return "%04d-%02d-%02d" % tuple(int(x) for x in match.groups())
        return text
    return value if value is None else str(value)


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number_cell(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return unicodedata.normalize("NFKC", value).strip().replace(",", "")
    return value


def _lookup(value: Any, names: dict[str, str]) -> Any:
    """A category or department by its Chinese or English name or its code."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value).strip()
    return names.get(text, names.get(text.lower(), text))


def _row_input(row: RegisterRow, categories: dict[str, str], departments: dict[str, str]) -> dict:
    v = row.values
    co = v.get("co_departments")
    co_list = [_lookup(part, departments) for part in re.split(r"[、,，;；\s]+", _text(co) or "") if part]
    return {
        "title": _text(v.get("title")), "category": _lookup(_text(v.get("category")), categories),
        "start_date": _date(v.get("start_date")), "end_date": _date(v.get("end_date")),
        "place": _text(v.get("place")), "lead_department": _lookup(_text(v.get("lead_department")), departments),
        "co_departments": co_list,
        "participants": {key: _number_cell(v.get(key)) for key in ("youth", "elders", "others")},
        "volunteers": _number_cell(v.get("volunteers")), "volunteer_hours": _number_cell(v.get("volunteer_hours")),
        "funds": _number_cell(v.get("funds")), "donated_goods": _number_cell(v.get("donated_goods")),
        "narrative": _text(v.get("narrative")),
    }


def _names(unit: Optional[Unit] = None) -> tuple[dict[str, str], dict[str, str]]:
    """Categories and departments by name or code; departments also by their agency name at ``unit``."""
    categories, departments = {}, {}
    for c in ActivityCategory.all():
        categories.update({c.name_zh: c.code, c.name_en.lower(): c.code, c.code: c.code})
    if unit is not None:
        departments.update({unicodedata.normalize("NFKC", name).strip(): code
                            for code, name in agency_names_for([unit])[unit.id].items()})
    for d in Department.all():
        departments.update({d.name_zh: d.code, d.name_en.lower(): d.code, d.code: d.code})
    return categories, departments


def apply_register_sheet(unit: Unit, rows: list[RegisterRow], *, by: User) -> ImportResult:
    """Register every row's activity at ``unit``, or none: every row is checked first through the
    form's schema (dates, counts, end after start, no more volunteers than participants) and the
    uploader's right to register for the row's organising department."""
    categories, departments = _names(unit)
    errors: list[RowError] = []
    loaded: list[tuple[RegisterRow, dict]] = []
    for row in rows:
        try:
            data = load(ActivityIn, _row_input(row, categories, departments))
        except InputError as exc:
            errors += [RowError(row.row_number, SCHEMA_FIELD.get(key, key), message)
                       for key, message in exc.errors.items()]
            continue
        if not access.can_register_activity(by, unit, data["lead_department"]):
            errors.append(RowError(row.row_number, "lead_department",
                                   _("lead_department: as a liaison you register activities of your own "
                                     "department only.")))
            continue
        loaded.append((row, data))
    if errors:
        return ImportResult(0, sorted(errors, key=lambda e: (e.row_number, FIELD_ORDER.get(e.field or "", 99))))
    applied = 0
    for row, data in loaded:
        try:
            services.create_activity(unit, data, by=by, counted=False)
        except ServiceError as exc:  # refused after all: the caller rolls back
            return ImportResult(0, [RowError(row.row_number, exc.field, exc.message)])
        applied += 1
    if applied:
        services.count_registered(unit)  # once for the whole upload, not once a row
    return ImportResult(applied, [])


def column_title(key: Optional[str]) -> str:
    """The Excel column a row error is about, as the sheet names it."""
    return TITLES.get(key or "", key or "")
