"""GET /healthz: the database and the job backend, and their state."""
from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from portal.extensions import db
from portal.queue import backend_name, redis_connection

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    database = {"backend": db.engine.dialect.name, "ok": True}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        database.update(ok=False, error=exc.__class__.__name__)
    jobs = {"backend": backend_name(), "ok": True}
    if jobs["backend"] == "redis":
        try:
            redis_connection().ping()
        except Exception as exc:  # noqa: BLE001
            jobs.update(ok=False, error=exc.__class__.__name__)
    ok = database["ok"] and jobs["ok"]
    return jsonify({"status": "ok" if ok else "degraded", "database": database, "jobs": jobs}), 200 if ok else 503
