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
