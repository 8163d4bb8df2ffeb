"""Command-line commands: ``flask --app wsgi units import FILE`` and ``flask --app wsgi demo seed``."""
from __future__ import annotations

import os
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup

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
        click.echo("Imported." if report.changed else "Nothing to change: the database already matches the file.")

    @demo.command("seed")
    @click.option("--divisions", default=DEFAULT_DIVISIONS, show_default=True, help="division file to import")
    def seed_command(divisions: str) -> None:
        """Import Henan and create the demo accounts (idempotent)."""
        from portal.services import ServiceError
        from portal.services.demo import seed_demo

        started = time.monotonic()
        try:
            result = seed_demo(divisions, password=current_app.config["DEMO_PASSWORD"])
        except ServiceError as exc:
            db.session.rollback()
            raise click.ClickException(exc.message)
        db.session.commit()
        for line in result.report.lines():
            click.echo(line)
        click.echo(f"Accounts created: {len(result.created)}; already there: {result.existing}.")
        for username in result.created:
            click.echo(f"  {username}")
        click.echo(f"Demo password: the value of PORTAL_DEMO_PASSWORD "
                   f"({'set' if os.environ.get('PORTAL_DEMO_PASSWORD') else 'default: portal-demo-2026'}). "
                   "For demos only.")
        click.echo(f"Seeded in {time.monotonic() - started:.1f} s.")

    app.cli.add_command(units)
    app.cli.add_command(demo)
