"""The task pages: issue, pass down, report, submit, review, supervise, the
supervision list with its filters, and the refusals a user would run into."""
from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Task, Unit, User
from portal.services import tasks as svc

DUE = (date.today() + timedelta(days=60)).isoformat()
DIST = "/district/410105/tasks"
STREET = "/street/410105001/tasks"
VERSION_RE = re.compile(r'name="version" value="(\d+)"')


def _as(new_browser, name):
    b = new_browser()
    assert b.login(name).status_code == 302
    return b


def _create(b, base=DIST, **overrides):
    data = {"title": "社区教育培训", "description": "全年培训居民", "lead_department": "edu",
            "co_departments": ["civil"], "due_date": DUE, "target_name": "培训人次", "target_unit": "人次",
            "target_value": "500", "weight": "1"}
    data.update(overrides)
    response = b.post_form(f"{base}/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


def _children(run_in_app, task_id):
    return run_in_app(lambda: {code: tid for tid, code in db.session.execute(
        select(Task.id, Unit.code).join(Unit, Unit.id == Task.unit_id).where(Task.parent_id == task_id)).all()})


def _task(run_in_app, task_id):
    """The task's columns as they are now in the database."""
    from types import SimpleNamespace

    def read():
        task = db.session.get(Task, task_id)
        return SimpleNamespace(**{c.key: getattr(task, c.key) for c in Task.__table__.columns})
    return run_in_app(read)


def _version(page: str) -> str:
    return VERSION_RE.search(page).group(1)


def _service_task(run_in_app, tree, people, code="410105", **overrides):
    """A task made directly through the service (for states the form cannot make, like a past due date)."""
    data = {"title": "服务创建的任务", "lead_department": "edu", "co_departments": [], "due_date": DUE}
    data.update(overrides)
    return run_in_app(lambda: svc.create_task(db.session.get(Unit, tree[code].id), data,
                                              by=db.session.get(User, people[f"office-{code}"].id)).id)


def _cascade(b, run_in_app, run_jobs, task_id, base=DIST):
    response = b.post_form(f"{base}/{task_id}/cascade", {"to": "children"}, page=f"{base}/{task_id}/")
    assert response.status_code == 302 and "/cascade/" in response.headers["Location"]
    run_jobs()
    return response.headers["Location"], _children(run_in_app, task_id)


@pytest.fixture
def office(new_browser, people):
    return _as(new_browser, "office-410105")


def test_issue_pass_down_report_review_accept(office, new_browser, run_in_app, run_jobs):
    task_id = _create(office)
    assert "社区教育培训" in office.get(f"{DIST}/").get_data(as_text=True)
    run_url, children = _cascade(office, run_in_app, run_jobs, task_id)
    assert set(children) == {"410105001", "410105002"}
    run_page = office.get(run_url).get_data(as_text=True)
    assert 'data-state="finished"' in run_page and "100%" in run_page
    partial = office.get(run_url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="cascade-run"' in partial and "<html" not in partial
    street = children["410105001"]
    url = f"{STREET}/{street}/"

    edu = _as(new_browser, "edu-410105001")
    page = edu.get(url).get_data(as_text=True)
    assert 'id="report-form"' in page and 'id="review-form"' not in page
    pdf = (io.BytesIO(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"), "培训签到表.pdf")
    reported = edu.post_form(f"{STREET}/{street}/report", {"percent": "60", "actual_value": "120",
                                                           "narrative": "已培训120人次", "evidence": pdf},
                             page=url, content_type="multipart/form-data")
    assert reported.status_code == 302
    page = edu.get(url).get_data(as_text=True)
    assert "已培训120人次" in page and "60.0%" in page and "培训签到表.pdf" in page
    evidence_url = re.search(r'href="([^"]+/evidence/\d+)"', page).group(1)
    assert edu.get(evidence_url).status_code == 200
    assert edu.post_form(f"{STREET}/{street}/submit", {"version": _version(page)}, page=url).status_code == 302
    assert _task(run_in_app, street).status == "submitted"

    # The district reviews from its own workspace: returned with a comment the street reads.
    review_url = f"{DIST}/{street}/"
    page = office.get(review_url).get_data(as_text=True)
    assert 'id="review-form"' in page
    office.post_form(f"{DIST}/{street}/review", {"decision": "return", "comment": "请补充活动照片",
                                                 "version": _version(page)}, page=review_url)
    assert _task(run_in_app, street).status == "returned"
    page = edu.get(url).get_data(as_text=True)
    assert "请补充活动照片" in page and 'id="report-form"' in page

    edu.post_form(f"{STREET}/{street}/report", {"percent": "100", "actual_value": "260", "narrative": "全部完成"},
                  page=url)
    page = edu.get(url).get_data(as_text=True)
    edu.post_form(f"{STREET}/{street}/submit", {"version": _version(page)}, page=url)
    page = office.get(review_url).get_data(as_text=True)
    assert office.post_form(f"{DIST}/{street}/review", {"decision": "accept", "comment": "",
                                                        "version": _version(page)},
                            page=review_url).status_code == 302
    run_jobs()
    assert _task(run_in_app, street).status == "accepted"
    # The district's own instance rolls up: one street of two at 100%.
    root = office.get(f"{DIST}/{task_id}/").get_data(as_text=True)
    assert "50.0%" in root and 'id="children-table"' in root and "经八路街道" in root


def test_list_filters_and_scopes(office, new_browser, tree, people, run_in_app):
    today = date.today()
    _service_task(run_in_app, tree, people, title="近期到期", due_date=(today + timedelta(days=5)).isoformat())
    _service_task(run_in_app, tree, people, title="民政协办", lead_department="women", co_departments=["civil"],
                  due_date=(today + timedelta(days=100)).isoformat())
    _service_task(run_in_app, tree, people, title="已经逾期", due_date=(today - timedelta(days=3)).isoformat())
    cancelled = _service_task(run_in_app, tree, people, title="取消的任务")
    run_in_app(lambda: svc.cancel_task(db.session.get(Task, cancelled), "重复",
                                       by=db.session.get(User, people["office-410105"].id)))
    _service_task(run_in_app, tree, people, code="410105001", title="街道自己的任务")

    def titles(b, query=""):
        page = b.get(f"{DIST}/{query}").get_data(as_text=True)
        table = page[page.index('id="tasks"'):page.index("</table>", page.index('id="tasks"'))]
        return {t for t in ("近期到期", "民政协办", "已经逾期", "取消的任务", "街道自己的任务") if t in table}

    assert titles(office) == {"近期到期", "民政协办", "已经逾期", "取消的任务"}
    assert titles(office, "?scope=subtree") == {"近期到期", "民政协办", "已经逾期", "取消的任务", "街道自己的任务"}
    assert titles(office, "?status=cancelled") == {"取消的任务"}
    overdue = office.get(f"{DIST}/?overdue=1").get_data(as_text=True)
    assert "已经逾期" in overdue and "overdue-badge" in overdue and "近期到期" not in overdue
    assert titles(office, "?due_within=30") == {"近期到期"}
    assert titles(office, "?department=civil") == {"民政协办"}
    assert titles(office, "?q=逾期") == {"已经逾期"}
    # A liaison's own tab: the civil liaison is co-operating on one task, the edu liaison leads three.
    civil = _as(new_browser, "civil-410105")
    assert titles(civil, "?scope=mine") == {"民政协办"}
    assert titles(_as(new_browser, "edu-410105"), "?scope=mine") == {"近期到期", "已经逾期", "取消的任务"}
    # A liaison's subtree is the own unit only: the street's task stays out of sight.
    assert "街道自己的任务" not in titles(civil, "?scope=subtree")
    assert 'id="new-task"' in office.get(f"{DIST}/").get_data(as_text=True)
    assert 'id="new-task"' not in civil.get(f"{DIST}/").get_data(as_text=True)


def test_list_pagination(office, tree, people, run_in_app):
    for i in range(25):
        _service_task(run_in_app, tree, people, title=f"专项任务{i:02d}")
    first = office.get(f"{DIST}/").get_data(as_text=True)
    assert first.count('class="task-row"') == 20 and "page=2" in first and "25" in first
    assert office.get(f"{DIST}/?page=2").get_data(as_text=True).count('class="task-row"') == 5


def test_new_task_refused_with_the_input_kept(office):
    office.get("/notifications/?lang=en")
    response = office.post_form(f"{DIST}/new", {"title": "保留我的标题", "lead_department": "edu", "due_date": DUE,
                                                "target_name": "培训人次", "target_value": "很多"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'data-field="target.value"' in text and "target.value" in text and "保留我的标题" in text


def test_refusals(office, new_browser, tree, people, run_in_app, run_jobs):
    task_id = _create(office, co_departments=[])  # edu only
    street = _cascade(office, run_in_app, run_jobs, task_id)[1]["410105001"]
    url = f"{STREET}/{street}/"
    # The civil liaison sees the task but may not report on it.
    civil = _as(new_browser, "civil-410105001")
    page = civil.get(url)
    assert page.status_code == 200 and 'id="report-form"' not in page.get_data(as_text=True)
    assert civil.post_form(f"{STREET}/{street}/report", {"percent": "10"}, page=url).status_code == 403
    # A sibling street's office does not even learn that the task exists.
    sibling = _as(new_browser, "office-410105002")
    assert sibling.get(f"/street/410105002/tasks/{street}/").status_code == 404
    assert sibling.get(url).status_code == 404
    # 150 percent: refused, the field named, the input kept.
    edu = _as(new_browser, "edu-410105001")
    edu.get("/notifications/?lang=en")
    bad = edu.post_form(f"{STREET}/{street}/report", {"percent": "150", "narrative": "我的说明"}, page=url)
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert 'data-field="percent"' in text and "percent must be between 0 and 100" in text
    assert 'value="150"' in text and "我的说明" in text
    assert _task(run_in_app, street).progress == 0


def test_stale_review_is_a_conflict_that_keeps_the_comment(office, new_browser, people, run_in_app, run_jobs):
    task_id = _create(office)
    street = _cascade(office, run_in_app, run_jobs, task_id)[1]["410105001"]
    edu = _as(new_browser, "edu-410105001")
    url = f"{STREET}/{street}/"
    edu.post_form(f"{STREET}/{street}/report", {"percent": "100"}, page=url)
    edu.post_form(f"{STREET}/{street}/submit", {"version": _version(edu.get(url).get_data(as_text=True))}, page=url)
    review_url = f"{DIST}/{street}/"
    seen = _version(office.get(review_url).get_data(as_text=True))
    # The city office accepts first; the district's return was written against the old version.
    city = _as(new_browser, "office-4101")
    assert city.post_form(f"{DIST}/{street}/review", {"decision": "accept", "version": seen},
                          page=review_url).status_code == 302
    stale = office.post_form(f"{DIST}/{street}/review", {"decision": "return", "comment": "我的退回意见",
                                                         "version": seen}, page=review_url)
    assert stale.status_code == 409
    assert 'id="task-error"' in stale.get_data(as_text=True)
    assert _task(run_in_app, street).status == "accepted"
    # Once accepted there is no review form to keep the comment in: try while it is still submitted.
    task2 = _create(office, title="第二项任务")
    street2 = _cascade(office, run_in_app, run_jobs, task2)[1]["410105001"]
    url2 = f"{STREET}/{street2}/"
    edu.post_form(f"{STREET}/{street2}/report", {"percent": "50"}, page=url2)
    edu.post_form(f"{STREET}/{street2}/submit", {"version": _version(edu.get(url2).get_data(as_text=True))},
                  page=url2)
    old = int(_version(office.get(f"{DIST}/{street2}/").get_data(as_text=True))) - 1
    stale = office.post_form(f"{DIST}/{street2}/review", {"decision": "return", "comment": "我的退回意见",
                                                          "version": old}, page=f"{DIST}/{street2}/")
    text = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "我的退回意见" in text and 'id="review-form"' in text
    assert _task(run_in_app, street2).status == "submitted"


def test_supervision_notice_until_the_street_responds(office, new_browser, run_in_app, run_jobs):
    task_id = _create(office)
    street = _cascade(office, run_in_app, run_jobs, task_id)[1]["410105001"]
    page = office.get(f"{DIST}/{street}/").get_data(as_text=True)
    assert 'id="notice-form"' in page
    assert office.post_form(f"{DIST}/{street}/notices", {"text": "请于本周内报送进度"},
                            page=f"{DIST}/{street}/").status_code == 302
    street_office = _as(new_browser, "office-410105001")
    url = f"{STREET}/{street}/"
    page = street_office.get(url).get_data(as_text=True)
    assert "open-notice" in page and "请于本周内报送进度" in page and 'id="notice-form"' not in page
    assert "notice-badge" in street_office.get(f"{STREET}/").get_data(as_text=True)
    # The liaison reads it but the office answers.
    assert 'name="response"' not in _as(new_browser, "edu-410105001").get(url).get_data(as_text=True)
    notice_id = re.search(r'/notices/(\d+)/respond', page).group(1)
    assert street_office.post_form(f"{STREET}/{street}/notices/{notice_id}/respond", {"response": "已安排，周五前报送"},
                                   page=url).status_code == 302
    page = street_office.get(url).get_data(as_text=True)
    assert "open-notice" not in page and "已安排，周五前报送" in page
    assert "notice-badge" not in street_office.get(f"{STREET}/").get_data(as_text=True)


def test_cancel_asks_for_a_reason(office, run_in_app, run_jobs):
    task_id = _create(office)
    children = _cascade(office, run_in_app, run_jobs, task_id)[1]
    url = f"{DIST}/{task_id}/cancel"
    assert office.get(url).status_code == 200
    assert office.post_form(url, {"reason": ""}).status_code == 400
    assert office.post_form(url, {"reason": "与另一任务重复"}).status_code == 302
    assert {_task(run_in_app, i).status for i in [task_id, *children.values()]} == {"cancelled"}


def test_edit_with_a_stale_version_keeps_the_input(office, run_in_app):
    task_id = _create(office)
    url = f"{DIST}/{task_id}/edit"
    version = _version(office.get(url).get_data(as_text=True))
    data = {"title": "改名后的任务", "lead_department": "edu", "due_date": DUE, "version": version}
    assert office.post_form(url, data).status_code == 302
    stale = office.post_form(url, dict(data, title="我的旧输入"))
    assert stale.status_code == 409 and "我的旧输入" in stale.get_data(as_text=True)
    assert _task(run_in_app, task_id).title == "改名后的任务"


def test_issue_a_task_from_a_published_decision(office, new_browser, people, tree, run_in_app):
    from portal.models import Meeting
    from portal.services import meetings as msvc

    def build():
        by = db.session.get(User, people["office-410105"].id)
        meeting = msvc.create_meeting(db.session.get(Unit, tree["410105"].id), {
            "title": "第一季度联席会议", "starts_at": "2026-01-10 09:00", "invited_departments": ["edu", "civil"]}, by=by)
        for to in ("agenda_open", "agenda_locked", "held"):
            msvc.transition(meeting, to, by=by)
        msvc.save_minutes(meeting, "会议纪要正文", by=by, base_revision=0)
        msvc.add_decision(meeting, {"text": "各街道建成标准化社区学校", "lead_department": "edu",
                                    "co_departments": ["civil"], "due_date": DUE}, by=by)
        msvc.publish_minutes(meeting, by=by)
        return meeting.id, meeting.decisions[0].id

    meeting_id, decision_id = run_in_app(build)
    meeting_url = f"/district/410105/meetings/{meeting_id}/"
    page = office.get(meeting_url).get_data(as_text=True)
    assert f"/district/410105/tasks/from-decision/{decision_id}" in page
    # A liaison sees the decision but no button, and may not post it either.
    edu = _as(new_browser, "edu-410105")
    assert "from-decision" not in edu.get(meeting_url).get_data(as_text=True)
    assert edu.post_form(f"{DIST}/from-decision/{decision_id}", page=meeting_url).status_code == 403
    issued = office.post_form(f"{DIST}/from-decision/{decision_id}", page=meeting_url)
    assert issued.status_code == 302
    task_page = office.get(issued.headers["Location"]).get_data(as_text=True)
    assert "各街道建成标准化社区学校" in task_page and f"/meetings/{meeting_id}/" in task_page
    page = office.get(meeting_url).get_data(as_text=True)
    assert "decision-task" in page and "from-decision" not in page  # issued once; the task is listed
    assert run_in_app(lambda: db.session.get(Meeting, meeting_id).status) == "minutes_published"
    # A sibling district cannot issue from it.
    sibling = _as(new_browser, "office-410102")
    assert sibling.post_form(f"/district/410102/tasks/from-decision/{decision_id}",
                             page="/district/410102/").status_code == 404


# --- Excel through the pages ----------------------------------------------------------------

def test_excel_export_and_all_or_nothing_import_through_the_pages(new_browser, people, run_in_app):
    import io

    from openpyxl import Workbook, load_workbook

    from portal.models import Task, TaskReport, Unit, User
    from portal.services import tasks as task_svc
    from portal.extensions import db as _db

    def make():
        office = _db.session.get(User, people["office-410105001"].id)
        unit = _db.session.get(Unit, office.home_unit_id)
        ids = []
        for title in ("社区读书会", "家长学校"):
            ids.append(task_svc.create_task(unit, {"title": title, "lead_department": "edu", "due_date": "2030-06-30"},
                                            by=office).id)
        return ids
    first, second = run_in_app(make)
    b = new_browser()
    b.login("office-410105001")
    exported = b.get("/street/410105001/tasks/export.xlsx")
    assert exported.status_code == 200 and "filename*=UTF-8''" in exported.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(exported.data))["进度报送"]
    assert {row[0] for row in sheet.iter_rows(min_row=3, values_only=True)} == {first, second}
    assert sheet["A1"].value.startswith("经八路街道任务进度报送（本单位） · ")  # the unit, the list's scope, the date

    def workbook(rows):
        wb = Workbook()
        ws = wb.active
        ws.title = "进度报送"
        ws.append(["任务编号", "单位", "任务名称", "进度(%)", "实际值", "进展情况"])
        for row in rows:
            ws.append(row)
        out = io.BytesIO()
        wb.save(out)
        out.seek(0)
        return out

    count = lambda: run_in_app(lambda: _db.session.query(TaskReport).count())  # noqa: E731
    bad = b.post_form("/street/410105001/tasks/import",
                      {"file": (workbook([[first, "", "", 50, 3, "已开展"], [second, "", "", 150, None, ""]]), "进度.xlsx")},
                      content_type="multipart/form-data")
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert 'id="import-errors"' in page and "<td>3</td>" in page and "percent" in page
    assert count() == 0  # nothing applied
    good = b.post_form("/street/410105001/tasks/import",
                       {"file": (workbook([[first, "", "", 50, 3, "已开展"], [second, "", "", 100, None, ""]]), "进度.xlsx")},
                       content_type="multipart/form-data")
    assert good.status_code == 302 and count() == 2
    assert run_in_app(lambda: float(_db.session.get(Task, second).progress)) == 100.0
