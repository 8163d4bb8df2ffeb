"""The import of a year's activity register under ``make bench`` (issue 11).

:func:`measure_register_import` downloads the street 410105001's register as its
office does (``/street/410105001/activities/export.xlsx``), fills the download's
second sheet (活动登记, the import template) with ``BENCH_IMPORT_ROWS`` (10,000)
deterministic rows of categories and departments by the names the third sheet
lists, and uploads it through the real view (``POST …/activities/import``).
A sheet of more than ``IMPORT_INLINE_MAX_ROWS`` rows is a file job: the request
stores it, queues the job and answers a redirect to the job's page; the job
checks every row and saves all of them or none (the service's
``create_activity`` per row, one commit). Timed apart: the request (upload →
answered) and the job (answered → done). With ``worker`` (PostgreSQL and
``REDIS_URL``) the job runs on a real RQ worker and its page is polled until it
says done, the progress it showed kept; without, the queued job is run in this
process right after the answer and timed. Then the activities saved are
counted, and the jobs the job's commit queued (the figures, the counted targets)
are run in this process and timed on their own (in-process only: the worker
runs them itself).
"""
from __future__ import annotations

import io
import os
import random
import time
from datetime import date, timedelta

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "10000"))
STREET = "410105001"


def build_register(template_xlsx: bytes, rows: int, *, today: date, seed: int = 41) -> bytes:
    """The download with ``rows`` activities filled into its 活动登记 sheet below the header row."""
    from openpyxl import load_workbook

    from portal.exports.activities_excel import CODES_SHEET, COLUMNS, TEMPLATE_SHEET

    wb = load_workbook(io.BytesIO(template_xlsx))
    ws = wb[TEMPLATE_SHEET]
    header_row = next(r for r in range(1, 10) if ws.cell(r, 1).value == COLUMNS[0][1])
    codes = wb[CODES_SHEET]
    code_header = next(r for r in range(1, 10) if codes.cell(r, 1).value == "活动类别")
    categories = [codes.cell(r, 1).value for r in range(code_header + 1, codes.max_row + 1) if codes.cell(r, 1).value]
    departments = [codes.cell(r, 3).value for r in range(code_header + 1, codes.max_row + 1) if codes.cell(r, 3).value]
    rng = random.Random(seed)
    first = date(today.year, 1, 1)
    span = max(1, (today - first).days)
    for i in range(rows):
        start = first + timedelta(days=rng.randrange(span))
        youth, elders, others = rng.randrange(0, 60), rng.randrange(0, 40), rng.randrange(0, 80)
        values = {"start_date": start, "end_date": start + timedelta(days=rng.choice((0, 0, 0, 1, 2))),
                  "title": f"社区教育活动第{i + 1}场", "category": rng.choice(categories), "place": "社区活动室",
                  "lead_department": rng.choice(departments), "co_departments": None, "youth": youth,
                  "elders": elders, "others": others, "volunteers": min(rng.randrange(0, 10), youth + elders + others),
                  "volunteer_hours": rng.randrange(0, 40), "funds": rng.randrange(0, 2000), "donated_goods": 0,
                  "narrative": "按计划开展"}
        row = header_row + 1 + i
        for col, (key, _title, _w) in enumerate(COLUMNS, start=1):
            ws.cell(row, col, values[key])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _count(unit_id: int) -> int:
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import Activity

    return db.session.scalar(select(func.count(Activity.id)).where(Activity.unit_id == unit_id))


def _wait_for_job(client, page: str, *, poll: float, timeout: float) -> tuple[dict, list]:
    """Poll the job's page until it says done or failed (or ``timeout``): its last state and the
    distinct progress figures [done, total, stage] it showed on the way, each once."""
    from bench.pages import job_state

    seen: list = []
    deadline = time.perf_counter() + timeout
    while True:
        response = client.get(page)
        state = job_state(response.data) if response.status_code == 200 else {
            "state": f"HTTP {response.status_code}"}
        if state.get("state") == "running" and state.get("done") is not None:
            mark = [state["done"], state["total"], state["stage"]]
            if not seen or seen[-1] != mark:
                seen.append(mark)
        if state.get("state") not in ("queued", "running") or time.perf_counter() > deadline:
            return state, seen
        time.sleep(poll)


def measure_register_import(app, results: dict, notes: list[str], *, log=print, worker=None) -> None:
    """``worker()``: a context manager running a real RQ worker (yields None when it could not start);
    None: the job runs in this process."""
    from contextlib import nullcontext

    from bench.pages import JOB_POLL_SECONDS, JOB_TIMEOUT
    from bench.run import held_jobs, run_held
    from portal.clock import local_today
    from portal.extensions import db
    from portal.models import FileJob, Unit

    csrf, app.config["WTF_CSRF_ENABLED"] = app.config.get("WTF_CSRF_ENABLED", True), False
    redis_url = app.config.get("REDIS_URL")
    if worker is None:
        app.config["REDIS_URL"] = None  # the job is held and run here, timed on its own
    try:
        client = app.test_client()
        response = client.post("/login", data={"username": f"office-{STREET}",
                                               "password": app.config["DEMO_PASSWORD"]})
        if response.status_code != 302:
            notes.append(f"The register import was not measured: office-{STREET} could not log in.")
            return
        download = client.get(f"/street/{STREET}/activities/export.xlsx?scope=unit")
        if download.status_code != 200:
            notes.append(f"The register import was not measured: the download answered {download.status_code}.")
            return
        start = time.perf_counter()
        with app.app_context():
            today = local_today()
        data = build_register(download.data, ROWS, today=today)
        build_s = time.perf_counter() - start
        with app.app_context():
            unit_id = Unit.by_code(STREET).id
            before = _count(unit_id)
            db.session.remove()
        log(f"  uploading {ROWS:,} rows ({len(data) / 2**20:.1f} MB) …")
        seen: list = []
        jobs = jobs_s = None
        # With the worker the jobs go to Redis as in production; without, they are held and run here.
        with (worker() if worker is not None else nullcontext("in-process")) as runner, \
                (held_jobs() if worker is None else nullcontext([])) as held:
            if runner is None:
                notes.append("The register import was not measured: the worker did not start.")
                return
            start = time.perf_counter()
            response = client.post(f"/street/{STREET}/activities/import",
                                   data={"file": (io.BytesIO(data), "register.xlsx")},
                                   content_type="multipart/form-data")
            answered = time.perf_counter()
            request_s = answered - start
            page = response.headers.get("Location", "")
            with app.app_context():
                added_in_request = _count(unit_id) - before
                db.session.remove()
            if response.status_code != 302 or "/import/" not in page:
                notes.append(f"The register upload answered {response.status_code} ({page or 'no redirect'}), "
                             "not the file job's page: the job was not timed.")
                state, job_s = {"state": None}, 0.0
            elif worker is not None:  # answered → the job's page says done (or failed)
                state, seen = _wait_for_job(client, page, poll=JOB_POLL_SECONDS, timeout=JOB_TIMEOUT)
                job_s = time.perf_counter() - answered
            else:  # the job's own run, then its page read once
                with app.app_context():
                    job_s = run_held(held, "jobs.file_jobs.")
                    db.session.remove()
                state = _wait_for_job(client, page, poll=JOB_POLL_SECONDS, timeout=0)[0]
            with app.app_context():
                added = _count(unit_id) - before
                job_row = db.session.get(FileJob, int(page.rstrip("/").rsplit("/", 1)[1])) if "/import/" in page \
                    else None
                result = dict(job_row.result or {}) if job_row is not None else {}
                if worker is None:
                    later = [job for job in held if not job[0].startswith("jobs.file_jobs.")]
                    start = time.perf_counter()
                    run_held(later)
                    jobs, jobs_s = len(later), time.perf_counter() - start
                db.session.remove()
        total_s = request_s + job_s
        results["register_import"] = {
            "rows": ROWS, "request_s": round(request_s, 3), "status": response.status_code,
            "added_in_request": added_in_request, "job_s": round(job_s, 2), "upload_to_done_s": round(total_s, 2),
            "job_state": state.get("state"), "applied": state.get("applied"), "result_applied": result.get("applied"),
            "errors": len(result.get("errors") or []), "added": added,
            "rows_per_s": round(added / total_s, 1) if total_s and added else None,
            "via": "the worker" if worker is not None else "in this process",
            "progress_seen": seen, "file_mb": round(len(data) / 2**20, 2), "build_s": round(build_s, 2),
            "jobs": jobs, "jobs_s": round(jobs_s, 2) if jobs_s is not None else None, "street": STREET}
        if state.get("state") != "done" or added != ROWS:
            notes.append(f"The register import answered {response.status_code}, its job ended "
                         f"{state.get('state')} ({state.get('error') or ''}) and {added} of {ROWS} rows were added.")
    finally:
        app.config["WTF_CSRF_ENABLED"], app.config["REDIS_URL"] = csrf, redis_url
