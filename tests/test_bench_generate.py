"""The benchmark's Henan-scale generator, at a tiny scale: its rows are the services' rows."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bench.generate import LOCAL_TASKS_PER_UNIT, PROVINCIAL_TASKS, generate
from portal.clock import local_today
from portal.extensions import db
from portal.models import Decision, Meeting, Task, TaskReport, TaskReview, Unit, User
from portal.services import tasks as task_svc


def test_generator_writes_a_year_the_services_agree_with(ctx):
    today = local_today()
    result = generate(scale=0.002, seed=7, today=today, log=lambda line: None)
    units = result["units"]
    assert 5 <= units <= 20 and result["rows"]["task_reports"] > 1000

    tasks = db.session.execute(select(Task.id, Task.parent_id, Task.root_id, Task.unit_id, Task.status,
                                      Task.progress, Task.created_at)).all()
    parents = {t.parent_id for t in tasks if t.parent_id}
    roots = [t for t in tasks if t.parent_id is None]
    assert len(tasks) == PROVINCIAL_TASKS * units + LOCAL_TASKS_PER_UNIT * units
    assert all(t.root_id == t.id for t in roots)
    # every provincial task reached every unit, tier by tier
    province = Unit.by_code("41")
    provincial = [t for t in roots if t.unit_id == province.id and t.id in parents]
    assert len(provincial) == PROVINCIAL_TASKS
    assert all(sum(1 for t in tasks if t.root_id == root.id) == units for root in provincial)
    statuses = Counter(t.status for t in tasks)
    assert {"accepted", "submitted", "in_progress", "cancelled"} <= set(statuses)

    # a leaf's progress is its latest report; nothing happens today or later
    latest = dict(db.session.execute(select(TaskReport.task_id, TaskReport.percent).order_by(TaskReport.at)).all())
    for t in tasks:
        if t.id not in parents:
            assert t.progress == latest.get(t.id, 0), t.id
    midnight = datetime.combine(today, datetime.min.time()) - timedelta(hours=8)
    assert db.session.scalar(select(func.max(TaskReport.at))) < midnight
    assert db.session.scalar(select(func.max(TaskReview.at))) < midnight
    accepted = {t.id for t in tasks if t.status == "accepted" and t.id not in parents}
    reviewed = set(db.session.scalars(select(TaskReview.task_id).where(TaskReview.decision == "accept")))
    assert accepted == reviewed
    assert db.session.scalar(select(func.count()).select_from(Meeting).where(Meeting.status == "minutes_published"))
    closed = set(db.session.scalars(select(Decision.id).where(Decision.status == "closed")))
    assert closed == {t.decision_id for t in db.session.scalars(select(Task).where(
        Task.decision_id.is_not(None), Task.parent_id.is_(None), Task.status == "accepted"))}

    # the roll-up of the services finds every cascaded instance as the generator left it
    before = {t.id: (t.progress, t.status, t.actual_value)
              for t in db.session.scalars(select(Task).where(Task.id.in_(parents)))}
    for task_id in sorted(parents, reverse=True):
        task_svc.rollup(task_id)
    after = {t.id: (t.progress, t.status, t.actual_value)
             for t in db.session.scalars(select(Task).where(Task.id.in_(parents)))}
    assert before == after
    db.session.rollback()

    # and a real write through the services works on a generated task, as its liaison
    task = db.session.scalar(select(Task).where(Task.status == "in_progress", Task.id.not_in(parents))
                             .order_by(Task.id).limit(1))
    liaison = User.by_username(f"bench-{task.lead_department_code}-{task.unit.code}")
    version = task.version
    task_svc.report_progress(task, {"percent": 99}, by=liaison)
    db.session.commit()
    assert task.version == version + 1 and task.progress == 99
