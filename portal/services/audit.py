"""Writing the audit trail."""
from __future__ import annotations

from typing import Any, Optional

from portal.extensions import db
from portal.models import AuditLog, Unit, User


def record(action: str, obj: Any = None, *, by: Optional[User], unit: Optional[Unit] = None,
           object_type: Optional[str] = None, object_id: Any = None, **details: Any) -> AuditLog:
    if obj is not None:
        object_type = object_type or obj.__tablename__
        object_id = object_id if object_id is not None else getattr(obj, "id", None)
    entry = AuditLog(
        actor_id=by.id if by is not None else None,
        unit_id=unit.id if unit is not None else None,
        action=action,
        object_type=object_type or "",
        object_id=str(object_id) if object_id is not None else None,
        details=details,
    )
    db.session.add(entry)
    return entry
