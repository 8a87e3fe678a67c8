"""Alipay against a local fake (tests/provider_fakes.py): page pay redirects to the signed cashier,
pre-create shows the QR code; a verified notification pays once (even ten at a time) and is answered
`success`; forged, edited, foreign or unknown notifications are refused, recorded and pay nothing;
reconcile-payments and the payer's return settle a lost notification; refunds go back through
Alipay, a refusal leaves them failed."""
from __future__ import annotations

import secrets
import threading
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import func, select, update

from actions.orders import approve_refund, approve_refunds, request_refund
from conftest import make_app, post
from models import LedgerEntry, Order, OrderRefund, PaymentAttempt, RefusedNotification, db, utcnow
from provider_fakes import FakeAlipay, provider_fixtures, rsa_key
from tests.test_renewals import balance, fresh, make_order

CALLBACK = "/payments/callback/alipay"


alipay, alipay_apps, app, client = provider_fixtures(FakeAlipay, "alipay")


def new_order(company, total="88.00", currency="CNY") -> Order:
    # A number of its own per test: the fake keeps its trades for the whole module.
    order = make_order(company, "recharge", "pending", total, currency=currency, number=f"RC{secrets.token_hex(8)}")
    db.session.commit()
    return order


@pytest.fixture
def recharge(world) -> Order:
    return new_order(world.acme)


def open_at_alipay(client, login, order: Order) -> str:
    """The customer goes to Alipay's cashier for the order (followed to the fake); the redirect URL."""
    login("customer")
    response = post(client, f"/payments/pay/{order.number}/alipay")
    assert response.status_code == 302, response.get_data(as_text=True)
    cashier = requests.get(response.headers["Location"], timeout=10)
    assert cashier.status_code == 200 and "收银台" in cashier.text
    return response.headers["Location"]


def notify(client, headers: dict, body: bytes):
    return client.post(CALLBACK, data=body, headers=headers)


def order_entries(order: Order) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.order_id == order.id))


def refusals() -> list[RefusedNotification]:
    db.session.expire_all()
    return list(db.session.scalars(select(RefusedNotification).order_by(RefusedNotification.id)))


def test_page_pay_redirects_to_the_signed_cashier(client, login, alipay, recharge):
    location = open_at_alipay(client, login, recharge)
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert params["method"] == "alipay.trade.page.pay" and params["sign_type"] == "RSA2"
    trade = alipay.trades[recharge.number]
    assert trade["total_amount"] == "88.00"
    assert trade["notify_url"].endswith(CALLBACK)
    assert trade["return_url"].endswith(f"/payments/return/{recharge.number}/alipay")
    assert fresh(Order, recharge.id).status == "pending"


def test_qr_mode_shows_the_precreated_qr_code(database_url, app, alipay, world):
    order = new_order(world.acme, "12800.00")
    qr_app = make_app(database_url, **alipay.config(alipay.url, mode="qr"))
    client = qr_app.test_client()
    from conftest import Login

    Login(client)("customer")
    page = post(client, f"/payments/pay/{order.number}/alipay", follow_redirects=True)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and 'data-code="https://qr.alipay.com/bax0' in html
    assert alipay.trades[order.number]["total_amount"] == "12800.00"
    asked = len(alipay.requests)
    reload = client.get(f"/payments/pay/{order.number}/alipay")  # the same pre-created code, Alipay not asked
    code = html.split('data-code="', 1)[1].split('"', 1)[0]
    assert f'data-code="{code}"' in reload.get_data(as_text=True) and len(alipay.requests) == asked


def test_a_get_after_the_cashier_opens_nothing(client, login, alipay, recharge):
    """Page pay keeps no QR code: a GET of the pay page (the payer's reload, a link) offers the button again."""
    open_at_alipay(client, login, recharge)
    asked = len(alipay.requests)
    page = client.get(f"/payments/pay/{recharge.number}/alipay")
    assert page.status_code == 200 and 'id="rd-provider-start"' in page.get_data(as_text=True)
    assert "<svg" not in page.get_data(as_text=True) and len(alipay.requests) == asked
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(PaymentAttempt)
                             .where(PaymentAttempt.order_id == recharge.id)) == 1


def test_a_verified_notification_pays_once_and_answers_success(client, login, alipay, world, recharge):
    open_at_alipay(client, login, recharge)
    trade = alipay.pay(recharge.number)
    first = notify(client, *alipay.notification(trade))
    assert (first.status_code, first.get_data(as_text=True)) == (200, "success")
    order = fresh(Order, recharge.id)
    assert (order.status, order.payment_method, order.provider_ref) == ("paid", "alipay", trade["trade_no"])
    assert balance(world.acme) == Decimal("88.00")
    again = notify(client, *alipay.notification(trade, trade_status="TRADE_FINISHED"))
    assert again.get_data(as_text=True) == "success"
    assert order_entries(recharge) == 1 and refusals() == []


def test_the_same_notification_ten_times_at_once_pays_once(alipay_apps, client, login, alipay, world, recharge):
    open_at_alipay(client, login, recharge)
    headers, body = alipay.notification(alipay.pay(recharge.number))
    answers, start = [], threading.Barrier(10)

    def deliver():
        sender = alipay_apps[1].test_client()
        start.wait()
        answers.append(notify(sender, headers, body).get_data(as_text=True))

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["success"] * 10
    assert order_entries(recharge) == 1 and balance(world.acme) == Decimal("88.00")


def _forged(alipay, trade, world):
    return alipay.notification(trade, key=rsa_key())


def _edited_after_signing(alipay, trade, world):
    headers, body = alipay.notification(trade)
    return headers, body.replace(b"total_amount=88.00", b"total_amount=8.00")


def _amount_edited(alipay, trade, world):
    return alipay.notification(trade, total_amount="0.01")


def _other_currency(alipay, trade, world):
    usd = new_order(world.acme, "88.00", "USD")
    return alipay.notification(trade, out_trade_no=usd.number)


def _unknown_order(alipay, trade, world):
    return alipay.notification(trade, out_trade_no="RC20991231-999999")


def _other_app(alipay, trade, world):
    return alipay.notification(trade, app_id="2021000000000000")


def _unsigned(alipay, trade, world):
    headers, body = alipay.notification(trade)
    return headers, body.split(b"&sign=")[0]


@pytest.mark.parametrize("make, reason", [
    (_forged, "bad_signature"), (_edited_after_signing, "bad_signature"), (_amount_edited, "amount_mismatch"),
    (_other_currency, "currency_mismatch"), (_unknown_order, "unknown_order"), (_other_app, "bad_signature"),
    (_unsigned, "bad_signature"),
])
def test_bad_notifications_are_refused_recorded_and_pay_nothing(client, login, alipay, world, recharge, make, reason):
    open_at_alipay(client, login, recharge)
    headers, body = make(alipay, alipay.pay(recharge.number), world)
    response = notify(client, headers, body)
    assert (response.status_code, response.get_data(as_text=True)) == (400, "fail")
    [refused] = refusals()
    assert (refused.reason, refused.method) == (reason, "alipay")
    assert fresh(Order, recharge.id).status == "pending"
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_a_closed_trade_is_acknowledged_and_pays_nothing(client, login, alipay, recharge):
    open_at_alipay(client, login, recharge)
    trade = dict(alipay.trades[recharge.number], trade_status="TRADE_CLOSED", trade_no="2026closed")
    response = notify(client, *alipay.notification(trade))
    assert response.get_data(as_text=True) == "success"
    assert fresh(Order, recharge.id).status == "pending" and refusals() == []


def test_reconcile_payments_settles_a_lost_notification(alipay_apps, client, login, alipay, world, recharge):
    open_at_alipay(client, login, recharge)
    alipay.pay(recharge.number)
    never_sent = new_order(world.acme, "10.00")
    db.session.execute(update(Order).where(Order.id.in_([recharge.id, never_sent.id]))
                       .values(created_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    result = alipay_apps[1].test_cli_runner().invoke(args=["billing", "reconcile-payments"])
    assert result.exit_code == 0, result.output
    assert "1 orders paid, 0 still unpaid, 0 failed" in result.output
    order = fresh(Order, recharge.id)
    assert (order.status, order.provider_ref) == ("paid", alipay.trades[recharge.number]["trade_no"])
    assert balance(world.acme) == Decimal("88.00") and fresh(Order, never_sent.id).status == "pending"


def test_returning_from_alipay_asks_it(client, login, alipay, world, recharge):
    open_at_alipay(client, login, recharge)
    client.get(f"/payments/return/{recharge.number}/alipay")
    assert fresh(Order, recharge.id).status == "pending"
    alipay.pay(recharge.number)
    back = client.get(f"/payments/return/{recharge.number}/alipay?out_trade_no={recharge.number}&sign=x")
    assert back.status_code == 302
    assert fresh(Order, recharge.id).status == "paid" and balance(world.acme) == Decimal("88.00")


def paid_with_alipay(client, login, alipay, recharge) -> Order:
    open_at_alipay(client, login, recharge)
    assert notify(client, *alipay.notification(alipay.pay(recharge.number))).get_data(as_text=True) == "success"
    return fresh(Order, recharge.id)


def test_a_refund_goes_back_through_alipay(app, client, login, alipay, world, recharge):
    order = paid_with_alipay(client, login, alipay, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    assert approve_refund(db.session, world.users["admin"], refund, utcnow().date()) == "completed"
    db.session.commit()
    refund = fresh(OrderRefund, refund.id)
    assert (refund.status, refund.provider_refund_id) == ("completed", f"{order.number}-R{refund.id}")
    sent = alipay.refunds[refund.provider_refund_id]
    assert (sent["refund_amount"], sent["trade_no"]) == ("88.00", order.provider_ref)
    assert fresh(Order, order.id).status == "refunded" and balance(world.acme) == Decimal("0.00")


def test_a_refund_alipay_refuses_stays_failed_with_the_reason(app, client, login, alipay, world, recharge):
    order = paid_with_alipay(client, login, alipay, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    db.session.commit()
    alipay.refuse_refunds = "卖家余额不足"
    result = approve_refunds(db.session, world.users["admin"], [refund], utcnow().date())
    db.session.commit()
    assert result.changed == () and "卖家余额不足" in result.refused[0][1]
    refund = fresh(OrderRefund, refund.id)
    assert refund.status == "failed" and "卖家余额不足" in refund.failure_reason
    order = fresh(Order, order.id)
    assert (order.status, order.refunded_minor) == ("paid", 0) and balance(world.acme) == Decimal("88.00")


def test_a_bare_base64_key_is_never_taken_for_a_file_name():
    """Alipay's console gives bare base64: a run of 256+ characters without "/" is no file name."""
    from actions.providers.alipay import pem

    bare = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 300
    assert pem(bare, "PUBLIC KEY").startswith("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKC")
