"""What every page pays before its own work: the account, its memberships and the header's
unread count come in one statement, and the count follows what the request itself changes."""
from __future__ import annotations

import re

from flask import g
from sqlalchemy import event, select

from portal.extensions import db
from portal.models import Notification, User
from portal.services import notifications as notes


def _statements(app, fn):
    seen = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        result = fn()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return result, seen


def _note(run_in_app, username: str, key: str) -> None:
    def add():
        uid = db.session.scalar(select(User.id).where(User.username == username))
        notes.notify(uid, "meeting_reminder", params={"title": "联席会议", "unit": "金水区", "when": "12月1日"},
                     dedupe_key=key)
        db.session.commit()
    run_in_app(add)


def test_the_account_its_memberships_and_its_unread_count_are_one_statement(app, browser, people, run_in_app):
    _note(run_in_app, "edu-410105001", "a")
    _note(run_in_app, "edu-410105001", "b")
    browser.login("edu-410105001")
    response, seen = _statements(app, lambda: browser.get("/street/410105001/tasks/"))
    page = response.get_data(as_text=True)
    assert 'id="unread-count">2<' in page
    about_the_reader = [s for s in seen if re.search(r"\bFROM (users|memberships|notifications)\b", s)]
    assert len(about_the_reader) == 1, about_the_reader
    assert "memberships" in about_the_reader[0] and "notifications" in about_the_reader[0]


def test_the_kept_count_follows_a_write_a_read_and_a_commit_in_the_same_request(app, people, run_in_app):
    _note(run_in_app, "edu-410105001", "a")
    uid = run_in_app(lambda: db.session.scalar(select(User.id).where(User.username == "edu-410105001")))
    with app.test_request_context("/"):
        user = notes.load_with_unread(uid)
        assert notes.unread_count(user) == 1
        notes.notify(uid, "meeting_reminder", params={"title": "t", "unit": "u", "when": "w"}, dedupe_key="b")
        assert notes.unread_count(user) == 2          # written in this request, not yet committed
        db.session.commit()
        assert "_unread" not in g
        note = db.session.scalar(select(Notification).where(Notification.dedupe_key == "a"))
        notes.load_with_unread(uid)
        notes.mark_read(note, by=user)
        assert notes.unread_count(user) == 1
        notes.load_with_unread(uid)
        notes.mark_all_read(user)
        assert notes.unread_count(user) == 0
        db.session.rollback()
    # Another account's kept count is never answered for this one.
    other = run_in_app(lambda: db.session.scalar(select(User.id).where(User.username == "edu-410105002")))
    with app.test_request_context("/"):
        notes.load_with_unread(other)
        user = db.session.get(User, uid)
        assert notes.unread_count(user) == 2          # a and b: the reads above were rolled back
        db.session.rollback()
