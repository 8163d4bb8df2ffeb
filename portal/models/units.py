"""The management network: units of every tier, and the department catalogue."""
from __future__ import annotations

from typing import Optional

from flask_babel import get_locale
from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

#: Tiers from the top down. The tier-policy registry (portal/tiers.py) says
#: what each one's workspace shows.
TIERS = ("province", "city", "district", "street")


class Unit(db.Model):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    tier: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("units.id"), index=True)
    #: Materialised path of codes, e.g. "/41/4101/410105/": subtree = prefix.
    path: Mapped[str] = mapped_column(String(255), index=True)

    parent: Mapped[Optional["Unit"]] = relationship(remote_side=[id], lazy="joined", innerjoin=False)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Unit {self.code} {self.name}>"

    @property
    def ancestor_codes(self) -> list[str]:
        """Codes from the root down to the parent (not the unit itself)."""
        return [c for c in self.path.strip("/").split("/")][:-1]

    def is_within(self, other: "Unit") -> bool:
        """True when self is other or lies below it."""
        return self.path.startswith(other.path)

    def ancestors(self) -> list["Unit"]:
        codes = self.ancestor_codes
        if not codes:
            return []
        units = db.session.scalars(select(Unit).where(Unit.code.in_(codes))).all()
        by_code = {u.code: u for u in units}
        return [by_code[c] for c in codes if c in by_code]

    @classmethod
    def subtree_clause(cls, root: "Unit"):
        return cls.path.startswith(root.path, autoescape=True)

    @classmethod
    def by_code(cls, code: str) -> Optional["Unit"]:
        return db.session.scalar(select(cls).where(cls.code == code))


class Department(db.Model):
    """The catalogue of member departments; the same at every tier."""

    __tablename__ = "departments"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(default=0)
    #: The default agency name at a unit, ``{unit}`` standing for the unit's name: "{unit}教育局",
    #: "中共{unit}委宣传部". See :func:`default_agency_name` for the province and the streets.
    agency_template: Mapped[str] = mapped_column(String(64), default="")

    def default_agency_name(self, unit: "Unit") -> str:
        return default_agency_name(self, unit)

    @property
    def name(self) -> str:
        locale = get_locale()
        if locale is not None and locale.language == "en":
            return self.name_en
        return self.name_zh

    @classmethod
    def all(cls) -> list["Department"]:
        """The catalogue in its order (read once per request: pages name departments in several places)."""
        from flask import g, has_request_context

        if not has_request_context():
            return list(db.session.scalars(select(cls).order_by(cls.position)))
        if g.get("_departments") is None:
            g._departments = list(db.session.scalars(select(cls).order_by(cls.position)))
        return list(g._departments)


def default_agency_name(department: Department, unit: Unit) -> str:
    """The agency that is ``department`` at ``unit`` when the unit's office has not named it:
    金水区教育局, 中共金水区委宣传部, 河南省教育厅 (a province has 厅 where the lower tiers have 局),
    经八路街道教育办 (a street has offices, not bureaus) and 中共经八路街道党工委宣传部."""
    template = department.agency_template or "{unit}" + department.name_zh
    if unit.tier == "province" and template.endswith("局"):
        template = template[:-1] + "厅"
    elif unit.tier == "street":
        if template.endswith("局"):
            template = "{unit}" + department.name_zh + "办"
        template = template.replace("{unit}委", "{unit}党工委")
    return template.replace("{unit}", unit.name)


class DepartmentAgency(db.Model):
    """The name of a member department's agency at one unit (金水区教育局), as its office set it."""

    __tablename__ = "department_agencies"
    __table_args__ = (UniqueConstraint("unit_id", "department_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    name: Mapped[str] = mapped_column(String(100))


def agency_names(unit: Unit) -> dict[str, str]:
    """Every member department's agency name at ``unit``: the office's own names over the defaults."""
    return agency_names_of([unit])[unit.id]


def agency_names_of(units: list[Unit], departments: Optional[list[Department]] = None) -> dict[int, dict[str, str]]:
    """:func:`agency_names` of many units at once, ``{unit id: {code: name}}``: one query for the
    offices' own names of up to 500 units (a list or an export naming departments at many units)."""
    departments = departments if departments is not None else Department.all()
    names = {unit.id: {d.code: default_agency_name(d, unit) for d in departments} for unit in units}
    ids = list(names)
    for start in range(0, len(ids), 500):
        for unit_id, code, name in db.session.execute(
                select(DepartmentAgency.unit_id, DepartmentAgency.department_code, DepartmentAgency.name)
                .where(DepartmentAgency.unit_id.in_(ids[start:start + 500]))).tuples():
            names[unit_id][code] = name
    return names
