from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal import access
from portal.blueprints.auth import bp
from portal.blueprints.auth.forms import ConfirmForm, LoginForm, PasswordChangeForm, PreferencesForm
from portal.extensions import client_address, db
from portal.models import ApiToken
from portal.ratelimits import login_limits, remember_browser
from portal.services import ServiceError
from portal.services.accounts import authenticate, change_password, set_locale
from portal.services.accounts import logout as logout_service
from portal.services.audit import record
from portal.services.tokens import revoke_token
from portal.workspace_urls import workspace_url


def safe_next(target: str | None) -> str | None:
    """``next=`` as a path on this site, or None.

    Only a plain absolute path is kept: no scheme, no host, no ``//`` or ``/\\``
    (browsers read a backslash as a slash), no control characters or spaces,
    nothing a browser would normalise into another host."""
    if not target or len(target) > 2000:
        return None
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    # Decoded once more, as a careless proxy or browser might: still a path here?
    decoded = unquote(target)
    if decoded.startswith("//") or "\\" in decoded or any(ord(c) < 0x20 for c in decoded):
        return None
    return target


_safe_next = safe_next  # the name the notification centre imports


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("auth.choose"))


@bp.route("/login", methods=["GET", "POST"])
@login_limits
def login():
    if current_user.is_authenticated:
        return redirect(url_for("auth.choose"))
    form = LoginForm()
    if form.validate_on_submit():
        # One answer, in about the same time, for an unknown name, a wrong
        # password and a deactivated account.
        user = authenticate(form.username.data, form.password.data)
        if user is not None:
            session.clear()
            login_user(user)
            session.permanent = True
            record("user.login", user, by=user)
            db.session.commit()
            response = redirect(safe_next(request.args.get("next")) or url_for("auth.choose"))
            return remember_browser(response, user.username)
        form.password.errors.append(_("Wrong user name or password."))
        record("user.login_failed", None, by=None, object_type="users",
               username=form.username.data[:64], address=client_address())
        db.session.commit()
        return render_template("auth/login.html", form=form), 200
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    form = ConfirmForm()
    if form.validate_on_submit():
        # Ends the session on the server too: a copy of the cookie no longer works.
        logout_service(current_user._get_current_object())
        db.session.commit()
        logout_user()
        session.clear()
        flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/choose")
@login_required
def choose():
    """After login: straight to the only workspace, or a chooser for several."""
    units = access.landing_units(current_user)
    if len(units) == 1:
        return redirect(workspace_url(units[0]))
    return render_template("auth/choose.html", units=units, memberships=access.memberships_of(current_user))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = PreferencesForm(locale=current_user.locale or current_app.config["BABEL_DEFAULT_LOCALE"])
    if form.validate_on_submit():
        set_locale(current_user, form.locale.data)
        session["lang"] = form.locale.data
        db.session.commit()
        flash(_("Your preferences are saved."), "success")
        return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, memberships=access.memberships_of(current_user))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            change_password(current_user, form.current_password.data, form.new_password.data)
        except ServiceError as exc:
            getattr(form, exc.field or "current_password").errors.append(exc.message)
        else:
            db.session.commit()
            # The session id embeds the new session key: this session goes on, the others end.
            login_user(current_user._get_current_object())
            flash(_("Your password is changed. Other sessions of this account are logged out and its API "
                    "tokens are revoked."), "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/password.html", form=form)


@bp.route("/account/tokens", methods=["GET"])
@login_required
def tokens():
    rows = db.session.scalars(select(ApiToken).where(ApiToken.user_id == current_user.id)
                              .order_by(ApiToken.created_at.desc()).limit(50)).all()
    return render_template("auth/tokens.html", tokens=rows, form=ConfirmForm())


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id: int):
    form = ConfirmForm()
    row = db.session.scalar(select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == current_user.id))
    if row is None:
        from flask import abort
        abort(404)
    if form.validate_on_submit():
        revoke_token(row, by=current_user)
        db.session.commit()
        flash(_("The token is revoked."), "success")
    return redirect(url_for("auth.tokens"))
