"""The Flask extension objects, unbound: `create_app` binds them with `init_app`.

They live here, not in app.py, so that modules needing one (cli's mailer, jobs) import this
module instead of the application factory, and nothing imports app.py back.
"""
from __future__ import annotations

from contextvars import ContextVar

from flask_babel import Babel
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
migrate = Migrate()
mail = Mail()

# Set for requests and commands that write: on SQLite their transactions start with
# BEGIN IMMEDIATE, so writers queue for the lock (busy_timeout) instead of failing on a stale
# snapshot. PostgreSQL needs nothing: conditional UPDATEs and row locks do the work there.
WRITE_INTENT: ContextVar[bool] = ContextVar("renewdesk_write_intent", default=False)
