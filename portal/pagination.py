"""Pagination of list pages: one helper, the same controls everywhere."""
from __future__ import annotations

from flask import current_app, request

from sqlalchemy import func, literal_column, select

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


#: Lists count their rows up to this many; a longer list says "more than 10,000" (its rows are all there).
COUNT_CAP = 10_000


def capped_count(select_stmt, cap: int) -> int:
    """The number of rows of ``select_stmt``, counting no further than ``cap + 1``: a list of the
    province's 140,000 tasks reads 10,001 index entries, not every row."""
    inner = select_stmt.order_by(None)
    if not (inner._distinct or inner._group_by_clauses or inner._having_criteria):
        # Only whether a row is there: no column to carry (an index-only scan where one fits).
        inner = inner.with_only_columns(literal_column("1"), maintain_column_froms=True)
    return db.session.scalar(select(func.count()).select_from(inner.limit(cap + 1).subquery()))


def paginate(select_stmt, per_page: int | None = None, page: int | None = None, cap: int | None = None,
             max_per_page: int = 100):
    """Flask-SQLAlchemy pagination of a ``select()``, page from ``?page=``, with a capped count:
    ``total`` is exact up to the cap (or the rows up to the page after this one, if that is more)
    and ``capped`` says whether there are more rows than ``total``."""
    pagination = db.paginate(select_stmt, page=page or page_number(),
                             per_page=per_page or current_app.config["PAGE_SIZE"], error_out=False,
                             max_per_page=max_per_page, count=False)
    if 0 < len(pagination.items) < pagination.per_page or (pagination.page == 1 and not pagination.items):
        # A page that is not full is the last one: its rows tell the total, with no count.
        pagination.total = (pagination.page - 1) * pagination.per_page + len(pagination.items)
        pagination.capped = False
        return pagination
    cap = max(COUNT_CAP if cap is None else cap, (pagination.page + 1) * pagination.per_page)  # the pager always knows if a next page exists
    counted = capped_count(select_stmt, cap)
    pagination.total = min(counted, cap)
    pagination.capped = counted > cap
    return pagination
