"""Faults that lose nothing: Redis down at the commit, a worker killed mid-job,
the database going away under a request."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text

from portal import create_app
from portal.extensions import db
from portal.models import CascadeRun, Membership, Notification, OutboxJob, Role, Task, Unit, User
from tests.conftest import ROOT, Browser, _test_config, run_worker_burst

DEAD_REDIS = "redis://127.0.0.1:6390/0"  # nothing listens there: Redis is "down"
LIVE_REDIS = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/2"
ON_POSTGRES = (os.environ.get("DATABASE_URL") or "").startswith("postgres")
needs_postgres_and_redis = pytest.mark.skipif(
    not (ON_POSTGRES and os.environ.get("REDIS_URL")), reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL")


@pytest.fixture(autouse=True)
def _restore_limiter():
    """The apps made here init the one limiter object with their own storage; give the
    suite's app its storage back afterwards (the clean-up resets the limiter through it)."""
    from portal.extensions import limiter

    saved = dict(limiter.__dict__)
    yield
    limiter.__dict__.clear()
    limiter.__dict__.update(saved)


def _count(app, stmt):
    with app.app_context():
        try:
            return db.session.scalar(stmt)
        finally:
            db.session.remove()


def _grant_through_the_page(client) -> int:
    b = Browser(client)
    assert b.login("office-410105").status_code == 302
    return b.post_form("/district/410105/accounts/new", {
        "username": "queued-user", "display_name": "排队用户", "password": "initial-pass-1",
        "unit_code": "410105002", "role": "liaison", "department": "youth"}).status_code


# --- Redis down when a write commits -------------------------------------------------

def test_write_answers_success_and_keeps_its_job_when_redis_is_down(app, people, caplog):
    down = create_app(dict(_test_config(), REDIS_URL=DEAD_REDIS, RQ_QUEUE="portal-test-outbox",
                           HEALTHZ_TOKEN="monitor-token"))
    logging.getLogger("portal.queue").disabled = False  # alembic's fileConfig in the fixture disables it
    caplog.set_level(logging.ERROR, logger="portal.queue")
    # The user sees the write succeed (redirect to the new account), not an error page ...
    assert _grant_through_the_page(down.test_client()) == 302
    # ... and it did happen,
    assert _count(app, select(func.count(Membership.id)).where(Membership.department_code == "youth")) == 1
    # the job is kept in the outbox, not lost,
    with app.app_context():
        rows = db.session.execute(select(OutboxJob.path, OutboxJob.args)).all()
        db.session.remove()
    assert rows == [("jobs.notifications.notify_membership_granted", [rows[0][1][0]])]
    # the failure is logged,
    assert any("kept in the outbox" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    # and /healthz shows it: degraded, and the waiting job in the detailed part.
    health = down.test_client().get("/healthz", headers={"Authorization": "Bearer monitor-token"})
    assert health.status_code == 503
    body = health.get_json()
    assert body["status"] == "degraded" and body["jobs"]["ok"] is False
    outbox = body["details"]["outbox"]
    assert outbox["pending"] == 1 and outbox["enqueue_failures"] >= 1 and outbox["last_error"] == "ConnectionError"
    assert _count(app, select(func.count(Notification.id))) == 0  # nobody told yet

    # Redis is back: the sweep sends the job, a real worker runs it, the outbox is empty.
    back = create_app(dict(_test_config(), REDIS_URL=LIVE_REDIS, RQ_QUEUE="portal-test-outbox"))
    from portal.queue import resend_outbox, rq_queue

    rq_queue(back).empty()
    assert resend_outbox(back, older_than=0) == {"sent": 1, "left": 0}
    assert rq_queue(back).count == 1
    result = run_worker_burst({"REDIS_URL": LIVE_REDIS, "RQ_QUEUE": "portal-test-outbox"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert _count(app, select(func.count(Notification.id))) == 1  # the new liaison was told
    assert _count(app, select(func.count(OutboxJob.id))) == 0


def test_outbox_sweep_keeps_the_job_while_redis_stays_down(app, people):
    down = create_app(dict(_test_config(), REDIS_URL=DEAD_REDIS, RQ_QUEUE="portal-test-outbox"))
    assert _grant_through_the_page(down.test_client()) == 302
    from portal.queue import resend_outbox

    assert resend_outbox(down, older_than=0) == {"sent": 0, "left": 1}
    with app.app_context():
        row = db.session.scalars(select(OutboxJob)).one()
        assert row.attempts == 1 and row.last_error.startswith("ConnectionError")
        db.session.remove()


def test_rolled_back_write_leaves_nothing_in_the_outbox(app, people):
    queued = create_app(dict(_test_config(), REDIS_URL=DEAD_REDIS, RQ_QUEUE="portal-test-outbox"))
    from portal.queue import enqueue

    with queued.app_context():
        enqueue("jobs.notifications.notify_membership_granted", 1)
        assert db.session.scalar(select(func.count(OutboxJob.id))) == 1  # inside the write's transaction
        db.session.rollback()
        db.session.remove()
    assert _count(app, select(func.count(OutboxJob.id))) == 0


def test_sent_jobs_leave_the_outbox(app, people):
    live = create_app(dict(_test_config(), REDIS_URL=LIVE_REDIS, RQ_QUEUE="portal-test-outbox"))
    from portal.queue import rq_queue

    rq_queue(live).empty()
    assert _grant_through_the_page(live.test_client()) == 302
    assert rq_queue(live).count == 1
    assert _count(app, select(func.count(OutboxJob.id))) == 0
    rq_queue(live).empty()


# --- The database goes away ---------------------------------------------------------

def _dead_database_app():
    if ON_POSTGRES:
        url = "postgresql+psycopg://postgres@127.0.0.1:5439/portal_h2"  # a closed port
    else:
        url = "sqlite:////nonexistent-portal-dir/gone.sqlite3"  # cannot be opened
    return create_app(dict(_test_config(), SQLALCHEMY_DATABASE_URI=url, REDIS_URL=None,
                           SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "connect_args": (
                               {"connect_timeout": 2} if ON_POSTGRES else {})}))


def test_database_down_answers_503_with_a_retry_hint_not_a_stack_trace(app):
    dead = _dead_database_app()
    client = dead.test_client()
    # API: JSON error body.
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer some-token"})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    error = response.get_json()["error"]
    assert error["code"] == "service_unavailable" and "数据库" in error["message"]
    # Pages: the error page, in the user's language.
    b = Browser(client)
    response = b.post_form("/login", {"username": "office-41", "password": "x"})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
    page = response.get_data(as_text=True)
    assert "数据库" in page and "Traceback" not in page and "OperationalError" not in page
    b.get("/login?lang=en")
    page = b.post_form("/login", {"username": "office-41", "password": "x"}).get_data(as_text=True)
    assert "cannot reach its database" in page


@pytest.mark.skipif(not ON_POSTGRES, reason="terminates PostgreSQL backends")
def test_pool_recovers_by_itself_after_the_database_dropped_its_connections(app, people):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    def terminate():
        """What a database restart does to the app: every connection it holds is gone."""
        engine = create_engine(db.engine.url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                killed = conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
                conn.commit()
        finally:
            engine.dispose()
        return killed

    # Without pre-ping, the request that meets a dead connection answers 503 (the
    # connection dies under it) and the next one works again: the pool drops them.
    fragile = create_app(dict(_test_config(), SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": False}))
    b = Browser(fragile.test_client())
    assert b.login("office-410105").status_code == 302
    assert b.get("/district/410105/").status_code == 200
    with fragile.app_context():
        assert terminate() >= 1
    response = b.get("/district/410105/")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert b.get("/district/410105/").status_code == 200

    # With pre-ping (the configuration), nobody even sees the 503.
    b = Browser(app.test_client())
    assert b.login("office-410105").status_code == 302
    assert b.get("/district/410105/").status_code == 200
    with app.app_context():
        assert terminate() >= 1
    assert b.get("/district/410105/").status_code == 200


# --- A worker killed mid-job ---------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    found = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return found
    for child in children:
        found += [child] + _descendants(child)
    return found


@needs_postgres_and_redis
def test_worker_killed_mid_cascade_is_retried_and_every_street_has_one_instance(app, run_in_app):
    from portal.cli import DEFAULT_DIVISIONS
    from portal.services import tasks as svc
    from portal.services.units import import_units, load_file
    from jobs.tasks import BATCH

    def setup():
        import_units(load_file(DEFAULT_DIVISIONS))
        db.session.flush()
        user = User(username="office-41", display_name="省办", active=True)
        user.set_password("correct-horse-1")
        db.session.add(user)
        db.session.flush()
        db.session.add(Membership(user_id=user.id, unit_id=Unit.by_code("41").id, role=Role.OFFICE_ADMIN.value))
        db.session.flush()
        task = svc.create_task(Unit.by_code("41"), {"title": "全省社区教育示范街道创建", "lead_department": "edu",
                                                    "due_date": (date.today() + timedelta(days=90)).isoformat()},
                               by=user)
        run = svc.cascade_task(task, "streets", by=user)
        streets = svc.units_to_receive(task, "streets")
        return task.id, run.id, streets[BATCH + 7].id  # a street of the second batch
    task_id, run_id, second_batch_street = run_in_app(setup)

    env = dict(os.environ, RQ_HEARTBEAT_SECONDS="1", RQ_ABANDONED_AFTER="3", PYTHONUNBUFFERED="1")
    env.setdefault("SECRET_KEY", _test_config()["SECRET_KEY"])
    # Hold the second batch: lock one of its streets so the job's insert waits on it (FK check).
    with app.app_context():
        blocker = db.engine.connect()
        blocker.execute(text("SELECT id FROM units WHERE id = :id FOR UPDATE"), {"id": second_batch_street})
    worker = subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = run_in_app(lambda: (lambda r: (r.state, r.done))(db.session.get(CascadeRun, run_id)))
            if state[1] >= BATCH:
                break
            assert worker.poll() is None, worker.stderr.read()[-3000:]
            time.sleep(0.1)
        time.sleep(0.5)  # the job is now inside the second batch, waiting for the street
        assert state == ("running", BATCH)
        # The machine went away: the worker (which runs the job in its own process) and
        # every process it started (RQ's scheduler; with --fork, the work horse).
        for pid in [worker.pid] + _descendants(worker.pid):
            os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        blocker.rollback()
        blocker.close()
    # The killed job's uncommitted batch is gone with it; the committed one stays.
    time.sleep(0.5)
    assert run_in_app(lambda: db.session.scalar(
        select(func.count(Task.id)).where(Task.parent_id == task_id))) == BATCH
    assert run_in_app(lambda: db.session.get(CascadeRun, run_id).state) == "running"

    time.sleep(3.5)  # no heartbeat for longer than RQ_ABANDONED_AFTER
    result = run_worker_burst({"RQ_HEARTBEAT_SECONDS": "1", "RQ_ABANDONED_AFTER": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "abandoned jobs" in result.stderr  # requeued by the portal's check, then run again

    assert run_in_app(lambda: (lambda r: (r.state, r.done, r.total))(db.session.get(CascadeRun, run_id))) == (
        "finished", 2586, 2586)
    per_street = run_in_app(lambda: db.session.execute(
        select(Task.unit_id, func.count(Task.id)).where(Task.parent_id == task_id).group_by(Task.unit_id)).all())
    streets = run_in_app(lambda: db.session.scalar(select(func.count(Unit.id)).where(Unit.tier == "street")))
    assert streets == 2586
    assert len(per_street) == 2586 and {n for _unit, n in per_street} == {1}


def test_login_still_works_when_redis_is_down(app, people):
    """The login throttle keeps its counts in Redis; with Redis down people can still log in."""
    down = create_app(dict(_test_config(), REDIS_URL=DEAD_REDIS, RATELIMIT_STORAGE_URI=DEAD_REDIS))
    b = Browser(down.test_client())
    assert b.login("office-410105").status_code == 302
    assert b.get("/district/410105/").status_code == 200


def test_discarded_jobs_leave_no_outbox_rows(app, people):
    queued = create_app(dict(_test_config(), REDIS_URL=DEAD_REDIS, RQ_QUEUE="portal-test-outbox"))
    from portal.queue import discard_pending, enqueue

    with queued.app_context():
        enqueue("jobs.notifications.notify_membership_granted", 1)
        enqueue("jobs.notifications.notify_membership_granted", 2)
        assert discard_pending() == 2
        db.session.commit()
        db.session.remove()
    assert _count(app, select(func.count(OutboxJob.id))) == 0
