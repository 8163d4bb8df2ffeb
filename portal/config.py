"""Configuration read from the environment.

The embedded default (no variables set) runs on a SQLite file in ``instance/``
with jobs in-process; ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL
and an RQ worker.
"""
from __future__ import annotations

import os
from datetime import timedelta


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _database_url(instance_path: str) -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "portal.sqlite3")
    # Heroku-style URLs and bare postgresql:// go through psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _read_secret(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    except FileNotFoundError:
        return None


#: How long a SQLite write waits for another writer before giving up.
SQLITE_BUSY_SECONDS = 30


class Config:
    """Built per app so that tests can set the environment first."""

    def __init__(self, instance_path: str):
        # No built-in key: SECRET_KEY, or a file named by SECRET_KEY_FILE (make demo
        # generates instance/secret_key once). create_app refuses to start without one.
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or _read_secret(os.environ.get("SECRET_KEY_FILE"))
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted.
        self.TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0") or 0)
        # Bearer token that shows monitors the detailed part of /healthz.
        self.HEALTHZ_TOKEN = os.environ.get("HEALTHZ_TOKEN") or None
        self.SQLALCHEMY_DATABASE_URI = _database_url(instance_path)
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            # One writer at a time: a write that meets another (the embedded scheduler's reconcile,
            # seconds long) waits for it up to 30 s instead of failing after sqlite3's default 5 s.
            self.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] = {"timeout": SQLITE_BUSY_SECONDS}
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            # PostgreSQL's JIT compiles any statement the planner costs high, and the portal's
            # subtree lists and roll-ups are costed high on estimates: compiling took longer than
            # running them (6.1 of 8.3 s of a roll-up statement; a list page 0.24 -> 0.08 s).
            # PORTAL_PG_JIT=on keeps the server's setting.
            if (os.environ.get("PORTAL_PG_JIT") or "off").lower() != "on":
                self.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] = {"options": "-c jit=off"}
        self.REDIS_URL = os.environ.get("REDIS_URL") or None
        self.RQ_QUEUE = os.environ.get("RQ_QUEUE", "portal")
        # The figures cache (portal/figcache.py): Redis with REDIS_URL, the instance folder otherwise.
        self.FIGURES_CACHE = os.environ.get("FIGURES_CACHE", "on")
        self.FIGURES_CACHE_SECONDS = int(os.environ.get("FIGURES_CACHE_SECONDS", "600"))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE")
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.PERMANENT_SESSION_LIFETIME = timedelta(hours=int(os.environ.get("SESSION_HOURS", "12")))
        self.WTF_CSRF_TIME_LIMIT = None  # tied to the session instead
        self.BABEL_DEFAULT_LOCALE = "zh_Hans_CN"
        self.BABEL_DEFAULT_TIMEZONE = os.environ.get("PORTAL_TIMEZONE", "Asia/Shanghai")
        self.LANGUAGES = ("zh_Hans_CN", "en")
        self.CLI_LOCALE = os.environ.get("PORTAL_LOCALE")
        # Login throttling: per account and per client address.
        self.LOGIN_LIMIT_ACCOUNT = os.environ.get("LOGIN_LIMIT_ACCOUNT", "5 per 15 minutes")
        self.LOGIN_LIMIT_ADDRESS = os.environ.get("LOGIN_LIMIT_ADDRESS", "30 per 15 minutes")
        self.RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or self.REDIS_URL or "memory://"
        self.RATELIMIT_HEADERS_ENABLED = False
        # Redis down must not lock everybody out: the limits fall back to per-process
        # memory until the storage answers again (and any other storage error lets the
        # request through rather than answering 500).
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        self.RATELIMIT_SWALLOW_ERRORS = True
        self.API_TOKEN_DAYS = int(os.environ.get("API_TOKEN_DAYS", "30"))
        self.PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "20"))
        self.DEMO_PASSWORD = os.environ.get("PORTAL_DEMO_PASSWORD", "portal-demo-2026")
        self.UPLOAD_MAX_BYTES = int(float(os.environ.get("UPLOAD_MAX_MB", "20")) * 1024 * 1024)
        self.UPLOAD_FOLDER = os.environ.get("UPLOAD_FOLDER") or os.path.join(instance_path, "uploads")
        # Requests may carry one upload and a form around it; larger ones are cut off early.
        self.MAX_CONTENT_LENGTH = self.UPLOAD_MAX_BYTES + 1024 * 1024
        # Larger Excel downloads and uploads than these are done by a job with a progress page
        # (portal.services.file_jobs): a task list of more rows, a register upload of more rows.
        self.EXPORT_INLINE_MAX_ROWS = int(os.environ.get("EXPORT_INLINE_MAX_ROWS", "2000"))
        self.IMPORT_INLINE_MAX_ROWS = int(os.environ.get("IMPORT_INLINE_MAX_ROWS", "500"))
        self.EMBEDDED_SCHEDULER = _bool("EMBEDDED_SCHEDULER", True)
        self.PASSWORD_HASH_METHOD = os.environ.get("PASSWORD_HASH_METHOD", "scrypt")
        self.TESTING = False
