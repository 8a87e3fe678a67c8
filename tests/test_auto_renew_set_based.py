"""Auto-renewal writes each batch set-based: attempts claimed with their outcome and reason at once,
order lines carrying old and new expiry, devices moved by one UPDATE … FROM order_line on payment."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, update

import actions.billing_jobs as billing_jobs
from actions import DomainError
from actions.billing_jobs import auto_renew
from actions.orders import LineSpec, open_order, pay_with_balance
from models import AutoRenewAttempt, Device, db
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
    refused, renewed = attempt_of(due, "AC0002"), attempt_of(due, "AC0001")
    assert (refused.outcome, refused.order_id) == ("failed", None)
    assert refused.message == "AC0002: package GPS-Y is no longer sold"
    assert renewed.outcome == "renewed" and renewed.order_id is not None and renewed.message.startswith("RN")


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


def _moved_before_the_claim(monkeypatch, device_id: int, expires_on: date) -> None:
    """Another run or a person changes the device's expiry between the due scan and the claim."""
    claim = billing_jobs._AutoRenewal._claim

    def claim_after_the_change(self, *args, **kwargs):
        db.session.execute(update(Device).where(Device.id == device_id).values(expires_on=expires_on))
        return claim(self, *args, **kwargs)

    monkeypatch.setattr(billing_jobs._AutoRenewal, "_claim", claim_after_the_change)


def test_a_device_renewed_since_the_scan_is_not_renewed_again(app, due, monkeypatch):
    _moved_before_the_claim(monkeypatch, due.devices["AC0001"].id, date(2027, 1, 20))
    summary = auto_renew(db.session, TODAY)
    db.session.commit()
    assert (summary.renewed, summary.skipped, summary.orders) == (0, 1, ())
    assert expires(due, "AC0001") == date(2027, 1, 20)
    assert attempt_of(due, "AC0001") is None


def test_a_device_whose_expiry_moved_within_the_period_is_renewed_from_its_new_expiry(app, due, monkeypatch):
    _moved_before_the_claim(monkeypatch, due.devices["AC0001"].id, date(2026, 11, 25))
    summary = auto_renew(db.session, TODAY)
    db.session.commit()
    assert summary.renewed == 1
    assert expires(due, "AC0001") == date(2026, 12, 25)
    assert attempt_of(due, "AC0001").period_start == date(2026, 11, 25)
