from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import access
from portal.blueprints.accounts import bp
from portal.blueprints.accounts.forms import MembershipForm, PasswordResetForm, UserCreateForm
from portal.blueprints.auth.forms import ConfirmForm
from portal.extensions import db
from portal.models import AuditLog, Unit, User
from portal.pagination import paginate
from portal.services import ServiceError
from portal.services.accounts import (create_user, grant_membership, reset_password, revoke_membership,
                                      set_active)


def _user_or_404(user_id: int) -> User:
    """A user is reachable from a workspace only if administered or seated in its subtree."""
    user = db.session.scalar(select(User).where(User.id == user_id, User.in_subtree_clause(g.unit)))
    if user is None:
        abort(404)
    return user


def _target_unit(code: str) -> Unit:
    unit = Unit.by_code((code or "").strip())
    if unit is None or not unit.is_within(g.unit):
        raise ServiceError(_("No unit %(code)s below %(unit)s.", code=code, unit=g.unit.name), "unit_code")
    return unit


def _form_error(form, exc: ServiceError) -> None:
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = list(field.errors) + [exc.message]
    else:
        flash(exc.message, "danger")


@bp.route("/")
def index():
    q = (request.args.get("q") or "").strip()[:64]
    stmt = select(User).where(User.in_subtree_clause(g.unit))
    if q:
        stmt = stmt.where(User.username.contains(q, autoescape=True) |
                          User.display_name.contains(q, autoescape=True))
    users = paginate(stmt.options(selectinload(User.memberships)).order_by(User.username))
    return render_template("accounts/index.html", users=users, q=q)


@bp.route("/new", methods=["GET", "POST"])
def create():
    form = UserCreateForm(unit_code=g.unit.code)
    if form.validate_on_submit():
        try:
            unit = _target_unit(form.unit_code.data)
            user = create_user(username=form.username.data, display_name=form.display_name.data,
                               password=form.password.data, home_unit=unit, by=current_user)
            grant_membership(user, unit, form.role.data, form.department.data, by=current_user)
        except ServiceError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            db.session.commit()
            flash(_("Account %(name)s created.", name=user.username), "success")
            return redirect(url_for(".detail", user_id=user.id))
    return render_template("accounts/new.html", form=form)


@bp.route("/<int:user_id>")
def detail(user_id: int):
    user = _user_or_404(user_id)
    return render_template("accounts/detail.html", user=user,
                           grant_form=MembershipForm(unit_code=g.unit.code), password_form=PasswordResetForm(),
                           confirm_form=ConfirmForm(),
                           can_manage=access.can_manage_user(current_user, user))


@bp.route("/<int:user_id>/memberships", methods=["POST"])
def grant(user_id: int):
    user = _user_or_404(user_id)
    form = MembershipForm()
    if form.validate_on_submit():
        try:
            grant_membership(user, _target_unit(form.unit_code.data), form.role.data, form.department.data,
                             by=current_user)
        except ServiceError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            db.session.commit()
            flash(_("Role granted. %(name)s will be notified.", name=user.display_name), "success")
            return redirect(url_for(".detail", user_id=user.id))
    return render_template("accounts/detail.html", user=user, grant_form=form,
                           password_form=PasswordResetForm(), confirm_form=ConfirmForm(),
                           can_manage=access.can_manage_user(current_user, user)), 400


@bp.route("/<int:user_id>/memberships/<int:membership_id>/revoke", methods=["GET", "POST"])
def revoke(user_id: int, membership_id: int):
    user = _user_or_404(user_id)
    membership = next((m for m in user.memberships if m.id == membership_id), None)
    if membership is None or not membership.unit.is_within(g.unit):
        abort(404)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            revoke_membership(membership, by=current_user)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("Role revoked."), "success")
        return redirect(url_for(".detail", user_id=user.id))
    return render_template("confirm.html", form=form, back_url=url_for(".detail", user_id=user.id),
                           question=_("Revoke the role “%(role)s” at %(unit)s from %(name)s?",
                                      role=membership.role_enum.label, unit=membership.unit.name,
                                      name=user.display_name))


@bp.route("/<int:user_id>/<any(deactivate, activate):action>", methods=["GET", "POST"])
def activation(user_id: int, action: str):
    user = _user_or_404(user_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            set_active(user, action == "activate", by=current_user)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("Account %(name)s activated.", name=user.username) if action == "activate"
                  else _("Account %(name)s deactivated. It can no longer log in.", name=user.username), "success")
        return redirect(url_for(".detail", user_id=user.id))
    question = (_("Activate the account %(name)s?", name=user.username) if action == "activate" else
                _("Deactivate the account %(name)s? It will no longer be able to log in, and its API tokens "
                  "are revoked.", name=user.username))
    return render_template("confirm.html", form=form, back_url=url_for(".detail", user_id=user.id),
                           question=question)


@bp.route("/<int:user_id>/password", methods=["POST"])
def password(user_id: int):
    user = _user_or_404(user_id)
    form = PasswordResetForm()
    if form.validate_on_submit():
        try:
            reset_password(user, form.new_password.data, by=current_user)
        except ServiceError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("The password of %(name)s is reset.", name=user.username), "success")
    else:
        for error in form.new_password.errors:
            flash(error, "danger")
    return redirect(url_for(".detail", user_id=user.id))


@bp.route("/audit")
def audit():
    """Who changed what in this unit and below."""
    stmt = (select(AuditLog).join(Unit, Unit.id == AuditLog.unit_id)
            .where(Unit.subtree_clause(g.unit)).order_by(AuditLog.at.desc(), AuditLog.id.desc()))
    return render_template("accounts/audit.html", entries=paginate(stmt))
