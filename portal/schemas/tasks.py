"""Inputs of the task pages and API operations (and the rows of the Excel import)."""
from __future__ import annotations

import re
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, post_load, pre_load
from marshmallow.fields import Nested

from portal.models import TaskStatus
from portal.models.activities import CATEGORY_CODES
from portal.models.tasks import COUNTED_MEASURES
from portal.schemas import Schema
from portal.schemas import fields as f

MAX_TITLE = 200
MAX_TEXT = 10_000
UNIT_CODE = 16
SCOPES = ("unit", "subtree", "mine")
MAX_DUE_WITHIN_DAYS = 3660


class CountedFromIn(Schema):
    """A target counted from the unit's activities: the actual value is the sum of ``measure`` over
    the unit's registered activities of ``category`` (organised by ``department`` if given) that
    start between 1 January of the due date's year and the due date; the unit no longer types it."""

    category = f.Choice(CATEGORY_CODES, required=True, metadata={"label": "target.counted_from.category"})
    measure = f.Choice(COUNTED_MEASURES, required=True, metadata={
        "label": "target.counted_from.measure",
        "description": "count: the number of activities; person_times, volunteer_hours, funds: their sum."})
    department = f.Department(allow_none=True, metadata={
        "label": "target.counted_from.department",
        "description": "Only activities this department organised (the lead department)."})


def _blank(value) -> bool:
    if isinstance(value, dict):
        return all(_blank(v) for v in value.values())
    return value is None or value == ""


class TargetIn(Schema):
    name = f.Text(100, required=True, blank_message=_l("target.name: name the quantity, e.g. 培训人次."),
                  metadata={"label": "target.name"})
    unit = f.Text(32, metadata={"label": "target.unit"})
    value = f.Decimal(digits=14, minimum=Decimal("0.01"), required=True, metadata={"label": "target.value"})
    counted_from = Nested(CountedFromIn, allow_none=True, load_default=None, metadata={
        "description": "Count the actual value from the unit's activities instead of letting the unit type it."})

    @pre_load
    def _blank_counted_from_is_none(self, data, **kwargs):
        if isinstance(data, dict) and "counted_from" in data and _blank(data["counted_from"]):
            data = dict(data, counted_from=None)
        return data


class TaskIn(Schema):
    """A task's definition and departments: issuing (API and page) and editing (page)."""

    form_keys = {"target_name": "target.name", "target_unit": "target.unit", "target_value": "target.value",
                 "counted_category": "target.counted_from.category", "counted_measure": "target.counted_from.measure",
                 "counted_department": "target.counted_from.department"}

    title = f.Text(MAX_TITLE, required=True, blank_message=_l("A title is required."))
    description = f.Text(MAX_TEXT)
    due_date = f.Date(required=True)
    weight = f.Decimal(digits=6, minimum=Decimal("0.01"), maximum=Decimal("100"), load_default=Decimal("1"),
                       metadata={"description": "Weight among the sibling instances in the roll-up."})
    lead_department = f.Department(required=True)
    co_departments = f.DepartmentList(load_default=list)
    target = Nested(TargetIn, allow_none=True, load_default=None,
                    metadata={"description": "A quantity to reach, e.g. 500 persons trained."})

    @pre_load
    def _blank_target_is_none(self, data, **kwargs):
        target = data.get("target") if isinstance(data, dict) else None
        if isinstance(target, dict) and _blank(target):
            data = dict(data, target=None)
        elif target == "":
            data = dict(data, target=None)
        return data

    @post_load
    def _co_without_lead(self, data, **kwargs):
        data["co_departments"] = [c for c in data.get("co_departments") or [] if c != data.get("lead_department")]
        return data


class TaskFilter(Schema):
    """The supervision list's filters (page, Excel download and API)."""

    scope = f.Choice(SCOPES, load_default="unit")
    status = f.Choice([s.value for s in TaskStatus])
    department = f.Department(allow_none=True)
    due_within = f.Integer(minimum=0, maximum=MAX_DUE_WITHIN_DAYS, metadata={
        "description": "Open tasks due within this many days."})
    overdue = f.Boolean(load_default=False)
    q = f.Text(100, metadata={"description": "Words of the title."})
    page = f.Integer(minimum=1, maximum=100_000, load_default=1)
    per_page = f.Integer(minimum=1, maximum=200, load_default=50)


class ReportIn(Schema):
    percent = f.Decimal(digits=5, minimum=Decimal("0"), maximum=Decimal("100"), required=True)
    actual_value = f.Decimal(digits=14, minimum=Decimal("0"))
    narrative = f.Text(5000)


class VersionIn(Schema):
    version = f.Integer(metadata={"description": "The version the client saw; a newer one is a 409."})


class ReviewIn(VersionIn):
    decision = f.Choice(["accept", "return"], required=True)
    comment = f.Text(5000, metadata={"description": "Required when returning."})


class CascadeTarget(f.Choice):
    """"children", "streets", "tree" (every unit below, each level's instances under the level
    above: the same instances as passing it down level by level), or a list of codes of units below."""

    default_error_messages = {
        **f.Choice.default_error_messages,
        "invalid": _l("Cascade to “children”, “streets”, “tree” or a list of unit codes."),
    }

    def __init__(self, **kwargs):
        super().__init__(["children", "streets", "tree"], **kwargs)
        self.metadata.pop("enum", None)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, list):
            if not value or len(value) > 5000 or not all(isinstance(c, str) and 0 < len(c) <= UNIT_CODE
                                                         for c in value):
                raise self.make_error("invalid")
            return list(dict.fromkeys(value))
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class CascadeIn(Schema):
    to = CascadeTarget(required=True)


class CascadeForm(Schema):
    """The page's choice; "units" takes the codes typed in ``codes``."""

    to = f.Choice(["children", "streets", "tree", "units"], required=True, error_messages={
        "choice": _l("Cascade to “children”, “streets”, “tree” or a list of unit codes.")})
    codes = f.Text(100_000)

    @post_load
    def _codes(self, data, **kwargs):
        if data["to"] == "units":
            codes = [code for code in re.split(r"[\s,，、;；]+", data.get("codes", "")) if code]
            if not codes or any(len(code) > UNIT_CODE for code in codes):
                raise ValidationError(str(_l("Cascade to “children”, “streets”, “tree” or a list of unit codes.")), "to")
            data["to"] = list(dict.fromkeys(codes))
        return {"to": data["to"]}


class ReassignForm(VersionIn):
    lead_department = f.Department(required=True)
    co_departments = f.DepartmentList(load_default=list)

    @post_load
    def _co_without_lead(self, data, **kwargs):
        data["co_departments"] = [c for c in data.get("co_departments") or [] if c != data.get("lead_department")]
        return data


class NoticeForm(Schema):
    text = f.Text(2000, required=True, blank_message=_l("Write what the notice asks for."))


class RespondForm(Schema):
    response = f.Text(2000, required=True, blank_message=_l("Write the response."))


class CancelForm(Schema):
    reason = f.Text(1000, required=True, blank_message=_l("Say why the task is cancelled."))
