"""Tasks over the API: the same services and access rules as the pages."""
from __future__ import annotations


from flask import abort, g, jsonify, request
from flask_babel import gettext as _
from sqlalchemy import select

from portal import access
from portal.clock import local_today
from portal.blueprints.api import api_error, bp, json_body
from portal.extensions import db
from portal.models import CascadeRun, Task, TaskStatus
from portal.services import tasks as svc




def _num(value):
    return float(value) if value is not None else None


def task_json(task: Task, *, full: bool = True) -> dict:
    body = {
        "id": task.id, "unit_code": task.unit.code, "title": task.title, "status": task.status,
        "progress": _num(task.progress), "actual_value": _num(task.actual_value),
        "lead_department": task.lead_department_code, "co_departments": list(task.co_department_codes or []),
        "due_date": task.due_date.isoformat(), "overdue": task.is_overdue(local_today()),
        "weight": _num(task.weight), "parent_id": task.parent_id, "decision_id": task.decision_id,
        "target": ({"name": task.target_name, "unit": task.target_unit, "value": _num(task.target_value)}
                   if task.target_name else None),
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
def create_task(code: str):
    unit = access.unit_or_404(g.api_user, code)
    task = svc.create_task(unit, json_body(), by=g.api_user)
    db.session.commit()
    return jsonify(task_json(task)), 201


@bp.route("/units/<code>/tasks")
def list_tasks(code: str):
    unit = access.unit_or_404(g.api_user, code)
    args = request.args
    status = args.get("status") or ""
    if status and status not in {s.value for s in TaskStatus}:
        return api_error(400, _("status: unknown state %(state)s.", state=status), "status")
    due_within = None
    if args.get("due_within"):
        try:
            due_within = int(args["due_within"])
        except ValueError:
            return api_error(400, _("due_within must be a whole number of days."), "due_within")
    stmt = svc.task_list(unit, g.api_user, today=local_today(),
                         scope=args.get("scope") if args.get("scope") in svc.SCOPES else "unit", status=status,
                         department=args.get("department") or "", due_within=due_within,
                         overdue=args.get("overdue") in ("1", "true"), q=(args.get("q") or "").strip()[:100])
    page = max(args.get("page", 1, type=int) or 1, 1)
    per_page = min(max(args.get("per_page", 50, type=int) or 50, 1), 200)
    pagination = db.paginate(stmt, page=page, per_page=per_page, error_out=False)
    return jsonify({"items": [task_json(t, full=False) for t in pagination.items], "page": page,
                    "per_page": per_page, "total": pagination.total})


@bp.route("/tasks/<int:task_id>")
def get_task(task_id: int):
    return jsonify(task_json(access.task_or_404(g.api_user, task_id)))


@bp.route("/tasks/<int:task_id>/cascade", methods=["POST"])
def cascade(task_id: int):
    task = access.task_or_404(g.api_user, task_id)
    run = svc.cascade_task(task, json_body().get("to"), by=g.api_user)
    db.session.commit()
    db.session.refresh(run)
    return jsonify(run_json(run)), 202


@bp.route("/tasks/<int:task_id>/cascade/<int:run_id>")
def cascade_state(task_id: int, run_id: int):
    task = access.task_or_404(g.api_user, task_id)
    run = db.session.scalar(select(CascadeRun).where(CascadeRun.id == run_id, CascadeRun.task_id == task.id))
    if run is None:
        abort(404)
    return jsonify(run_json(run))


def run_json(run: CascadeRun) -> dict:
    return {"run_id": run.id, "state": run.state, "total": run.total, "done": run.done, "error": run.error}


@bp.route("/tasks/<int:task_id>/reports", methods=["POST"])
def report(task_id: int):
    task = access.task_or_404(g.api_user, task_id)
    row = svc.report_progress(task, json_body(), by=g.api_user)
    db.session.commit()
    return jsonify({"id": row.id, "percent": _num(row.percent), "actual_value": _num(row.actual_value),
                    "narrative": row.narrative, "task": task_json(task, full=False)}), 201


@bp.route("/tasks/<int:task_id>/submit", methods=["POST"])
def submit(task_id: int):
    task = access.task_or_404(g.api_user, task_id)
    data = request.get_json(silent=True) or {}
    svc.submit_task(task, by=g.api_user, version=data.get("version") if isinstance(data, dict) else None)
    db.session.commit()
    return jsonify(task_json(task, full=False))


@bp.route("/tasks/<int:task_id>/review", methods=["POST"])
def review(task_id: int):
    task = access.task_or_404(g.api_user, task_id)
    data = json_body()
    svc.review_task(task, str(data.get("decision", "")), data.get("comment"), by=g.api_user,
                    version=data.get("version"))
    db.session.commit()
    return jsonify(task_json(task, full=False))
