"""Sessions and tokens end on the server: logout, password change and reset, deactivation.
Login throttling that slows guessing without locking people out; the client
address behind trusted proxies; the secret key; HSTS; what /healthz tells whom."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal import create_app
from portal.extensions import db
from portal.models import ApiToken, User
from tests.conftest import PASSWORD, Browser, _test_config, api_token

NEW_PASSWORD = "brand-new-pass-2"


def _copy_session(browser: Browser, app) -> Browser:
    """What a thief does: copy the session cookie into another browser."""
    cookie = browser.client.get_cookie("session")
    assert cookie is not None
    thief = Browser(app.test_client())
    thief.client.set_cookie("session", cookie.value)
    return thief


# --- sessions end on the server ------------------------------------------------

def test_a_session_cookie_copied_before_logout_is_refused_after_it(browser, people, app):
    browser.login("office-41")
    thief = _copy_session(browser, app)
    assert thief.get("/province/41/").status_code == 200  # the copy works while the session lives
    assert browser.logout().status_code == 302
    response = thief.get("/province/41/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    # Logging in again works, and the old copy stays dead.
    assert browser.login("office-41").status_code == 302
    assert thief.get("/province/41/").status_code == 302


def test_password_change_ends_other_sessions_and_revokes_api_tokens(browser, people, app, client):
    headers = api_token(client, "office-41")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    browser.login("office-41")
    thief = _copy_session(browser, app)
    ok = browser.post_form("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                                  "confirm": NEW_PASSWORD})
    assert ok.status_code == 302
    assert browser.get("/province/41/").status_code == 200   # the session that changed it goes on
    assert thief.get("/province/41/").status_code == 302      # a copy of it does not
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert api_token(client, "office-41", NEW_PASSWORD)       # a new token works


def test_an_admin_reset_ends_sessions_and_revokes_api_tokens(new_browser, people, app, client):
    target = people["edu-410105001"]
    headers = api_token(client, "edu-410105001")
    victim = new_browser()
    victim.login("edu-410105001")
    assert victim.get("/street/410105001/").status_code == 200
    admin = new_browser()
    admin.login("office-410105")
    done = admin.post_form(f"/district/410105/accounts/{target.id}/password", {"new_password": NEW_PASSWORD},
                           page=f"/district/410105/accounts/{target.id}")
    assert done.status_code == 302
    assert victim.get("/street/410105001/").status_code == 302
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert new_browser().login("edu-410105001", NEW_PASSWORD).status_code == 302


def test_deactivation_ends_sessions_for_good_even_after_reactivation(new_browser, people, app, client):
    target = people["edu-410105002"]
    headers = api_token(client, "edu-410105002")
    user = new_browser()
    user.login("edu-410105002")
    thief = _copy_session(user, app)
    admin = new_browser()
    admin.login("office-410105")
    assert admin.post_form(f"/district/410105/accounts/{target.id}/deactivate").status_code == 302
    assert user.get("/street/410105002/").status_code == 302
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert admin.post_form(f"/district/410105/accounts/{target.id}/activate").status_code == 302
    assert thief.get("/street/410105002/").status_code == 302  # the old session does not come back
    assert client.get("/api/v1/me", headers=headers).status_code == 401


# --- the same answer for every refusal --------------------------------------

def test_the_api_answers_a_deactivated_account_like_a_wrong_password(client, people, run_in_app):
    run_in_app(lambda: setattr(db.session.get(User, people["office-4101"].id), "active", False))
    deactivated = client.post("/api/v1/tokens", json={"username": "office-4101", "password": PASSWORD})
    wrong = client.post("/api/v1/tokens", json={"username": "office-4102", "password": "not-the-password"})
    unknown = client.post("/api/v1/tokens", json={"username": "nobody-here", "password": PASSWORD})
    assert deactivated.status_code == wrong.status_code == unknown.status_code == 401
    assert deactivated.get_json() == wrong.get_json() == unknown.get_json()


def test_an_unknown_name_costs_a_password_hash_check_like_a_known_one(browser, people, monkeypatch):
    import werkzeug.security

    calls = []
    real = werkzeug.security.check_password_hash

    def counting(pwhash, password):
        calls.append(pwhash.split("$", 1)[0])
        return real(pwhash, password)

    monkeypatch.setattr(werkzeug.security, "check_password_hash", counting)
    monkeypatch.setattr("portal.models.accounts.check_password_hash", counting)
    browser.login("nobody-here", "some-password-1")
    unknown = list(calls)
    calls.clear()
    browser.login("office-41", "some-password-1")
    # One hash verification each, with the same method (so about the same time).
    assert len(unknown) == 1 and unknown == calls


def test_user_names_are_case_insensitive_at_login(browser, people):
    assert browser.login("OFFICE-41").status_code == 302


# --- throttling: slow guessing down, lock nobody out ------------------------

def test_a_browser_that_logged_in_before_passes_the_account_throttle(new_browser, people):
    regular = new_browser()
    assert regular.login("office-41").status_code == 302
    regular.logout()
    attacker = new_browser()
    for _ in range(5):
        attacker.login("office-41", "guess-guess-1")
    assert attacker.login("office-41", PASSWORD).status_code == 429  # the guesser is stopped
    assert regular.login("office-41").status_code == 302              # the regular user is not
    # A known browser guessing wrong is limited too, on its own count.
    regular.logout()
    for _ in range(5):
        assert regular.login("office-41", "guess-guess-1").status_code == 200
    assert regular.login("office-41", "guess-guess-1").status_code == 429


def test_the_known_browser_cookie_is_bound_to_the_account(new_browser, people):
    regular = new_browser()
    assert regular.login("office-4101").status_code == 302
    regular.logout()
    for _ in range(5):
        new_browser().login("office-41", "guess-guess-1")
    # Known for office-4101 only: office-41 stays throttled in this browser.
    assert regular.login("office-41", PASSWORD).status_code == 429
    forged = new_browser()
    forged.client.set_cookie("portal_known", "eyJpZCI6IngiLCJuYW1lcyI6WyJvZmZpY2UtNDEiXX0.x.y")
    assert forged.login("office-41", PASSWORD).status_code == 429


@pytest.fixture
def proxied_app(app):
    """The app behind one trusted reverse proxy, with a small address limit."""
    return create_app(dict(_test_config(), TRUSTED_PROXIES=1, LOGIN_LIMIT_ADDRESS="3 per 15 minutes",
                           LOGIN_LIMIT_ACCOUNT="50 per 15 minutes"))


def _from(app, address: str) -> Browser:
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = address
    return Browser(client)


def test_behind_a_trusted_proxy_each_client_address_is_counted_apart(proxied_app, people):
    for name in ("office-4101", "office-4102", "office-42"):
        _from(proxied_app, "203.0.113.9").login(name, "guess-guess-1")
    assert _from(proxied_app, "203.0.113.9").login("office-41").status_code == 429
    # Everyone else behind the same proxy logs in.
    assert _from(proxied_app, "198.51.100.7").login("office-41").status_code == 302


def test_without_trusted_proxies_a_forwarded_for_header_is_ignored(app, people):
    limited = create_app(dict(_test_config(), LOGIN_LIMIT_ADDRESS="3 per 15 minutes",
                              LOGIN_LIMIT_ACCOUNT="50 per 15 minutes"))
    for i, name in enumerate(("office-4101", "office-4102", "office-42")):
        _from(limited, f"203.0.113.{i}").login(name, "guess-guess-1")
    # Claiming another address does not reset the count.
    assert _from(limited, "198.51.100.7").login("office-41").status_code == 429


def test_the_audit_trail_records_the_client_address_behind_the_proxy(proxied_app, people, run_in_app):
    from portal.models import AuditLog

    _from(proxied_app, "203.0.113.9").login("office-41", "guess-guess-1")
    details = run_in_app(lambda: [a.details for a in db.session.scalars(
        select(AuditLog).where(AuditLog.action == "user.login_failed"))])
    assert details and details[0]["address"] == "203.0.113.9"


# --- next= -----------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example", "/\\/evil.example",
    "/%2F/evil.example", "/%5Cevil.example", "http:/evil.example", "javascript:alert(1)",
    "/\t/evil.example", "/\n/evil.example", " //evil.example", "evil.example", "",
])
def test_next_never_leaves_the_site(browser, people, target):
    response = browser.post_form("/login?" + _query(target), {"username": "office-41", "password": PASSWORD},
                                 page="/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/choose"


def test_next_keeps_a_path_on_the_site(browser, people):
    response = browser.post_form("/login?" + _query("/province/41/tasks/?status=open"),
                                 {"username": "office-41", "password": PASSWORD}, page="/login")
    assert response.headers["Location"] == "/province/41/tasks/?status=open"


def _query(target: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"next": target})


# --- secret key, HSTS -------------------------------------------------------

def test_the_portal_refuses_to_start_without_a_secret_key(app, monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()
    monkeypatch.setenv("SECRET_KEY", "dev-only-insecure-secret-key")  # the key the portal used to ship
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()
    (tmp_path / "secret_key").write_text("a-generated-demo-key-0123456789abcdef\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "secret_key"))
    assert create_app().config["SECRET_KEY"] == "a-generated-demo-key-0123456789abcdef"


def test_hsts_only_when_cookies_are_secure(app, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = create_app(dict(_test_config(), SESSION_COOKIE_SECURE=True))
    assert secure.test_client().get("/login").headers["Strict-Transport-Security"].startswith("max-age=")


# --- /healthz ---------------------------------------------------------------

def test_healthz_tells_anonymous_monitors_only_the_status(client, app):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    wrong = client.get("/healthz", headers={"Authorization": "Bearer not-the-token"}).get_json()
    assert wrong == {"status": "ok"}


def test_healthz_details_for_the_monitoring_token(app):
    monitored = create_app(dict(_test_config(), HEALTHZ_TOKEN="monitor-token-123"))
    client = monitored.test_client()
    assert "details" not in client.get("/healthz").get_json()
    body = client.get("/healthz", headers={"Authorization": "Bearer monitor-token-123"}).get_json()
    queue = body["details"]["queue"]
    assert queue["backend"] == body["jobs"]["backend"]
    if queue["backend"] == "redis":
        assert isinstance(queue["queued"], int) and isinstance(queue["failed"], int)
    assert body["database"]["ok"] is True and body["jobs"]["ok"] is True
    assert client.get("/healthz", headers={"Authorization": "Bearer monitor-token-12"}).get_json() \
        == {"status": "ok"}


def test_healthz_details_for_the_provincial_office_admin_only(new_browser, people):
    admin = new_browser()
    admin.login("office-41")
    body = admin.get("/healthz").get_json()
    assert "queue" in body["details"] and "metrics" in body["details"] and body["database"]["ok"] is True
    # The portal's queue, drift and database are not a city's, district's or street's business.
    for username in ("office-4101", "office-410105", "office-410105001", "viewer-41", "edu-410105001"):
        other = new_browser()
        other.login(username)
        assert other.get("/healthz").get_json() == {"status": "ok"}, username


def test_tokens_of_others_are_untouched_by_a_password_change(browser, client, people, run_in_app):
    other = api_token(client, "office-4101")
    browser.login("office-41")
    browser.post_form("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                            "confirm": NEW_PASSWORD})
    assert client.get("/api/v1/me", headers=other).status_code == 200
    revoked = run_in_app(lambda: db.session.scalar(select(ApiToken.revoked_at).where(
        ApiToken.user_id == people["office-4101"].id)))
    assert revoked is None
