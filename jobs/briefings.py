"""The briefing (工作简报): build the Word document of a unit for a period and store it."""
from __future__ import annotations

from jobs import log, portal_job
from portal.extensions import db
from portal.models import Briefing
from portal.models._helpers import utcnow


@portal_job
def build_briefing(briefing_id: int) -> str:
    """Build and store the briefing's .docx; safe to run twice (a briefing done is left alone).
    Any failure leaves the briefing ``failed`` with the reason, for the page and the API to show."""
    from portal.exports.briefing import briefing_docx, content
    from portal.services.briefings import store_document

    briefing = db.session.get(Briefing, briefing_id)
    if briefing is None:
        return "gone"
    if briefing.state == "done" and briefing.stored_name:
        return "done"
    briefing.state, briefing.error, briefing.finished_at = "running", None, None
    db.session.commit()
    try:
        data = content(briefing)
        document = briefing_docx(briefing, data)
        stored_name = store_document(document)
    except Exception as exc:  # noqa: BLE001 - the briefing says it failed; the job itself ends
        db.session.rollback()
        log.exception("briefing %s failed", briefing_id)
        briefing = db.session.get(Briefing, briefing_id)
        briefing.state, briefing.finished_at = "failed", utcnow()
        briefing.error = f"{exc.__class__.__name__}: {exc}"[:500]
        db.session.commit()
        return "failed"
    briefing.stored_name, briefing.size, briefing.computed_at = stored_name, len(document), data["computed_at"]
    briefing.state, briefing.finished_at = "done", utcnow()
    db.session.commit()
    log.info("briefing %s of %s, %s: 第%d期 done", briefing_id, briefing.unit.code, briefing.period, briefing.number)
    return "done"
