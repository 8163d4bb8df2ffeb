"""The activity register (活动登记) and the work teams (工作队伍) of a unit.

An activity is what a unit actually did: a date range, a theme, a category
from the catalogue (``activity_categories``, kept as data), the organising and
co-operating departments, participants split into young people, elders and
others (the person-times, 人次, are their sum, computed and stored, never
typed), volunteers, hours, funds, a narrative, photos and attachments.

A team member is one person of a unit's roster, with the dates they joined and
left: the roster is dynamic and its history is kept. An activity may name
volunteers from the roster with their hours.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Optional

from flask import abort
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, ForeignKey, Numeric, String, Text, and_, or_, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models._helpers import utcnow
from portal.models.accounts import User
from portal.models.units import Department, Unit

#: The category codes, in the catalogue's order (the rows of ``activity_categories`` are seeded with them).
CATEGORY_CODES = ("moral", "legal", "skills", "festival", "care", "volunteer", "elder", "family", "other")


class ActivityCategory(db.Model):
    """The catalogue of activity categories; the same at every tier."""

    __tablename__ = "activity_categories"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(default=0)

    @property
    def name(self) -> str:
        locale = get_locale()
        if locale is not None and locale.language == "en":
            return self.name_en
        return self.name_zh

    @classmethod
    def all(cls) -> list["ActivityCategory"]:
        """The catalogue in its order (read once per request: pages name departments in several places)."""
        from flask import g, has_request_context

        if not has_request_context():
            return list(db.session.scalars(select(cls).order_by(cls.position)))
        if g.get("_activity_categories") is None:
            g._activity_categories = list(db.session.scalars(select(cls).order_by(cls.position)))
        return list(g._activity_categories)


class Activity(db.Model):
    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("activity_categories.code"), index=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"), index=True)
    co_department_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    title: Mapped[str] = mapped_column(String(200))
    place: Mapped[str] = mapped_column(String(200), default="")
    start_date: Mapped[date] = mapped_column(Date, index=True)
    end_date: Mapped[date] = mapped_column(Date)
    youth: Mapped[int] = mapped_column(default=0)
    elders: Mapped[int] = mapped_column(default=0)
    others: Mapped[int] = mapped_column(default=0)
    #: youth + elders + others, set by the services: never typed.
    person_times: Mapped[int] = mapped_column(default=0)
    volunteers: Mapped[int] = mapped_column(default=0)
    volunteer_hours: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    funds: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    donated_goods: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    narrative: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[Optional[datetime]]
    version: Mapped[int] = mapped_column(default=1)

    unit: Mapped[Unit] = relationship(lazy="joined")
    category: Mapped[ActivityCategory] = relationship(lazy="joined")
    department: Mapped[Department] = relationship(lazy="joined")
    created_by: Mapped[Optional[User]] = relationship(foreign_keys=[created_by_id])
    files: Mapped[list["ActivityFile"]] = relationship(back_populates="activity", cascade="all, delete-orphan",
                                                      order_by="ActivityFile.id")
    volunteer_links: Mapped[list["ActivityVolunteer"]] = relationship(
        back_populates="activity", cascade="all, delete-orphan", order_by="ActivityVolunteer.id")

    __mapper_args__ = {"version_id_col": version}

    @property
    def departments(self) -> list[str]:
        return [self.department_code, *(self.co_department_codes or [])]

    @property
    def photos(self) -> list["ActivityFile"]:
        return [f for f in self.files if f.is_photo]

    @property
    def attachments(self) -> list["ActivityFile"]:
        return [f for f in self.files if not f.is_photo]

    @classmethod
    def in_range_clause(cls, first: date, last: date):
        """Activities that took place (at least partly) between ``first`` and ``last``."""
        return and_(cls.start_date <= last, cls.end_date >= first)

    @classmethod
    def get_for_unit_or_404(cls, activity_id: int, unit: Unit) -> "Activity":
        """An activity seen from a workspace: the unit's own and its subtree's."""
        activity = db.session.scalar(select(cls).join(Unit, Unit.id == cls.unit_id)
                                     .where(cls.id == activity_id, Unit.subtree_clause(unit)))
        if activity is None:
            abort(404)
        return activity


class ActivityFile(db.Model):
    """A photo (shrunk, EXIF stripped, with a thumbnail) or an attachment of an activity;
    stored under random names outside static/."""

    __tablename__ = "activity_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    is_photo: Mapped[bool] = mapped_column(default=False)
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    thumb_name: Mapped[Optional[str]] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[Optional[int]]
    height: Mapped[Optional[int]]
    uploaded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    activity: Mapped[Activity] = relationship(back_populates="files")


TEAM_ROLES = ("leader", "member", "liaison", "volunteer")
#: The 五老 (retired officials, veterans, experts, teachers, model workers), volunteers, students.
TEAM_KINDS = ("retired_official", "veteran", "expert", "teacher", "model_worker", "volunteer", "student")
TEAM_ROLE_LABELS = {"leader": _l("Leader"), "member": _l("Member"), "liaison": _l("Liaison"),
                    "volunteer": _l("Volunteer")}
TEAM_KIND_LABELS = {"retired_official": _l("Retired official"), "veteran": _l("Veteran"), "expert": _l("Expert"),
                    "teacher": _l("Retired teacher"), "model_worker": _l("Model worker"),
                    "volunteer": _l("Volunteer"), "student": _l("Student")}
#: A team is complete with at least this many active members.
COMPLETE_TEAM = 5


class TeamMember(db.Model):
    """One person of a unit's work team (工作队伍) or its volunteers."""

    __tablename__ = "team_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str] = mapped_column(String(32), default="")
    joined_on: Mapped[date] = mapped_column(Date)
    left_on: Mapped[Optional[date]] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    unit: Mapped[Unit] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}

    @property
    def role_label(self) -> str:
        return str(TEAM_ROLE_LABELS.get(self.role, self.role))

    @property
    def kind_label(self) -> str:
        return str(TEAM_KIND_LABELS.get(self.kind, self.kind))

    def is_active(self, today: date) -> bool:
        return self.joined_on <= today and (self.left_on is None or self.left_on > today)

    @classmethod
    def active_clause(cls, today: date):
        return and_(cls.joined_on <= today, or_(cls.left_on.is_(None), cls.left_on > today))

    @property
    def masked_phone(self) -> str:
        """138****5678: the first three and the last four digits."""
        phone = self.phone or ""
        if len(phone) <= 4:
            return "*" * len(phone)
        keep = 3 if len(phone) >= 11 else 1
        return phone[:keep] + "*" * (len(phone) - keep - 4) + phone[-4:]

    @classmethod
    def get_for_unit_or_404(cls, member_id: int, unit: Unit) -> "TeamMember":
        """A roster entry of exactly this unit (each unit keeps its own roster)."""
        member = db.session.scalar(select(cls).where(cls.id == member_id, cls.unit_id == unit.id))
        if member is None:
            abort(404)
        return member


class ActivityVolunteer(db.Model):
    """A volunteer of the unit's roster named on an activity, with their hours."""

    __tablename__ = "activity_volunteers"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("team_members.id", ondelete="CASCADE"), index=True)
    hours: Mapped[Decimal] = mapped_column(Numeric(8, 2), default=Decimal("0"))

    activity: Mapped[Activity] = relationship(back_populates="volunteer_links")
    member: Mapped[TeamMember] = relationship(lazy="joined")
