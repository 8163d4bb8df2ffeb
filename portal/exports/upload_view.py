"""The all-or-nothing Excel upload page, shared by the task progress upload and
the activity register upload: read the sheet, check every row, save all of it
or nothing, and show the problems by row and column."""
from __future__ import annotations

from typing import Callable

from flask import flash, redirect, render_template, request
from flask_babel import gettext as _

from portal.blueprints.auth.forms import ConfirmForm
from portal.extensions import db
from portal.services import ServiceError


def all_or_nothing_upload(*, read: Callable, apply: Callable, max_bytes: int, template: str,
                          refused: Callable[[int], str], done: Callable[[int], str], done_url: Callable[[], str]):
    """The view's response. ``read(data)`` gives rows, ``apply(rows)`` a result with
    ``errors`` and ``applied``; ``refused(n)`` and ``done(n)`` word the outcome."""
    form = ConfirmForm()
    errors, status = [], 200
    if request.method == "POST" and form.validate_on_submit():
        upload = request.files.get("file")
        if not upload or not upload.filename:
            flash(_("Choose the Excel file to upload."), "danger")
            status = 400
        else:
            try:
                result = apply(read(upload.read(max_bytes)))
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
