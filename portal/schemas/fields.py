"""The field types of every input schema.

Each refuses what it cannot store (wrong types, non-finite or out-of-range
numbers, dates outside 2000–2100, text longer than its column, unknown
department codes) with a message in the user's language that names the
field. The label is the field's data key unless ``metadata={"label": ...}``
says otherwise (``target.value`` for a nested field).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal as D, InvalidOperation
from typing import Any, Iterable, Optional

import marshmallow as ma
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

#: Dates the portal accepts: wide enough for any plan, narrow enough for every calendar and export.
MIN_DATE = date(2000, 1, 1)
MAX_DATE = date(2100, 12, 31)
#: PostgreSQL's ``integer``: ids and versions above it cannot exist.
MAX_INT = 2**31 - 1

_BASE_MESSAGES = {
    "required": _l("%(field)s is required."),
    "null": _l("%(field)s is required."),
    "validator_failed": _l("%(field)s is not valid."),
}


class _Labelled:
    """Messages are lazy gettext strings with ``%(field)s``: formatted when the error is made,
    in the language of the request."""

    def __init__(self, *args, **kwargs):
        # An optional field left out is there as None (Text: ""), so services read data[key].
        if not kwargs.get("required"):
            kwargs.setdefault("load_default", None)
        super().__init__(*args, **kwargs)

    def label(self) -> str:
        return self.metadata.get("label") or self.data_key or self.name or ""

    def make_error(self, key: str, **kwargs) -> ValidationError:
        text = str(self.error_messages[key])
        return ValidationError(text % {"field": self.label(), **kwargs})

    def _blank(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and value.strip() == "")

    def deserialize(self, value, attr=None, data=None, **kwargs):
        # An empty form field or a null is no value: refused when required, the default otherwise.
        if isinstance(value, str) and value.strip() == "" and not isinstance(self, Text):
            value = None
        if value is None:
            if self.required:
                raise self.make_error("required")
            default = self.load_default
            return default() if callable(default) else (None if default is ma.missing else default)
        return super().deserialize(value, attr, data, **kwargs)


class Text(_Labelled, ma.fields.String):
    """Text up to ``max_length`` characters (the column's size). A required text may not be blank.
    An absent or null optional text is ``""``."""

    default_error_messages = {
        **_BASE_MESSAGES,
        "invalid": _l("%(field)s must be text."),
        "too_long": _l("%(field)s is longer than %(n)d characters."),
    }

    def __init__(self, max_length: int, *, required: bool = False, blank_message: Optional[str] = None,
                 **kwargs):
        if not required:
            kwargs.setdefault("load_default", "")
        kwargs.setdefault("allow_none", True)
        if blank_message is not None:
            kwargs.setdefault("error_messages", {})["required"] = blank_message
        super().__init__(required=required, **kwargs)
        self.max_length = max_length
        self.metadata.setdefault("maxLength", max_length)

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if value is None:
            if self.required:
                raise self.make_error("required")
            return ""
        return super().deserialize(value, attr, data, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        value = value.strip()
        if self.required and not value:
            raise self.make_error("required")
        if len(value) > self.max_length:
            raise self.make_error("too_long", n=self.max_length)
        return value


class Choice(_Labelled, ma.fields.String):
    """One of a fixed set of words."""

    default_error_messages = {
        **_BASE_MESSAGES,
        "invalid": _l("%(field)s must be text."),
        "choice": _l("%(field)s: unknown value %(value)s. Choose one of: %(choices)s."),
    }

    def __init__(self, choices: Iterable[str], **kwargs):
        self.choices = list(choices)
        kwargs.setdefault("allow_none", False)
        super().__init__(**kwargs)
        self.metadata.setdefault("enum", self.choices)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if value not in self.choices:
            raise self.make_error("choice", value=value[:30], choices=", ".join(self.choices))
        return value


class Department(_Labelled, ma.fields.String):
    """A code of the department catalogue (the ``departments`` table)."""

    default_error_messages = {
        **_BASE_MESSAGES,
        "invalid": _l("%(field)s must be text."),
        "unknown": _l("%(field)s: unknown department %(code)s."),
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        value = value.strip()
        if value not in department_codes():
            raise self.make_error("unknown", code=value[:32])
        return value


def department_codes() -> set[str]:
    """The catalogue, read once per request (or app context)."""
    from flask import g

    from portal.extensions import db
    from portal.models import Department as Model

    codes = g.get("_department_codes")
    if codes is None:
        codes = g._department_codes = set(db.session.scalars(ma_select(Model.code)))
    return codes


def ma_select(column):
    from sqlalchemy import select

    return select(column)


class List(_Labelled, ma.fields.List):
    """A list (a form's repeated field); repeats are dropped, the order kept."""

    default_error_messages = {
        **_BASE_MESSAGES,
        "invalid": _l("%(field)s must be a list."),
        "too_many": _l("%(field)s has more than %(n)d entries."),
    }

    def __init__(self, inner, *, max_items: int = 100, **kwargs):
        kwargs.setdefault("allow_none", True)
        super().__init__(inner, **kwargs)
        self.max_items = max_items
        self.metadata.setdefault("maxItems", max_items)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, (list, tuple)):
            raise self.make_error("invalid")
        if len(value) > self.max_items:
            raise self.make_error("too_many", n=self.max_items)
        try:
            items = super()._deserialize(value, attr, data, **kwargs)
        except ValidationError as exc:  # the first wrong entry, under the list's own name
            from portal.args import _flatten

            raise ValidationError(_flatten(exc.messages)[0][1]) from exc
        return list(dict.fromkeys(items))


class DepartmentList(List):
    default_error_messages = {**List.default_error_messages,
                              "invalid": _l("%(field)s must be a list of department codes.")}

    def __init__(self, **kwargs):
        super().__init__(Department(), max_items=100, **kwargs)

    def _bind_to_schema(self, field_name, parent):
        super()._bind_to_schema(field_name, parent)
        self.inner.metadata["label"] = self.label()


class Decimal(_Labelled, ma.fields.Number):
    """A finite number with ``places`` decimals (half up), within [minimum, maximum]; ``maximum``
    defaults to what the column can hold (``digits`` in all)."""

    num_type = D
    default_error_messages = {
        **_BASE_MESSAGES,
        "invalid": _l("%(field)s must be a number."),
        "range": _l("%(field)s must be between %(min)s and %(max)s."),
        "min": _l("%(field)s must be at least %(min)s."),
        "max": _l("%(field)s must be less than %(max)s."),
    }

    def __init__(self, *, digits: int, places: int = 2, minimum: Optional[D] = None,
                 maximum: Optional[D] = None, **kwargs):
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)
        self.places = D(1).scaleb(-places)
        self.minimum = minimum
        self.maximum = maximum
        self.limit = D(10) ** (digits - places)  # exclusive: Numeric(14, 2) holds less than 10^12
        if minimum is not None:
            self.metadata.setdefault("minimum", float(minimum))
        self.metadata.setdefault("maximum", float(maximum) if maximum is not None else float(self.limit - self.places))

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float, D, str)):
            raise self.make_error("invalid")
        try:
            number = D(str(value).strip())
        except (InvalidOperation, ValueError):
            raise self.make_error("invalid")
        if not number.is_finite():
            raise self.make_error("invalid")
        low, high = self.minimum, self.maximum
        if high is not None and (number > high or (low is not None and number < low)):
            raise self.make_error("range", min=_plain(low), max=_plain(high))
        if low is not None and number < low:
            raise self.make_error("min", min=_plain(low))
        if number >= self.limit:
            raise self.make_error("max", max=_plain(self.limit))
        return number.quantize(self.places, rounding=ROUND_HALF_UP)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else float(value)


def _plain(number: Optional[D]) -> str:
    return format(number.normalize(), "f") if number is not None else ""


class Integer(_Labelled, ma.fields.Integer):
    """A whole number (an id, a version, a count), as a JSON integer or a form's digits."""

    default_error_messages = {
        **_BASE_MESSAGES,
        "invalid": _l("%(field)s must be a whole number."),
        "range": _l("%(field)s must be between %(min)s and %(max)s."),
    }

    def __init__(self, *, minimum: int = 1, maximum: int = MAX_INT, **kwargs):
        kwargs.setdefault("allow_none", True)
        super().__init__(**kwargs)
        self.minimum, self.maximum = minimum, maximum
        self.metadata.setdefault("minimum", minimum)
        self.metadata.setdefault("maximum", maximum)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, str):
            if not re.fullmatch(r"[+-]?\d{1,12}", value.strip()):
                raise self.make_error("invalid")
            value = int(value)
        if not isinstance(value, int):
            raise self.make_error("invalid")
        if not self.minimum <= value <= self.maximum:
            raise self.make_error("range", min=self.minimum, max=self.maximum)
        return value


class Boolean(_Labelled, ma.fields.Boolean):
    default_error_messages = {**_BASE_MESSAGES, "invalid": _l("%(field)s must be true or false.")}
    truthy = {True, "true", "True", "1", 1, "on", "yes"}
    falsy = {False, "false", "False", "0", 0, "off", "no"}


class Date(_Labelled, ma.fields.Field):
    """A calendar date, ``YYYY-MM-DD``, between 2000-01-01 and 2100-12-31."""

    default_error_messages = {
        **_BASE_MESSAGES,
        "required": _l("%(field)s is required, as YYYY-MM-DD."),
        "null": _l("%(field)s is required, as YYYY-MM-DD."),
        "invalid": _l("%(field)s is not a date of the form YYYY-MM-DD: %(value)s"),
        "range": _l("%(field)s must be between %(min)s and %(max)s."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_none", not kwargs.get("required", False))
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, datetime) or not isinstance(value, (date, str)):
            raise self.make_error("invalid", value=str(value)[:30])
        if isinstance(value, str):
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
                raise self.make_error("invalid", value=value[:30])
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                raise self.make_error("invalid", value=value[:30])
        if not MIN_DATE <= value <= MAX_DATE:
            raise self.make_error("range", min=MIN_DATE.isoformat(), max=MAX_DATE.isoformat())
        return value

    def _serialize(self, value, attr, obj, **kwargs):
        return value.isoformat() if value is not None else None


class DateTime(_Labelled, ma.fields.Field):
    """A wall-clock time to the minute: "2026-12-10 9:00", the browser's "2026-12-10T09:00",
    or ISO 8601 with an offset (taken as the wall-clock time it names); 2000–2100."""

    default_error_messages = {
        **_BASE_MESSAGES,
        "required": _l("%(field)s is required (YYYY-MM-DD HH:MM)."),
        "null": _l("%(field)s is required (YYYY-MM-DD HH:MM)."),
        "invalid": _l("%(field)s is not a date and time of the form YYYY-MM-DD HH:MM."),
        "range": _l("%(field)s must be between %(min)s and %(max)s."),
    }
    PATTERNS = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_none", not kwargs.get("required", False))
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str) and len(value) <= 40:
            parsed = None
            for pattern in self.PATTERNS:
                try:
                    parsed = datetime.strptime(value, pattern)
                    break
                except ValueError:
                    continue
            if parsed is None:
                if not re.match(r"\d{4}-\d{2}-\d{2}[T ]\d", value):
                    raise self.make_error("invalid")
                try:
                    parsed = datetime.fromisoformat(value)
                except ValueError:
                    raise self.make_error("invalid")
        else:
            raise self.make_error("invalid")
        parsed = parsed.replace(tzinfo=None, second=0, microsecond=0)
        if not MIN_DATE <= parsed.date() <= MAX_DATE:
            raise self.make_error("range", min=MIN_DATE.isoformat(), max=MAX_DATE.isoformat())
        return parsed

    def _serialize(self, value, attr, obj, **kwargs):
        return value.isoformat(timespec="minutes") if value is not None else None
