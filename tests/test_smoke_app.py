def test_healthz_reports_database_and_job_backend(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok"}  # anonymous: the status alone
    app.config["HEALTHZ_TOKEN"] = "smoke-token-123"
    body = client.get("/healthz", headers={"Authorization": "Bearer smoke-token-123"}).get_json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["jobs"]["backend"] == ("redis" if app.config.get("REDIS_URL") else "embedded")


def test_pages_forbid_inline_scripts(client):
    policy = client.get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy


def test_postgresql_connections_run_without_jit(monkeypatch, tmp_path, app):
    """The subtree lists and roll-ups are costed high; JIT-compiling them took longer than running
    them, so the portal's PostgreSQL connections turn it off (PORTAL_PG_JIT=on keeps the server's)."""
    from portal.config import Config

    monkeypatch.setenv("DATABASE_URL", "postgresql://portal@db.example:5432/portal")
    monkeypatch.delenv("PORTAL_PG_JIT", raising=False)
    assert Config(str(tmp_path)).SQLALCHEMY_ENGINE_OPTIONS["connect_args"] == {"options": "-c jit=off"}
    monkeypatch.setenv("PORTAL_PG_JIT", "on")
    assert "connect_args" not in Config(str(tmp_path)).SQLALCHEMY_ENGINE_OPTIONS
    monkeypatch.delenv("DATABASE_URL")
    assert Config(str(tmp_path)).SQLALCHEMY_ENGINE_OPTIONS["connect_args"] == {"timeout": 30}  # SQLite: no jit
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        from sqlalchemy import text

        from portal.extensions import db

        with app.app_context():
            assert db.session.execute(text("SHOW jit")).scalar() == "off"


def test_a_sqlite_write_waits_for_another_writer_instead_of_failing(app, browser, people):
    """The embedded scheduler's reconcile holds SQLite's write lock for seconds; a login (a write)
    meanwhile waits for it instead of answering 503 after sqlite3's default 5 s."""
    import threading
    import time

    import pytest

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's single writer only")
    import sqlite3

    from sqlalchemy.engine import make_url

    path = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    held = threading.Event()

    def hold_the_write_lock():
        conn = sqlite3.connect(path, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(6)
        conn.rollback()
        conn.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    held.wait(5)
    started = time.perf_counter()
    response = browser.login("office-41")
    holder.join()
    assert time.perf_counter() - started > 5  # it did wait behind the other writer
    assert response.status_code == 302
