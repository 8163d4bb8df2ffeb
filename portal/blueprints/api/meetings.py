"""Joint meetings over the API: the same services and rules as the pages."""
from __future__ import annotations

from flask import g, jsonify

from portal import access
from portal.blueprints.api import body, bp, operation
from portal.extensions import db
from portal.models import Meeting
from portal.schemas import api as out
from portal.schemas import meetings as schemas
from portal.services import meetings as svc

TAG = "meetings"


def meeting_json(meeting: Meeting) -> dict:
    minutes = meeting.minutes
    return {
        "id": meeting.id, "unit_code": meeting.unit.code, "title": meeting.title, "series": meeting.series,
        "status": meeting.status, "starts_at": meeting.starts_at.isoformat(timespec="minutes"),
        "ends_at": meeting.ends_at.isoformat(timespec="minutes") if meeting.ends_at else None,
        "location": meeting.location,
        "agenda_closes_at": meeting.agenda_closes_at.isoformat(timespec="minutes") if meeting.agenda_closes_at else None,
        "invited_departments": meeting.invited_department_codes,
        "invited_units": [inv.unit.code for inv in meeting.unit_invitations],
        "agenda": [{"id": i.id, "title": i.title, "department": i.department_code, "status": i.status,
                    "position": i.position, "kind": i.kind} for i in meeting.items],
        "attendance": [{"department": a.department_code, "status": a.status, "delegate": a.delegate_name or None,
                        "reason": a.reason or None} for a in meeting.attendance],
        "decisions": [d.as_dict() for d in meeting.decisions],
        # Drafts are the convening office's: others learn neither that one exists nor how many there are.
        "minutes": ({"state": "published" if minutes and minutes.is_published else ("draft" if minutes else "none"),
                     "revision": minutes.revision if minutes else 0}
                    if access.can_see_draft_minutes(g.api_user, meeting) else
                    {"state": "published" if minutes and minutes.is_published else "none",
                     "revision": minutes.revision if minutes and minutes.is_published else 0}),
    }


@bp.route("/units/<code>/meetings", methods=["POST"])
@operation("Schedule a meeting of the unit (as a draft)", tag=TAG, body=schemas.MeetingIn,
           responses={201: out.MeetingOut}, errors=(403, 404, 409))
def create_meeting(code: str):
    unit = access.unit_or_404(g.api_user, code)
    meeting = svc.create_meeting(unit, body(), by=g.api_user)
    db.session.commit()
    return jsonify(meeting_json(meeting)), 201


@bp.route("/meetings/<int:meeting_id>")
@operation("A meeting: agenda, sign-in, decisions, state of the minutes", tag=TAG,
           responses={200: out.MeetingOut}, errors=(404,))
def get_meeting(meeting_id: int):
    return jsonify(meeting_json(access.meeting_or_404(g.api_user, meeting_id)))


@bp.route("/meetings/<int:meeting_id>/agenda-items", methods=["POST"])
@operation("Propose an agenda item (a liaison for the own department, or the office)", tag=TAG,
           body=schemas.AgendaItemIn, responses={201: out.AgendaItemOut}, errors=(403, 404, 409))
def propose_item(meeting_id: int):
    meeting = access.meeting_or_404(g.api_user, meeting_id)
    data = body()
    item = svc.propose_item(meeting, title=data["title"], description=data["description"],
                            department=data["department"], by=g.api_user)
    db.session.commit()
    return jsonify({"id": item.id, "title": item.title, "department": item.department_code,
                    "status": item.status, "position": item.position}), 201


@bp.route("/meetings/<int:meeting_id>/transitions", methods=["POST"])
@operation("Move the meeting to another state (open, lock, held, publish the minutes, cancel)", tag=TAG,
           body=schemas.TransitionIn, responses={200: out.MeetingOut}, errors=(403, 404, 409))
def transition(meeting_id: int):
    meeting = access.meeting_or_404(g.api_user, meeting_id)
    data = body()
    svc.transition(meeting, data["to"], by=g.api_user, reason=data["reason"])
    db.session.commit()
    return jsonify(meeting_json(meeting))
