"""The consolidated views' API: the children's figures and reporting completeness."""
from __future__ import annotations

from marshmallow import Schema as Out
from marshmallow import fields as mf

from portal.metrics.registry import DEPARTMENT_CODES
from portal.schemas import Schema
from portal.schemas import fields as f
from portal.schemas.metrics import MetricsOut, Period


class ChildrenQuery(Schema):
    period = Period()
    department = f.Choice(DEPARTMENT_CODES, load_default=None, metadata={
        "description": "Only the tasks of this member department (lead or co-operating): the items' "
                       "`metrics` then hold `tasks.total`, `tasks.accepted`, `tasks.overdue` of its tasks."})
    page = f.Integer(minimum=1, maximum=100_000, load_default=1)
    per_page = f.Integer(minimum=1, maximum=200, load_default=100)


class ReportingQuery(Schema):
    period = Period()
    reported = f.Choice(("true", "false"), load_default=None, metadata={
        "description": "`false`: only the units that have not reported (the laggards); `true`: only those that have."})
    page = f.Integer(minimum=1, maximum=100_000, load_default=1)
    per_page = f.Integer(minimum=1, maximum=500, load_default=100)


class RemindIn(Schema):
    """The 催报 button: the period whose laggards are reminded (the current month when left out)."""

    period = Period()


class ChildFiguresOut(MetricsOut):
    class Meta:
        exclude = ("period", "scope")

    name = mf.String(required=True)


class ChildrenOut(Out):
    unit_code = mf.String(required=True)
    period = mf.String(required=True)
    department = mf.String(required=True, allow_none=True)
    page = mf.Integer(required=True)
    per_page = mf.Integer(required=True)
    total = mf.Integer(required=True)
    items = mf.List(mf.Nested(ChildFiguresOut), required=True, metadata={"description": "One item per unit below."})


class ReportingItemOut(Out):
    unit_code = mf.String(required=True)
    name = mf.String(required=True)
    reported = mf.Boolean(required=True, metadata={"description": "Every report the unit owed in the period arrived."})
    tasks_owed = mf.Integer(required=True, metadata={
        "description": "Reports still owed: task instances × months without a report in the period."})
    reports_expected = mf.Integer(required=True)
    reports_received = mf.Integer(required=True)


class ReportingOut(Out):
    unit_code = mf.String(required=True)
    period = mf.String(required=True)
    units_expected = mf.Integer(required=True, metadata={"description": "Units below that owe reports in the period."})
    units_reported = mf.Integer(required=True)
    page = mf.Integer(required=True)
    per_page = mf.Integer(required=True)
    total = mf.Integer(required=True)
    items = mf.List(mf.Nested(ReportingItemOut), required=True)
