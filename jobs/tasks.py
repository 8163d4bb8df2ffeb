"""Task jobs: the cascade fan-out, the roll-up of progress, and notifications."""
from __future__ import annotations

import logging
from collections import namedtuple
from contextlib import contextmanager

from sqlalchemy import insert, select, text, update

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
_Target = namedtuple("_Target", "id parent_id code depth")


def _fan_out(run: CascadeRun) -> int:
    """Insert the instances set-based (one INSERT … SELECT a batch, or a level of it), in batches
    of BATCH units, committing after each so the page shows the progress and a killed run keeps
    what it did (the first commit also marks the run running; a run of one batch commits once
    here). For "tree" the units come level by level, and each instance's parent is the instance
    of its parent unit."""
    from portal.services import tasks as svc

    task = db.session.get(Task, run.task_id)
    run.state = "running"
    # Plain values: the units' rows expire at each batch's commit, and reloading them one by one
    # was most of a large cascade's time.
    todo = [_Target(u.id, u.parent_id, u.code, u.path.count("/")) for u in svc.units_to_receive(task, run.target)]
    run.total = run.done + len(todo)
    parents = None
    if run.target == "tree":
        parents = {task.unit_id: task.id, **svc.instances_below(task)}
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        if parents is None:
            svc.insert_instances(task, [u.id for u in batch], created_by_id=run.requested_by_id)
        else:
            for depth in sorted({u.depth for u in batch}):  # a level's parents exist before it
                level = [u for u in batch if u.depth == depth]
                parents.update(svc.insert_instances(task, [u.id for u in level], created_by_id=run.requested_by_id,
                                                    parent_ids=sorted({parents[u.parent_id] for u in level})))
        # Counted with the batch: the new instances, and the task that is no longer a leaf.
        mark_dirty([task.unit_id, *(unit.id for unit in batch)])
        run.done += len(batch)
        if start + BATCH < len(todo):  # the last batch commits with the run's end and its notifications
            db.session.commit()
    if parents is not None:  # passed down further: in progress, as each level's own passing would make it
        passed = {parents[u.parent_id] for u in todo} - {task.id}
        if passed:
            db.session.execute(update(Task).where(Task.id.in_(passed), Task.status == TaskStatus.ASSIGNED.value)
                               .values(status=TaskStatus.IN_PROGRESS.value, version=Task.version + 1)
                               .execution_options(synchronize_session=False))
    if task.status == TaskStatus.ASSIGNED.value:
        task.status = TaskStatus.IN_PROGRESS.value
    if task.is_counted:  # the new instances count their units' activities; the instances above add them up
        svc.recount_and_roll_up(root_id=task.root_id or task.id)
    run.state = "finished"
    run.finished_at = utcnow()
    return len(todo)


def _notify_assigned(task: Task, instance_ids: list[int]) -> None:
    """One INSERT … SELECT: each new instance's office and the liaisons of its departments hear
    of it (once: the dedupe key of ``_notify_many``)."""
    from sqlalchemy import JSON, String, and_, cast, literal, true
    from sqlalchemy.dialects import postgresql, sqlite

    from portal.models import Unit
    from portal.services import tasks as svc

    if not instance_ids:
        return
    kind = "task_assigned"
    params = {"title": task.title, "unit": task.unit.name, "due": task.due_date.isoformat()}
    for start in range(0, len(instance_ids), 5000):
        chunk = instance_ids[start:start + 5000]
        seats = select(Membership.user_id, Task.id.label("task_id"), Unit.tier, Unit.code).distinct() \
            .select_from(Task).join(Unit, Unit.id == Task.unit_id).join(Membership, Membership.unit_id == Task.unit_id) \
            .join(User, User.id == Membership.user_id).where(
                svc.unit_in(chunk, Task.id, "task_ids"), User.active.is_(True),
                Membership.role.in_([Role.OFFICE_ADMIN.value, Role.OFFICE_STAFF.value])
                | and_(Membership.role == Role.LIAISON.value, Membership.department_code.in_(task.departments))) \
            .subquery()
        task_id, user_id = cast(seats.c.task_id, String), cast(seats.c.user_id, String)
        key = literal(f"{kind}:", String) + task_id + ":" + user_id  # || on either backend
        link = literal("/", String) + seats.c.tier + "/" + seats.c.code + "/tasks/" + task_id + "/"
        # What was sent already (a job run twice) is skipped by the unique dedupe key, row by row,
        # rather than by an anti-join that reads every notification's key. (The WHERE is SQLite's:
        # an INSERT … SELECT with ON CONFLICT needs one to parse.)
        rows = select(seats.c.user_id, literal(kind), literal(params, JSON), link, key, literal(utcnow())).where(true())
        stmt = (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(Notification)
        db.session.execute(stmt.from_select(["user_id", "kind", "params", "link", "dedupe_key", "created_at"], rows)
                           .on_conflict_do_nothing(index_elements=["dedupe_key"]))


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
    from portal.services.tasks import instances_below

    instances = (list(instances_below(task).values()) if run.target == "tree"
                 else list(db.session.scalars(select(Task.id).where(Task.parent_id == task.id))))
    _notify_assigned(task, instances)
    db.session.commit()  # the instances' last batch, the run finished and the notifications: one commit
    log.info("cascade run %s: %d instances", run_id, created)
    return created


@portal_job
def rollup(task_id: int) -> list[int]:
    from portal.services.tasks import rollup as do_rollup

    touched = do_rollup(task_id)
    db.session.commit()
    return touched


@portal_job
def recount_activities(unit_id: int) -> int:
    """The unit's activities changed: its open instances of targets counted from activities count
    again, and their parents roll up. Safe to run twice (it counts, it does not add)."""
    from portal.services.tasks import recount_and_roll_up

    changed = recount_and_roll_up(unit_id=unit_id)
    db.session.commit()
    return changed


@portal_job
def recount_task(task_id: int) -> int:
    """A counted target's definition changed: every open instance of the task counts again."""
    from portal.services.tasks import recount_and_roll_up

    task = db.session.get(Task, task_id)
    if task is None:
        return 0
    changed = recount_and_roll_up(root_id=task.root_id or task.id)
    db.session.commit()
    return changed


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
