"""The providers' callback (POST /payments/callback/<method>): signed notifications pay an order
exactly once; forged, mismatched or late ones answer 400 and move nothing; never a 500."""
from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from actions.orders import cancel_stale_orders
from actions.payments import online_methods, provider_for
from models import LedgerEntry, Order, db, utcnow
from tests.test_renewals import add_months, balance, expiry, fresh, make_order, order_number_from, renew_via_http


def notification(app, order: Order, method: str = "wechat", **changes) -> tuple[dict, str]:
    """The provider's signed notification for `order`, with fields changed *before* signing."""
    provider = provider_for(method, app.config["PAYMENT_SANDBOX_SECRET"])
    payload, _signature = provider.notification(order)
    payload.update(changes)
    return payload, provider.sign(payload)


def deliver(client, method: str, payload: dict, signature: str, as_json: bool = False):
    if as_json:
        return client.post(f"/payments/callback/{method}", data=json.dumps(dict(payload, signature=signature)),
                           content_type="application/json")
    return client.post(f"/payments/callback/{method}", data=payload, headers={"X-Signature": signature})


def recharge_entries(order: Order) -> list[LedgerEntry]:
    db.session.expire_all()
    return list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order.id)))


@pytest.fixture
def recharge(world) -> Order:
    order = make_order(world.acme, "recharge", "pending", "88.00", number="RC-CB-1")
    db.session.commit()
    return order


def test_online_methods_follow_the_currency():
    assert online_methods("CNY") == ("wechat", "alipay")
    assert online_methods("USD") == ("paypal",)
    assert online_methods("COIN") == ()


def test_a_signed_notification_pays_and_credits(app, client, world, recharge):
    payload, signature = notification(app, recharge)
    response = deliver(client, "wechat", payload, signature)
    assert (response.status_code, response.get_data(as_text=True)) == (200, "OK")
    order = fresh(Order, recharge.id)
    assert (order.status, order.payment_method, order.provider_ref) == ("paid", "wechat", payload["transaction_id"])
    assert balance(world.acme) == Decimal("88.00")


def test_json_notification_with_the_signature_field(app, client, world, recharge):
    payload, signature = notification(app, recharge, "alipay")
    response = deliver(client, "alipay", payload, signature, as_json=True)
    assert response.status_code == 200
    assert fresh(Order, recharge.id).payment_method == "alipay"


def test_replaying_a_notification_100_times_pays_once(app, client, world, recharge):
    payload, signature = notification(app, recharge)
    answers = {deliver(client, "wechat", payload, signature).status_code for _ in range(100)}
    assert answers == {200}
    assert fresh(Order, recharge.id).status == "paid"
    entries = recharge_entries(recharge)
    assert [(e.kind, e.amount) for e in entries] == [("recharge", Decimal("88.00"))]
    assert balance(world.acme) == Decimal("88.00")


def test_replayed_renewal_notification_renews_once(app, client, login, world):
    device = world.devices["AC0001"]
    before = device.expires_on
    login("customer")
    number = order_number_from(renew_via_http(client, world.acme, [device], months="6"))
    order = db.session.scalar(select(Order).where(Order.number == number))
    payload, signature = notification(app, order, "alipay")
    for _ in range(5):
        assert deliver(client, "alipay", payload, signature).status_code == 200
    assert expiry(device) == add_months(before, 6)


@pytest.mark.parametrize("case", ["bad_signature", "wrong_amount", "wrong_currency", "unknown_order",
                                  "missing_field", "unknown_method", "method_mismatch", "no_signature"])
def test_bad_notifications_answer_400_and_pay_nothing(app, client, world, recharge, case):
    method = "wechat"
    if case == "bad_signature":
        payload, _sig = notification(app, recharge)
        signature = "0" * 64
    elif case == "wrong_amount":
        payload, signature = notification(app, recharge, amount="8.80")
    elif case == "wrong_currency":
        payload, signature = notification(app, recharge, currency="USD")
    elif case == "unknown_order":
        payload, signature = notification(app, recharge, order_number="RC-NOPE")
    elif case == "missing_field":
        payload, signature = notification(app, recharge)
        del payload["transaction_id"]
    elif case == "unknown_method":
        payload, signature = notification(app, recharge)
        method = "bitcoin"
    elif case == "method_mismatch":
        payload, signature = notification(app, recharge)
        method = "alipay"
    else:
        payload, _sig = notification(app, recharge)
        signature = ""
    response = deliver(client, method, payload, signature)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "text/plain" and response.get_data(as_text=True)
    assert fresh(Order, recharge.id).status == "pending"
    assert recharge_entries(recharge) == []


def test_callback_reasons_are_short_and_specific(app, client, world, recharge):
    payload, _sig = notification(app, recharge)
    assert deliver(client, "wechat", payload, "x").get_data(as_text=True) == \
        "Bad signature on the payment notification."
    payload, signature = notification(app, recharge, order_number="RC-NOPE")
    assert deliver(client, "wechat", payload, signature).get_data(as_text=True) == "No order RC-NOPE."
    payload, signature = notification(app, recharge, amount="1.00")
    assert "does not match the order" in deliver(client, "wechat", payload, signature).get_data(as_text=True)


def test_a_garbage_body_is_400_not_500(client, world, recharge):
    response = client.post("/payments/callback/wechat", data="{not json", content_type="application/json")
    assert response.status_code == 400
    response = client.post("/payments/callback/wechat", data=json.dumps([1, 2]), content_type="application/json")
    assert response.status_code == 400
    response = client.post("/payments/callback/wechat", data=json.dumps({"amount": 5, "method": "wechat"}),
                           content_type="application/json")
    assert response.status_code == 400


def test_a_second_transaction_for_a_paid_order_is_refused(app, client, world, recharge):
    payload, signature = notification(app, recharge)
    assert deliver(client, "wechat", payload, signature).status_code == 200
    payload, signature = notification(app, fresh(Order, recharge.id))  # a new transaction id
    response = deliver(client, "wechat", payload, signature)
    assert response.status_code == 400 and "not awaiting payment" in response.get_data(as_text=True)
    assert len(recharge_entries(recharge)) == 1


def test_a_transaction_id_that_paid_another_order_is_refused(app, client, world, recharge):
    other = make_order(world.acme, "recharge", "pending", "88.00", number="RC-CB-2")
    db.session.commit()
    payload, signature = notification(app, recharge)
    assert deliver(client, "wechat", payload, signature).status_code == 200
    forged, forged_signature = notification(app, other, transaction_id=payload["transaction_id"])
    response = deliver(client, "wechat", forged, forged_signature)
    assert response.status_code == 400
    assert fresh(Order, other.id).status == "pending"
    assert balance(world.acme) == Decimal("88.00")


def test_a_stale_order_expires_and_its_late_notification_pays_nothing(app, client, world):
    hours = app.config["ORDER_PENDING_HOURS"]
    order = make_order(world.acme, "recharge", "pending", "40.00", number="RC-OLD-1",
                       created_at=utcnow() - timedelta(hours=hours, minutes=1))
    db.session.commit()
    payload, signature = notification(app, order)
    assert cancel_stale_orders(db.session, older_than=timedelta(hours=hours), now=utcnow()) == 1
    db.session.commit()
    assert fresh(Order, order.id).status == "cancelled"
    response = deliver(client, "wechat", payload, signature)
    assert response.status_code == 400 and "not awaiting payment" in response.get_data(as_text=True)
    assert fresh(Order, order.id).status == "cancelled"
    assert recharge_entries(order) == []
    assert balance(world.acme) == Decimal("0.00")


def test_callback_needs_no_csrf_token_or_session(app, client, world, recharge):
    payload, signature = notification(app, recharge)
    response = client.post("/payments/callback/wechat", data=dict(payload, signature=signature))
    assert response.status_code == 200 and fresh(Order, recharge.id).status == "paid"
