"""The figures' API: the query strings (period, scope, page) and the answers."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema as Out
from marshmallow import fields as mf

from portal.schemas import Schema
from portal.schemas import fields as f

PERIOD_PATTERN = r"^(20[0-9]{2}|2100)(-(0[1-9]|1[0-2])|-Q[1-4]|-H[12])?$"
SCOPES = ("subtree", "own")


class Period(f.Text):
    """A month (2026-11), a quarter (2026-Q4), a half-year (2026-H2) or a year (2026), 2000–2100."""

    default_error_messages = {
        **f.Text.default_error_messages,
        "period": _l("%(field)s must be a month (2026-11), a quarter (2026-Q4), a half-year (2026-H2) or a "
                     "year (2026), from 2000 to 2100."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).update({
            "pattern": PERIOD_PATTERN, "example": "2026-11",
            "description": "A month, quarter, half-year or year on the Beijing calendar; the current month "
                           "when left out. Task figures (stocks) answer their value at the end of a period that has "
                           "ended and their current value for the running one; other stocks their current value "
                           "whatever the period."})
        super().__init__(7, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        import re

        value = super()._deserialize(value, attr, data, **kwargs)
        if value and not re.match(PERIOD_PATTERN, value):
            raise self.make_error("period")
        return value


class MetricsQuery(Schema):
    period = Period()
    scope = f.Choice(SCOPES, load_default="subtree", metadata={
        "description": "`subtree`: the unit and everything below it; `own`: the unit's own records. "
                       "A reader who sees no unit below (a liaison) always gets `own`."})


class RecordsQuery(MetricsQuery):
    page = f.Integer(minimum=1, maximum=100_000, load_default=1)
    per_page = f.Integer(minimum=1, maximum=200, load_default=50)


# --- answers ----------------------------------------------------------------------------------

class MetricsOut(Out):
    unit_code = mf.String(required=True)
    period = mf.String(required=True)
    scope = mf.String(required=True, metadata={"enum": list(SCOPES)})
    computed_at = mf.String(required=True, allow_none=True, metadata={
        "description": "When the figures were last computed (UTC, ISO 8601 with Z); null before the first."})
    stale = mf.Boolean(required=True, metadata={
        "description": "A write is waiting to be counted in these figures (a refresh is on its way)."})
    metrics = mf.Dict(keys=mf.String(), values=mf.Float(), required=True, metadata={
        "description": "Additive figures by key (counts, and sums for progress)."})
    indicators = mf.Dict(keys=mf.String(), values=mf.Float(allow_none=True), required=True, metadata={
        "description": "Percentages 0–100 with one decimal, rounded half up; null when the denominator is 0."})


class RecordOut(Out):
    kind = mf.String(required=True, metadata={"enum": ["task", "meeting", "decision", "notice",
                                                                    "activity", "team_member", "unit"]})
    id = mf.Integer(required=True)
    unit_code = mf.String(required=True)
    title = mf.String(required=True)
    status = mf.String(required=True)
    date = mf.String(required=True, allow_none=True)
    period = mf.String(required=True)
    value = mf.Float(required=True, metadata={"description": "What the record adds to the figure."})


class RecordsOut(Out):
    unit_code = mf.String(required=True)
    metric = mf.String(required=True)
    period = mf.String(required=True)
    scope = mf.String(required=True, metadata={"enum": list(SCOPES)})
    items = mf.List(mf.Nested(RecordOut), required=True)
    page = mf.Integer(required=True)
    per_page = mf.Integer(required=True)
    total = mf.Integer(required=True)
