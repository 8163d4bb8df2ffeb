"""Jobs run after the commit: in-process without Redis, on a real RQ worker with it."""
from __future__ import annotations

import os

from sqlalchemy import func, select

from portal import create_app
from portal.extensions import db
from portal.models import Membership, Notification
from tests.conftest import Browser, _test_config, run_worker_burst

LOCAL_REDIS = "redis://127.0.0.1:6379/2"


def _grant_through_the_page(client):
    b = Browser(client)
    assert b.login("office-410105").status_code == 302
    response = b.post_form("/district/410105/accounts/new", {
        "username": "queued-user", "display_name": "排队用户", "password": "initial-pass-1",
        "unit_code": "410105002", "role": "liaison", "department": "youth"})
    assert response.status_code == 302


def _notifications(app):
    with app.app_context():
        try:
            return db.session.scalar(select(func.count(Notification.id)))
        finally:
            db.session.remove()


def test_job_runs_in_process_without_redis(app, people):
    embedded = create_app(dict(_test_config(), REDIS_URL=None))
    _grant_through_the_page(embedded.test_client())
    assert _notifications(app) == 1  # ran right after the commit, no worker needed


def test_rolled_back_write_sends_nothing(app, people, run_in_app):
    from portal.queue import enqueue

    def failing_write():
        enqueue("jobs.notifications.notify_membership_granted", 1)
        db.session.rollback()
    run_in_app(failing_write)
    assert _notifications(app) == 0


def test_job_runs_on_a_real_rq_worker_against_local_redis(app, people):
    url = os.environ.get("REDIS_URL") or LOCAL_REDIS
    queued = create_app(dict(_test_config(), REDIS_URL=url, RQ_QUEUE="portal-test"))
    from portal.queue import rq_queue

    queue = rq_queue(queued)
    queue.empty()
    _grant_through_the_page(queued.test_client())
    assert queue.count == 1            # queued after the commit ...
    assert _notifications(app) == 0    # ... and not yet run
    result = run_worker_burst({"REDIS_URL": url, "RQ_QUEUE": "portal-test"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert _notifications(app) == 1
    assert queue.count == 0
    # Safe to run twice: the same job again creates no second notification.
    with queued.app_context():
        mid = db.session.scalar(select(Membership.id).join(Membership.user).where(
            Membership.department_code == "youth"))
        from jobs.notifications import notify_membership_granted

        assert notify_membership_granted(mid) is False
        db.session.remove()
    assert _notifications(app) == 1
