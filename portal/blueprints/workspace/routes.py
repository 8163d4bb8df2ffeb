from __future__ import annotations

from flask import g, render_template, request
from flask_login import current_user
from sqlalchemy import select

from portal import access
from portal.blueprints.workspace import bp
from portal.extensions import db
from portal.models import Department, Membership, Role, Unit, User
from portal.pagination import paginate


def _children_query(unit: Unit, q: str):
    """Without a search: the direct children. With one: the whole subtree by name or code."""
    stmt = select(Unit)
    if q:
        stmt = stmt.where(Unit.subtree_clause(unit), Unit.id != unit.id,
                          Unit.name.contains(q, autoescape=True) | Unit.code.startswith(q, autoescape=True))
        return stmt.order_by(Unit.path)
    return stmt.where(Unit.parent_id == unit.id).order_by(Unit.code)


@bp.route("/")
def home():
    unit: Unit = g.unit
    q = (request.args.get("q") or "").strip()[:50]
    children = paginate(_children_query(unit, q)) if g.policy.child_tier else None
    if request.headers.get("HX-Request") and children is not None:
        return render_template("workspace/_children.html", unit=unit, children=children, q=q)
    seats = db.session.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.unit_id == unit.id, User.active.is_(True))
        .order_by(Membership.role, User.display_name)).all()
    liaisons: dict[str, list[User]] = {}
    office: list[tuple[Membership, User]] = []
    for membership, user in seats:
        if membership.role == Role.LIAISON.value:
            liaisons.setdefault(membership.department_code, []).append(user)
        elif membership.role_enum.is_office:
            office.append((membership, user))
    return render_template(
        "workspace/home.html", unit=unit, ancestors=unit.ancestors(), children=children, q=q,
        departments=Department.all(), liaisons=liaisons, office=office,
        can_manage=access.can(current_user, access.Permission.MANAGE_ACCOUNTS, unit),
    )
