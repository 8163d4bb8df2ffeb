"""Account management of a unit and everything below it (office admins only)."""
from flask import Blueprint, g
from flask_login import current_user

from portal import access

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


@bp.before_request
def require_admin():
    access.require(current_user, access.Permission.MANAGE_ACCOUNTS, g.unit)


from portal.blueprints.accounts import routes  # noqa: E402,F401
