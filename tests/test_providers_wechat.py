"""WeChat Pay API v3 against a local fake (tests/provider_fakes.py): Native pay shows the code_url as
a QR code; a verified notification pays once (even ten at a time); forged, edited, stale, foreign
or unknown notifications are refused, recorded and pay nothing; reconcile-payments and the payer's
return settle a lost notification; refunds go back through WeChat Pay, a refusal leaves them failed."""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from actions.orders import approve_refund, approve_refunds, request_refund
from actions.payments import PaymentConfigError
from conftest import make_app, post
from models import AuditEvent, LedgerEntry, Order, OrderRefund, PaymentAttempt, RefusedNotification, db, utcnow
from provider_fakes import FakeWeChatPay, provider_fixtures, rsa_key
from tests.test_renewals import balance, fresh, make_order

CALLBACK = "/payments/callback/wechat"


wechat, wechat_apps, app, client = provider_fixtures(FakeWeChatPay, "wechat")


@pytest.fixture
def recharge(world) -> Order:
    # A number of its own per test: the fake WeChat Pay keeps its trades for the whole module.
    order = make_order(world.acme, "recharge", "pending", "88.00", number=f"RC{secrets.token_hex(8)}")
    db.session.commit()
    return order


def open_at_wechat(client, login, order: Order) -> str:
    """The customer opens the payment at WeChat Pay (a POST), back on its pay page; the page's QR code text."""
    login("customer")
    url = f"/payments/pay/{order.number}/wechat"
    opened = post(client, url)
    assert opened.status_code == 302 and opened.headers["Location"] == url, opened.get_data(as_text=True)
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    assert "<svg" in html
    return html.split('data-code="', 1)[1].split('"', 1)[0]


def notify(client, headers: dict, body: bytes):
    return client.post(CALLBACK, data=body, headers=headers, content_type="application/json")


def order_entries(order: Order) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.order_id == order.id))


def refusals() -> list[RefusedNotification]:
    db.session.expire_all()
    return list(db.session.scalars(select(RefusedNotification).order_by(RefusedNotification.id)))


def test_pay_page_shows_wechat_code_url_as_a_qr_code(client, login, wechat, recharge):
    code = open_at_wechat(client, login, recharge)
    trade = wechat.trades[recharge.number]
    assert code == trade["code_url"] and code.startswith("weixin://wxpay/bizpayurl?pr=")
    assert trade["amount"]["total"] == 8800 and trade["amount"]["currency"] == "CNY"
    assert trade["notify_url"].endswith(CALLBACK)
    assert fresh(Order, recharge.id).status == "pending"


def test_the_order_pay_form_sends_the_payer_to_wechat(app, client, login, recharge):
    from conftest import post

    login("customer")
    response = post(client, f"/admin/renewal_center/order/{recharge.number}/pay/", {"method": "wechat"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/payments/pay/{recharge.number}/wechat")


def test_a_verified_notification_pays_once(client, login, wechat, world, recharge):
    open_at_wechat(client, login, recharge)
    trade = wechat.pay(recharge.number)
    headers, body = wechat.notification(trade)
    first = notify(client, headers, body)
    assert first.status_code == 204, first.get_data(as_text=True)
    order = fresh(Order, recharge.id)
    assert (order.status, order.payment_method, order.provider_ref) == ("paid", "wechat", trade["transaction_id"])
    assert balance(world.acme) == Decimal("88.00")
    again = notify(client, *wechat.notification(trade))  # WeChat Pay delivers again: answered, nothing moves
    assert again.status_code == 204
    assert order_entries(recharge) == 1 and balance(world.acme) == Decimal("88.00")
    assert refusals() == []


def test_the_same_notification_ten_times_at_once_pays_once(wechat_apps, client, login, wechat, world, recharge):
    open_at_wechat(client, login, recharge)
    headers, body = wechat.notification(wechat.pay(recharge.number))
    statuses, start = [], threading.Barrier(10)

    def deliver():
        sender = wechat_apps[1].test_client()
        start.wait()
        statuses.append(notify(sender, headers, body).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [204] * 10
    assert order_entries(recharge) == 1 and balance(world.acme) == Decimal("88.00")
    assert fresh(Order, recharge.id).status == "paid"


def _forged(wechat, trade):
    return wechat.notification(trade, key=rsa_key())


def _edited_after_signing(wechat, trade):
    headers, body = wechat.notification(trade)
    data = json.loads(body)
    data["summary"] = "支付成功 (edited)"
    return headers, json.dumps(data, ensure_ascii=False).encode()


def _amount_edited(wechat, trade):
    return wechat.notification(dict(trade, amount=dict(trade["amount"], total=1)))


def _other_currency(wechat, trade):
    return wechat.notification(dict(trade, amount=dict(trade["amount"], currency="USD")))


def _unknown_order(wechat, trade):
    return wechat.notification(dict(trade, out_trade_no="RC20991231-999999"))


def _stale(wechat, trade):
    return wechat.notification(trade, timestamp=int(time.time()) - 6 * 60)


def _wrong_apiv3_key(wechat, trade):
    return wechat.notification(trade, apiv3_key="0" * 32)


def _unknown_key(wechat, trade):
    return wechat.notification(trade, serial="PUB_KEY_ID_SOMEONE_ELSE")


@pytest.mark.parametrize("make, reason", [
    (_forged, "bad_signature"), (_edited_after_signing, "bad_signature"), (_amount_edited, "amount_mismatch"),
    (_other_currency, "currency_mismatch"), (_unknown_order, "unknown_order"), (_stale, "bad_signature"),
    (_wrong_apiv3_key, "bad_signature"), (_unknown_key, "bad_signature"),
])
def test_bad_notifications_are_refused_recorded_and_pay_nothing(client, login, wechat, world, recharge, make,
                                                                reason):
    open_at_wechat(client, login, recharge)
    trade = wechat.pay(recharge.number)
    headers, body = make(wechat, trade)
    response = notify(client, headers, body)
    assert response.status_code == 400
    assert response.get_json()["code"] == "FAIL"
    [refused] = refusals()
    assert (refused.reason, refused.method) == (reason, "wechat")
    assert fresh(Order, recharge.id).status == "pending"
    assert order_entries(recharge) == 0 and balance(world.acme) == Decimal("0.00")


def test_a_stale_timestamp_says_so(client, login, wechat, recharge):
    open_at_wechat(client, login, recharge)
    response = notify(client, *_stale(wechat, wechat.pay(recharge.number)))
    assert "5 minutes" in response.get_json()["message"]
    assert "5 minutes" in refusals()[0].detail


def test_reconcile_payments_settles_a_lost_notification(wechat_apps, client, login, wechat, world, recharge):
    open_at_wechat(client, login, recharge)
    wechat.pay(recharge.number)  # paid at WeChat Pay; the notification never arrives
    too_recent = make_order(world.acme, "recharge", "pending", "12.00", number=f"RC{secrets.token_hex(8)}")
    never_opened = make_order(world.acme, "recharge", "pending", "10.00", number=f"RC{secrets.token_hex(8)}")
    db.session.commit()
    open_at_wechat(client, login, too_recent)
    wechat.pay(too_recent.number)  # its notification may still come: not asked yet
    db.session.execute(update(Order).where(Order.id.in_([recharge.id, never_opened.id]))
                       .values(created_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    runner = wechat_apps[1].test_cli_runner()
    result = runner.invoke(args=["billing", "reconcile-payments"])
    assert result.exit_code == 0, result.output
    assert "1 orders paid, 0 still unpaid, 0 failed" in result.output
    order = fresh(Order, recharge.id)
    assert (order.status, order.provider_ref) == ("paid", wechat.trades[recharge.number]["transaction_id"])
    assert balance(world.acme) == Decimal("88.00")
    assert fresh(Order, never_opened.id).status == "pending" and fresh(Order, too_recent.id).status == "pending"
    asked = [path for method, path in wechat.requests if method == "GET"]
    assert asked == [f"/v3/pay/transactions/out-trade-no/{recharge.number}?mchid={wechat.mchid}"]
    again = runner.invoke(args=["billing", "reconcile-payments"])
    assert "0 orders paid, 0 still unpaid" in again.output and order_entries(recharge) == 1


def test_returning_from_wechat_asks_it(client, login, wechat, world, recharge):
    open_at_wechat(client, login, recharge)
    early = client.get(f"/payments/return/{recharge.number}/wechat")
    assert early.headers["Location"].endswith(f"/payments/pay/{recharge.number}/wechat")
    assert fresh(Order, recharge.id).status == "pending"
    wechat.pay(recharge.number)
    back = client.get(f"/payments/return/{recharge.number}/wechat", follow_redirects=True)
    assert back.status_code == 200
    assert fresh(Order, recharge.id).status == "paid" and balance(world.acme) == Decimal("88.00")


def attempts(order: Order) -> list[PaymentAttempt]:
    db.session.expire_all()
    return list(db.session.scalars(select(PaymentAttempt).where(PaymentAttempt.order_id == order.id)))


def qr_code(page) -> str | None:
    """The QR code's text a pay page shows, None when it shows none."""
    match = re.search(r'id="rd-provider-qr" data-code="([^"]*)"', page.get_data(as_text=True))
    return match.group(1) if match else None


def test_a_get_of_the_pay_page_opens_nothing(client, login, wechat, recharge):
    """A link or an <img> on another site cannot open a payment: the GET shows a button posting to the page."""
    login("customer")
    url = f"/payments/pay/{recharge.number}/wechat"
    page = client.get(url)
    assert page.status_code == 200 and qr_code(page) is None
    html = page.get_data(as_text=True)
    assert f'<form method="post" action="{url}"' in html and 'name="csrf_token"' in html
    assert attempts(recharge) == [] and wechat.requests == [] and recharge.number not in wechat.trades


def test_opening_the_payment_needs_the_csrf_token(client, login, wechat, recharge):
    login("customer")
    answer = client.post(f"/payments/pay/{recharge.number}/wechat")
    assert answer.status_code == 400 and b"CSRF" in answer.data
    assert attempts(recharge) == [] and wechat.requests == []


def test_the_post_opens_one_payment_and_a_reload_shows_its_qr_code_again(client, login, wechat, recharge):
    code = open_at_wechat(client, login, recharge)
    assert [(a.reference, a.qr_text) for a in attempts(recharge)] == [(recharge.number, code)]
    assert wechat.requests == [("POST", "/v3/pay/transactions/native")]
    url = f"/payments/pay/{recharge.number}/wechat"
    assert qr_code(client.get(url)) == code  # the reload: the same code, nothing asked, nothing recorded
    again = post(client, url, follow_redirects=True)  # the button pressed twice: the open payment again
    assert again.status_code == 200 and qr_code(again) == code
    assert len(attempts(recharge)) == 1 and wechat.requests == [("POST", "/v3/pay/transactions/native")]


def test_not_confirmed_yet_the_wechat_payer_sees_the_same_qr_code(client, login, wechat, recharge):
    code = open_at_wechat(client, login, recharge)
    before = [(a.id, a.qr_text, a.qr_given_at) for a in attempts(recharge)]
    page = client.get(f"/payments/return/{recharge.number}/wechat", follow_redirects=True)
    assert page.status_code == 200 and qr_code(page) == code
    assert "has not confirmed the payment" in page.get_data(as_text=True)
    assert [(a.id, a.qr_text, a.qr_given_at) for a in attempts(recharge)] == before
    assert [method for method, _path in wechat.requests] == ["POST", "GET"]  # opened once, then asked
    assert fresh(Order, recharge.id).status == "pending"


def test_an_old_qr_code_is_not_shown_again(client, login, wechat, recharge):
    from actions.provider_settlement import QR_SHOWN_FOR

    open_at_wechat(client, login, recharge)
    db.session.execute(update(PaymentAttempt).where(PaymentAttempt.order_id == recharge.id)
                       .values(qr_given_at=utcnow() - QR_SHOWN_FOR - timedelta(minutes=1)))
    db.session.commit()
    url = f"/payments/pay/{recharge.number}/wechat"
    page = client.get(url)
    assert page.status_code == 200 and qr_code(page) is None and 'id="rd-provider-start"' in page.get_data(
        as_text=True)
    assert len(wechat.requests) == 1
    assert qr_code(post(client, url, follow_redirects=True)) is not None  # the POST asks WeChat Pay again
    assert len(wechat.requests) == 2 and len(attempts(recharge)) == 1
    assert attempts(recharge)[0].qr_given_at > utcnow() - timedelta(minutes=1)


def test_buying_coins_with_wechat_opens_the_payment_once(client, login, wechat, world):
    """The coins form's POST opens the payment; its replay (the form sent again) shows the same code."""
    login("customer")
    form = {"company_id": str(world.acme.id), "amount": "72", "method": "wechat",
            "idempotency_key": secrets.token_hex(16)}
    answer = post(client, "/admin/coins/", form)
    order = db.session.scalar(select(Order).where(Order.kind == "coins", Order.company_id == world.acme.id))
    assert answer.status_code == 302 and answer.headers["Location"] == f"/payments/pay/{order.number}/wechat"
    code = qr_code(client.get(answer.headers["Location"]))
    assert code == wechat.trades[order.number]["code_url"] and len(attempts(order)) == 1
    again = post(client, "/admin/coins/", form, follow_redirects=True)
    assert qr_code(again) == code and len(attempts(order)) == 1 and len(wechat.requests) == 1


def test_a_paid_order_has_no_pay_page(client, login, wechat, recharge):
    open_at_wechat(client, login, recharge)
    assert notify(client, *wechat.notification(wechat.pay(recharge.number))).status_code == 204
    url = f"/payments/pay/{recharge.number}/wechat"
    for answer in (client.get(url), post(client, url)):
        assert answer.status_code == 302 and answer.headers["Location"].endswith(
            f"/admin/renewal_center/order/{recharge.number}/")
    assert len(wechat.requests) == 1


def test_other_tenants_cannot_open_the_pay_page(client, login, recharge):
    login("globex")
    assert client.get(f"/payments/pay/{recharge.number}/wechat").status_code == 404
    assert client.get(f"/payments/return/{recharge.number}/wechat").status_code == 404


def paid_with_wechat(client, login, wechat, recharge) -> Order:
    open_at_wechat(client, login, recharge)
    assert notify(client, *wechat.notification(wechat.pay(recharge.number))).status_code == 204
    return fresh(Order, recharge.id)


def test_a_refund_goes_back_through_wechat_and_is_on_its_way_until_paid_out(app, wechat_apps, client, login, wechat,
                                                                          world, recharge):
    """WeChat Pay answers a refund PROCESSING: it was marked "completed" although no money had reached the payer
    (and might never: ABNORMAL). It is "processing" until reconcile-payments hears SUCCESS."""
    order = paid_with_wechat(client, login, wechat, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    assert approve_refund(db.session, world.users["admin"], refund, utcnow().date()) == "processing"
    db.session.commit()
    refund = fresh(OrderRefund, refund.id)
    assert (refund.status, refund.completed_at) == ("processing", None) and refund.provider_refund_id.startswith("5030")
    sent = wechat.refunds[f"{order.number}-R{refund.id}"]
    assert sent["amount"] == {"refund": 8800, "total": 8800, "currency": "CNY"}
    assert sent["transaction_id"] == order.provider_ref
    assert fresh(Order, order.id).status == "refunded" and balance(world.acme) == Decimal("0.00")
    runner = wechat_apps[1].test_cli_runner()
    waiting = runner.invoke(args=["billing", "reconcile-payments"])
    assert waiting.exit_code == 0, waiting.output
    assert "0 paid out, 1 still on their way, 0 not paid out" in waiting.output
    assert fresh(OrderRefund, refund.id).status == "processing"
    wechat.pay_out(f"{order.number}-R{refund.id}", "SUCCESS")
    paid = runner.invoke(args=["billing", "reconcile-payments"])
    assert f"paid out: {order.number} #{refund.id}" in paid.output, paid.output
    refund = fresh(OrderRefund, refund.id)
    assert refund.status == "completed" and refund.completed_at is not None
    again = runner.invoke(args=["billing", "reconcile-payments"])
    assert "0 paid out, 0 still on their way" in again.output
    asked = [path for method, path in wechat.requests if method == "GET" and "/refund/" in path]
    assert asked == [f"/v3/refund/domestic/refunds/{order.number}-R{refund.id}"] * 2


def test_a_refund_wechat_cannot_pay_out_waits_for_finance_to_pay_it_by_hand(app, wechat_apps, client, login, wechat,
                                                                            world, recharge):
    order = paid_with_wechat(client, login, wechat, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    approve_refund(db.session, world.users["admin"], refund, utcnow().date())
    db.session.commit()
    wechat.pay_out(f"{order.number}-R{refund.id}", "ABNORMAL")
    result = wechat_apps[1].test_cli_runner().invoke(args=["billing", "reconcile-payments"])
    assert "1 not paid out" in result.output and "ABNORMAL" in result.output, result.output
    refund = fresh(OrderRefund, refund.id)
    assert (refund.status, refund.completed_at, refund.failure_reason) == ("not_paid_out", None, "ABNORMAL")
    assert fresh(Order, order.id).status == "refunded"  # the lines stay refunded: the money is owed to the payer
    login.logout()
    login("finance")
    assert 'data-card="refunds_not_paid_out">1<' in client.get("/admin/").get_data(as_text=True)
    page = client.get(f"/admin/orderrefund/details/?id={refund.id}").get_data(as_text=True)
    assert "rd-refund-by-hand" in page and "Refund not paid out" in page
    form = {"id": refund.id, "note": "Bank transfer of 3 Dec, ref. TT-0312"}
    asked = post(client, "/admin/orderrefund/by-hand/", form)
    assert asked.status_code == 200 and "confirm_token" in asked.get_data(as_text=True)
    assert fresh(OrderRefund, refund.id).status == "not_paid_out"  # nothing before the confirmation
    token = re.search(r'name="confirm_token" value="([^"]+)"', asked.get_data(as_text=True)).group(1)
    done = post(client, "/admin/orderrefund/by-hand/", {**form, "confirm_token": token})
    assert done.status_code == 302
    refund = fresh(OrderRefund, refund.id)
    assert refund.status == "completed" and refund.failure_reason == "Bank transfer of 3 Dec, ref. TT-0312"
    assert "refunds_not_paid_out" not in client.get("/admin/").get_data(as_text=True)
    twice = post(client, "/admin/orderrefund/by-hand/", {**form, "confirm_token": token})
    assert "not waiting to be paid back by hand" in client.get(twice.headers["Location"]).get_data(as_text=True)


def approved_at_wechat(client, login, wechat, world, recharge) -> tuple[Order, OrderRefund, str]:
    """A WeChat-paid order whose refund finance asked for and admin approved on the refunds page: processing."""
    order = paid_with_wechat(client, login, wechat, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    db.session.commit()
    login.logout()
    login("admin")
    ask = post(client, "/admin/orderrefund/action/", [("action", "approve"), ("rowid", str(refund.id))])
    token = re.search(r'name="confirm_token" value="([^"]+)"', ask.get_data(as_text=True)).group(1)
    post(client, "/admin/orderrefund/approve/", [("rowid", str(refund.id)), ("confirm_token", token)])
    refund = fresh(OrderRefund, refund.id)
    assert refund.status == "processing"
    return order, refund, f"{order.number}-R{refund.id}"


def settled_audits(order: Order) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "refund_settled", AuditEvent.ids == f",{order.id},"))


def test_wechat_says_when_a_refund_is_paid_out_and_it_is_recorded_once(app, client, login, wechat, world, recharge):
    """The refund asks WeChat Pay to notify our callback; its REFUND.SUCCESS completes the refund at once
    (no waiting for reconcile-payments), however often WeChat Pay repeats it."""
    order, refund, out_refund_no = approved_at_wechat(client, login, wechat, world, recharge)
    assert wechat.refund_notify_urls[out_refund_no] == f"http://localhost{CALLBACK}"
    wechat.pay_out(out_refund_no, "SUCCESS")
    headers, body = wechat.refund_notification(out_refund_no)
    for _ in range(3):
        assert notify(client, headers, body).status_code == 204
    refund = fresh(OrderRefund, refund.id)
    assert refund.status == "completed" and refund.completed_at is not None
    assert settled_audits(order) == 1 and refusals() == []


def test_wechat_says_a_refund_was_not_paid_out(app, client, login, wechat, world, recharge):
    order, refund, out_refund_no = approved_at_wechat(client, login, wechat, world, recharge)
    wechat.pay_out(out_refund_no, "ABNORMAL")
    assert notify(client, *wechat.refund_notification(out_refund_no)).status_code == 204
    refund = fresh(OrderRefund, refund.id)
    assert (refund.status, refund.completed_at, refund.failure_reason) == ("not_paid_out", None, "ABNORMAL")
    assert fresh(Order, order.id).status == "refunded"  # the money is owed to the payer: finance pays it by hand


@pytest.mark.parametrize("forge, reason", [
    (lambda wechat, out: wechat.refund_notification(out, key=rsa_key()), "bad_signature"),
    (lambda wechat, out: wechat.refund_notification(out, amount={"total": 8800, "refund": 100, "payer_total": 8800,
                                                                 "payer_refund": 100}), "amount_mismatch"),
    (lambda wechat, out: wechat.refund_notification(out, out_refund_no=out.rsplit("-R", 1)[0] + "-R99999999"),
     "unknown_order"),
    (lambda wechat, out: wechat.refund_notification(out, refund_id="5030" + "0" * 24), "unknown_order"),
    (lambda wechat, out: wechat.refund_notification(out, mchid="1900000000"), "malformed"),
    (lambda wechat, out: wechat.refund_notification(out, refund_status="ABNORMAL"), "malformed"),
])
def test_forged_or_foreign_refund_notifications_change_nothing(app, client, login, wechat, world, recharge, forge,
                                                               reason):
    order, refund, out_refund_no = approved_at_wechat(client, login, wechat, world, recharge)
    wechat.pay_out(out_refund_no, "SUCCESS")
    answer = notify(client, *forge(wechat, out_refund_no))
    assert answer.status_code == 400 and answer.get_json()["code"] == "FAIL"
    assert fresh(OrderRefund, refund.id).status == "processing" and settled_audits(order) == 0
    assert [r.reason for r in refusals()] == [reason]


def test_a_refund_wechat_refuses_stays_failed_with_the_reason(app, client, login, wechat, world, recharge):
    order = paid_with_wechat(client, login, wechat, recharge)
    refund = request_refund(db.session, world.users["finance"], order, None, "customer asked")
    db.session.commit()
    wechat.refuse_refunds = "基本账户余额不足，请充值后重新发起"
    result = approve_refunds(db.session, world.users["admin"], [refund], utcnow().date())
    db.session.commit()
    assert result.changed == () and result.refused[0][0] == order.number
    refund = fresh(OrderRefund, refund.id)
    assert refund.status == "failed" and "基本账户余额不足" in refund.failure_reason
    assert refund.provider_refund_id is None
    order = fresh(Order, order.id)
    assert (order.status, order.refunded_minor) == ("paid", 0)
    assert all(line.refunded_minor == 0 for line in order.lines)
    assert balance(world.acme) == Decimal("88.00") and order_entries(order) == 1


def test_production_serves_wechat_from_its_credentials_alone(database_url, wechat):
    config = dict(wechat.config(wechat.url), ENV_NAME="production", SECRET_KEY="s" * 32, PAYMENT_METHODS="wechat",
                  CARD_ENCRYPTION_KEYS="pDZ6cHBXdrqtGgqgRWJQ7PHt5Ad6bvvrLNdd9iYJVMU=", CARD_BLIND_INDEX_KEY="an-index-key")
    built = make_app(database_url, **config)
    settings = built.extensions["renewdesk_payments"]
    assert not settings.sandbox and list(settings.adapters) == ["wechat"]
    assert "sandbox" not in built.blueprints


def test_half_set_wechat_credentials_refuse_to_start(database_url, wechat):
    config = dict(wechat.config(wechat.url), ENV_NAME="production", SECRET_KEY="s" * 32, PAYMENT_METHODS="wechat",
                  CARD_ENCRYPTION_KEYS="pDZ6cHBXdrqtGgqgRWJQ7PHt5Ad6bvvrLNdd9iYJVMU=", CARD_BLIND_INDEX_KEY="an-index-key")
    del config["WECHATPAY_APIV3_KEY"]
    with pytest.raises(PaymentConfigError, match="WECHATPAY_APIV3_KEY"):
        make_app(database_url, **config)



def test_an_unreadable_wechat_key_refuses_to_start(database_url, wechat):
    config = dict(wechat.config(wechat.url), WECHATPAY_PUBLIC_KEY="-----BEGIN PUBLIC KEY-----\nnot a key\n")
    with pytest.raises(PaymentConfigError, match="wechat credentials cannot be used"):
        make_app(database_url, **config)
