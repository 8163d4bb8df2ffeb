"""The agency names of the member departments at a unit (金水区教育局, 中共金水区委宣传部)."""
from __future__ import annotations

import unicodedata

import marshmallow as ma
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from portal.schemas import Schema
from portal.schemas import fields as f

#: The column's size (``department_agencies.name``).
AGENCY_NAME_MAX = 100


def _has_control_character(text: str) -> bool:
    """Tabs, line breaks and other control or format characters (Unicode Cc and Cf)."""
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


class AgencyNames(f._Labelled, ma.fields.Field):
    """``{department code: agency name}``: a code of the catalogue, a name of at most
    :data:`AGENCY_NAME_MAX` characters on one line, trimmed; a blank name means the default."""

    default_error_messages = {
        **f._BASE_MESSAGES,
        "invalid": _l("%(field)s must map department codes to names."),
        "unknown": _l("%(field)s: unknown department %(code)s."),
        "too_long": _l("%(field)s is longer than %(n)d characters."),
        "control": _l("%(field)s contains a line break, a tab or another control character."),
        "text": _l("%(field)s must be text."),
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        codes = f.department_codes()
        out: dict[str, str] = {}
        errors: dict[str, str] = {}
        for code, name in value.items():
            label = f"{self.label()}.{code}"
            if code not in codes:
                errors[code] = str(self.error_messages["unknown"]) % {"field": self.label(), "code": code[:32]}
            elif name is None:
                out[code] = ""
            elif not isinstance(name, str):
                errors[code] = str(self.error_messages["text"]) % {"field": label}
            elif _has_control_character(name):
                errors[code] = str(self.error_messages["control"]) % {"field": label}
            elif len(name.strip()) > AGENCY_NAME_MAX:
                errors[code] = str(self.error_messages["too_long"]) % {"field": label, "n": AGENCY_NAME_MAX}
            else:
                out[code] = name.strip()
        if errors:
            raise ValidationError(errors)
        return out


class AgencyNamesIn(Schema):
    """The form (``names.<code>`` fields) and body: the names to set; a blank name goes back to
    the default; a department left out keeps its name."""

    names = AgencyNames(required=True, metadata={
        "description": "Department code → agency name (at most 100 characters, one line); blank: the default."})
