"""Importing the management network: idempotence, rename, move, refusals with nothing half-imported."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Unit

SMALL = {"units": [
    {"code": "41", "name": "河南省", "tier": "province", "parent": None},
    {"code": "4101", "name": "郑州市", "tier": "city", "parent": "41"},
    {"code": "410105", "name": "金水区", "tier": "district", "parent": "4101"},
    {"code": "410105001", "name": "经八路街道", "tier": "street", "parent": "410105"},
    {"code": "410105002", "name": "花园路街道", "tier": "street", "parent": "410105"},
]}


def _write(tmp_path, data, name="units.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def _run(app, *args):
    return app.test_cli_runner().invoke(args=["units", "import", *args])


def _units(app):
    with app.app_context():
        return {u.code: (u.name, u.tier, u.path) for u in db.session.scalars(select(Unit))}


def test_import_then_second_run_changes_nothing(app, tmp_path, monkeypatch):
    path = _write(tmp_path, SMALL)
    first = _run(app, path)
    assert first.exit_code == 0, first.output
    assert "街道（乡镇）：新增2个" in first.output  # counts per tier, in Chinese by default
    assert _units(app)["410105001"] == ("经八路街道", "street", "/41/4101/410105/410105001/")
    monkeypatch.setitem(app.config, "CLI_LOCALE", "en")
    second = _run(app, path)
    assert second.exit_code == 0
    assert "Nothing to change" in second.output
    assert len(_units(app)) == 5


def test_rename_is_updated_and_nothing_is_deleted(app, tmp_path):
    _run(app, _write(tmp_path, SMALL))
    renamed = {"units": [dict(u) for u in SMALL["units"][:4]]}
    renamed["units"][3]["name"] = "经八路街道办事处"
    result = _run(app, _write(tmp_path, renamed, "renamed.json"))
    assert result.exit_code == 0, result.output
    units = _units(app)
    assert units["410105001"][0] == "经八路街道办事处"
    assert "410105002" in units  # absent from the file, still there


def test_moved_unit_takes_its_subtree_along(app, tmp_path):
    data = {"units": SMALL["units"] + [{"code": "4102", "name": "开封市", "tier": "city", "parent": "41"}]}
    _run(app, _write(tmp_path, data))
    moved = json.loads(json.dumps(data))
    moved["units"][2]["parent"] = "4102"
    assert _run(app, _write(tmp_path, moved, "moved.json")).exit_code == 0
    assert _units(app)["410105002"][2] == "/41/4102/410105/410105002/"


@pytest.mark.parametrize("content,needle", [
    ("{not json", "JSON"),
    ({"items": []}, "units"),
    ({"units": [{"code": "41", "name": "河南省", "tier": "province", "parent": None},
                {"code": "4101", "name": "", "tier": "city", "parent": "41"}]}, "4101"),
    ({"units": [{"code": "41", "name": "河南省", "tier": "province", "parent": None},
                {"code": "4101", "name": "郑州市", "tier": "county", "parent": "41"}]}, "county"),
    ({"units": [{"code": "41", "name": "河南省", "tier": "province", "parent": None},
                {"code": "41x", "name": "坏代码", "tier": "city", "parent": "41"}]}, "41x"),
    ({"units": [{"code": "41", "name": "河南省", "tier": "province", "parent": None},
                {"code": "410105", "name": "金水区", "tier": "district", "parent": "41"}]}, "410105"),
])
def test_malformed_file_is_refused_naming_the_record(app, tmp_path, content, needle):
    result = _run(app, _write(tmp_path, content))
    assert result.exit_code != 0
    assert needle in result.output
    assert _units(app) == {}


def test_missing_parent_is_refused_and_nothing_is_half_imported(app, tmp_path):
    data = {"units": SMALL["units"] + [{"code": "410199001", "name": "孤儿街道", "tier": "street",
                                        "parent": "410199"}]}
    result = _run(app, _write(tmp_path, data))
    assert result.exit_code != 0
    assert "410199001" in result.output and "410199" in result.output
    assert _units(app) == {}


def test_the_real_henan_file_counts_per_tier(app):
    from portal.cli import DEFAULT_DIVISIONS

    result = _run(app, DEFAULT_DIVISIONS)
    assert result.exit_code == 0, result.output
    with app.app_context():
        counts = dict(db.session.execute(select(Unit.tier, func.count()).group_by(Unit.tier)).all())
    assert counts == {"province": 1, "city": 18, "district": 181, "street": 2586}


def test_demo_seed_is_idempotent(app, monkeypatch):
    from collections import Counter

    import jobs.tasks
    from portal.models import CascadeRun

    monkeypatch.setitem(app.config, "CLI_LOCALE", "en")
    runs: Counter = Counter()
    cascade = jobs.tasks.run_cascade

    def counted_cascade(run_id):
        runs[run_id] += 1
        return cascade(run_id)

    monkeypatch.setattr(jobs.tasks, "run_cascade", counted_cascade)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "office-41\n" in first.output and "viewer-41" in first.output
    # Each cascade runs once: the seed runs it at once, and the job queued for after the commit is taken back.
    with app.app_context():
        states = dict(db.session.execute(select(CascadeRun.id, CascadeRun.state)).all())
    assert len(states) >= 10 and set(states.values()) == {"finished"}
    assert runs == Counter({run_id: 1 for run_id in states})
    # A calm output: the jobs' log lines summed up, one line per stage; one screen apart from the accounts.
    import re

    assert "Seeding the tasks: background jobs" in first.output, first.output
    assert sum(int(n) for n in re.findall(r"run_cascade ×(\d+)", first.output)) == len(states), first.output
    assert "Figures rebuilt:" in first.output and "INFO" not in first.output
    screen = [line for line in first.output.splitlines() if not line.startswith("  ") or "Seeding" in line]
    assert len(screen) <= 25, first.output
    second = runner.invoke(args=["demo", "seed"])
    assert "Accounts created: 0;" in second.output
    assert sum(runs.values()) == len(states)  # seeding again passes nothing down again
    from portal.models import Membership, User

    with app.app_context():
        names = set(db.session.scalars(select(User.username)))
        assert {"office-41", "office-4101", "office-4190", "office-410105", "office-410105001",
                "office-410102001", "edu-41", "police-410105002", "viewer-41"} <= names
        assert sum(1 for n in names if n.startswith("edu-")) == 5
        assert db.session.scalar(select(func.count(Membership.id))) == len(names)
