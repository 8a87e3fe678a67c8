"""PayPal against a local fake (tests/provider_fakes.py): Orders v2 create → approve → capture on
return; webhooks verified through PayPal's verify-webhook-signature pay once (even ten at a time);
forged, edited, foreign or unknown events are refused, recorded and pay nothing; reconcile-payments
captures an approved order whose payer never came back; refunds of the capture, accepted or refused."""
from __future__ import annotations

import json
import secrets
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select, update

from actions.orders import approve_refund, approve_refunds, request_refund
from conftest import make_app, post
from models import LedgerEntry, Order, OrderRefund, PaymentAttempt, RefusedNotification, db, utcnow
from provider_fakes import FakePayPal, provider_fixtures, rsa_key
from tests.test_renewals import balance, fresh, make_order

CALLBACK = "/payments/callback/paypal"


paypal, paypal_apps, app, client = provider_fixtures(FakePayPal, "paypal")


def new_order(company, total="88.00", currency="USD") -> Order:
    order = make_order(company, "recharge", "pending", total, currency=currency, number=f"RC{secrets.token_hex(8)}")
    db.session.commit()
    return order


@pytest.fixture
def recharge(world) -> Order:
    return new_order(world.acme)


def open_at_paypal(client, login, order: Order) -> str:
    """The customer is sent to PayPal to approve (followed to the fake); PayPal's order id."""
    login("customer")
    response = post(client, f"/payments/pay/{order.number}/paypal")
    assert response.status_code == 302, response.get_data(as_text=True)
    approval = requests.get(response.headers["Location"], timeout=10)
    assert approval.status_code == 200 and "PayPal Checkout" in approval.text
    return response.headers["Location"].split("token=", 1)[1]


def notify(client, headers: dict, body: bytes):
    return client.post(CALLBACK, data=body, headers=headers)


def entries(order: Order) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.order_id == order.id))


def refusals() -> list[RefusedNotification]:
    db.session.expire_all()
    return list(db.session.scalars(select(RefusedNotification).order_by(RefusedNotification.id)))


def test_the_payer_is_sent_to_paypal_with_the_order(client, login, paypal, recharge):
    paypal_id = open_at_paypal(client, login, recharge)
    created = paypal.orders[paypal_id]
    unit = created["purchase_units"][0]
    assert (unit["custom_id"], unit["amount"]) == (recharge.number, {"currency_code": "USD", "value": "88.00"})
    assert created["experience"]["return_url"].endswith(f"/payments/return/{recharge.number}/paypal")
    db.session.expire_all()
    attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.order_id == recharge.id))
    assert (attempt.method, attempt.reference) == ("paypal", paypal_id)
    assert open_at_paypal(client, login, recharge) == paypal_id  # PayPal-Request-Id: the same PayPal order


def test_approve_then_return_captures_and_pays_once(client, login, paypal, world, recharge):
    paypal_id = open_at_paypal(client, login, recharge)
    paypal.approve(paypal_id)
    back = client.get(f"/payments/return/{recharge.number}/paypal?token={paypal_id}&PayerID=QYR5Z8XDVJNXQ")
    assert back.status_code == 302
    order = fresh(Order, recharge.id)
    capture = paypal.capture_completed(recharge.number)
    assert (order.status, order.payment_method, order.provider_ref) == ("paid", "paypal", capture["id"])
    assert balance(world.acme, "USD") == Decimal("88.00")
    late = notify(client, *paypal.webhook("PAYMENT.CAPTURE.COMPLETED", capture))  # PayPal's webhook, after
    assert late.status_code == 200 and entries(recharge) == 1 and refusals() == []


def test_an_approved_order_webhook_captures_it(client, login, paypal, world, recharge):
    paypal_id = open_at_paypal(client, login, recharge)
    paypal.approve(paypal_id)
    response = notify(client, *paypal.webhook("CHECKOUT.ORDER.APPROVED", {"id": paypal_id, "status": "APPROVED"}))
    assert response.status_code == 200
    assert fresh(Order, recharge.id).status == "paid" and balance(world.acme, "USD") == Decimal("88.00")


def test_the_same_webhook_ten_times_at_once_pays_once(paypal_apps, client, login, paypal, world, recharge):
    open_at_paypal(client, login, recharge)
    headers, body = paypal.webhook("PAYMENT.CAPTURE.COMPLETED", paypal.capture(recharge.number))
    statuses, start = [], threading.Barrier(10)

    def deliver():
        sender = paypal_apps[1].test_client()
        start.wait()
        statuses.append(notify(sender, headers, body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    assert entries(recharge) == 1 and balance(world.acme, "USD") == Decimal("88.00")


def _forged(paypal, capture):
    return paypal.webhook("PAYMENT.CAPTURE.COMPLETED", capture, key=rsa_key())


def _edited_after_signing(paypal, capture):
    headers, body = paypal.webhook("PAYMENT.CAPTURE.COMPLETED", capture)
    return headers, body.replace(b'"value": "88.00"', b'"value": "8.00"')


def _amount_edited(paypal, capture):
    return paypal.webhook("PAYMENT.CAPTURE.COMPLETED", dict(capture, amount={"currency_code": "USD", "value": "1.00"}))


def _other_currency(paypal, capture):
    return paypal.webhook("PAYMENT.CAPTURE.COMPLETED", dict(capture, amount={"currency_code": "CNY", "value": "88.00"}))


def _unknown_order(paypal, capture):
    return paypal.webhook("PAYMENT.CAPTURE.COMPLETED", dict(capture, custom_id="RC20991231-999999"))


def _other_webhook(paypal, capture):
    return paypal.webhook("PAYMENT.CAPTURE.COMPLETED", capture, webhook_id="0EH40505U7160970P")


def _unsigned(paypal, capture):
    headers, body = paypal.webhook("PAYMENT.CAPTURE.COMPLETED", capture)
    return {"Content-Type": "application/json"}, body


@pytest.mark.parametrize("make, reason", [
    (_forged, "bad_signature"), (_edited_after_signing, "bad_signature"), (_amount_edited, "amount_mismatch"),
    (_other_currency, "currency_mismatch"), (_unknown_order, "unknown_order"), (_other_webhook, "bad_signature"),
    (_unsigned, "bad_signature"),
])
def test_bad_webhooks_are_refused_recorded_and_pay_nothing(client, login, paypal, world, recharge, make, reason):
    open_at_paypal(client, login, recharge)
    headers, body = make(paypal, paypal.capture(recharge.number))
    assert notify(client, headers, body).status_code == 400
    [refused] = refusals()
    assert (refused.reason, refused.method) == (reason, "paypal")
    assert fresh(Order, recharge.id).status == "pending"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_reconcile_payments_captures_an_order_whose_payer_never_came_back(paypal_apps, client, login, paypal, world,
                                                                           recharge):
    paypal.approve(open_at_paypal(client, login, recharge))
    waiting = new_order(world.acme, "5.00")
    open_at_paypal(client, login, waiting)  # never approved
    db.session.execute(update(Order).where(Order.id.in_([recharge.id, waiting.id]))
                       .values(created_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    result = paypal_apps[1].test_cli_runner().invoke(args=["billing", "reconcile-payments"])
    assert result.exit_code == 0, result.output
    assert "1 orders paid, 1 still unpaid, 0 failed" in result.output
    assert fresh(Order, recharge.id).provider_ref == paypal.capture_completed(recharge.number)["id"]
    assert fresh(Order, waiting.id).status == "pending" and balance(world.acme, "USD") == Decimal("88.00")


def paid_with_paypal(client, login, paypal, recharge) -> Order:
    paypal.approve(open_at_paypal(client, login, recharge))
    client.get(f"/payments/return/{recharge.number}/paypal")
    order = fresh(Order, recharge.id)
    assert order.status == "paid"
    return order


def test_a_refund_goes_back_to_the_capture(app, client, login, paypal, world, recharge):
    order = paid_with_paypal(client, login, paypal, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    assert approve_refund(db.session, world.users["admin"], refund, utcnow().date()) == "completed"
    db.session.commit()
    refund = fresh(OrderRefund, refund.id)
    sent = paypal.refunds[f"{order.number}-R{refund.id}"]
    assert refund.provider_refund_id == sent["id"] and sent["capture_id"] == order.provider_ref
    assert sent["amount"] == {"value": "88.00", "currency_code": "USD"}
    assert fresh(Order, order.id).status == "refunded" and balance(world.acme, "USD") == Decimal("0.00")


@pytest.mark.parametrize("later, status, reason", [("COMPLETED", "completed", ""),
                                                  ("FAILED", "not_paid_out", "FAILED ECHECK")])
def test_a_pending_refund_is_on_its_way_until_finance_asks_paypal(app, client, login, paypal, world, recharge, later,
                                                                  status, reason):
    """PayPal answers some refunds PENDING: they were marked "completed" at once. Now they are on their way
    until PayPal says otherwise; finance asks from the refund list."""
    order = paid_with_paypal(client, login, paypal, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    paypal.refund_status = "PENDING"
    assert approve_refund(db.session, world.users["admin"], refund, utcnow().date()) == "processing"
    db.session.commit()
    login.logout()
    login("finance")
    listed = client.get("/admin/orderrefund/?flt0_status_equals=processing").get_data(as_text=True)
    assert "Refund on its way" in listed and order.number in listed
    ask = [("action", "check"), ("rowid", str(refund.id))]
    assert "Still on its way" in client.get(post(client, "/admin/orderrefund/action/", ask).headers["Location"]) \
        .get_data(as_text=True)
    assert fresh(OrderRefund, refund.id).status == "processing"
    paypal.pay_out(fresh(OrderRefund, refund.id).provider_refund_id, later, "ECHECK" if later == "FAILED" else "")
    page = client.get(post(client, "/admin/orderrefund/action/", ask).headers["Location"]).get_data(as_text=True)
    assert ("Paid out: " if later == "COMPLETED" else "Not paid out by the provider") in page
    refund = fresh(OrderRefund, refund.id)
    assert (refund.status, refund.failure_reason) == (status, reason)
    assert (refund.completed_at is not None) == (status == "completed")
    assert fresh(Order, order.id).status == "refunded" and balance(world.acme, "USD") == Decimal("0.00")


def test_a_refund_paypal_refuses_stays_failed_with_the_reason(app, client, login, paypal, world, recharge):
    order = paid_with_paypal(client, login, paypal, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    db.session.commit()
    paypal.refuse_refunds = "Insufficient funds in the merchant account."
    result = approve_refunds(db.session, world.users["admin"], [refund], utcnow().date())
    db.session.commit()
    assert result.changed == ()
    refund = fresh(OrderRefund, refund.id)
    assert refund.status == "failed" and "Insufficient funds" in refund.failure_reason
    order = fresh(Order, order.id)
    assert (order.status, order.refunded_minor) == ("paid", 0) and balance(world.acme, "USD") == Decimal("88.00")


def test_a_webhook_arriving_while_paypal_is_unreachable_asks_for_a_retry(paypal_apps, database_url, client, login,
                                                                          paypal, recharge):
    unreachable = make_app(database_url, **paypal.config("http://127.0.0.1:9"))
    headers, body = paypal.webhook("PAYMENT.CAPTURE.COMPLETED", {"id": "X", "status": "COMPLETED"})
    response = unreachable.test_client().post(CALLBACK, data=body, headers=headers)
    assert response.status_code == 503 and refusals() == []
    assert json.loads(body)["event_type"] == "PAYMENT.CAPTURE.COMPLETED"
