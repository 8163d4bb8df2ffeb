"""The OpenAPI 3.1 description of /api/v1, generated (apispec + its marshmallow plugin)
from the operations the API views declare and the schemas they read and answer with,
so that it cannot drift from the code."""
from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from portal.schemas import fields as f

TITLE = "Community Education Coordination Portal API"
BEARER = "bearerAuth"
ERROR_DESCRIPTIONS = {
    400: "The input is refused: `field` names the first field, `message` says why, in the user's language.",
    401: "No valid token (or, for /tokens, a wrong user name or password).",
    403: "The caller may see this but not do it.",
    404: "Nothing here, or not the caller's to see.",
    405: "The router's answer to an id beyond the database's range (2147483647) on a path that also has a GET.",
    409: "The object changed meanwhile (a stale `version`, a state another request changed, a duplicate).",
    413: "The request body is too large.",
    429: "Too many attempts; wait a few minutes.",
}
SUCCESS_DESCRIPTIONS = {200: "OK", 201: "Created", 202: "Accepted: a job does the work", 204: "Done, no content"}
_PATH_ARG = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _cascade_target(converter, field, **kwargs):
    """``to`` of a cascade: a word or a list of unit codes."""
    from portal.schemas.tasks import CascadeTarget

    if isinstance(field, CascadeTarget):
        kwargs["ret"].pop("type", None)  # the alternatives say their own types
        return {"oneOf": [{"type": "string", "enum": list(field.choices)},
                          {"type": "array", "minItems": 1, "maxItems": 5000,
                           "items": {"type": "string", "minLength": 1, "maxLength": 16}}]}
    return {}


def _plugin() -> MarshmallowPlugin:
    def name(schema) -> str:
        cls = schema if isinstance(schema, type) else type(schema)
        return cls.__name__

    plugin = MarshmallowPlugin(schema_name_resolver=name)
    return plugin


def _path_and_parameters(rule: str) -> tuple[str, list[dict]]:
    from portal.blueprints.api import UNIT_CODE

    parameters = []

    def replace(match: re.Match) -> str:
        converter, name = match.group(1), match.group(2)
        if converter == "int":
            schema = {"type": "integer", "minimum": 1, "maximum": f.MAX_INT}
        else:
            schema = {"type": "string", "pattern": f"^{UNIT_CODE.pattern}$"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return _PATH_ARG.sub(replace, rule), parameters


def _json(schema: Any) -> dict:
    return {"application/json": {"schema": schema}}


def build(app: Flask) -> dict:
    """The description of every /api/v1 operation that declares itself (see ``portal.blueprints.api.operation``)."""
    plugin = _plugin()
    spec = APISpec(
        title=TITLE, version="1", openapi_version="3.1.0", plugins=[plugin],
        info={"description": "Bearer tokens from `POST /api/v1/tokens`; every refusal is "
                             "`{\"error\": {\"code\", \"message\", \"field\"}}` with the message in the user's "
                             "language (Chinese by default, `?lang=en` for English)."})
    plugin.map_to_openapi_type(f.Date, "string", "date")
    plugin.map_to_openapi_type(f.DateTime, "string", None)
    plugin.converter.add_attribute_function(_cascade_target)
    spec.components.security_scheme(BEARER, {"type": "http", "scheme": "bearer",
                                             "description": "A token from POST /api/v1/tokens."})
    from portal.schemas.api import ErrorOut

    spec.components.schema("Error", schema=ErrorOut)
    paths: dict[str, dict[str, dict]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith("api."):
            continue
        declared = getattr(app.view_functions[rule.endpoint], "operation", None)
        if declared is None:
            continue  # tests/test_openapi.py fails for it
        path, parameters = _path_and_parameters(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, declared, parameters)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(rule, declared, parameters: list[dict]) -> dict:
    responses: dict[Any, dict] = {}
    for status, schema in declared.responses.items():
        response: dict = {"description": SUCCESS_DESCRIPTIONS.get(status, "OK")}
        if schema == "html":
            response["content"] = {"text/html": {"schema": {"type": "string"}}}
        elif schema == "json":
            response["content"] = _json({"type": "object"})
        elif schema is not None:
            response["content"] = _json(schema)
        responses[str(status)] = response
    from portal.schemas.api import ErrorOut

    for status in declared.error_statuses():
        responses[str(status)] = {"description": ERROR_DESCRIPTIONS[status], "content": _json(ErrorOut)}
    operation: dict = {"operationId": rule.endpoint.split(".", 1)[1], "summary": declared.summary,
                       "tags": [declared.tag], "responses": responses}
    if declared.description:
        operation["description"] = declared.description
    params = list(parameters)
    if declared.query is not None:
        params.append({"in": "query", "schema": declared.query})
    if params:
        operation["parameters"] = params
    if declared.body is not None:
        required = any(field.required for field in declared.body().fields.values())
        operation["requestBody"] = {"required": required, "content": _json(declared.body)}
    operation["security"] = [] if declared.public else [{BEARER: []}]
    return operation
