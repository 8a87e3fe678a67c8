"""Auto-renewal writes set-based: the refusals recorded by one INSERT … SELECT with their outcome and
reason, each order's lines selected from the due devices by SQL (old and new expiry, the line being the
renewed device's claim), devices moved by one UPDATE … FROM order_line on payment."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Date, literal, select, type_coerce, update

import actions.billing_jobs as billing_jobs
from actions import DomainError
from actions.billing_jobs import auto_renew, renewed_until_sql
from actions.orders import LineSpec, approve_refund, open_order, pay_with_balance, renewed_until, request_refund
from conftest import make_user
from models import AutoRenewAttempt, BillingConfig, Device, Order, OrderLine, db
from tests import test_billing_jobs
from tests.test_billing_jobs import TODAY, expires, renew, set_expiry

due = test_billing_jobs.due  # the fixture: Acme renews monthly from its balance, only AC0001 is due


def attempt_of(world, number: str) -> AutoRenewAttempt:
    return db.session.scalar(select(AutoRenewAttempt).where(AutoRenewAttempt.device_id == world.devices[number].id))


def test_a_device_without_package_is_claimed_with_its_number_in_the_message(app, due):
    due.devices["AC0001"].package = None
    db.session.commit()
    renew(app)
    attempt = attempt_of(due, "AC0001")
    assert (attempt.outcome, attempt.message) == ("no_package", "AC0001: no renewal package bound")


def test_a_device_its_package_cannot_price_is_claimed_failed_with_the_reason(app, due):
    set_expiry(due, AC0002=date(2026, 11, 25))
    due.devices["AC0002"].package = due.packages["GPS-Y"]
    due.packages["GPS-Y"].active = False
    db.session.commit()
    renew(app)
    refused = attempt_of(due, "AC0002")
    assert (refused.outcome, refused.order_id) == ("failed", None)
    assert refused.message == "AC0002: package GPS-Y is no longer sold"
    assert attempt_of(due, "AC0001") is None
    [line] = db.session.scalars(select(OrderLine).where(OrderLine.device_id == due.devices["AC0001"].id))
    assert line.order.number.startswith("RN") and line.auto_renew_from == date(2026, 11, 20)


def test_a_device_bound_since_to_a_package_not_sold_gets_the_reason_on_its_earlier_attempt(app, due):
    due.devices["AC0001"].package = None
    db.session.commit()
    renew(app)
    due.devices["AC0001"].package = due.packages["GPS-Y"]
    due.packages["GPS-Y"].active = False
    db.session.commit()
    renew(app)
    attempt = attempt_of(due, "AC0001")
    assert (attempt.outcome, attempt.message) == ("failed", "AC0001: package GPS-Y is no longer sold")
    assert expires(due, "AC0001") == date(2026, 11, 20)


def _order_carrying(world, number: str, old: date, new: date):
    device = world.devices[number]
    return open_order(db.session, None, kind="renewal", company_id=device.company_id, currency="CNY",
                      lines=[LineSpec(description=number, gross=Decimal("20.00"), device_id=device.id,
                                      package_id=device.package_id, months=1, old_expires_on=old,
                                      new_expires_on=new)])


def test_lines_carrying_their_expiries_move_the_devices_to_them(app, due):
    order = _order_carrying(due, "AC0001", date(2026, 11, 20), date(2027, 1, 31))
    pay_with_balance(db.session, None, order, TODAY)
    db.session.commit()
    assert expires(due, "AC0001") == date(2027, 1, 31)


def test_a_device_whose_expiry_moved_since_its_line_was_written_refuses_the_payment(app, due):
    order = _order_carrying(due, "AC0001", date(2026, 11, 1), date(2026, 12, 1))
    with pytest.raises(DomainError, match="changed meanwhile"):
        pay_with_balance(db.session, None, order, TODAY)
    db.session.rollback()
    assert expires(due, "AC0001") == date(2026, 11, 20)


def test_a_suspended_device_refuses_the_payment_by_its_number(app, due):
    db.session.get(Device, due.devices["AC0001"].id).status = "suspended"
    order = _order_carrying(due, "AC0001", date(2026, 11, 20), date(2026, 12, 20))
    with pytest.raises(DomainError, match="suspended devices cannot be renewed: AC0001"):
        pay_with_balance(db.session, None, order, TODAY)
    db.session.rollback()
    assert expires(due, "AC0001") == date(2026, 11, 20)


@pytest.fixture
def two_batches(due, monkeypatch):
    """AC0001 and AC0002 due, one device per batch, a commit after each."""
    monkeypatch.setattr(billing_jobs, "BATCH_DEVICES", 1)
    monkeypatch.setattr(billing_jobs, "TRANSACTION_SECONDS", 0)
    set_expiry(due, AC0002=date(2026, 11, 25))
    db.session.commit()
    return due


def _between_batches(change):
    """A commit that lets someone else change a device after the run's first batch."""
    calls = []

    def commit():
        db.session.commit()
        calls.append(1)
        if len(calls) == 1:
            change()
            db.session.commit()

    return commit


def test_a_device_renewed_by_someone_else_during_the_run_is_not_renewed_again(app, two_batches):
    device_id = two_batches.devices["AC0002"].id
    summary = auto_renew(db.session, TODAY, commit=_between_batches(lambda: db.session.execute(
        update(Device).where(Device.id == device_id).values(expires_on=date(2027, 1, 25)))))
    db.session.commit()
    assert (summary.renewed, len(summary.orders)) == (1, 1)
    assert expires(two_batches, "AC0001") == date(2026, 12, 20)
    assert expires(two_batches, "AC0002") == date(2027, 1, 25)
    assert attempt_of(two_batches, "AC0002") is None


def test_a_device_suspended_during_the_run_is_skipped(app, two_batches):
    device_id = two_batches.devices["AC0002"].id
    summary = auto_renew(db.session, TODAY, commit=_between_batches(lambda: db.session.execute(
        update(Device).where(Device.id == device_id).values(status="suspended"))))
    db.session.commit()
    assert summary.renewed == 1 and summary.failed == summary.insufficient == 0
    assert expires(two_batches, "AC0002") == date(2026, 11, 25)


def test_a_device_whose_expiry_moved_within_the_period_is_renewed_from_its_new_expiry(app, two_batches):
    device_id = two_batches.devices["AC0002"].id
    summary = auto_renew(db.session, TODAY, commit=_between_batches(lambda: db.session.execute(
        update(Device).where(Device.id == device_id).values(expires_on=date(2026, 11, 28)))))
    db.session.commit()
    assert summary.renewed == 2
    assert expires(two_batches, "AC0002") == date(2026, 12, 28)
    line = db.session.scalar(select(OrderLine).where(OrderLine.device_id == device_id))
    assert (line.old_expires_on, line.new_expires_on, line.auto_renew_from) == (
        date(2026, 11, 28), date(2026, 12, 28), date(2026, 11, 28))


def test_a_device_another_run_renewed_from_this_expiry_is_skipped(app, due):
    """The order line is the claim: a device with an auto-renewal line for its current expiry is not renewed."""
    _order_carrying(due, "AC0001", date(2026, 11, 20), date(2026, 12, 20)).lines[0].auto_renew_from = date(2026, 11, 20)
    db.session.commit()
    summary = auto_renew(db.session, TODAY)
    db.session.commit()
    assert (summary.renewed, summary.skipped) == (0, 1)
    assert expires(due, "AC0001") == date(2026, 11, 20)


def test_a_refunded_auto_renewal_is_not_renewed_again_from_the_same_expiry(app, due):
    summary = auto_renew(db.session, TODAY)
    db.session.commit()
    [number] = summary.orders
    order = db.session.scalar(select(Order).where(Order.number == number))
    requester = make_user("refund-asker", "finance")
    approver = make_user("refund-approver", "finance")
    refund = request_refund(db.session, requester, order)
    assert approve_refund(db.session, approver, refund, TODAY) == "completed"
    db.session.commit()
    assert expires(due, "AC0001") == date(2026, 11, 20)  # back where it was

    again = auto_renew(db.session, TODAY)
    db.session.commit()
    assert (again.renewed, again.skipped) == (0, 1)
    assert expires(due, "AC0001") == date(2026, 11, 20)


@pytest.mark.parametrize("months", [1, 3, 12])
def test_the_new_expiry_in_sql_is_renewed_until(app, months):
    """Every day of 2027–2028 (month ends, a leap day), from a day before and after `today`."""
    today = date(2027, 6, 15)
    postgresql = db.engine.dialect.name == "postgresql"
    days = [date(2027, 1, 1) + timedelta(days=i) for i in range(731)]
    for start in range(0, len(days), 100):
        chunk = days[start:start + 100]
        found = db.session.execute(select(*[
            type_coerce(renewed_until_sql(literal(day, Date), today, months, postgresql), Date) for day in chunk
        ])).one()
        assert list(found) == [renewed_until(day, months, today) for day in chunk]


def test_renewed_for_less_than_the_cycle_a_device_is_renewed_again_by_the_next_run_not_this_one(app, due):
    db.session.execute(update(BillingConfig).where(BillingConfig.company_id == due.acme.id)
                       .values(billing_cycle="quarterly"))  # 2026-Q4: ends 12-31
    db.session.commit()
    first = auto_renew(db.session, TODAY, months=1)
    db.session.commit()
    assert first.renewed == 1 and expires(due, "AC0001") == date(2026, 12, 20)  # still due this quarter
    second = auto_renew(db.session, TODAY, months=1)
    db.session.commit()
    assert second.renewed == 1 and expires(due, "AC0001") == date(2027, 1, 20)
    assert auto_renew(db.session, TODAY, months=1).renewed == 0


def test_a_package_sold_in_terms_renews_whole_terms_beside_monthly_ones(app, due):
    """A monthly cycle renews AC0001 (GPS monthly) one month and AC0002 (a quarterly package) one term of three
    months, in one order: a term package is never refused as "not a whole number of terms"."""
    from models import Package

    quarterly = Package(code="OBD-Q", name="OBD quarterly", category_id=due.packages["GPS-M"].category_id,
                        subcategory_id=due.packages["GPS-M"].subcategory_id, kind="renewal",
                        amount=Decimal("45.00"), pricing="per_term", term_months=3, currency="CNY")
    db.session.add(quarterly)
    db.session.flush()
    set_expiry(due, AC0002=date(2026, 11, 25))
    due.devices["AC0002"].package = quarterly
    db.session.commit()
    renew(app)
    assert attempt_of(due, "AC0002") is None
    assert expires(due, "AC0001") == date(2026, 12, 20)
    assert expires(due, "AC0002") == date(2027, 2, 25)
    lines = {line.device_id: line for line in db.session.scalars(select(OrderLine).where(
        OrderLine.device_id.in_([due.devices["AC0001"].id, due.devices["AC0002"].id])))}
    monthly, term = lines[due.devices["AC0001"].id], lines[due.devices["AC0002"].id]
    assert (monthly.months, monthly.net, term.months, term.net) == (1, Decimal("10.00"), 3, Decimal("45.00"))
    assert monthly.order_id == term.order_id and "3" in term.description
    assert term.description_data["params"]["months"] == 3


@pytest.mark.parametrize("pricing, term, months, expected", [
    ("per_month", None, 1, 1), ("per_year", None, 1, 1), ("per_term", 3, 1, 3), ("per_term", 3, 3, 3),
    ("per_term", 3, 4, 6), ("per_term", 12, 1, 12), ("per_term", 6, 12, 12),
])
def test_whole_terms_cover_the_cycle(pricing, term, months, expected):
    from types import SimpleNamespace

    assert billing_jobs.whole_terms(SimpleNamespace(pricing=pricing, term_months=term), months) == expected
