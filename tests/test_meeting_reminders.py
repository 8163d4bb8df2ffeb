"""Scheduled reminders: invitees a day before, silent departments two days before the agenda closes."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import Notification, Unit, User
from portal.services import meetings as svc


def _meeting(people, *, starts_in: timedelta, closes_in: timedelta | None = None, propose_as: str | None = None):
    office = db.session.get(User, people["office-410105"].id)
    unit = db.session.get(Unit, office.home_unit_id)
    now = svc.local_now()
    meeting = svc.create_meeting(unit, {"title": "提醒测试", "starts_at": now + starts_in,
                                        "agenda_closes_at": now + closes_in if closes_in else None,
                                        "invited_departments": ["edu", "civil"]}, by=office)
    svc.transition(meeting, "agenda_open", by=office)
    if propose_as:
        svc.propose_item(meeting, title="已提交", description="", by=db.session.get(User, people[propose_as].id))
    return meeting.id


def _sweep(app):
    with app.app_context():
        from jobs.meetings import send_reminders

        try:
            return send_reminders()
        finally:
            db.session.remove()


def _notes(run_in_app, kind):
    return run_in_app(lambda: sorted(n.user_id for n in db.session.scalars(
        select(Notification).where(Notification.kind == kind))))


def test_invitees_are_reminded_once_a_day_before(app, people, run_in_app):
    run_in_app(lambda: _meeting(people, starts_in=timedelta(hours=20)))
    run_in_app(lambda: _meeting(people, starts_in=timedelta(days=5)))  # too early for a reminder
    assert _sweep(app)["meeting_reminder"] == 2
    assert _notes(run_in_app, "meeting_reminder") == sorted([people["edu-410105"].id, people["civil-410105"].id])
    assert _sweep(app)["meeting_reminder"] == 0  # not twice


def test_departments_that_proposed_nothing_are_nudged(app, people, run_in_app):
    run_in_app(lambda: _meeting(people, starts_in=timedelta(days=6), closes_in=timedelta(days=1),
                                propose_as="edu-410105"))
    counts = _sweep(app)
    assert counts["agenda_nudge"] == 1
    assert _notes(run_in_app, "agenda_nudge") == [people["civil-410105"].id]


def test_reminder_command(app, people, run_in_app, monkeypatch):
    run_in_app(lambda: _meeting(people, starts_in=timedelta(hours=3)))
    monkeypatch.setitem(app.config, "CLI_LOCALE", "en")
    result = app.test_cli_runner().invoke(args=["jobs", "reminders"])
    assert result.exit_code == 0 and "2 meeting reminders" in result.output


def test_embedded_scheduler_sends_due_reminders(app, people, run_in_app, monkeypatch):
    """Without Redis the web process runs the sweep itself (not in tests by default: switched on here)."""
    import time

    import portal.scheduler as scheduler

    run_in_app(lambda: _meeting(people, starts_in=timedelta(hours=5)))
    monkeypatch.setattr(scheduler, "_started", False)
    monkeypatch.setitem(app.config, "TESTING", False)
    monkeypatch.setitem(app.config, "REDIS_URL", None)
    assert scheduler.start_embedded_scheduler(app, every_seconds=3600, first_after=1) is True
    assert scheduler.start_embedded_scheduler(app, every_seconds=3600) is False  # once per process
    # The first sweep waits (the first login after a start does not queue behind its reconcile).
    assert len(_notes(run_in_app, "meeting_reminder")) == 0
    for _ in range(80):
        if len(_notes(run_in_app, "meeting_reminder")) == 2:
            break
        time.sleep(0.1)
    assert len(_notes(run_in_app, "meeting_reminder")) == 2
