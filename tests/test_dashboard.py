"""The consolidated view (汇总视图): its figures equal a direct recomputation from the rows on a
small tree, the ranking sorts and drills down to a street, every figure opens its records,
access (a city sees its subtree, not a sibling; a street no sibling ranking), the Excel
download, and reporting completeness with the reminder reaching exactly the laggards."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from portal import metrics
from portal.clock import local_today
from portal.extensions import db
from portal.formatting import percent_of
from portal.models import Notification, Task, Unit, User
from tests.conftest import api_token


def _user(people, name):
    return db.session.get(User, people[name].id)


def _unit(code):
    return Unit.by_code(code)


def _instance(task_id, code):
    return db.session.scalar(select(Task).where(Task.root_id == task_id, Task.unit_id == _unit(code).id))


@pytest.fixture
def scene(small_tasks):
    """Task A (weight 2) from the province to its three streets: 410105001 reports 60 % and is accepted,
    410105002 reports 40 %, 410102001 is silent. Task B of district 410105 itself, due yesterday and
    silent. Kaifeng (4102) has nothing."""
    return small_tasks()


def _cells(html: str, table_id: str) -> dict[str, list[str]]:
    """{data-code: [cell texts]} of a table's body rows."""
    table = re.search(r'<table[^>]*id="%s".*?</table>' % table_id, html, re.S)
    assert table, f"no table {table_id}"
    rows = {}
    for code, body in re.findall(r'<tr data-code="([^"]+)">(.*?)</tr>', table.group(0), re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
        rows[code] = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]
    return rows


def _shown(key: str, value) -> str:
    if key in metrics.INDICATORS:
        return "—" if value is None else f"{value:.1f}%"
    return f"{value:,}"


def _expected(app, code: str, period: str) -> dict:
    """Every ranking figure of a unit, recomputed from the rows (no stored value read)."""
    with app.app_context():
        m = metrics.recompute(_unit(code).id, period)
    values = dict(m)
    for key, ind in metrics.INDICATORS.items():
        values[key] = percent_of(m[ind.numerator], m[ind.denominator], scale=ind.scale)
    return values


RANKED = ("completion_rate", "on_time_rate", "progress", "reporting_rate", "tasks.total", "tasks.overdue",
          "reports.expected", "reports.received", "meetings.held", "notices.open")


def test_the_province_view_equals_a_recomputation_and_drills_down_to_a_street(app, browser, scene):
    browser.login("office-41")
    period = scene["period"]
    html = browser.get(f"/province/41/dashboard/?period={period}").get_data(as_text=True)
    # The key figures are the province's subtree, recomputed.
    expected = _expected(app, "41", period)
    for key in ("completion_rate", "on_time_rate", "progress", "reporting_rate", "tasks.overdue", "meetings.held"):
        card = re.search(r'id="figure-%s".*?class="fs-4 fw-semibold figure-value">([^<]*)<' % key.replace(".", "-"),
                         html, re.S)
        assert card and card.group(1).strip() == _shown(key, expected[key]), key
    assert expected["completion_rate"] == 25.0 and expected["tasks.overdue"] == 1  # the scene is what we think
    # The ranking: one row per city, every column the city's recomputed figure.
    rows = _cells(html, "ranking")
    assert set(rows) == {"4101", "4102"}
    for code, cells in rows.items():
        want = _expected(app, code, period)
        assert cells[2:] == [_shown(k, want[k]) for k in RANKED], code
    # Drill down: the city's row opens the city's view, then the district, then the street.
    assert f'href="/city/4101/dashboard/?period={period}"' in html
    city = browser.get(f"/city/4101/dashboard/?period={period}").get_data(as_text=True)
    assert set(_cells(city, "ranking")) == {"410105", "410102"}
    assert 'href="/province/41/"' in city  # the breadcrumb leads back up
    district = browser.get(f"/district/410105/dashboard/?period={period}").get_data(as_text=True)
    assert _cells(district, "ranking")["410105001"][2:] == [_shown(k, _expected(app, "410105001", period)[k])
                                                            for k in RANKED]
    street = browser.get(f"/street/410105001/dashboard/?period={period}")
    assert street.status_code == 200
    body = street.get_data(as_text=True)
    assert 'id="ranking"' not in body  # a street ranks nobody
    assert re.search(r'id="figure-completion_rate".*?figure-value">100\.0%<', body, re.S)


def test_the_ranking_sorts_by_any_column(browser, scene):
    browser.login("office-410105")
    period = scene["period"]
    asc = browser.get(f"/district/410105/dashboard/?period={period}&sort=progress&dir=asc").get_data(as_text=True)
    desc = browser.get(f"/district/410105/dashboard/?period={period}&sort=progress&dir=desc").get_data(as_text=True)
    assert list(_cells(asc, "ranking")) == ["410105002", "410105001"]   # 40 % before 60 %
    assert list(_cells(desc, "ranking")) == ["410105001", "410105002"]
    assert 'aria-sort="descending"' in desc


def test_every_figure_opens_the_records_behind_it(app, browser, scene):
    browser.login("office-4101")
    period = scene["period"]
    html = browser.get(f"/city/4101/dashboard/?period={period}").get_data(as_text=True)
    assert f'href="/city/4101/dashboard/records/tasks.overdue?period={period}"' in html
    overdue = browser.get(f"/city/4101/dashboard/records/tasks.overdue?period={period}").get_data(as_text=True)
    assert "社区学校挂牌" in overdue and "培训覆盖" not in overdue
    # The completion rate opens its numerator's records: the accepted instance at 410105001.
    accepted = browser.get(f"/city/4101/dashboard/records/tasks.accepted?period={period}").get_data(as_text=True)
    task = _cells_of_records(accepted)
    assert [row[0] for row in task] == ["经八路街道"]
    assert browser.get(f"/city/4101/dashboard/records/no.such?period={period}").status_code == 404


def _cells_of_records(html):
    table = re.search(r'<table[^>]*id="records".*?</table>', html, re.S).group(0)
    body = table.split("<tbody>")[1]
    return [[unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S) if "<td" in row]


@pytest.mark.parametrize("username,url,status", [
    ("office-4101", "/city/4101/dashboard/", 200),
    ("office-4101", "/city/4102/dashboard/", 404),          # not a sibling city
    ("office-4101", "/province/41/dashboard/", 404),        # not upwards
    ("office-4101", "/district/410105/dashboard/", 200),    # its subtree
    ("office-410105001", "/street/410105002/dashboard/", 404),
    ("office-410105001", "/district/410105/dashboard/", 404),  # no ranking of its siblings above it either
    ("office-410105001", "/street/410105001/dashboard/reporting", 404),  # nothing below a street
    ("viewer-4101", "/city/4101/dashboard/reporting", 200),
    ("edu-410105", "/district/410105/dashboard/reporting", 404),  # a liaison sees no unit below
])
def test_access(new_browser, people, username, url, status):
    b = new_browser()
    b.login(username)
    assert b.get(url).status_code == status


def test_a_liaison_sees_its_units_own_figures_and_no_ranking(app, new_browser, scene):
    b = new_browser()
    b.login("edu-410105")
    html = b.get(f"/district/410105/dashboard/?period={scene['period']}").get_data(as_text=True)
    assert 'id="ranking"' not in html and 'id="own-scope"' in html
    # Own: task B alone (1 task, overdue), not the streets' instances.
    assert re.search(r'id="figure-tasks-overdue".*?figure-value">1<', html, re.S)
    records = b.get(f"/district/410105/dashboard/records/tasks.total?period={scene['period']}").get_data(as_text=True)
    assert [row[0] for row in _cells_of_records(records)] == ["金水区"]


def test_the_excel_download_has_the_views_numbers(app, browser, scene):
    browser.login("office-4101")
    period = scene["period"]
    response = browser.get(f"/city/4101/dashboard/export.xlsx?period={period}")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert "%E9%83%91%E5%B7%9E%E5%B8%82" in disposition  # 郑州市, UTF-8 encoded
    assert scene["today"].strftime("%Y%m%d") in disposition
    wb = load_workbook(io.BytesIO(response.data))
    assert wb.sheetnames == ["主要指标", "下级排名", "部门情况", "报送情况", "逐月趋势"]
    ranking = wb["下级排名"]
    assert "郑州市" in ranking["A1"].value and "计算时间" in ranking["A1"].value
    header = [c.value for c in ranking[2]]
    assert header[:4] == ["序号", "单位代码", "单位", "完成率"]
    assert ranking.freeze_panes == "A3" and ranking.auto_filter.ref.startswith("A2:")
    rows = {r[1]: r for r in ranking.iter_rows(min_row=3, values_only=True)}
    assert set(rows) == {"410105", "410102"}
    want = _expected(app, "410105", period)
    jinshui = rows["410105"]
    assert jinshui[header.index("完成率")] == pytest.approx(want["completion_rate"] / 100)
    assert isinstance(jinshui[header.index("任务")], int) and jinshui[header.index("任务")] == want["tasks.total"]
    rate_cell = ranking.cell(row=3, column=header.index("完成率") + 1)
    assert rate_cell.number_format == "0.0%"
    assert ranking.column_dimensions["C"].width >= 8
    reporting = {r[0]: r for r in wb["报送情况"].iter_rows(min_row=3, values_only=True)}
    assert reporting["410102001"][5:] == (1, "否") and reporting["410105001"][5:] == (0, "是")
    figures = {r[0]: r for r in wb["主要指标"].iter_rows(min_row=3, values_only=True)}
    assert figures["逾期任务"][1] == 1
    departments = {r[0]: r for r in wb["部门情况"].iter_rows(min_row=3, values_only=True)}
    assert departments["民政"][1:4] == (1, 1, 1.0) and departments["教育"][1:3] == (4, 1)
    # The department view's download: that department's tables only.
    civil = load_workbook(io.BytesIO(browser.get(f"/city/4101/dashboard/export.xlsx?period={period}"
                                                 "&department=civil").data))
    assert civil.sheetnames == ["主要指标", "下级排名"] and "民政" in civil["下级排名"]["A1"].value
    rows = {r[1]: r[3:] for r in civil["下级排名"].iter_rows(min_row=3, values_only=True)}
    assert rows["410105"][:5] == (0, 1, 1, 0, 1)  # completion 0 %, overdue share 100 %, 1 task, 0 accepted, 1 overdue
    # Every sheet prints on A4, one page wide, its header row on every page.
    for ws in [*wb.worksheets, *civil.worksheets]:
        assert ws.page_setup.paperSize == 9 and ws.page_setup.orientation in ("portrait", "landscape")
        assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
        assert ws.sheet_properties.pageSetUpPr.fitToPage is True and ws.print_title_rows == "$2:$2"
    # The months' sheet carries the task figures and activities too: wider than a portrait page.
    assert ranking.page_setup.orientation == "landscape" and wb["逐月趋势"].page_setup.orientation == "landscape"
    monthly = wb["逐月趋势"]
    assert [c.value for c in monthly[2]][5:] == ["完成率", "加权进度", "逾期任务", "开展活动数", "人次"]
    this_month = {r[0]: r for r in monthly.iter_rows(min_row=3, values_only=True)}[period]
    whole = _expected(app, "4101", period)
    assert this_month[5] == pytest.approx(whole["completion_rate"] / 100) and this_month[7] == whole["tasks.overdue"]


def test_rates_in_the_workbook_round_like_the_page():
    """A tie rounds half up, the same on the page and in the sheet: 53.95 → 54.0%, never 53.9% or 53.95%."""
    from portal.exports.dashboard_excel import _rate
    from portal.formatting import format_percent

    assert format_percent(53.95) == "54.0%" and _rate(53.95) == 0.54 and f"{_rate(53.95):.1%}" == "54.0%"
    assert _rate(53.96) == 0.54 and _rate(0.05) == 0.001 and _rate(None) is None


def test_reporting_completeness_lists_the_laggards(browser, scene):
    browser.login("office-41")
    period = scene["period"]
    html = browser.get(f"/province/41/dashboard/reporting?period={period}&show=all").get_data(as_text=True)
    rows = _cells(html, "reporting")
    # Every unit that owes reports (its own tasks): the three streets and the district with task B.
    assert set(rows) == {"410105001", "410105002", "410102001", "410105"}
    assert rows["410102001"][2:5] == ["1", "0", "1"] and rows["410105001"][4] == "0"
    lagging = _cells(browser.get(f"/province/41/dashboard/reporting?period={period}").get_data(as_text=True),
                     "reporting")
    assert set(lagging) == {"410102001", "410105"}
    owed = browser.get(f"/province/41/dashboard/reporting/410105?period={period}").get_data(as_text=True)
    assert "社区学校挂牌" in owed and "培训覆盖" not in owed
    # The city sees only its subtree's.
    browser.logout()
    browser.login("office-4101")
    city = _cells(browser.get(f"/city/4101/dashboard/reporting?period={period}&show=all").get_data(as_text=True),
                  "reporting")
    assert "41" not in city and set(city) == {"410105001", "410105002", "410102001", "410105"}


def test_the_reminder_reaches_exactly_the_laggards(app, browser, people, scene, run_jobs):
    browser.login("office-41")
    period = scene["period"]
    response = browser.post_form("/province/41/dashboard/reporting/remind", {"period": period},
                                 page=f"/province/41/dashboard/reporting?period={period}")
    assert response.status_code == 302
    run_jobs()
    with app.app_context():
        got = {db.session.get(User, n.user_id).username: n for n in db.session.scalars(
            select(Notification).where(Notification.kind == "reporting_reminder"))}
    # 410102001 (silent street): its office; 410105 (task B, lead edu): its office, staff and edu liaison.
    assert set(got) == {"office-410102001", "office-410105", "staff-410105", "edu-410105"}
    assert got["edu-410105"].params["owed"] == 1
    # The notification reads well in the recipient's centre.
    b = browser
    b.logout()
    b.login("edu-410105")
    page = b.get("/notifications/").get_data(as_text=True)
    assert "河南省" in page and "金水区" in page


def test_a_reminder_for_a_malformed_period_is_refused_and_sends_nothing(app, browser, people, scene, run_jobs):
    browser.login("office-41")
    response = browser.post_form("/province/41/dashboard/reporting/remind?lang=en", {"period": "2026-13"},
                                 page="/province/41/dashboard/reporting")
    assert response.status_code == 400 and "period" in response.get_data(as_text=True)
    run_jobs()
    with app.app_context():
        assert not db.session.scalars(select(Notification).where(Notification.kind == "reporting_reminder")).all()


def test_only_an_office_sends_the_reminder(new_browser, people, scene):
    b = new_browser()
    b.login("viewer-41")
    response = b.post_form("/province/41/dashboard/reporting/remind", {"period": scene["period"]},
                           page="/notifications/")
    assert response.status_code == 403


def test_the_department_view_counts_a_departments_tasks_as_lead_or_co_operating(app, browser, scene):
    browser.login("office-41")
    period = scene["period"]
    html = browser.get(f"/province/41/dashboard/?period={period}&department=civil").get_data(as_text=True)
    # civil co-operates on task B only (at 410105, overdue); task A is education's alone.
    assert re.search(r'id="figure-tasks-total".*?figure-value">1<', html, re.S)
    assert re.search(r'id="figure-overdue_share".*?figure-value">100\.0%<', html, re.S)
    assert 'href="/province/41/dashboard/records/departments.civil.overdue?period=' in html
    rows = _cells(html, "ranking")
    assert rows["4101"][2:] == ["0.0%", "100.0%", "1", "0", "1"] and rows["4102"][2:] == ["—", "—", "0", "0", "0"]
    # The rows lead on into the same department's view.
    assert f'href="/city/4101/dashboard/?period={period}&amp;department=civil"' in html
    # Every figure equals a recomputation from the rows, at every unit.
    for code in ("41", "4101", "410105", "410105001"):
        with app.app_context():
            m = metrics.recompute(_unit(code).id, period)
        page = browser.get(f"/{_unit_tier(app, code)}/{code}/dashboard/?period={period}&department=edu")
        text = page.get_data(as_text=True)
        assert re.search(r'id="figure-tasks-total".*?figure-value">%d<' % m["departments.edu.total"], text, re.S), code
        assert re.search(r'id="figure-tasks-overdue".*?figure-value">%d<' % m["departments.edu.overdue"], text, re.S)
    assert m["departments.edu.total"] == 1 and m["departments.edu.accepted"] == 1  # 410105001: A, accepted
    records = browser.get(f"/province/41/dashboard/records/departments.edu.total?period={period}").get_data(
        as_text=True)
    assert len(_cells_of_records(records)) == 4  # A at three streets, and B
    # The departments that lag, at the province: civil (all overdue) before education.
    overview = _cells(browser.get(f"/province/41/dashboard/?period={period}").get_data(as_text=True),
                      "departments-lagging")
    assert list(overview) == ["civil", "edu"] and overview["edu"][1:3] == ["4", "1"]


def _unit_tier(app, code):
    with app.app_context():
        return _unit(code).tier


def test_a_liaisons_department_view_is_its_own_department_at_its_unit(new_browser, scene):
    b = new_browser()
    b.login("civil-410105")
    period = scene["period"]
    html = b.get(f"/district/410105/dashboard/?period={period}&department=civil").get_data(as_text=True)
    assert 'id="department-badge"' in html and 'id="ranking"' not in html
    assert re.search(r'id="figure-tasks-total".*?figure-value">1<', html, re.S)
    # Another department's view is not the civil liaison's: the unit's own figures instead.
    other = b.get(f"/district/410105/dashboard/?period={period}&department=edu").get_data(as_text=True)
    assert 'id="department-badge"' not in other and 'id="own-scope"' in other
    b2 = new_browser()
    b2.login("edu-410105")
    edu = b2.get(f"/district/410105/dashboard/?period={period}&department=edu").get_data(as_text=True)
    # Education's work below the district too (B and the two streets' instances of A), with no names.
    assert re.search(r'id="figure-tasks-total".*?figure-value">3<', edu, re.S)
    assert "经八路街道" not in edu and "花园路街道" not in edu


def test_the_api_gives_the_childrens_figures_and_the_laggards(app, client, scene):
    from tests.conftest import api_token

    period = scene["period"]
    office = api_token(client, "office-4101")
    body = client.get(f"/api/v1/units/4101/children/metrics?period={period}", headers=office).get_json()
    assert body["unit_code"] == "4101" and body["department"] is None and body["total"] == 2
    items = {i["unit_code"]: i for i in body["items"]}
    with app.app_context():
        want = metrics.recompute(_unit("410105").id, period)
    assert items["410105"]["metrics"]["tasks.total"] == want["tasks.total"] == 3
    assert items["410105"]["indicators"]["completion_rate"] == _expected(app, "410105", period)["completion_rate"]
    civil = client.get(f"/api/v1/units/4101/children/metrics?period={period}&department=civil",
                       headers=office).get_json()
    assert {i["unit_code"]: i["metrics"]["tasks.total"] for i in civil["items"]} == {"410105": 1, "410102": 0}
    laggards = client.get(f"/api/v1/units/4101/reporting?period={period}&reported=false", headers=office).get_json()
    assert laggards["units_expected"] == 4 and laggards["units_reported"] == 2
    assert {(i["unit_code"], i["tasks_owed"]) for i in laggards["items"]} == {("410102001", 1), ("410105", 1)}
    # A sibling city, and a liaison (no unit below its own), get nothing.
    kaifeng = api_token(client, "office-4102")
    assert client.get("/api/v1/units/4101/reporting", headers=kaifeng).status_code == 404
    liaison = api_token(client, "edu-410105")
    assert client.get("/api/v1/units/410105/children/metrics", headers=liaison).status_code == 404


def test_the_view_reads_the_stored_figures_and_says_when_they_are_updating(app, browser, scene):
    """A row written behind the engine's back changes nothing until the figures are recomputed; a
    unit waiting for its refresh shows 更新中… on its own view and on its ancestors'."""
    from portal.models import MetricState

    period = scene["period"]
    browser.login("office-41")

    def overdue(url):
        html = browser.get(url).get_data(as_text=True)
        return re.search(r'id="figure-tasks-overdue".*?figure-value">(\d+)<', html, re.S).group(1), html

    def sneak():
        street = _unit("410102001")
        db.session.add(Task(unit_id=street.id, title="未登记任务", lead_department_code="edu", co_department_codes=[],
                            due_date=scene["today"] - timedelta(days=3)))
        state = db.session.get(MetricState, street.id) or MetricState(unit_id=street.id, generation=0, done=0)
        state.generation, state.done = 5, 4
        db.session.add(state)
        from portal import figcache

        figcache.changed()  # as every writer of the marks does (portal.metrics.engine.mark_dirty)
        db.session.commit()
    with app.app_context():
        sneak()
    count, html = overdue(f"/province/41/dashboard/?period={period}")
    assert count == "1" and 'id="stale"' in html and "更新中" in html
    ranking = _cells(html, "ranking")
    assert "更新中" in ranking["4101"][1] and "更新中" not in ranking["4102"][1]
    with app.app_context():
        metrics.rebuild_all()
    count, html = overdue(f"/province/41/dashboard/?period={period}")
    assert count == "2" and 'id="stale"' not in html


# --- trends of the task figures, and the activity figures -------------------------------------

def test_key_figures_show_the_trend_against_the_previous_period(app, browser, tree, people, run_in_app, run_jobs):
    """Task figures of an ended month are their values at its end: the district's completion rate went
    from 0 % at the end of M-2 to 25 % at the end of M-1 (▲ +25.0, with M-2's value), overdue from 1 to 0."""
    from tests.test_metrics import build_dated_history

    h = build_dated_history(run_in_app, people, run_jobs)
    m3, m2, m1 = h["months"]
    browser.login("office-410105")
    html = browser.get(f"/district/410105/dashboard/?period={m1}").get_data(as_text=True)
    want, before = _expected(app, "410105", m1), _expected(app, "410105", m2)
    assert (want["completion_rate"], before["completion_rate"]) == (25.0, 0.0)
    assert (want["tasks.overdue"], before["tasks.overdue"]) == (0, 1)

    def card(key):
        found = re.search(r'id="figure-%s".*?</a>' % key.replace(".", "-"), html, re.S)
        assert found, key
        return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(0))))
    label = lambda month: f"{int(month[:4])}年{int(month[5:])}月"  # noqa: E731
    completion = card("completion_rate")
    assert "25.0%" in completion and "▲" in completion and "+25.0" in completion
    assert f"上期（{label(m2)}）：0.0%" in completion and f"{label(m1)}末" in completion
    assert 'data-trend="up"' in re.search(r'id="figure-completion_rate".*?</a>', html, re.S).group(0)
    overdue = card("tasks.overdue")
    assert "▼" in overdue and "-1" in overdue and f"上期（{label(m2)}）：1" in overdue
    # Every key figure has its trend now; the month by month table has the task figures at each month's end.
    assert "截至目前" not in re.search(r'id="key-figures".*?id="activity-figures"', html, re.S).group(0)
    months = re.search(r'<table[^>]*id="monthly".*?</table>', html, re.S).group(0)
    row = re.search(r'<tr data-period="%s">(.*?)</tr>' % m2, months, re.S).group(1)
    cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[5:8] == ["0.0%", _shown("progress", before["progress"]), "1"]
    # The running month is as of now, and says so.
    now = browser.get("/district/410105/dashboard/").get_data(as_text=True)
    assert "截至目前" in re.search(r'id="figure-completion_rate".*?</a>', now, re.S).group(0)
    # A past month's figure opens the instances as they stood at its end.
    records = browser.get(f"/district/410105/dashboard/records/tasks.overdue?period={m2}").get_data(as_text=True)
    assert [row[1] for row in _cells_of_records(records)] == ["X"]
    # The department view's figures keep no history: as of now, without a trend, and it says so.
    edu = browser.get(f"/district/410105/dashboard/?period={m1}&department=edu").get_data(as_text=True)
    card = re.search(r'id="figure-completion_rate".*?</a>', edu, re.S).group(0)
    assert "截至目前" in card and "▲" not in card and "上期" not in card


@pytest.fixture
def activities(app, tree, people, run_in_app, run_jobs):
    """Activities this month: two at 经八路街道 (410105001), one at 林山寨街道 (410102001), one at the
    sibling city 开封市 (4102); one at 经八路街道 last month."""
    from portal.services import activities as asvc

    today = run_in_app(local_today)
    made = {}

    def make(code, title, day, youth, elders, funds):
        unit = _unit(code)
        return asvc.create_activity(unit, {
            "title": title, "category": "legal", "lead_department": "edu", "start_date": day.isoformat(),
            "participants": {"youth": youth, "elders": elders, "others": 1}, "volunteers": 1,
            "volunteer_hours": 2.5, "funds": funds}, by=_user(people, f"office-{code}")).id
    for code, title, day, youth, elders, funds in (
            ("410105001", "法治讲座一", today, 10, 5, 100), ("410105001", "法治讲座二", today, 3, 20, 0),
            ("410102001", "普法进社区", today, 7, 7, 50), ("4102", "开封普法", today, 30, 30, 300),
            ("410105001", "上月讲座", today.replace(day=1) - timedelta(days=3), 1, 1, 0)):
        made[title] = run_in_app(lambda: make(code, title, day, youth, elders, funds))
    run_jobs()
    return {"ids": made, "period": today.strftime("%Y-%m")}


ACTIVITY_KEYS = ("activities.count", "activities.person_times", "activities.youth", "activities.elders",
                 "activities.volunteer_hours", "activities.funds", "teams.complete")


def test_activity_figures_in_the_view_the_excel_and_the_api_equal_a_recomputation(app, browser, activities):
    from flask_babel import force_locale

    from portal import consolidated as cv

    period = activities["period"]
    browser.login("office-4101")
    html = browser.get(f"/city/4101/dashboard/?period={period}").get_data(as_text=True)
    rows = _cells(html, "activity-ranking")
    assert set(rows) == {"410105", "410102"}
    for code in rows:
        want = _expected(app, code, period)
        shown = rows[code][2:]
        assert shown == [_figure(k, want[k]) for k in ACTIVITY_KEYS], code
    assert _expected(app, "410105", period)["activities.count"] == 2  # last month's is not this month's
    whole = _expected(app, "4101", period)
    card = re.search(r'id="figure-activities-person_times".*?figure-value">([^<]*)<', html, re.S).group(1).strip()
    assert card == _figure("activities.person_times", whole["activities.person_times"]) == "55"
    # Sorting by an activity column.
    sorted_html = browser.get(f"/city/4101/dashboard/?period={period}&sort=activities.count&dir=desc")
    assert list(_cells(sorted_html.get_data(as_text=True), "activity-ranking")) == ["410105", "410102"]
    # The Excel ranking carries the same figures.
    wb = load_workbook(io.BytesIO(browser.get(f"/city/4101/dashboard/export.xlsx?period={period}").data))
    ranking = wb["下级排名"]
    header = [c.value for c in ranking[2]]
    with app.test_request_context(), force_locale("zh_Hans_CN"):
        titles = {k: cv.label(k) for k in ACTIVITY_KEYS}
    sheet = {r[1]: r for r in ranking.iter_rows(min_row=3, values_only=True)}
    for code in ("410105", "410102"):
        want = _expected(app, code, period)
        for key in ACTIVITY_KEYS:
            assert sheet[code][header.index(titles[key])] == pytest.approx(float(want[key])), (code, key)
    assert isinstance(sheet["410105"][header.index(titles["activities.count"])], int)
    # The API's children figures carry the activity keys, equal to the recomputation.
    headers = api_token(browser.client, "office-4101")
    body = browser.client.get(f"/api/v1/units/4101/children/metrics?period={period}", headers=headers).get_json()
    for item in body["items"]:
        want = _expected(app, item["unit_code"], period)
        assert {k: item["metrics"][k] for k in ACTIVITY_KEYS} == pytest.approx({k: want[k] for k in ACTIVITY_KEYS})


def test_the_activity_drilldown_opens_the_activity_records_the_reader_may_see(app, browser, activities):
    period = activities["period"]
    browser.login("office-4101")
    page = browser.get(f"/city/4101/dashboard/records/activities.count?period={period}").get_data(as_text=True)
    rows = _cells_of_records(page)
    assert sorted(r[1] for r in rows) == ["普法进社区", "法治讲座一", "法治讲座二"]  # not 开封普法, not last month's
    ids = activities["ids"]
    assert f"/street/410105001/activities/{ids['法治讲座一']}/" in page
    detail = browser.get(f"/street/410105001/activities/{ids['法治讲座一']}/")
    assert detail.status_code == 200 and "法治讲座一" in detail.get_data(as_text=True)
    # The card opens that list.
    view = browser.get(f"/city/4101/dashboard/?period={period}").get_data(as_text=True)
    assert re.search(r'id="figure-activities-count"[^>]*href="[^"]*/records/activities.count\?period=%s"' % period,
                     view, re.S) or re.search(r'href="[^"]*/records/activities.count\?period=%s"[^>]*\s*'
                                              r'title="[^"]*"' % period, view)
    # A street's office sees its own activities only; the sibling city sees none of Zhengzhou's.
    browser.logout()
    browser.login("office-410105001")
    own = _cells_of_records(browser.get(f"/street/410105001/dashboard/records/activities.count?period={period}")
                            .get_data(as_text=True))
    assert sorted(r[1] for r in own) == ["法治讲座一", "法治讲座二"]
    browser.logout()
    browser.login("office-4102")
    theirs = browser.get(f"/city/4102/dashboard/records/activities.person_times?period={period}").get_data(as_text=True)
    assert [r[1] for r in _cells_of_records(theirs)] == ["开封普法"] and "法治讲座" not in theirs
    assert browser.get(f"/city/4101/dashboard/records/activities.count?period={period}").status_code == 404


def _figure(key, value) -> str:
    if isinstance(value, (float,)) or not isinstance(value, int):
        return f"{float(value):,.1f}"
    return f"{value:,}"


def test_home_counts_the_laggards_by_tier_like_the_reporting_page(browser, scene):
    """The home's completeness line counts (in SQL) the units the reporting page lists as not
    reported: one street (410102001) and one district (410105, task B); Kaifeng owes nothing."""
    period = scene["period"]

    def summary(path):
        html = browser.get(path).get_data(as_text=True)
        block = re.search(r'id="completeness-summary">(.*?)</div>', html, re.S)
        assert block, path
        return " ".join(unescape(re.sub(r"<[^>]+>", " ", block.group(1))).split())

    browser.login("office-41")
    assert "1 个街道（乡镇）、 1 个县（区）" in summary(f"/province/41/dashboard/?period={period}")
    # The reporting page loads one page of rows; its counts cover every unit whatever the page.
    for page, codes in ((1, {"410102001", "410105"}), (2, set())):
        html = browser.get(f"/province/41/dashboard/reporting?period={period}&page={page}").get_data(as_text=True)
        assert set(_cells(html, "reporting")) == codes
        assert 'id="units-expected">4<' in html and 'id="units-reported">2<' in html
        assert 'id="units-lagging">2<' in html
    reported = browser.get(f"/province/41/dashboard/reporting?period={period}&show=reported").get_data(as_text=True)
    assert set(_cells(reported, "reporting")) == {"410105001", "410105002"}
    browser.logout()
    browser.login("office-4102")
    kaifeng = summary(f"/city/4102/dashboard/?period={period}")
    assert "个街道" not in kaifeng and "个县" not in kaifeng
