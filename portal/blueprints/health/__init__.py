"""GET /healthz: the database and the job backend, and their state.

Anyone (a load balancer, an uptime monitor) gets the status alone: ``{"status":
"ok"}`` with 200, or ``{"status": "degraded"}`` with 503. The backends and the
operational details (queue length, failed jobs, and whatever else is declared in
:data:`DETAILS`) are shown only to a monitor that sends the configured
``HEALTHZ_TOKEN`` as a bearer token, or to a logged-in office administrator of a
root unit (the province): they are the whole portal's, not one unit's.
"""
from __future__ import annotations

import hmac
from typing import Any, Callable

from flask import Blueprint, current_app, jsonify, request, send_from_directory
from flask_login import current_user
from sqlalchemy import text

from portal.extensions import db
from portal.queue import backend_name, redis_connection, rq_queue

bp = Blueprint("health", __name__)

#: name -> function returning a JSON-able figure (usually a dict) for the
#: detailed answer. Add one with ``@detail("outbox")``; a function that raises
#: is reported as ``{"error": "<ExceptionName>"}`` and never breaks the check.
DETAILS: dict[str, Callable[[], Any]] = {}


def detail(name: str):
    def register(fn: Callable[[], Any]) -> Callable[[], Any]:
        DETAILS[name] = fn
        return fn
    return register


@detail("queue")
def _queue() -> dict:
    """Queue length and failed jobs, from RQ when Redis is used."""
    if backend_name() != "redis":
        return {"backend": "embedded"}
    queue = rq_queue()
    return {"backend": "redis", "name": queue.name, "queued": queue.count,
            "failed": queue.failed_job_registry.count, "started": queue.started_job_registry.count,
            "scheduled": queue.scheduled_job_registry.count}


@detail("outbox")
def _outbox() -> dict:
    """Jobs saved with their write but not yet handed to Redis (portal/queue.py), the age of
    the oldest, and this process's enqueue failures."""
    from portal.queue import outbox_status

    return outbox_status()


@detail("metrics")
def _metrics() -> dict:
    """Stored figures: units waiting for a refresh, and what the last reconcile found."""
    from portal.metrics import dirty_unit_ids, last_reconcile

    last = last_reconcile()
    return {"dirty_units": len(dirty_unit_ids()),
            "last_reconcile_at": last.at.replace(microsecond=0).isoformat() + "Z" if last else None,
            "last_reconcile_figures": last.figures if last else None,
            "last_reconcile_drifted": last.drifted if last else None}


def _may_see_details() -> bool:
    token = current_app.config.get("HEALTHZ_TOKEN")
    scheme, _sep, sent = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and sent.strip():
        return hmac.compare_digest(sent.strip().encode(), token.encode())
    from portal import access
    from portal.models import Role

    try:  # the session's user comes from the database, which may be the thing that is down
        return current_user.is_authenticated and current_user.is_active and any(
            m.role == Role.OFFICE_ADMIN.value and m.unit.parent_id is None
            for m in access.memberships_of(current_user))
    except Exception:  # noqa: BLE001
        db.session.rollback()
        return False


def _details() -> dict:
    figures = {}
    for name, fn in DETAILS.items():
        try:
            figures[name] = fn()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            figures[name] = {"error": exc.__class__.__name__}
    return figures


@bp.route("/favicon.ico")
def favicon():
    """The icon browsers ask for on their own (the pages link /static/favicon.svg and .ico)."""
    return send_from_directory(current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon",
                               max_age=86400)


@bp.route("/healthz")
def healthz():
    database = {"backend": db.engine.dialect.name, "ok": True}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        db.session.rollback()
        database.update(ok=False, error=exc.__class__.__name__)
    jobs = {"backend": backend_name(), "ok": True}
    if jobs["backend"] == "redis":
        try:
            redis_connection().ping()
        except Exception as exc:  # noqa: BLE001
            jobs.update(ok=False, error=exc.__class__.__name__)
    ok = database["ok"] and jobs["ok"]
    body = {"status": "ok" if ok else "degraded"}
    if _may_see_details():
        body.update(database=database, jobs=jobs, details=_details())
    response = jsonify(body)
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response
