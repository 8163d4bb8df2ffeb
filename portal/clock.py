"""The portal's clock: Beijing wall-clock time, whatever the server's zone.

Meeting times are stored as the local time written on the notice; timestamps
(created, reported, published) are stored in UTC. Due dates and "overdue"
follow the local calendar, so a task is not overdue at 07:00 in Zhengzhou just
because the server's UTC date has not turned yet. The zone is the
configured BABEL_DEFAULT_TIMEZONE (Asia/Shanghai).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app


def local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def local_now() -> datetime:
    return datetime.now(local_zone()).replace(tzinfo=None)


def local_today() -> date:
    return local_now().date()


def to_local(value: datetime) -> datetime:
    """A stored UTC timestamp (naive) as a naive local wall-clock time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(local_zone()).replace(tzinfo=None)


def aware_local(value: datetime) -> datetime:
    """A naive local wall-clock time (a meeting's start) as an aware datetime."""
    return value.replace(tzinfo=local_zone()) if value.tzinfo is None else value.astimezone(local_zone())
