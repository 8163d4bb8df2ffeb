"""Declared inputs and outputs: one marshmallow schema per page form and API
operation (``meetings``, ``tasks``, ``api``). The pages and the API read
requests through them (:mod:`portal.args`), the OpenAPI description is
generated from them (:mod:`portal.openapi`), and a service handed a plain dict
(by the Excel import, the demo seed or a test) loads it through the same
schema with :func:`valid`.
"""
from __future__ import annotations

from typing import Any, Mapping

import marshmallow as ma
from flask_babel import lazy_gettext as _l


class Valid(dict):
    """Data a schema has loaded: typed, within range, safe to store."""


class Schema(ma.Schema):
    """Refuses unknown fields (bodies) and names the field in the user's language."""

    #: A page form's flat names for nested fields, e.g. {"target_name": "target.name"}.
    form_keys: dict[str, str] = {}

    error_messages = {
        "unknown": _l("%(field)s is not a field of this request."),
        "type": _l("%(field)s must be a JSON object."),
    }

    class Meta:
        unknown = ma.RAISE


def load(schema: ma.Schema | type[ma.Schema], data: Any, *, partial: bool = False) -> Valid:
    """Load ``data`` from Python code (not a request) through ``schema``: the same cleaning as
    the request parser, then the schema; an :class:`~portal.args.InputError` when refused."""
    from portal.args import clean, clean_mapping, input_error

    if isinstance(schema, type):
        schema = schema()
    try:
        cleaned = clean_mapping(data, schema) if isinstance(data, Mapping) else clean(data)
        return Valid(schema.load(cleaned, partial=partial))
    except ma.ValidationError as exc:
        raise input_error(exc) from None


def valid(schema: ma.Schema | type[ma.Schema], data: Any, *, partial: bool = False) -> Valid:
    """``data`` as the service needs it: already loaded by the request parser, or loaded now
    (``partial``: only the fields ``data`` holds)."""
    if isinstance(data, Valid):
        return data
    return load(schema, data, partial=partial)
