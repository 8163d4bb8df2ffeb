"""Pagination of list pages: one helper, the same controls everywhere."""
from __future__ import annotations

from flask import current_app, request

from portal.extensions import db

#: No list is this long: a larger ``?page=`` is an empty page, never an offset the database refuses.
MAX_PAGE = 100_000


def page_number(value=None) -> int:
    """``?page=`` as a page number: junk and numbers below 1 are page 1, huge numbers an empty page."""
    raw = request.args.get("page") if value is None else value
    try:
        page = int(str(raw).strip()) if raw not in (None, "") else 1
    except ValueError:
        return 1
    return min(max(page, 1), MAX_PAGE)


def paginate(select_stmt, per_page: int | None = None):
    """Flask-SQLAlchemy pagination of a ``select()``, page from ``?page=``."""
    return db.paginate(select_stmt, page=page_number(), per_page=per_page or current_app.config["PAGE_SIZE"],
                       error_out=False, max_per_page=100)
