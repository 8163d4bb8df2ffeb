"""The benchmark's SQL floor equals the stored figures on a tiny generated year, month-end history included."""
from __future__ import annotations

import re
from decimal import Decimal

from bench import floor
from bench.generate import generate
from portal import metrics
from portal.clock import local_today
from portal.extensions import db


def test_floor_equals_the_stored_figures_including_the_task_history(ctx):
    today = local_today()
    generate(scale=0.002, seed=7, today=today, log=lambda line: None)
    metrics.rebuild_all()
    _, figures = floor.run(db.session, today)
    stored = metrics.stored_values()

    check = floor.compare(figures, stored)
    assert check["differ"] == 0, check["examples"]

    # the month-end history is compared, not skipped: every task metric has past months in both
    month = re.compile(r"^\d{4}-\d{2}$")
    for metric in ("tasks.total", "tasks.open", "tasks.accepted", "tasks.overdue", "tasks.accepted_on_time",
                   "tasks.progress_weighted", "tasks.weight"):
        past = {k for k in figures if k[1] == metric and month.match(k[2])}
        assert past, metric
        assert past == {k for k in stored if k[1] == metric and month.match(k[2])
                        and stored[k] != (Decimal(0), Decimal(0))}
    months = {k[2] for k in figures if k[1] == "tasks.total" and month.match(k[2])}
    assert today.strftime("%Y-%m") not in months and len(months) >= 6

    # a history figure off by one is reported
    key = next(k for k in sorted(figures) if k[1] == "tasks.open" and month.match(k[2]))
    own, subtree = stored[key]
    altered = dict(stored)
    altered[key] = (own, subtree + 1)
    assert floor.compare(figures, altered)["differ"] == 1
    del altered[key]
    assert floor.compare(figures, altered)["differ"] == 1
