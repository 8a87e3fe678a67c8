"""Every POST route of the url_map refuses a missing, wrong or foreign CSRF token with 400 and changes
nothing; the payment callback (exempt: providers cannot hold our token) refuses bad signatures."""
from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from actions.payments import NOTIFICATION_FIELDS, provider_for
from conftest import Login, confirmation_form, csrf_token
from console_urls import fill, post_rules
from db_snapshot import changed_tables, snapshot
from models import Order, db

SIGNED_BLUEPRINTS = {"payment_callbacks"}


def post_urls(app, number: str) -> list[str]:
    """A URL for each rule accepting POST (arguments filled with plausible values)."""
    return [url for rule in post_rules(app, SIGNED_BLUEPRINTS) for url in fill(rule.rule, "1", number)]


def hostile_form(world) -> list[tuple[str, str]]:
    """Fields that would act on real rows if a route forgot its CSRF check."""
    ids = [str(d.id) for d in world.devices.values()] + [str(u.id) for u in world.users.values()]
    return ([("action", "suspend"), ("action", "delete"), ("id", ids[0]), ("decision", "approve"),
             ("confirm", "1"), ("save", "1"), ("locale", "vi"), ("username", "admin"),
             ("password", "correct-horse-42"), ("method", "balance")] + [("rowid", i) for i in ids])


def test_the_walk_finds_the_post_routes(app):
    urls = post_urls(app, "RC-1")
    for expected in ("/login", "/logout", "/language", "/password", "/admin/device/action/",
                     "/admin/expiry_import/upload", "/admin/renewal_center/renew/"):
        assert expected in urls
    assert not any(url.startswith("/payments/callback/") for url in urls)


@pytest.mark.parametrize("token", ["missing", "wrong", "foreign", "header-wrong"])
def test_every_post_route_refuses_a_bad_csrf_token(app, web_app, client, login, world, token):
    login("admin")
    other = web_app.test_client()
    Login(other)("finance")
    foreign = csrf_token(other)  # valid, but for another session
    form = hostile_form(world)
    extra = {"missing": [], "wrong": [("csrf_token", "wrong")], "foreign": [("csrf_token", foreign)],
             "header-wrong": []}[token]
    headers = {"X-CSRFToken": "wrong"} if token == "header-wrong" else {}
    before = snapshot()
    for url in post_urls(web_app, "RC-GLOBEX-0001"):
        answer = client.post(url, data=MultiDict(form + extra), headers=headers)
        assert answer.status_code == 400, (url, answer.status_code)
        assert b"CSRF" in answer.data, url
    assert changed_tables(before) == []
    assert client.get("/admin/").status_code == 200  # the refused /logout did not log out


def test_the_same_post_with_the_right_token_does_act(web_app, client, login, world):
    """The control: the hostile form is not harmless in itself; only the token stops it."""
    login("admin")
    before = snapshot()
    answer = client.post("/admin/device/action/", data=MultiDict(hostile_form(world) + [
        ("csrf_token", csrf_token(client))]))
    assert answer.status_code == 200 and changed_tables(before) == []  # a suspension asks first
    action, fields = confirmation_form(answer)
    answer = client.post(action, data=MultiDict(fields))
    assert answer.status_code == 302
    assert "device" in changed_tables(before)


@pytest.fixture
def pending_order(world) -> Order:
    return db.session.scalar(db.select(Order).where(Order.number == "RC-GLOBEX-0001"))


def _notification(web_app, order, method="wechat", secret=None):
    return provider_for(method, secret or web_app.config["PAYMENT_SANDBOX_SECRET"]).notification(order)


@pytest.mark.parametrize("forgery", ["no signature", "zeros", "other secret", "amount changed", "order changed",
                                     "other method's signature", "signature as a list"])
def test_payment_callback_refuses_a_bad_signature(web_app, client, world, pending_order, forgery):
    payload, signature = _notification(web_app, pending_order)
    if forgery == "no signature":
        signature = ""
    elif forgery == "zeros":
        signature = "0" * len(signature)
    elif forgery == "other secret":
        payload, signature = _notification(web_app, pending_order, secret="guessed-secret")
    elif forgery == "amount changed":
        payload["amount"] = "0.01"
    elif forgery == "order changed":
        payload["order_number"] = "RC-ACME-9999"
    elif forgery == "other method's signature":
        payload["method"] = "alipay"
    before = snapshot()
    if forgery == "signature as a list":
        answer = client.post("/payments/callback/wechat", json={**payload, "signature": [signature]})
    else:
        answer = client.post("/payments/callback/wechat", data={**payload, "signature": signature})
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert changed_tables(before) == ["refused_notification"]  # only its trace is kept (issue 10 item 2)


def test_payment_callback_with_the_right_signature_pays_once(web_app, client, world, pending_order):
    """The control for the forgeries above: the same request, correctly signed, is accepted."""
    payload, signature = _notification(web_app, pending_order)
    assert set(payload) == set(NOTIFICATION_FIELDS)
    answer = client.post("/payments/callback/wechat", data=payload, headers={"X-Signature": signature})
    assert answer.status_code == 200 and answer.data == b"OK"
    db.session.expire_all()
    assert db.session.get(Order, pending_order.id).status == "paid"
    again = client.post("/payments/callback/wechat", data=payload, headers={"X-Signature": signature})
    assert again.status_code == 200
