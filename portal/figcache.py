"""A cache of what the pages read from the stored figures, valid for one *figures epoch*.

The consolidated views, the workspace home's figures and the API read the stored roll-ups
(``metric_values`` / ``metric_state``): a few indexed statements, but at the province they
read thousands of rows (the 18 cities' figures for a period, a year of months) and build
the same answer for every reader, many times a second at month end. Here that answer is
kept between requests.

Correctness does not depend on a time-to-live. The key of every entry carries the *epoch*:
a random token replaced after each commit that changed what the entries are built from,
i.e. every commit that marked units dirty (``metric_state``: the page then says
"updating…") or wrote figures (a refresh, the rebuild, a reconcile repair). The
transaction says so with :func:`changed`; the token is replaced after the commit, so no
reader can see the new token before the rows it stands for. A reader that took the old
token while the commit landed may store an answer under it: nobody asks for that token
again. The local date is in the key too (a period's "as of now" depends on it).

The store is Redis when ``REDIS_URL`` is set (shared by every web and worker process,
which replace the token there), a folder of the instance otherwise (the embedded
default: shared by the processes of one machine). ``FIGURES_CACHE=off`` turns it off.
The store failing never fails a page: the answer is then computed.

Only answers that do not depend on who reads are kept: the figures of given units
(which units a reader may see is decided per request, before), and counts over a whole
subtree for the readers of the whole subtree.
"""
from __future__ import annotations

import hashlib
import logging
import os
import uuid
from typing import Any, Callable, Iterable

from flask import current_app, g, has_request_context
from flask_caching import Cache
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

cache = Cache()

EPOCH_KEY = "figures-epoch"
_CHANGED = "portal.figures_changed"
#: How long an entry is kept at most (the epoch makes it right; this only bounds the store).
DEFAULT_SECONDS = 600


def init_app(app) -> None:
    # One store per database: two portals on one Redis (or one instance folder) never share entries.
    database = hashlib.sha1(str(app.config.get("SQLALCHEMY_DATABASE_URI")).encode()).hexdigest()[:12]
    config = {"CACHE_DEFAULT_TIMEOUT": app.config.get("FIGURES_CACHE_SECONDS", DEFAULT_SECONDS),
              "CACHE_KEY_PREFIX": f"portal:fig:{database}:"}
    setting = str(app.config.get("FIGURES_CACHE", "on")).lower()
    if setting in ("off", "0", "false", "no"):
        config["CACHE_TYPE"] = "NullCache"
    elif app.config.get("REDIS_URL"):
        config.update(CACHE_TYPE="RedisCache", CACHE_REDIS_URL=app.config["REDIS_URL"])
    else:
        config.update(CACHE_TYPE="FileSystemCache", CACHE_THRESHOLD=5000,
                      CACHE_DIR=app.config.get("FIGURES_CACHE_DIR")
                      or os.path.join(app.instance_path, "figures-cache", database))
    cache.init_app(app, config=config)
    app.extensions["figcache_on"] = config["CACHE_TYPE"] != "NullCache"


def enabled() -> bool:
    return bool(current_app.extensions.get("figcache_on"))


def changed(paths: Iterable[str] | None = None, session: Session | None = None) -> None:
    """The current transaction changes stored figures or dirty marks: new epochs after its commit,
    for the subtrees holding ``paths`` (units' paths: each unit and its ancestors), or for
    everything (``paths`` None: the rebuild, a reconcile, the units' import)."""
    if session is None:
        from portal.extensions import db

        session = db.session()
    marks = session.info.setdefault(_CHANGED, {"all": False, "codes": set()})
    if paths is None:
        marks["all"] = True
    else:
        for path in paths:
            marks["codes"].update(code for code in path.strip("/").split("/") if code)


def _changing() -> bool:
    """Whether this session's open transaction has changed figures: it reads its own rows."""
    from portal.extensions import db

    return bool(db.session().info.get(_CHANGED))


def _key(code: str | None) -> str:
    return EPOCH_KEY + (f":{code}" if code else "")


#: Epochs this process could not renew (the store did not answer after the commit): renewed before
#: this process reads or keeps anything again. Meanwhile readers elsewhere find the same store
#: down and compute; the refresh job, kept in the outbox, renews them too when it runs.
_OWED: set = set()


def _renew(codes: Iterable[str | None]) -> None:
    """New tokens for these epochs (None: the global one)."""
    codes = set(codes) | _OWED
    tokens = {_key(code): uuid.uuid4().hex for code in codes}
    try:
        cache.set_many(tokens, timeout=0)
        _OWED.difference_update(codes)
    except Exception as exc:  # noqa: BLE001 - the store down: readers compute
        _OWED.update(codes)
        log.warning("figures cache: the epochs were not replaced (%s)", exc)
    if has_request_context():
        g.pop("_figures_epochs", None)


def new_epoch() -> None:
    """Everything kept so far is forgotten (a new global epoch)."""
    _renew([None])


def epochs(codes: Iterable[str | None]) -> list[str] | None:
    """The tokens of the global epoch (None) and of the units' subtrees (read once per request);
    None when the store does not answer."""
    if _OWED:
        _renew(())
        if _OWED:
            return None
    codes = list(codes)
    known = g.setdefault("_figures_epochs", {}) if has_request_context() else {}
    missing = [c for c in dict.fromkeys(codes) if c not in known]
    if missing:
        try:
            found = cache.get_many(*[_key(c) for c in missing])
        except Exception as exc:  # noqa: BLE001
            log.warning("figures cache: no epoch (%s)", exc)
            return None
        fresh = {}
        for code, token in zip(missing, found):
            if token is None:  # never set, or evicted: a token of its own from now on
                token = fresh[_key(code)] = uuid.uuid4().hex
            known[code] = token
        if fresh:
            try:
                cache.set_many(fresh, timeout=0)
            except Exception as exc:  # noqa: BLE001
                log.warning("figures cache: no epoch (%s)", exc)
                return None
    return [known[c] for c in codes]


def remember(name: str, parts: Any, compute: Callable[[], Any], units: Iterable = ()) -> Any:
    """``compute()``'s answer for ``parts``, computed once per epoch of the global figures and of
    the subtrees of ``units`` (what it reads must lie within them)."""
    if not enabled() or _changing():
        return compute()
    tokens = epochs([None] + sorted({u.code for u in units}))
    if tokens is None:
        return compute()
    from portal.clock import local_today

    digest = hashlib.sha1(repr((parts, tokens, local_today().isoformat())).encode()).hexdigest()
    key = f"{name}:{digest}"
    try:
        found = cache.get(key)
    except Exception as exc:  # noqa: BLE001
        log.warning("figures cache: read failed (%s)", exc)
        return compute()
    if found is not None:
        return found[0]
    value = compute()
    try:
        cache.set(key, (value,))
    except Exception as exc:  # noqa: BLE001
        log.warning("figures cache: write failed (%s)", exc)
    return value


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    marks = session.info.pop(_CHANGED, None)
    if marks:
        try:
            enabled_here = enabled()
        except RuntimeError:  # no app context: nothing was cached through this app
            return
        if enabled_here:
            _renew([None] if marks["all"] else sorted(marks["codes"]))


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:  # a savepoint's rollback leaves the outer transaction's marks
        session.info.pop(_CHANGED, None)
