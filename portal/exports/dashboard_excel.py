"""The tables of a consolidated view as one Excel workbook (汇总视图.xlsx).

One sheet per table of the page: the key figures with the previous period (a task
figure is its value at the end of an ended period), the ranking of the children with
their activity figures, reporting completeness and the months of the year. As
an office would type them: Chinese sheet names and column titles, numbers as
numbers, rates as percentages (the value 0.625 shown as 62.5%), a title row
naming the unit, the period and when the figures were computed, a frozen header
row with filters, and columns as wide as their content. Like the other
official files it is Chinese whatever the reader's language.
"""
from __future__ import annotations

import io
import unicodedata
from typing import Optional

from flask_babel import force_locale
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from portal import consolidated as cv
from portal.clock import to_local
from portal.exports.sheets import percent_value, print_setup
from portal.metrics import REGISTRY

WORKBOOK_LOCALE = "zh_Hans_CN"
SHEETS = {"figures": "主要指标", "ranking": "下级排名", "departments": "部门情况", "reporting": "报送情况",
          "monthly": "逐月趋势"}
PERCENT = "0.0%"
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TIER_NAMES = {"province": "省", "city": "市", "district": "县（区）", "street": "街道（乡镇）"}


def _rate(value: Optional[float]) -> Optional[float]:
    """A percent (62.5) as the fraction Excel formats as a percentage (0.625), rounded half up to one
    decimal of a percent as the page shows it (53.95 → 54.0%)."""
    return percent_value(value)


def _cell_value(key: str, value):
    return _rate(value) if cv.is_indicator(key) else value


def _width(value) -> int:
    text = "" if value is None else (f"{value:.1%}" if isinstance(value, float) and value < 10 else str(value))
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _sheet(wb: Workbook, name: str, title: str, header: list[str], rows: list[list], formats: list[Optional[str]]):
    ws = wb.create_sheet(name)
    ws.append([title])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(header)
    for cell in ws[2]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=False)
    for row in rows:
        ws.append(row)
    for column, number_format in enumerate(formats, start=1):
        if number_format:
            for (cell,) in ws.iter_rows(min_row=3, min_col=column, max_col=column):
                cell.number_format = number_format
    widths = []
    for column in range(1, len(header) + 1):
        widest = max([_width(header[column - 1])] + [_width(r[column - 1]) for r in rows])
        widths.append(min(max(widest + 2, 8), 60))
        ws.column_dimensions[get_column_letter(column)].width = widths[-1]
    print_setup(ws, widths, header_row=2)
    ws.freeze_panes = "A3"
    ws.auto_filter.ref = f"A2:{get_column_letter(len(header))}{max(len(rows) + 2, 2)}"
    return ws


def _computed(figures) -> str:
    at = figures.computed_at
    return to_local(at).strftime("%Y-%m-%d %H:%M") if at else "—"


def workbook(unit, period: str, figures, previous, ranking: list, reporting: Optional[list], monthly: list, *,
             department=None, departments: Optional[list] = None) -> bytes:
    """The view's tables; for a department view (``department``: its catalogue row) that department's."""
    with force_locale(WORKBOOK_LOCALE):
        return _workbook(unit, period, figures, previous, ranking, reporting, monthly, department, departments)


def _workbook(unit, period, figures, previous, ranking, reporting, monthly, department, departments) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    label = cv.period_label(period)
    stale = "（数据更新中）" if figures.stale else ""
    of = f"（{department.name_zh}牵头或配合的任务）" if department else ""

    def title(table: str) -> str:
        return f"{unit.name}{table}{of} · {label} · 计算时间 {_computed(figures)}{stale}"

    if department:
        keys = [k for k, _i, _l in cv.DEPARTMENT_KEY_FIGURES] + ["tasks.accepted"]
    else:
        keys = [k for k, _i, _l in cv.KEY_FIGURES] + [k for k in REGISTRY if not k.startswith("departments.") and k
                                                       not in {k for k, _i, _l in cv.KEY_FIGURES}]
    rows = []
    for key in keys:
        now, before = figures.value(key), previous.value(key)
        trend = cv.has_trend(key, department.code if department else None)
        change = None if now is None or before is None or not trend else round(now - before, 4)
        rows.append([cv.label(key), _cell_value(key, now),
                     _cell_value(key, before) if trend else None,
                     _cell_value(key, change) if change is not None else None,
                     "按期间合计" if cv.is_flow(key) else
                     ("期末值" if cv.at_period_end(key, period, department.code if department else None)
                      else "截至目前")])
    ws = _sheet(wb, SHEETS["figures"], title("主要指标"), ["指标", "本期", f"上期（{cv.period_label(cv.previous_period(period))}）",
                                                          "变化", "口径"], rows, [None, None, None, None, None])
    for index, key in enumerate(keys, start=3):  # rates as percentages, row by row
        fmt = PERCENT if cv.is_indicator(key) else ("0" if REGISTRY[key].integer else "0.00")
        for column in (2, 3, 4):
            ws.cell(row=index, column=column).number_format = fmt

    if ranking:
        columns = [k for k, _i in (cv.DEPARTMENT_COLUMNS if department else cv.RANKING_COLUMNS + cv.ACTIVITY_COLUMNS)]
        header = ["序号", "单位代码", "单位"] + [cv.label(k) for k in columns] + ["数据更新中"]
        rows = [[n, f.unit.code, f.unit.name] + [_cell_value(k, f.value(k)) for k in columns]
                + ["是" if f.stale else "否"]
                for n, f in enumerate(ranking, start=1)]
        formats = ["0", "@", None] + [PERCENT if cv.is_indicator(k) else ("0" if REGISTRY[k].integer else "0.00")
                                      for k in columns] + [None]
        _sheet(wb, SHEETS["ranking"], title("下级排名"), header, rows, formats)

    if departments:
        rows = [[d["name"], d["total"], d["overdue"], _rate(d["overdue_share"]), _rate(d["completion_rate"])]
                for d in departments]
        _sheet(wb, SHEETS["departments"], title("各部门任务情况"),
               ["部门", cv.label("tasks.total"), cv.label("tasks.overdue"), cv.label("overdue_share"),
                cv.label("completion_rate")], rows, [None, "0", "0", PERCENT, PERCENT])

    if reporting is not None:
        rows = [[r.unit.code, r.unit.name, TIER_NAMES.get(r.unit.tier, r.unit.tier), r.expected, r.received, r.owed,
                 "是" if r.reported else "否"] for r in reporting]
        _sheet(wb, SHEETS["reporting"], title("报送情况"),
               ["单位代码", "单位", "层级", "应报", "已报", "欠报", "是否已报送"], rows,
               ["@", None, None, "0", "0", "0", None])

    if not monthly:
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()
    # Task figures are each month's value at its end (the current month's as of now); the rest are sums.
    rows = [[m["period"], m["metrics"]["reports.expected"], m["metrics"]["reports.received"],
             _rate(m["reporting_rate"]), m["metrics"]["meetings.held"], _rate(m["indicators"]["completion_rate"]),
             _rate(m["indicators"]["progress"]), m["metrics"]["tasks.overdue"], m["metrics"]["activities.count"],
             m["metrics"]["activities.person_times"]] for m in monthly]
    _sheet(wb, SHEETS["monthly"], f"{unit.name}逐月趋势 · {period[:4]}年 · 计算时间 {_computed(figures)}{stale}"
           " · 任务指标为各月月末值（本月为截至目前）",
           ["月份", cv.label("reports.expected"), cv.label("reports.received"), cv.label("reporting_rate"),
            cv.label("meetings.held"), cv.label("completion_rate"), cv.label("progress"), cv.label("tasks.overdue"),
            cv.label("activities.count"), cv.label("activities.person_times")], rows,
           ["@", "0", "0", PERCENT, "0", PERCENT, PERCENT, "0", "0", "0"])

    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
