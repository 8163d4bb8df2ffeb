def test_healthz_reports_database_and_job_backend(client, app):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["jobs"]["backend"] == ("redis" if app.config.get("REDIS_URL") else "embedded")
