from __future__ import annotations

from flask import g, render_template, request
from flask_login import current_user
from sqlalchemy import func, select

from portal import access
from portal.blueprints.workspace import bp
from portal.extensions import db
from portal.clock import local_now, local_today
from portal.models import Department, Meeting, MeetingStatus, Membership, Role, Task, Unit, User
from portal.models.tasks import OPEN_STATES
from portal.pagination import paginate


def _children_query(unit: Unit, q: str):
    """Without a search: the direct children. With one: the whole subtree by name or code.
    Either way only the units the reader may open."""
    stmt = select(Unit).where(access.visible_units_clause(current_user))
    if q:
        stmt = stmt.where(Unit.subtree_clause(unit), Unit.id != unit.id,
                          Unit.name.contains(q, autoescape=True) | Unit.code.startswith(q, autoescape=True))
        return stmt.order_by(Unit.path)
    return stmt.where(Unit.parent_id == unit.id).order_by(Unit.code)


@bp.route("/")
def home():
    unit: Unit = g.unit
    q = (request.args.get("q") or "").strip()[:50]
    below = bool(g.policy.child_tier) and access.reads_below(current_user, unit)
    children = paginate(_children_query(unit, q)) if below else None
    if request.headers.get("HX-Request") and children is not None:
        return render_template("workspace/_children.html", unit=unit, children=children, q=q)
    # The names the page shows, as plain rows (not the accounts and memberships: 35 of them at the
    # province, each with its unit, cost more than the rest of the query).
    seats = db.session.execute(
        select(Membership.role, Membership.department_code, User.display_name)
        .join(User, User.id == Membership.user_id)
        .where(Membership.unit_id == unit.id, User.active.is_(True))
        .order_by(Membership.role, User.display_name)).all()
    liaisons: dict[str, list[str]] = {}
    office: list[tuple[Role, str]] = []
    for role_value, department_code, name in seats:
        role = Role(role_value)
        if role is Role.LIAISON:
            liaisons.setdefault(department_code, []).append(name)
        elif role.is_office:
            office.append((role, name))
    return render_template(
        "workspace/home.html", unit=unit, children=children, q=q,
        departments=Department.all(), liaisons=liaisons, office=office, upcoming=_upcoming_meetings(unit),
        task_counts=_task_counts(unit), reads_below=below, activity_figures=_activity_figures(unit, below),
        can_manage=access.can(current_user, access.Permission.MANAGE_ACCOUNTS, unit),
    )


def _activity_figures(unit: Unit, below: bool) -> dict | None:
    """This year's activities, from the stored figures (the unit and everything below it for a
    reader of the units below; its own otherwise)."""
    if "activities" not in g.policy.features:
        return None
    from portal import metrics

    period = str(local_today().year)
    figures = metrics.read(unit, period, "subtree" if below else "own")
    return {"period": period, "stale": figures["stale"], "metrics": figures["metrics"],
            "records": "dashboard" in g.policy.features}


def _upcoming_meetings(unit: Unit) -> list[Meeting]:
    """The next meetings the unit convenes or is invited to."""
    if "meetings" not in g.policy.features:
        return []
    return list(db.session.scalars(
        select(Meeting).where(Meeting.visible_from_clause(unit), access.visible_meetings_clause(current_user),
                              Meeting.starts_at >= local_now(),
                              Meeting.status != MeetingStatus.CANCELLED.value)
        .order_by(Meeting.starts_at).limit(5)))


def _task_counts(unit: Unit) -> dict[str, int]:
    """Open, overdue and due-within-7-days tasks of the unit (its own rows, by the unit's index),
    and the overdue task instances below it from the stored figures (``tasks.overdue``, subtree
    minus own: each piece of work once, where it is done), never a count over the subtree's rows.
    Only for readers of the whole subtree: the template shows the figure to them alone."""
    if "tasks" not in g.policy.features:
        return {}
    from datetime import timedelta

    from portal.metrics.engine import MV
    from portal.metrics.registry import CURRENT

    today = local_today()
    is_open = Task.status.in_(OPEN_STATES)
    row = db.session.execute(
        select(func.count(Task.id).filter(is_open),
               func.count(Task.id).filter(Task.overdue_clause(today)),
               func.count(Task.id).filter(is_open, Task.due_date >= today,
                                          Task.due_date <= today + timedelta(days=7)))
        .where(Task.unit_id == unit.id)).one()
    below = 0
    if access.reads_below(current_user, unit):
        stored = db.session.execute(select(MV.c.own, MV.c.subtree).where(
            MV.c.unit_id == unit.id, MV.c.metric == "tasks.overdue", MV.c.period == CURRENT)).first()
        below = int(stored.subtree - stored.own) if stored else 0
    return {"open": row[0], "overdue": row[1], "due_soon": row[2], "overdue_below": below}
