"""The management network: units of every tier, and the department catalogue."""
from __future__ import annotations

from typing import Optional

from flask_babel import get_locale
from sqlalchemy import ForeignKey, String, select
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

    @property
    def name(self) -> str:
        locale = get_locale()
        if locale is not None and locale.language == "en":
            return self.name_en
        return self.name_zh

    @classmethod
    def all(cls) -> list["Department"]:
        return list(db.session.scalars(select(cls).order_by(cls.position)))
