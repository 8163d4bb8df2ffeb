"""Every user-facing string in the code and templates has a Chinese translation."""
from __future__ import annotations

import os

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import ROOT

METHODS = [("portal/**.py", "python"), ("jobs/**.py", "python"), ("portal/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
            "pgettext": ((1, "c"), 2), "lazy_pgettext": ((1, "c"), 2)}


def test_every_string_has_a_chinese_translation():
    with open(os.path.join(ROOT, "portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po"), "rb") as fh:
        catalog = read_po(fh)
    translated = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalog
                  if m.id and m.string and not m.fuzzy}
    missing = set()
    for _filename, _lineno, message, _comments, context in extract_from_dir(
            ROOT, METHODS, keywords=KEYWORDS, options_map={"portal/templates/**.html": {}}):
        msgid = message if isinstance(message, str) else message[0]
        if (context, msgid) not in translated:
            missing.add((context, msgid))
    assert not missing, f"run `make extract-messages` and translate: {sorted(missing)}"


class _AnyValue(dict):
    def __missing__(self, key):
        return 1


def test_every_translation_formats_without_error():
    """Jinja applies `%` to every translated string: a stray % in a translation breaks the page."""
    with open(os.path.join(ROOT, "portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po"), "rb") as fh:
        catalog = read_po(fh)
    broken = []
    for message in catalog:
        strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        for text in strings:
            if not text:
                continue
            try:
                text % _AnyValue()
            except (ValueError, TypeError, KeyError) as exc:
                broken.append((message.id, text, str(exc)))
    assert not broken, broken
