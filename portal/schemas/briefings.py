"""Briefings (工作简报): the request (page form and API body) and the API's answers."""
from __future__ import annotations

from marshmallow import Schema as Out
from marshmallow import fields as mf

from portal.schemas import Schema
from portal.schemas.metrics import Period


class BriefingIn(Schema):
    """The period a briefing covers: a month, quarter, half-year or year that has begun."""

    period = Period(required=True)


class BriefingCreatedOut(Out):
    id = mf.Integer(required=True)
    state = mf.String(required=True, metadata={"enum": ["queued", "running", "done", "failed"]})


class BriefingOut(Out):
    id = mf.Integer(required=True)
    state = mf.String(required=True, metadata={"enum": ["queued", "running", "done", "failed"]})
    number = mf.Integer(required=True, metadata={
        "description": "The issue number (第N期), counted per unit and year of issue from 1."})
    download_url = mf.String(required=True, allow_none=True, metadata={
        "description": "The .docx on the unit's briefings page (a signed-in session), once the state is `done`."})
