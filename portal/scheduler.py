"""Scheduled work for the embedded default (no Redis): a daemon thread in the
web process runs the reminder sweep every few minutes, and the metrics reconcile
and daily refresh (:func:`run_metric_schedule`). With ``REDIS_URL`` the
RQ worker's scheduler does this instead (jobs/worker.py); the web process then
only runs the outbox sweep (jobs that could not reach Redis after their commit,
portal/queue.py) every minute, so they go out once Redis is back even if the
worker is busy or waiting for Redis itself."""
from __future__ import annotations

import logging
import threading
from datetime import datetime, time

from flask import Flask

log = logging.getLogger(__name__)
_started = False
_lock = threading.Lock()


#: The first sweep waits this long after the first request, so that the first person to log in
#: after a start does not wait behind the start-up reconcile.
FIRST_SWEEP_AFTER = 60


def start_embedded_scheduler(app: Flask, every_seconds: int = 600, first_after: int = FIRST_SWEEP_AFTER) -> bool:
    global _started
    if app.config.get("TESTING") or not app.config.get("EMBEDDED_SCHEDULER", True):
        return False
    if app.config.get("REDIS_URL"):
        return start_outbox_sweeper(app)
    with _lock:
        if _started:
            return False
        _started = True

    def loop() -> None:
        stop = threading.Event()
        if not stop.wait(first_after):
            run_sweep(app)
        while not stop.wait(every_seconds):
            run_sweep(app)

    threading.Thread(target=loop, name="portal-embedded-scheduler", daemon=True).start()
    log.info("embedded scheduler: reminder sweep every %d s, the first in %d s", every_seconds, first_after)
    return True


def run_sweep(app: Flask) -> None:
    from portal.extensions import db

    with app.app_context():
        try:
            from jobs.meetings import send_reminders

            send_reminders()
        except Exception:  # noqa: BLE001 - a failed sweep is logged and retried next time
            log.exception("reminder sweep failed")
            db.session.rollback()
        finally:
            db.session.remove()
    run_metric_schedule(app)


_daily_done_for = None


def run_metric_schedule(app: Flask) -> None:
    """Without Redis: the metrics reconcile (when the last one is older than its interval) and,
    once a day just after midnight Beijing time, the refresh of the figures that change with
    the date alone."""
    global _daily_done_for
    from portal.extensions import db

    with app.app_context():
        try:
            from jobs.metrics import DAILY_AFTER_MIDNIGHT, RECONCILE_EVERY, daily_overdue, reconcile
            from portal.clock import local_now
            from portal.metrics import last_reconcile
            from portal.models._helpers import utcnow

            now = local_now()
            if _daily_done_for != now.date() and now - datetime.combine(now.date(), time()) >= DAILY_AFTER_MIDNIGHT:
                daily_overdue()
                _daily_done_for = now.date()
            last = last_reconcile()
            if last is None or utcnow() - last.at >= RECONCILE_EVERY:
                reconcile()
        except Exception:  # noqa: BLE001 - logged; the next sweep tries again
            log.exception("metrics schedule failed")
            db.session.rollback()
        finally:
            db.session.remove()


_sweeper_started = False


def start_outbox_sweeper(app: Flask, every_seconds: int = 60) -> bool:
    """With Redis: re-send the job outbox from the web process every minute."""
    global _sweeper_started
    with _lock:
        if _sweeper_started:
            return False
        _sweeper_started = True

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(every_seconds):
            try:
                from portal.queue import resend_outbox

                resend_outbox(app)
            except Exception:  # noqa: BLE001 - logged and tried again next time
                log.exception("outbox sweep failed")

    threading.Thread(target=loop, name="portal-outbox-sweeper", daemon=True).start()
    log.info("outbox sweep every %d s", every_seconds)
    return True
