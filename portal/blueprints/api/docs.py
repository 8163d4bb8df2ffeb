"""The API's description (OpenAPI 3.1, generated from the declared schemas) and its documentation page."""
from __future__ import annotations

from flask import current_app, jsonify, render_template

from portal.blueprints.api import bp, operation

TAG = "description"


def description() -> dict:
    """Built once per app: the routes and schemas do not change while it runs."""
    from portal.openapi import build

    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build(current_app)
    return current_app.extensions["openapi"]


@bp.route("/openapi.json")
@operation("This description (OpenAPI 3.1)", tag=TAG, responses={200: "json"}, public=True)
def openapi():
    return jsonify(description())


@bp.route("/docs")
@operation("The documentation page of this API", tag=TAG, responses={200: "html"}, public=True)
def docs():
    return render_template("api/docs.html")
