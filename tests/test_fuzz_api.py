"""Schemathesis against /api/v1/openapi.json, in-process (the WSGI app), on whatever
backend the suite runs on: every operation, as an office, a liaison and a viewer,
with data that fits the description and data that does not.

Checks: no 5xx (with TESTING the app re-raises, so a server error is an exception
here), every response matches its declared schema, and no status the operation
does not declare. ``SCHEMATHESIS_EXAMPLES`` (default 25) examples per operation and
account; ``make fuzz`` runs many more. ``SCHEMATHESIS_RANDOM=1`` draws new examples
instead of the reproducible default.
"""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from portal.extensions import db
from tests.conftest import api_token

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
RANDOM = os.environ.get("SCHEMATHESIS_RANDOM") == "1"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
ACCOUNTS = {"office": "office-410105", "liaison": "edu-410105", "viewer": "viewer-41"}


@pytest.fixture
def seeded(client, people, run_in_app):
    """A district with a meeting open for proposals and a task passed down to its streets, so that
    generated ids sometimes name real objects; a token per account kind."""
    from portal.models import Unit, User
    from portal.services import meetings as meetings_svc
    from portal.services import tasks as tasks_svc

    def make():
        office = db.session.get(User, people["office-410105"].id)
        unit = db.session.get(Unit, office.home_unit_id)
        meeting = meetings_svc.create_meeting(unit, {
            "title": "季度联席会议", "starts_at": datetime.now() + timedelta(days=7),
            "invited_departments": ["edu", "civil"]}, by=office)
        meetings_svc.transition(meeting, "agenda_open", by=office)
        task = tasks_svc.create_task(unit, {"title": "社区老年教育", "lead_department": "edu",
                                            "due_date": date.today() + timedelta(days=60)}, by=office)
        run = tasks_svc.cascade_task(task, "children", by=office)
        return {"meeting_id": meeting.id, "task_id": task.id, "run_id": run.id}

    ids = run_in_app(make)
    ids["headers"] = {kind: api_token(client, name) for kind, name in ACCOUNTS.items()}
    ids["code"] = "410105"
    return ids


def _real_ids(case, seeded) -> None:
    """Point the path at the seeded objects (half of the examples)."""
    for name in ("meeting_id", "task_id", "run_id", "code"):
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = seeded[name]


def _fresh_token(app, username: str) -> dict:
    """For DELETE /tokens/current: a token of its own, so that the account's stays valid."""
    from portal.models import User
    from portal.services.tokens import issue_token

    with app.app_context():
        user = User.by_username(username)
        clear, _row = issue_token(user)
        db.session.commit()
        db.session.remove()
    return {"Authorization": "Bearer " + clear}


@pytest.mark.parametrize("kind", list(ACCOUNTS))
def test_every_operation_survives_fuzzing(app, seeded, kind):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17, [op.label for op in operations]
    failures: list[str] = []
    examples = 0
    statuses: dict[int, int] = {}

    for op in operations:
        strategies = [op.as_strategy(generation_mode=GenerationMode.POSITIVE)]
        if op.body or op.query or op.path_parameters:
            strategies.append(op.as_strategy(generation_mode=GenerationMode.NEGATIVE))

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=st.one_of(strategies), real=st.booleans())
        def run(case, real):
            nonlocal examples
            examples += 1
            if real:
                _real_ids(case, seeded)
            headers = seeded["headers"][kind]
            if op.method.upper() == "DELETE" and op.path == "/api/v1/tokens/current":
                headers = _fresh_token(app, ACCOUNTS[kind])
            try:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            except Exception as exc:  # noqa: BLE001 - collected, reported together below
                if len(failures) < 20:
                    failures.append(f"{op.method.upper()} {op.path}: {type(exc).__name__}: {str(exc)[:1500]}")

        run()
    print(f"\nschemathesis {kind}: {len(operations)} operations, {examples} examples, {len(failures)} failures; "
          f"statuses {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures)
    assert examples >= len(operations) * min(EXAMPLES, 5)
