"""Accounts: creating users, granting and revoking memberships, activation, passwords."""
from __future__ import annotations

import re
import secrets
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
MIN_PASSWORD = 10
#: zxcvbn's score (0-4): 3 is "safely unguessable" (about 10^8 guesses). Its
#: dictionaries hold the common password lists, names, keyboard walks and dates.
MIN_PASSWORD_SCORE = 3


def validate_password(password: str, *, username: str = "", display_name: str = "",
                      field: str = "password") -> None:
    """Refuse short, guessable and personal passwords, with the reason in the user's language."""
    from zxcvbn import zxcvbn

    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise ServiceError(_("The password must have at least %(n)d characters.", n=MIN_PASSWORD), field)
    folded = password.casefold()
    name = (username or "").strip().casefold()
    if name and (name in folded or folded in name):
        raise ServiceError(_("The password must not contain the user name."), field)
    # zxcvbn is slow on very long input; length alone makes those safe.
    if len(password) <= 100:
        inputs = [v for v in (username, display_name, "portal", "shequjiaoyu") if v]
        if zxcvbn(password, user_inputs=inputs)["score"] < MIN_PASSWORD_SCORE:
            raise ServiceError(_("This password is too easy to guess: it is a common password, a keyboard or "
                                 "number pattern, or close to the name. Choose a longer one, for example "
                                 "three or four unrelated words."), field)


_DUMMY_HASHES: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash made with the configured method, checked for unknown user names so
    that they take as long to refuse as a wrong password (no enumeration by timing)."""
    from flask import current_app
    from werkzeug.security import generate_password_hash

    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return _DUMMY_HASHES[method]


def authenticate(username: str, password: str) -> Optional[User]:
    """The active account with this name and password, else None.

    Unknown names, wrong passwords and deactivated accounts are refused alike,
    and in about the same time: the caller shows one message for all three."""
    from werkzeug.security import check_password_hash

    user = User.by_username(username or "")
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    if not user.check_password(password or "") or not user.active:
        return None
    return user


def create_user(*, username: str, display_name: str, password: str, home_unit: Unit,
                by: Optional[User], locale: Optional[str] = None) -> User:
    """Create an account administered from ``home_unit``. ``by=None`` is the CLI/seed."""
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise ServiceError(_("A user name is 2–64 letters, digits, dots, dashes or underscores."), "username")
    if by is not None and not access.can(by, access.Permission.MANAGE_ACCOUNTS, home_unit):
        raise PermissionDenied(_("You may not create accounts at %(unit)s.", unit=home_unit.name))
    if User.by_username(username) is not None:  # case-insensitive: Office-41 is office-41
        raise Conflict(_("The user name %(name)s is taken.", name=username), "username")
    validate_password(password, username=username, display_name=display_name)
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
            end_access(user, by=by)
    db.session.flush()
    return user


def end_access(user: User, *, by: Optional[User]) -> None:
    """End every session and revoke every API token of ``user``."""
    from portal.services.tokens import revoke_all_tokens

    user.end_sessions()
    revoke_all_tokens(user, by=by)


def logout(user: User) -> None:
    """Logout ends the session on the server: the copied cookie no longer works.
    The key is per account, so the account's other sessions end too."""
    user.end_sessions()
    record("user.logout", user, by=user, username=user.username)
    db.session.flush()


def reset_password(user: User, new_password: str, *, by: User) -> User:
    if not access.can_manage_user(by, user):
        raise PermissionDenied(_("You may not change this account: it has roles outside your units."))
    validate_password(new_password, username=user.username, display_name=user.display_name,
                      field="new_password")
    user.set_password(new_password)
    # A reset is the remedy for a compromised account: nothing issued before it keeps working.
    end_access(user, by=by)
    record("user.password_reset", user, by=by, unit=user.home_unit, username=user.username)
    db.session.flush()
    return user


def change_password(user: User, current: str, new: str) -> User:
    if not user.check_password(current or ""):
        raise ServiceError(_("The current password is wrong."), "current_password")
    if current == new:
        raise ServiceError(_("The new password must differ from the current one."), "new_password")
    validate_password(new, username=user.username, display_name=user.display_name, field="new_password")
    user.set_password(new)
    # Every session and API token ends; the view logs this session in again.
    end_access(user, by=user)
    record("user.password_change", user, by=user, username=user.username)
    db.session.flush()
    return user


def set_locale(user: User, locale: Optional[str]) -> User:
    if user.locale != locale:
        user.locale = locale
        db.session.flush()
    return user
