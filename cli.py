"""Command-line entry points: thin wrappers over actions/ (flask --app app …), one commit each."""
from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timedelta

import click
from flask import Flask, current_app, render_template
from flask.cli import AppGroup
from flask_babel import force_locale, format_date, ngettext
from flask_mail import Message
from sqlalchemy import func, select

from models import Wallet, db, utcnow

# A push language (BillingConfig.push_language) → the Babel catalog and the Content-Language tag.
MAIL_LOCALES = {"zh_CN": "zh_Hans_CN", "en": "en", "vi": "vi"}
CONTENT_LANGUAGES = {"zh_CN": "zh-CN", "en": "en", "vi": "vi"}


@contextmanager
def writing():
    """A command that writes: BEGIN IMMEDIATE on SQLite (app.WRITE_INTENT), rollback on any error."""
    from app import WRITE_INTENT

    token = WRITE_INTENT.set(True)
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    finally:
        WRITE_INTENT.reset(token)


def reminder_message(reminder) -> Message:
    """The expiry reminder email of one company, rendered in its push language."""
    language = reminder.language if reminder.language in MAIL_LOCALES else "en"
    with force_locale(MAIL_LOCALES[language]):
        context = {"reminder": reminder, "period_end": format_date(reminder.period_end, "long"),
                   "lang": CONTENT_LANGUAGES[language]}
        subject = ngettext("Expiry reminder: %(num)s device of %(company)s",
                           "Expiry reminder: %(num)s devices of %(company)s",
                           reminder.total, company=reminder.company_name)
        body = render_template("mail/expiry_reminder.txt", **context)
        html = render_template("mail/expiry_reminder.html", **context)
    return Message(subject=" ".join(subject.split()), recipients=list(reminder.recipients), body=body, html=html,
                   extra_headers={"Content-Language": CONTENT_LANGUAGES[language]})


class ReminderMailer:
    """Sends reminders over one SMTP connection, opened at the first email and reopened after an error."""

    def __init__(self):
        self._stack: ExitStack | None = None
        self._connection = None

    def __call__(self, reminder) -> None:
        from app import mail

        message = reminder_message(reminder)
        if self._connection is None:
            self._stack = ExitStack()
            self._connection = self._stack.enter_context(mail.connect())
        try:
            self._connection.send(message)
        except Exception:
            self.close()  # the connection may be broken: the next email opens a new one
            raise

    def close(self) -> None:
        stack, self._stack, self._connection = self._stack, None, None
        if stack is not None:
            try:
                stack.close()
            except Exception:  # noqa: BLE001 — a failing QUIT must not hide what was sent
                pass


def _day(value: datetime | None) -> date:
    return value.date() if value is not None else date.today()


TODAY_OPTION = click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                            help="Run as of this day (YYYY-MM-DD); default: today.")


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

    @app.cli.command("ledger-check")
    def ledger_check_command() -> None:
        """Exit 1 when any wallet's balance differs from the sum of its ledger entries."""
        from actions.wallets import ledger_differences

        differences = ledger_differences(db.session)
        for wallet, total in differences:
            click.echo(f"wallet #{wallet.id} {wallet.company.name} {wallet.currency}: balance {wallet.balance}, "
                       f"ledger sum {total}, difference {wallet.balance - total}")
        count = db.session.scalar(select(func.count()).select_from(Wallet))
        if differences:
            click.echo(f"ledger MISMATCH: {len(differences)} of {count} wallets differ from their ledger")
            raise click.exceptions.Exit(1)
        click.echo(f"ledger OK: {count} wallets")

    billing = AppGroup("billing", help="Scheduled billing jobs; each is safe to run again (cron).")
    app.cli.add_command(billing)

    @billing.command("auto-renew")
    @TODAY_OPTION
    @click.option("--months", type=click.IntRange(1, 120), default=None,
                  help="Renew for this many months instead of each company's billing cycle.")
    def auto_renew_command(today: datetime | None, months: int | None) -> None:
        """Renew due devices of companies with auto-renew on, paid from their balance."""
        from actions.billing_jobs import auto_renew

        day = _day(today)
        with writing():
            # One commit per batch of devices: the write lock is held for one batch at a time, and a
            # run that stops keeps its finished batches (the next run does the rest).
            summary = auto_renew(db.session, day, months, commit=db.session.commit)
            db.session.commit()
        click.echo(f"auto-renew {day}: {summary.renewed} devices renewed in {len(summary.orders)} orders, "
                   f"{summary.insufficient} insufficient balance, {summary.no_package} without package, "
                   f"{summary.failed} failed, {summary.skipped} already attempted")
        for line in summary.lines:
            click.echo(f"  {line}")

    @billing.command("remind")
    @TODAY_OPTION
    def remind_command(today: datetime | None) -> None:
        """Email each company with push on its devices expiring this billing period (once per period)."""
        from actions.billing_jobs import remind

        day = _day(today)
        mailer = ReminderMailer()
        try:
            with writing():
                summary = remind(db.session, day, mailer)
                db.session.commit()
        finally:
            mailer.close()
        click.echo(f"remind {day}: {summary.sent} reminders sent ({summary.devices} devices), "
                   f"{summary.failed} failed, {summary.skipped} already sent this period")
        for line in summary.lines:
            click.echo(f"  {line}")
        if summary.failed:
            raise click.exceptions.Exit(1)

    @billing.command("expire-orders")
    def expire_orders_command() -> None:
        """Cancel pending orders older than ORDER_PENDING_HOURS."""
        from actions.orders import cancel_stale_orders

        hours = int(current_app.config["ORDER_PENDING_HOURS"])
        with writing():
            count = cancel_stale_orders(db.session, timedelta(hours=hours), utcnow())
            db.session.commit()
        click.echo(f"expire-orders: {count} pending orders older than {hours} hours cancelled")
