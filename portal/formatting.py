"""One place for formatting dates, numbers and percentages in the reader's language."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from flask_babel import format_date as babel_format_date
from flask_babel import format_datetime as babel_format_datetime
from flask_babel import get_locale


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def format_date(value: date | datetime | None) -> str:
    """2026年11月29日 in Chinese, Nov 29, 2026 in English."""
    if value is None:
        return ""
    locale = get_locale()
    if isinstance(value, datetime):
        value = _aware(value)
    if locale is not None and locale.language == "zh":
        return babel_format_date(value, "yyyy年M月d日")
    return babel_format_date(value, "medium")


def format_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    locale = get_locale()
    value = _aware(value)
    if locale is not None and locale.language == "zh":
        return babel_format_datetime(value, "yyyy年M月d日 HH:mm")
    return babel_format_datetime(value, "medium")


def round_half_up(value, places: str = "0.01") -> Decimal:
    """``value`` rounded to ``places`` (``"0.1"``, ``"0.01"`` …), halves away from zero: the one
    rounding rule of the portal (roll-ups, figures, pages, Excel, the API), as SQL's ``round()``
    and Excel round. (``Decimal.quantize`` and ``format`` alone round halves to even.)"""
    if not isinstance(value, Decimal):
        value = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def format_percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{round_half_up(value, '0.1')}%"


def format_local_datetime(value: datetime | None) -> str:
    """A wall-clock time already in local (Beijing) time, such as a meeting's start."""
    if value is None:
        return ""
    locale = get_locale()
    if locale is not None and locale.language == "zh":
        return babel_format_datetime(value, "yyyy年M月d日 HH:mm", rebase=False)
    return babel_format_datetime(value, "medium", rebase=False)


def percent_of(numerator, denominator, *, scale: int = 100) -> float | None:
    """numerator / denominator × scale as a percent with one decimal, rounded half up (as SQL and
    Excel round); ``None`` when the denominator is 0. The one rounding rule of every indicator."""
    if not denominator:
        return None
    value = Decimal(str(numerator or 0)) * scale / Decimal(str(denominator))
    return float(round_half_up(value, "0.1"))
