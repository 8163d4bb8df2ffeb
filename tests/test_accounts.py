"""Account management: office admins manage their unit and below, never above or beside."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, Membership, Notification, User
from tests.conftest import PASSWORD


def _new_account(b, base, **overrides):
    data = {"username": "new-liaison", "display_name": "新联络员", "password": "initial-pass-1",
            "unit_code": "410105001", "role": "liaison", "department": "women"}
    data.update(overrides)
    return b.post_form(f"{base}/accounts/new", data)


def test_district_admin_creates_a_street_liaison_who_is_notified(new_browser, people, run_in_app, run_jobs):
    admin = new_browser()
    admin.login("office-410105")
    response = _new_account(admin, "/district/410105")
    assert response.status_code == 302
    user_id = run_in_app(lambda: db.session.scalar(select(User.id).where(User.username == "new-liaison")))
    memberships = run_in_app(lambda: [(m.unit.code, m.role, m.department_code) for m in
                                      db.session.scalars(select(Membership).where(Membership.user_id == user_id))])
    assert memberships == [("410105001", "liaison", "women")]
    # The grant was audited with who did it.
    actions = run_in_app(lambda: [(a.action, a.actor.username) for a in db.session.scalars(select(AuditLog))])
    assert ("membership.grant", "office-410105") in actions
    # The new user logs in, lands in the street and has a notification waiting.
    run_jobs()
    liaison = new_browser()
    assert liaison.login("new-liaison", "initial-pass-1").status_code == 302
    page = liaison.get("/street/410105001/").get_data(as_text=True)
    assert 'id="unread-count">1<' in page
    notes = liaison.get("/notifications/").get_data(as_text=True)
    assert "经八路街道" in notes


def test_district_admin_cannot_create_an_admin_for_the_city(new_browser, people, run_in_app):
    admin = new_browser()
    admin.login("office-410105")
    response = _new_account(admin, "/district/410105", unit_code="4101", role="office_admin", department="")
    assert response.status_code == 200
    assert "4101" in response.get_data(as_text=True)  # the message names the unit it refused
    assert run_in_app(lambda: User.by_username("new-liaison")) is None
    # Nor reach the city's account pages at all.
    assert admin.get("/city/4101/accounts/").status_code == 404


def test_district_admin_cannot_create_anything_for_a_sibling_district(new_browser, people, run_in_app):
    admin = new_browser()
    admin.login("office-410105")
    response = _new_account(admin, "/district/410105", unit_code="410102001", role="liaison")
    assert response.status_code == 200
    assert run_in_app(lambda: User.by_username("new-liaison")) is None
    assert admin.get("/district/410102/accounts/new").status_code == 404
    assert _new_account(admin, "/district/410102").status_code == 404


def test_granting_to_an_existing_user_outside_scope_is_refused(new_browser, people, run_in_app):
    admin = new_browser()
    admin.login("office-410105")
    target = people["edu-410105001"]
    refused = admin.post_form(f"/district/410105/accounts/{target.id}/memberships",
                              {"unit_code": "410102001", "role": "office_admin", "department": ""},
                              page=f"/district/410105/accounts/{target.id}")
    assert refused.status_code == 400
    ok = admin.post_form(f"/district/410105/accounts/{target.id}/memberships",
                         {"unit_code": "410105002", "role": "liaison", "department": "edu"},
                         page=f"/district/410105/accounts/{target.id}")
    assert ok.status_code == 302
    codes = run_in_app(lambda: sorted(m.unit.code for m in db.session.scalars(
        select(Membership).where(Membership.user_id == target.id))))
    assert codes == ["410105001", "410105002"]


def test_liaison_needs_a_department_and_duplicates_are_refused(new_browser, people):
    admin = new_browser()
    admin.login("office-410105")
    no_dept = _new_account(admin, "/district/410105", department="")
    assert no_dept.status_code == 200 and "new-liaison" not in no_dept.headers.get("Location", "")
    target = people["edu-410105001"]
    dup = admin.post_form(f"/district/410105/accounts/{target.id}/memberships",
                          {"unit_code": "410105001", "role": "liaison", "department": "edu"},
                          page=f"/district/410105/accounts/{target.id}")
    assert dup.status_code == 400


def test_taken_username_and_short_password_are_refused(new_browser, people):
    admin = new_browser()
    admin.login("office-410105")
    assert _new_account(admin, "/district/410105", username="edu-410105001").status_code == 200
    assert _new_account(admin, "/district/410105", password="short").status_code == 200


def test_deactivation_needs_confirmation_and_stops_login(new_browser, people, run_in_app):
    admin = new_browser()
    admin.login("office-410105")
    target = people["edu-410105002"]
    confirm_page = admin.get(f"/district/410105/accounts/{target.id}/deactivate")
    assert confirm_page.status_code == 200 and 'id="confirm"' in confirm_page.get_data(as_text=True)
    assert run_in_app(lambda: db.session.get(User, target.id).active) is True  # nothing happened on GET
    done = admin.post_form(f"/district/410105/accounts/{target.id}/deactivate")
    assert done.status_code == 302
    assert run_in_app(lambda: db.session.get(User, target.id).active) is False
    assert new_browser().login("edu-410105002").status_code == 200  # refused, with a message


def test_a_lower_admin_cannot_deactivate_an_account_with_roles_above(new_browser, people, tree, run_in_app):
    from portal.models import Role

    # The city viewer also holds a seat in a Jinshui street: the district sees them, may not switch them off.
    city_user = people["viewer-4101"]
    run_in_app(lambda: db.session.add(Membership(user_id=city_user.id, unit_id=tree["410105001"].id,
                                                 role=Role.VIEWER.value)))
    admin = new_browser()
    admin.login("office-410105")
    assert admin.get(f"/district/410105/accounts/{city_user.id}").status_code == 200
    admin.post_form(f"/district/410105/accounts/{city_user.id}/deactivate")
    assert run_in_app(lambda: db.session.get(User, city_user.id).active) is True


def test_revoking_a_role_asks_first(new_browser, people, run_in_app):
    admin = new_browser()
    admin.login("office-410105")
    target = people["civil-410105001"]
    mid = run_in_app(lambda: db.session.scalar(select(Membership.id).where(Membership.user_id == target.id)))
    url = f"/district/410105/accounts/{target.id}/memberships/{mid}/revoke"
    assert "id=\"question\"" in admin.get(url).get_data(as_text=True)
    assert admin.post_form(url).status_code == 302
    assert run_in_app(lambda: db.session.get(Membership, mid)) is None


def test_account_list_is_scoped_searchable_and_paginated(new_browser, people, create_user, tree):
    for i in range(25):
        create_user(f"bulk-{i:02d}", tree["410105002"], "liaison", "health")
    admin = new_browser()
    admin.login("office-410105")
    page1 = admin.get("/district/410105/accounts/").get_data(as_text=True)
    assert "bulk-00" in page1 and "edu-410102" not in page1 and "office-4101<" not in page1
    page2 = admin.get("/district/410105/accounts/?page=2").get_data(as_text=True)
    assert "bulk-24" in page2 or "office-410105" in page2
    found = admin.get("/district/410105/accounts/?q=bulk-07").get_data(as_text=True)
    assert "bulk-07" in found and "bulk-08" not in found
    # Another district's admin does not see these accounts.
    other = new_browser()
    other.login("office-410102")
    assert "bulk-00" not in other.get("/district/410102/accounts/?q=bulk").get_data(as_text=True)


def test_liaison_and_viewer_cannot_manage_accounts(new_browser, people):
    for name, base in (("edu-410105001", "/street/410105001"), ("viewer-41", "/province/41")):
        b = new_browser()
        b.login(name)
        assert b.get(f"{base}/accounts/").status_code == 403
        assert _new_account(b, base).status_code in (400, 403)


def test_notifications_mark_read(new_browser, people, run_in_app, run_jobs):
    admin = new_browser()
    admin.login("office-410105")
    _new_account(admin, "/district/410105")
    run_jobs()
    liaison = new_browser()
    liaison.login("new-liaison", "initial-pass-1")
    note_id = run_in_app(lambda: db.session.scalar(select(Notification.id)))
    liaison.post_form(f"/notifications/{note_id}/read", page="/notifications/")
    assert "unread-count" not in liaison.get("/notifications/").get_data(as_text=True)
    # Another user cannot touch it.
    assert admin.post_form(f"/notifications/{note_id}/read", page="/notifications/").status_code == 404


# --- passwords and look-alike names -------------------------------------------

WEAK = ["12345678", "password", "1234567890", "qwertyuiop", "woaini1314", "password12", "a123456789"]


def test_weak_passwords_are_refused_at_account_creation(new_browser, people, run_in_app):
    admin = new_browser()
    admin.login("office-410105")
    for weak in WEAK + ["new-liaison", "new-liaison-2024"]:
        response = _new_account(admin, "/district/410105", password=weak)
        assert response.status_code == 200, weak
        assert "密码" in response.get_data(as_text=True)
    assert run_in_app(lambda: User.by_username("new-liaison")) is None
    assert _new_account(admin, "/district/410105", password="portal-demo-2026").status_code == 302


def test_weak_passwords_are_refused_at_password_change(browser, people):
    browser.login("office-41")
    for weak in WEAK + ["office-41", "OFFICE-41-x1"]:
        response = browser.post_form("/account/password", {"current_password": PASSWORD, "new_password": weak,
                                                            "confirm": weak})
        assert response.status_code == 200, weak
    page = browser.post_form("/account/password", {"current_password": PASSWORD, "new_password": "12345678",
                                                   "confirm": "12345678"}).get_data(as_text=True)
    assert "密码长度不能少于10个字符" in page
    easy = browser.post_form("/account/password", {"current_password": PASSWORD, "new_password": "woaini1314",
                                                   "confirm": "woaini1314"}).get_data(as_text=True)
    assert "该密码太容易被猜到" in easy
    ok = browser.post_form("/account/password", {"current_password": PASSWORD, "new_password": "correct-horse-2",
                                                 "confirm": "correct-horse-2"})
    assert ok.status_code == 302


def test_weak_passwords_are_refused_at_an_admin_reset(new_browser, people):
    admin = new_browser()
    admin.login("office-410105")
    target = people["edu-410105001"]
    url = f"/district/410105/accounts/{target.id}"
    for weak in ("password", "edu-410105001", "1234567890"):
        admin.post_form(f"{url}/password", {"new_password": weak}, page=url)
        assert new_browser().login("edu-410105001", weak).status_code == 200, weak
    # The old password still works: nothing was reset.
    assert new_browser().login("edu-410105001").status_code == 302
    admin.post_form(f"{url}/password", {"new_password": "correct-horse-1-new"}, page=url)
    assert new_browser().login("edu-410105001", "correct-horse-1-new").status_code == 302


def test_a_look_alike_user_name_is_refused(new_browser, people, run_in_app):
    admin = new_browser()
    admin.login("office-41")
    response = _new_account(admin, "/province/41", username="Office-41", display_name="河南省社区教育办公室",
                            unit_code="41", role="office_admin", department="")
    assert response.status_code == 200
    assert "Office-41" in response.get_data(as_text=True)  # "the user name Office-41 is taken"
    assert run_in_app(lambda: db.session.scalar(select(User.id).where(User.username == "Office-41"))) is None


def test_the_database_refuses_user_names_that_differ_only_in_case(people, app):
    import pytest
    from sqlalchemy.exc import IntegrityError

    with app.app_context():
        db.session.add(User(username="OFFICE-41", display_name="x", password_hash="x"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
        db.session.remove()
