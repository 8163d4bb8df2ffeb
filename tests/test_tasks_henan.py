"""One provincial task to every street of the real Henan tree, in one action."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import CascadeRun, Membership, Notification, Role, Task, Unit, User


def test_cascade_to_all_2586_streets_of_henan(app, run_in_app, run_jobs):
    from portal.cli import DEFAULT_DIVISIONS
    from portal.services import tasks as svc
    from portal.services.units import import_units, load_file

    def setup():
        import_units(load_file(DEFAULT_DIVISIONS))
        db.session.flush()
        user = User(username="office-41", display_name="省办", active=True)
        user.set_password("correct-horse-1")
        db.session.add(user)
        db.session.flush()
        db.session.add(Membership(user_id=user.id, unit_id=Unit.by_code("41").id, role=Role.OFFICE_ADMIN.value))
        street = Unit.by_code("410105001")
        liaison = User(username="edu-410105001", display_name="联络员", active=True)
        liaison.set_password("correct-horse-1")
        db.session.add(liaison)
        db.session.flush()
        db.session.add(Membership(user_id=liaison.id, unit_id=street.id, role=Role.LIAISON.value, department_code="edu"))
        db.session.flush()
        task = svc.create_task(Unit.by_code("41"), {"title": "全省社区教育示范街道创建", "lead_department": "edu",
                                                    "due_date": (date.today() + timedelta(days=90)).isoformat()},
                               by=user)
        run = svc.cascade_task(task, "streets", by=user)
        return task.id, run.id
    task_id, run_id = run_in_app(setup)
    run_jobs()
    state = run_in_app(lambda: (lambda r: (r.state, r.done, r.total))(db.session.get(CascadeRun, run_id)))
    assert state == ("finished", 2586, 2586)
    assert run_in_app(lambda: db.session.scalar(select(func.count(Task.id)).where(Task.parent_id == task_id))) == 2586
    # The street liaison was told, once.
    assert run_in_app(lambda: db.session.scalar(select(func.count(Notification.id)).where(
        Notification.kind == "task_assigned"))) == 1

    def report():
        street_task = db.session.scalar(select(Task).join(Unit, Unit.id == Task.unit_id).where(
            Task.parent_id == task_id, Unit.code == "410105001"))
        svc.report_progress(street_task, {"percent": 100}, by=User.by_username("edu-410105001"))
    run_in_app(report)
    run_jobs()
    progress = run_in_app(lambda: db.session.get(Task, task_id).progress)
    assert float(progress) == round(100 / 2586, 2)
