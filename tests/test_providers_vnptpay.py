"""VNPT Pay against a local fake (tests/provider_fakes.py): the payer is redirected to the payment
page; a signed IPN pays once (even ten at a time) and is answered with a signed "00"; forged,
edited, foreign, other-currency or unknown IPNs are refused, recorded and pay nothing;
reconcile-payments and the payer's return settle a lost IPN; refunds accepted and refused; the
subscription checkout's online payment goes to VNPT Pay."""
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
from actions.providers.vnptpay import secure_code
from conftest import post
from models import LedgerEntry, Order, OrderRefund, RefusedNotification, db, utcnow
from provider_fakes import FakeVNPTPay, provider_fixtures
from tests.test_renewals import balance, fresh, make_order

CALLBACK = "/payments/callback/vnptpay"


vnpt, vnpt_apps, app, client = provider_fixtures(FakeVNPTPay, "vnpt")


def new_order(company, total="1200000", currency="VND") -> Order:
    order = make_order(company, "recharge", "pending", total, currency=currency, number=f"RC{secrets.token_hex(8)}")
    db.session.commit()
    return order


@pytest.fixture
def recharge(world) -> Order:
    return new_order(world.acme)


def open_at_vnpt(client, login, order: Order) -> None:
    login("customer")
    response = post(client, f"/payments/pay/{order.number}/vnptpay")
    assert response.status_code == 302, response.get_data(as_text=True)
    page = requests.get(response.headers["Location"], timeout=10)
    assert page.status_code == 200 and "VNPT Pay" in page.text


def notify(client, headers: dict, body: bytes):
    return client.post(CALLBACK, data=body, headers=headers)


def entries(order: Order) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.order_id == order.id))


def refusals() -> list[RefusedNotification]:
    db.session.expire_all()
    return list(db.session.scalars(select(RefusedNotification).order_by(RefusedNotification.id)))


def test_the_payer_is_redirected_with_a_signed_init(client, login, vnpt, recharge):
    open_at_vnpt(client, login, recharge)
    init = next(r for r in vnpt.requests if r.get("ACTION") == "INIT" and r["MERCHANT_ORDER_ID"] == recharge.number)
    assert (init["AMOUNT"], init["CURRENCY_CODE"]) == ("1200000", "704")
    assert init["SECURE_CODE"] == secure_code(init, "INIT", vnpt.secret_key)
    assert init["NOTIFY_URL"].endswith(CALLBACK)
    assert init["RETURN_URL"].endswith(f"/payments/return/{recharge.number}/vnptpay")


def test_a_signed_ipn_pays_once_and_is_answered_signed(client, login, vnpt, world, recharge):
    open_at_vnpt(client, login, recharge)
    trade = vnpt.pay(recharge.number)
    response = notify(client, *vnpt.notification(trade))
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["RESPONSE_CODE"] == "00" and answer["SECURE_CODE"] == secure_code(answer, "IPN_ANSWER",
                                                                                     vnpt.secret_key)
    order = fresh(Order, recharge.id)
    assert (order.status, order.payment_method, order.provider_ref) == ("paid", "vnptpay",
                                                                        trade["VNPTPAY_TRANSACTION_ID"])
    assert balance(world.acme, "VND") == Decimal("1200000")
    assert notify(client, *vnpt.notification(trade)).get_json()["RESPONSE_CODE"] == "00"
    assert entries(recharge) == 1 and refusals() == []


def test_the_same_ipn_ten_times_at_once_pays_once(vnpt_apps, client, login, vnpt, world, recharge):
    open_at_vnpt(client, login, recharge)
    headers, body = vnpt.notification(vnpt.pay(recharge.number))
    codes, start = [], threading.Barrier(10)

    def deliver():
        sender = vnpt_apps[1].test_client()
        start.wait()
        codes.append(notify(sender, headers, body).get_json()["RESPONSE_CODE"])

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == ["00"] * 10
    assert entries(recharge) == 1 and balance(world.acme, "VND") == Decimal("1200000")


def _forged(vnpt, trade, world):
    return vnpt.notification(trade, secret="not-the-merchant-secret")


def _edited_after_signing(vnpt, trade, world):
    headers, body = vnpt.notification(trade)
    fields = json.loads(body)
    fields["AMOUNT"] = "1000"
    return headers, json.dumps(fields).encode()


def _amount_edited(vnpt, trade, world):
    return vnpt.notification(trade, AMOUNT="1000")


def _other_currency(vnpt, trade, world):
    return vnpt.notification(trade, CURRENCY_CODE="840")


def _unknown_order(vnpt, trade, world):
    return vnpt.notification(trade, MERCHANT_ORDER_ID="RC20991231-999999")


def _other_merchant(vnpt, trade, world):
    return vnpt.notification(trade, MERCHANT_SERVICE_ID="5000999")


@pytest.mark.parametrize("make, reason", [
    (_forged, "bad_signature"), (_edited_after_signing, "bad_signature"), (_amount_edited, "amount_mismatch"),
    (_other_currency, "currency_mismatch"), (_unknown_order, "unknown_order"), (_other_merchant, "bad_signature"),
])
def test_bad_ipns_are_refused_recorded_and_pay_nothing(client, login, vnpt, world, recharge, make, reason):
    open_at_vnpt(client, login, recharge)
    response = notify(client, *make(vnpt, vnpt.pay(recharge.number), world))
    assert response.status_code == 400 and response.get_json()["RESPONSE_CODE"] != "00"
    [refused] = refusals()
    assert (refused.reason, refused.method) == (reason, "vnptpay")
    assert fresh(Order, recharge.id).status == "pending"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_a_failed_payment_ipn_is_acknowledged_and_pays_nothing(client, login, vnpt, recharge):
    open_at_vnpt(client, login, recharge)
    trade = dict(vnpt.trades[recharge.number], VNPTPAY_TRANSACTION_ID="VPfailed", PAY_DATE="20261201120000")
    assert notify(client, *vnpt.notification(trade, RESPONSE_CODE="24")).get_json()["RESPONSE_CODE"] == "00"
    assert fresh(Order, recharge.id).status == "pending" and refusals() == []


def test_reconcile_payments_settles_a_lost_ipn(vnpt_apps, client, login, vnpt, world, recharge):
    open_at_vnpt(client, login, recharge)
    vnpt.pay(recharge.number)
    db.session.execute(update(Order).where(Order.id == recharge.id).values(created_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    result = vnpt_apps[1].test_cli_runner().invoke(args=["billing", "reconcile-payments"])
    assert result.exit_code == 0, result.output
    assert "1 orders paid, 0 still unpaid, 0 failed" in result.output
    assert fresh(Order, recharge.id).status == "paid" and balance(world.acme, "VND") == Decimal("1200000")


def test_returning_from_vnpt_pay_queries_it(client, login, vnpt, world, recharge):
    open_at_vnpt(client, login, recharge)
    vnpt.pay(recharge.number)
    # The return's own parameters are not trusted (forged here): only the signed query counts.
    client.get(f"/payments/return/{recharge.number}/vnptpay?RESPONSE_CODE=00&SECURE_CODE=forged")
    assert fresh(Order, recharge.id).status == "paid"


def paid_with_vnpt(client, login, vnpt, recharge) -> Order:
    open_at_vnpt(client, login, recharge)
    assert notify(client, *vnpt.notification(vnpt.pay(recharge.number))).status_code == 200
    return fresh(Order, recharge.id)


def test_a_refund_goes_back_through_vnpt_pay(app, client, login, vnpt, world, recharge):
    order = paid_with_vnpt(client, login, vnpt, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    assert approve_refund(db.session, world.users["admin"], refund, utcnow().date()) == "completed"
    db.session.commit()
    refund = fresh(OrderRefund, refund.id)
    sent = vnpt.refunds[f"{order.number}-R{refund.id}"]
    assert refund.provider_refund_id == sent["REFUND_TRANSACTION_ID"]
    assert (sent["AMOUNT"], sent["VNPTPAY_TRANSACTION_ID"]) == ("1200000", order.provider_ref)
    assert fresh(Order, order.id).status == "refunded"


def test_a_refund_vnpt_pay_refuses_stays_failed_with_the_reason(app, client, login, vnpt, world, recharge):
    order = paid_with_vnpt(client, login, vnpt, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    db.session.commit()
    vnpt.refuse_refunds = "Giao dịch không đủ điều kiện hoàn tiền"
    result = approve_refunds(db.session, world.users["admin"], [refund], utcnow().date())
    db.session.commit()
    assert result.changed == ()
    refund = fresh(OrderRefund, refund.id)
    assert refund.status == "failed" and "không đủ điều kiện" in refund.failure_reason
    assert fresh(Order, order.id).status == "paid" and balance(world.acme, "VND") == Decimal("1200000")


def test_back_from_vnpt_pay_a_subscription_payer_lands_on_the_subscription(client, login, vnpt, world):
    """Seed 003 (ON flow): after paying at VNPT Pay the payer sees the subscription registered, not the
    renewal center's order page."""
    from actions import subscriptions as subs
    from test_subscriptions import checkout, cycle_of

    subscription = checkout(world.users["customer"], world.acme, subs.Selection(cycle_of("MEET-BASIC", 1).id, None,
                                                                                  (), (), None), pay_method="online")
    order = subs.start_order(db.session, subscription)
    db.session.commit()
    open_at_vnpt(client, login, order)
    vnpt.pay(order.number)
    back = client.get(f"/payments/return/{order.number}/vnptpay")
    assert fresh(Order, order.id).status == "paid"
    assert back.headers["Location"] == f"/admin/subscription/view/{subscription.id}/"
