"""Login, logout, wrong password, throttling, deactivated users, CSRF, password change, language."""
from tests.conftest import PASSWORD


def test_login_lands_in_own_workspace(browser, people):
    response = browser.login("edu-410105001")
    assert response.status_code == 302
    response = browser.get(response.headers["Location"])
    assert response.headers["Location"].endswith("/street/410105001/")
    page = browser.get("/street/410105001/").get_data(as_text=True)
    assert "经八路街道" in page
    assert "金水区" in page  # breadcrumb


def test_several_memberships_get_a_chooser(browser, people, tree, run_in_app):
    from portal.extensions import db
    from portal.models import Membership

    run_in_app(lambda: db.session.add(Membership(user_id=people["edu-410105001"].id, unit_id=tree["410105002"].id,
                                                 role="liaison", department_code="edu")))
    browser.login("edu-410105001")
    page = browser.get("/choose").get_data(as_text=True)
    assert "经八路街道" in page and "花园路街道" in page


def test_wrong_password_is_refused_with_a_message(browser, people):
    response = browser.login("office-41", "not-the-password")
    assert response.status_code == 200
    assert "用户名或密码错误" in response.get_data(as_text=True) or \
        "Wrong user name or password" in response.get_data(as_text=True)
    assert browser.get("/province/41/").status_code == 302  # still anonymous


def test_unknown_user_gets_the_same_message(browser, people):
    wrong_user = browser.login("nobody-here", PASSWORD).get_data(as_text=True)
    wrong_pass = browser.login("office-41", "nope-nope-nope").get_data(as_text=True)
    marker = "Wrong user name or password"
    assert (marker in wrong_user) == (marker in wrong_pass)


def test_login_is_throttled_per_account(browser, new_browser, people):
    for _ in range(5):
        assert browser.login("office-41", "wrong-password").status_code == 200
    limited = browser.login("office-41", "wrong-password")
    assert limited.status_code == 429
    assert 'id="rate-limited"' in limited.get_data(as_text=True)
    # Even the right password is refused while the account is throttled ...
    assert browser.login("office-41", PASSWORD).status_code == 429
    # ... but another account from the same address may still log in.
    assert new_browser().login("office-4101", PASSWORD).status_code == 302


def test_successful_logins_do_not_count_against_the_limit(new_browser, people):
    for _ in range(7):
        b = new_browser()
        assert b.login("office-41").status_code == 302


def test_deactivated_user_is_refused(browser, people, run_in_app):
    from portal.extensions import db
    from portal.models import User

    run_in_app(lambda: setattr(db.session.get(User, people["office-4101"].id), "active", False))
    response = browser.login("office-4101")
    assert response.status_code == 200
    assert browser.get("/city/4101/").status_code == 302
    # The right password of a deactivated account gets the answer a wrong one gets:
    # the page does not confirm that the password is right.
    page = response.get_data(as_text=True)
    assert "用户名或密码错误" in page and "停用" not in page
    wrong = browser.login("office-4101", "not-the-password").get_data(as_text=True)
    assert _alert(page) == _alert(wrong)


def _alert(page: str) -> str:
    """The refusal part of the login page (the form's error messages)."""
    import re

    return " ".join(re.findall(r'class="invalid-feedback[^"]*"[^>]*>([^<]*)<', page))


def test_deactivation_ends_an_open_session(browser, people, run_in_app):
    from portal.extensions import db
    from portal.models import User

    browser.login("office-4101")
    assert browser.get("/city/4101/").status_code == 200
    run_in_app(lambda: setattr(db.session.get(User, people["office-4101"].id), "active", False))
    assert browser.get("/city/4101/").status_code == 302


def test_post_without_csrf_token_is_rejected(client, people):
    response = client.post("/login", data={"username": "office-41", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/province/41/").status_code == 302


def test_logout_needs_post_and_ends_the_session(browser, people):
    browser.login("office-41")
    assert browser.get("/logout").status_code == 405
    assert browser.logout().status_code == 302
    assert browser.get("/province/41/").status_code == 302


def test_password_change(browser, new_browser, people):
    browser.login("office-41")
    other = new_browser()
    other.login("office-41")
    bad = browser.post_form("/account/password", {"current_password": "wrong", "new_password": "brand-new-pass-2",
                                                  "confirm": "brand-new-pass-2"})
    assert bad.status_code == 200
    mismatch = browser.post_form("/account/password", {"current_password": PASSWORD,
                                                       "new_password": "brand-new-pass-2", "confirm": "other-pass-3"})
    assert mismatch.status_code == 200
    ok = browser.post_form("/account/password", {"current_password": PASSWORD, "new_password": "brand-new-pass-2",
                                                  "confirm": "brand-new-pass-2"})
    assert ok.status_code == 302
    assert browser.get("/province/41/").status_code == 200  # this session stays
    assert other.get("/province/41/").status_code == 302    # the other session is logged out
    assert new_browser().login("office-41", PASSWORD).status_code == 200
    assert new_browser().login("office-41", "brand-new-pass-2").status_code == 302


def test_next_parameter_cannot_leave_the_site(browser, people):
    response = browser.post_form("/login?next=https://evil.example/", {"username": "office-41", "password": PASSWORD},
                                 page="/login")
    assert response.headers["Location"] == "/choose"


def test_session_cookie_flags(browser, people):
    response = browser.login("office-41")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_chinese_by_default_english_on_request(browser):
    assert 'lang="zh-CN"' in browser.get("/login").get_data(as_text=True)
    assert 'lang="en"' in browser.get("/login?lang=en").get_data(as_text=True)
    assert 'lang="en"' in browser.get("/login").get_data(as_text=True)  # remembered in the session
    assert 'lang="zh-CN"' in browser.get("/login?lang=zh_Hans_CN").get_data(as_text=True)


def test_user_preference_applies_at_next_login(new_browser, people):
    first = new_browser()
    first.login("office-41")
    assert first.post_form("/account", {"locale": "en"}).status_code == 302
    fresh = new_browser()
    fresh.login("office-41")
    assert "Units below" in fresh.get("/province/41/").get_data(as_text=True)
    other = new_browser()
    other.login("office-4101")
    assert "下级单位" in other.get("/city/4101/").get_data(as_text=True)
