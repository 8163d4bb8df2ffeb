"""Building workspace URLs outside the workspace blueprint (jobs, other blueprints)."""
from __future__ import annotations

from flask import has_request_context, url_for

from portal.models import Unit


def workspace_url(unit: Unit, endpoint: str = "workspace.home", **values) -> str:
    """A site-relative URL; outside a request (jobs) only the home page path is built."""
    if has_request_context():
        return url_for(endpoint, tier=unit.tier, code=unit.code, **values)
    return f"/{unit.tier}/{unit.code}/"
