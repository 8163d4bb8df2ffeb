"""The agency names of the member departments at a unit: 金水区教育局, 中共金水区委宣传部.

:func:`agency_names_at` is the one reader for pages and Excel: the names of every department
at a unit (the office's own over the defaults of :func:`portal.models.units.agency_names`, the
same the official documents print), loaded once per unit and request, never once per row.
:func:`set_agency_names` is the office's form: a blank name goes back to the default, and each
change is in the audit trail with the old and the new name.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from flask import g, has_app_context
from flask_babel import gettext as _
from sqlalchemy import select

from portal import access
from portal.extensions import db
from portal.models import Department, DepartmentAgency, Unit, User
from portal.models.units import agency_names_of, default_agency_name
from portal.schemas import valid
from portal.schemas.agencies import AgencyNamesIn
from portal.services import PermissionDenied
from portal.services.audit import record

_CACHE = "_agency_names"


def agency_names_at(unit: Unit) -> dict[str, str]:
    """``{department code: agency name}`` at ``unit``, read once per unit in a request or job."""
    return agency_names_for([unit])[unit.id]


def agency_names_for(units: Iterable[Unit]) -> dict[int, dict[str, str]]:
    """:func:`agency_names_at` of many units, ``{unit id: {code: name}}``, with one query for those
    not read yet in this request or job (an Excel export of a subtree: one query, not one per row)."""
    units = list({unit.id: unit for unit in units if unit is not None}.values())
    if not has_app_context():
        return agency_names_of(units)
    cache = g.setdefault(_CACHE, {})
    missing = [unit for unit in units if unit.id not in cache]
    if missing:
        if "_departments" not in cache:
            cache["_departments"] = Department.all()
        cache.update(agency_names_of(missing, cache["_departments"]))
    return {unit.id: cache[unit.id] for unit in units}


def agency_name(unit: Optional[Unit], code: Optional[str]) -> str:
    """The agency that is department ``code`` at ``unit`` (the code itself when it is unknown)."""
    if not code:
        return ""
    if unit is None:
        return code
    return agency_names_at(unit).get(code, code)


def agency_rows(unit: Unit) -> list[dict[str, Any]]:
    """For the form: every department in the catalogue's order with its default and its name."""
    own = dict(db.session.execute(select(DepartmentAgency.department_code, DepartmentAgency.name)
                                  .where(DepartmentAgency.unit_id == unit.id)).tuples().all())
    return [{"code": d.code, "department": d, "default": default_agency_name(d, unit), "own": own.get(d.code, "")}
            for d in Department.all()]


def set_agency_names(unit: Unit, data: Any, *, by: User) -> list[dict[str, str]]:
    """Set the names in ``data["names"]`` (a blank name: back to the default); departments not
    in it keep theirs. Returns the changes, each ``{department, old, new}``, each audited."""
    if not access.can_name_agencies(by, unit):
        raise PermissionDenied(_("Only the office administrators of %(unit)s name its departments' agencies.",
                                 unit=unit.name))
    names = valid(AgencyNamesIn, data)["names"]
    departments = {d.code: d for d in Department.all()}
    rows = {row.department_code: row for row in db.session.scalars(
        select(DepartmentAgency).where(DepartmentAgency.unit_id == unit.id))}
    changes: list[dict[str, str]] = []
    for code, name in names.items():
        default = default_agency_name(departments[code], unit)
        row = rows.get(code)
        old = row.name if row is not None else default
        new = name or default
        if new == default:
            if row is not None:
                db.session.delete(row)
        elif row is None:
            db.session.add(DepartmentAgency(unit_id=unit.id, department_code=code, name=new))
        else:
            row.name = new
        if new != old:
            changes.append({"department": code, "old": old, "new": new})
            record("unit.agency_name", None, by=by, unit=unit, object_type="department_agencies",
                   object_id=f"{unit.code}/{code}", department=code, old=old, new=new,
                   default=new == default)
    db.session.flush()
    if has_app_context():
        g.pop(_CACHE, None)
    return changes
