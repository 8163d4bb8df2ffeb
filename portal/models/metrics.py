"""Stored roll-ups of the metric registry (portal/metrics/): derived from the
source rows, always rebuildable.

* :class:`MetricValue`: one figure of one unit, metric and period (``current``
  for a stock, ``YYYY-MM`` on the Beijing calendar for a flow): the unit's own
  value, its subtree's (own plus the children's subtree values) and when it was
  last written.
* :class:`MetricState`: per unit, the dirty marker written in the same
  transaction as a counted write. ``generation`` counts the writes and
  ``done`` the last generation a refresh covered: the unit is dirty while
  ``generation > done``. ``pending`` says a refresh job is queued and has not
  started yet, so that further writes are coalesced into it.
* :class:`MetricReconcile`: what each reconcile found (shown on ``/healthz``).
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Optional

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._helpers import utcnow

#: Wide enough for Σ progress × weight over a province (4 decimals: percent × weight).
FIGURE = Numeric(20, 4)


class MetricValue(db.Model):
    __tablename__ = "metric_values"
    #: One metric's figures of a period across units (reporting completeness reads two metrics of
    #: a period for the whole subtree; the primary key leads with the unit).
    __table_args__ = (Index("ix_metric_values_metric_period", "metric", "period", "unit_id"),)

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: ``current`` (stocks) or ``YYYY-MM`` (flows, Beijing calendar).
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    own: Mapped[Decimal] = mapped_column(FIGURE, default=Decimal("0"))
    subtree: Mapped[Decimal] = mapped_column(FIGURE, default=Decimal("0"))
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetricState(db.Model):
    __tablename__ = "metric_state"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    generation: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    pending: Mapped[bool] = mapped_column(default=False)
    pending_since: Mapped[Optional[datetime]]
    marked_at: Mapped[Optional[datetime]]
    #: When the unit's figures (own and subtree) were last recomputed.
    refreshed_at: Mapped[Optional[datetime]]


class MetricReconcile(db.Model):
    __tablename__ = "metric_reconciles"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    seconds: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    figures: Mapped[int] = mapped_column(default=0)
    drifted: Mapped[int] = mapped_column(default=0)
    dirty_units: Mapped[int] = mapped_column(default=0)
