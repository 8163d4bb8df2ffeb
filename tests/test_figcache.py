"""The figures cache (portal.figcache): the consolidated view, the workspace home and the API keep
what they read from the stored figures for one epoch, and a commit that changes figures or marks a
unit dirty starts a new one. A reader never sees an answer older than the last such commit, the
store failing never fails a page, and a reader's access is decided before anything is kept."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from portal import figcache, metrics
from portal.clock import local_today
from portal.extensions import db
from portal.formatting import percent_of
from portal.models import Task, Unit, User
from portal.services import tasks as svc


def _user(people, name):
    return db.session.get(User, people[name].id)


def _unit(code):
    return Unit.by_code(code)


@pytest.fixture
def scene(app, tree, people, run_in_app, run_jobs):
    """A provincial task passed to the three streets; 410105001 reports 60 %."""
    today = run_in_app(local_today)
    task = run_in_app(lambda: svc.create_task(_unit("41"), {
        "title": "培训覆盖", "lead_department": "edu", "due_date": (today + timedelta(days=30)).isoformat()},
        by=_user(people, "office-41")).id)
    run_in_app(lambda: svc.cascade_task(db.session.get(Task, task), "streets", by=_user(people, "office-41")))
    run_jobs()
    return {"task": task, "period": today.strftime("%Y-%m")}


def _progress(html: str) -> str:
    card = re.search(r'id="figure-progress".*?class="fs-4 fw-semibold figure-value">([^<]*)<', html, re.S)
    assert card, "no progress figure"
    return card.group(1).strip()


def _instance(task_id, code):
    return db.session.scalar(select(Task).where(Task.root_id == task_id, Task.unit_id == _unit(code).id))


def test_a_report_after_the_view_was_kept_shows_at_once(app, browser, scene, people, run_in_app, run_jobs):
    browser.login("office-41")
    url = f"/province/41/dashboard/?period={scene['period']}"
    assert _progress(browser.get(url).get_data(as_text=True)) == "0.0%"
    assert _progress(browser.get(url).get_data(as_text=True)) == "0.0%"  # kept
    run_in_app(lambda: svc.report_progress(_instance(scene["task"], "410105001"), {"percent": 60},
                                           by=_user(people, "edu-410105001")))
    run_jobs()
    with app.app_context():
        m = metrics.recompute(_unit("41").id, scene["period"])
    ind = metrics.INDICATORS["progress"]
    want = percent_of(m[ind.numerator], m[ind.denominator], scale=ind.scale)
    assert want == 20.0  # 60 % of one in three
    assert _progress(browser.get(url).get_data(as_text=True)) == f"{want:.1f}%"


def test_a_unit_marked_dirty_shows_updating_on_a_kept_view(app, browser, scene, run_in_app):
    browser.login("office-41")
    url = f"/province/41/dashboard/?period={scene['period']}"
    assert 'id="stale"' not in browser.get(url).get_data(as_text=True)
    browser.get("/province/41/")  # the home's figures are kept as well

    def mark():
        from portal.metrics.engine import mark_dirty
        from portal.queue import discard_pending

        mark_dirty([_unit("410105001").id])
        discard_pending()  # the refresh never comes: the mark stays
    run_in_app(mark)
    assert 'id="stale"' in browser.get(url).get_data(as_text=True)
    assert 'id="activity-figures-stale"' in browser.get("/province/41/").get_data(as_text=True)


def test_a_kept_view_reads_no_stored_figures_until_the_next_change(app, browser, scene):
    browser.login("office-41")
    url = f"/province/41/dashboard/?period={scene['period']}"
    browser.get(url)
    assert _metric_reads(app, lambda: browser.get(url)) == []


def test_the_store_failing_never_fails_a_page(app, browser, scene, monkeypatch):
    browser.login("office-41")

    def broken(*args, **kwargs):
        raise ConnectionError("store down")
    monkeypatch.setattr(figcache.cache, "get", broken)
    monkeypatch.setattr(figcache.cache, "set", broken)
    response = browser.get(f"/province/41/dashboard/?period={scene['period']}")
    assert response.status_code == 200
    assert _progress(response.get_data(as_text=True)) == "0.0%"
    assert browser.get("/province/41/").status_code == 200


def test_a_kept_view_is_not_shown_to_a_reader_outside_it(app, browser, new_browser, scene):
    browser.login("office-41")
    assert browser.get(f"/city/4101/dashboard/?period={scene['period']}").status_code == 200  # kept now
    sibling = new_browser()
    sibling.login("office-4102")
    assert sibling.get(f"/city/4101/dashboard/?period={scene['period']}").status_code == 404
    street = new_browser()
    street.login("office-410105002")
    page = street.get(f"/street/410105002/dashboard/?period={scene['period']}").get_data(as_text=True)
    assert 'id="ranking"' not in page and "410105001" not in page


def test_a_transaction_reads_its_own_changes(app, scene):
    """Inside the transaction that wrote figures the cache is bypassed (and nothing is kept)."""
    with app.app_context():
        province = _unit("41")
        before = metrics.read(province, scene["period"])
        from portal.metrics.engine import mark_dirty
        from portal.queue import discard_pending

        mark_dirty([_unit("410105001").id])
        assert metrics.read(province, scene["period"])["stale"] is True
        assert before["stale"] is False
        discard_pending()
        db.session.rollback()
        assert metrics.read(province, scene["period"])["stale"] is False
        db.session.remove()


def test_the_kept_body_follows_sort_department_and_language(app, browser, scene, people, run_in_app, run_jobs):
    run_in_app(lambda: svc.report_progress(_instance(scene["task"], "410105001"), {"percent": 60},
                                           by=_user(people, "edu-410105001")))
    run_jobs()
    browser.login("office-41")
    city = f"/city/4101/dashboard/?period={scene['period']}&sort=progress"

    def order(html):
        return re.findall(r'<tr data-code="(\d+)">', html.split('id="ranking"')[1].split("</table>")[0])
    assert order(browser.get(city + "&dir=desc").get_data(as_text=True)) == ["410105", "410102"]  # 30 % before 0 %
    assert order(browser.get(city + "&dir=asc").get_data(as_text=True)) == ["410102", "410105"]
    base = f"/district/410105/dashboard/?period={scene['period']}"
    assert 'id="department-badge"' not in browser.get(base).get_data(as_text=True)
    assert 'id="department-badge"' in browser.get(base + "&department=edu").get_data(as_text=True)
    chinese = browser.get(base).get_data(as_text=True)
    english = browser.get(base + "&lang=en").get_data(as_text=True)
    assert "Ranking of the units below" in english and "Ranking of the units below" not in chinese


def test_a_liaisons_view_is_their_own_and_not_the_kept_one(app, browser, new_browser, scene):
    office = browser
    office.login("office-410105")
    url = f"/district/410105/dashboard/?period={scene['period']}"
    assert 'id="ranking"' in office.get(url).get_data(as_text=True)  # kept for readers of the units below
    liaison = new_browser()
    liaison.login("edu-410105")
    page = liaison.get(url).get_data(as_text=True)
    assert 'id="ranking"' not in page and 'id="own-scope"' in page


def test_the_kept_workbook_follows_a_report(app, browser, scene, people, run_in_app, run_jobs):
    import io

    from openpyxl import load_workbook

    browser.login("office-41")
    url = f"/province/41/dashboard/export.xlsx?period={scene['period']}"

    def cells():
        wb = load_workbook(io.BytesIO(browser.get(url).data))
        return [[c for c in row] for ws in wb.worksheets for row in ws.iter_rows(values_only=True)]
    first = cells()
    assert cells() == first  # kept
    run_in_app(lambda: svc.report_progress(_instance(scene["task"], "410105001"), {"percent": 60},
                                           by=_user(people, "edu-410105001")))
    run_jobs()
    assert cells() != first


def _metric_reads(app, fetch) -> list[str]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        fetch()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return [s for s in statements if "metric_values" in s or "metric_state" in s]


def test_a_write_renews_its_own_subtrees_only(app, browser, scene, people, run_in_app, run_jobs):
    """A task of Kaifeng (4102) renews the province's and Kaifeng's views, not Zhengzhou's (4101)."""
    browser.login("office-41")
    zhengzhou = f"/city/4101/dashboard/?period={scene['period']}"
    province = f"/province/41/dashboard/?period={scene['period']}"
    browser.get(zhengzhou)
    before = browser.get(province).get_data(as_text=True)
    today = run_in_app(local_today)
    run_in_app(lambda: svc.create_task(_unit("4102"), {
        "title": "开封任务", "lead_department": "edu", "due_date": (today - timedelta(days=2)).isoformat()},
        by=_user(people, "office-4102")))
    run_jobs()
    assert _metric_reads(app, lambda: browser.get(zhengzhou)) == []  # still kept
    after = browser.get(province).get_data(as_text=True)
    overdue = re.compile(r'id="figure-tasks-overdue".*?class="fs-4 fw-semibold figure-value">([^<]*)<', re.S)
    assert (overdue.search(before).group(1).strip(), overdue.search(after).group(1).strip()) == ("0", "1")


def test_renamed_units_renew_every_view(app, browser, scene, run_in_app):
    from portal.services.units import import_units

    browser.login("office-41")
    url = f"/province/41/dashboard/?period={scene['period']}"
    assert "开封市" in browser.get(url).get_data(as_text=True)

    def rename():
        import_units({"units": [{"code": "41", "name": "河南省", "tier": "province", "parent": None},
                                {"code": "4101", "name": "郑州市", "tier": "city", "parent": "41"},
                                {"code": "4102", "name": "开封市（新）", "tier": "city", "parent": "41"}]})
    run_in_app(rename)
    assert "开封市（新）" in browser.get(url).get_data(as_text=True)
