"""Jobs under ``make bench``: what the real worker adds to a job, the cascade down the whole tree,
and the time from saving an activity to the province's figure.

- :func:`measure_rollup_job`: the task roll-up ``jobs.tasks.rollup`` of a
  cascaded instance, run by a real ``python -m jobs.worker`` (the job's time is
  RQ's ``ended_at - started_at``) against the same roll-up's SQL run directly in
  this process (``portal.services.tasks.rollup`` + commit), in turns, on the
  same instances (issue 9: worker job time ≤ 3× its SQL time).
- :func:`measure_tree_cascade`: a provincial task passed "down the whole tree"
  (``to="tree"``): the request (create + ``cascade_task`` + commit) until every
  instance exists (the cascade run finished), through the worker when there is
  one, else in this process (issue 9: ≤ 3 s).
- :func:`measure_activity_to_province`: an activity saved through the service
  at a street and committed, until the province's stored ``activities.count``
  of this month changes, through the worker (issue 11).
"""
from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ROLLUPS = int(os.environ.get("BENCH_ROLLUPS", "30"))
ACTIVITY_WRITES = int(os.environ.get("BENCH_ACTIVITY_WRITES", "10"))


def _wait(pred, timeout: float, step: float = 0.005) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


@contextmanager
def real_worker(app, notes: list[str]):
    """A ``python -m jobs.worker`` on the app's Redis queue, emptied first; yields the queue once the
    worker idles (its start-up jobs done), or None when it could not start."""
    from rq import Worker

    from portal.queue import rq_queue

    queue = rq_queue(app)
    queue.empty()
    log_path = os.path.join(tempfile.gettempdir(), f"portal-bench-worker-jobs-{os.getpid()}.log")
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", ROOT)
    with open(log_path, "w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        _wait(lambda: worker.poll() is not None or (bool(Worker.all(queue=queue)) and len(queue) == 0
                                                    and queue.started_job_registry.count == 0), 120, 0.05)
        time.sleep(1)  # the start-up sweep and maintenance jobs
        _wait(lambda: len(queue) == 0 and queue.started_job_registry.count == 0, 60, 0.05)
        if worker.poll() is not None:
            notes.append(f"The worker exited at once (code {worker.returncode}); see {log_path}.")
            yield None
        else:
            yield queue
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _rollup_targets(count: int) -> list[int]:
    """Cascaded instances at districts (their children: the district's streets), in id order."""
    from sqlalchemy import exists, select
    from sqlalchemy.orm import aliased

    from portal.extensions import db
    from portal.models import Task, Unit

    child = aliased(Task)
    stmt = (select(Task.id).join(Unit, Unit.id == Task.unit_id)
            .where(Unit.tier == "district", exists().where(child.parent_id == Task.id))
            .order_by(Task.id).limit(count))
    return list(db.session.scalars(stmt))


def measure_rollup_job(app, queue, results: dict, notes: list[str]) -> None:
    from rq.job import Job

    from portal.extensions import db
    from portal.queue import enqueue
    from portal.services.tasks import rollup

    targets = _rollup_targets(ROLLUPS + 3)
    db.session.remove()
    sql_ms, job_ms, wall_ms, failed = [], [], [], 0
    stamp = int(time.time())
    for i, task_id in enumerate(targets):
        start = time.perf_counter()
        rollup(task_id)
        db.session.commit()
        direct = (time.perf_counter() - start) * 1000
        db.session.remove()
        job_id = f"bench-rollup-{stamp}-{i}"
        start = time.perf_counter()
        enqueue("jobs.tasks.rollup", task_id, job_id=job_id)
        db.session.commit()
        job = Job.fetch(job_id, connection=queue.connection)
        done = _wait(lambda: job.get_status(refresh=True) in ("finished", "failed"), 30)
        wall = (time.perf_counter() - start) * 1000
        db.session.remove()
        if i < 3:
            continue  # warm-up
        job.refresh()
        if not done or job.get_status() != "finished" or not (job.started_at and job.ended_at):
            failed += 1
            continue
        sql_ms.append(direct)
        job_ms.append((job.ended_at - job.started_at).total_seconds() * 1000)
        wall_ms.append(wall)
    if not job_ms:
        notes.append(f"No roll-up job finished on the worker ({failed} failed or timed out).")
        return
    sql, job_time = statistics.median(sql_ms), statistics.median(job_ms)
    results["rollup_job"] = {"runs": len(job_ms), "failed": failed, "sql_median_ms": round(sql, 2),
                             "job_median_ms": round(job_time, 2), "ratio": round(job_time / sql, 2) if sql else None,
                             "enqueue_to_finished_median_ms": round(statistics.median(wall_ms), 1),
                             "job": "jobs.tasks.rollup(<a district's instance>)"}
    if failed:
        notes.append(f"{failed} roll-up jobs did not finish on the worker within 30 s.")


def measure_tree_cascade(app, queue, results: dict, notes: list[str]) -> None:
    """Request → every instance below the province created, for one task passed down the whole tree."""
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.models import CascadeRun, Task, Unit, User
    from portal.services import tasks as task_svc

    office = User.by_username("office-41")
    province = Unit.by_code("41")
    start = time.perf_counter()
    task = task_svc.create_task(province, {"title": "bench cascade down the whole tree", "lead_department": "edu",
                                           "due_date": (date.today() + timedelta(days=30)).isoformat()},
                                by=office)
    run = task_svc.cascade_task(task, "tree", by=office)
    request_s, later = None, []
    if queue is None:
        from bench.run import held_jobs, run_held

        with held_jobs() as held:
            db.session.commit()
            request_s = time.perf_counter() - start
            run_held(held, "jobs.tasks.run_cascade")
            # the figures: run after the timing (not part of "the instances exist"); notifications: dropped
            later = [job for job in held if job[0].startswith("jobs.metrics.")]
    else:
        db.session.commit()
        request_s = time.perf_counter() - start
    run_id, task_id, total = run.id, task.id, run.total
    db.session.remove()

    def finished() -> bool:
        state = db.session.scalar(select(CascadeRun.state).where(CascadeRun.id == run_id))
        db.session.rollback()
        return state in ("finished", "failed")

    ok = _wait(finished, 300, 0.01)
    elapsed = time.perf_counter() - start
    state = db.session.get(CascadeRun, run_id).state
    below = db.session.scalar(select(func.count(Unit.id)).where(Unit.path.like(province.path + "%"),
                                                                 Unit.id != province.id))
    instances = task_svc.instances_below(db.session.get(Task, task_id))
    if later:
        run_held(later)
        db.session.remove()
    results["cascade_tree"] = {"seconds": round(elapsed, 3), "request_s": round(request_s, 3),
                               "state": state, "total": total, "instances": len(instances),
                               "units_below": below, "via": "worker" if queue is not None else "in-process",
                               "finished_in_time": ok}
    db.session.remove()
    if not ok or state != "finished":
        notes.append(f"The cascade down the whole tree did not finish ({state}).")
    elif len(instances) != below:
        notes.append(f"The cascade down the whole tree made {len(instances)} instances for {below} units below.")


def measure_activity_to_province(app, queue, results: dict, notes: list[str]) -> None:
    """An activity saved at a street through the service and committed, until the province's stored
    ``activities.count`` of this month shows it (the real worker refreshes the figures)."""
    from sqlalchemy import text

    from portal.clock import local_today
    from portal.extensions import db
    from portal.models import Unit, User
    from portal.services import activities as svc

    # The cascade before it leaves thousands of units to refresh: the worker finishes that first, so that
    # what is timed is the activity's own refresh, not the queue in front of it.
    _wait(lambda: len(queue) == 0 and queue.started_job_registry.count == 0, 600, 0.2)
    street_id = Unit.by_code("410105001").id
    office_id = User.by_username("office-410105001").id
    province_id = Unit.by_code("41").id
    period = local_today().strftime("%Y-%m")
    db.session.remove()
    poll = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    figure = text("SELECT subtree FROM metric_values WHERE unit_id = :u AND metric = 'activities.count' "
                  "AND period = :p")

    def current() -> int:
        return int(poll.execute(figure, {"u": province_id, "p": period}).scalar() or 0)

    samples, missed = [], 0
    try:
        for i in range(ACTIVITY_WRITES + 2):
            before = current()
            svc.create_activity(db.session.get(Unit, street_id), {
                "title": f"bench 法治讲座 {i}", "category": "legal", "start_date": local_today().isoformat(),
                "end_date": local_today().isoformat(), "place": "社区活动室", "lead_department": "justice",
                "participants": {"youth": 10, "elders": 5, "others": 3}, "volunteers": 2, "volunteer_hours": 4,
                "funds": 100, "narrative": "bench"}, by=db.session.get(User, office_id))
            start = time.perf_counter()
            db.session.commit()
            ok = _wait(lambda: current() >= before + 1, 30)
            elapsed = (time.perf_counter() - start) * 1000
            db.session.remove()
            if i < 2:
                continue
            if ok:
                samples.append(elapsed)
            else:
                missed += 1
    finally:
        poll.close()
    if samples:
        ordered = sorted(samples)
        results["activity_to_province"] = {"p50_ms": round(statistics.median(samples), 1),
                                           "p95_ms": round(ordered[max(0, int(0.95 * len(ordered) + 0.999) - 1)], 1),
                                           "max_ms": round(max(samples), 1), "runs": len(samples), "missed": missed,
                                           "period": period}
    if missed:
        notes.append(f"{missed} activities were not counted in the province's activities.count within 30 s.")
