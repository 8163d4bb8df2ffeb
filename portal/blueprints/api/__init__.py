"""The JSON API under /api/v1: bearer tokens, the same services and access rules as the pages."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from portal.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 429: "too_many_requests", 500: "server_error"}


def api_error(status: int, message: str, field: str | None = None):
    body = {"error": {"code": ERROR_CODES.get(status, str(status)), "message": message}}
    if field:
        body["error"]["field"] = field
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="portal"'
    return response


def json_body() -> dict:
    """The request's JSON object, or a refusal the client can read."""
    from flask_babel import gettext as _

    from portal.services import ServiceError

    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError(_("Send a JSON object."))
    return data


def refused(exc):
    """A service's refusal as a JSON error; nothing of the request is kept."""
    from portal.extensions import db

    db.session.rollback()
    return api_error(exc.status, exc.message, exc.field)


def _register_refusals() -> None:
    # Every endpoint lets a service's refusal through; it is answered here, once.
    from portal.services import ServiceError

    bp.register_error_handler(ServiceError, refused)


_register_refusals()


#: Endpoints reachable without a token.
PUBLIC_ENDPOINTS = {"api.create_token"}


@bp.before_request
def authenticate():
    from flask_babel import gettext as _

    from portal.services.tokens import user_for_token

    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    found = user_for_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if found is None:
        return api_error(401, _("A valid API token is required (Authorization: Bearer <token>)."))
    g.api_user, g.api_token = found
    return None


from portal.blueprints.api import meetings, routes, tasks  # noqa: E402,F401
