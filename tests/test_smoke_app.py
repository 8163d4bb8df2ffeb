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
    assert "connect_args" not in Config(str(tmp_path)).SQLALCHEMY_ENGINE_OPTIONS  # SQLite
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        from sqlalchemy import text

        from portal.extensions import db

        with app.app_context():
            assert db.session.execute(text("SHOW jit")).scalar() == "off"
