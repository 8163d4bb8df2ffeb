"""Checking the values users send, in one place for every service: each
refusal is a translated ServiceError that names the field."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from flask_babel import gettext as _

from portal.extensions import db
from portal.models import Department
from portal.services import ServiceError

MAX_TITLE = 200


def title(value: Any, field: str = "title", limit: int = MAX_TITLE) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ServiceError(_("A title is required."), field)
    if len(value.strip()) > limit:
        raise ServiceError(_("The title is longer than %(n)d characters.", n=limit), field)
    return value.strip()


def text(value: Any, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ServiceError(_("%(field)s must be text.", field=field), field)
    if len(value) > limit:
        raise ServiceError(_("%(field)s is longer than %(n)d characters.", field=field, n=limit), field)
    return value.strip()


def department(code: Any, field: str) -> str:
    if not isinstance(code, str) or db.session.get(Department, code) is None:
        raise ServiceError(_("%(field)s: unknown department %(code)s.", field=field, code=code), field)
    return code


def departments(codes: Any, field: str) -> list[str]:
    """A list (or a comma-separated text) of known department codes, without repeats."""
    if codes is None:
        return []
    if isinstance(codes, str):
        codes = [c for c in codes.replace("，", ",").split(",") if c.strip()]
    if not isinstance(codes, (list, tuple)):
        raise ServiceError(_("%(field)s must be a list of department codes.", field=field), field)
    return list(dict.fromkeys(department(c.strip() if isinstance(c, str) else c, field) for c in codes))


def parse_date(value: Any, field: str, *, required: bool = False) -> Optional[date]:
    if value in (None, ""):
        if required:
            raise ServiceError(_("%(field)s is required, as YYYY-MM-DD.", field=field), field)
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ServiceError(_("%(field)s is not a date of the form YYYY-MM-DD: %(value)s", field=field,
                             value=str(value)[:30]), field)


def parse_datetime(value: Any, field: str, *, required: bool = True) -> Optional[datetime]:
    """A wall-clock time to the minute; "2026-12-10 9:00" and the browser's "2026-12-10T09:00" alike."""
    if value in (None, ""):
        if required:
            raise ServiceError(_("%(field)s is required (YYYY-MM-DD HH:MM).", field=field), field)
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None, second=0, microsecond=0)
    raw = str(value).strip()
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(raw, pattern)
        except ValueError:
            continue
    try:  # ISO 8601 with an offset: taken as the wall-clock time it names
        return datetime.fromisoformat(raw).replace(tzinfo=None, second=0, microsecond=0)
    except ValueError:
        raise ServiceError(_("%(field)s is not a date and time of the form YYYY-MM-DD HH:MM.", field=field), field)


def parse_number(value: Any, field: str, *, required: bool = False, minimum: Optional[Decimal] = None,
                 maximum: Optional[Decimal] = None) -> Optional[Decimal]:
    if value in (None, ""):
        if required:
            raise ServiceError(_("%(field)s is required.", field=field), field)
        return None
    if isinstance(value, bool):
        raise ServiceError(_("%(field)s must be a number.", field=field), field)
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ServiceError(_("%(field)s must be a number: %(value)s", field=field, value=str(value)[:30]), field)
    if not number.is_finite():
        raise ServiceError(_("%(field)s must be a number.", field=field), field)
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        if maximum is None:
            raise ServiceError(_("%(field)s must be at least %(min)s.", field=field, min=minimum), field)
        raise ServiceError(_("%(field)s must be between %(min)s and %(max)s.", field=field, min=minimum,
                             max=maximum), field)
    return number.quantize(Decimal("0.01"))
