"""Joint meetings (联席会议): meetings, invitations, agenda items and their
materials, sign-in, minutes with every revision, and decisions."""
from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any, Optional

from flask import abort
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, ForeignKey, String, Text, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models._helpers import utcnow
from portal.models.accounts import User
from portal.models.units import Department, Unit


class MeetingStatus(str, enum.Enum):
    DRAFT = "draft"
    AGENDA_OPEN = "agenda_open"
    AGENDA_LOCKED = "agenda_locked"
    HELD = "held"
    MINUTES_PUBLISHED = "minutes_published"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return str(MEETING_STATUS_LABELS[self])


MEETING_STATUS_LABELS = {
    MeetingStatus.DRAFT: _l("Draft"),
    MeetingStatus.AGENDA_OPEN: _l("Agenda open"),
    MeetingStatus.AGENDA_LOCKED: _l("Agenda locked"),
    MeetingStatus.HELD: _l("Held"),
    MeetingStatus.MINUTES_PUBLISHED: _l("Minutes published"),
    MeetingStatus.CANCELLED: _l("Cancelled"),
}


class ItemStatus(str, enum.Enum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    MERGED = "merged"
    DEFERRED = "deferred"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return str(ITEM_STATUS_LABELS[self])


ITEM_STATUS_LABELS = {
    ItemStatus.PROPOSED: _l("Proposed"),
    ItemStatus.ACCEPTED: _l("Accepted"),
    ItemStatus.MERGED: _l("Merged"),
    ItemStatus.DEFERRED: _l("Deferred"),
    ItemStatus.REJECTED: _l("Rejected"),
}


class ItemKind(str, enum.Enum):
    PROPOSAL = "proposal"   # proposed by a department's liaison
    OFFICE = "office"       # put on the agenda by the office itself
    REVIEW = "review"       # an open decision of the previous meeting, back for review
    CARRIED = "carried"     # deferred at an earlier meeting, carried over


class AttendanceStatus(str, enum.Enum):
    PRESENT = "present"
    ABSENT = "absent"
    DELEGATE = "delegate"

    @property
    def label(self) -> str:
        return str(ATTENDANCE_LABELS[self])


ATTENDANCE_LABELS = {
    AttendanceStatus.PRESENT: _l("Present"),
    AttendanceStatus.ABSENT: _l("Absent"),
    AttendanceStatus.DELEGATE: _l("Represented by a delegate"),
}


class Meeting(db.Model):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    #: Meetings of one series follow each other: open decisions and deferred
    #: items of the previous meeting come back on the next one.
    series: Mapped[str] = mapped_column(String(64), default="regular")
    title: Mapped[str] = mapped_column(String(200))
    #: Local (Beijing) wall-clock time, as written on the notice.
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[Optional[datetime]]
    location: Mapped[str] = mapped_column(String(200), default="")
    agenda_closes_at: Mapped[Optional[datetime]]
    notice_number: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(24), default=MeetingStatus.DRAFT.value, index=True)
    cancel_reason: Mapped[Optional[str]] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)
    #: The date (Beijing) the notice was issued: the invitations going out, and again when the agenda is
    #: circulated with the notice's final agenda. The notice is dated this day, never the day of a download.
    notice_issued_on: Mapped[Optional[date]] = mapped_column(Date)
    #: The calendar entry's UID (a UUID kept with the meeting, whatever name the portal was reached by),
    #: and its SEQUENCE, raised when what the entry shows changes (time, place, title, agenda, cancellation).
    uid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    calendar_sequence: Mapped[int] = mapped_column(default=0)

    unit: Mapped[Unit] = relationship(lazy="joined")
    invitations: Mapped[list["MeetingInvitation"]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", order_by="MeetingInvitation.id")
    unit_invitations: Mapped[list["MeetingUnitInvitation"]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", order_by="MeetingUnitInvitation.id")
    items: Mapped[list["AgendaItem"]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan",
        order_by="(AgendaItem.position, AgendaItem.id)", foreign_keys="AgendaItem.meeting_id")
    attendance: Mapped[list["Attendance"]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", order_by="Attendance.id")
    decisions: Mapped[list["Decision"]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", order_by="(Decision.position, Decision.id)",
        foreign_keys="Decision.meeting_id")
    minutes: Mapped[Optional["Minutes"]] = relationship(back_populates="meeting", cascade="all, delete-orphan",
                                                        uselist=False)

    __mapper_args__ = {"version_id_col": version}

    @property
    def status_enum(self) -> MeetingStatus:
        return MeetingStatus(self.status)

    @property
    def invited_department_codes(self) -> list[str]:
        return [i.department_code for i in self.invitations]

    @property
    def agenda(self) -> list["AgendaItem"]:
        """The items that are on the agenda, in order."""
        return [i for i in self.items if i.status == ItemStatus.ACCEPTED.value]

    @classmethod
    def visible_from_clause(cls, unit: Unit):
        """Meetings a workspace lists: its own, and those it is invited to."""
        invited = select(MeetingUnitInvitation.meeting_id).where(MeetingUnitInvitation.unit_id == unit.id)
        return or_(cls.unit_id == unit.id, cls.id.in_(invited))

    @classmethod
    def get_for_unit_or_404(cls, meeting_id: int, unit: Unit) -> "Meeting":
        meeting = db.session.scalar(select(cls).where(cls.id == meeting_id, cls.visible_from_clause(unit)))
        if meeting is None:
            abort(404)
        return meeting


class MeetingInvitation(db.Model):
    """A member department invited to a meeting of its unit."""

    __tablename__ = "meeting_invitations"
    __table_args__ = (UniqueConstraint("meeting_id", "department_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))

    meeting: Mapped[Meeting] = relationship(back_populates="invitations")
    department: Mapped[Department] = relationship(lazy="joined")


class MeetingUnitInvitation(db.Model):
    """The office of a lower unit invited to a meeting."""

    __tablename__ = "meeting_unit_invitations"
    __table_args__ = (UniqueConstraint("meeting_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)

    meeting: Mapped[Meeting] = relationship(back_populates="unit_invitations")
    unit: Mapped[Unit] = relationship(lazy="joined")


class AgendaItem(db.Model):
    """An agenda item (议题): proposed, then accepted, merged, deferred or rejected."""

    __tablename__ = "agenda_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    department_code: Mapped[Optional[str]] = mapped_column(ForeignKey("departments.code"))
    kind: Mapped[str] = mapped_column(String(16), default=ItemKind.PROPOSAL.value)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.PROPOSED.value)
    reason: Mapped[Optional[str]] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)
    merged_into_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"))
    source_decision_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("decisions.id", ondelete="SET NULL", use_alter=True))
    source_item_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"))
    proposed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    meeting: Mapped[Meeting] = relationship(back_populates="items", foreign_keys=[meeting_id])
    department: Mapped[Optional[Department]] = relationship(lazy="joined")
    proposed_by: Mapped[Optional[User]] = relationship()
    merged_into: Mapped[Optional["AgendaItem"]] = relationship(remote_side=[id], foreign_keys=[merged_into_id])
    materials: Mapped[list["Material"]] = relationship(back_populates="item", cascade="all, delete-orphan",
                                                       order_by="Material.id", lazy="selectin")

    __mapper_args__ = {"version_id_col": version}

    @property
    def status_enum(self) -> ItemStatus:
        return ItemStatus(self.status)


class Material(db.Model):
    """A file attached to an agenda item; stored under a random name outside static/."""

    __tablename__ = "materials"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id", ondelete="CASCADE"), index=True)
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped[AgendaItem] = relationship(back_populates="materials")


class Attendance(db.Model):
    """Sign-in (签到) of one invited department."""

    __tablename__ = "attendance"
    __table_args__ = (UniqueConstraint("meeting_id", "department_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    status: Mapped[str] = mapped_column(String(16))
    attendee_name: Mapped[str] = mapped_column(String(100), default="")
    delegate_name: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(255), default="")
    recorded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    meeting: Mapped[Meeting] = relationship(back_populates="attendance")
    department: Mapped[Department] = relationship(lazy="joined")

    @property
    def status_enum(self) -> AttendanceStatus:
        return AttendanceStatus(self.status)


class Minutes(db.Model):
    """The minutes (会议纪要) of a meeting; every save is a MinutesRevision."""

    __tablename__ = "minutes"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), unique=True)
    body: Mapped[str] = mapped_column(Text, default="")
    revision: Mapped[int] = mapped_column(default=0)
    published_at: Mapped[Optional[datetime]]
    published_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    meeting: Mapped[Meeting] = relationship(back_populates="minutes")
    revisions: Mapped[list["MinutesRevision"]] = relationship(
        back_populates="minutes", cascade="all, delete-orphan", order_by="MinutesRevision.number")

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class MinutesRevision(db.Model):
    __tablename__ = "minutes_revisions"
    __table_args__ = (UniqueConstraint("minutes_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    minutes_id: Mapped[int] = mapped_column(ForeignKey("minutes.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Required for a correction of published minutes.
    reason: Mapped[str] = mapped_column(String(500), default="")
    published: Mapped[bool] = mapped_column(default=False)

    minutes: Mapped[Minutes] = relationship(back_populates="revisions")
    author: Mapped[Optional[User]] = relationship(lazy="selectin")


class DecisionStatus(str, enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class Decision(db.Model):
    """A decision (议定事项): text, lead and co-operating departments, due date."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[Optional[int]] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    lead_department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    co_department_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_date: Mapped[Optional[date]] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=DecisionStatus.OPEN.value, index=True)
    position: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    meeting: Mapped[Meeting] = relationship(back_populates="decisions", foreign_keys=[meeting_id])
    item: Mapped[Optional[AgendaItem]] = relationship(foreign_keys=[item_id])
    lead_department: Mapped[Department] = relationship(lazy="joined")

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "lead_department": self.lead_department_code,
                "co_departments": list(self.co_department_codes or []),
                "due_date": self.due_date.isoformat() if self.due_date else None, "status": self.status}
