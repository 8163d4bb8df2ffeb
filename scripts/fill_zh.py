"""Fill Chinese translations from a JSON dict {msgid: msgstr}: ``python scripts/fill_zh.py FILE``.

A key "context|msgid" fills a message with a context (pgettext).

Used by maintainers after ``make extract-messages``; refuses a translation whose
placeholders differ from the source.
"""
import json
import re
import sys

from babel.messages.pofile import read_po, write_po

PO = "portal/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[-.\d]*[sdrf]")


def main(path: str) -> int:
    with open(path, encoding="utf-8") as fh:
        wanted = json.load(fh)
    with open(PO, "rb") as fh:
        catalog = read_po(fh)
    for msgid, text in wanted.items():
        context, _sep, plain = msgid.rpartition("|") if "|" in msgid else (None, "", msgid)
        message = catalog.get(plain, context=context or None)
        if message is None:
            print(f"not in the catalogue: {msgid!r}")
            return 1
        if sorted(PLACEHOLDER.findall(plain)) != sorted(PLACEHOLDER.findall(text)):
            print(f"placeholders differ: {msgid!r} -> {text!r}")
            return 1
        message.string = text
        message.flags.discard("fuzzy")
    with open(PO, "wb") as fh:
        write_po(fh, catalog, width=100)
    missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    print(f"{len(wanted)} filled; {len(missing)} still missing")
    for m in missing:
        print("  missing:", m)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
