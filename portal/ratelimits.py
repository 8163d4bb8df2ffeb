"""Login throttling, shared by the login page and the API token endpoint.

Counted only on failed attempts, in Redis when configured (every gunicorn
worker sees the same counts):

- per account (the user name typed, lower-cased) and per client address
  (``request.remote_addr`` after ``ProxyFix``, see ``TRUSTED_PROXIES``), for
  browsers the account has not logged in from before;
- per known browser and account, for a browser that carries the "known
  browser" cookie of that account: a signed cookie set by every successful
  login, bound to the user name. Such a browser is not subject to the account
  and address limits, so somebody who types wrong passwords for a name (or
  shares the address) cannot lock out the person who uses the account every
  day; guessing from that browser is still limited by its own count.

Why not a lockout or a delay: a lockout per account lets anyone lock any
account by name; a server-side delay holds a worker per attempt and is a
cheaper denial of service than the lockout. See the README.
"""
from __future__ import annotations

import secrets
from typing import Optional

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal.extensions import client_address, limiter

KNOWN_COOKIE = "portal_known"
KNOWN_DAYS = 180
KNOWN_MAX_NAMES = 10  # a shared office computer may know several accounts


def _typed_username() -> str:
    if request.is_json:
        data = request.get_json(silent=True) or {}
        name = data.get("username") if isinstance(data, dict) else None
    else:
        name = request.form.get("username")
    return name.strip().lower()[:64] if isinstance(name, str) else ""


def _account_key() -> str:
    return "account:" + _typed_username()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="portal-known-browser")


def _known_cookie() -> Optional[dict]:
    raw = request.cookies.get(KNOWN_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=KNOWN_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("names"), list):
        return None
    return data


def is_known_browser() -> bool:
    """Has this browser logged in to the account now typed before?"""
    name = _typed_username()
    data = _known_cookie()
    return bool(name) and data is not None and name in data["names"]


def _known_key() -> str:
    data = _known_cookie() or {"id": "none"}
    return f"known:{data['id']}:{_typed_username()}"


def remember_browser(response, username: str):
    """After a successful login: this browser is known for ``username``."""
    data = _known_cookie() or {"id": secrets.token_urlsafe(12), "names": []}
    name = username.strip().lower()
    names = [n for n in data["names"] if n != name][-(KNOWN_MAX_NAMES - 1):] + [name]
    response.set_cookie(KNOWN_COOKIE, _serializer().dumps({"id": data["id"], "names": names}),
                        max_age=KNOWN_DAYS * 86400, httponly=True, samesite="Lax",
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return response


def _failed(response) -> bool:
    # A successful page login redirects (302); a successful API login answers 201.
    return response.status_code not in (201, 302)


def login_limits(view):
    view = limiter.shared_limit(lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"], scope="login-account",
                                key_func=_account_key, methods=["POST"], deduct_when=_failed,
                                exempt_when=is_known_browser)(view)
    view = limiter.shared_limit(lambda: current_app.config["LOGIN_LIMIT_ADDRESS"], scope="login-address",
                                key_func=client_address, methods=["POST"], deduct_when=_failed,
                                exempt_when=is_known_browser)(view)
    view = limiter.shared_limit(lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"], scope="login-known",
                                key_func=_known_key, methods=["POST"], deduct_when=_failed,
                                exempt_when=lambda: not is_known_browser())(view)
    return view
