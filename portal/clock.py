"""The portal's clock: Beijing wall-clock time, whatever the server's zone.

Meeting times are stored as the local time written on the notice; due dates
and "overdue" follow the local calendar, so a task is not overdue at 07:00 in
Zhengzhou just because the server's UTC date has not turned yet.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def local_now() -> datetime:
    return datetime.now(ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])).replace(tzinfo=None)


def local_today() -> date:
    return local_now().date()
