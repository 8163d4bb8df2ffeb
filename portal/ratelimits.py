"""Login throttling, shared by the login page and the API token endpoint.

Two limits, both counted only on failed attempts: per account (the user name
typed) and per client address. Storage is Redis when configured, so every
gunicorn worker sees the same counts.
"""
from __future__ import annotations

from flask import current_app, request

from portal.extensions import client_address, limiter


def _username() -> str:
    if request.is_json:
        data = request.get_json(silent=True) or {}
        name = data.get("username") if isinstance(data, dict) else None
    else:
        name = request.form.get("username")
    return "account:" + (str(name or "").strip().lower()[:64])


def _failed(response) -> bool:
    # A successful page login redirects (302); a successful API login answers 201.
    return response.status_code not in (201, 302)


def login_limits(view):
    view = limiter.shared_limit(lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"], scope="login-account",
                                key_func=_username, methods=["POST"], deduct_when=_failed)(view)
    view = limiter.shared_limit(lambda: current_app.config["LOGIN_LIMIT_ADDRESS"], scope="login-address",
                                key_func=client_address, methods=["POST"], deduct_when=_failed)(view)
    return view
