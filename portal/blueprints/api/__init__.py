"""The JSON API under /api/v1: bearer tokens, the same services and access rules as the pages.

Every view declares its operation with :func:`operation`: the schemas of its
body and query string, its responses and the errors it can answer. The view
reads its input with :func:`body` / :func:`query` (through the app's one
parser, after loading and checking the objects of its path), and the OpenAPI
description at ``/api/v1/openapi.json`` is generated from the same
declarations (:mod:`portal.openapi`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from flask import Blueprint, abort, current_app, g, jsonify, request

from portal.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 429: "too_many_requests",
               500: "server_error", 503: "service_unavailable"}


def api_error(status: int, message: str, field: str | None = None):
    body = {"error": {"code": ERROR_CODES.get(status, str(status)), "message": message}}
    if field:
        body["error"]["field"] = field
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="portal"'
    return response


# --- declared operations ------------------------------------------------------------------------

@dataclass
class Operation:
    """What an API view accepts and answers; the OpenAPI description is built from it."""

    summary: str
    tag: str
    responses: dict[int, Any]            # success status -> response schema (None: no body)
    body: Any = None                     # request body schema (JSON)
    query: Any = None                    # query-string schema
    errors: tuple[int, ...] = ()         # refusals beyond those implied (400/413 with input, 401 with a token)
    public: bool = False                 # reachable without a token
    description: str = ""
    extra: dict = field(default_factory=dict)

    def error_statuses(self) -> list[int]:
        statuses = set(self.errors)
        if self.body is not None:
            statuses |= {400, 413}
        if self.query is not None:
            statuses.add(400)
        if not self.public:
            statuses.add(401)
        return sorted(statuses)


def operation(summary: str, *, tag: str, responses: dict[int, Any], body: Any = None, query: Any = None,
              errors: tuple[int, ...] = (), public: bool = False, description: str = ""):
    """Declare a view's operation (put it under ``@bp.route``)."""
    def decorate(view):
        view.operation = Operation(summary=summary, tag=tag, responses=responses, body=body, query=query,
                                   errors=errors, public=public, description=description)
        return view
    return decorate


def current_operation() -> Optional[Operation]:
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(view, "operation", None)


def body() -> dict:
    """The request's JSON body, loaded by the operation's declared schema."""
    from portal import args

    return args.parse(current_operation().body, "json")


def query() -> dict:
    """The request's query string, loaded by the operation's declared schema."""
    from portal import args

    return args.parse(current_operation().query, "query")


# --- refusals -------------------------------------------------------------------------------------

def refused(exc):
    """A service's (or the input schema's) refusal as a JSON error; nothing of the request is kept."""
    from portal.extensions import db

    db.session.rollback()
    return api_error(exc.status, exc.message, exc.field)


def too_large(exc):
    from flask_babel import gettext as _

    limit = current_app.config.get("API_MAX_BODY_BYTES")
    from portal.args import API_MAX_BODY_BYTES

    return api_error(413, _("The request body is larger than %(n)d KB.", n=(limit or API_MAX_BODY_BYTES) // 1024))


def _register_refusals() -> None:
    # Every endpoint lets a service's refusal through; it is answered here, once.
    from portal.services import ServiceError

    bp.register_error_handler(ServiceError, refused)
    bp.register_error_handler(413, too_large)


_register_refusals()


#: A unit code in a path: anything else names no unit (and never reaches the database).
UNIT_CODE = re.compile(r"[0-9A-Za-z_-]{1,16}")


@bp.before_request
def authenticate():
    from flask_babel import gettext as _

    from portal.services.tokens import user_for_token

    # Bodies are small JSON here: a larger one is refused (413) as soon as it is read.
    from portal.args import API_MAX_BODY_BYTES

    request.max_content_length = current_app.config.get("API_MAX_BODY_BYTES", API_MAX_BODY_BYTES)
    declared = current_operation()
    if declared is not None and declared.public:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    found = user_for_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if found is None:
        return api_error(401, _("A valid API token is required (Authorization: Bearer <token>)."))
    g.api_user, g.api_token = found
    code = (request.view_args or {}).get("code")
    if code is not None and not UNIT_CODE.fullmatch(code):
        abort(404)
    return None


from portal.blueprints.api import activities, briefings, consolidated, docs, meetings, metrics, routes, tasks  # noqa: E402,F401
