"""``make bench``: time the foundation's heavy paths on the real Henan network.

Runs on the configured backend (SQLite in a temporary folder by default, or
``DATABASE_URL``; the database is emptied first, so point it at a scratch
database). Writes ``bench/report.json`` and prints a table. Nothing here is
asserted: the numbers are for reading and comparing between commits.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone

REPEAT = int(os.environ.get("BENCH_REPEAT", "30"))


def _timed(fn, repeat=REPEAT):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(samples), 2), "p95_ms": round(sorted(samples)[int(len(samples) * 0.95) - 1], 2),
            "runs": repeat}


def main() -> int:
    if not os.environ.get("DATABASE_URL"):
        os.environ["PORTAL_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="portal-bench-")
    from flask_migrate import upgrade
    from sqlalchemy import MetaData, select

    from portal import create_app
    from portal.cli import DEFAULT_DIVISIONS
    from portal.extensions import db
    from portal.services.demo import seed_demo
    from portal.services.units import import_units, load_file

    app = create_app({"RATELIMIT_ENABLED": False})
    results: dict = {}
    with app.app_context():
        with db.engine.begin() as conn:
            existing = MetaData()
            existing.reflect(conn)
            existing.drop_all(conn)
        upgrade()
        start = time.perf_counter()
        import_units(load_file(DEFAULT_DIVISIONS))
        db.session.commit()
        results["import_henan_2786_units_s"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        import_units(load_file(DEFAULT_DIVISIONS))
        db.session.commit()
        results["reimport_unchanged_s"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        seed = seed_demo(DEFAULT_DIVISIONS, password=app.config["DEMO_PASSWORD"])
        db.session.commit()
        results["demo_seed_s"] = round(time.perf_counter() - start, 3)
        results["demo_accounts"] = len(seed.created)
        db.session.remove()

        # One provincial task to all 2,586 streets: the request part and the fan-out job.
        from datetime import date, timedelta

        from portal.models import Task, Unit, User
        from portal.services import tasks as task_svc

        office = User.by_username("office-41")
        start = time.perf_counter()
        task = task_svc.create_task(Unit.by_code("41"), {"title": "bench cascade", "lead_department": "edu",
                                                         "due_date": date.today() + timedelta(days=30)}, by=office)
        run = task_svc.cascade_task(task, "streets", by=office)
        app.config["REDIS_URL"], redis_url = None, app.config.get("REDIS_URL")
        db.session.info.pop("portal_pending_jobs", None)  # the fan-out is timed on its own below
        db.session.commit()
        results["cascade_request_s"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        from jobs.tasks import run_cascade

        created = run_cascade(run.id)
        results["cascade_fanout_2586_streets_s"] = round(time.perf_counter() - start, 3)
        results["cascade_instances"] = created
        street_task = db.session.scalar(select(Task).join(Unit, Unit.id == Task.unit_id).where(
            Task.parent_id == task.id, Unit.code == "410105001"))
        start = time.perf_counter()
        task_svc.report_progress(street_task, {"percent": 50}, by=User.by_username("edu-410105001"))
        db.session.info.pop("portal_pending_jobs", None)
        task_svc.rollup(street_task.parent_id)
        db.session.commit()
        results["report_and_rollup_over_2586_siblings_ms"] = round((time.perf_counter() - start) * 1000, 1)
        app.config["REDIS_URL"] = redis_url
        db.session.remove()

    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": "office-41", "password": app.config["DEMO_PASSWORD"]}).status_code == 302
    pages = {
        "GET /province/41/": "/province/41/",
        "GET /province/41/?q=街道 (subtree search, page 1 of 2,586)": "/province/41/?q=%E8%A1%97%E9%81%93",
        "GET /province/41/?q=街道&page=100": "/province/41/?q=%E8%A1%97%E9%81%93&page=100",
        "GET /district/410105/": "/district/410105/",
        "GET /street/410105001/": "/street/410105001/",
        "GET /province/41/accounts/": "/province/41/accounts/",
        "GET /district/410105/meetings/": "/district/410105/meetings/",
        "GET /district/410105/meetings/1/": "/district/410105/meetings/1/",
        "GET /province/41/tasks/?scope=subtree (≈2,700 instances)": "/province/41/tasks/?scope=subtree",
    }
    results["pages"] = {}
    for label, url in pages.items():
        assert client.get(url).status_code == 200, url
        results["pages"][label] = _timed(lambda url=url: client.get(url))
    token = client.post("/api/v1/tokens", json={"username": "office-41",
                                                "password": app.config["DEMO_PASSWORD"]}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    results["pages"]["GET /api/v1/units/41"] = _timed(lambda: client.get("/api/v1/units/41", headers=headers))
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "backend": app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0],
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} cores",
        "results": results,
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "report.json")
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(report, fh, ensure_ascii=False, indent=2)
    print(f"backend {report['backend']} · {report['machine']} · report written to {out}")
    for key, value in results.items():
        if key != "pages":
            print(f"  {key:40s} {value}")
    for label, timing in results["pages"].items():
        print(f"  {label:62s} median {timing['median_ms']:8.2f} ms   p95 {timing['p95_ms']:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
