"""Issue 10 items 1 and 2: nobody creates money in production, and every refused payment
notification leaves a trace (reason, method, source, body excerpt), rate-limited per source.

The production apps here run on the test database with ENV_NAME=production: the sandbox pay
page must not exist there, no secret has a default, and an enabled method without its
credentials stops the app at start-up.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from actions.payments import SANDBOX_DEVELOPMENT_SECRET, PaymentConfigError, provider_for
from conftest import Login, make_app, post
from models import Order, RefusedNotification, db, utcnow
from tests.security.db_snapshot import snapshot
from tests.test_renewals import balance, fresh, make_order

PROVIDER_SECRET = "alipay-merchant-key-from-the-provider"
PAY_URL = "https://pay.alipay.example/checkout?out_trade_no={order}&total_amount={amount}&currency={currency}"


CARD_KEY = "pDZ6cHBXdrqtGgqgRWJQ7PHt5Ad6bvvrLNdd9iYJVMU="  # a Fernet key for these test apps only


def production(database_url: str, **settings):
    """An app as `ENV_NAME=production` builds it (a real SECRET_KEY and card keys, nothing else unless given)."""
    return make_app(database_url, ENV_NAME="production", TESTING=False, SECRET_KEY="a-production-key",
                    CARD_ENCRYPTION_KEYS=CARD_KEY, CARD_BLIND_INDEX_KEY="a-production-index-key", **settings)


@pytest.fixture
def prod_app(app, database_url):
    """Production with no payment settings at all: only balance and bank transfer."""
    built = production(database_url)
    yield built
    with built.app_context():
        db.engine.dispose()


@pytest.fixture
def alipay_app(app, database_url):
    """Production with Alipay enabled and its credentials set."""
    built = production(database_url, PAYMENT_METHODS="alipay", PAYMENT_ALIPAY_SECRET=PROVIDER_SECRET,
                       PAYMENT_ALIPAY_PAY_URL=PAY_URL)
    yield built
    with built.app_context():
        db.engine.dispose()


@pytest.fixture
def top_up(world) -> Order:
    order = make_order(world.acme, "recharge", "pending", "5000.00", number="RC-PROD-1")
    db.session.commit()
    return order


def signed(order: Order, method: str, secret: str, **changes) -> dict:
    provider = provider_for(method, secret)
    payload, _signature = provider.notification(order)
    payload.update(changes)
    return dict(payload, signature=provider.sign(payload))


def money_rows() -> dict:
    """Every table but the refusals' own: what a refused notification must leave untouched."""
    rows = snapshot()
    rows.pop("refused_notification")
    return rows


def refusals() -> list[RefusedNotification]:
    db.session.expire_all()
    return list(db.session.scalars(select(RefusedNotification).order_by(RefusedNotification.id)))


# --- item 1: no sandbox, no default secret, no start without credentials ------------------------------

def test_production_has_no_sandbox_pay_page(prod_app, world, top_up):
    client = prod_app.test_client()
    assert client.get(f"/sandbox/pay/{top_up.number}?method=wechat").status_code == 404
    assert not any(rule.rule.startswith("/sandbox") for rule in prod_app.url_map.iter_rules())
    Login(client)("customer", follow=True)
    assert client.get(f"/sandbox/pay/{top_up.number}?method=wechat").status_code == 404
    assert "PAYMENT_SANDBOX_SECRET" not in prod_app.config


@pytest.mark.parametrize("method", ["wechat", "alipay", "paypal"])
def test_production_anonymous_self_signed_notification_pays_nothing(prod_app, world, top_up, method):
    """The attack of issue 10: sign with the public development secret and post the notification."""
    before = money_rows()
    answer = prod_app.test_client().post(f"/payments/callback/{method}",
                                         data=signed(top_up, method, SANDBOX_DEVELOPMENT_SECRET))
    assert answer.status_code == 400
    assert money_rows() == before
    assert fresh(Order, top_up.id).status == "pending" and balance(world.acme) == Decimal("0.00")
    assert [(r.reason, r.method) for r in refusals()] == [("unknown_method", method)]


def test_production_offers_no_online_method_by_default(prod_app, world, top_up):
    client = prod_app.test_client()
    Login(client)("customer", follow=True)
    page = client.get(f"/admin/renewal_center/order/{top_up.number}/pay/").get_data(as_text=True)
    assert 'value="wechat"' not in page and 'value="alipay"' not in page
    answer = post(client, f"/admin/renewal_center/order/{top_up.number}/pay/", {"method": "wechat"},
                  follow_redirects=True)
    assert "Payment method wechat is not enabled." in answer.get_data(as_text=True)
    assert fresh(Order, top_up.id).status == "pending"


@pytest.mark.parametrize("settings, missing", [
    ({"PAYMENT_METHODS": "wechat"}, "PAYMENT_WECHAT_SECRET"),
    ({"PAYMENT_METHODS": "wechat", "PAYMENT_WECHAT_SECRET": "k"}, "PAYMENT_WECHAT_PAY_URL"),
    ({"PAYMENT_METHODS": "alipay, paypal", "PAYMENT_ALIPAY_SECRET": "k", "PAYMENT_ALIPAY_PAY_URL": PAY_URL},
     "PAYMENT_PAYPAL_SECRET"),
    ({"PAYMENT_METHODS": "paypal", "PAYMENT_SANDBOX_SECRET": "k", "PAYMENT_PAYPAL_PAY_URL": PAY_URL},
     "PAYMENT_PAYPAL_SECRET"),  # the sandbox secret is no credential outside development
    ({"PAYMENT_METHODS": "alipay", "PAYMENT_ALIPAY_SECRET": "k", "PAYMENT_ALIPAY_PAY_URL": "http://plain.example/"},
     "PAYMENT_ALIPAY_PAY_URL"),
    ({"PAYMENT_METHODS": "alipay", "PAYMENT_ALIPAY_SECRET": "k",
      "PAYMENT_ALIPAY_PAY_URL": "https://pay.example/?order={order}&sign={signature}"}, "PAYMENT_ALIPAY_PAY_URL"),
    ({"PAYMENT_METHODS": "bitcoin"}, "unknown payment methods: bitcoin"),
])
def test_production_refuses_to_start_with_an_enabled_method_lacking_credentials(database_url, settings, missing):
    with pytest.raises(PaymentConfigError, match=missing):
        production(database_url, **settings)


def test_production_refusal_is_a_runtime_error_from_the_environment(database_url, monkeypatch):
    """What `flask run` / gunicorn meet: PAYMENT_METHODS from the environment, a clear error."""
    monkeypatch.setenv("RENEWDESK_PAYMENT_METHODS", "wechat,alipay")
    with pytest.raises(RuntimeError, match="PAYMENT_WECHAT_SECRET.*PAYMENT_ALIPAY_SECRET"):
        production(database_url)


def test_production_pays_a_notification_signed_with_the_configured_secret_only(alipay_app, world, top_up):
    client = alipay_app.test_client()
    answer = client.post("/payments/callback/alipay", data=signed(top_up, "alipay", SANDBOX_DEVELOPMENT_SECRET))
    assert answer.status_code == 400 and fresh(Order, top_up.id).status == "pending"
    answer = client.post("/payments/callback/wechat", data=signed(top_up, "wechat", PROVIDER_SECRET))
    assert answer.status_code == 400 and fresh(Order, top_up.id).status == "pending"
    answer = client.post("/payments/callback/alipay", data=signed(top_up, "alipay", PROVIDER_SECRET))
    assert (answer.status_code, answer.data) == (200, b"OK")
    assert fresh(Order, top_up.id).status == "paid" and balance(world.acme) == Decimal("5000.00")
    assert [r.reason for r in refusals()] == ["bad_signature", "unknown_method"]


def test_production_sends_the_payer_to_the_provider_pay_page(alipay_app, world, top_up):
    client = alipay_app.test_client()
    Login(client)("customer", follow=True)
    page = client.get(f"/admin/renewal_center/order/{top_up.number}/pay/").get_data(as_text=True)
    assert 'value="alipay"' in page and 'value="wechat"' not in page
    answer = post(client, f"/admin/renewal_center/order/{top_up.number}/pay/", {"method": "alipay"})
    assert answer.status_code == 302
    assert answer.headers["Location"] == (
        "https://pay.alipay.example/checkout?out_trade_no=RC-PROD-1&total_amount=5000.00&currency=CNY")


def test_development_keeps_the_sandbox(app, database_url, world, top_up):
    dev = make_app(database_url, ENV_NAME="development")
    try:
        assert dev.config["PAYMENT_SANDBOX_SECRET"] == SANDBOX_DEVELOPMENT_SECRET
        assert dev.extensions["renewdesk_payments"].methods == ("wechat", "alipay", "paypal", "vnptpay")
        assert any(rule.rule.startswith("/sandbox/pay/") for rule in dev.url_map.iter_rules())
    finally:
        with dev.app_context():
            db.engine.dispose()


# --- item 2: every refusal is recorded, nothing is paid ------------------------------------------------

def _case(app, world, top_up, case: str) -> tuple[str, dict]:
    """(method, form) of a notification refused for `case`."""
    secret = app.config["PAYMENT_SANDBOX_SECRET"]
    if case == "bad_signature":
        return "wechat", dict(signed(top_up, "wechat", secret), signature="0" * 64)
    if case == "unknown_order":
        return "wechat", signed(top_up, "wechat", secret, order_number="RC-NOPE-1")
    if case == "amount_mismatch":
        return "wechat", signed(top_up, "wechat", secret, amount="5000.01")
    if case == "currency_mismatch":
        return "wechat", signed(top_up, "wechat", secret, currency="USD")
    if case == "stale":
        old = make_order(world.acme, "recharge", "cancelled", "20.00", number="RC-STALE-1")
        db.session.commit()
        return "wechat", signed(old, "wechat", secret)
    if case == "repeated":
        paid = make_order(world.acme, "recharge", "paid", "20.00", number="RC-PAID-1", method="alipay")
        paid.provider_ref = "alipay-first-payment"
        db.session.commit()
        return "alipay", signed(paid, "alipay", secret)  # another transaction id for a paid order
    if case == "malformed":
        form = signed(top_up, "wechat", secret)
        del form["transaction_id"]
        return "wechat", form
    if case == "unknown_method":
        return "bitcoin", signed(top_up, "wechat", secret)
    raise AssertionError(case)


REASONS = ["bad_signature", "unknown_order", "amount_mismatch", "currency_mismatch", "stale", "repeated",
           "malformed", "unknown_method"]


@pytest.mark.parametrize("case", REASONS)
def test_each_refused_notification_is_recorded_and_pays_nothing(app, client, world, top_up, case):
    method, form = _case(app, world, top_up, case)
    before = money_rows()
    answer = client.post(f"/payments/callback/{method}", data=form)
    assert answer.status_code == 400
    assert money_rows() == before
    [row] = refusals()
    assert (row.reason, row.method, row.source) == (case, method, "127.0.0.1")
    assert row.detail == answer.get_data(as_text=True)
    assert row.at > utcnow() - timedelta(minutes=1)
    if "order_number" in form:
        assert row.order_number == form["order_number"] and form["order_number"] in row.body_excerpt


def test_a_transaction_id_reused_for_another_order_is_recorded_as_repeated(app, client, world, top_up):
    secret = app.config["PAYMENT_SANDBOX_SECRET"]
    first = signed(top_up, "wechat", secret)
    assert client.post("/payments/callback/wechat", data=first).status_code == 200
    other = make_order(world.acme, "recharge", "pending", "10.00", number="RC-OTHER-1")
    db.session.commit()
    before = money_rows()
    answer = client.post("/payments/callback/wechat",
                         data=signed(other, "wechat", secret, transaction_id=first["transaction_id"]))
    assert answer.status_code == 400 and money_rows() == before
    assert [(r.reason, r.order_number) for r in refusals()] == [("repeated", "RC-OTHER-1")]


def test_a_repeat_of_an_applied_payment_is_no_refusal(app, client, world, top_up):
    form = signed(top_up, "wechat", app.config["PAYMENT_SANDBOX_SECRET"])
    for _ in range(3):
        assert client.post("/payments/callback/wechat", data=form).status_code == 200
    assert refusals() == []


def test_the_body_excerpt_is_capped_and_json_bodies_are_kept(app, client, world, top_up):
    answer = client.post("/payments/callback/wechat", json={"order_number": "RC-PROD-1", "filler": "x" * 50_000})
    assert answer.status_code == 400
    [row] = refusals()
    assert (row.reason, row.order_number) == ("malformed", "RC-PROD-1")
    assert len(row.body_excerpt) == 2000 and row.body_excerpt.startswith('{"filler": "xxx')


def test_refusals_are_rate_limited_per_source_address(app, web_app, client, world, top_up, monkeypatch):
    monkeypatch.setitem(web_app.config, "PAYMENT_REFUSALS_PER_MINUTE", 3)
    secret = app.config["PAYMENT_SANDBOX_SECRET"]
    forged = dict(signed(top_up, "wechat", secret), signature="f" * 64)
    for _ in range(3):
        assert client.post("/payments/callback/wechat", data=forged).status_code == 400
    before = snapshot()
    good = signed(top_up, "wechat", secret)
    limited = client.post("/payments/callback/wechat", data=good)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
    assert snapshot() == before  # not processed, not even recorded
    assert fresh(Order, top_up.id).status == "pending"

    other = client.post("/payments/callback/wechat", data=good, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other.status_code == 200 and fresh(Order, top_up.id).status == "paid"

    # A minute later the source may notify again.
    for row in refusals():
        row.at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    assert client.post("/payments/callback/wechat", data=forged).status_code == 400
    assert len(refusals()) == 4


# --- the list for finance and admins ----------------------------------------------------------------------

@pytest.fixture
def refused(app, client, world, top_up):
    secret = app.config["PAYMENT_SANDBOX_SECRET"]
    client.post("/payments/callback/wechat", data=dict(signed(top_up, "wechat", secret), signature="0" * 64))
    client.post("/payments/callback/alipay", data=signed(top_up, "alipay", secret, amount="1.00"))
    return refusals()


@pytest.mark.parametrize("username", ["finance", "admin"])
def test_finance_and_admins_list_refused_notifications_newest_first(client, login, refused, username):
    login(username)
    page = client.get("/admin/refusednotification/").get_data(as_text=True)
    assert "Bad signature" in page and "Amount mismatch" in page and "127.0.0.1" in page
    assert page.index("Amount mismatch") < page.index("Bad signature")
    filtered = client.get("/admin/refusednotification/", query_string={"flt1_reason_equals": "bad_signature"})
    text = filtered.get_data(as_text=True)
    assert filtered.status_code == 200
    assert "Bad signature on the payment notification." in text and "does not match the order" not in text
    detail = client.get(f"/admin/refusednotification/details/?id={refused[0].id}").get_data(as_text=True)
    assert "RC-PROD-1" in detail


@pytest.mark.parametrize("username", ["customer", "sales", "support"])
def test_other_roles_do_not_see_refused_notifications(client, login, refused, username):
    login(username)
    assert client.get("/admin/refusednotification/").status_code == 403


def test_refused_notifications_are_read_only(client, login, refused):
    login("admin")
    assert client.get("/admin/refusednotification/new/").status_code in (302, 403, 404)
    assert client.get(f"/admin/refusednotification/edit/?id={refused[0].id}").status_code in (302, 403, 404)
    post(client, "/admin/refusednotification/delete/", {"id": str(refused[0].id)})
    assert len(refusals()) == 2
