"""API tokens: issued on a correct password, stored hashed, revocable."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Optional

from flask import current_app
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import ApiToken, User
from portal.models._helpers import utcnow
from portal.services.audit import record


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(user: User) -> tuple[str, ApiToken]:
    """Return the clear token (shown once) and its stored row."""
    clear = secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=_digest(clear),
                   expires_at=utcnow() + timedelta(days=current_app.config["API_TOKEN_DAYS"]))
    db.session.add(row)
    db.session.flush()
    record("token.issue", row, by=user)
    return clear, row


def user_for_token(clear: str) -> Optional[tuple[User, ApiToken]]:
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(clear)))
    if row is None or not row.is_valid or not row.user.active:
        return None
    return row.user, row


def revoke_token(row: ApiToken, *, by: User) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record("token.revoke", row, by=by)
        db.session.flush()


def revoke_all_tokens(user: User, *, by: Optional[User]) -> int:
    """Revoke every token of ``user`` (password change or reset, deactivation)."""
    result = db.session.execute(update(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    count = result.rowcount or 0
    if count:
        record("token.revoke_all", user, by=by, username=user.username, count=count)
    return count
