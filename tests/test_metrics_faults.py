"""Faults that lose no figure: Redis down when a counted write commits, and a worker
killed in the middle of a refresh."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select, text

from portal import create_app, metrics
from portal.extensions import db
from portal.models import OutboxJob, Task, Unit, User
from portal.services import tasks as svc
from tests.conftest import ROOT, _test_config, run_worker_burst
from tests.test_faults import DEAD_REDIS, ON_POSTGRES, _descendants, needs_postgres_and_redis


def _report(app, people, task_id, percent):
    with app.app_context():
        try:
            svc.report_progress(db.session.get(Task, task_id), {"percent": percent},
                                by=db.session.get(User, people["edu-410105001"].id))
            db.session.commit()
        finally:
            db.session.remove()


def _street_task(run_in_app, tree, people):
    return run_in_app(lambda: svc.create_task(db.session.get(Unit, tree["410105001"].id), {
        "title": "街道任务", "lead_department": "edu", "due_date": "2099-01-01"},
        by=db.session.get(User, people["office-410105001"].id)).id)


def _province(run_in_app, tree):
    return run_in_app(lambda: metrics.read(db.session.get(Unit, tree["41"].id)))


def test_redis_down_at_the_write_keeps_the_unit_dirty_and_the_reconcile_repairs_it(
        app, tree, people, run_in_app, run_jobs, caplog):
    task_id = _street_task(run_in_app, tree, people)
    run_jobs()
    assert _province(run_in_app, tree)["metrics"]["reports.received"] == 0
    down = create_app(dict(_test_config(), REDIS_URL=DEAD_REDIS, RQ_QUEUE="portal-test-metrics",
                           HEALTHZ_TOKEN="monitor-token"))
    logging.getLogger("portal.queue").disabled = False
    caplog.set_level(logging.ERROR, logger="portal.queue")
    _report(down, people, task_id, 70)  # answers success: no exception
    assert any("kept in the outbox" in r.getMessage() for r in caplog.records)
    # The report is saved, the refresh job waits in the outbox, the figures say they are stale.
    assert run_in_app(lambda: db.session.scalars(select(OutboxJob.path)).all()) == ["jobs.metrics.refresh_unit"]
    stale = _province(run_in_app, tree)
    assert stale["stale"] is True and stale["metrics"]["reports.received"] == 0

    with down.app_context():  # the reconcile (cron, the scheduler) repairs it without Redis
        result = metrics.reconcile()
        db.session.remove()
    assert result["drifted"] >= 4 and result["dirty_units"] == 1  # the street and its three ancestors
    fresh = _province(run_in_app, tree)
    assert fresh["stale"] is False and fresh["metrics"]["reports.received"] == 1
    assert fresh["indicators"]["progress"] == 70.0
    health = down.test_client().get("/healthz", headers={"Authorization": "Bearer monitor-token"}).get_json()
    assert health["details"]["metrics"]["dirty_units"] == 0
    assert health["details"]["metrics"]["last_reconcile_drifted"] == result["drifted"]


@needs_postgres_and_redis
def test_worker_killed_mid_refresh_is_retried_and_gives_the_same_figures(app, tree, people, run_in_app, run_jobs):
    from portal.metrics.engine import LOCK_UNIT
    from portal.queue import rq_queue

    task_id = _street_task(run_in_app, tree, people)
    run_jobs()
    # Hold the province's refresh lock: the refresh job writes the street's figures, then waits there.
    with app.app_context():
        blocker = db.engine.connect()
        blocker.execute(text("SELECT pg_advisory_lock(:ns, :id)"), {"ns": LOCK_UNIT, "id": tree["41"].id})
        blocker.commit()
    _report(app, people, task_id, 55)
    env = dict(os.environ, RQ_HEARTBEAT_SECONDS="1", RQ_ABANDONED_AFTER="3", PYTHONUNBUFFERED="1")
    env.setdefault("SECRET_KEY", _test_config()["SECRET_KEY"])
    worker = subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        queue = rq_queue(app)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                j.startswith("metrics-refresh-") for j in queue.started_job_registry.get_job_ids()):
            assert worker.poll() is None, worker.stderr.read()[-3000:]
            time.sleep(0.1)
        time.sleep(0.5)  # inside the refresh, waiting for the province
        horses = _descendants(worker.pid)
        assert horses, "the worker should have forked a work horse"
        for pid in [worker.pid] + horses:
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        blocker.execute(text("SELECT pg_advisory_unlock_all()"))
        blocker.close()
    # The killed refresh wrote nothing: the figures still wait for the report.
    assert _province(run_in_app, tree)["metrics"]["reports.received"] == 0
    assert _province(run_in_app, tree)["stale"] is True
    time.sleep(3.5)
    result = run_worker_burst({"RQ_HEARTBEAT_SECONDS": "1", "RQ_ABANDONED_AFTER": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "abandoned jobs" in result.stderr
    figures = _province(run_in_app, tree)
    assert figures["stale"] is False and figures["metrics"]["reports.received"] == 1
    assert figures["indicators"]["progress"] == 55.0
    from tests.test_metrics_consistency import _expected_table

    assert run_in_app(metrics.stored_values) == run_in_app(_expected_table)
