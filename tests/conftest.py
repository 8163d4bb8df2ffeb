"""Fixtures: the app on the configured backend, a clean database per test,
clients, a login helper, factories and a small province tree.

The suite runs on whatever the environment says: no ``DATABASE_URL`` means a
SQLite file in a temporary folder and jobs in-process; ``DATABASE_URL`` and
``REDIS_URL`` run it on PostgreSQL with jobs on Redis.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import pytest
from sqlalchemy import MetaData, delete, select, text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TMP = tempfile.mkdtemp(prefix="portal-tests-")
os.environ.setdefault("PORTAL_INSTANCE_PATH", TMP)

from portal import create_app  # noqa: E402
from portal.extensions import db, limiter  # noqa: E402
from portal.models import Membership, Role, Unit, User  # noqa: E402

PASSWORD = "correct-horse-1"
KEEP_TABLES = {"departments", "activity_categories", "alembic_version"}
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def _test_config() -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "LOGIN_LIMIT_ACCOUNT": "5 per 15 minutes",
        "LOGIN_LIMIT_ADDRESS": "50 per 15 minutes",
        "SERVER_NAME": None,
    }


@pytest.fixture(scope="session")
def app():
    from flask_migrate import upgrade

    app = create_app(_test_config())
    with app.app_context():
        # A fresh schema built by the migrations themselves, on either backend.
        with db.engine.begin() as conn:
            existing = MetaData()
            existing.reflect(conn)
            existing.drop_all(conn)
        upgrade()
        if app.config.get("REDIS_URL"):
            from portal.queue import redis_connection

            redis_connection(app).flushdb()
    yield app


@pytest.fixture(autouse=True)
def _clean(app):
    """Every test starts with an empty network (the department catalogue stays)."""
    yield
    with app.app_context():
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
        with db.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in tables:
                conn.execute(delete(table))
        limiter.reset()
        from portal import figcache

        figcache.cache.clear()  # the next test's units reuse these ids
        if app.config.get("REDIS_URL"):
            from portal.queue import redis_connection

            redis_connection(app).flushdb()


@pytest.fixture
def ctx(app):
    """An app context for the test body. Not for tests that also make requests:
    requests would share its ``g`` (and CSRF token) instead of getting their own."""
    with app.app_context():
        yield
        db.session.remove()


def _detached(app, make):
    """Run ``make()`` in an app context of its own and return the loaded, detached result."""
    with app.app_context():
        obj = make()
        db.session.commit()
        db.session.refresh(obj)
        db.session.expunge(obj)
        db.session.remove()
        return obj


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


class Browser:
    """A test client with helpers that behave like a person with a browser."""

    def __init__(self, client):
        self.client = client

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def csrf(self, page: str = "/login") -> str:
        return csrf_from(self.client.get(page, follow_redirects=True).get_data(as_text=True))

    def post_form(self, url: str, data: dict | None = None, *, page: str | None = None, **kw):
        data = dict(data or {})
        data.setdefault("csrf_token", self.csrf(page or url))
        return self.client.post(url, data=data, **kw)

    def login(self, username: str, password: str = PASSWORD, **kw):
        return self.post_form("/login", {"username": username, "password": password}, **kw)

    def logout(self):
        return self.post_form("/logout", page="/notifications/")


@pytest.fixture
def browser(client):
    return Browser(client)


@pytest.fixture
def new_browser(app):
    return lambda: Browser(app.test_client())


# --- factories -----------------------------------------------------------

@pytest.fixture
def create_unit(app):
    def make(code: str, name: str, tier: str, parent: Unit | None = None) -> Unit:
        def build():
            unit = Unit(code=code, name=name, tier=tier, parent_id=parent.id if parent else None,
                        path=(parent.path if parent else "/") + code + "/")
            db.session.add(unit)
            return unit
        return _detached(app, build)
    return make


@pytest.fixture
def create_user(app):
    def make(username: str, unit: Unit | None = None, role: Role | str | None = None,
             department: str | None = None, *, password: str = PASSWORD, active: bool = True) -> User:
        def build():
            user = User(username=username, display_name=username.upper(), active=active,
                        home_unit_id=unit.id if unit else None)
            user.set_password(password)
            db.session.add(user)
            db.session.flush()
            if unit is not None and role is not None:
                db.session.add(Membership(user_id=user.id, unit_id=unit.id, role=Role(role).value,
                                          department_code=department))
            return user
        return _detached(app, build)
    return make


@pytest.fixture
def run_in_app(app):
    """Run a function with the database in an app context of its own; commits."""
    def run(fn):
        with app.app_context():
            try:
                result = fn()
                db.session.commit()
                return result
            finally:
                db.session.remove()
    return run


@pytest.fixture
def tree(create_unit):
    """Henan's real codes, trimmed: two cities, two districts, three streets, and a second province."""
    t = {}
    t["41"] = create_unit("41", "河南省", "province")
    t["42"] = create_unit("42", "湖北省", "province")
    t["4101"] = create_unit("4101", "郑州市", "city", t["41"])
    t["4102"] = create_unit("4102", "开封市", "city", t["41"])
    t["410105"] = create_unit("410105", "金水区", "district", t["4101"])
    t["410102"] = create_unit("410102", "中原区", "district", t["4101"])
    t["410105001"] = create_unit("410105001", "经八路街道", "street", t["410105"])
    t["410105002"] = create_unit("410105002", "花园路街道", "street", t["410105"])
    t["410102001"] = create_unit("410102001", "林山寨街道", "street", t["410102"])
    return t


@pytest.fixture
def people(tree, create_user):
    """An office admin at every unit of the tree, liaisons and a viewer."""
    p = {}
    for code, unit in tree.items():
        p[f"office-{code}"] = create_user(f"office-{code}", unit, Role.OFFICE_ADMIN)
    p["staff-410105"] = create_user("staff-410105", tree["410105"], Role.OFFICE_STAFF)
    for code in ("410105001", "410105002", "410105"):
        p[f"edu-{code}"] = create_user(f"edu-{code}", tree[code], Role.LIAISON, "edu")
        p[f"civil-{code}"] = create_user(f"civil-{code}", tree[code], Role.LIAISON, "civil")
    p["viewer-41"] = create_user("viewer-41", tree["41"], Role.VIEWER)
    p["viewer-4101"] = create_user("viewer-4101", tree["4101"], Role.VIEWER)
    return p


def api_token(client, username: str, password: str = PASSWORD) -> dict:
    response = client.post("/api/v1/tokens", json={"username": username, "password": password})
    assert response.status_code == 201, response.get_json()
    return {"Authorization": "Bearer " + response.get_json()["token"]}


def run_worker_burst(env_overrides: dict | None = None) -> subprocess.CompletedProcess:
    """A real RQ worker process (``python -m jobs.worker --burst``) on the same database: forked from
    a warm server when it runs with the suite's environment (tests/worker_server.py), a fresh
    interpreter when a test asks for another one."""
    from tests import worker_server

    env = dict(os.environ)
    env.setdefault("SECRET_KEY", _test_config()["SECRET_KEY"])  # the portal refuses to start without one
    command = [sys.executable, "-m", "jobs.worker", "--burst"]
    if not env_overrides and worker_server.can_serve(env):
        status, output = worker_server.run_burst(env, timeout=120)
        return subprocess.CompletedProcess(command, status, stdout=output, stderr=output)
    env.update(env_overrides or {})
    return subprocess.run([sys.executable, "-m", "jobs.worker", "--burst"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def run_jobs(app):
    """Let queued jobs run: nothing to do in-process, a burst worker with Redis."""
    def run():
        if app.config.get("REDIS_URL"):
            result = run_worker_burst()
            assert result.returncode == 0, result.stderr[-2000:]
    return run


@pytest.fixture
def small_tasks(tree, people, run_in_app, run_jobs):
    """The task scene of the figure tests on the small tree, made by calling the fixture:

    * task A (weight 2, due in 30 days) from the province straight to its three streets:
      410105001 reports 60 % (with ``narrative`` if given), submits and is accepted;
      410105002 reports 40 %; 410102001 does nothing;
    * task B (weight 1) of district 410105 itself, due yesterday (overdue), with
      ``b_co_departments`` as co-operating departments.

    ``titles`` names A and B. Returns ``{"a": id of A's root, "b": id of B, "today": the local date,
    "period": this month}``; the queued jobs have run.
    """
    from datetime import timedelta

    from portal.clock import local_today
    from portal.models import Task
    from portal.services import tasks as svc

    def user(name):
        return db.session.get(User, people[name].id)

    def instance(task_id, code):
        return db.session.scalar(select(Task).where(Task.root_id == task_id, Task.unit_id == Unit.by_code(code).id))

    def make(*, titles: tuple[str, str] = ("培训覆盖", "社区学校挂牌"), b_co_departments: tuple[str, ...] = ("civil",),
             narrative: str | None = None) -> dict:
        today = run_in_app(local_today)
        a = run_in_app(lambda: svc.create_task(Unit.by_code("41"), {
            "title": titles[0], "lead_department": "edu", "weight": 2,
            "due_date": (today + timedelta(days=30)).isoformat()}, by=user("office-41")).id)
        run_in_app(lambda: svc.cascade_task(db.session.get(Task, a), "streets", by=user("office-41")))
        run_jobs()
        b = run_in_app(lambda: svc.create_task(Unit.by_code("410105"), {
            "title": titles[1], "lead_department": "edu", "co_departments": list(b_co_departments),
            "due_date": (today - timedelta(days=1)).isoformat()}, by=user("office-410105")).id)
        report = {"percent": 60, **({"narrative": narrative} if narrative else {})}
        run_in_app(lambda: svc.report_progress(instance(a, "410105001"), report, by=user("edu-410105001")))
        run_in_app(lambda: svc.submit_task(instance(a, "410105001"), by=user("edu-410105001")))
        run_in_app(lambda: svc.review_task(instance(a, "410105001"), "accept", "", by=user("office-41")))
        run_in_app(lambda: svc.report_progress(instance(a, "410105002"), {"percent": 40}, by=user("edu-410105002")))
        run_jobs()
        return {"a": a, "b": b, "today": today, "period": today.strftime("%Y-%m")}
    return make
