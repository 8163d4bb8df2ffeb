"""People: user accounts, their memberships in units, and API tokens."""
from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import Optional

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from portal.extensions import db
from portal.models._helpers import utcnow
from portal.models.units import Department, Unit


class Role(str, enum.Enum):
    OFFICE_ADMIN = "office_admin"
    OFFICE_STAFF = "office_staff"
    LIAISON = "liaison"
    VIEWER = "viewer"

    @property
    def is_office(self) -> bool:
        return self in (Role.OFFICE_ADMIN, Role.OFFICE_STAFF)

    @property
    def label(self) -> str:
        return str(ROLE_LABELS[self])


ROLE_LABELS = {
    Role.OFFICE_ADMIN: _l("Office administrator"),
    Role.OFFICE_STAFF: _l("Office staff"),
    Role.LIAISON: _l("Department liaison"),
    Role.VIEWER: _l("Viewer (read-only)"),
}


def new_session_key() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[Optional[str]] = mapped_column(String(16))
    #: The unit whose office created the account; its admins manage it.
    home_unit_id: Mapped[Optional[int]] = mapped_column(ForeignKey("units.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Part of every session's id: replacing it ends all sessions of the account
    #: (logout, password change or reset, deactivation). Random, so that a session
    #: cannot be forged from the signing key alone.
    session_key: Mapped[str] = mapped_column(String(64), default=new_session_key)

    home_unit: Mapped[Optional[Unit]] = relationship()
    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="user", foreign_keys="Membership.user_id",
        cascade="all, delete-orphan", order_by="Membership.id",
    )

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        # The session cookie names the user and the current session key; the
        # user loader accepts it only while the key is the account's current one.
        return f"{self.id}:{self.session_key}"

    def end_sessions(self) -> None:
        """Every session of this account ends at its next request."""
        self.session_key = new_session_key()

    def set_password(self, password: str) -> None:
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)
        self.password_changed_at = utcnow()

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @classmethod
    def in_subtree_clause(cls, unit: Unit):
        """Users administered in, or holding a role in, ``unit`` or below."""
        in_tree = select(Unit.id).where(Unit.subtree_clause(unit))
        has_seat = select(Membership.user_id).where(Membership.unit_id.in_(in_tree))
        return cls.home_unit_id.in_(in_tree) | cls.id.in_(has_seat)

    @classmethod
    def by_username(cls, username: str) -> Optional["User"]:
        """Case-insensitive: ``Office-41`` is ``office-41``."""
        name = (username or "").strip()
        if not name:
            return None
        return db.session.scalar(select(cls).where(func.lower(cls.username) == name.lower()))


# Office-41 beside office-41: user names are unique whatever their case.
Index("uq_users_username_lower", func.lower(User.username), unique=True)


class Membership(db.Model):
    """A user's seat: a role at a unit, for a department or for the office."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    department_code: Mapped[Optional[str]] = mapped_column(ForeignKey("departments.code"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(back_populates="memberships", foreign_keys=[user_id])
    unit: Mapped[Unit] = relationship(lazy="joined")
    department: Mapped[Optional[Department]] = relationship(lazy="joined")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class ApiToken(db.Model):
    """A bearer token for /api/v1; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[Optional[datetime]]
    last_used_at: Mapped[Optional[datetime]]

    user: Mapped[User] = relationship()

    @property
    def is_valid(self) -> bool:
        return self.revoked_at is None and self.expires_at > utcnow()
