"""The activity register over the API: the same services and access rules as the pages."""
from __future__ import annotations

from flask import g, jsonify
from sqlalchemy.orm import selectinload

from portal import access
from portal.blueprints.api import body, bp, operation, query
from portal.extensions import db
from portal.models import Activity
from portal.schemas import activities as schemas
from portal.services import activities as svc
from portal.workspace_urls import workspace_url

TAG = "activities"
#: Werkzeug's router answers 405 rather than 404 when an id beyond the database's range is sent with a
#: method other than GET to a path that also has a GET route.
ID_RANGE = "An id beyond 2147483647 names no activity: 405 (the router's answer), like 404."


def activity_json(a: Activity) -> dict:
    def url(endpoint, **values):
        return workspace_url(a.unit, endpoint, activity_id=a.id, **values)

    return {
        "id": a.id, "unit_code": a.unit.code, "title": a.title, "category": a.category_code,
        "start_date": a.start_date.isoformat(), "end_date": a.end_date.isoformat(), "place": a.place,
        "lead_department": a.department_code, "co_departments": list(a.co_department_codes or []),
        "participants": {"youth": a.youth, "elders": a.elders, "others": a.others},
        "person_times": a.person_times, "volunteers": a.volunteers, "volunteer_hours": float(a.volunteer_hours),
        "funds": float(a.funds), "donated_goods": float(a.donated_goods), "narrative": a.narrative,
        "volunteer_members": [{"member_id": v.member_id, "name": v.member.name, "hours": float(v.hours)}
                              for v in a.volunteer_links],
        "files": [{"id": f.id, "name": f.original_name, "photo": f.is_photo,
                   "url": url("workspace.activities.file", file_id=f.id),
                   "thumbnail_url": url("workspace.activities.thumbnail", file_id=f.id) if f.thumb_name else None}
                  for f in a.files],
        "version": a.version,
    }


@bp.route("/units/<code>/activities", methods=["POST"])
@operation("Register an activity of the unit (person_times is computed)", tag=TAG, body=schemas.ActivityIn,
           responses={201: schemas.ActivityOut}, errors=(403, 404))
def create_activity(code: str):
    unit = access.unit_or_404(g.api_user, code)
    activity = svc.create_activity(unit, body(), by=g.api_user)
    db.session.commit()
    return jsonify(activity_json(activity)), 201


@bp.route("/units/<code>/activities")
@operation("The unit's activity register (or its subtree's), filtered and paginated", tag=TAG,
           query=schemas.ActivityFilter, responses={200: schemas.ActivityListOut}, errors=(404,))
def list_activities(code: str):
    unit = access.unit_or_404(g.api_user, code)
    f = query()
    stmt = svc.activity_list(unit, g.api_user, scope=f["scope"], period=f["period"] or None, category=f["category"],
                             department=f["department"], below=f["unit"] or None, q=f["q"])
    page, per_page = f["page"], f["per_page"]
    pagination = db.paginate(stmt.options(selectinload(Activity.files), selectinload(Activity.volunteer_links)),
                             page=page, per_page=per_page, error_out=False)
    return jsonify({"items": [activity_json(a) for a in pagination.items], "page": page, "per_page": per_page,
                    "total": pagination.total})


@bp.route("/activities/<int:activity_id>")
@operation("An activity", tag=TAG, responses={200: schemas.ActivityOut}, errors=(404,))
def get_activity(activity_id: int):
    return jsonify(activity_json(access.activity_or_404(g.api_user, activity_id)))


@bp.route("/activities/<int:activity_id>", methods=["PATCH"])
@operation("Change an activity: the fields sent, with the version seen (409 when it changed since)", tag=TAG,
           body=schemas.ActivityPatch, responses={200: schemas.ActivityOut}, errors=(403, 404, 405, 409),
           description=ID_RANGE)
def update_activity(activity_id: int):
    activity = access.activity_or_404(g.api_user, activity_id)
    data = body()
    svc.update_activity(activity, data, by=g.api_user, version=data["version"], partial=True)
    db.session.commit()
    return jsonify(activity_json(activity))


@bp.route("/activities/<int:activity_id>", methods=["DELETE"])
@operation("Delete an activity with a reason (kept in the audit trail)", tag=TAG, body=schemas.DeleteIn,
           responses={204: None}, errors=(403, 404, 405, 409), description=ID_RANGE)
def delete_activity(activity_id: int):
    activity = access.activity_or_404(g.api_user, activity_id)
    data = body()
    svc.delete_activity(activity, data["reason"], by=g.api_user, version=data["version"])
    db.session.commit()
    return "", 204
