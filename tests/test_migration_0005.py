"""Migration 0005 on existing data: every account gets a session key of its own;
look-alike user names already in the database are kept apart, not lost."""
from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.extensions import db
from tests.conftest import _test_config


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="builds a scratch SQLite database of its own")
def test_upgrade_backfills_keys_renames_look_alikes_and_downgrades(tmp_path):
    from flask_migrate import downgrade, upgrade

    scratch = create_app(dict(_test_config(), SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/m.sqlite3"))
    with scratch.app_context():
        upgrade(revision="0004")
        with db.engine.begin() as conn:
            for name in ("office-41", "Office-41", "edu-4101"):
                conn.execute(sa.text("INSERT INTO users (username, display_name, password_hash, active, "
                                     "created_at, password_changed_at) VALUES (:n, :n, 'x', 1, "
                                     "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"n": name})
        upgrade(revision="0005")
        with db.engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT id, username, active, session_key FROM users ORDER BY id")).all()
            assert [(r.username, bool(r.active)) for r in rows] == [
                ("office-41", True), (f"Office-41-dup{rows[1].id}", False), ("edu-4101", True)]
            keys = [r.session_key for r in rows]
            assert all(keys) and len(set(keys)) == 3
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(sa.text("INSERT INTO users (username, display_name, password_hash, active, "
                                     "created_at, password_changed_at, session_key) VALUES ('EDU-4101', 'x', "
                                     "'x', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'k')"))
        downgrade(revision="0004")
        with db.engine.begin() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("users")}
            assert "session_key" not in columns
            conn.execute(sa.text("INSERT INTO users (username, display_name, password_hash, active, created_at, "
                                 "password_changed_at) VALUES ('EDU-4101', 'x', 'x', 1, CURRENT_TIMESTAMP, "
                                 "CURRENT_TIMESTAMP)"))
        db.session.remove()
