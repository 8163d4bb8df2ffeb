"""``make load``: a bounded load test on 127.0.0.1, with its own database.

1. (Re)creates the PostgreSQL database ``LOAD_DB`` (default ``portal_load``)
   on ``LOAD_PG`` (default ``postgresql://postgres@127.0.0.1:5432``), migrates
   it and seeds the Henan demo.
2. Starts gunicorn (``LOAD_WEB_WORKERS`` processes x ``LOAD_THREADS`` threads)
   and one RQ worker (``python -m jobs.worker``), both on loopback, on Redis
   ``LOAD_REDIS`` (default ``redis://127.0.0.1:6379/15``, queue ``portal-load``).
3. Runs Locust headless (bench/load/locustfile.py) with ``LOAD_USERS`` users
   (default 200) for ``LOAD_SECONDS`` seconds (default 60), spawning
   ``LOAD_SPAWN_RATE`` users a second.
4. Prints errors, p50, p95 and throughput next to the goal (0 errors), checks
   that the office's cascade reached every street exactly once and that no job
   is left in the outbox, and stops every process it started.

``LOAD_DB_RESTART_AT=30`` terminates every connection to the load database 30 s
into the run (a database restart, without touching the shared server) and
prints how many requests answered 503; requests in flight at that moment
count as errors, everything after must work again.

Only loopback addresses are accepted. The exit status is 0 when the goal is met.
"""
from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from urllib.parse import urlparse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _loopback(url: str) -> str:
    host = urlparse(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(f"make load runs on loopback only; {url} is not")
    return url


def _recreate_database(pg: str, name: str) -> None:
    import psycopg

    if not name.replace("_", "").isalnum():
        raise SystemExit(f"unexpected database name {name!r}")
    with psycopg.connect(pg.rstrip("/") + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _plan(path: str) -> dict:
    """Who logs in as what, from the seeded database."""
    from sqlalchemy import select

    from portal import create_app
    from portal.extensions import db
    from portal.models import Membership, Role, Task, TaskStatus, Unit, User

    app = create_app()
    with app.app_context():
        offices = []
        rows = db.session.execute(
            select(User.username, Unit.id, Unit.tier, Unit.code).join(Membership, Membership.user_id == User.id)
            .join(Unit, Unit.id == Membership.unit_id).where(Membership.role == Role.OFFICE_ADMIN.value)
            .order_by(Unit.path)).all()
        for username, unit_id, tier, code in rows:
            tasks = list(db.session.scalars(select(Task.id).where(Task.unit_id == unit_id).limit(5)))
            offices.append({"username": username, "tier": tier, "code": code, "tasks": tasks})
        # One reporter per open street task (a liaison of one of its departments where the demo has one,
        # else the street's office), so two simulated people never report on the same task at once.
        open_states = [TaskStatus.ASSIGNED.value, TaskStatus.IN_PROGRESS.value, TaskStatus.RETURNED.value]
        office_names = {o["username"] for o in offices}
        reporters = []
        for task in db.session.scalars(select(Task).join(Unit, Unit.id == Task.unit_id).where(
                Unit.tier == "street", Task.status.in_(open_states)).order_by(Task.id)):
            code = task.unit.code
            names = [f"{dept}-{code}" for dept in task.departments if User.by_username(f"{dept}-{code}")]
            name = names[0] if names else f"office-{code}"
            if name in office_names or names:
                reporters.append({"username": name, "code": code, "task": task.id})
        db.session.remove()
    plan = {"password": app.config["DEMO_PASSWORD"], "offices": offices, "reporters": reporters}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(plan, f, ensure_ascii=False)
    return plan


def _sign_in(host: str, plan: dict, path: str) -> None:
    """Log every account of the plan in once, before the measured run, as people who
    logged in this morning: most simulated users reuse these sessions (several tabs of
    one account); LOAD_LOGIN_SHARE of them log in during the run."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    import requests

    csrf = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

    def one(username: str) -> tuple[str, dict]:
        session = requests.Session()
        token = csrf.search(session.get(host + "/login", timeout=30).text).group(1)
        response = session.post(host + "/login", data={"username": username, "password": plan["password"],
                                                       "csrf_token": token}, timeout=30)
        if "/login" in response.url:
            raise SystemExit(f"could not log in as {username}")
        return username, session.cookies.get_dict()

    names = sorted({a["username"] for a in plan["offices"] + plan["reporters"]})
    with ThreadPoolExecutor(4) as pool:
        plan["cookies"] = dict(pool.map(one, names))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(plan, f, ensure_ascii=False)


def _database_went_away(pg: str, name: str, killed: list[int]) -> None:
    """LOAD_DB_RESTART_AT: what a database restart does to the portal, on this database only:
    every connection to it is terminated (the shared server itself keeps running)."""
    import psycopg

    with psycopg.connect(pg.rstrip("/") + "/postgres", autocommit=True) as conn:
        killed.append(conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchone()[0])
    print(f"  (database connections terminated: {killed[-1]})", flush=True)


def _wait_healthy(url: str, seconds: int = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise SystemExit("the portal did not become healthy in time")


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _aggregated(stats_csv: str) -> dict:
    with open(stats_csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["Name"] == "Aggregated":
            return row
    raise SystemExit("no aggregated row in the Locust statistics")


def _count_503(prefix: str) -> int:
    path = prefix + "_failures.csv"
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as f:
        return sum(int(row["Occurrences"]) for row in csv.DictReader(f) if "503" in row["Error"])


def _after(env: dict) -> dict:
    """The cascade's result and the outbox, read from the database."""
    from sqlalchemy import func, select

    from portal import create_app
    from portal.extensions import db
    from portal.models import CascadeRun, OutboxJob, Task, Unit

    app = create_app()
    with app.app_context():
        run = db.session.scalars(select(CascadeRun).order_by(CascadeRun.id.desc())).first()
        result = {"outbox": db.session.scalar(select(func.count(OutboxJob.id)))}
        if run is not None and run.target == "streets":
            per_unit = db.session.execute(select(Task.unit_id, func.count(Task.id)).where(
                Task.parent_id == run.task_id).group_by(Task.unit_id)).all()
            result.update(cascade_state=run.state, cascade_done=run.done, cascade_total=run.total,
                          streets=db.session.scalar(select(func.count(Unit.id)).where(Unit.tier == "street")),
                          instances=sum(n for _u, n in per_unit), duplicates=sum(1 for _u, n in per_unit if n > 1),
                          cascade_seconds=(round((run.finished_at - run.created_at).total_seconds(), 1)
                                           if run.finished_at else None))
        db.session.remove()
    return result


def main() -> int:
    users = int(_setting("LOAD_USERS", "200"))
    seconds = int(_setting("LOAD_SECONDS", "60"))
    spawn = _setting("LOAD_SPAWN_RATE", "20")
    pg = _loopback(_setting("LOAD_PG", "postgresql://postgres@127.0.0.1:5432"))
    name = _setting("LOAD_DB", "portal_load")
    redis_url = _loopback(_setting("LOAD_REDIS", "redis://127.0.0.1:6379/15"))
    port = int(_setting("LOAD_PORT", "8765"))
    web_workers, threads = _setting("LOAD_WEB_WORKERS", "3"), _setting("LOAD_THREADS", "4")
    host = f"http://127.0.0.1:{port}"
    work = tempfile.mkdtemp(prefix="portal-load-")
    env = dict(os.environ, DATABASE_URL=f"{pg.rstrip('/')}/{name}", REDIS_URL=redis_url, RQ_QUEUE="portal-load",
               SECRET_KEY=secrets.token_hex(32), PORTAL_INSTANCE_PATH=work, LOAD_PLAN=os.path.join(work, "plan.json"),
               PYTHONUNBUFFERED="1")
    env.pop("HEALTHZ_TOKEN", None)
    os.environ.update(env)

    print(f"make load: {users} users for {seconds} s on {host} (database {name}, Redis {redis_url}); logs in {work}")
    started = time.monotonic()
    _recreate_database(pg, name)
    flask = [os.path.join(BIN, "flask"), "--app", "wsgi"]
    for step in (["db", "upgrade"], ["demo", "seed"]):
        done = subprocess.run(flask + step, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 2
    from portal.queue import rq_queue
    from portal import create_app

    queue = rq_queue(create_app())
    queue.empty()
    plan = _plan(env["LOAD_PLAN"])
    print(f"seeded in {time.monotonic() - started:.0f} s: {len(plan['offices'])} office accounts, "
          f"{len(plan['reporters'])} street tasks open for reports")

    procs: list[subprocess.Popen] = []
    restarts: list[int] = []
    try:
        with open(os.path.join(work, "gunicorn.log"), "w") as web_log, \
                open(os.path.join(work, "worker.log"), "w") as worker_log:
            procs.append(subprocess.Popen(
                [os.path.join(BIN, "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", web_workers,
                 "--threads", threads, "--worker-class", "gthread", "--timeout", "60", "wsgi:app"],
                cwd=ROOT, env=env, stdout=web_log, stderr=subprocess.STDOUT, start_new_session=True))
            procs.append(subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=ROOT, env=env,
                                          stdout=worker_log, stderr=subprocess.STDOUT, start_new_session=True))
            _wait_healthy(host)
            _sign_in(host, plan, env["LOAD_PLAN"])
            prefix = os.path.join(work, "locust")
            restart_at = int(_setting("LOAD_DB_RESTART_AT", "0"))
            if restart_at:
                threading.Timer(restart_at, _database_went_away, (pg, name, restarts)).start()
            load_before = os.getloadavg()[0]
            with open(os.path.join(work, "locust.log"), "w") as locust_log:
                subprocess.run([os.path.join(BIN, "locust"), "-f", os.path.join(ROOT, "bench", "load", "locustfile.py"),
                                "--headless", "--users", str(users), "--spawn-rate", spawn, "--run-time", f"{seconds}s",
                                "--host", host, "--csv", prefix, "--only-summary", "--stop-timeout", "10"],
                               cwd=ROOT, env=env, stdout=locust_log, stderr=subprocess.STDOUT, timeout=seconds + 300)
            load_after = os.getloadavg()[0]
            # Let the worker finish what the run queued (the cascade, roll-ups), within bounds.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (queue.count or queue.started_job_registry.count):
                time.sleep(1)
    finally:
        _stop(procs)

    row = _aggregated(prefix + "_stats.csv")
    requests, errors = int(row["Request Count"]), int(row["Failure Count"])
    after = _after(env)
    print()
    print(f"  Load test: {users} simulated users, {seconds} s, gunicorn {web_workers}x{threads} + 1 RQ worker, "
          "PostgreSQL and Redis on 127.0.0.1")
    print(f"  requests      {requests}")
    print(f"  errors        {errors}          (goal: 0)")
    print(f"  p50           {row['50%']} ms")
    print(f"  p95           {row['95%']} ms")
    print(f"  throughput    {float(row['Requests/s']):.1f} requests/s")
    if "cascade_state" in after:
        print(f"  cascade       {after['cascade_state']}: {after['instances']} instances for {after['streets']} streets, "
              f"{after['duplicates']} duplicated, {after['cascade_seconds']} s")
    print(f"  outbox        {after['outbox']} job(s) waiting   (goal: 0)")
    print(f"  machine       {os.cpu_count()} CPUs, load average {load_before:.1f} before the run, "
          f"{load_after:.1f} at its end (anything else running shows here)")
    if restarts:
        print(f"  db restart    {restarts[0]} connections terminated at {_setting('LOAD_DB_RESTART_AT', '0')} s; "
              f"answers 503: {_count_503(prefix)}")
    if errors:
        failures = prefix + "_failures.csv"
        if os.path.exists(failures):
            print("  failures:")
            with open(failures, encoding="utf-8") as f:
                for failure in list(csv.DictReader(f))[:10]:
                    print(f"    {failure['Method']} {failure['Name']}: {failure['Error'][:120]} x{failure['Occurrences']}")
    cascade_ok = after.get("cascade_state") == "finished" and after.get("duplicates") == 0 and \
        after.get("instances") == after.get("streets")
    ok = errors == 0 and cascade_ok and after["outbox"] == 0
    print(f"  result        {'goal met' if ok else 'goal NOT met'}   (logs: {work})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
