"""The Flask extension objects, unbound: `create_app` binds them with `init_app`.

They live here, not in app.py, so that modules needing one (cli's mailer, jobs) import this
module instead of the application factory, and nothing imports app.py back.
"""
from __future__ import annotations

from contextvars import ContextVar

import click
from flask_babel import Babel
from flask_login import LoginManager
from flask_mail import Mail
from flask_wtf.csrf import CSRFProtect


class Migrations:
    """Flask-Migrate, loaded when a migration runs (`flask db …`, `flask_migrate.upgrade()`), not when
    a web worker starts: Alembic and Mako are 11 MB of every worker's memory.

    `init_app` takes what `flask_migrate.Migrate.init_app` takes; the first use of
    `app.extensions["migrate"]` or of a `flask db` command builds the real `Migrate`.
    """

    def init_app(self, app, db, **options) -> None:
        app.extensions["migrate"] = _MigrateOnDemand(app, db, options)
        app.cli.add_command(_MigrationCommands("db", help="Perform database migrations."), name="db")


class _MigrateOnDemand:
    """Stands in for Flask-Migrate's config in `app.extensions["migrate"]` until an attribute is read."""

    def __init__(self, app, db, options: dict):
        self._args, self._real = (app, db, options), None

    def __getattr__(self, name: str):
        if self._real is None:
            from flask_migrate import Migrate

            app, db, options = self._args
            Migrate().init_app(app, db, **options)  # puts its own config into app.extensions["migrate"]
            self._real = app.extensions["migrate"]
        return getattr(self._real, name)


class _MigrationCommands(click.Group):
    """`flask db …`: Flask-Migrate's command group, imported when one of its commands runs."""

    @staticmethod
    def _commands() -> click.Group:
        from flask_migrate.cli import db

        return db

    def make_context(self, info_name, args, parent=None, **extra):
        real = self._commands()
        self.params, self.callback = real.params, real.callback
        return super().make_context(info_name, args, parent, **extra)

    def list_commands(self, ctx):
        return self._commands().list_commands(ctx)

    def get_command(self, ctx, name):
        return self._commands().get_command(ctx, name)


login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
migrate = Migrations()
mail = Mail()

# Set for requests and commands that write: on SQLite their transactions start with
# BEGIN IMMEDIATE, so writers queue for the lock (busy_timeout) instead of failing on a stale
# snapshot. PostgreSQL needs nothing: conditional UPDATEs and row locks do the work there.
WRITE_INTENT: ContextVar[bool] = ContextVar("renewdesk_write_intent", default=False)
