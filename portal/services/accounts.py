"""Accounts: creating users, granting and revoking memberships, activation, passwords."""
from __future__ import annotations

import re
from typing import Optional

from flask_babel import gettext as _
from sqlalchemy import select

from portal import access
from portal.extensions import db
from portal.models import Department, Membership, Role, Unit, User
from portal.queue import enqueue
from portal.services import Conflict, PermissionDenied, ServiceError
from portal.services.audit import record

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
MIN_PASSWORD = 8


def validate_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise ServiceError(_("The password must have at least %(n)d characters.", n=MIN_PASSWORD), "password")


def create_user(*, username: str, display_name: str, password: str, home_unit: Unit,
                by: Optional[User], locale: Optional[str] = None) -> User:
    """Create an account administered from ``home_unit``. ``by=None`` is the CLI/seed."""
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise ServiceError(_("A user name is 2–64 letters, digits, dots, dashes or underscores."), "username")
    if by is not None and not access.can(by, access.Permission.MANAGE_ACCOUNTS, home_unit):
        raise PermissionDenied(_("You may not create accounts at %(unit)s.", unit=home_unit.name))
    if User.by_username(username) is not None:
        raise Conflict(_("The user name %(name)s is taken.", name=username), "username")
    validate_password(password)
    user = User(username=username, display_name=(display_name or "").strip() or username,
                home_unit_id=home_unit.id, locale=locale, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record("user.create", user, by=by, unit=home_unit, username=username)
    return user


def grant_membership(user: User, unit: Unit, role: Role | str, department_code: Optional[str], *,
                     by: Optional[User]) -> Membership:
    role = Role(role)
    department_code = department_code or None
    if by is not None and not access.can_grant(by, unit, role):
        raise PermissionDenied(_("You may not grant roles at %(unit)s.", unit=unit.name))
    if role is Role.LIAISON:
        if department_code is None:
            raise ServiceError(_("A liaison needs a department."), "department")
    else:
        department_code = None
    if department_code is not None and db.session.get(Department, department_code) is None:
        raise ServiceError(_("Unknown department: %(code)s.", code=department_code), "department")
    existing = db.session.scalar(select(Membership).where(
        Membership.user_id == user.id, Membership.unit_id == unit.id, Membership.role == role.value,
        Membership.department_code.is_(None) if department_code is None
        else Membership.department_code == department_code))
    if existing is not None:
        raise Conflict(_("%(user)s already has this role at %(unit)s.", user=user.username, unit=unit.name))
    membership = Membership(user_id=user.id, unit_id=unit.id, role=role.value,
                            department_code=department_code, granted_by_id=by.id if by else None)
    db.session.add(membership)
    db.session.flush()
    record("membership.grant", membership, by=by, unit=unit, user=user.username,
           role=role.value, department=department_code)
    enqueue("jobs.notifications.notify_membership_granted", membership.id)
    return membership


def revoke_membership(membership: Membership, *, by: User) -> None:
    if not access.can(by, access.Permission.MANAGE_ACCOUNTS, membership.unit):
        raise PermissionDenied(_("You may not change roles at %(unit)s.", unit=membership.unit.name))
    if membership.user_id == by.id:
        raise ServiceError(_("You cannot revoke your own role."))
    record("membership.revoke", membership, by=by, unit=membership.unit, user=membership.user.username,
           role=membership.role, department=membership.department_code)
    db.session.delete(membership)
    db.session.flush()


def set_active(user: User, active: bool, *, by: User) -> User:
    if not access.can_manage_user(by, user):
        raise PermissionDenied(_("You may not change this account: it has roles outside your units."))
    if user.active != active:
        user.active = active
        record("user.activate" if active else "user.deactivate", user, by=by,
               unit=user.home_unit, username=user.username)
        if not active:
            from portal.services.tokens import revoke_all_tokens
            revoke_all_tokens(user, by=by)
    db.session.flush()
    return user


def reset_password(user: User, new_password: str, *, by: User) -> User:
    if not access.can_manage_user(by, user):
        raise PermissionDenied(_("You may not change this account: it has roles outside your units."))
    validate_password(new_password)
    user.set_password(new_password)
    record("user.password_reset", user, by=by, unit=user.home_unit, username=user.username)
    db.session.flush()
    return user


def change_password(user: User, current: str, new: str) -> User:
    if not user.check_password(current or ""):
        raise ServiceError(_("The current password is wrong."), "current_password")
    validate_password(new)
    if current == new:
        raise ServiceError(_("The new password must differ from the current one."), "new_password")
    user.set_password(new)
    record("user.password_change", user, by=user, username=user.username)
    db.session.flush()
    return user


def set_locale(user: User, locale: Optional[str]) -> User:
    if user.locale != locale:
        user.locale = locale
        db.session.flush()
    return user
