"""The notification centre: list, mark read, mark all read."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import access
from portal.blueprints.auth.forms import ConfirmForm
from portal.blueprints.auth.routes import _safe_next
from portal.extensions import db
from portal.models import Notification
from portal.pagination import paginate
from portal.services.notifications import mark_all_read, mark_read, render

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.before_request
@login_required
def require_login():
    return None


@bp.route("/")
def index():
    notes = paginate(select(Notification).where(Notification.user_id == current_user.id)
                     .order_by(Notification.created_at.desc(), Notification.id.desc()))
    # Notes about what the reader may no longer open (a membership revoked) keep neither text nor link.
    withheld = access.notifications_out_of_reach(current_user, notes.items)
    return render_template("notifications/index.html", notes=notes, render=render, form=ConfirmForm(),
                           withheld=withheld)


@bp.route("/<int:note_id>/read", methods=["POST"])
def read(note_id: int):
    note = db.session.scalar(select(Notification).where(Notification.id == note_id,
                                                        Notification.user_id == current_user.id))
    if note is None:
        abort(404)
    if ConfirmForm().validate_on_submit():
        mark_read(note, by=current_user)
        db.session.commit()
        if note.link and _safe_next(note.link) and not access.notifications_out_of_reach(current_user, [note]):
            return redirect(note.link)
    return redirect(url_for(".index"))


@bp.route("/read-all", methods=["POST"])
def read_all():
    if ConfirmForm().validate_on_submit():
        count = mark_all_read(current_user)
        db.session.commit()
        flash(_("%(n)d notifications marked as read.", n=count), "info")
    return redirect(url_for(".index"))
