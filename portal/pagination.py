"""Pagination of list pages: one helper, the same controls everywhere."""
from __future__ import annotations

from flask import current_app, request

from portal.extensions import db


def paginate(select_stmt, per_page: int | None = None):
    """Flask-SQLAlchemy pagination of a ``select()``, page from ``?page=``."""
    return db.paginate(select_stmt, page=request.args.get("page", 1, type=int),
                       per_page=per_page or current_app.config["PAGE_SIZE"], error_out=False, max_per_page=100)
