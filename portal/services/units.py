"""Importing the management network from a division file.

The file format is that of ``data/divisions-41-henan.json``::

    {"units": [{"code": "41", "name": "河南省", "tier": "province", "parent": null}, …]}

The whole file is validated before anything is written; the import is
idempotent (a second run changes nothing), updates renamed and moved units,
and never deletes a unit.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.models import TIERS, Unit, User
from portal.services import ServiceError
from portal.services.audit import record
from portal.tiers import tier_label

CODE_RE = re.compile(r"^[0-9]{2,15}$")


class ImportRefused(ServiceError):
    pass


@dataclass
class ImportReport:
    created: Counter = field(default_factory=Counter)
    renamed: Counter = field(default_factory=Counter)
    moved: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        return bool(sum(self.created.values()) + sum(self.renamed.values()) + sum(self.moved.values()))

    def lines(self) -> list[str]:
        out = []
        for tier in TIERS:
            out.append(_("%(tier)s: %(created)d created, %(renamed)d renamed, %(moved)d moved, "
                         "%(unchanged)d unchanged", tier=tier_label(tier), created=self.created[tier],
                         renamed=self.renamed[tier], moved=self.moved[tier],
                         unchanged=self.unchanged[tier]))
        return out


def load_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise ImportRefused(_("File not found: %(path)s", path=path))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportRefused(_("The file is not valid UTF-8 JSON: %(error)s", error=exc))


def _validate(data: Any, existing: dict[str, Unit]) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("units"), list):
        raise ImportRefused(_("The file must be a JSON object with a list named “units”."))
    records: dict[str, dict[str, Any]] = {}
    for index, rec in enumerate(data["units"], start=1):
        where = _("record %(n)d", n=index)
        if not isinstance(rec, dict):
            raise ImportRefused(_("%(where)s is not an object.", where=where))
        code, name, tier, parent = rec.get("code"), rec.get("name"), rec.get("tier"), rec.get("parent")
        if not isinstance(code, str) or not CODE_RE.match(code):
            raise ImportRefused(_("%(where)s: the code %(code)r is not 2–15 digits.", where=where, code=code))
        where = _("record %(n)d (%(code)s)", n=index, code=code)
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ImportRefused(_("%(where)s: the name is missing or too long.", where=where))
        if tier not in TIERS:
            raise ImportRefused(_("%(where)s: unknown tier %(tier)r.", where=where, tier=tier))
        if parent is not None and not isinstance(parent, str):
            raise ImportRefused(_("%(where)s: the parent must be a code or null.", where=where))
        if code in records:
            raise ImportRefused(_("%(where)s: the code appears twice in the file.", where=where))
        records[code] = {"code": code, "name": name.strip(), "tier": tier, "parent": parent, "where": where}

    def parent_tier(rec: dict[str, Any]) -> Optional[str]:
        parent = rec["parent"]
        if parent in records:
            return records[parent]["tier"]
        if parent in existing:
            return existing[parent].tier
        return None

    for rec in records.values():
        if rec["parent"] is None:
            if rec["tier"] != TIERS[0]:
                raise ImportRefused(_("%(where)s: only a %(top)s may have no parent.",
                                      where=rec["where"], top=TIERS[0]))
            continue
        ptier = parent_tier(rec)
        if ptier is None:
            raise ImportRefused(_("%(where)s: its parent %(parent)s is neither in the file nor in the "
                                  "database.", where=rec["where"], parent=rec["parent"]))
        if TIERS.index(rec["tier"]) != TIERS.index(ptier) + 1:
            raise ImportRefused(_("%(where)s: a %(tier)s cannot sit below a %(ptier)s.",
                                  where=rec["where"], tier=rec["tier"], ptier=ptier))
        if rec["code"] in existing and existing[rec["code"]].tier != rec["tier"]:
            raise ImportRefused(_("%(where)s: the unit exists as a %(old)s; a tier cannot change.",
                                  where=rec["where"], old=existing[rec["code"]].tier))
    return sorted(records.values(), key=lambda r: TIERS.index(r["tier"]))


def import_units(data: Any, *, by: Optional[User] = None) -> ImportReport:
    """Validate everything, then create, rename or move. Flushes; the caller commits."""
    existing = {u.code: u for u in db.session.scalars(select(Unit))}
    records = _validate(data, existing)
    report = ImportReport()
    for tier in TIERS:
        for rec in (r for r in records if r["tier"] == tier):
            parent = existing.get(rec["parent"]) if rec["parent"] else None
            path = (parent.path if parent else "/") + rec["code"] + "/"
            unit = existing.get(rec["code"])
            if unit is None:
                unit = Unit(code=rec["code"], name=rec["name"], tier=tier, path=path,
                            parent_id=parent.id if parent else None)
                db.session.add(unit)
                existing[unit.code] = unit
                report.created[tier] += 1
                continue
            changed = False
            if unit.name != rec["name"]:
                record("unit.rename", unit, by=by, unit=unit, old=unit.name, new=rec["name"])
                unit.name = rec["name"]
                report.renamed[tier] += 1
                changed = True
            if unit.path != path:
                _move(unit, parent, path, by=by)
                report.moved[tier] += 1
                changed = True
            if not changed:
                report.unchanged[tier] += 1
        db.session.flush()  # parents get ids before their children are added
    if report.changed:
        record("unit.import", None, by=by, object_type="units",
               created=dict(report.created), renamed=dict(report.renamed), moved=dict(report.moved))
        from portal import figcache

        figcache.changed()  # the views kept name and place the units: new epochs after the commit
    return report


def _move(unit: Unit, parent: Optional[Unit], new_path: str, *, by: Optional[User]) -> None:
    old_path = unit.path
    record("unit.move", unit, by=by, unit=unit, old=old_path, new=new_path)
    descendants = db.session.scalars(select(Unit).where(
        Unit.path.startswith(old_path, autoescape=True), Unit.id != unit.id))
    for d in descendants:
        d.path = new_path + d.path[len(old_path):]
    unit.path = new_path
    unit.parent_id = parent.id if parent else None
