"""Task jobs: the cascade fan-out, the roll-up of progress, and notifications."""
from __future__ import annotations

import logging
from contextlib import contextmanager

from sqlalchemy import insert, select, text

from jobs import portal_job
from portal.extensions import db
from portal.metrics import mark_dirty
from portal.models import (CascadeRun, Membership, Notification, Role, SupervisionNotice, Task, TaskReview,
                           TaskStatus, User)
from portal.models._helpers import utcnow

log = logging.getLogger(__name__)


def _task_link(task: Task) -> str:
    return f"/{task.unit.tier}/{task.unit.code}/tasks/{task.id}/"


def _params(task: Task) -> dict:
    return {"title": task.title, "unit": task.unit.name, "due": task.due_date.isoformat()}


def _notify_many(kind: str, rows: list[tuple[int, int, str, dict]], occasion: str = "") -> int:
    """Set-based: rows of (user_id, task_id, link, params); skips what was already sent
    for the same kind and occasion (so a job that runs twice sends once)."""
    if not rows:
        return 0
    keys = [f"{kind}{occasion}:{task_id}:{user_id}" for user_id, task_id, _link, _params in rows]
    sent = set()
    for start in range(0, len(keys), 900):
        sent |= set(db.session.scalars(select(Notification.dedupe_key).where(
            Notification.dedupe_key.in_(keys[start:start + 900]))))
    now = utcnow()
    values = [{"user_id": user_id, "kind": kind, "params": params, "link": link, "dedupe_key": key, "created_at": now}
              for (user_id, _task_id, link, params), key in zip(rows, keys) if key not in sent]
    for start in range(0, len(values), 500):
        db.session.execute(insert(Notification), values[start:start + 500])
    return len(values)


BATCH = 500


def _fan_out(run: CascadeRun) -> int:
    """Insert the child instances set-based, in batches, committing after each so the
    page can show the progress."""
    from portal.services import tasks as svc

    task = db.session.get(Task, run.task_id)
    run.state = "running"
    db.session.commit()
    todo = svc.units_to_receive(task, run.target)
    run.total = run.done + len(todo)
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        db.session.execute(insert(Task), svc.instance_rows(task, batch, created_by_id=run.requested_by_id))
        # Counted with the batch: the new instances, and the task that is no longer a leaf.
        mark_dirty([task.unit_id, *(unit.id for unit in batch)])
        run.done += len(batch)
        db.session.commit()
    if task.status == TaskStatus.ASSIGNED.value:
        task.status = TaskStatus.IN_PROGRESS.value
    run.state = "finished"
    run.finished_at = utcnow()
    db.session.commit()
    return len(todo)


CASCADE_LOCK = 41_0001  # advisory-lock namespace of cascade runs
_HELD: set[int] = set()  # cascade runs this process holds the lock of


@contextmanager
def _one_at_a_time(run_id: int):
    """On PostgreSQL, one runner per cascade run: a session-level advisory lock on a
    connection of its own, held for the whole job. A second copy of the job (requeued
    while an orphaned work horse still runs the first) waits here, then finds the run
    finished. If the worker dies, PostgreSQL drops its connection and the lock with it.
    (SQLite has no second worker: its jobs run in-process.)"""
    if db.engine.dialect.name != "postgresql":
        yield True
        return
    if run_id in _HELD:  # nested in this process (an in-process run inside the run): the outer one does it
        yield False
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:ns, :id)"), {"ns": CASCADE_LOCK, "id": run_id})
        conn.commit()
        _HELD.add(run_id)
        try:
            yield True
        finally:
            _HELD.discard(run_id)
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": CASCADE_LOCK, "id": run_id})
            conn.commit()


@portal_job
def run_cascade(run_id: int) -> int:
    """Fan a task out to its receiving units; safe to run again (skips units that have it)."""
    with _one_at_a_time(run_id) as mine:
        return _run_cascade(run_id) if mine else 0


def _run_cascade(run_id: int) -> int:
    run = db.session.get(CascadeRun, run_id)
    if run is None or run.state == "finished":
        return 0
    try:
        created = _fan_out(run)
    except Exception as exc:  # the page shows the failure; the run can be retried
        db.session.rollback()
        run = db.session.get(CascadeRun, run_id)
        run.state, run.error = "failed", exc.__class__.__name__
        db.session.commit()
        raise
    task = db.session.get(Task, run.task_id)
    children = db.session.execute(select(Task.id, Task.unit_id).where(Task.parent_id == task.id)).all()
    by_unit = {unit_id: task_id for task_id, unit_id in children}
    seats = db.session.execute(
        select(Membership.user_id, Membership.unit_id).join(User, User.id == Membership.user_id).where(
            Membership.unit_id.in_(list(by_unit)), User.active.is_(True),
            Membership.role.in_([Role.OFFICE_ADMIN.value, Role.OFFICE_STAFF.value])
            | ((Membership.role == Role.LIAISON.value) & Membership.department_code.in_(task.departments)))).all()
    from portal.models import Unit

    units = {u.id: u for u in db.session.scalars(select(Unit).where(Unit.id.in_({unit_id for _u, unit_id in seats})))}
    rows = [(user_id, by_unit[unit_id], f"/{units[unit_id].tier}/{units[unit_id].code}/tasks/{by_unit[unit_id]}/",
             {"title": task.title, "unit": task.unit.name, "due": task.due_date.isoformat()})
            for user_id, unit_id in seats]
    _notify_many("task_assigned", rows)
    db.session.commit()
    log.info("cascade run %s: %d instances", run_id, created)
    return created


@portal_job
def rollup(task_id: int) -> list[int]:
    from portal.services.tasks import rollup as do_rollup

    touched = do_rollup(task_id)
    db.session.commit()
    return touched


@portal_job
def notify_task_assigned(task_id: int) -> int:
    from portal.services.tasks import responsible_user_ids

    task = db.session.get(Task, task_id)
    if task is None:
        return 0
    sent = _notify_many("task_assigned", [(uid, task.id, _task_link(task), _params(task))
                                          for uid in responsible_user_ids(task) if uid != task.created_by_id])
    db.session.commit()
    return sent


@portal_job
def notify_task_submitted(task_id: int) -> int:
    from portal import access
    from portal.services.tasks import office_user_ids

    task = db.session.get(Task, task_id)
    if task is None:
        return 0
    unit = access.assigning_unit(task)
    link = f"/{unit.tier}/{unit.code}/tasks/{task.id}/"
    sent = _notify_many("task_submitted", [(uid, task.id, link, _params(task)) for uid in office_user_ids(unit)],
                        occasion=f"@{task.version}")
    db.session.commit()
    return sent


@portal_job
def notify_task_reviewed(review_id: int) -> int:
    from portal.services.tasks import responsible_user_ids

    review = db.session.get(TaskReview, review_id)
    if review is None:
        return 0
    task = review.task
    params = dict(_params(task), decision=review.decision, comment=review.comment or "")
    sent = _notify_many("task_reviewed", [(uid, task.id, _task_link(task), params)
                                         for uid in responsible_user_ids(task)], occasion=f"@{review.id}")
    db.session.commit()
    return sent


@portal_job
def notify_notice(notice_id: int) -> int:
    from portal.services.tasks import responsible_user_ids

    notice = db.session.get(SupervisionNotice, notice_id)
    if notice is None:
        return 0
    task = notice.task
    params = dict(_params(task), sender=notice.from_unit.name, text=notice.text[:200])
    sent = _notify_many("task_notice", [(uid, task.id, _task_link(task), params)
                                       for uid in responsible_user_ids(task)], occasion=f"@{notice.id}")
    db.session.commit()
    return sent
