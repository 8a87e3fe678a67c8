"""An order of a service sold offline (seed 003's OS flow) is paid from the balance or in cash to sales, on every
page that pays orders — not only at checkout; and once sales has entered the cash, the order is reserved for it
in the database (payment_method = cash while pending): no other payment, cancellation or job takes it, even one
that passed the friendly check a moment before the cash was entered."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

import actions.orders as orders
from actions import DomainError
from actions import subscriptions as subs
from actions.orders import cancel_order, cancel_stale_orders, pay_with_balance
from actions.wallets import credit, wallet_for
from conftest import confirm_post, post, race
from db_snapshot import changed_tables, snapshot
from models import CashReceipt, LedgerEntry, Order, PaymentAttempt, Subscription, SubscriptionEvent, User, db
from test_subscriptions import TODAY, _active, now
from test_hostile_os_and_profile import os_subscription

REFUSED = "which is sold offline (OS): pay it from the balance or in cash to sales, not online"


def _funded(world, order: Order) -> None:
    credit(db.session, wallet_for(db.session, world.acme.id, order.currency), order.total, "recharge",
           f"fund-{order.number}")
    db.session.commit()


def _os_order(world) -> tuple[Subscription, Order]:
    subscription = os_subscription(world.users["customer"], world.acme)
    return subscription, subs.start_order(db.session, subscription)


def test_the_order_pay_page_offers_no_online_payment_for_an_os_service(client, login, world):
    subscription, order = _os_order(world)
    number = order.number
    _funded(world, order)
    login("customer")
    pay_page = f"/admin/renewal_center/order/{number}/pay/"
    page = client.get(pay_page).get_data(as_text=True)
    assert 'id="rd-method-balance"' in page
    assert 'id="rd-method-alipay"' not in page and 'id="rd-method-wechat"' not in page
    assert REFUSED in page.split('id="rd-online-refused"')[1].split("</p>")[0]
    before = snapshot()
    for answer in (post(client, pay_page, {"method": "alipay"}, follow_redirects=True),
                   client.get(f"/sandbox/pay/{number}?method=alipay", follow_redirects=True),
                   post(client, f"/sandbox/pay/{number}?method=wechat", {}, follow_redirects=True)):
        text = answer.get_data(as_text=True)
        assert REFUSED in text and 'id="rd-sandbox-form"' not in text
    assert changed_tables(before) == []
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0
    answer = post(client, pay_page, {"method": "balance"}, follow_redirects=True)
    assert "from the balance" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Order, order.id).status == "paid"
    assert db.session.get(Subscription, subscription.id).status == "active"


def test_the_pay_page_of_an_on_service_order_still_offers_online(client, login, world):
    subscription = os_subscription(world.users["customer"], world.acme, plan="OFFICE-STD", method="balance")
    order = subs.start_order(db.session, subscription)
    db.session.commit()
    login("customer")
    page = client.get(f"/admin/renewal_center/order/{order.number}/pay/").get_data(as_text=True)
    assert 'id="rd-method-alipay"' in page and 'id="rd-online-refused"' not in page


def test_the_reservation_is_in_the_database(world):
    """Entering cash sets the pending order's payment method to cash; a second entry is refused."""
    subscription, order = _os_order(world)
    subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY, "PT-1")
    db.session.commit()
    row = db.session.get(Order, order.id)
    assert (row.status, row.payment_method) == ("pending", "cash")
    assert not orders.reserve_for_cash(db.session, row)


@pytest.fixture
def check_passes_once(monkeypatch):
    """The friendly check before the claim (refuse_if_cash_awaits) sees no cash: it ran a moment before sales
    entered it. Later calls (naming the receipt after the claim lost) are the real check."""
    real, calls = orders.refuse_if_cash_awaits, []

    def stale(session, order):
        calls.append(order.id)
        if len(calls) > 1:
            real(session, order)

    monkeypatch.setattr(orders, "refuse_if_cash_awaits", stale)
    return calls


def test_a_balance_payment_that_passed_the_check_loses_to_the_cash(world, check_passes_once):
    subscription, order = _os_order(world)
    _funded(world, order)
    subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY, "PT-1")
    db.session.commit()
    ledger = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    with pytest.raises(DomainError, match="awaiting finance's confirmation"):
        pay_with_balance(db.session, world.users["customer"], db.session.get(Order, order.id), TODAY)
    db.session.rollback()
    assert db.session.get(Order, order.id).status == "pending"
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == ledger
    with pytest.raises(DomainError, match="awaiting finance's confirmation"):
        orders.pay_offline(db.session, world.users["admin"], db.session.get(Order, order.id), "bank_transfer", TODAY)
    db.session.rollback()
    with pytest.raises(DomainError, match="awaiting finance's confirmation"):
        orders.mark_paid(db.session, db.session.get(Order, order.id), "alipay", "ALI-1", order.total,
                         order.currency, TODAY)
    db.session.rollback()
    receipt = db.session.scalar(select(CashReceipt).where(CashReceipt.order_id == order.id))
    subs.confirm_cash_receipt(db.session, world.users["finance"], receipt, TODAY)
    db.session.commit()
    row = db.session.get(Order, order.id)
    assert (row.status, row.payment_method, row.provider_ref) == ("paid", "cash", f"cash-{receipt.id}")
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == ledger  # no wallet moved


def test_neither_the_customer_nor_the_stale_order_job_cancels_a_reserved_order(world, monkeypatch):
    subscription, order = _os_order(world)
    subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY, "PT-1")
    db.session.commit()
    with pytest.raises(DomainError, match="cannot be cancelled now"):
        cancel_order(db.session, world.users["customer"], db.session.get(Order, order.id))
    db.session.rollback()
    monkeypatch.setattr(orders, "_AWAITING_CONFIRMATION", [])  # the reservation alone keeps it
    cancel_stale_orders(db.session, timedelta(hours=1), now() + timedelta(days=30))
    db.session.commit()
    assert db.session.get(Order, order.id).status == "pending"


def test_a_subscription_whose_renewal_cash_awaits_finance_does_not_expire(world):
    """Past due, the grace days over: the customer paid the renewal in cash to sales the day before; the job
    keeps the subscription past due and the order pending, and finance's confirmation renews it."""
    subscription = _active(world)
    subscription.renewal_method, subscription.auto_renew = "cash", False
    db.session.commit()
    end = subscription.period_end
    subs.run_billing(db.session, end - timedelta(days=7), now())
    db.session.commit()
    subs.run_billing(db.session, end, now())
    db.session.commit()
    row = db.session.get(Subscription, subscription.id)
    assert row.status == "past_due"
    receipt = subs.enter_cash_receipt(db.session, world.users["sales"], row, row.grace_until - timedelta(days=1),
                                      "PT-7", today=row.grace_until)
    db.session.commit()
    report = subs.run_billing(db.session, row.grace_until + timedelta(days=1), now())
    db.session.commit()
    assert row.number not in report.expired
    db.session.expire_all()
    assert db.session.get(Subscription, subscription.id).status == "past_due"
    assert db.session.get(Order, receipt.order_id).status == "pending"
    subs.confirm_cash_receipt(db.session, world.users["finance"], db.session.get(CashReceipt, receipt.id),
                              row.grace_until + timedelta(days=1))
    db.session.commit()
    renewed = db.session.get(Subscription, subscription.id)
    assert renewed.status == "active" and renewed.period_start == end


def test_cash_entered_while_the_customer_pays_from_the_balance_one_wins(app, world):
    """Two sessions at the same moment: sales entering the cash, the customer paying from the balance. The
    database decides: exactly one succeeds, and the order is paid once (by the balance) or reserved for the cash."""
    subscription, order = _os_order(world)
    _funded(world, order)
    ids = {"subscription": subscription.id, "order": order.id, "sales": world.users["sales"].id,
           "customer": world.users["customer"].id}
    db.session.remove()

    def enter_cash():
        subs.enter_cash_receipt(db.session, db.session.get(User, ids["sales"]),
                                db.session.get(Subscription, ids["subscription"]), TODAY, "PT-1")

    def pay():
        pay_with_balance(db.session, db.session.get(User, ids["customer"]), db.session.get(Order, ids["order"]),
                         TODAY)

    (cash, paid), errors = race(app, [enter_cash, pay])
    assert not errors, errors
    assert sorted([cash, paid]) == ["refused", "won"]
    row = db.session.get(Order, ids["order"])
    receipts = db.session.scalars(select(CashReceipt).where(CashReceipt.order_id == ids["order"])).all()
    if paid == "won":
        assert (row.status, row.payment_method, receipts) == ("paid", "balance", [])
    else:
        assert (row.status, row.payment_method, len(receipts)) == ("pending", "cash", 1)


# --- finance rejects a wrong receipt ---------------------------------------------------------------------------

def _entered(world) -> tuple[Subscription, Order, CashReceipt]:
    subscription, order = _os_order(world)
    receipt = subs.enter_cash_receipt(db.session, world.users["sales"], subscription, TODAY, "PT-1")
    db.session.commit()
    return subscription, order, receipt


def test_finance_rejects_a_wrong_receipt_with_a_reason_and_sales_enters_the_right_one(client, login, world):
    subscription, order, receipt = _entered(world)
    login("finance")
    listed = client.get("/admin/cashreceipt/").get_data(as_text=True)
    assert f"/admin/cashreceipt/review/?id={receipt.id}" in listed
    page = client.get(f"/admin/cashreceipt/review/?id={receipt.id}").get_data(as_text=True)
    assert 'id="rd-cash-reject"' in page and order.number in page
    before = snapshot()
    answer = post(client, "/admin/cashreceipt/reject/", {"id": receipt.id, "reason": "  "}, follow_redirects=True)
    assert "give the reason" in answer.get_data(as_text=True)
    assert changed_tables(before) == []
    answer = confirm_post(client, "/admin/cashreceipt/reject/",
                          {"id": receipt.id, "reason": "<b>no cash</b> at the counter"}, follow_redirects=True)
    text = answer.get_data(as_text=True)
    assert f"Cash receipt #{receipt.id} rejected" in text and "<b>no cash</b>" not in text
    db.session.expire_all()
    row = db.session.get(CashReceipt, receipt.id)
    assert (row.status, row.reject_reason, row.confirmed_by_id) == (
        "rejected", "<b>no cash</b> at the counter", world.users["finance"].id)
    assert (db.session.get(Order, order.id).status, db.session.get(Order, order.id).payment_method) == ("pending", None)
    kinds = [e.kind for e in db.session.scalars(select(SubscriptionEvent).where(
        SubscriptionEvent.subscription_id == subscription.id))]
    assert "cash_rejected" in kinds
    # rejected twice (a double click): refused, nothing changes
    before = snapshot()
    answer = confirm_post(client, "/admin/cashreceipt/reject/", {"id": receipt.id, "reason": "again"},
                          required=False, follow_redirects=True)
    assert "is not awaiting confirmation" in answer.get_data(as_text=True)
    assert changed_tables(before) == []
    # sales enters the right receipt; another finance person confirms it
    right = subs.enter_cash_receipt(db.session, world.users["sales"], db.session.get(Subscription, subscription.id),
                                    TODAY, "PT-2")
    db.session.commit()
    subs.confirm_cash_receipt(db.session, world.users["finance"], right, TODAY)
    db.session.commit()
    assert db.session.get(Order, order.id).status == "paid"
    assert db.session.get(Subscription, subscription.id).status == "active"


def test_after_a_rejection_the_order_can_be_paid_or_cancelled_again(world):
    subscription, order, receipt = _entered(world)
    subs.reject_cash_receipt(db.session, world.users["finance"], receipt, "wrong day")
    db.session.commit()
    assert subs.awaiting_cash() is not None
    assert db.session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.id == subscription.id, subs.awaiting_cash())) == 1  # back in sales' queue
    cancel_order(db.session, world.users["customer"], db.session.get(Order, order.id))
    db.session.commit()
    assert db.session.get(Order, order.id).status == "cancelled"


@pytest.mark.parametrize("who, message", [("sales", "Your role may not do this"),
                                          ("customer", "Your role may not do this")])
def test_only_finance_rejects_a_receipt(world, who, message):
    _subscription, order, receipt = _entered(world)
    with pytest.raises(DomainError):
        subs.reject_cash_receipt(db.session, world.users[who], receipt, "no")
    db.session.rollback()
    assert db.session.get(CashReceipt, receipt.id).status == "submitted"


def test_the_database_keeps_one_open_receipt_per_order(world):
    from sqlalchemy.exc import IntegrityError

    _subscription, order, receipt = _entered(world)
    db.session.add(CashReceipt(subscription_id=receipt.subscription_id, order_id=order.id,
                               company_id=receipt.company_id, currency=receipt.currency,
                               amount_minor=receipt.amount_minor, received_on=TODAY,
                               entered_by_id=receipt.entered_by_id))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    row = db.session.get(CashReceipt, receipt.id)
    row.status = "rejected"  # without a reason
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_cash_received_today_is_the_sellers_today_not_the_servers(client, login, world, monkeypatch):
    """Sales in China enters cash at 01:00 local time (17:00 UTC the day before): the day it names, and the
    day the form fills in, are its own calendar day, not refused as a day in the future."""
    import admin_views.subscriptions as views
    from datetime import date as real_date

    subscription, order = _os_order(world)
    tomorrow = real_date.today() + timedelta(days=1)  # the seller's day, a day ahead of the server's
    monkeypatch.setattr(views, "local_today", lambda: tomorrow)
    login("sales")
    answer = post(client, f"/admin/subscription/view/{subscription.id}/cash/",
                  {"received_on": tomorrow.isoformat(), "reference": "PT-TZ"}, follow_redirects=True)
    assert "Cash receipt entered" in answer.get_data(as_text=True), answer.get_data(as_text=True)[-1500:]
    receipt = db.session.scalar(select(CashReceipt).where(CashReceipt.order_id == order.id))
    assert receipt.received_on == tomorrow
