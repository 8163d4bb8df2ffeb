"""The API's own inputs (tokens) and every response body, for the OpenAPI description
and the response checks of the fuzz test."""
from __future__ import annotations

from marshmallow import Schema as Out
from marshmallow import fields as mf

from portal.schemas import Schema
from portal.schemas import fields as f


class TokenIn(Schema):
    username = f.Text(64, required=True)
    password = f.Text(1024, required=True, metadata={"strip": False})


# --- responses (plain marshmallow: they describe what the views send) ------------------------

def _nullable(field_class, *args, **kwargs):
    return field_class(*args, allow_none=True, required=True, **kwargs)


class ErrorDetail(Out):
    code = mf.String(required=True, metadata={"enum": ["bad_request", "unauthorized", "forbidden", "not_found",
                                                       "method_not_allowed", "conflict", "payload_too_large",
                                                       "too_many_requests", "server_error",
                                                       "service_unavailable"]})
    message = mf.String(required=True, metadata={"description": "In the user's language (Chinese by default)."})
    field = mf.String(metadata={"description": "The first field the refusal is about, e.g. `target.value`."})


class ErrorOut(Out):
    error = mf.Nested(ErrorDetail, required=True)


class TokenOut(Out):
    token = mf.String(required=True, metadata={"description": "Shown once; send it as `Authorization: Bearer …`."})
    expires_at = mf.String(required=True, metadata={"description": "UTC, ISO 8601 with Z."})


class MembershipOut(Out):
    unit_code = mf.String(required=True)
    tier = mf.String(required=True)
    department = _nullable(mf.String)
    role = mf.String(required=True)


class MeOut(Out):
    username = mf.String(required=True)
    display_name = mf.String(required=True)
    memberships = mf.List(mf.Nested(MembershipOut), required=True)


class UnitRef(Out):
    code = mf.String(required=True)
    name = mf.String(required=True)
    tier = mf.String(required=True)


class UnitOut(UnitRef):
    parent_code = _nullable(mf.String)
    children = mf.List(mf.Nested(UnitRef), required=True)


# --- meetings ------------------------------------------------------------------------------------

class AgendaItemOut(Out):
    id = mf.Integer(required=True)
    title = mf.String(required=True)
    department = _nullable(mf.String)
    status = mf.String(required=True)
    position = mf.Integer(required=True)


class AgendaEntryOut(AgendaItemOut):
    kind = mf.String(required=True)


class AttendanceOut(Out):
    department = mf.String(required=True)
    status = mf.String(required=True)
    delegate = _nullable(mf.String)
    reason = _nullable(mf.String)


class DecisionOut(Out):
    id = mf.Integer(required=True)
    text = mf.String(required=True)
    lead_department = mf.String(required=True)
    co_departments = mf.List(mf.String(), required=True)
    due_date = _nullable(mf.String)
    status = mf.String(required=True)


class MinutesStateOut(Out):
    state = mf.String(required=True, metadata={"enum": ["none", "draft", "published"]})
    revision = mf.Integer(required=True)


class MeetingOut(Out):
    id = mf.Integer(required=True)
    unit_code = mf.String(required=True)
    title = mf.String(required=True)
    series = mf.String(required=True)
    status = mf.String(required=True)
    starts_at = mf.String(required=True, metadata={"description": "Local wall-clock time, YYYY-MM-DDTHH:MM."})
    ends_at = _nullable(mf.String)
    location = mf.String(required=True)
    agenda_closes_at = _nullable(mf.String)
    invited_departments = mf.List(mf.String(), required=True)
    invited_units = mf.List(mf.String(), required=True)
    agenda = mf.List(mf.Nested(AgendaEntryOut), required=True)
    attendance = mf.List(mf.Nested(AttendanceOut), required=True)
    decisions = mf.List(mf.Nested(DecisionOut), required=True)
    minutes = mf.Nested(MinutesStateOut, required=True)


# --- tasks ---------------------------------------------------------------------------------------

class CountedFromOut(Out):
    category = mf.String(required=True)
    measure = mf.String(required=True, metadata={"enum": ["count", "person_times", "volunteer_hours", "funds"]})
    department = _nullable(mf.String)


class TargetOut(Out):
    name = mf.String(required=True)
    unit = _nullable(mf.String)
    value = _nullable(mf.Float)
    counted_from = _nullable(mf.Nested, CountedFromOut, metadata={
        "description": "Set when the actual value is counted from the unit's activities (then never typed)."})


class TaskSummaryOut(Out):
    id = mf.Integer(required=True)
    unit_code = mf.String(required=True)
    title = mf.String(required=True)
    status = mf.String(required=True)
    progress = _nullable(mf.Float)
    actual_value = _nullable(mf.Float)
    lead_department = mf.String(required=True)
    co_departments = mf.List(mf.String(), required=True)
    due_date = mf.String(required=True)
    overdue = mf.Boolean(required=True)
    weight = _nullable(mf.Float)
    parent_id = _nullable(mf.Integer)
    decision_id = _nullable(mf.Integer)
    target = _nullable(mf.Nested, TargetOut)
    version = mf.Integer(required=True)


class ChildOut(Out):
    id = mf.Integer(required=True)
    unit_code = mf.String(required=True)
    status = mf.String(required=True)
    progress = _nullable(mf.Float)


class ReportOut(Out):
    id = mf.Integer(required=True)
    percent = _nullable(mf.Float)
    actual_value = _nullable(mf.Float)
    narrative = mf.String(required=True)
    department = _nullable(mf.String)
    at = mf.String(required=True)


class NoticeOut(Out):
    id = mf.Integer(required=True)
    from_unit = mf.String(required=True)
    text = mf.String(required=True)
    response = _nullable(mf.String)


class TaskOut(TaskSummaryOut):
    description = mf.String(required=True)
    children = mf.List(mf.Nested(ChildOut), required=True)
    reports = mf.List(mf.Nested(ReportOut), required=True)
    supervision_notices = mf.List(mf.Nested(NoticeOut), required=True)


class TaskListOut(Out):
    items = mf.List(mf.Nested(TaskSummaryOut), required=True)
    page = mf.Integer(required=True)
    per_page = mf.Integer(required=True)
    total = mf.Integer(required=True, metadata={
        "description": "The number of matching tasks, counted up to 10,000 (or to the page after this one); "
                       "see total_capped."})
    total_capped = mf.Boolean(required=True, metadata={
        "description": "True when there are more matching tasks than total (shown as “10,000+”)."})


class CascadeRunOut(Out):
    run_id = mf.Integer(required=True)
    state = mf.String(required=True)
    total = _nullable(mf.Integer)
    done = _nullable(mf.Integer)
    error = _nullable(mf.String)


class ReportCreatedOut(Out):
    id = mf.Integer(required=True)
    percent = _nullable(mf.Float)
    actual_value = _nullable(mf.Float)
    narrative = mf.String(required=True)
    task = mf.Nested(TaskSummaryOut, required=True)
