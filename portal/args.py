"""The input boundary: one webargs parser for the whole app (as indico's
``indico/web/args.py``).

Every page form and every API body or query string is read through
:data:`parser` with a marshmallow schema from :mod:`portal.schemas`. Before the
schema sees anything the parser, once for every field:

- strips surrounding whitespace from every string (a field declared with
  ``metadata={"strip": False}``, a password, keeps its own);
- refuses NUL characters (PostgreSQL cannot store them) and lone surrogates
  (they cannot be encoded), naming the field;
- for JSON, refuses a body larger than ``API_MAX_BODY_BYTES``, nested deeper
  than ``JSON_MAX_DEPTH``, or carrying ``NaN``/``Infinity``, before
  ``json.loads`` builds or recurses into it.

A refusal is an :class:`InputError`, a :class:`~portal.services.ServiceError`
with status 400 whose message is translated and names the first field; the
API answers it as ``{"error": {"code": "bad_request", "message", "field"}}``
and a page shows the form again with the input kept and the message next to
the field.
"""
from __future__ import annotations

import json
import re
from typing import Any, Mapping, Optional

import marshmallow as ma
from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from flask_babel import gettext as _
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from portal.services import ServiceError

#: Defaults; the app's config may set other values under the same names.
API_MAX_BODY_BYTES = 1024 * 1024
JSON_MAX_DEPTH = 32

_BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


class InputError(ServiceError):
    """Input refused by a schema: ``field`` is the first field, ``errors`` every field's message."""

    status = 400

    def __init__(self, message: str, field: Optional[str] = None, errors: Optional[dict[str, str]] = None):
        super().__init__(message, field)
        self.errors = errors or ({field or "_": message})


# --- from marshmallow's messages to ours ---------------------------------------------------

def _flatten(messages: Any, path: tuple = ()) -> list[tuple[str, str]]:
    """marshmallow's nested error dict as (dotted path, message) pairs, in field order.
    List positions and the schema-level ``_schema`` key are not part of a path."""
    found: list[tuple[str, str]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            part = () if key == "_schema" or isinstance(key, int) else (str(key),)
            found += _flatten(value, path + part)
    elif isinstance(messages, (list, tuple)):
        for value in messages:
            found += _flatten(value, path)
    else:
        label = ".".join(path)
        text = str(messages)
        if "%(field)s" in text:  # the schema's own messages (unknown field, not an object) name it here
            text = text.replace("%(field)s", label or _("the request"))
        found.append((label, text))
    return found


def input_error(error: ma.ValidationError) -> InputError:
    pairs = _flatten(error.messages)
    if not pairs:
        return InputError(_("The request could not be understood."))
    errors: dict[str, str] = {}
    for label, text in pairs:
        errors.setdefault(label or "_", text)
    label, text = pairs[0]
    return InputError(text, label or None, errors)


# --- cleaning, once for every field ---------------------------------------------------------------

def _no_strip(schema: Optional[ma.Schema]) -> set[str]:
    if schema is None:
        return set()
    return {f.data_key or name for name, f in schema.fields.items() if f.metadata.get("strip") is False}


def _refuse_characters(value: str, path: str) -> None:
    if _BAD_CHARACTERS.search(value):
        raise ma.ValidationError({path or "_schema": [
            _("%(field)s contains a character that cannot be stored (NUL or an unpaired surrogate).",
              field=path or _("the request"))]})


def clean(value: Any, path: str = "", *, strip: bool = True) -> Any:
    """Strip every string and refuse NUL and lone surrogates, in keys and values alike."""
    if isinstance(value, str):
        _refuse_characters(value, path)
        return value.strip() if strip else value
    if isinstance(value, Mapping):
        cleaned = {}
        for key, item in value.items():
            key_text = str(key)
            _refuse_characters(key_text, path)
            cleaned[key_text] = clean(item, f"{path}.{key_text}" if path else key_text, strip=strip)
        return cleaned
    if isinstance(value, (list, tuple)):
        return [clean(item, path, strip=strip) for item in value]
    return value


def clean_mapping(data: Mapping, schema: Optional[ma.Schema] = None) -> dict:
    keep = _no_strip(schema)
    return {key: clean(value, key, strip=key not in keep) for key, value in data.items()}


def _multiple(schema: ma.Schema) -> set[str]:
    return {f.data_key or name for name, f in schema.fields.items() if isinstance(f, ma.fields.List)}


def form_to_dict(multi: MultiDict, schema: ma.Schema) -> dict:
    """A form or query string as a dict: list fields get every value, others the first.
    A schema's ``form_keys`` maps a form's flat names onto its fields (``target_name`` →
    ``target.name``), so that one schema serves the page form and the JSON body."""
    aliases: dict[str, str] = getattr(schema, "form_keys", {})
    lists = _multiple(schema)
    data: dict[str, Any] = {}
    for key in multi.keys():
        path = aliases.get(key, key).split(".")
        values = multi.getlist(key)
        value: Any = values if path[-1] in lists and len(path) == 1 else values[0]
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return data


# --- JSON: size, depth, numbers -----------------------------------------------------------------

def _depth_exceeds(text: str, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit``, counted outside strings
    without building anything."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class _NotANumber(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NotANumber(name)


def loads(raw: bytes | str, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted bodies; a refusal is an :class:`InputError`."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise InputError(_("The request body is not valid JSON (UTF-8)."))
    if _depth_exceeds(text, max_depth):
        raise InputError(_("The JSON body is nested more than %(n)d levels deep.", n=max_depth))
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except _NotANumber:
        raise InputError(_("NaN and Infinity are not numbers this API accepts."))
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so is an int of 4,300+ digits
        raise InputError(_("The request body is not valid JSON."))


class JSONProvider(DefaultJSONProvider):
    """The app's JSON: ``request.get_json()`` anywhere refuses (as invalid JSON) bodies nested
    deeper than ``JSON_MAX_DEPTH`` and NaN/Infinity, before ``json.loads`` recurses."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        text = s.decode("utf-8") if isinstance(s, (bytes, bytearray)) else s  # UnicodeDecodeError: a ValueError
        limit = current_app.config.get("JSON_MAX_DEPTH", JSON_MAX_DEPTH) if current_app else JSON_MAX_DEPTH
        if _depth_exceeds(text, limit):
            raise ValueError("JSON nested too deep")
        kwargs.setdefault("parse_constant", _refuse_constant)
        return super().loads(text, **kwargs)


def _refuse_unstorable_input(endpoint, values) -> None:
    """Before any view or workspace lookup: no path value or query parameter may
    carry a character the database cannot store, whether or not the view reads
    it through a schema (a search box, a filter, a unit code)."""
    try:
        for key, value in (values or {}).items():
            if isinstance(value, str):
                _refuse_characters(value, key)
        # Form bodies are left to the forms' schemas, which keep the user's input on refusal.
        for key, value in request.args.items(multi=True):
            _refuse_characters(key, key)
            _refuse_characters(value, key)
    except ma.ValidationError as exc:
        raise input_error(exc)


def init_app(app) -> None:
    """The JSON provider, and a page's answer to input refused outside a form's own handling."""
    app.json = JSONProvider(app)
    # App-level, so it runs before the blueprints' own preprocessors (the workspace's unit lookup).
    app.url_value_preprocessor(_refuse_unstorable_input)

    @app.errorhandler(InputError)
    def refused_input(exc: InputError):
        from flask import render_template

        from portal.extensions import db

        db.session.rollback()
        if request.path.startswith("/api/"):
            from portal.blueprints.api import api_error

            return api_error(400, exc.message, exc.field)
        return render_template("errors/error.html", code=400, message=exc.message), 400


# --- the parser -----------------------------------------------------------------------------------

class PortalParser(FlaskParser):
    """The app's one parser: see the module's docstring."""

    DEFAULT_VALIDATION_STATUS = 400
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
                                   "json": ma.RAISE, "form": ma.EXCLUDE, "query": ma.EXCLUDE,
                                   "querystring": ma.EXCLUDE}

    def _raw_load_json(self, req):
        limit = current_app.config.get("API_MAX_BODY_BYTES", API_MAX_BODY_BYTES)
        if req.content_length is not None and req.content_length > limit:
            raise RequestEntityTooLarge()
        raw = req.get_data(cache=True)
        if len(raw) > limit:
            raise RequestEntityTooLarge()
        if not raw.strip():
            from webargs import missing
            return missing
        # Any content type: a client that forgets the header gets its body read, not ignored.
        return loads(raw, max_depth=current_app.config.get("JSON_MAX_DEPTH", JSON_MAX_DEPTH))

    def load_form(self, req, schema):
        return form_to_dict(req.form, schema)

    def load_querystring(self, req, schema):
        return form_to_dict(req.args, schema)

    def pre_load(self, location_data, *, schema, req, location):
        if isinstance(location_data, Mapping):
            return clean_mapping(location_data, schema)
        return clean(location_data)

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        messages = error.messages
        if isinstance(messages, dict) and len(messages) == 1 and next(iter(messages)) in self.__location_map__:
            error = ma.ValidationError(next(iter(messages.values())))  # webargs files them under the location
        raise input_error(error)


parser = PortalParser()


def parse(schema: ma.Schema | type[ma.Schema], location: str) -> dict:
    """Read one location of the current request through ``schema``: typed values, or an InputError."""
    from portal.schemas import Valid

    if isinstance(schema, type):
        schema = schema()
    return Valid(parser.parse(schema, request, location=location))


def form(schema: ma.Schema | type[ma.Schema]) -> dict:
    """A page form's fields (Flask-WTF's CSRFProtect has checked the token already)."""
    return parse(schema, "form")


def query(schema: ma.Schema | type[ma.Schema]) -> dict:
    return parse(schema, "query")
