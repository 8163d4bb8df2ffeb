"""File jobs (后台文件): a task list download longer than ``EXPORT_INLINE_MAX_ROWS`` is prepared
by a job (the file has the direct download's rows), a register upload longer than
``IMPORT_INLINE_MAX_ROWS`` is checked and saved by one (all or nothing, the bad row named);
only the requester sees the job's page and file; progress is written while the job runs;
a failing job says so. On either backend (the job in-process, or on a real RQ worker)."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import delete, func, select

from portal.clock import local_today
from portal.extensions import db
from portal.models import Activity, FileJob, Membership, Task, Unit, User
from portal.services import tasks as svc

LIST = "/district/410105/tasks/"


def _user(people, name):
    return db.session.get(User, people[name].id)


def _unit(code):
    return Unit.by_code(code)


@pytest.fixture
def five_tasks(people, run_in_app, run_jobs):
    """金水区: three tasks of its own, one passed down to its two streets: five rows in its subtree list."""
    due = (run_in_app(local_today) + timedelta(days=30)).isoformat()

    def make():
        by = _user(people, "office-410105")
        ids = [svc.create_task(_unit("410105"), {"title": f"社区教育任务{i}", "lead_department": "edu",
                                                 "due_date": due}, by=by).id for i in range(3)]
        svc.cascade_task(db.session.get(Task, ids[0]), "children", by=by)
        return ids
    ids = run_in_app(make)
    run_jobs()
    return ids


def _rows(data: bytes) -> dict:
    wb = load_workbook(io.BytesIO(data))
    return {name: [[cell.value for cell in row] for row in wb[name].iter_rows()] for name in wb.sheetnames}


def _jobs(app) -> list[FileJob]:
    with app.app_context():
        jobs = db.session.scalars(select(FileJob).order_by(FileJob.id)).all()
        db.session.expunge_all()
        db.session.remove()
        return jobs


def _ask_for_the_file(browser, query: str):
    """The download link of a long list: a page with the form that asks for the file, then its POST."""
    asked = browser.get(f"{LIST}export.xlsx{query}")
    assert asked.status_code == 200 and 'id="file-job-form"' in asked.get_data(as_text=True)
    return browser.post_form(f"{LIST}export.xlsx{query}", page=f"{LIST}export.xlsx{query}")


def test_a_long_task_list_is_prepared_by_a_job_with_the_direct_downloads_rows(app, browser, people, five_tasks,
                                                                             run_jobs, run_in_app, monkeypatch):
    browser.login("office-410105")
    direct = browser.get(f"{LIST}export.xlsx?scope=subtree")
    assert direct.status_code == 200 and direct.mimetype.endswith("spreadsheetml.sheet")
    assert _jobs(app) == []  # five rows are written at once

    monkeypatch.setitem(app.config, "EXPORT_INLINE_MAX_ROWS", 4)
    response = _ask_for_the_file(browser, "?scope=subtree")
    assert response.status_code == 302
    job_url = response.headers["Location"]
    assert re.fullmatch(r"/district/410105/tasks/export/\d+", job_url)
    run_jobs()
    page = browser.get(job_url).get_data(as_text=True)
    assert 'data-state="done"' in page and 'hx-get' not in page
    name = f"任务清单-金水区-{run_in_app(local_today).isoformat()}.xlsx"
    assert name in page
    download = browser.get(f"{job_url}/download")
    assert download.status_code == 200
    assert quote(name) in download.headers["Content-Disposition"]
    assert _rows(download.get_data()) == _rows(direct.get_data())
    assert len(_rows(download.get_data())["任务清单"]) == 2 + 5  # title, header, five tasks
    job = _jobs(app)[0]
    assert (job.state, job.progress_done, job.progress_total) == ("done", 5, 5)
    assert job.params["filters"]["scope"] == "subtree"

    # A filtered list keeps its filter in the job: only the streets' two instances.
    monkeypatch.setitem(app.config, "EXPORT_INLINE_MAX_ROWS", 2)
    response = _ask_for_the_file(browser, "?scope=subtree&q=%E4%BB%BB%E5%8A%A10")  # q=任务0
    run_jobs()
    filtered = browser.get(response.headers["Location"] + "/download")
    assert [row[3] for row in _rows(filtered.get_data())["任务清单"][2:]] == ["社区教育任务0"] * 3


def test_a_short_list_downloads_at_once_and_a_link_followed_queues_nothing(app, browser, people, five_tasks,
                                                                           monkeypatch):
    browser.login("office-410105")
    monkeypatch.setitem(app.config, "EXPORT_INLINE_MAX_ROWS", 4)
    assert browser.get(f"{LIST}export.xlsx?scope=unit").mimetype.endswith("spreadsheetml.sheet")  # three rows
    assert browser.get(f"{LIST}export.xlsx?scope=subtree").status_code == 200  # the form, no job yet
    assert _jobs(app) == []
    refused = browser.client.post(f"{LIST}export.xlsx?scope=subtree")  # no CSRF token
    assert refused.status_code == 400 and _jobs(app) == []


def test_only_the_requester_sees_the_job_and_its_file(app, browser, new_browser, people, five_tasks, run_jobs,
                                                      run_in_app, monkeypatch):
    monkeypatch.setitem(app.config, "EXPORT_INLINE_MAX_ROWS", 1)
    browser.login("office-410105")
    job_url = _ask_for_the_file(browser, "?scope=subtree").headers["Location"]
    run_jobs()
    assert browser.get(f"{job_url}/download").status_code == 200
    job_id = job_url.rsplit("/", 1)[1]
    for username, url in (("staff-410105", job_url),  # another user of the same unit
                          ("office-41", job_url),  # the province: it may open the unit, not the job
                          ("office-410102", job_url),  # a sibling district
                          ("office-410102", f"/district/410102/tasks/export/{job_id}")):  # under its own unit
        other = new_browser()
        other.login(username)
        assert other.get(url).status_code == 404, (username, url)
        assert other.get(f"{url}/download").status_code == 404, (username, url)
    # The requester who loses the unit loses the job.
    run_in_app(lambda: db.session.execute(delete(Membership).where(Membership.user_id == people["office-410105"].id)))
    assert browser.get(job_url).status_code == 404
    assert browser.get(f"{job_url}/download").status_code == 404


def test_the_page_shows_the_progress_and_polls_while_the_job_runs(app, browser, people, run_in_app):
    def seed():
        job = FileJob(kind="tasks_export", unit_id=_unit("410105").id, user_id=people["office-410105"].id,
                      params={}, state="running", stage="writing", progress_done=1500, progress_total=20000,
                      file_name="任务清单-金水区-2026-11-30.xlsx")
        db.session.add(job)
        db.session.flush()
        return job.id
    job_id = run_in_app(seed)
    browser.login("office-410105")
    fragment = browser.get(f"{LIST}export/{job_id}", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'hx-trigger="every 1s"' in text and 'data-state="running"' in text
    assert "1500 / 20000" in text and 'aria-valuenow="7"' in text
    full = browser.get(f"{LIST}export/{job_id}").get_data(as_text=True)
    assert 'id="file-job-reload"' in full  # without scripts, reloading the page shows the progress
    assert browser.get(f"{LIST}export/{job_id}/download").status_code == 404  # not ready yet


def test_an_upload_read_by_its_job_claims_no_row_count_before_the_job_counted_it(app, browser, people, run_in_app):
    """The sheet's dimension counts its title and header rows (a 600-row sheet said 601): until the
    job has read the rows, the page says it is reading the sheet, not "0 / 601"."""
    def seed():
        job = FileJob(kind="activities_import", unit_id=_unit("410105001").id,
                      user_id=people["office-410105001"].id, params={}, state="running", progress_done=0,
                      progress_total=None, file_name="登记.xlsx")
        db.session.add(job)
        db.session.flush()
        return job.id
    job_id = run_in_app(seed)
    browser.login("office-410105001")
    text = browser.get(f"/street/410105001/activities/import/{job_id}").get_data(as_text=True)
    assert "正在读取表格…" in text and " / " not in text.split('id="file-job-progress"')[1].split("</p>")[0]


def test_the_job_writes_its_progress_where_the_page_reads_it_while_it_runs(app, people, five_tasks, monkeypatch):
    """Progress goes out in short commits of its own: another connection reads it mid-job."""
    from jobs.file_jobs import run_file_job
    from portal.exports import tasks_excel
    from portal.services import file_jobs

    monkeypatch.setattr(tasks_excel, "PROGRESS_EVERY", 2)
    monkeypatch.setattr(file_jobs, "PROGRESS_EVERY", 1)
    seen = []
    real = file_jobs.Progress.__call__

    def watched(self, done, total=None, **kw):
        real(self, done, total, **kw)
        with db.engine.connect() as conn:
            seen.append(tuple(conn.execute(select(FileJob.state, FileJob.progress_done, FileJob.progress_total)
                                           .where(FileJob.id == self.job_id)).one()))
    monkeypatch.setattr(file_jobs.Progress, "__call__", watched)
    with app.app_context():
        job = FileJob(kind="tasks_export", unit_id=_unit("410105").id, user_id=people["office-410105"].id,
                      params={"filters": {"scope": "subtree", "status": "", "department": "", "due_within": None,
                                          "overdue": False, "q": ""}, "today": local_today().isoformat()},
                      state="queued", progress_done=0)
        db.session.add(job)
        db.session.commit()
        assert run_file_job(job.id) == "done"
        db.session.remove()
    assert ("running", 2, 5) in seen and ("running", 4, 5) in seen and ("running", 5, 5) in seen


def test_a_failing_job_is_left_failed_with_its_reason(app, browser, people, five_tasks, monkeypatch):
    from jobs.file_jobs import run_file_job
    from portal.exports import tasks_excel
    from portal.services import file_jobs

    monkeypatch.setattr(tasks_excel, "list_workbook", lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("磁盘已满")))
    with app.app_context():  # the job itself, in this process, whatever the backend
        job_id = file_jobs.request_file_job(
            "tasks_export", _unit("410105"), by=_user(people, "office-410105"),
            params={"filters": {"scope": "unit", "status": "", "department": "", "due_within": None,
                                "overdue": False, "q": ""}, "today": local_today().isoformat()}).id
        db.session.commit()
        db.session.execute(FileJob.__table__.update().where(FileJob.id == job_id).values(state="queued"))
        db.session.commit()
        assert run_file_job(job_id) == "failed"
        db.session.remove()
    job = _jobs(app)[0]
    assert job.state == "failed" and "磁盘已满" in job.error and job.stored_name is None and job.finished_at
    browser.login("office-410105")
    text = browser.get(f"{LIST}export/{job_id}").get_data(as_text=True)
    assert 'data-state="failed"' in text and 'id="file-job-failed"' in text and "磁盘已满" in text
    assert "hx-get" not in text
    assert browser.get(f"{LIST}export/{job_id}/download").status_code == 404


# --- a large register upload ---------------------------------------------------------------------------

REGISTER = "/street/410105001/activities/import"
GOOD = ["2026-03-05", None, "清明祭扫", "节日纪念活动", "烈士陵园", "教育", "共青团", 40, 5, 0, 3, 6, 200, 0, ""]
BAD_END = ["2026-03-10", "2026-03-01", "技能培训", "skills", "", "edu", "", 10, 0, 0, 0, 0, 0, 0, ""]


def _sheet(rows) -> bytes:
    from portal.exports.activities_excel import COLUMNS

    wb = Workbook()
    ws = wb.active
    ws.title = "活动登记"
    ws.append([title for _key, title, _w in COLUMNS])
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _upload(b, rows):
    return b.client.post(REGISTER, data={"csrf_token": b.csrf(REGISTER), "file": (io.BytesIO(_sheet(rows)), "登记.xlsx")},
                         content_type="multipart/form-data")


def _activities(run_in_app) -> int:
    return run_in_app(lambda: db.session.scalar(select(func.count(Activity.id))))


def test_a_large_register_upload_is_checked_and_saved_by_a_job(app, new_browser, people, run_in_app, run_jobs,
                                                               monkeypatch):
    from portal.uploads import StoredFileNotFound, open_stored

    monkeypatch.setitem(app.config, "IMPORT_INLINE_MAX_ROWS", 3)
    b = new_browser()
    b.login("office-410105001")
    # A bad row among five: the job refuses the whole sheet and names the row and the column.
    response = _upload(b, [GOOD, GOOD, BAD_END, GOOD, GOOD])
    assert response.status_code == 302
    job_url = response.headers["Location"]
    assert re.fullmatch(r"/street/410105001/activities/import/\d+", job_url)
    if app.config.get("REDIS_URL"):  # queued, not read yet: no row count claimed from the dimension
        assert _jobs(app)[0].progress_total is None
    run_jobs()
    text = b.get(job_url).get_data(as_text=True)
    assert 'data-state="done"' in text and 'id="file-job-refused"' in text
    assert "<td>4</td><td><code>end_date</code>" in text  # the header is row 1: the third data row is row 4
    assert _activities(run_in_app) == 0  # all or nothing, as the inline upload
    refused = _jobs(app)[0]
    assert refused.result["applied"] == 0 and refused.stored_name is None  # the sheet is not kept
    # The same sheet corrected: every row saved.
    response = _upload(b, [GOOD] * 5)
    job_url = response.headers["Location"]
    run_jobs()
    text = b.get(job_url).get_data(as_text=True)
    assert 'id="file-job-applied"' in text and "import-errors" not in text
    assert _activities(run_in_app) == 5
    job = _jobs(app)[1]
    assert (job.state, job.result["applied"], job.progress_done, job.progress_total) == ("done", 5, 5, 5)
    assert job.file_name == "登记.xlsx" and job.stored_name is None
    with app.app_context(), pytest.raises(StoredFileNotFound):
        open_stored(refused.stored_name or "0" * 32 + ".xlsx")
    # A sheet whose dimension says little (a writer that leaves it out) is told by its rows read.
    from portal.exports import tasks_excel

    monkeypatch.setattr(tasks_excel, "declared_sheet_rows", lambda data, sheet: 0)
    response = _upload(b, [GOOD] * 4)
    assert re.fullmatch(r"/street/410105001/activities/import/\d+", response.headers["Location"])
    run_jobs()
    assert _activities(run_in_app) == 9
    # Another user of the unit does not see it.
    other = new_browser()
    other.login("edu-410105001")
    assert other.get(job_url).status_code == 404


def test_a_small_register_upload_stays_inline(app, new_browser, people, run_in_app, monkeypatch):
    monkeypatch.setitem(app.config, "IMPORT_INLINE_MAX_ROWS", 3)
    b = new_browser()
    b.login("office-410105001")
    response = _upload(b, [GOOD, BAD_END])
    assert response.status_code == 400  # shown on the upload page itself
    assert "<td>3</td><td><code>end_date</code>" in response.get_data(as_text=True)
    response = _upload(b, [GOOD] * 3)
    assert response.status_code == 302 and "/activities/import/" not in response.headers["Location"]
    assert _activities(run_in_app) == 3 and _jobs(app) == []


def test_a_sheet_too_large_to_check_is_refused_at_once_not_queued(app, new_browser, people, run_in_app):
    """Its size is read from the sheet's own dimension, before any row: refused on the page, no job."""
    from portal.exports.activities_excel import COLUMNS

    wb = Workbook()
    ws = wb.active
    ws.title = "活动登记"
    ws.append([title for _key, title, _w in COLUMNS])
    ws.append(GOOD)
    ws.cell(row=12_500, column=1, value="2026-03-05")  # the sheet now spans 12,500 rows
    buffer = io.BytesIO()
    wb.save(buffer)
    b = new_browser()
    b.login("office-410105001")
    response = b.client.post(REGISTER, data={"csrf_token": b.csrf(REGISTER),
                                             "file": (io.BytesIO(buffer.getvalue()), "登记.xlsx")},
                             content_type="multipart/form-data")
    assert response.status_code == 400 and _jobs(app) == [] and _activities(run_in_app) == 0
