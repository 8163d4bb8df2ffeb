"""Login, logout, the workspace chooser, password change, preferences and API tokens."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from portal.blueprints.auth import routes  # noqa: E402,F401
