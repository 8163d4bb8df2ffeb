"""Inputs of the activity register and the work teams: the page forms, the API
operations and the rows of the Excel import read through the same schemas."""
from __future__ import annotations

import re
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, post_load, pre_load, validates_schema
from marshmallow.fields import Nested

from portal.models.activities import CATEGORY_CODES, TEAM_KINDS, TEAM_ROLES
from portal.schemas import Schema
from portal.schemas import fields as f

MAX_TITLE = 200
MAX_TEXT = 10_000
#: More people than this at one activity is a typing error, not an activity.
MAX_PEOPLE = 1_000_000
MAX_NAMED_VOLUNTEERS = 200
PERIOD_RE = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4])|-H([12]))?$")
SCOPES = ("unit", "subtree")


def _count(label: str, **kwargs):
    return f.Integer(minimum=0, maximum=MAX_PEOPLE, load_default=0, metadata={"label": label}, **kwargs)


class ParticipantsIn(Schema):
    youth = _count("participants.youth")
    elders = _count("participants.elders")
    others = _count("participants.others")


class NamedVolunteerIn(Schema):
    member_id = f.Integer(required=True, metadata={"description": "A member of the unit's team roster."})
    hours = f.Decimal(digits=8, minimum=Decimal("0"), load_default=Decimal("0"))


class Records(f.List):
    """A list of objects (kept as sent: objects are not deduplicated like codes)."""

    def _deserialize(self, value, attr, data, **kwargs):
        import marshmallow as ma

        if not isinstance(value, (list, tuple)):
            raise self.make_error("invalid")
        if len(value) > self.max_items:
            raise self.make_error("too_many", n=self.max_items)
        try:
            return ma.fields.List._deserialize(self, value, attr, data, **kwargs)
        except ValidationError as exc:
            from portal.args import _flatten

            raise ValidationError(_flatten(exc.messages)[0][1]) from exc


def _check_activity(data: dict, *, partial: bool = False) -> None:
    """The rules between fields: the end is not before the start, no more volunteers than participants,
    at least as many volunteers as are named."""
    errors: dict[str, str] = {}
    start, end = data.get("start_date"), data.get("end_date")
    if start is not None and end is not None and end < start:
        errors["end_date"] = _("end_date: the activity cannot end (%(end)s) before it starts (%(start)s).",
                               end=end.isoformat(), start=start.isoformat())
    people = data.get("participants")
    volunteers = data.get("volunteers")
    if people is not None and volunteers is not None:
        total = sum(people.values())
        if volunteers > total:
            errors["volunteers"] = _("volunteers: %(v)d volunteers is more than the %(n)d participants.",
                                     v=volunteers, n=total)
    named = data.get("volunteer_members") or []
    if volunteers is not None and len(named) > volunteers:
        errors.setdefault("volunteers", _("volunteers: %(n)d volunteers are named from the roster, but only %(v)d "
                                          "counted.", n=len(named), v=volunteers))
    if errors:
        raise ValidationError(errors)


class ActivityFields(Schema):
    """Every field of an activity, none required (a PATCH); :class:`ActivityIn` requires the core."""

    form_keys = {"youth": "participants.youth", "elders": "participants.elders", "others": "participants.others"}

    title = f.Text(MAX_TITLE, blank_message=_l("A title or theme is required."))
    category = f.Choice(CATEGORY_CODES)
    start_date = f.Date()
    end_date = f.Date(metadata={"description": "The last day; the start date when left out."})
    place = f.Text(200)
    lead_department = f.Department(metadata={"description": "The organising department."})
    co_departments = f.DepartmentList()
    participants = Nested(ParticipantsIn, metadata={
        "description": "Participants (人次) by group; `person_times` is their sum, computed."})
    volunteers = _count("volunteers")
    volunteer_hours = f.Decimal(digits=12, minimum=Decimal("0"))
    funds = f.Decimal(digits=14, minimum=Decimal("0"), metadata={"description": "Funds spent, yuan."})
    donated_goods = f.Decimal(digits=14, minimum=Decimal("0"), metadata={"description": "Donated goods, yuan."})
    narrative = f.Text(MAX_TEXT)
    volunteer_members = Records(Nested(NamedVolunteerIn), max_items=MAX_NAMED_VOLUNTEERS, metadata={
        "description": "Volunteers of the unit's roster and their hours."})

    @pre_load
    def _named_volunteers_from_form(self, data, **kwargs):
        """The page form names roster volunteers as ``hours_<member id>`` fields."""
        if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("hours_") for k in data):
            data = dict(data)
            named = []
            for key in [k for k in data if isinstance(k, str) and k.startswith("hours_")]:
                value = data.pop(key)
                if value not in (None, "") and key[6:].isdigit():
                    named.append({"member_id": key[6:], "hours": value})
            data.setdefault("volunteer_members", named)
        return data


class ActivityIn(ActivityFields):
    """Registering an activity (page form, API body, Excel row)."""

    title = f.Text(MAX_TITLE, required=True, blank_message=_l("A title or theme is required."))
    category = f.Choice(CATEGORY_CODES, required=True)
    start_date = f.Date(required=True)
    lead_department = f.Department(required=True, metadata={"description": "The organising department."})
    co_departments = f.DepartmentList(load_default=list)
    participants = Nested(ParticipantsIn, load_default=lambda: {"youth": 0, "elders": 0, "others": 0})
    volunteers = _count("volunteers")
    volunteer_hours = f.Decimal(digits=12, minimum=Decimal("0"), load_default=Decimal("0"))
    funds = f.Decimal(digits=14, minimum=Decimal("0"), load_default=Decimal("0"),
                      metadata={"description": "Funds spent, yuan."})
    donated_goods = f.Decimal(digits=14, minimum=Decimal("0"), load_default=Decimal("0"),
                              metadata={"description": "Donated goods, yuan."})
    volunteer_members = Records(Nested(NamedVolunteerIn), max_items=MAX_NAMED_VOLUNTEERS, load_default=list)

    @post_load
    def _complete(self, data, **kwargs):
        if data.get("end_date") is None:
            data["end_date"] = data["start_date"]
        data["co_departments"] = [c for c in data.get("co_departments") or [] if c != data.get("lead_department")]
        data["participants"] = {key: data["participants"].get(key) or 0 for key in ("youth", "elders", "others")}
        data["volunteer_members"] = list({m["member_id"]: m for m in data.get("volunteer_members") or []}.values())
        _check_activity(data)
        return data


class ActivityPatch(ActivityFields):
    """Changing an activity over the API: only the fields sent, and the version the client saw."""

    version = f.Integer(required=True, metadata={"description": "The version the client saw; a newer one is a 409."})

    @post_load(pass_original=True)
    def _only_sent(self, data, original, **kwargs):
        """Only the fields the client sent (and, of the participants, only the groups sent)."""
        sent = {key: value for key, value in data.items() if key in original or key == "volunteer_members"
                and any(k.startswith("hours_") for k in original)}
        if isinstance(sent.get("participants"), dict) and isinstance(original.get("participants"), dict):
            sent["participants"] = {k: v for k, v in sent["participants"].items() if k in original["participants"]}
        return sent


class ActivityFilter(Schema):
    """The register's filters (page, Excel download and API)."""

    scope = f.Choice(SCOPES, load_default="subtree", metadata={
        "description": "`subtree`: the unit and every unit below it that the caller may open."})
    period = f.Text(7, metadata={"description": "A month (2026-11), quarter (2026-Q4), half-year (2026-H2) or year."})
    category = f.Choice(CATEGORY_CODES)
    department = f.Department(allow_none=True, metadata={"description": "Organising or co-operating department."})
    unit = f.Text(16, metadata={"description": "The code of one unit below (with its own subtree)."})
    q = f.Text(100, metadata={"description": "Words of the title, place or narrative."})
    page = f.Integer(minimum=1, maximum=100_000, load_default=1)
    per_page = f.Integer(minimum=1, maximum=200, load_default=50)

    @validates_schema
    def _period(self, data, **kwargs):
        if data.get("period") and not PERIOD_RE.match(data["period"]):
            raise ValidationError(_("period: a month (2026-11), a quarter (2026-Q4), a half-year (2026-H2) "
                                    "or a year (2026)."), "period")


class CalendarQuery(Schema):
    month = f.Text(7, metadata={"description": "YYYY-MM"})
    scope = f.Choice(SCOPES, load_default="subtree")

    @validates_schema
    def _month(self, data, **kwargs):
        if data.get("month") and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", data["month"]):
            raise ValidationError(_("month: a month of the form YYYY-MM."), "month")


class DeleteIn(Schema):
    reason = f.Text(1000, required=True, blank_message=_l("reason: say why the activity is deleted."))
    version = f.Integer(metadata={"description": "The version the client saw; a newer one is a 409."})


class VersionIn(Schema):
    version = f.Integer(metadata={"description": "The version the client saw; a newer one is a 409."})


PHONE_RE = re.compile(r"^\+?[0-9][0-9 -]{4,30}$")


class TeamMemberIn(Schema):
    name = f.Text(50, required=True, blank_message=_l("name: write the person's name."))
    role = f.Choice(TEAM_ROLES, required=True)
    kind = f.Choice(TEAM_KINDS, required=True)
    phone = f.Text(32)
    joined_on = f.Date(required=True)
    left_on = f.Date()
    note = f.Text(500)

    @post_load
    def _check(self, data, **kwargs):
        errors = {}
        if data.get("phone") and not PHONE_RE.match(data["phone"]):
            errors["phone"] = _("phone: digits only, e.g. 13812345678 or 0371-12345678.")
        if data.get("left_on") and data["left_on"] < data["joined_on"]:
            errors["left_on"] = _("left_on: the date of leaving cannot be before the date of joining.")
        if errors:
            raise ValidationError(errors)
        return data


class TeamMemberEdit(TeamMemberIn):
    version = f.Integer(metadata={"description": "The version the client saw; a newer one is a 409."})


# --- responses (plain marshmallow: they describe what the API sends) ----------------------------

from marshmallow import Schema as Out  # noqa: E402
from marshmallow import fields as mf  # noqa: E402


class ParticipantsOut(Out):
    youth = mf.Integer(required=True)
    elders = mf.Integer(required=True)
    others = mf.Integer(required=True)


class NamedVolunteerOut(Out):
    member_id = mf.Integer(required=True)
    name = mf.String(required=True)
    hours = mf.Float(required=True)


class ActivityFileOut(Out):
    id = mf.Integer(required=True)
    name = mf.String(required=True)
    photo = mf.Boolean(required=True)
    url = mf.String(required=True)
    thumbnail_url = mf.String(required=True, allow_none=True)


class ActivityOut(Out):
    id = mf.Integer(required=True)
    unit_code = mf.String(required=True)
    title = mf.String(required=True)
    category = mf.String(required=True, metadata={"enum": list(CATEGORY_CODES)})
    start_date = mf.String(required=True)
    end_date = mf.String(required=True)
    place = mf.String(required=True)
    lead_department = mf.String(required=True)
    co_departments = mf.List(mf.String(), required=True)
    participants = mf.Nested(ParticipantsOut, required=True)
    person_times = mf.Integer(required=True, metadata={"description": "youth + elders + others, computed."})
    volunteers = mf.Integer(required=True)
    volunteer_hours = mf.Float(required=True)
    funds = mf.Float(required=True)
    donated_goods = mf.Float(required=True)
    narrative = mf.String(required=True)
    volunteer_members = mf.List(mf.Nested(NamedVolunteerOut), required=True)
    files = mf.List(mf.Nested(ActivityFileOut), required=True)
    version = mf.Integer(required=True)


class ActivityListOut(Out):
    items = mf.List(mf.Nested(ActivityOut), required=True)
    page = mf.Integer(required=True)
    per_page = mf.Integer(required=True)
    total = mf.Integer(required=True)
