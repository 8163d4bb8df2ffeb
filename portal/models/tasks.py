"""Tasks (任务): decisions become department tasks, cascade down the tiers
(逐级分解), and are reported on (进度报送), reviewed and supervised (督办)."""
from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Optional

from flask import abort
from flask_babel import lazy_pgettext
from sqlalchemy import (JSON, Date, ForeignKey, Index, Numeric, String, Text, and_, bindparam, cast, false, func, or_,
                        select, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models._helpers import utcnow
from portal.models.accounts import User
from portal.models.units import Department, Unit


class TaskStatus(str, enum.Enum):
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return str(TASK_STATUS_LABELS[self])


# A context of their own: "Accepted" is 已验收 for a task but 已采纳 for an agenda item.
TASK_STATUS_LABELS = {
    TaskStatus.ASSIGNED: lazy_pgettext("task", "Assigned"),
    TaskStatus.IN_PROGRESS: lazy_pgettext("task", "In progress"),
    TaskStatus.SUBMITTED: lazy_pgettext("task", "Submitted for review"),
    TaskStatus.ACCEPTED: lazy_pgettext("task", "Accepted"),
    TaskStatus.RETURNED: lazy_pgettext("task", "Returned"),
    TaskStatus.CANCELLED: lazy_pgettext("task", "Cancelled"),
}
#: States in which a task still has work to do (and can be overdue).
OPEN_STATES = (TaskStatus.ASSIGNED.value, TaskStatus.IN_PROGRESS.value, TaskStatus.SUBMITTED.value,
               TaskStatus.RETURNED.value)
#: ``ix_tasks_open_list_order``'s predicate: :data:`OPEN_STATES`, as :meth:`Task.open_clause` writes them.
_OPEN_PREDICATE = "status IN (" + ", ".join(f"'{state}'" for state in OPEN_STATES) + ")"
#: What a target counted from activities sums: the number of activities, their person-times,
#: volunteer hours or funds.
COUNTED_MEASURES = ("count", "person_times", "volunteer_hours", "funds")
#: States in which progress can be reported (not while waiting for review).
REPORTABLE_STATES = (TaskStatus.ASSIGNED.value, TaskStatus.IN_PROGRESS.value, TaskStatus.RETURNED.value)


def _code_of_unit(context) -> str:
    """Default of ``Task.unit_code`` for inserts that give only the unit id."""
    unit_id = context.get_current_parameters().get("unit_id")
    return context.connection.scalar(select(Unit.code).where(Unit.id == unit_id))


class Task(db.Model):
    """One unit's instance of a task. A cascaded task has one child instance per
    receiving unit; the definition (title, description, target) is the root's."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    #: The unit's code, copied (codes never change): the lists' order (due date, unit code, id)
    #: is then one index on this table (``ix_tasks_list_order``), with no sort across the join.
    unit_code: Mapped[str] = mapped_column(String(16), default=_code_of_unit)
    #: Indexed with the unit's code (``ix_tasks_parent_order``): a task's children in the page's order.
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    root_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    decision_id: Mapped[Optional[int]] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    lead_department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    co_department_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_date: Mapped[date] = mapped_column(Date)
    target_name: Mapped[Optional[str]] = mapped_column(String(100))
    target_unit: Mapped[Optional[str]] = mapped_column(String(32))
    target_value: Mapped[Optional[Decimal]] = mapped_column(Numeric(14, 2))
    #: A target counted from activities: the category (set: the actual value is counted, never
    #: typed), the measure (:data:`COUNTED_MEASURES`) and optionally the organising department.
    counted_category: Mapped[Optional[str]] = mapped_column(ForeignKey("activity_categories.code"))
    counted_measure: Mapped[Optional[str]] = mapped_column(String(16))
    counted_department: Mapped[Optional[str]] = mapped_column(ForeignKey("departments.code"))
    weight: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("1"))
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.ASSIGNED.value, index=True)
    #: Latest reported percent (a leaf) or the roll-up of the children (a cascaded task).
    progress: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))
    actual_value: Mapped[Optional[Decimal]] = mapped_column(Numeric(14, 2))
    rolled_up_at: Mapped[Optional[datetime]]
    cancel_reason: Mapped[Optional[str]] = mapped_column(Text)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    unit: Mapped[Unit] = relationship(lazy="joined")
    parent: Mapped[Optional["Task"]] = relationship(remote_side=[id], foreign_keys=[parent_id])
    lead_department: Mapped[Department] = relationship(lazy="joined", foreign_keys=[lead_department_code])
    reports: Mapped[list["TaskReport"]] = relationship(back_populates="task", cascade="all, delete-orphan",
                                                      order_by="TaskReport.id.desc()")
    reviews: Mapped[list["TaskReview"]] = relationship(back_populates="task", cascade="all, delete-orphan",
                                                      order_by="TaskReview.id.desc()")
    notices: Mapped[list["SupervisionNotice"]] = relationship(back_populates="task", cascade="all, delete-orphan",
                                                              order_by="SupervisionNotice.id.desc()")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_tasks_list_order", "due_date", "unit_code", "id"),
                      Index("ix_tasks_parent_order", "parent_id", "unit_code", "id"),
                      # The open tasks in the lists' order: the overdue and due-soon lists (migration 0017).
                      Index("ix_tasks_open_list_order", "due_date", "unit_code", "id",
                            postgresql_where=text(_OPEN_PREDICATE), sqlite_where=text(_OPEN_PREDICATE)))

    @property
    def status_enum(self) -> TaskStatus:
        return TaskStatus(self.status)

    @property
    def departments(self) -> list[str]:
        return [self.lead_department_code, *(self.co_department_codes or [])]

    @property
    def is_counted(self) -> bool:
        """Whether the actual value is counted from the unit's activities."""
        return self.counted_category is not None

    def counted_period(self) -> tuple[date, date]:
        """The activities counted: those starting from 1 January of the due date's year up to
        and including the due date."""
        return date(self.due_date.year, 1, 1), self.due_date

    def is_overdue(self, today: date) -> bool:
        return self.overdue_on(self.status, self.due_date, today)

    @staticmethod
    def overdue_on(status: str, due_date: date, today: date) -> bool:
        """Whether a task in ``status`` due on ``due_date`` is overdue ``today`` (for rows that are
        not whole tasks: the children on a task's page)."""
        return status in OPEN_STATES and due_date < today

    @classmethod
    def open_clause(cls):
        """The task is open (:data:`OPEN_STATES`), with the states written into the SQL, not sent as
        parameters: PostgreSQL then matches ``ix_tasks_open_list_order``'s predicate in any plan
        (with parameters, a prepared statement's generic plan could not use the partial index)."""
        return cls.status.in_(bindparam("open_states", list(OPEN_STATES), expanding=True, literal_execute=True,
                                        unique=True))

    @classmethod
    def overdue_clause(cls, today: date):
        """Overdue is computed from the due date, never stored."""
        return and_(cls.open_clause(), cls.due_date < today)

    @classmethod
    def department_clause(cls, codes: list[str]):
        """Tasks whose lead or a co-operating department is one of ``codes``. The co-operating
        departments are a JSON list, matched on its text (``"civil"`` with the quotes), which
        works the same on SQLite and PostgreSQL."""
        if not codes:
            return false()
        co_text = cast(cls.co_department_codes, String)
        return or_(cls.lead_department_code.in_(codes),
                   *[co_text.contains(f'"{code}"', autoescape=True) for code in codes])

    @classmethod
    def get_for_unit_or_404(cls, task_id: int, unit: Unit) -> "Task":
        """A task seen from a workspace: the unit's own instances, and its
        subtree's (an upper office supervises the instances below it)."""
        task = db.session.scalar(select(cls).join(Unit, Unit.id == cls.unit_id)
                                 .where(cls.id == task_id, Unit.subtree_clause(unit)))
        if task is None:
            abort(404)
        return task

    def child_summary(self, *where) -> dict[str, int]:
        """Child instances by state; ``where`` narrows them (e.g. to those a reader may open)."""
        rows = db.session.execute(select(Task.status, func.count()).where(Task.parent_id == self.id, *where)
                                  .group_by(Task.status)).all()
        return {status: count for status, count in rows}


class TaskReport(db.Model):
    """A progress report (进度报送); every report is kept."""

    __tablename__ = "task_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    department_code: Mapped[Optional[str]] = mapped_column(ForeignKey("departments.code"))
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    actual_value: Mapped[Optional[Decimal]] = mapped_column(Numeric(14, 2))
    narrative: Mapped[str] = mapped_column(Text, default="")
    reported_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    task: Mapped[Task] = relationship(back_populates="reports")
    # Loaded with the reports they belong to: a task page lists every report with its author and files.
    reported_by: Mapped[Optional[User]] = relationship(lazy="selectin")
    department: Mapped[Optional[Department]] = relationship(lazy="joined")
    evidence: Mapped[list["TaskEvidence"]] = relationship(back_populates="report", cascade="all, delete-orphan",
                                                          order_by="TaskEvidence.id", lazy="selectin")


class TaskEvidence(db.Model):
    """An evidence file of a report; stored under a random name outside static/."""

    __tablename__ = "task_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("task_reports.id", ondelete="CASCADE"), index=True)
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))

    report: Mapped[TaskReport] = relationship(back_populates="evidence")


class TaskReview(db.Model):
    """The assigning unit's verdict on a submitted task: accept (验收) or return (退回)."""

    __tablename__ = "task_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    reviewed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    task: Mapped[Task] = relationship(back_populates="reviews")
    reviewed_by: Mapped[Optional[User]] = relationship(lazy="selectin")


class SupervisionNotice(db.Model):
    """A supervision notice (督办单) from an upper office to a lower unit's task."""

    __tablename__ = "supervision_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    from_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    text: Mapped[str] = mapped_column(Text)
    sent_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    response: Mapped[Optional[str]] = mapped_column(Text)
    responded_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    responded_at: Mapped[Optional[datetime]]

    task: Mapped[Task] = relationship(back_populates="notices")
    from_unit: Mapped[Unit] = relationship(lazy="joined")
    sent_by: Mapped[Optional[User]] = relationship(foreign_keys=[sent_by_id])
    responded_by: Mapped[Optional[User]] = relationship(foreign_keys=[responded_by_id])

    @property
    def is_open(self) -> bool:
        return self.responded_at is None


class CascadeRun(db.Model):
    """A cascade being done by a job, so the page can show its progress."""

    __tablename__ = "cascade_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    target: Mapped[list[str] | str] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued, running, finished, failed
    error: Mapped[Optional[str]] = mapped_column(Text)
    requested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[datetime]]

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.state == "finished" else 0)
