"""Briefings (工作简报) over the API: ask for a unit's briefing for a period (a job builds it) and
follow it. The same rules as the pages: the readers of the units below a unit with units below
see its briefings (anyone else gets 404), its office issues them (403 for a viewer)."""
from __future__ import annotations

from flask import abort, g, jsonify, url_for

from portal import access
from portal.blueprints.api import bp, body, operation
from portal.extensions import db
from portal.schemas import briefings as schemas
from portal.services import briefings as svc

TAG = "figures"


@bp.route("/units/<code>/briefings", methods=["POST"])
@operation("Issue a briefing (工作简报) of the unit for a period: a job builds the Word document", tag=TAG,
           body=schemas.BriefingIn, responses={202: schemas.BriefingCreatedOut}, errors=(403, 404),
           description="The briefing takes the unit's next issue number of the year (第N期). Follow it with "
                       "`GET /api/v1/briefings/{id}`.")
def create_briefing(code: str):
    unit = access.unit_or_404(g.api_user, code)
    if not access.can_read_briefings(g.api_user, unit):
        abort(404)
    briefing = svc.request_briefing(unit, body(), by=g.api_user)
    db.session.commit()
    response = jsonify({"id": briefing.id, "state": briefing.state})
    response.status_code = 202
    response.headers["Location"] = url_for("api.get_briefing", briefing_id=briefing.id)
    return response


@bp.route("/briefings/<int:briefing_id>")
@operation("A briefing's state, issue number and, once done, where to download it", tag=TAG,
           responses={200: schemas.BriefingOut}, errors=(404,))
def get_briefing(briefing_id: int):
    from portal.workspace_urls import workspace_url

    briefing = access.briefing_or_404(g.api_user, briefing_id)
    url = None
    if briefing.state == "done":
        url = workspace_url(briefing.unit, "workspace.dashboard.download_briefing", briefing_id=briefing.id,
                            _external=True)
    return jsonify({"id": briefing.id, "state": briefing.state, "number": briefing.number, "download_url": url})
