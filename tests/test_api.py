"""The JSON API: tokens, /me, units, the same access rules as the pages."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiToken
from tests.conftest import PASSWORD, api_token


def test_token_then_me(client, people):
    response = client.post("/api/v1/tokens", json={"username": "edu-410105001", "password": PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at"} and body["expires_at"].endswith("Z")
    me = client.get("/api/v1/me", headers={"Authorization": "Bearer " + body["token"]}).get_json()
    assert me["memberships"] == [{"unit_code": "410105001", "tier": "street", "department": "edu",
                                  "role": "liaison"}]


def test_tokens_are_stored_hashed(client, people, run_in_app):
    clear = client.post("/api/v1/tokens", json={"username": "office-41", "password": PASSWORD}).get_json()["token"]
    stored = run_in_app(lambda: db.session.scalars(select(ApiToken.token_hash)).all())
    assert clear not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_bad_credentials_and_bad_bodies(client, people):
    wrong = client.post("/api/v1/tokens", json={"username": "office-41", "password": "nope"})
    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "unauthorized"
    assert client.post("/api/v1/tokens", data="x").status_code == 400
    assert client.post("/api/v1/tokens", json={"username": 1}).get_json()["error"]["code"] == "bad_request"


def test_deactivated_user_gets_no_token(client, people, run_in_app):
    from portal.models import User

    run_in_app(lambda: setattr(db.session.get(User, people["office-4101"].id), "active", False))
    assert client.post("/api/v1/tokens", json={"username": "office-4101", "password": PASSWORD}).status_code == 401


def test_no_token_or_garbage_is_401(client, people):
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert client.get("/api/v1/units/41", headers={"Authorization": "Basic abc"}).status_code == 401


def test_unit_tree_and_scope(client, people):
    province = api_token(client, "office-41")
    body = client.get("/api/v1/units/41", headers=province).get_json()
    assert body["code"] == "41" and body["tier"] == "province" and body["parent_code"] is None
    assert [c["code"] for c in body["children"]] == ["4101", "4102"]
    assert client.get("/api/v1/units/410105001", headers=province).get_json()["parent_code"] == "410105"

    street = api_token(client, "edu-410105001")
    assert client.get("/api/v1/units/410105001", headers=street).status_code == 200
    for code in ("410105002", "410105", "41", "42", "000"):
        response = client.get(f"/api/v1/units/{code}", headers=street)
        assert response.status_code == 404, code
        assert response.get_json()["error"]["code"] == "not_found"


def test_revoked_token_stops_working(client, people):
    headers = api_token(client, "office-41")
    assert client.delete("/api/v1/tokens/current", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_token_revoked_from_the_account_page(browser, people, run_in_app):
    headers = api_token(browser.client, "office-41")
    browser.login("office-41")
    token_id = run_in_app(lambda: db.session.scalar(select(ApiToken.id)))
    assert browser.post_form(f"/account/tokens/{token_id}/revoke", page="/account/tokens").status_code == 302
    assert browser.client.get("/api/v1/me", headers=headers).status_code == 401


def test_deactivating_a_user_revokes_api_access(new_browser, client, people):
    headers = api_token(client, "edu-410105002")
    admin = new_browser()
    admin.login("office-410105")
    admin.post_form(f"/district/410105/accounts/{people['edu-410105002'].id}/deactivate")
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_api_token_endpoint_is_throttled_per_account(client, people):
    for _ in range(5):
        client.post("/api/v1/tokens", json={"username": "office-41", "password": "wrong"})
    limited = client.post("/api/v1/tokens", json={"username": "office-41", "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "too_many_requests"
