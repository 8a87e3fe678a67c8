"""Command-line entry points: thin wrappers over actions/ (flask --app app …)."""
from __future__ import annotations

import time

import click
from flask import Flask, current_app

from models import db


def register_commands(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option("--devices", default=500, show_default=True, help="How many devices to create.")
    @click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) when the database has users.")
    def seed_demo_command(devices: int, if_empty: bool) -> None:
        """Load the demo world (companies, users, catalog, devices) into an empty database."""
        from actions.demo import is_empty, seed_demo

        if not is_empty(db.session):
            if if_empty:
                click.echo("Database already has data; demo data not loaded.")
                return
            raise click.ClickException("The database is not empty; seed-demo loads only into an empty one.")
        started = time.perf_counter()
        made = seed_demo(db.session, devices=devices, method=current_app.config["PASSWORD_HASH_METHOD"])
        db.session.commit()
        click.echo(
            f"Demo data loaded in {time.perf_counter() - started:.1f}s: {made['companies']} companies, "
            f"{made['packages']} packages, {made['devices']} devices. Logins: admin, support, finance, "
            "sales, customer (password demo-<username>)."
        )
