"""The all-or-nothing Excel upload page, shared by the task progress upload and
the activity register upload: read the sheet, check every row, save all of it
or nothing, and show the problems by row and column.

A page that passes ``background`` hands a sheet of more than ``IMPORT_INLINE_MAX_ROWS`` rows to
a job (:mod:`portal.services.file_jobs`) once it has been read: the same check and the same
all-or-nothing save run there, and the job's page shows the outcome."""
from __future__ import annotations

from typing import Callable, Optional

from flask import current_app, flash, redirect, render_template, request
from flask_babel import gettext as _

from portal.blueprints.auth.forms import ConfirmForm
from portal.extensions import db
from portal.services import ServiceError


def all_or_nothing_upload(*, read: Callable, apply: Callable, max_bytes: int, template: str,
                          refused: Callable[[int], str], done: Callable[[int], str], done_url: Callable[[], str],
                          background: Optional[Callable[[bytes, int, str], str]] = None,
                          declared_rows: Optional[Callable[[bytes], int]] = None):
    """The view's response. ``read(data)`` gives rows, ``apply(rows)`` a result with
    ``errors`` and ``applied``; ``refused(n)`` and ``done(n)`` word the outcome.
    ``background(data, rows, filename)``, for a sheet of more rows than ``IMPORT_INLINE_MAX_ROWS``
    (``rows`` None when the sheet was not read here),
    asks for the job that reads and applies it and returns the job's page (sent there after the
    commit). ``declared_rows(data)``, the rows the sheet says it has (header included), tells a
    large sheet before it is read (reading 10,000 rows takes seconds; the job reads them)."""
    form = ConfirmForm()
    errors, status = [], 200
    if request.method == "POST" and form.validate_on_submit():
        upload = request.files.get("file")
        if not upload or not upload.filename:
            flash(_("Choose the Excel file to upload."), "danger")
            status = 400
        else:
            try:
                data = upload.read(max_bytes)
                inline_max = current_app.config["IMPORT_INLINE_MAX_ROWS"]
                declared = declared_rows(data) - 1 if background is not None and declared_rows else 0
                rows = read(data) if declared <= inline_max else None
                if background is not None and (rows is None or len(rows) > inline_max):
                    # Not read here: the job counts the rows (the dimension includes title and header
                    # rows, and may include blank ones), so the page shows no total until it has.
                    page = background(data, None if rows is None else len(rows), upload.filename)
                    db.session.commit()
                    return redirect(page)
                result = apply(rows)
            except ServiceError as exc:
                db.session.rollback()
                flash(exc.message, "danger")
                status = 400
            else:
                if result.errors:
                    db.session.rollback()
                    errors, status = result.errors, 400
                    flash(refused(len(result.errors)), "danger")
                elif not result.applied:
                    flash(_("The sheet has no filled-in rows."), "warning")
                    status = 400
                else:
                    db.session.commit()
                    flash(done(result.applied), "success")
                    return redirect(done_url())
    return render_template(template, form=form, errors=errors), status
