"""Every user-facing string in the code and templates has a Chinese translation."""
from __future__ import annotations

import os

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import ROOT

METHODS = [("portal/**.py", "python"), ("jobs/**.py", "python"), ("portal/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


def test_every_string_has_a_chinese_translation():
    with open(os.path.join(ROOT, "portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po"), "rb") as fh:
        catalog = read_po(fh)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog
                  if m.id and m.string and not m.fuzzy}
    missing = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            ROOT, METHODS, keywords=KEYWORDS, options_map={"portal/templates/**.html": {}}):
        msgid = message if isinstance(message, str) else message[0]
        if msgid not in translated:
            missing.add(msgid)
    assert not missing, f"run `make extract-messages` and translate: {sorted(missing)}"
