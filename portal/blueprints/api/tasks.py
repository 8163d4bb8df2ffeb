"""Tasks over the API: the same services and access rules as the pages."""
from __future__ import annotations


from flask import abort, g, jsonify
from sqlalchemy import select

from portal import access
from portal.clock import local_today
from portal.blueprints.api import body, bp, operation, query
from portal.extensions import db
from portal.models import CascadeRun, Task
from portal.pagination import paginate
from portal.schemas import api as out
from portal.schemas import tasks as schemas
from portal.services import tasks as svc

TAG = "tasks"


def _num(value):
    return float(value) if value is not None else None


def task_json(task: Task, *, full: bool = True) -> dict:
    body = {
        "id": task.id, "unit_code": task.unit.code, "title": task.title, "status": task.status,
        "progress": _num(task.progress), "actual_value": _num(task.actual_value),
        "lead_department": task.lead_department_code, "co_departments": list(task.co_department_codes or []),
        "due_date": task.due_date.isoformat(), "overdue": task.is_overdue(local_today()),
        "weight": _num(task.weight), "parent_id": task.parent_id, "decision_id": task.decision_id,
        "target": ({"name": task.target_name, "unit": task.target_unit, "value": _num(task.target_value),
                    "counted_from": svc.counted_from_json(task)} if task.target_name else None),
        "version": task.version,
    }
    if full:
        children = db.session.scalars(access.visible_children(g.api_user, task)).all()
        body["description"] = task.description
        body["children"] = [{"id": c.id, "unit_code": c.unit.code, "status": c.status, "progress": _num(c.progress)}
                            for c in children]
        body["reports"] = [{"id": r.id, "percent": _num(r.percent), "actual_value": _num(r.actual_value),
                            "narrative": r.narrative, "department": r.department_code,
                            "at": r.at.isoformat(timespec="seconds") + "Z"} for r in task.reports]
        body["supervision_notices"] = [{"id": n.id, "from_unit": n.from_unit.code, "text": n.text,
                                        "response": n.response} for n in task.notices]
    return body


@bp.route("/units/<code>/tasks", methods=["POST"])
@operation("Issue a task of the unit", tag=TAG, body=schemas.TaskIn, responses={201: out.TaskOut},
           errors=(403, 404, 409))
def create_task(code: str):
    unit = access.unit_or_404(g.api_user, code)
    task = svc.create_task(unit, body(), by=g.api_user)
    db.session.commit()
    return jsonify(task_json(task)), 201


@bp.route("/units/<code>/tasks")
@operation("The unit's tasks (or its subtree's, or the caller's departments'), filtered", tag=TAG,
           query=schemas.TaskFilter, responses={200: out.TaskListOut}, errors=(404,))
def list_tasks(code: str):
    unit = access.unit_or_404(g.api_user, code)
    f = query()
    page, per_page = f["page"], f["per_page"]
    stmt = svc.task_list(unit, g.api_user, today=local_today(), scope=f["scope"], status=f["status"] or "",
                         department=f["department"] or "", due_within=f["due_within"], overdue=f["overdue"],
                         q=f["q"])
    pagination = paginate(stmt, per_page=per_page, page=page, max_per_page=200)
    return jsonify({"items": [task_json(t, full=False) for t in pagination.items], "page": page,
                    "per_page": per_page, "total": pagination.total, "total_capped": pagination.capped})


@bp.route("/tasks/<int:task_id>")
@operation("A task with its instances below, reports and supervision notices", tag=TAG,
           responses={200: out.TaskOut}, errors=(404,))
def get_task(task_id: int):
    return jsonify(task_json(access.task_or_404(g.api_user, task_id)))


@bp.route("/tasks/<int:task_id>/cascade", methods=["POST"])
@operation("Pass the task down (逐级分解); a job creates the instances", tag=TAG, body=schemas.CascadeIn,
           responses={202: out.CascadeRunOut}, errors=(403, 404, 409))
def cascade(task_id: int):
    task = access.task_or_404(g.api_user, task_id)
    run = svc.cascade_task(task, body()["to"], by=g.api_user)
    db.session.commit()
    db.session.refresh(run)
    return jsonify(run_json(run)), 202


@bp.route("/tasks/<int:task_id>/cascade/<int:run_id>")
@operation("The progress of a cascade", tag=TAG, responses={200: out.CascadeRunOut}, errors=(404,))
def cascade_state(task_id: int, run_id: int):
    task = access.task_or_404(g.api_user, task_id)
    run = db.session.scalar(select(CascadeRun).where(CascadeRun.id == run_id, CascadeRun.task_id == task.id))
    if run is None:
        abort(404)
    return jsonify(run_json(run))


def run_json(run: CascadeRun) -> dict:
    return {"run_id": run.id, "state": run.state, "total": run.total, "done": run.done, "error": run.error}


@bp.route("/tasks/<int:task_id>/reports", methods=["POST"])
@operation("Report progress", tag=TAG, body=schemas.ReportIn, responses={201: out.ReportCreatedOut},
           errors=(403, 404, 409))
def report(task_id: int):
    task = access.task_or_404(g.api_user, task_id)
    row = svc.report_progress(task, body(), by=g.api_user)
    db.session.commit()
    return jsonify({"id": row.id, "percent": _num(row.percent), "actual_value": _num(row.actual_value),
                    "narrative": row.narrative, "task": task_json(task, full=False)}), 201


@bp.route("/tasks/<int:task_id>/submit", methods=["POST"])
@operation("Submit the task for review (验收)", tag=TAG, body=schemas.VersionIn,
           responses={200: out.TaskSummaryOut}, errors=(403, 404, 409))
def submit(task_id: int):
    task = access.task_or_404(g.api_user, task_id)
    svc.submit_task(task, by=g.api_user, version=body()["version"])
    db.session.commit()
    return jsonify(task_json(task, full=False))


@bp.route("/tasks/<int:task_id>/review", methods=["POST"])
@operation("Accept or return a submitted task (the assigning unit)", tag=TAG, body=schemas.ReviewIn,
           responses={200: out.TaskSummaryOut}, errors=(403, 404, 409))
def review(task_id: int):
    task = access.task_or_404(g.api_user, task_id)
    data = body()
    svc.review_task(task, data["decision"], data["comment"], by=g.api_user, version=data["version"])
    db.session.commit()
    return jsonify(task_json(task, full=False))
