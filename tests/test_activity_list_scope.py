"""The activity register's list (pages, API, calendar): a subtree list holds exactly the activities of
the units below that its reader may open, newest first, whether the reader reads everything below (no
visibility filter is applied then), reads one unit only (a liaison), or narrows to one unit below."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Activity, Unit, User
from portal.services import activities as svc


@pytest.fixture
def registered(tree, people, run_in_app):
    def make(code, title, day):
        return svc.create_activity(Unit.by_code(code), {
            "title": title, "category": "legal", "lead_department": "edu", "start_date": day.isoformat(),
            "participants": {"youth": 1, "elders": 1, "others": 1}, "volunteers": 1, "volunteer_hours": 1,
            "funds": 0}, by=db.session.get(User, people[f"office-{code}"].id)).id
    base = date(2026, 3, 1)
    return {title: run_in_app(lambda c=code, t=title, d=base + timedelta(days=n): make(c, t, d))
            for n, (code, title) in enumerate((("410105001", "街道一"), ("410105002", "街道二"), ("410102001", "中原街道"),
                                               ("4102", "开封"), ("410105", "金水区"), ("410105001", "街道一再")))}


def _titles(app, people, username, code, **kw):
    with app.app_context():
        user = db.session.get(User, people[username].id)
        stmt = svc.activity_list(Unit.by_code(code), user, **kw)
        got = [a.title for a in db.session.scalars(stmt)]
        db.session.remove()
    return got


def _expected(app, code, only=None):
    """Recomputed: every activity whose unit's path starts with the unit's, newest first (then newest id)."""
    with app.app_context():
        top = Unit.by_code(code)
        rows = db.session.execute(select(Activity.title, Activity.start_date, Activity.id, Unit.path)
                                  .join(Unit, Unit.id == Activity.unit_id)).all()
        db.session.remove()
    rows = [r for r in rows if r.path.startswith(top.path) and (only is None or r.path in only)]
    return [r.title for r in sorted(rows, key=lambda r: (r.start_date, r.id), reverse=True)]


def test_the_province_reads_every_activity_newest_first(app, people, registered):
    assert _titles(app, people, "office-41", "41") == _expected(app, "41")
    assert len(_expected(app, "41")) == 6


def test_a_city_reads_its_subtree_and_not_its_sibling(app, people, registered):
    got = _titles(app, people, "office-4101", "4101")
    assert got == _expected(app, "4101") and "开封" not in got
    assert _titles(app, people, "office-41", "4101") == _expected(app, "4101")


def test_narrowed_to_a_unit_below(app, people, registered):
    assert _titles(app, people, "office-41", "41", below="410105") == _expected(app, "410105")
    assert _titles(app, people, "office-4101", "4101", below="410105001") == ["街道一再", "街道一"]


def test_a_liaison_reads_only_its_own_unit_in_a_subtree_list(app, people, registered):
    with app.app_context():
        own = Unit.by_code("410105").path
        db.session.remove()
    assert _titles(app, people, "edu-410105", "410105") == _expected(app, "410105", only={own}) == ["金水区"]
