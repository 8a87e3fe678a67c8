"""Renewdesk: the application factory. Nothing happens at import time."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, abort, has_request_context, request, session
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, OperationalError

from extensions import WRITE_INTENT, babel, csrf, login_manager, mail, migrate
from models import LOCALES, User, db

HERE = Path(__file__).resolve().parent

__all__ = ["create_app", "WRITE_INTENT", "babel", "csrf", "login_manager", "mail", "migrate"]

DEFAULTS = {
    "ENV_NAME": "production",
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    "BABEL_DEFAULT_LOCALE": "en",
    "BABEL_TRANSLATION_DIRECTORIES": str(HERE / "translations"),
    "PASSWORD_HASH_METHOD": "scrypt",
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCK_MINUTES": 15,
    "IMPORT_MAX_BYTES": 10 * 1024 * 1024,
    "IMPORT_MAX_ROWS": 200_000,
    "BATCH_SUSPEND_MAX_NUMBERS": 20_000,
    "MAIL_DEFAULT_SENDER": "renewdesk@localhost",
    "MAIL_MAX_ATTEMPTS": 3,
    "MAIL_RETRY_MINUTES": 10,
    "INVITATIONS_PER_HOUR": 5,
    "PAYMENT_REFUSALS_PER_MINUTE": 30,
    "ORDER_PENDING_HOURS": 24,
    "PAYMENT_RECONCILE_AFTER_MINUTES": 5,
    "PROXY_COUNT": 0,
    "CARD_AUTO_RECEIVE_DAYS": 10,
    "FLASK_ADMIN_SWATCH": "default",
    # Password policy (actions/passwords.py; README "Password policy").
    "PASSWORD_MIN_LENGTH": 10,
    "PASSWORD_MAX_LENGTH": 128,
    "PASSWORD_ALLOWED": "",
    "PASSWORD_REQUIRE": "",
    # Phone verification at login (actions/phone_login.py; README "Phone verification at login").
    "PHONE_VERIFICATION_STAFF": False,
    "PHONE_VERIFICATION_CUSTOMER": False,
    "PHONE_REGIONS": "CN,VN",
    "SMS_BACKEND": "log",
    "SMS_CODE_MINUTES": 5,
    "SMS_RESEND_SECONDS": 60,
    "SMS_CODES_PER_HOUR": 5,
    "SMS_CODE_MAX_ATTEMPTS": 5,
    "CAPTCHA_MINUTES": 5,
}

# 对公账户 shown to customers paying by bank transfer, per currency. Demo values, used only in
# development and testing when BANK_TRANSFER_PAYEE is not set: production shows none until configured.
DEMO_BANK_TRANSFER_PAYEE = {
    "CNY": {"name": "演示科技有限公司", "bank": "中国工商银行北京海淀支行", "account": "0200 0045 0920 0123 456"},
    "USD": {"name": "Demo Technology Co., Ltd.", "bank": "Bank of China, Beijing Branch",
            "account": "3498 5820 1234", "swift": "BKCHCNBJ110"},
}

# Variables read from the environment when set (the README lists them).
ENVIRONMENT = (
    "SECRET_KEY",
    "DATABASE_URL",
    "ENV_NAME",
    "SESSION_COOKIE_SECURE",
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_USERNAME",
    "MAIL_PASSWORD",
    "MAIL_USE_TLS",
    "MAIL_DEFAULT_SENDER",
    "MAIL_MAX_ATTEMPTS",
    "MAIL_RETRY_MINUTES",
    "INVITATIONS_PER_HOUR",
    "IMPORT_MAX_BYTES",
    "IMPORT_MAX_ROWS",
    "PAYMENT_METHODS",
    "PAYMENT_SANDBOX_SECRET",
    "PAYMENT_WECHAT_SECRET",
    "PAYMENT_WECHAT_PAY_URL",
    "PAYMENT_ALIPAY_SECRET",
    "PAYMENT_ALIPAY_PAY_URL",
    "PAYMENT_PAYPAL_SECRET",
    "PAYMENT_PAYPAL_PAY_URL",
    # Real providers (actions/providers/, README "Going live with payment providers").
    "WECHATPAY_MCHID",
    "WECHATPAY_APPID",
    "WECHATPAY_CERT_SERIAL_NO",
    "WECHATPAY_PRIVATE_KEY",
    "WECHATPAY_APIV3_KEY",
    "WECHATPAY_PUBLIC_KEY",
    "WECHATPAY_PUBLIC_KEY_ID",
    "WECHATPAY_API_URL",
    "ALIPAY_APP_ID",
    "ALIPAY_APP_PRIVATE_KEY",
    "ALIPAY_PUBLIC_KEY",
    "ALIPAY_GATEWAY",
    "ALIPAY_MODE",
    "PAYPAL_CLIENT_ID",
    "PAYPAL_CLIENT_SECRET",
    "PAYPAL_WEBHOOK_ID",
    "PAYPAL_API_URL",
    "VNPTPAY_MERCHANT_SERVICE_ID",
    "VNPTPAY_SERVICE_ID",
    "VNPTPAY_SECRET_KEY",
    "VNPTPAY_API_URL",
    "PAYMENT_VNPTPAY_SECRET",
    "PAYMENT_VNPTPAY_PAY_URL",
    "PAYMENT_RECONCILE_AFTER_MINUTES",
    "PAYMENT_REFUSALS_PER_MINUTE",
    "ORDER_PENDING_HOURS",
    "PROXY_COUNT",
    "MEMBER_BATCH_MAX",
    "MEMBER_DEFAULT_PASSWORD",
    "BANK_RECEIPT_MAX_BYTES",
    "BANK_TRANSFER_PAYEE",
    "INVOICE_DOC_MAX_BYTES",
    "CARD_ENCRYPTION_KEYS",
    "CARD_BLIND_INDEX_KEY",
    "CARD_AUTO_RECEIVE_DAYS",
    "PASSWORD_MIN_LENGTH",
    "PASSWORD_MAX_LENGTH",
    "PASSWORD_ALLOWED",
    "PASSWORD_REQUIRE",
    "PHONE_VERIFICATION_STAFF",
    "PHONE_VERIFICATION_CUSTOMER",
    "PHONE_REGIONS",
    "SMS_BACKEND",
    "SMS_TEST_FILE",
    "SMS_CODE_MINUTES",
    "SMS_RESEND_SECONDS",
    "SMS_CODES_PER_HOUR",
    "SMS_CODE_MAX_ATTEMPTS",
    "CAPTCHA_MINUTES",
    "CAPTCHA_TEST_ANSWER",
)


def _from_environment() -> dict:
    found = {}
    for name in ENVIRONMENT:
        value = os.environ.get(f"RENEWDESK_{name}", os.environ.get(name))
        if value is None:
            continue
        if value.isdigit() and name.endswith(("_BYTES", "_ROWS", "_PORT", "_HOURS", "_COUNT", "_MAX", "_MINUTE",
                                              "_MINUTES", "_ATTEMPTS", "_LENGTH", "_SECONDS", "_HOUR")):
            value = int(value)
        elif value.lower() in ("true", "false"):
            value = value.lower() == "true"
        found[name] = value
    return found


def _local_command() -> bool:
    """A `flask --app app …` command in a checkout that sets nothing (no ENV_NAME, no DATABASE_URL): it works
    on the embedded SQLite database `make run` made, so it runs as `make run` does, in development. A server
    (gunicorn, wsgi.py) is never one, and production always names its PostgreSQL database."""
    import click

    unset = all(os.environ.get(prefix + name) is None for name in ("ENV_NAME", "DATABASE_URL")
                for prefix in ("", "RENEWDESK_"))
    return unset and click.get_current_context(silent=True) is not None


def create_app(config: dict | None = None) -> Flask:
    """Build a Renewdesk application; `config` (tests pass a dict) wins over the environment."""
    app = Flask(__name__, instance_relative_config=True, template_folder="templates")
    app.config.update(DEFAULTS)
    app.config.update(_from_environment())
    if config is None and _local_command():
        app.config["ENV_NAME"] = "development"
    app.config.update(config or {})

    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    url = app.config.pop("DATABASE_URL", None) or app.config.get("SQLALCHEMY_DATABASE_URI")
    app.config["SQLALCHEMY_DATABASE_URI"] = url or f"sqlite:///{Path(app.instance_path) / 'renewdesk.db'}"

    # Refuse oversized bodies before anything (CSRF included) reads them: uploads are the
    # largest legitimate requests.
    app.config.setdefault("MAX_CONTENT_LENGTH", int(app.config["IMPORT_MAX_BYTES"]) + 1024 * 1024)

    if not app.config.get("SECRET_KEY"):
        if app.config["ENV_NAME"] not in ("development", "testing"):
            raise RuntimeError(
                "SECRET_KEY is required outside development and testing "
                "(set SECRET_KEY, or ENV_NAME=development for a local run)"
            )
        app.config["SECRET_KEY"] = "dev-only-not-secret"
    if app.config["ENV_NAME"] in ("development", "testing"):
        app.config.setdefault("BANK_TRANSFER_PAYEE", DEMO_BANK_TRANSFER_PAYEE)
    if app.config["ENV_NAME"] == "testing":
        app.config.setdefault("FLASK_ADMIN_RAISE_ON_VIEW_EXCEPTION", True)
    _check_login_settings(app.config)
    # Refuse to start rather than take payments nobody can verify (actions.payments.payment_settings).
    from actions.payments import SANDBOX_DEVELOPMENT_SECRET, payment_settings

    payments = payment_settings(app.config)
    app.extensions["renewdesk_payments"] = payments
    if payments.sandbox:
        app.config["PAYMENT_SANDBOX_SECRET"] = app.config.get("PAYMENT_SANDBOX_SECRET") or SANDBOX_DEVELOPMENT_SECRET
    else:
        app.config.pop("PAYMENT_SANDBOX_SECRET", None)  # no sandbox, no sandbox secret

    if app.config["PROXY_COUNT"]:
        # Behind N reverse proxies: trust their X-Forwarded-For/-Proto (audit IPs, Secure cookies).
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(HERE / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    mail.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    _init_login(app)
    from actions import crypto

    crypto.init_app(app)  # card secrets: production refuses to start without its keys

    import actions.order_kinds  # noqa: F401 - the core's order kinds register what paying delivers
    import actions.card_orders  # noqa: F401 - cards (seed 002) register the card_sale kind
    from flask_babel import format_number

    from actions.money import format_money
    from admin_views import init_admin
    from admin_views.base import local_time
    from admin_views.error_pages import register_error_pages, render_error
    from admin_views.auth import bp as auth_bp
    from admin_views.payments import callbacks, pay_page_url, sandbox
    from admin_views.provider_payments import bp as provider_pay
    from cli import register_commands
    import actions.subscriptions  # noqa: F401 — registers the "subscription" order kind (delivery, refund undo)

    app.register_blueprint(auth_bp)
    if payments.sandbox:
        app.register_blueprint(sandbox)  # development and testing only: it pays with a known secret
    app.register_blueprint(callbacks)
    app.register_blueprint(provider_pay)  # the real providers' pay pages and the payer's return
    csrf.exempt(callbacks)
    app.jinja_env.filters["money"] = format_money  # {{ amount|money(currency) }}: the one money display
    app.jinja_env.filters["datetime"] = local_time  # {{ at|datetime }}: the reader's zone, to the minute
    app.jinja_env.filters["number"] = format_number  # {{ n|number }}: 100,000 / 100.000 as the reader writes it
    admin = init_admin(app)
    register_error_pages(app, admin)
    register_commands(app)
    app.jinja_env.globals["pay_page_url"] = pay_page_url
    from actions.money import format_amount, format_percent, number_symbols, typed

    app.jinja_env.filters["amount"] = format_amount  # {{ price|amount(currency) }}: the number alone (180,00)
    # {{ amount|typed }}: a form's value, as the reader types it (500,00). Like every filter here, on values only:
    # Jinja works out a filter of a literal ({{ "1.00"|typed }}) once, when it compiles the template, in whichever
    # language that request had.
    app.jinja_env.filters["typed"] = typed
    app.jinja_env.filters["percent"] = format_percent  # {{ rate|percent }}: 9.7% / 9,7% as the reader writes it
    app.jinja_env.globals["number_symbols"] = number_symbols  # the reader's group and decimal symbols, for scripts
    from actions.texts import render as render_stored_text

    app.jinja_env.globals["stored_text"] = render_stored_text  # {{ stored_text(row.memo_data, row.memo) }}

    @app.before_request
    def remember_remote_addr():
        # actions.audit reads it from the session: actions never touch the request.
        db.session.info["remote_addr"] = request.remote_addr
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            WRITE_INTENT.set(True)

    @app.before_request
    def refuse_nul_characters():
        # PostgreSQL refuses NUL in text and no legitimate input carries one: refuse it whole.
        values = [*request.args.values(), *request.form.values(), *(f.filename or "" for f in request.files.values())]
        if any("\x00" in value for value in values):
            abort(400, description="NUL characters are not allowed in input.")

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def out_of_range(exc):
        # An id or number beyond any column's range names no row: not found, never a crash.
        db.session.rollback()
        return render_error(admin, 404)

    @app.errorhandler(OperationalError)
    def database_busy(exc):
        # SQLite's busy timeout ran out outside an admin view (sign-in, payment pages; RoleMixin._run_view
        # handles the views): the request changed nothing, so say so and let the user try again, never a 500.
        from flask import Response, flash, redirect
        from flask_admin.helpers import is_safe_url

        from admin_views.base import BUSY_MESSAGE, is_lock_timeout

        if not is_lock_timeout(exc):
            raise exc
        db.session.rollback()
        if request.method in ("GET", "HEAD"):
            return Response(str(BUSY_MESSAGE), status=503, mimetype="text/plain", headers={"Retry-After": "2"})
        flash(str(BUSY_MESSAGE), "error")
        back = request.referrer
        return redirect(back if back and is_safe_url(back) else request.path)

    @app.teardown_request
    def forget_write_intent(exc):
        WRITE_INTENT.set(False)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        if not request.path.startswith("/static") and "/static/" not in request.path:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.route("/")
    def root():
        from flask import redirect, url_for

        return redirect(url_for("admin.index"))

    return app


def _check_login_settings(config) -> None:
    """Refuse to start on a wrong password policy, or on phone verification whose codes nobody receives."""
    from actions.passwords import PasswordPolicy
    from actions.sms import DEVELOPMENT_BACKENDS, backend_for

    PasswordPolicy.from_config(config)  # raises ValueError naming the setting
    backend_for(config)  # an unknown SMS_BACKEND stops the start, not the first login
    verifying = config["PHONE_VERIFICATION_STAFF"] or config["PHONE_VERIFICATION_CUSTOMER"]
    development = config["ENV_NAME"] in ("development", "testing")
    if verifying and not development and str(config["SMS_BACKEND"]) in DEVELOPMENT_BACKENDS:
        raise RuntimeError(f"SMS_BACKEND={config['SMS_BACKEND']} only writes the codes down: set a real "
                           "SMS provider (README \"Phone verification at login\") or turn verification off")
    if config.get("CAPTCHA_TEST_ANSWER") and config["ENV_NAME"] != "testing":
        raise RuntimeError("CAPTCHA_TEST_ANSWER makes every picture code the same: testing only")


def select_locale() -> str:
    """The user's chosen language, else the browser's best match, else English."""
    if not has_request_context():
        return None  # CLI and jobs: the default locale
    if current_user and current_user.is_authenticated and current_user.locale in LOCALES:
        return current_user.locale
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-Hans", "vi"])
    if best and best.startswith("zh"):
        return "zh_Hans_CN"
    return best or "en"


def _init_login(app: Flask) -> None:
    from flask_babel import lazy_gettext as _l

    from actions.auth import may_sign_in

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    # Flask-Login's own "Please log in to access this page." is English only: flash ours, in the reader's language.
    login_manager.login_message = _l("Please log in to open this page.")
    login_manager.login_message_category = "info"
    login_manager.localize_callback = str
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        # The id carries the session version: a password change, logout or deactivation
        # bumps it and every older cookie stops working.
        try:
            uid, version = (int(part) for part in user_id.split(":"))
        except ValueError:
            return None
        user = db.session.get(User, uid)
        if user is None or user.session_version != version or not may_sign_in(db.session, user):
            return None  # a deactivated login, or its company disabled since: signed out
        return user


@event.listens_for(Engine, "begin")
def _sqlite_begin_immediate(connection):
    if connection.dialect.name == "sqlite" and (WRITE_INTENT.get() or _write_request()) and not connection.get_execution_options().get("deferred_begin"):  # noqa: E501 (admin_views.base.without_write_lock)
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _write_request() -> bool:
    """A POST/PUT/PATCH/DELETE request, whichever hook touched the database first."""
    return has_request_context() and request.method not in ("GET", "HEAD", "OPTIONS")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """Foreign keys on and WAL for SQLite; other databases are left alone."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
