"""Scheduled work for the embedded default (no Redis): a daemon thread in the
web process runs the reminder sweep every few minutes. With ``REDIS_URL`` the
RQ worker's scheduler does this instead (jobs/worker.py), and this thread is
not started."""
from __future__ import annotations

import logging
import threading

from flask import Flask

log = logging.getLogger(__name__)
_started = False
_lock = threading.Lock()


def start_embedded_scheduler(app: Flask, every_seconds: int = 600) -> bool:
    global _started
    if app.config.get("REDIS_URL") or app.config.get("TESTING") or not app.config.get("EMBEDDED_SCHEDULER", True):
        return False
    with _lock:
        if _started:
            return False
        _started = True

    def loop() -> None:
        stop = threading.Event()
        run_sweep(app)
        while not stop.wait(every_seconds):
            run_sweep(app)

    threading.Thread(target=loop, name="portal-embedded-scheduler", daemon=True).start()
    log.info("embedded scheduler: reminder sweep every %d s", every_seconds)
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
