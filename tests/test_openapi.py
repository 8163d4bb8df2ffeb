"""The OpenAPI 3.1 description at /api/v1/openapi.json and the documentation page at /api/v1/docs."""
from __future__ import annotations

import os
import re

from tests.conftest import ROOT


def _described(description: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, operations in description["paths"].items() for method in operations}


def _api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_every_api_route_is_described(app, client):
    response = client.get("/api/v1/openapi.json")  # no token: the description is public
    assert response.status_code == 200
    description = response.get_json()
    assert description["openapi"] == "3.1.0"
    missing = _api_routes(app) - _described(description)
    assert not missing, f"declare these with @operation: {sorted(missing)}"
    assert len(_described(description)) >= 17


def test_a_route_without_a_declaration_is_missing_from_the_description():
    """The check above can fail: an /api/v1 route added without @operation is not described."""
    from portal import create_app
    from portal.blueprints.api import bp
    from portal.openapi import build

    extra = create_app({"TESTING": True, "SECRET_KEY": "test-secret-for-a-second-app"})
    extra.add_url_rule("/api/v1/undeclared", "api.undeclared", lambda: "")
    with extra.app_context():
        described = _described(build(extra))
    assert ("/api/v1/undeclared", "GET") in _api_routes(extra) - described
    assert bp.name == "api"


def test_errors_and_the_bearer_scheme_are_described(client):
    description = client.get("/api/v1/openapi.json").get_json()
    assert description["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "A token from POST /api/v1/tokens."}
    error = description["components"]["schemas"]["Error"]
    detail = description["components"]["schemas"]["ErrorDetail"]
    assert error["required"] == ["error"] and set(detail["properties"]) == {"code", "message", "field"}
    create_task = description["paths"]["/api/v1/units/{code}/tasks"]["post"]
    assert create_task["security"] == [{"bearerAuth": []}]
    assert {"201", "400", "401", "403", "404", "409", "413"} <= set(create_task["responses"])
    assert create_task["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    token = description["paths"]["/api/v1/tokens"]["post"]
    assert token["security"] == [] and "429" in token["responses"]
    # The request schemas are the ones the views read: limits included.
    task_in = description["components"]["schemas"]["TaskIn"]
    assert task_in["properties"]["title"]["maxLength"] == 200
    assert task_in["properties"]["weight"]["maximum"] == 100.0
    assert task_in["additionalProperties"] is False
    target = description["components"]["schemas"]["TargetIn"]
    assert target["properties"]["value"]["maximum"] < 10**12
    cascade = description["components"]["schemas"]["CascadeIn"]["properties"]["to"]
    assert [alt.get("type") for alt in cascade["oneOf"]] == ["string", "array"]
    query = {p["name"] for p in description["paths"]["/api/v1/units/{code}/tasks"]["get"]["parameters"]}
    assert {"code", "scope", "status", "department", "due_within", "overdue", "q", "page", "per_page"} <= query


def test_the_documentation_page_loads_nothing_from_outside(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script>" not in html and "http://" not in html and "https://" not in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in sources
    assert "/static/api-docs.js" in sources and 'data-spec-url="/api/v1/openapi.json"' in html
    for source in sources:
        assert source.startswith("/static/"), source
    assert os.path.exists(os.path.join(ROOT, "portal/static/api-docs.js"))
    # The Swagger UI files come from npm (package.json) through `make vendor`.
    with open(os.path.join(ROOT, "package.json"), encoding="utf-8") as fh:
        assert '"swagger-ui-dist"' in fh.read()
