"""Command-line commands: ``flask --app wsgi units import FILE`` and ``flask --app wsgi demo seed``."""
from __future__ import annotations

import os
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask_babel import gettext as _
from sqlalchemy import text

from portal.extensions import db

DEFAULT_DIVISIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "data", "divisions-41-henan.json")


def register_cli(app: Flask) -> None:
    units = AppGroup("units", help="The management network.")
    demo = AppGroup("demo", help="Demo data.")

    @units.command("import")
    @click.argument("path", type=click.Path(dir_okay=False))
    def import_command(path: str) -> None:
        """Import or update units from a division file (JSON)."""
        from portal.services import ServiceError
        from portal.services.units import import_units, load_file

        try:
            report = import_units(load_file(path))
        except ServiceError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message)
        db.session.commit()
        for line in report.lines():
            click.echo(line)
        click.echo(_("Imported.") if report.changed else
                   _("Nothing to change: the database already matches the file."))

    @demo.command("seed")
    @click.option("--divisions", default=DEFAULT_DIVISIONS, show_default=True, help="division file to import")
    def seed_command(divisions: str) -> None:
        """Import Henan and create the demo accounts (idempotent)."""
        from portal.metrics import rebuild_all
        from portal.services import ServiceError
        from portal.services.demo import STAGES, SeedLog, seed_demo

        started = time.monotonic()
        # The jobs' and the figures' log lines (hundreds) are counted per stage, and summed up below.
        with SeedLog() as log:
            try:
                result = seed_demo(divisions, password=current_app.config["DEMO_PASSWORD"])
            except ServiceError as exc:
                db.session.rollback()
                raise click.ClickException(exc.message)
            db.session.commit()
            if db.engine.dialect.name == "postgresql":
                # The seed has just bulk-loaded thousands of tasks and reports: without statistics
                # (a server whose autovacuum is off, or has not come round yet) the rebuild's plans
                # scan the reports' date index for every task (minutes instead of seconds).
                db.session.execute(text("ANALYZE"))
                db.session.commit()
            log.stage = "figures"
            rebuilt = rebuild_all()  # the demo's figures, at once (later writes refresh them)
        for line in result.report.lines():
            click.echo(line)
        click.echo(_("Accounts created: %(created)d; already there: %(existing)d.",
                     created=len(result.created), existing=result.existing))
        for username in result.created:
            click.echo(f"  {username}")
        for title in result.meetings:
            click.echo(_("Demo meeting: %(title)s", title=title))
        for title in result.tasks:
            click.echo(_("Demo task: %(title)s", title=title))
        if result.activities:
            click.echo(_("Demo activities registered: %(activities)d; team members added: %(members)d.",
                         activities=result.activities["activities"], members=result.activities["members"]))
        click.echo(_("Figures rebuilt: %(figures)d in %(seconds).1f s.", figures=rebuilt["figures"],
                     seconds=rebuilt["seconds"]))
        stage_names = {"units": _("the units"), "accounts": _("the accounts"), "meetings": _("the meetings"),
                       "tasks": _("the tasks"), "activities": _("the activities"),
                       "after_commit": _("the jobs queued by the seed, after its commit"),
                       "figures": _("the figures")}
        for stage in STAGES:
            summary = log.summary(stage)
            if summary is None or not summary["jobs"]:
                continue  # (the figures' own line is above)
            jobs = "、".join(f"{name} ×{count}" for name, count in sorted(summary["jobs"].items()))
            click.echo(_("  Seeding %(stage)s: background jobs %(jobs)s (%(lines)d log lines not shown).",
                         stage=stage_names[stage], jobs=jobs, lines=summary["lines"]))
        click.echo(_("Password of these accounts: the value of PORTAL_DEMO_PASSWORD (%(which)s). "
                     "For demos only: never use these accounts in production.",
                     which=_("set") if os.environ.get("PORTAL_DEMO_PASSWORD") else "portal-demo-2026"))
        click.echo(_("Seeded in %(seconds).1f s.", seconds=time.monotonic() - started))

    jobs = AppGroup("jobs", help="Background jobs.")

    @jobs.command("reminders")
    def reminders_command() -> None:
        """Send due meeting reminders now (cron-able; the worker does this every 10 minutes)."""
        from jobs.meetings import send_reminders

        counts = send_reminders()
        click.echo(_("Reminders sent: %(meetings)d meeting reminders, %(nudges)d agenda reminders.",
                     meetings=counts["meeting_reminder"], nudges=counts["agenda_nudge"]))

    app.cli.add_command(jobs)
    app.cli.add_command(units)
    register_metrics_cli(app)
    app.cli.add_command(demo)


def register_metrics_cli(app: Flask) -> None:
    metrics = AppGroup("metrics", help="Stored figures (upward aggregation).")

    @metrics.command("rebuild")
    def rebuild_command() -> None:
        """Recompute every stored figure from the source rows, set-based."""
        from portal.metrics import rebuild_all

        result = rebuild_all()
        click.echo(_("Rebuilt %(figures)d figures in %(seconds).2f s.", figures=result["figures"],
                     seconds=result["seconds"]))
        for name, seconds in result["timings"].items():
            click.echo(f"  {name}: {seconds:.3f} s")

    @metrics.command("reconcile")
    def reconcile_command() -> None:
        """Compare every stored figure with the source rows and repair what drifted (cron-able)."""
        from portal.metrics import reconcile

        result = reconcile()
        click.echo(_("Checked %(figures)d figures in %(seconds).2f s: %(drifted)d had drifted and were repaired.",
                     figures=result["figures"], seconds=result["seconds"], drifted=result["drifted"]))

    app.cli.add_command(metrics)
