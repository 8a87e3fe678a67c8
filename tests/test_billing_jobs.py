"""Money items 1 and 7: `ledger-check`, `billing auto-renew | remind | expire-orders`, finance's
wallet and ledger views. Reminders go through a real SMTP server (aiosmtpd) on 127.0.0.1."""
from __future__ import annotations

import email
import re
import socket
import threading
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from email import policy
from uuid import uuid4

import babel.dates
import pytest
from aiosmtpd.controller import Controller
from flask_babel import force_locale, ngettext
from sqlalchemy import event, func, select, text, update
from sqlalchemy.engine import Engine

import actions.billing_jobs as billing_jobs
from actions.billing import effective_config
from actions.billing_jobs import auto_renew, billing_period, effective_settings, remind
from actions.outbox import RenderedMail
from actions.wallets import balance_of, credit, wallet_for
from conftest import make_app, make_company, make_device
from models import (
    AuditEvent, AutoRenewAttempt, BillingConfig, Company, Device, LedgerEntry, Order, OutboxMail, ReminderLog,
    Wallet, db, utcnow,
)

TODAY = date(2026, 11, 5)  # monthly period 2026-11 (ends 11-30), quarterly 2026-Q4 (ends 12-31)
DAY = TODAY.isoformat()


# --- helpers ----------------------------------------------------------------------------------------

def configure(company: Company, cycle: str = "monthly", auto_renew: bool = False, push: bool = False,
              language: str = "en", emails: str = "") -> BillingConfig:
    config = BillingConfig(company=company, billing_cycle=cycle, auto_renew=auto_renew, push_enabled=push,
                           push_language=language, push_emails=emails)
    db.session.add(config)
    db.session.flush()
    return config


def fund(company: Company, amount: str, currency: str = "CNY") -> None:
    wallet = wallet_for(db.session, company.id, currency)
    credit(db.session, wallet, Decimal(amount), "recharge", f"test:{uuid4().hex}", memo="test top-up")


def balance(company: Company, currency: str = "CNY") -> Decimal:
    return balance_of(db.session, company.id, currency)


def expires(world, number: str) -> date:
    return db.session.scalar(select(Device.expires_on).where(Device.number == number))


def set_expiry(world, **numbers: date) -> None:
    for number, day in numbers.items():
        world.devices[number].expires_on = day
    db.session.flush()


def orders_of(company: Company) -> list[Order]:
    """The company's renewal orders (the world has a pending recharge order of Globex's)."""
    return list(db.session.scalars(select(Order).where(Order.company_id == company.id, Order.kind == "renewal")
                                   .order_by(Order.id)))


def run(app, *args: str):
    result = app.test_cli_runner().invoke(args=list(args))
    db.session.expire_all()  # the command committed through the same session; re-read
    return result


def renew(app, *extra: str):
    result = run(app, "billing", "auto-renew", "--today", DAY, *extra)
    assert result.exit_code == 0, result.output
    return result


@contextmanager
def count_statements(target=Engine):
    statements: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(target, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(target, "before_cursor_execute", listener)


@pytest.fixture
def due(world):
    """Acme renews monthly from its balance; every device of the world is out of the window but AC0001."""
    for device in world.devices.values():
        device.expires_on = date(2027, 6, 1)
    world.devices["AC0001"].expires_on = date(2026, 11, 20)
    configure(world.acme, auto_renew=True)
    fund(world.acme, "100.00")
    db.session.commit()
    return world


# --- periods and inheritance ------------------------------------------------------------------------------

@pytest.mark.parametrize("today, cycle, label, start, end", [
    (date(2026, 11, 5), "monthly", "2026-11", date(2026, 11, 1), date(2026, 11, 30)),
    (date(2028, 2, 10), "monthly", "2028-02", date(2028, 2, 1), date(2028, 2, 29)),
    (date(2026, 11, 5), "quarterly", "2026-Q4", date(2026, 10, 1), date(2026, 12, 31)),
    (date(2026, 1, 1), "quarterly", "2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
    (date(2026, 11, 5), "yearly", "2026", date(2026, 1, 1), date(2026, 12, 31)),
])
def test_billing_period_is_the_calendar_period_containing_today(today, cycle, label, start, end):
    period = billing_period(today, cycle)
    assert (period.label, period.start, period.end) == (label, start, end)


def test_effective_settings_match_effective_config_for_every_company(world):
    configure(world.acme, cycle="quarterly", auto_renew=True)
    configure(world.fleet, cycle="yearly", push=True, emails="fleet@example.test")
    db.session.commit()
    found = {s.id: s for s in effective_settings(db.session)}
    for company in (world.acme, world.north, world.fleet, world.south, world.globex):
        config, _source = effective_config(db.session, company)
        if config is None:
            assert company.id not in found
        else:
            assert (found[company.id].source_id, found[company.id].cycle) == (config.company_id, config.billing_cycle)
    assert found[world.north.id].source_id == world.acme.id  # inherited from the parent
    assert found[world.fleet.id].source_id == world.fleet.id  # its own config wins


# --- auto-renew ------------------------------------------------------------------------------------------

def test_auto_renew_renews_due_devices_from_the_company_balance(app, due):
    world = due
    set_expiry(world, AC0002=date(2026, 10, 31))  # already expired: renewed from today
    configure(world.south, cycle="quarterly", auto_renew=True)
    set_expiry(world, SO0001=date(2026, 11, 30))  # quarterly: + 3 months, clamped to Feb 28
    fund(world.south, "50.00")
    db.session.commit()

    result = renew(app)

    assert "3 devices renewed in 2 orders" in result.output
    assert expires(world, "AC0001") == date(2026, 12, 20)
    assert expires(world, "AC0002") == date(2026, 12, 5)
    assert expires(world, "SO0001") == date(2027, 2, 28)
    assert expires(world, "SO0002") == date(2027, 6, 1)  # not due this quarter
    [order] = orders_of(world.acme)
    assert (order.kind, order.status, order.payment_method, order.total, order.currency) == (
        "renewal", "paid", "balance", Decimal("20.00"), "CNY")
    assert order.note == "Auto-renewal, period 2026-11" and order.note_data["key"] == "order.note.auto_renew"
    assert order.number in result.output
    lines = {line.device.number: line for line in order.lines}
    assert lines["AC0001"].old_expires_on == date(2026, 11, 20) and lines["AC0001"].months == 1
    assert lines["AC0001"].new_expires_on == date(2026, 12, 20)
    assert balance(world.acme) == Decimal("80.00")
    payment = db.session.scalar(select(LedgerEntry).where(LedgerEntry.order_id == order.id))
    assert (payment.kind, payment.amount, payment.balance_after) == ("payment", Decimal("-20.00"), Decimal("80.00"))
    [south_order] = orders_of(world.south)
    assert south_order.total == Decimal("30.00") and balance(world.south) == Decimal("20.00")
    # The renewed device's claim is its order line (the expiry it was renewed from); refusals only are attempts.
    assert lines["AC0001"].auto_renew_from == date(2026, 11, 20)
    assert db.session.scalar(select(func.count()).select_from(AutoRenewAttempt)) == 0
    assert run(app, "ledger-check").exit_code == 0


def test_auto_renew_leaves_out_suspended_devices_and_companies_without_auto_renew(app, due):
    world = due
    world.devices["AC0002"].suspend(utcnow())
    configure(world.south, auto_renew=False, push=True, emails="south@example.test")
    configure(world.globex, auto_renew=False)
    set_expiry(world, AC0002=date(2026, 11, 10), SO0001=date(2026, 11, 10), GX0001=date(2026, 11, 10))
    for company in (world.south, world.globex):
        fund(company, "100.00")
    db.session.commit()

    result = renew(app)

    assert "1 devices renewed in 1 orders" in result.output
    assert expires(world, "AC0002") == date(2026, 11, 10)
    assert expires(world, "SO0001") == date(2026, 11, 10) and expires(world, "GX0001") == date(2026, 11, 10)
    assert not orders_of(world.south) and not orders_of(world.globex)
    suspended = world.devices["AC0002"].id
    assert db.session.scalar(select(AutoRenewAttempt).where(AutoRenewAttempt.device_id == suspended)) is None


def test_auto_renew_follows_the_inherited_config_and_charges_each_device_s_own_company(app, due):
    world = due
    configure(world.south, auto_renew=False)  # its own config overrides Acme's
    set_expiry(world, NO0001=date(2026, 11, 8), FL0001=date(2026, 11, 9), SO0001=date(2026, 11, 9),
               GX0001=date(2026, 11, 9))
    for company in (world.north, world.fleet, world.south, world.globex):
        fund(company, "100.00")
    db.session.commit()

    result = renew(app)

    assert "3 devices renewed in 3 orders" in result.output
    assert expires(world, "NO0001") == date(2026, 12, 8) and expires(world, "FL0001") == date(2026, 12, 9)
    assert expires(world, "SO0001") == date(2026, 11, 9) and expires(world, "GX0001") == date(2026, 11, 9)
    # North and Fleet inherit Acme's config but pay from their own wallets.
    assert balance(world.acme) == balance(world.north) == balance(world.fleet) == Decimal("90.00")
    assert balance(world.south) == balance(world.globex) == Decimal("100.00")
    assert [o.company_id for o in orders_of(world.north)] == [world.north.id]


def test_auto_renew_records_and_reports_insufficient_balance_and_does_not_retry_it(app, due):
    world = due
    set_expiry(world, NO0001=date(2026, 11, 8), NO0002=date(2026, 11, 9))
    fund(world.north, "5.00")
    db.session.commit()

    first = renew(app)

    assert "2 insufficient balance" in first.output
    assert f"Acme North (#{world.north.id})" in first.output and "15.00 missing" in first.output
    assert "NO0001" in first.output
    assert not orders_of(world.north) and balance(world.north) == Decimal("5.00")
    attempts = list(db.session.scalars(select(AutoRenewAttempt).where(
        AutoRenewAttempt.device_id.in_([world.devices["NO0001"].id, world.devices["NO0002"].id]))))
    assert {a.outcome for a in attempts} == {"insufficient_balance"}
    assert all("15.00" in a.message for a in attempts)
    assert expires(world, "NO0001") == date(2026, 11, 8)

    # Topped up, but the same expiry is not retried: no surprise charge after a refusal.
    fund(world.north, "100.00")
    db.session.commit()
    second = renew(app)
    assert "0 devices renewed" in second.output and "2 already attempted" in second.output
    assert not orders_of(world.north)

    # A new expiry (someone changed it) is a new period start: renewed on the next run.
    set_expiry(world, NO0001=date(2026, 11, 12))
    db.session.commit()
    third = renew(app)
    assert "1 devices renewed in 1 orders" in third.output
    assert expires(world, "NO0001") == date(2026, 12, 12) and expires(world, "NO0002") == date(2026, 11, 9)
    assert run(app, "ledger-check").exit_code == 0


def test_auto_renew_run_again_renews_nothing_twice(app, due):
    world = due
    renew(app)
    entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))

    again = renew(app)

    assert "0 devices renewed in 0 orders" in again.output
    assert len(orders_of(world.acme)) == 1
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
    assert expires(world, "AC0001") == date(2026, 12, 20)


def test_auto_renew_skips_a_device_another_run_already_claimed(app, due):
    world = due
    db.session.add(AutoRenewAttempt(device_id=world.devices["AC0001"].id, period_start=date(2026, 11, 20),
                                    outcome="renewed"))
    db.session.commit()

    result = renew(app)

    assert "0 devices renewed" in result.output and "1 already attempted" in result.output
    assert not orders_of(world.acme) and expires(world, "AC0001") == date(2026, 11, 20)


def test_two_concurrent_auto_renew_runs_renew_each_device_once(app, due):
    world = due
    set_expiry(world, AC0002=date(2026, 11, 21), NO0001=date(2026, 11, 22))
    fund(world.north, "100.00")
    db.session.commit()
    barrier = threading.Barrier(2)
    summaries, errors = [], []

    def job():
        from app import WRITE_INTENT

        try:
            with app.app_context():
                WRITE_INTENT.set(True)
                barrier.wait(timeout=10)
                summaries.append(auto_renew(db.session, TODAY))
                db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 — reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert sorted(s.renewed for s in summaries) == [0, 3]
    db.session.expire_all()
    assert len(orders_of(world.acme)) == 1 and len(orders_of(world.north)) == 1
    assert expires(world, "AC0001") == date(2026, 12, 20) and expires(world, "NO0001") == date(2026, 12, 22)
    assert balance(world.acme) == Decimal("80.00") and balance(world.north) == Decimal("90.00")


def test_auto_renew_reports_devices_without_package_and_renews_them_once_bound(app, due):
    world = due
    world.devices["AC0001"].package = None
    db.session.commit()

    first = renew(app)

    assert "1 without package" in first.output and "AC0001" in first.output
    attempt = db.session.scalar(select(AutoRenewAttempt))
    assert (attempt.outcome, attempt.period_start) == ("no_package", date(2026, 11, 20))
    assert not orders_of(world.acme)

    assert "0 devices renewed" in renew(app).output  # still unbound: nothing new
    world.devices["AC0001"].package = world.packages["GPS-Y"]
    db.session.commit()
    bound = renew(app)
    assert "1 devices renewed in 1 orders" in bound.output
    assert expires(world, "AC0001") == date(2026, 12, 20)
    assert orders_of(world.acme)[0].total == Decimal("8.33")  # 100 per year × 1/12
    [line] = orders_of(world.acme)[0].lines
    assert (line.device_id, line.auto_renew_from) == (world.devices["AC0001"].id, date(2026, 11, 20))
    # The refusal stays on record as it was (no package at that expiry); it no longer stands in the way.
    assert db.session.scalar(select(AutoRenewAttempt.outcome)) == "no_package"
    assert "0 devices renewed" in renew(app).output


def test_auto_renew_fails_devices_whose_package_is_no_longer_sold_and_renews_the_rest(app, due):
    world = due
    set_expiry(world, AC0002=date(2026, 11, 25))
    world.devices["AC0002"].package = world.packages["GPS-Y"]
    world.packages["GPS-Y"].active = False
    db.session.commit()

    result = renew(app)

    assert "1 devices renewed in 1 orders" in result.output and "1 failed" in result.output
    assert "AC0002" in result.output and "GPS-Y" in result.output
    assert expires(world, "AC0002") == date(2026, 11, 25)
    outcomes = dict(db.session.execute(select(AutoRenewAttempt.device_id, AutoRenewAttempt.outcome)).all())
    assert outcomes == {world.devices["AC0002"].id: "failed"}
    assert [line.device_id for line in orders_of(world.acme)[0].lines] == [world.devices["AC0001"].id]


def test_auto_renew_pays_one_order_per_batch_and_currency(app, due, monkeypatch):
    world = due
    monkeypatch.setattr(billing_jobs, "BATCH_DEVICES", 2)
    for i in range(4):
        make_device(f"AX{i:04d}", world.acme, expires_on=date(2026, 11, 10 + i), package=world.packages["GPS-M"])
    from models import Package

    usd = Package(code="GPS-USD", name="GPS USD", category_id=world.packages["GPS-M"].category_id,
                  kind="renewal", amount=Decimal("2.00"), pricing="per_month", currency="USD")
    db.session.add(usd)
    db.session.flush()
    make_device("AXUSD", world.acme, expires_on=date(2026, 11, 12), package=usd)
    fund(world.acme, "10.00", "USD")
    db.session.commit()

    result = renew(app)

    assert "6 devices renewed in 4 orders" in result.output
    orders = orders_of(world.acme)
    assert sorted((o.currency, len(o.lines)) for o in orders) == [("CNY", 1), ("CNY", 2), ("CNY", 2), ("USD", 1)]
    assert balance(world.acme) == Decimal("50.00") and balance(world.acme, "USD") == Decimal("8.00")
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "payment")) == 4
    assert run(app, "ledger-check").exit_code == 0


def _add_devices(company, package, count: int, prefix: str, expires_on: date) -> None:
    db.session.execute(Device.__table__.insert(), [
        {"number": f"{prefix}{i:06d}", "name": "", "device_type": "GPS tracker", "company_id": company.id,
         "status": "active", "expires_on": expires_on, "package_id": package.id, "created_at": utcnow()}
        for i in range(count)
    ])


def test_auto_renew_does_not_query_per_device(app, due):
    """The statement count of a run does not grow with the number of due devices."""
    world = due
    fund(world.acme, "100000.00")
    fund(world.north, "100000.00")
    _add_devices(world.acme, world.packages["GPS-M"], 20, "SMALL", date(2026, 11, 20))
    _add_devices(world.north, world.packages["GPS-M"], 400, "LARGE", date(2027, 6, 1))
    db.session.commit()
    with count_statements(db.engine) as small:
        assert auto_renew(db.session, TODAY).renewed == 21
    db.session.commit()
    # Now 400 devices fall due: the same statements, only with more rows.
    db.session.execute(text("UPDATE device SET expires_on = :d WHERE number LIKE 'LARGE%'"), {"d": date(2026, 11, 25)})
    db.session.commit()
    with count_statements(db.engine) as large:
        assert auto_renew(db.session, TODAY).renewed == 400
    db.session.commit()
    assert len(large) <= len(small) + 2, (len(small), len(large))


def test_auto_renew_refuses_a_nonsense_month_count(app, due):
    result = run(app, "billing", "auto-renew", "--today", DAY, "--months", "0")
    assert result.exit_code != 0
    from actions import DomainError

    with pytest.raises(DomainError):
        auto_renew(db.session, TODAY, months=500)


# --- ledger-check and expire-orders ------------------------------------------------------------------------

def test_ledger_check_passes_then_fails_after_a_raw_balance_change(app, world):
    fund(world.acme, "50.00")
    fund(world.globex, "7.00", "USD")
    db.session.commit()

    ok = run(app, "ledger-check")
    assert ok.exit_code == 0 and "ledger OK: 2 wallets" in ok.output

    db.session.execute(text("UPDATE wallet SET balance_minor = balance_minor + 100 WHERE currency = 'USD'"))
    db.session.commit()
    broken = run(app, "ledger-check")
    assert broken.exit_code == 1
    assert "Globex <b>Trading</b> USD: balance 8.00, ledger sum 7.00, difference 1.00" in broken.output
    assert "1 of 2 wallets differ" in broken.output


def test_expire_orders_cancels_only_stale_pending_orders(app, world):
    now = utcnow()

    def order(number, status, hours_old):
        db.session.add(Order(number=number, kind="renewal", status=status, company_id=world.acme.id,
                             currency="CNY", total=Decimal("10.00"), created_at=now - timedelta(hours=hours_old)))

    order("RN-STALE", "pending", 30)
    order("RN-FRESH", "pending", 1)
    order("RN-PAID", "paid", 30)
    db.session.commit()

    result = run(app, "billing", "expire-orders")

    assert result.exit_code == 0 and "1 pending orders older than 24 hours cancelled" in result.output
    statuses = dict(db.session.execute(select(Order.number, Order.status).where(Order.number.like("RN-%"))).all())
    assert statuses == {"RN-STALE": "cancelled", "RN-FRESH": "pending", "RN-PAID": "paid"}
    assert db.session.scalar(select(Order.cancelled_at).where(Order.number == "RN-STALE")) is not None
    assert "0 pending orders" in run(app, "billing", "expire-orders").output


# --- expiry reminders over real SMTP -----------------------------------------------------------------------

class Inbox:
    """An aiosmtpd handler keeping every message it accepts; it refuses the addresses in `refuse` (550)."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def parsed(self) -> list[tuple[list[str], email.message.EmailMessage]]:
        """Each accepted message with its envelope recipients, parsed."""
        return [(rcpt, email.message_from_bytes(content, policy=policy.default))
                for _sender, rcpt, content in self.messages]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def mail_app(database_url, smtp_server):
    _inbox, port = smtp_server
    mail_app = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_SUPPRESS_SEND=False,
                        MAIL_DEFAULT_SENDER="billing@renewdesk.test")
    yield mail_app
    with mail_app.app_context():
        db.engine.dispose()


@pytest.fixture
def inbox(app, smtp_server, mail_app):
    """The SMTP inbox, emptied; the mail-sending app's context is pushed for the test."""
    inbox, _port = smtp_server
    inbox.messages.clear()
    inbox.refuse.clear()
    with mail_app.app_context():
        yield inbox
        db.session.remove()


@pytest.fixture
def reminders(world):
    """Acme (en, two addresses) and its subsidiaries by inheritance; South quarterly in Chinese; Globex in
    Vietnamese; Initech with push off. Due this period: AC0001, NO0001 (expired), SO0001, SO0002, GX0001."""
    for device in world.devices.values():
        device.expires_on = date(2027, 6, 1)
    set_expiry(world, AC0001=date(2026, 11, 20), AC0002=date(2026, 11, 10), NO0001=date(2026, 10, 1),
               FL0001=date(2026, 12, 15), SO0001=date(2026, 11, 30), SO0002=date(2026, 12, 1),
               GX0001=date(2026, 11, 6))
    world.devices["AC0002"].suspend(utcnow())
    configure(world.acme, push=True, emails="ops@acme.test\nboss@acme.test")
    configure(world.south, cycle="quarterly", push=True, language="zh_CN", emails="nan@south.test")
    configure(world.globex, push=True, language="vi", emails="ketoan@globex.test")
    initech = make_company("Initech")
    configure(initech, push=False, emails="nobody@initech.test")
    make_device("IN0001", initech, expires_on=date(2026, 11, 7), package=world.packages["GPS-M"])
    db.session.commit()
    return world


def _by_subject_company(inbox) -> dict[str, tuple[list[str], email.message.EmailMessage]]:
    found = {}
    for rcpt, message in inbox.parsed():
        for name in ("Acme North Fleet", "Acme North", "Acme South", "Acme Logistics", "Globex", "Initech"):
            if name in message["Subject"]:
                found[name] = (sorted(rcpt), message)
                break
    return found


def test_remind_emails_each_company_once_in_its_language(mail_app, inbox, reminders):
    result = mail_app.test_cli_runner().invoke(args=["billing", "remind", "--today", DAY])

    assert result.exit_code == 0, result.output
    assert "4 reminders queued (5 devices): 4 sent, 0 failed, 0 left queued" in result.output
    mails = _by_subject_company(inbox)
    # Fleet has nothing due; Initech has push off.
    assert set(mails) == {"Acme Logistics", "Acme North", "Acme South", "Globex"}

    rcpt, acme = mails["Acme Logistics"]
    assert rcpt == ["boss@acme.test", "ops@acme.test"]
    assert acme["From"] == "billing@renewdesk.test"
    assert acme["Content-Language"] == "en"
    body = acme.get_body(("plain",)).get_content()
    assert "AC0001 | 2026-11-20" in body and "November 30, 2026" in body
    assert "AC0002" not in body  # suspended
    assert mails["Acme North"][0] == ["boss@acme.test", "ops@acme.test"]  # inherited addresses
    assert "NO0001 | 2026-10-01" in mails["Acme North"][1].get_body(("plain",)).get_content()  # expired: listed

    rcpt, south = mails["Acme South"]
    assert rcpt == ["nan@south.test"] and south["Content-Language"] == "zh-CN"
    body = south.get_body(("plain",)).get_content()
    assert "2026年12月31日" in body  # the quarter's end, in the Chinese date format
    assert "SO0001" in body and "SO0002" in body
    with force_locale("zh_Hans_CN"):
        expected = ngettext("Expiry reminder: %(num)s device of %(company)s",
                            "Expiry reminder: %(num)s devices of %(company)s", 2, company="Acme South")
    assert south["Subject"] == expected

    rcpt, globex = mails["Globex"]
    assert rcpt == ["ketoan@globex.test"] and globex["Content-Language"] == "vi"
    body = globex.get_body(("plain",)).get_content()
    assert babel.dates.format_date(date(2026, 11, 30), "long", locale="vi") in body
    assert "Globex <b>Trading</b>" in body  # plain text stays plain
    html = globex.get_body(("html",)).get_content()
    assert "Globex &lt;b&gt;Trading&lt;/b&gt;" in html and "<b>Trading" not in html and "GX0001" in html

    logs = dict(db.session.execute(select(ReminderLog.company_id, ReminderLog.period)).all())
    assert logs == {reminders.acme.id: "2026-11", reminders.north.id: "2026-11", reminders.south.id: "2026-Q4",
                    reminders.globex.id: "2026-11"}

    again = mail_app.test_cli_runner().invoke(args=["billing", "remind", "--today", DAY])
    assert again.exit_code == 0, again.output
    assert "0 reminders queued" in again.output and "4 already queued this period" in again.output
    assert len(inbox.messages) == 4
    assert set(db.session.scalars(select(OutboxMail.status))) == {"sent"}


def test_remind_sends_again_in_the_next_period(mail_app, inbox, reminders):
    assert mail_app.test_cli_runner().invoke(args=["billing", "remind", "--today", DAY]).exit_code == 0
    inbox.messages.clear()

    december = mail_app.test_cli_runner().invoke(args=["billing", "remind", "--today", "2026-12-02"])

    assert december.exit_code == 0, december.output
    # Monthly companies get December's reminder; South (quarterly) already had Q4's.
    assert set(_by_subject_company(inbox)) == {"Acme Logistics", "Acme North", "Acme North Fleet", "Globex"}


def test_remind_lists_at_most_max_listed_devices_and_counts_the_rest(app, reminders, monkeypatch):
    monkeypatch.setattr(billing_jobs, "MAX_LISTED", 1)
    composed = []

    def compose(reminder):
        composed.append(reminder)
        return RenderedMail(f"reminder {reminder.company_id}", "text", "<p>html</p>", "en")

    summary = remind(db.session, TODAY, compose)
    db.session.commit()
    assert (summary.queued, summary.skipped, len(summary.mail_ids)) == (4, 0, 4)
    south = next(r for r in composed if r.company_id == reminders.south.id)
    assert (south.total, len(south.devices), south.unlisted, south.language) == (2, 1, 1, "zh_CN")
    again = remind(db.session, TODAY, compose)
    db.session.commit()
    assert (again.queued, again.skipped, again.mail_ids) == (0, 4, ())
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 4
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "remind")) == 1


def test_remind_failure_is_reported_kept_and_retried_from_the_outbox(mail_app, inbox, reminders):
    """The SMTP server refuses Globex's address: that mail is failed with the reason, the others go;
    the reminder is not lost — `mail send-queued` sends it once its retry time has come."""
    inbox.refuse = {"ketoan@globex.test"}
    runner = mail_app.test_cli_runner()
    first = runner.invoke(args=["billing", "remind", "--today", DAY])
    assert first.exit_code == 1
    assert "4 reminders queued (5 devices): 3 sent, 1 failed" in first.output
    assert "ketoan@globex.test failed: SMTPRecipientsRefused" in first.output and "550" in first.output
    assert set(_by_subject_company(inbox)) == {"Acme Logistics", "Acme North", "Acme South"}
    failed = db.session.scalar(select(OutboxMail).where(OutboxMail.status == "failed"))
    assert failed.recipients == "ketoan@globex.test" and "Mailbox unavailable" in failed.last_error
    assert failed.attempts == 1
    # The company stays reminded for the period: its mail waits in the outbox, it is not queued twice.
    again = runner.invoke(args=["billing", "remind", "--today", DAY])
    assert "0 reminders queued" in again.output and "4 already queued this period" in again.output

    inbox.refuse.clear()
    assert "0 sent, 0 failed" in runner.invoke(args=["mail", "send-queued"]).output  # not due again yet
    db.session.execute(update(OutboxMail).where(OutboxMail.id == failed.id)
                       .values(claimed_at=utcnow() - timedelta(minutes=11)))
    db.session.commit()
    retried = runner.invoke(args=["mail", "send-queued"])
    assert retried.exit_code == 0 and "1 sent, 0 failed" in retried.output
    assert set(_by_subject_company(inbox)) == {"Acme Logistics", "Acme North", "Acme South", "Globex"}
    db.session.expire_all()
    assert (db.session.get(OutboxMail, failed.id).status, db.session.get(OutboxMail, failed.id).attempts) == \
        ("sent", 2)


def test_remind_cli_exits_non_zero_when_the_smtp_server_is_unreachable(app, reminders, database_url):
    down = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=_free_port(), MAIL_SUPPRESS_SEND=False)
    with down.app_context():
        result = down.test_cli_runner().invoke(args=["billing", "remind", "--today", DAY])
        assert result.exit_code == 1
        assert "0 sent, 4 failed" in result.output and "ConnectionRefusedError" in result.output
        # Nothing is lost: the four reminders wait in the outbox, failed with the reason.
        assert db.session.scalar(select(func.count()).select_from(ReminderLog)) == 4
        rows = db.session.execute(select(OutboxMail.status, OutboxMail.last_error)).all()
        assert len(rows) == 4 and all(status == "failed" and "ConnectionRefusedError" in error
                                      for status, error in rows)
        db.session.remove()
        db.engine.dispose()


# --- finance's wallet and ledger views ------------------------------------------------------------------

@pytest.fixture
def ledger(app, due):
    """Acme and North with a few movements each, one of them an auto-renewal payment."""
    world = due
    fund(world.north, "30.00")
    fund(world.globex, "12.00", "USD")
    db.session.commit()
    renew(app)
    return world


def listed(client, url: str, **query) -> str:
    """The table body of a list page (the filter options elsewhere on the page name every company)."""
    page = client.get(url, query_string=query).get_data(as_text=True)
    match = re.search(r"<table class=\"table[^\"]*model-list\">(.*?)</table>", page, re.S)
    assert match, url
    return match.group(1)


def _filter_arg(view_endpoint: str, app, name: str, operation: str) -> str:
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == view_endpoint)
    for arg, (_index, flt) in view._filter_args.items():
        if str(flt.name) == name and str(flt.operation()) == operation:
            return arg
    raise AssertionError(f"no filter {name} {operation}")


def test_finance_sees_wallets_with_filters_and_export(app, client, login, ledger):
    login("finance")
    page = listed(client, "/admin/wallet/")
    assert "Acme Logistics" in page and "Acme North" in page and "90.00" in page
    assert "Globex &lt;b&gt;Trading&lt;/b&gt;" in page

    arg = _filter_arg("wallet", app, "Currency", "equals")
    usd = listed(client, "/admin/wallet/", **{f"flt0_{arg}": "USD"})
    assert "Globex" in usd and "Acme North" not in usd

    arg = _filter_arg("wallet", app, "Company", "in the tree of")
    tree = listed(client, "/admin/wallet/", **{f"flt0_{arg}": ledger.acme.id})
    assert "Acme North" in tree and "Globex" not in tree

    export = client.get("/admin/wallet/export/csv/")
    assert export.status_code == 200 and "Acme North,CNY,30.00" in export.get_data(as_text=True)
    assert client.get("/admin/wallet/new/").status_code != 200
    assert client.get(f"/admin/wallet/edit/?id={balance_id(ledger.acme)}").status_code != 200


def balance_id(company) -> int:
    return db.session.scalar(select(Wallet.id).where(Wallet.company_id == company.id))


def test_finance_sees_the_ledger_with_filters_and_export(app, client, login, ledger):
    order = orders_of(ledger.acme)[0]
    login("finance")
    page = listed(client, "/admin/ledgerentry/")
    assert order.number in page and "-CN¥10.00" in page and "Payment" in page and "system" in page

    kind = _filter_arg("ledgerentry", app, "Kind", "equals")
    payments = listed(client, "/admin/ledgerentry/", **{f"flt0_{kind}": "payment"})
    assert order.number in payments and "test top-up" not in payments

    currency = _filter_arg("ledgerentry", app, "Currency", "equals")
    usd = listed(client, "/admin/ledgerentry/", **{f"flt0_{currency}": "USD"})
    assert "12.00" in usd and order.number not in usd

    company = _filter_arg("ledgerentry", app, "Company", "in the tree of")
    north = listed(client, "/admin/ledgerentry/", **{f"flt0_{company}": ledger.north.id})
    assert "30.00" in north and order.number not in north

    between = _filter_arg("ledgerentry", app, "Time", "between")
    now = utcnow()
    window = f"{(now - timedelta(days=1)):%Y-%m-%d %H:%M:%S} to {(now + timedelta(days=1)):%Y-%m-%d %H:%M:%S}"
    assert order.number in listed(client, "/admin/ledgerentry/", **{f"flt0_{between}": window})
    old = f"{(now - timedelta(days=9)):%Y-%m-%d %H:%M:%S} to {(now - timedelta(days=8)):%Y-%m-%d %H:%M:%S}"
    assert "There are no items" in listed(client, "/admin/ledgerentry/", **{f"flt0_{between}": old})

    export = client.get("/admin/ledgerentry/export/csv/").get_data(as_text=True)
    assert order.number in export and "Acme Logistics,CNY,Payment,-10.00,90.00" in export

    entry = db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.order_id == order.id))
    assert client.get(f"/admin/ledgerentry/details/?id={entry}").status_code == 200
    for url in ("/admin/ledgerentry/new/", f"/admin/ledgerentry/edit/?id={entry}"):
        assert client.get(url).status_code != 200, url
    from conftest import post

    post(client, "/admin/ledgerentry/delete/", {"id": str(entry)})
    assert db.session.get(LedgerEntry, entry) is not None


def test_ledger_list_does_not_query_per_row(app, client, login, ledger):
    login("finance")
    client.get("/admin/ledgerentry/")
    with count_statements() as few:
        assert client.get("/admin/ledgerentry/").status_code == 200
    for i in range(25):
        company = make_company(f"Extra {i}")
        fund(company, "1.00")
    db.session.commit()
    with count_statements() as many:
        page = listed(client, "/admin/ledgerentry/")
    assert "Extra 24" in page
    assert len(many) == len(few), (len(few), len(many))
    with count_statements() as wallets:
        client.get("/admin/wallet/")
    assert len(wallets) <= len(few)


@pytest.mark.parametrize("username", ["customer", "sales", "support"])
def test_only_finance_and_admin_open_the_money_views(client, login, world, username):
    login(username)
    assert client.get("/admin/wallet/").status_code == 403
    assert client.get("/admin/ledgerentry/").status_code == 403
