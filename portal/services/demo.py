"""The demo seed: Henan, and accounts for the provincial office, Zhengzhou,
Jinshui and Zhongyuan districts and their streets. Idempotent."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.extensions import db
from portal.models import Department, Membership, Role, Unit, User
from portal.services.units import ImportReport, import_units, load_file

LIAISON_UNITS = ("41", "4101", "410105", "410105001", "410105002")
STREETS_OF = ("410105", "410102")


@dataclass
class SeedResult:
    report: ImportReport
    created: list[str] = field(default_factory=list)
    existing: int = 0


def _office_units() -> list[Unit]:
    province = Unit.by_code("41")
    zhengzhou = Unit.by_code("4101")
    cities = db.session.scalars(select(Unit).where(Unit.parent_id == province.id).order_by(Unit.code)).all()
    districts = db.session.scalars(select(Unit).where(Unit.parent_id == zhengzhou.id).order_by(Unit.code)).all()
    parents = [Unit.by_code(code).id for code in STREETS_OF]
    streets = db.session.scalars(select(Unit).where(Unit.parent_id.in_(parents)).order_by(Unit.code)).all()
    return [province, *cities, *districts, *streets]


def seed_demo(divisions_path: str, *, password: str) -> SeedResult:
    result = SeedResult(report=import_units(load_file(divisions_path)))
    db.session.flush()
    # One hash for every demo account: the seed stays fast, and these are demo
    # accounts whose password is printed anyway.
    password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])
    existing = set(db.session.scalars(select(User.username)))

    def ensure(username: str, display: str, unit: Unit, role: Role, dept: str | None = None) -> None:
        if username in existing:
            result.existing += 1
            return
        user = User(username=username, display_name=display, home_unit_id=unit.id, active=True,
                    password_hash=password_hash)
        db.session.add(user)
        db.session.flush()
        db.session.add(Membership(user_id=user.id, unit_id=unit.id, role=role.value, department_code=dept))
        existing.add(username)
        result.created.append(username)

    for unit in _office_units():
        ensure(f"office-{unit.code}", f"{unit.name}社区教育办公室", unit, Role.OFFICE_ADMIN, None)
    departments = Department.all()
    for code in LIAISON_UNITS:
        unit = Unit.by_code(code)
        for dept in departments:
            ensure(f"{dept.code}-{unit.code}", f"{unit.name}{dept.name_zh}联络员", unit, Role.LIAISON, dept.code)
    ensure("viewer-41", "河南省领导（只读）", Unit.by_code("41"), Role.VIEWER, None)
    db.session.flush()
    return result
