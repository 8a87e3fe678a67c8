"""Command-line entry points: thin wrappers over actions/ (flask --app app …), one commit each."""
from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask_babel import force_locale, format_date, ngettext
from sqlalchemy import func, select

from actions.dates import EARLIEST_EXPIRY, LATEST_EXPIRY
from actions.outbox import RenderedMail, render_mail, send_queued
from extensions import WRITE_INTENT
from models import Wallet, db, utcnow

# A push language (BillingConfig.push_language) → the Babel catalog and the Content-Language tag.
MAIL_LOCALES = {"zh_CN": "zh_Hans_CN", "en": "en", "vi": "vi"}
CONTENT_LANGUAGES = {"zh_CN": "zh-CN", "en": "en", "vi": "vi"}


@contextmanager
def writing():
    """A command that writes: BEGIN IMMEDIATE on SQLite (WRITE_INTENT), rollback on any error."""
    token = WRITE_INTENT.set(True)
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    finally:
        WRITE_INTENT.reset(token)


def reminder_mail(reminder) -> RenderedMail:
    """The expiry reminder email of one company, rendered in its push language."""
    language = reminder.language if reminder.language in MAIL_LOCALES else "en"
    locale = MAIL_LOCALES[language]
    with force_locale(locale):
        subject = ngettext("Expiry reminder: %(num)s device of %(company)s",
                           "Expiry reminder: %(num)s devices of %(company)s",
                           reminder.total, company=reminder.company_name)
        return render_mail("expiry_reminder", locale, subject, reminder=reminder,
                           period_end=format_date(reminder.period_end, "long"), lang=CONTENT_LANGUAGES[language])


def send_mail_queue(ids=None) -> list:
    """Send queued mail after the command's commit (never inside its transaction); the outcomes."""
    config = current_app.config
    with writing():
        return send_queued(db.session, current_app.extensions["mail"], db.session.commit, ids=ids,
                           max_attempts=int(config["MAIL_MAX_ATTEMPTS"]),
                           retry_after=timedelta(minutes=int(config["MAIL_RETRY_MINUTES"])))


def _day(value: date | None) -> date:
    return value if value is not None else date.today()


class Day(click.ParamType):
    """A calendar day typed as YYYY-MM-DD (or a month as YYYY-MM), refused outside the days the
    system keeps (EARLIEST_EXPIRY – LATEST_EXPIRY): a job run as of 9999-12-31 would overflow
    Python's dates, one as of 0001-01-01 has nothing to do."""

    def __init__(self, pattern: str = "%Y-%m-%d", shown: str = "YYYY-MM-DD"):
        self.pattern, self.shown = pattern, shown
        self.name = shown

    def convert(self, value, param, ctx):
        if isinstance(value, date):
            return value
        try:
            day = datetime.strptime(value, self.pattern).date()
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a date written {self.shown}.", param, ctx)
        if not EARLIEST_EXPIRY <= day <= LATEST_EXPIRY:
            self.fail(f"{value!r} is outside {EARLIEST_EXPIRY:%Y-%m-%d} – {LATEST_EXPIRY:%Y-%m-%d}.", param, ctx)
        return day


TODAY_OPTION = click.option("--today", type=Day(), default=None,
                            help="Run as of this day (YYYY-MM-DD); default: today.")
# The days a card order waits after shipping before it counts as received: ten years at most.
RECEIVE_DAYS = click.IntRange(0, 3650)


def register_commands(app: Flask) -> None:
    @app.cli.command("seed-demo")
    @click.option("--devices", type=click.IntRange(0, 10_000_000), default=500, show_default=True,
                  help="How many devices to create (0 to 10,000,000).")
    @click.option("--if-empty", is_flag=True, help="Do nothing (exit 0) when the database has users.")
    @click.option("--no-activity", is_flag=True,
                  help="Leave the queues empty: no recharges, orders or invoice requests.")
    def seed_demo_command(devices: int, if_empty: bool, no_activity: bool) -> None:
        """Load the demo world (companies, users, catalog, devices) into an empty database."""
        from actions.demo import is_empty, seed_demo

        if not is_empty(db.session):
            if if_empty:
                click.echo("Database already has data; demo data not loaded.")
                return
            raise click.ClickException("The database is not empty; seed-demo loads only into an empty one.")
        started = time.perf_counter()
        made = seed_demo(db.session, devices=devices, method=current_app.config["PASSWORD_HASH_METHOD"],
                         activity=not no_activity)
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
    def auto_renew_command(today: date | None, months: int | None) -> None:
        """Renew due devices of companies with auto-renew on, paid from their balance."""
        from actions.billing_jobs import auto_renew

        day = _day(today)
        with writing():
            # A commit every 0.1 s or so, after a batch of devices (billing_jobs.TRANSACTION_SECONDS): the
            # write lock is held briefly, and a run that stops keeps its committed batches (the next run
            # does the rest).
            summary = auto_renew(db.session, day, months, commit=db.session.commit)
            db.session.commit()
        click.echo(f"auto-renew {day}: {summary.renewed} devices renewed in {len(summary.orders)} orders, "
                   f"{summary.insufficient} insufficient balance, {summary.no_package} without package, "
                   f"{summary.failed} failed, {summary.skipped} already attempted")
        for line in summary.lines:
            click.echo(f"  {line}")

    @billing.command("remind")
    @TODAY_OPTION
    def remind_command(today: date | None) -> None:
        """Email each company with push on its devices expiring this billing period (once per period)."""
        from actions.billing_jobs import remind

        day = _day(today)
        with writing():
            summary = remind(db.session, day, reminder_mail)
            db.session.commit()
        outcomes = send_mail_queue(summary.mail_ids) if summary.mail_ids else []
        sent = sum(1 for o in outcomes if o.sent)
        failed = [o for o in outcomes if o.failed]
        click.echo(f"remind {day}: {summary.queued} reminders queued ({summary.devices} devices): {sent} sent, "
                   f"{len(failed)} failed, {summary.queued - sent - len(failed)} left queued; "
                   f"{summary.skipped} already queued this period")
        for line in summary.lines:
            click.echo(f"  {line}")
        for outcome in failed:
            click.echo(f"  mail #{outcome.id} to {', '.join(outcome.recipients)} failed: {outcome.error}")
        if failed:
            raise click.exceptions.Exit(1)

    mail_group = AppGroup("mail", help="The mail outbox: mail is queued with its change and sent after the commit.")
    app.cli.add_command(mail_group)

    @mail_group.command("send-queued")
    def send_queued_command() -> None:
        """Send queued mail, and retry failed mail a few times (cron); exit 1 when any mail failed."""
        outcomes = send_mail_queue()
        failed = [o for o in outcomes if o.failed]
        click.echo(f"mail: {len(outcomes) - len(failed)} sent, {len(failed)} failed")
        for outcome in failed:
            click.echo(f"  mail #{outcome.id} to {', '.join(outcome.recipients)} failed: {outcome.error}")
        if failed:
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

    @billing.command("expire-seats")
    @TODAY_OPTION
    def expire_seats_command(today: date | None) -> None:
        """Take back the seats of seat orders whose term ended before today (once per order; safe to repeat)."""
        from actions.seats import expire_seat_orders

        day = _day(today)
        with writing():
            report = expire_seat_orders(db.session, day)
            db.session.commit()
        click.echo(f"expire-seats {day}: {len(report.expired)} seat orders expired, {len(report.deactivated)} "
                   f"organizers deactivated to fit, {len(report.failed)} failed (retried next run)")
        for number in report.expired:
            click.echo(f"  expired: {number}")
        for login in report.deactivated:
            click.echo(f"  deactivated: {login}")
        for number, reason in report.failed:
            click.echo(f"  failed: {number}: {reason}")
        if report.failed:
            raise click.exceptions.Exit(1)

    @billing.command("reconcile-payments")
    @TODAY_OPTION
    def reconcile_payments_command(today: date | None) -> None:
        """Ask each payment provider about pending orders older than PAYMENT_RECONCILE_AFTER_MINUTES (and
        younger than ORDER_PENDING_HOURS) and settle the paid ones, as their lost notifications would; then
        about the refunds it accepted but had not paid out yet, and record where their money went."""
        from actions.provider_settlement import check_refunds, reconcile_payments

        config = current_app.config
        after = int(config["PAYMENT_RECONCILE_AFTER_MINUTES"])
        providers = current_app.extensions["renewdesk_payments"].adapters
        with writing():
            report = reconcile_payments(db.session, providers, utcnow(), timedelta(minutes=after),
                                        timedelta(hours=int(config["ORDER_PENDING_HOURS"])), _day(today),
                                        commit=db.session.commit)
            db.session.commit()
            refunds = check_refunds(db.session, providers, commit=db.session.commit)
            db.session.commit()
        click.echo(f"reconcile-payments: {len(report.paid)} orders paid, {report.unpaid} still unpaid, "
                   f"{len(report.failed)} failed ({', '.join(sorted(providers)) or 'no provider configured'})")
        for number in report.paid:
            click.echo(f"  paid: {number}")
        for number, reason in report.failed:
            click.echo(f"  failed: {number}: {reason}")
        click.echo(f"refunds on their way: {len(refunds.completed)} paid out, {len(refunds.processing)} still on "
                   f"their way, {len(refunds.not_paid_out)} not paid out, {len(refunds.failed)} not asked")
        for label in refunds.completed:
            click.echo(f"  paid out: {label}")
        for label, reason in refunds.not_paid_out:
            click.echo(f"  not paid out (finance pays it back by hand): {label}: {reason}")
        for label, reason in refunds.failed:
            click.echo(f"  not asked: {label}: {reason}")
        if report.failed or refunds.failed:
            raise click.exceptions.Exit(1)

    @billing.command("subscriptions")
    @TODAY_OPTION
    def subscriptions_command(today: date | None) -> None:
        """Renewal orders N days ahead, auto-renew from the wallet, past due, expiry, scheduled cancellations."""
        from actions.subscriptions import run_billing

        day = _day(today)
        with writing():
            report = run_billing(db.session, day, utcnow())
            db.session.commit()
        click.echo(f"subscriptions {day}: {len(report.renewal_orders)} renewal orders, {len(report.auto_paid)} "
                   f"paid from the balance, {len(report.unpaid)} unpaid, {len(report.past_due)} past due, "
                   f"{len(report.expired)} expired, {len(report.cancelled)} cancelled, {len(report.abandoned)} "
                   f"abandoned, {report.released} promotion reservations released")
        for label, numbers in (("renewal order", report.renewal_orders), ("unpaid", report.unpaid),
                               ("past due", report.past_due), ("expired", report.expired)):
            for number in numbers:
                click.echo(f"  {label}: {number}")

    cards = AppGroup("cards", help="Card distribution jobs (seed 002); each is safe to run again (cron).")
    app.cli.add_command(cards)

    @cards.command("receive")
    @TODAY_OPTION
    @click.option("--days", type=RECEIVE_DAYS, default=None,
                  help="Days after shipping (0 to 3650); default CARD_AUTO_RECEIVE_DAYS.")
    def cards_receive_command(today: date | None, days: int | None) -> None:
        """Confirm receipt of card orders shipped N days ago or more, and release commission held long enough."""
        from actions.card_orders import auto_receive
        from actions.distribution import release_held

        day = _day(today)
        days = days if days is not None else int(current_app.config["CARD_AUTO_RECEIVE_DAYS"])
        with writing():
            received = auto_receive(db.session, day, days)
            released = release_held(db.session, day)
            db.session.commit()
        click.echo(f"cards receive {day}: {received} orders received automatically ({days} days), "
                   f"{released} commission entries available")

    @cards.command("expire-quotes")
    @TODAY_OPTION
    def cards_expire_quotes_command(today: date | None) -> None:
        """Mark sent quotes valid until before today as expired (they can no longer be accepted)."""
        from actions.card_quotes import expire_quotes

        day = _day(today)
        with writing():
            numbers = expire_quotes(db.session, day)
            db.session.commit()
        click.echo(f"cards expire-quotes {day}: {len(numbers)} quotes expired")
        for number in numbers:
            click.echo(f"  {number}")

    @cards.command("true-up")
    @click.option("--month", type=Day("%Y-%m", "YYYY-MM"), default=None, help="YYYY-MM; default: last month.")
    def cards_true_up_command(month: date | None) -> None:
        """Bring each seller's month on tiered commission rates to its tiered amount (safe to repeat)."""
        from actions.distribution import true_up_month

        month = f"{month or date.today().replace(day=1) - timedelta(days=1):%Y-%m}"
        with writing():
            entries = true_up_month(db.session, month)
            db.session.commit()
        click.echo(f"cards true-up {month}: {len(entries)} true-up entries")
