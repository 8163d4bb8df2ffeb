"""Briefings (工作简报): the Word document has the consolidated view's figures (equal to a
recomputation from the rows on a small tree) and its issue number (第N期 per unit and year, a
new year restarting at 1, two units counting apart); only the readers of a unit's units below
see its briefings (a sibling city neither asks for nor downloads another's, a street has none);
a bad period is refused with the field named; the API's shapes; a failing job leaves the
briefing failed with its reason. On either backend (the job in-process, or on a real worker)."""
from __future__ import annotations

import io
import re
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from docx import Document
from sqlalchemy import select, update

from portal import metrics
from portal.clock import local_today
from portal.extensions import db
from portal.formatting import percent_of
from portal.models import Briefing, Decision, Meeting, Task, TaskReport, Unit, User
from tests.conftest import api_token


def _user(people, name):
    return db.session.get(User, people[name].id)


def _unit(code):
    return Unit.by_code(code)


def _instance(task_id, code):
    return db.session.scalar(select(Task).where(Task.root_id == task_id, Task.unit_id == _unit(code).id))


@pytest.fixture
def scene(small_tasks, run_in_app):
    """A provincial task passed down to the three streets and backdated to last month (when nobody
    reported); this month 410105001 reports 60 % with a narrative and is accepted, 410105002 reports
    40 %; the district 410105 has a task of its own due yesterday (overdue) and a held meeting this
    month with a decision. Kaifeng (4102) has nothing."""
    made = small_tasks(narrative="完成社区学校培训三场")
    today, a = made["today"], made["a"]

    def backdate_and_meet():
        last_month = today.replace(day=1) - timedelta(days=1)
        db.session.execute(update(Task).where(Task.root_id == a).values(created_at=last_month))
        db.session.execute(update(Task).where(Task.id == a).values(created_at=last_month))
        from datetime import datetime

        meeting = Meeting(unit_id=_unit("410105").id, title="金水区社区教育联席会议第一次全体会议",
                          starts_at=datetime(today.year, today.month, 1, 9, 30), status="held")
        db.session.add(meeting)
        db.session.flush()
        db.session.add(Decision(meeting_id=meeting.id, text="各街道年底前建成社区学校", lead_department_code="edu",
                                co_department_codes=["civil"], due_date=date(today.year, 12, 31)))
        db.session.commit()
        metrics.rebuild_all()
    run_in_app(backdate_and_meet)
    return {"a": a, "period": today.strftime("%Y-%m"), "today": today}


def _shown(key: str, value) -> str:
    if key in metrics.INDICATORS:
        return "—" if value is None else f"{value:.1f}%"
    return f"{value:,}"


def _expected(app, code: str, period: str) -> dict:
    """A unit's figures recomputed from the rows (no stored value read)."""
    with app.app_context():
        m = metrics.recompute(_unit(code).id, period)
    values = dict(m)
    for key, ind in metrics.INDICATORS.items():
        values[key] = percent_of(m[ind.numerator], m[ind.denominator], scale=ind.scale)
    return values


def _issue(browser, path: str, period: str):
    return browser.post_form(f"{path}dashboard/briefings/", {"period": period}, page=f"{path}dashboard/briefings/")


def _docx(response) -> Document:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return Document(io.BytesIO(response.get_data()))


def _paragraphs(doc) -> list[str]:
    return [p.text for p in doc.paragraphs]


def _rows(table) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows]


def _briefings(app, code: str) -> list[Briefing]:
    with app.app_context():
        found = list(db.session.scalars(select(Briefing).join(Unit).where(Unit.code == code).order_by(Briefing.id)))
        db.session.expunge_all()
        return found


def test_the_briefing_has_the_views_figures_ranking_and_number(app, browser, scene, run_jobs):
    period, today = scene["period"], scene["today"]
    previous = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    browser.login("office-41")
    response = _issue(browser, "/province/41/", period)
    assert response.status_code == 302
    briefing = _briefings(app, "41")[0]
    assert response.headers["Location"].endswith(f"/province/41/dashboard/briefings/{briefing.id}")
    run_jobs()
    page = browser.get(f"/province/41/dashboard/briefings/{briefing.id}").get_data(as_text=True)
    assert 'data-state="done"' in page and "hx-get" not in page  # polling stops once done
    download = browser.get(f"/province/41/dashboard/briefings/{briefing.id}/download")
    name = f"河南省工作简报{today.year}年第1期.docx"
    assert f"filename*=UTF-8''{quote(name)}" in download.headers["Content-Disposition"]
    assert f'filename="briefing-41-{today.year}-1.docx"' in download.headers["Content-Disposition"]
    doc = _docx(download)
    texts = _paragraphs(doc)
    assert texts[0] == "河南省社区教育工作简报" and "第1期" in texts
    assert any(t.startswith("河南省社区教育办公室") and f"{today.year}年{today.month}月{today.day}日" in t
               for t in texts)

    # 一、主要指标: every key figure is the province's subtree figure, recomputed, as the view shows it.
    # The previous period's column is the stored figures the view's trend compares with.
    now = _expected(app, "41", period)
    with app.app_context():
        from portal import consolidated as cv

        stored_before = cv.read_one(_unit("41"), previous)
        before = {k: stored_before.value(k) for k in ("completion_rate", "on_time_rate", "progress",
                                                       "reporting_rate", "tasks.overdue", "meetings.held")}
    key_rows = _rows(doc.tables[0])[1:]
    keys = ("completion_rate", "on_time_rate", "progress", "reporting_rate", "tasks.overdue", "meetings.held")
    assert [row[0] for row in key_rows] == ["完成率", "按期完成率", "加权进度", "报送率", "逾期任务", "已召开会议"]
    assert [row[1] for row in key_rows] == [_shown(k, now[k]) for k in keys]
    assert [row[2] for row in key_rows] == [_shown(k, before[k]) for k in keys]
    assert now["completion_rate"] == 25.0 and now["tasks.overdue"] == 1  # the scene is what we think
    assert before["reporting_rate"] == _expected(app, "41", previous)["reporting_rate"] == 0.0
    assert now["reporting_rate"] is not None
    assert key_rows[3][3] == f"上升{now['reporting_rate']:.1f}个百分点"

    # 二、各市情况: one row per city, by completion rate, every column recomputed.
    ranking = _rows(doc.tables[1])
    assert ranking[0][:2] == ["序号", "单位"]
    assert [row[1] for row in ranking[1:]] == ["郑州市", "开封市"]
    for row, code in zip(ranking[1:], ("4101", "4102")):
        want = _expected(app, code, period)
        assert row[2:] == [_shown(k, want[k]) for k in ("completion_rate", "on_time_rate", "progress",
                                                         "reporting_rate", "tasks.overdue")], code
    # 三、the most improved (reporting rate against last month) and the most overdue.
    zhengzhou = _expected(app, "4101", period)["reporting_rate"]
    assert any(f"郑州市（由0.0%升至{zhengzhou:.1f}%，提高{zhengzhou:.1f}个百分点）" in t for t in texts)
    assert any("郑州市（逾期任务1项" in t for t in texts)
    assert not any("开封市（" in t for t in texts)
    # 五、工作动态: the accepted street's narrative.
    assert "（一）经八路街道：培训覆盖。完成社区学校培训三场。" in texts
    with app.app_context():
        stored = db.session.get(Briefing, briefing.id)
        assert stored.state == "done" and stored.computed_at is not None and stored.size == len(download.get_data())


def test_the_district_briefing_has_its_meetings_decisions(app, browser, scene, run_jobs):
    browser.login("office-410105")
    assert _issue(browser, "/district/410105/", scene["period"]).status_code == 302
    run_jobs()
    briefing = _briefings(app, "410105")[0]
    doc = _docx(browser.get(f"/district/410105/dashboard/briefings/{briefing.id}/download"))
    texts = _paragraphs(doc)
    assert any("各县" not in t and t.endswith("各街道（乡镇）情况") for t in texts)
    assert any("各街道年底前建成社区学校" in t and "牵头单位：金水区教育局" in t for t in texts)
    assert [row[1] for row in _rows(doc.tables[1])[1:]] == ["经八路街道", "花园路街道"]  # 100 % before 0 %


def test_numbers_count_per_unit_and_restart_each_year(app, tree, people, run_in_app, monkeypatch):
    from portal.services import briefings as service

    period = run_in_app(local_today).strftime("%Y-%m")

    def issue(code, user):
        return run_in_app(lambda: (lambda b: (b.year, b.number))(
            service.request_briefing(_unit(code), {"period": period}, by=_user(people, user))))

    year = run_in_app(local_today).year
    # A number of last year's does not carry on.
    run_in_app(lambda: db.session.add(Briefing(unit_id=_unit("41").id, period=f"{year - 1}-12", year=year - 1,
                                               number=7, state="done")))
    assert issue("41", "office-41") == (year, 1)
    assert issue("41", "office-41") == (year, 2)
    assert issue("4101", "office-4101") == (year, 1)   # another unit counts on its own
    assert issue("4101", "office-41") == (year, 2)     # the office above issues in the unit's numbering
    monkeypatch.setattr(service, "local_today", lambda: date(year + 1, 1, 2))
    assert issue("41", "office-41") == (year + 1, 1)   # a new year restarts at 1
    assert issue("41", "office-41") == (year + 1, 2)


def test_a_sibling_city_neither_asks_for_nor_downloads_anothers(app, browser, new_browser, scene, run_jobs):
    period = scene["period"]
    browser.login("office-4101")
    assert _issue(browser, "/city/4101/", period).status_code == 302
    run_jobs()
    theirs = _briefings(app, "4101")[0]
    other = new_browser()
    other.login("office-4102")
    token = other.csrf("/city/4102/dashboard/briefings/")
    for url in ("/city/4101/dashboard/briefings/", f"/city/4101/dashboard/briefings/{theirs.id}",
                f"/city/4101/dashboard/briefings/{theirs.id}/download",
                # through its own workspace, the other city's briefing is not there either
                f"/city/4102/dashboard/briefings/{theirs.id}", f"/city/4102/dashboard/briefings/{theirs.id}/download"):
        assert other.get(url).status_code == 404, url
    assert other.client.post("/city/4101/dashboard/briefings/", data={"csrf_token": token,
                                                                     "period": period}).status_code == 404
    headers = api_token(other.client, "office-4102")
    assert other.client.get(f"/api/v1/briefings/{theirs.id}", headers=headers).status_code == 404
    assert other.client.post("/api/v1/units/4101/briefings", json={"period": period},
                             headers=headers).status_code == 404
    assert [b.id for b in _briefings(app, "4101")] == [theirs.id]  # nothing was issued
    # Its own list does not show the other's briefing.
    assert f'data-id="{theirs.id}"' not in other.get("/city/4102/dashboard/briefings/").get_data(as_text=True)
    # The province's office and its viewer read it; the viewer does not issue.
    viewer = new_browser()
    viewer.login("viewer-41")
    listing = viewer.get("/city/4101/dashboard/briefings/").get_data(as_text=True)
    assert f'data-id="{theirs.id}"' in listing and 'id="briefing-form"' not in listing
    assert viewer.get(f"/city/4101/dashboard/briefings/{theirs.id}/download").status_code == 200
    assert viewer.client.post("/city/4101/dashboard/briefings/", data={
        "csrf_token": viewer.csrf("/city/4101/dashboard/briefings/"), "period": period}).status_code == 403


@pytest.mark.parametrize("username,url", [
    ("office-410105001", "/street/410105001/dashboard/briefings/"),   # a street has no briefing
    ("edu-410105", "/district/410105/dashboard/briefings/"),         # a liaison sees no unit below
    ("office-410105", "/city/4101/dashboard/briefings/"),            # not upwards
])
def test_who_has_no_briefings(new_browser, people, username, url):
    b = new_browser()
    b.login(username)
    assert b.get(url).status_code == 404


@pytest.mark.parametrize("period,why", [
    ("2026-13", "must be a month"), ("", "is required"), ("2026-Q5", "must be a month"), ("x" * 50, "longer than"),
    ("2999-01", "2100"), ("2100-01", "has not begun"),
])
def test_a_bad_period_is_refused_with_the_field_named(app, browser, people, period, why):
    browser.login("office-41")
    response = browser.post_form("/province/41/dashboard/briefings/?lang=en", {"period": period},
                                 page="/province/41/dashboard/briefings/")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert 'id="briefing-error"' in body and "period" in body and why in body, body[-3000:]
    headers = api_token(browser.client, "office-41")
    api = browser.client.post("/api/v1/units/41/briefings?lang=en", json={"period": period}, headers=headers)
    assert api.status_code == 400 and api.get_json()["error"]["field"] == "period", api.get_json()
    assert why in api.get_json()["error"]["message"]
    for bogus in ({}, {"period": 202611}, {"period": None}, {"period": "2026-11", "extra": 1}):
        assert browser.client.post("/api/v1/units/41/briefings", json=bogus, headers=headers).status_code == 400
    assert _briefings(app, "41") == []


def test_the_api_issues_and_follows_a_briefing(app, client, scene, run_jobs):
    headers = api_token(client, "office-4101")
    created = client.post("/api/v1/units/4101/briefings", json={"period": scene["period"]}, headers=headers)
    assert created.status_code == 202
    body = created.get_json()
    assert set(body) == {"id", "state"} and body["state"] in ("queued", "done")
    assert created.headers["Location"].endswith(f"/api/v1/briefings/{body['id']}")
    run_jobs()
    got = client.get(f"/api/v1/briefings/{body['id']}", headers=headers).get_json()
    assert set(got) == {"id", "state", "number", "download_url"}
    assert got["id"] == body["id"] and got["state"] == "done" and got["number"] == 1
    assert got["download_url"].endswith(f"/city/4101/dashboard/briefings/{body['id']}/download")
    # A viewer reads it but may not issue; a liaison sees nothing; a street has none.
    viewer = api_token(client, "viewer-41")
    assert client.get(f"/api/v1/briefings/{body['id']}", headers=viewer).status_code == 200
    assert client.post("/api/v1/units/4101/briefings", json={"period": scene["period"]},
                       headers=viewer).status_code == 403
    liaison = api_token(client, "edu-410105")
    assert client.post("/api/v1/units/410105/briefings", json={"period": scene["period"]},
                       headers=liaison).status_code == 404
    street = api_token(client, "office-410105001")
    assert client.post("/api/v1/units/410105001/briefings", json={"period": scene["period"]},
                       headers=street).status_code == 404
    assert client.get("/api/v1/briefings/999999", headers=headers).status_code == 404
    second = client.post("/api/v1/units/4101/briefings", json={"period": scene["period"]}, headers=headers)
    run_jobs()
    assert client.get(f"/api/v1/briefings/{second.get_json()['id']}", headers=headers).get_json()["number"] == 2


def test_a_failing_job_leaves_the_briefing_failed_with_its_reason(app, browser, people, run_in_app, monkeypatch):
    from jobs.briefings import build_briefing
    from portal.exports import briefing as export
    from portal.services import briefings as service

    period = run_in_app(local_today).strftime("%Y-%m")
    monkeypatch.setattr(export, "content", lambda briefing: (_ for _ in ()).throw(RuntimeError("磁盘已满")))
    with app.app_context():  # the job itself, in this process, whatever the backend
        briefing_id = service.request_briefing(_unit("4101"), {"period": period}, by=_user(people, "office-4101")).id
        db.session.commit()
        db.session.execute(update(Briefing).where(Briefing.id == briefing_id).values(state="queued"))
        db.session.commit()
        assert build_briefing(briefing_id) == "failed"
        db.session.remove()
    found = _briefings(app, "4101")[0]
    assert found.state == "failed" and "磁盘已满" in found.error and found.stored_name is None
    browser.login("office-4101")
    page = browser.get(f"/city/4101/dashboard/briefings/{briefing_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-state="failed"' in text and "磁盘已满" in text and "hx-get" not in text
    assert browser.get(f"/city/4101/dashboard/briefings/{briefing_id}/download").status_code == 404
    headers = api_token(browser.client, "office-4101")
    got = browser.client.get(f"/api/v1/briefings/{briefing_id}", headers=headers).get_json()
    assert got["state"] == "failed" and got["download_url"] is None


def test_the_progress_page_polls_while_the_job_waits_and_the_list_pages(app, browser, people, run_in_app):
    year = run_in_app(local_today).year

    def seed():
        unit = _unit("4101")
        rows = [Briefing(unit_id=unit.id, period=f"{year}-01", year=year, number=n, state="done")
                for n in range(1, 24)]
        rows.append(Briefing(unit_id=unit.id, period=f"{year}-02", year=year, number=24, state="queued"))
        db.session.add_all(rows)
        db.session.flush()
        return rows[-1].id
    waiting = run_in_app(seed)
    browser.login("office-4101")
    fragment = browser.get(f"/city/4101/dashboard/briefings/{waiting}", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'hx-trigger="every 1s"' in text and 'data-state="queued"' in text
    full = browser.get(f"/city/4101/dashboard/briefings/{waiting}").get_data(as_text=True)
    assert 'id="briefing-reload"' in full  # without scripts, reloading the page shows the progress
    first = browser.get("/city/4101/dashboard/briefings/").get_data(as_text=True)
    second = browser.get("/city/4101/dashboard/briefings/?page=2").get_data(as_text=True)
    assert first.count("data-id=") == 20 and second.count("data-id=") == 4
    assert f'data-id="{waiting}"' in first  # newest first


def test_two_offices_asking_at_once_get_two_numbers(app, people, run_in_app):
    """The unit's row is locked while its next number is taken: without the lock both would read the
    same largest number and the second insert would break the unique constraint."""
    import threading
    import time

    from portal.services import briefings as service

    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row locks: PostgreSQL (SQLite has one writer at a time)")
    period = run_in_app(local_today).strftime("%Y-%m")
    barrier, numbers, errors = threading.Barrier(2), [], []

    def ask(username):
        with app.app_context():
            try:
                unit, by = _unit("41"), _user(people, username)
                barrier.wait()
                briefing = service.request_briefing(unit, {"period": period}, by=by)
                time.sleep(0.5)  # the other request meanwhile waits for the lock
                db.session.commit()
                numbers.append(briefing.number)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ask, args=(name,)) for name in ("office-41", "office-41")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert sorted(numbers) == [1, 2]


@pytest.mark.parametrize("username,url,shown", [
    ("office-41", "/province/41/dashboard/", True),
    ("office-410105", "/district/410105/dashboard/", True),
    ("office-410105001", "/street/410105001/dashboard/", False),   # a street has none
])
def test_the_consolidated_view_links_its_briefings_only_where_they_exist(new_browser, people, username, url, shown):
    b = new_browser()
    b.login(username)
    page = b.get(url)
    assert page.status_code == 200
    link = f'href="{url}briefings/'
    assert (link in page.get_data(as_text=True)) is shown
