"""The community education coordination portal: the application factory."""
from __future__ import annotations

import hmac
import logging
import os
from typing import Any, Optional

from flask import Flask, g, render_template, request, session
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from portal.config import Config
from portal.extensions import babel, csrf, db, limiter, login_manager, migrate


def select_locale() -> str:
    """?lang= (remembered in the session), then the user's preference, then Chinese."""
    from flask import current_app, has_request_context

    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI and jobs: PORTAL_LOCALE or the default
        return current_app.config.get("CLI_LOCALE") or current_app.config["BABEL_DEFAULT_LOCALE"]
    aliases = {"zh": "zh_Hans_CN", "zh_CN": "zh_Hans_CN", "zh-CN": "zh_Hans_CN", "zh-Hans-CN": "zh_Hans_CN"}
    asked = request.args.get("lang")
    if asked:
        asked = aliases.get(asked, asked)
        if asked in languages:
            session["lang"] = asked
    if session.get("lang") in languages:
        return session["lang"]
    if current_user and getattr(current_user, "is_authenticated", False) and current_user.locale in languages:
        return current_user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def create_app(config: Optional[dict[str, Any]] = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False,
                instance_path=os.environ.get("PORTAL_INSTANCE_PATH") or
                os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "instance"))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_object(Config(app.instance_path))
    if config:
        app.config.update(config)
    logging.basicConfig(level=logging.INFO)
    _check_secret_key(app)
    if app.config.get("TRUSTED_PROXIES"):
        # The client address (login throttling, audit) from X-Forwarded-For, as set
        # by that many trusted reverse proxies; the scheme from X-Forwarded-Proto.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    # Before any blueprint adds its rules: every <int:...> in a URL is a database id.
    app.url_map.converters["int"] = DatabaseIdConverter
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories="translations")
    limiter.init_app(app)
    from portal import figcache

    figcache.init_app(app)  # before any request thread: it adds the session listener that renews the epoch

    from portal import markdown, queue, uploads  # noqa: F401

    # queue and uploads add SQLAlchemy session listeners when imported: import them here,
    # before any request thread runs. Imported lazily by the first upload in a threaded
    # server, the listener list changed while another thread's commit walked it
    # ("deque mutated during iteration": a 500 after the commit, and its jobs not sent).
    markdown.init_app(app)
    from portal import args

    args.init_app(app)  # the input boundary: JSON depth and NaN refused, schema refusals answered
    _configure_login(app)
    _register_blueprints(app)
    _register_errors(app)
    _register_template_helpers(app)

    from portal.cli import register_cli

    register_cli(app)
    return app


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` in every route: a positive id within the database's integer
    range. Anything larger does not match the route, so it answers 404 instead of
    reaching PostgreSQL as an out-of-range value."""

    def __init__(self, map, fixed_digits=0, min=1, max=2**31 - 1, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


INSECURE_SECRET_KEYS = {"dev-only-insecure-secret-key", "change-me", "secret"}


def _check_secret_key(app: Flask) -> None:
    """Refuse to start without a secret key of our own: with a known key anyone can sign sessions."""
    key = app.config.get("SECRET_KEY")
    if not key or key in INSECURE_SECRET_KEYS:
        raise RuntimeError(
            "SECRET_KEY is not set (or is a well-known value): the portal does not start without one. "
            "Set SECRET_KEY to a long random value, e.g. "
            "python3 -c 'import secrets; print(secrets.token_hex(32))', or SECRET_KEY_FILE to a file holding it; "
            "`make demo` generates instance/secret_key. / 未设置 SECRET_KEY（或使用了公开的默认值），"
            "门户拒绝启动。请将 SECRET_KEY 设为足够长的随机值，或用 SECRET_KEY_FILE 指向保存它的文件。")


def _configure_login(app: Flask) -> None:
    from portal.services.notifications import load_with_unread

    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str):
        try:
            uid, stamp = user_id.split(":", 1)
            # One statement: the account, its memberships (with their units) and its unread count.
            user = load_with_unread(int(uid))
        except (ValueError, TypeError):
            return None
        # The session ends on the server side when the account's session key is
        # replaced (logout, password change or reset, deactivation).
        if user is None or not user.active or not hmac.compare_digest(user.session_key, stamp):
            return None
        return user


def _register_blueprints(app: Flask) -> None:
    from portal.blueprints.api import bp as api_bp
    from portal.blueprints.auth import bp as auth_bp
    from portal.blueprints.health import bp as health_bp
    from portal.blueprints.notifications import bp as notifications_bp
    from portal.blueprints.workspace import bp as workspace_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(workspace_bp)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def _register_errors(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

    from portal.blueprints.api import api_error

    messages = {
        400: lambda: _("The request could not be understood."),
        401: lambda: _("Please log in."),
        403: lambda: _("You are not allowed to do this here."),
        404: lambda: _("There is nothing here, or it is not yours to see."),
        405: lambda: _("This address does not accept that method."),
        409: lambda: _("Someone else changed this at the same moment. Reload the page, check, and try again."),
        429: lambda: _("Too many attempts. Please wait a few minutes and try again."),
        500: lambda: _("Something went wrong on our side. Nothing you sent was saved."),
    }

    def handler(code: int):
        def handle(error):
            if code == 500:
                db.session.rollback()
            message = messages[code]()
            # abort(403, reason) carries a translated reason of our own: show it instead.
            description = getattr(error, "description", None)
            if code in (403, 409) and description and description != type(error).description:
                message = description
            if _wants_json():
                return api_error(code, message)
            if code == 429 and request.endpoint == "auth.login":
                from portal.blueprints.auth.forms import LoginForm
                return render_template("auth/login.html", form=LoginForm(), limit_message=message), 429
            return render_template("errors/error.html", code=code, message=message), code
        return handle

    for code in messages:
        app.register_error_handler(code, handler(code))

    from sqlalchemy.orm.exc import StaleDataError

    @app.errorhandler(StaleDataError)
    def stale(error):
        db.session.rollback()
        return handler(409)(error)

    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    def database_unavailable(error):
        """The database went away (restart, failover, network): 503 with a retry hint, in the
        user's language, never a stack trace. The pool drops the dead connections itself and
        pre-ping (config) tests every connection it hands out, so the next request recovers."""
        app.logger.warning("database unavailable on %s %s: %s", request.method, request.path,
                           str(error).splitlines()[0][:300] if str(error) else error.__class__.__name__)
        user = g.get("_login_user")
        locale = getattr(user, "__dict__", {}).get("locale") if user is not None else None
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the pool discards it
            pass
        # The page must not touch the database again: render it for an anonymous visitor.
        g._login_user = login_manager.anonymous_user()
        from flask_babel import force_locale

        with force_locale(locale if locale in app.config["LANGUAGES"] else select_locale()):
            message = _("The portal cannot reach its database just now. Please try again in a few seconds.")
            if _wants_json():
                from flask import jsonify

                response = jsonify({"error": {"code": "service_unavailable", "message": message}})
                response.status_code = 503
            else:
                response = app.make_response((render_template("errors/error.html", code=503, message=message), 503))
        response.headers["Retry-After"] = str(app.config.get("RETRY_AFTER_SECONDS", 5))
        return response

    for exc_class in (OperationalError, InterfaceError, DisconnectionError):
        app.register_error_handler(exc_class, database_unavailable)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        message = _("The form expired or was not sent from this site. Please reload the page and try again.")
        return render_template("errors/error.html", code=400, message=message), 400


CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def _register_template_helpers(app: Flask) -> None:
    from portal import access
    from portal.formatting import format_date, format_datetime, format_local_datetime
    from portal.models import Role
    from portal.services.notifications import unread_count
    from portal.tiers import policy_for, tier_label
    from portal.workspace_urls import workspace_url

    @app.context_processor
    def inject() -> dict[str, Any]:
        from flask_babel import get_locale

        unread = 0
        if current_user.is_authenticated:
            unread = unread_count(current_user)
        return {
            "unread_notifications": unread,
            "current_locale": str(get_locale()),
            "access": access,
            "Permission": access.Permission,
            "Role": Role,
            "tier_label": tier_label,
            "policy_for": policy_for,
            "workspace_url": workspace_url,
        }

    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["datetime"] = format_datetime
    app.jinja_env.filters["datetime_local"] = format_local_datetime

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # Scripts only from our own files: an injected <script> or on*= handler does not run.
        response.headers.setdefault("Content-Security-Policy", CSP)
        if app.config.get("SESSION_COOKIE_SECURE"):
            # Served over HTTPS only: browsers never try plain HTTP again for a year.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.before_request
    def embedded_scheduler():
        # Started by the first request, so that CLI commands never start it.
        if not app.config.get("_scheduler_checked"):
            app.config["_scheduler_checked"] = True
            from portal.scheduler import start_embedded_scheduler

            start_embedded_scheduler(app)

    @app.teardown_request
    def teardown(exc):
        g.pop("_memberships", None)
        g.pop("_unread", None)
