"""SQL that differs between SQLite and PostgreSQL, in one place: the Beijing
calendar of a stored UTC timestamp, upserts, and the unit tree's closure."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Date, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import Unit


def dialect() -> str:
    return db.engine.dialect.name


def _zone() -> str:
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


def _sqlite_offset() -> str:
    # SQLite knows no time zones: the zone's offset now (Asia/Shanghai has had no DST since 1991).
    offset = datetime.now(ZoneInfo(_zone())).utcoffset()
    return f"{int(offset.total_seconds() // 60):+d} minutes"


def _local_timestamp(column):
    """A stored naive UTC timestamp as the Beijing wall-clock time (PostgreSQL)."""
    return func.timezone(literal(_zone()), func.timezone(literal("UTC"), column))


def local_date(column):
    """The Beijing calendar day of a stored (naive UTC) timestamp."""
    if dialect() == "postgresql":
        return func.cast(_local_timestamp(column), Date)
    return func.date(column, literal(_sqlite_offset()))


def local_month(column):
    """``YYYY-MM`` of a stored (naive UTC) timestamp on the Beijing calendar."""
    if dialect() == "postgresql":
        return func.to_char(_local_timestamp(column), literal("YYYY-MM"))
    return func.strftime(literal("%Y-%m"), column, literal(_sqlite_offset()))


def wall_month(column):
    """``YYYY-MM`` of a timestamp already stored as local wall-clock time (a meeting's start)."""
    if dialect() == "postgresql":
        return func.to_char(column, literal("YYYY-MM"))
    return func.strftime(literal("%Y-%m"), column)


def insert(table):
    """An INSERT that can take ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
    return (postgresql.insert if dialect() == "postgresql" else sqlite.insert)(table)


def closure():
    """(unit_id, ancestor_id) for every unit and each of its ancestors, itself included."""
    base = select(Unit.id.label("unit_id"), Unit.id.label("ancestor_id")).cte("unit_closure", recursive=True)
    parent = Unit.__table__.alias("closure_parent")
    return base.union_all(select(base.c.unit_id, parent.c.parent_id)
                          .join(parent, parent.c.id == base.c.ancestor_id)
                          .where(parent.c.parent_id.is_not(None)))
