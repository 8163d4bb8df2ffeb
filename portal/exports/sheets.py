"""What every Excel export shares: an A4 page set-up, the header row repeated on
every printed page, a title row naming the unit, the scope and the date, and
percentages as numbers formatted as percentages, rounded like the pages.

Works on normal and on write-only worksheets: openpyxl 3.1's
``WriteOnlyWorksheet`` carries ``page_setup``, ``sheet_properties``,
``print_options`` and ``print_title_rows`` like a normal one (set them before
the sheet is saved; the tests read them back from the file).
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Iterable, Optional

from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet.properties import PageSetupProperties

from portal.formatting import round_half_up

#: Excel's paper size code for A4.
PAPER_A4 = 9
#: Total column width (in Excel's character units) that still fits an A4 page upright; wider is landscape.
PORTRAIT_WIDTH = 95
#: A percentage as the page shows it: one decimal.
PERCENT_FORMAT = "0.0%"
TITLE_FONT = Font(bold=True, size=13)
#: Scopes of a list, as the title row names them.
SCOPE_NAMES = {"unit": "本单位", "own": "本单位", "subtree": "本单位及下级单位", "mine": "我负责的"}


def title_text(unit_name: str, what: str, scope: Optional[str], on: date) -> str:
    """「金水区任务清单（本单位及下级单位） · 2026年11月30日」: the unit, the table, the scope, the date."""
    scope_name = SCOPE_NAMES.get(scope or "", scope or "")
    return f"{unit_name}{what}{f'（{scope_name}）' if scope_name else ''} · {on.year}年{on.month}月{on.day}日"


def title_row(ws, text: str) -> list:
    """The title row of a write-only sheet (append it before the header row)."""
    cell = WriteOnlyCell(ws, value=text)
    cell.font = TITLE_FONT
    return [cell]


def print_setup(ws, widths: Iterable[float], *, header_row: int = 2) -> None:
    """A4, upright unless the columns are wider than a portrait page, fit to one page wide (as many
    pages long as needed), and the header row printed at the top of every page."""
    ws.page_setup.paperSize = PAPER_A4
    ws.page_setup.orientation = "landscape" if sum(widths) > PORTRAIT_WIDTH else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    if ws.sheet_properties.pageSetUpPr is None:
        ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    else:
        ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.print_title_rows = f"{header_row}:{header_row}"


def percent_value(percent) -> Optional[float]:
    """A percent (53.95) as the fraction Excel shows with :data:`PERCENT_FORMAT` (0.54 → 54.0%),
    rounded half up to one decimal of a percent as the pages round (:func:`round_half_up`)."""
    if percent is None:
        return None
    return float(round_half_up(percent, "0.1") / Decimal(100))
