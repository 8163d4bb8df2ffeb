"""Inputs of the joint-meeting pages and API operations."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import post_load

from portal.models import AttendanceStatus, MeetingStatus
from portal.schemas import Schema
from portal.schemas import fields as f

MAX_TITLE = 200
MAX_TEXT = 20_000
MAX_MINUTES = 200_000
UNIT_CODE = 16


class MeetingIn(Schema):
    """Schedule a meeting (API body and the page's form)."""

    form_keys = {"departments": "invited_departments", "units": "invited_units"}

    title = f.Text(MAX_TITLE, required=True, blank_message=_l("A title is required."))
    starts_at = f.DateTime(required=True)
    ends_at = f.DateTime()
    agenda_closes_at = f.DateTime()
    location = f.Text(200)
    notice_number = f.Text(64)
    series = f.Text(64, load_default="regular")
    invited_departments = f.DepartmentList(
        load_default=None, metadata={"description": "Department codes; every member department when absent."})
    invited_units = f.List(f.Text(UNIT_CODE), load_default=list,
                           metadata={"description": "Codes of units below whose offices are invited."})

    @post_load
    def _series(self, data, **kwargs):
        data["series"] = data.get("series") or "regular"
        return data


class MeetingForm(MeetingIn):
    """The page's form: its checkboxes send nothing when none is ticked, which means none."""

    invited_departments = f.DepartmentList(load_default=list)


class MeetingUpdate(Schema):
    """Change a meeting (the edit page); ``version`` guards against overwriting someone else's change."""

    title = f.Text(MAX_TITLE, required=True, blank_message=_l("A title is required."))
    starts_at = f.DateTime(required=True)
    ends_at = f.DateTime()
    agenda_closes_at = f.DateTime()
    location = f.Text(200)
    notice_number = f.Text(64)
    version = f.Integer()


class MeetingFilter(Schema):
    q = f.Text(100)
    year = f.Integer(minimum=2000, maximum=2100)
    status = f.Choice([s.value for s in MeetingStatus])


class TransitionIn(Schema):
    to = f.Choice([s.value for s in MeetingStatus], required=True)
    reason = f.Text(1000, metadata={"description": "Required when cancelling."})


class AgendaItemIn(Schema):
    title = f.Text(MAX_TITLE, required=True, blank_message=_l("A title is required."))
    description = f.Text(MAX_TEXT)
    department = f.Department(allow_none=True, metadata={
        "description": "The proposing department; a liaison's own by default."})


class DecideItemForm(Schema):
    action = f.Choice(["accept", "merge", "defer", "reject"], required=True)
    reason = f.Text(1000)
    merge_into = f.Integer()


class MoveForm(Schema):
    direction = f.Choice(["up", "down"], required=True)


class AttendanceForm(Schema):
    department = f.Department(required=True)
    status = f.Choice([s.value for s in AttendanceStatus], required=True)
    attendee_name = f.Text(100)
    delegate_name = f.Text(100)
    reason = f.Text(255)


class DecisionIn(Schema):
    text = f.Text(MAX_TEXT, required=True, blank_message=_l("The decision needs a text."))
    lead_department = f.Department(required=True, error_messages={"required": _l("Choose the lead department.")})
    co_departments = f.DepartmentList(load_default=list)
    due_date = f.Date()
    item_id = f.Integer()

    @post_load
    def _co_without_lead(self, data, **kwargs):
        data["co_departments"] = [c for c in data.get("co_departments") or [] if c != data.get("lead_department")]
        return data


class MinutesForm(Schema):
    body = f.Text(MAX_MINUTES)
    reason = f.Text(500)
    base_revision = f.Integer(minimum=0, load_default=0)
