"""The import of a year's activity register under ``make bench`` (issue 11).

:func:`measure_register_import` downloads the street 410105001's register as its
office does (``/street/410105001/activities/export.xlsx``), fills the download's
second sheet (活动登记, the import template) with ``BENCH_IMPORT_ROWS`` (10,000)
deterministic rows of categories and departments by the names the third sheet
lists, and uploads it through the real view (``POST …/activities/import``: the
all-or-nothing check of every row, then the service's ``create_activity`` per
row, one commit). It times the upload request, checks that it answered the
redirect of success and that exactly that many activities were added, then
runs the jobs the commit queued (the figures, the counted targets) in this
process and times them on their own.
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


def measure_register_import(app, results: dict, notes: list[str], *, log=print) -> None:
    from bench.run import held_jobs, run_held
    from portal.clock import local_today
    from portal.extensions import db
    from portal.models import Unit

    csrf, app.config["WTF_CSRF_ENABLED"] = app.config.get("WTF_CSRF_ENABLED", True), False
    redis_url, app.config["REDIS_URL"] = app.config.get("REDIS_URL"), None
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
        with held_jobs() as held:
            start = time.perf_counter()
            response = client.post(f"/street/{STREET}/activities/import",
                                   data={"file": (io.BytesIO(data), "register.xlsx")},
                                   content_type="multipart/form-data")
            upload_s = time.perf_counter() - start
            with app.app_context():
                added = _count(unit_id) - before
                start = time.perf_counter()
                jobs = len(held)
                run_held(held)
                jobs_s = time.perf_counter() - start
                db.session.remove()
        results["register_import"] = {"rows": ROWS, "seconds": round(upload_s, 2), "status": response.status_code,
                                      "added": added, "rows_per_s": round(ROWS / upload_s, 1) if upload_s else None,
                                      "file_mb": round(len(data) / 2**20, 2), "build_s": round(build_s, 2),
                                      "jobs": jobs, "jobs_s": round(jobs_s, 2), "street": STREET}
        if response.status_code != 302 or added != ROWS:
            notes.append(f"The register import answered {response.status_code} and added {added} of {ROWS} rows.")
    finally:
        app.config["WTF_CSRF_ENABLED"], app.config["REDIS_URL"] = csrf, redis_url
